{{- define "generalbot-operator.name" -}}generalbot-operator{{- end -}}

{{- define "generalbot-operator.labels" -}}
app.kubernetes.io/name: generalbot-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "generalbot-operator.selector" -}}
app.kubernetes.io/name: generalbot-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "generalbot-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}
