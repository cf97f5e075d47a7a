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

{{/*
The API server's CIDRs for the operator's egress policy, as a JSON list: the values,
or else the addresses of the `kubernetes` EndpointSlice found at install. Never every
address: with neither, rendering fails and says what to set.
*/}}
{{- define "generalbot-operator.apiServerCidrs" -}}
{{- $cidrs := list -}}
{{- range .Values.apiServer.cidrs -}}
{{- if or (eq . "0.0.0.0/0") (eq . "::/0") -}}
{{- fail "apiServer.cidrs: give the API server's own addresses, not every address" -}}
{{- end -}}
{{- $cidrs = append $cidrs . -}}
{{- end -}}
{{- if not $cidrs -}}
{{- $slices := lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "" -}}
{{- range ($slices.items | default list) -}}
{{- if eq (index (.metadata.labels | default dict) "kubernetes.io/service-name" | default "") "kubernetes" -}}
{{- range .endpoints -}}
{{- range .addresses -}}
{{- $cidrs = append $cidrs (ternary (printf "%s/128" .) (printf "%s/32" .) (contains ":" .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $cidrs -}}
{{- fail "apiServer.cidrs: set the API server's addresses (kubectl get endpointslice -n default -l kubernetes.io/service-name=kubernetes); they could not be looked up here" -}}
{{- end -}}
{{- toJson $cidrs -}}
{{- end -}}
