//! Validation of a GeneralBot document against the structural schema of the very CRD
//! the operator installs ([`generalbot_crds::crd::crd`]), as the API server does before
//! its CEL rules: types, required fields, enums, minimum and maximum, patterns, lengths,
//! item counts, and unknown fields (refused, as `kubectl apply` does with its default
//! strict field validation). The JSON Schema validation is done by the `jsonschema`
//! crate; this module only turns the OpenAPI schema into JSON Schema and each error into
//! a `spec.path: what to fix` line.
//!
//! What the API server does first is done here too: `null` values are pruned (a field
//! set to `null` is the same as a field left out), and `status` is ignored (it is not
//! written on create).

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::{Location, LocationSegment};
use serde_json::Value;

use crate::validate::SpecProblem;

/// The CRD's schema as a JSON Schema validator, built once; `None` if the CRD has no
/// schema (a bug caught by the tests).
fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema = generalbot_crds::crd::schema_json()?;
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(true)
                .should_ignore_unknown_formats(true)
                .build(&json_schema_of(with_object_meta(schema)))
                .ok()
        })
        .as_ref()
}

/// The CRD's schema covers `spec` and `status`; the API server checks the fields every
/// object has: this kind and version, and a name.
fn with_object_meta(mut schema: Value) -> Value {
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.insert(
            "apiVersion".to_owned(),
            serde_json::json!({"type": "string", "enum": ["generalbots.io/v1alpha1"]}),
        );
        props.insert(
            "kind".to_owned(),
            serde_json::json!({"type": "string", "enum": ["GeneralBot"]}),
        );
        props.insert(
            "metadata".to_owned(),
            serde_json::json!({
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "namespace": {"type": "string"},
                    "generateName": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "finalizers": {"type": "array", "items": {"type": "string"}}
                },
                "x-kubernetes-preserve-unknown-fields": true
            }),
        );
    }
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "required".to_owned(),
            serde_json::json!(["apiVersion", "kind", "metadata", "spec"]),
        );
    }
    schema
}

/// The OpenAPI v3 (structural) schema as JSON Schema: `nullable` becomes a `null` type,
/// and an object with declared properties refuses any other (unless it preserves
/// unknown fields), which is what pruning plus strict field validation amount to.
pub fn json_schema_of(mut schema: Value) -> Value {
    convert(&mut schema);
    schema
}

fn convert(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.remove("nullable") == Some(Value::Bool(true))
        && let Some(Value::String(t)) = obj.get("type").cloned()
    {
        obj.insert(
            "type".to_owned(),
            Value::Array(vec![Value::String(t), Value::String("null".to_owned())]),
        );
    }
    let preserves = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") && !preserves {
        obj.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            props.values_mut().for_each(convert);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = obj.get_mut(key) {
            convert(sub);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(subs)) = obj.get_mut(key) {
            subs.iter_mut().for_each(convert);
        }
    }
}

/// Removes every `null` member of every object, as the API server prunes them.
pub fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// Checks `doc` (nulls already pruned) against the CRD's schema; every problem names
/// its field.
pub fn check(doc: &Value) -> Vec<SpecProblem> {
    let Some(validator) = validator() else {
        return vec![SpecProblem {
            field: "spec".to_owned(),
            message: "the CRD's schema could not be compiled (a bug: please report it)".to_owned(),
        }];
    };
    let mut doc = doc.clone();
    if let Some(map) = doc.as_object_mut() {
        map.remove("status");
    }
    let mut problems: Vec<SpecProblem> = Vec::new();
    for error in validator.iter_errors(&doc) {
        let at = path_of(error.instance_path());
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    problems.push(SpecProblem {
                        field: join(&at, name),
                        message: "unknown field: the GeneralBot API has no such field (check its spelling and place with `kubectl explain generalbot.spec`)".to_owned(),
                    });
                }
            }
            ValidationErrorKind::Required {
                property: Value::String(name),
            } => problems.push(SpecProblem {
                field: join(&at, name),
                message: "required: this field must be given".to_owned(),
            }),
            ValidationErrorKind::Pattern { pattern } => problems.push(SpecProblem {
                message: format!(
                    "{} does not have the form this field takes (the pattern {pattern}): see `kubectl explain generalbot.{}`",
                    error.instance(),
                    explain_path(&at)
                ),
                field: at,
            }),
            _ => problems.push(SpecProblem {
                field: if at.is_empty() {
                    "(root)".to_owned()
                } else {
                    at
                },
                message: error.to_string(),
            }),
        }
    }
    problems.sort_by(|a, b| a.field.cmp(&b.field));
    problems.dedup();
    problems
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

/// A field path as `kubectl explain` takes it (no list indexes, no map keys).
fn explain_path(at: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in at.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// A JSON pointer as the API server writes field paths: `spec.network.extraEgress[0].name`.
pub fn path_of(location: &Location) -> String {
    let mut out = String::new();
    for segment in location.segments() {
        match segment {
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
            LocationSegment::Property(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&name);
            }
        }
    }
    out
}

/// `doc` with nulls pruned, the form both the schema and the deserializer see.
pub fn normalized(mut doc: Value) -> Value {
    prune_nulls(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(spec: Value) -> Value {
        serde_json::json!({
            "apiVersion": "generalbots.io/v1alpha1",
            "kind": "GeneralBot",
            "metadata": {"name": "bot"},
            "spec": spec,
        })
    }

    fn minimal() -> Value {
        doc(serde_json::json!({
            "services": {"postgres": {"host": "db", "peer": {"cidrs": ["10.0.0.0/24"]}}}
        }))
    }

    fn fields(p: &[SpecProblem]) -> Vec<&str> {
        p.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_valid_document_passes() {
        assert_eq!(check(&minimal()), []);
    }

    #[test]
    fn bounds_patterns_enums_and_unknown_fields_are_refused_with_their_path() {
        let mut d = minimal();
        d["spec"]["server"] = serde_json::json!({"replicas": 0, "imagePullPolicy": "Sometimes"});
        d["spec"]["network"] = serde_json::json!({"extraEgress": [{"name": "Bad Name", "peer": {"cidrs": ["10.0.0.0/8"]}, "ports": [443]}]});
        d["spec"]["servces"] = serde_json::json!({});
        let p = check(&d);
        assert_eq!(
            fields(&p),
            [
                "spec.network.extraEgress[0].name",
                "spec.servces",
                "spec.server.imagePullPolicy",
                "spec.server.replicas",
            ],
            "{p:?}"
        );
    }

    #[test]
    fn nulls_are_pruned_and_status_ignored() {
        let mut d = minimal();
        d["spec"]["server"] = serde_json::json!({"image": null});
        d["status"] = serde_json::json!({"anything": 1});
        assert_eq!(check(&normalized(d)), []);
    }
}
