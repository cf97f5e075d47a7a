//! The CustomResourceDefinition as installed and as `render` checks against: the one
//! derived from [`GeneralBot`], plus the rules on the whole object that a field
//! attribute cannot carry (those on `metadata.name`, which the operator derives the
//! names of its objects from). Always take the CRD from [`crd`], never from the derive.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, ValidationRule,
};
use kube::CustomResourceExt as _;

use crate::GeneralBot;

/// Longest GeneralBot name: the longest derived name (`<name>-default-deny`) must stay
/// within the 63 characters of a DNS label.
pub const MAX_NAME_LEN: usize = 63 - "-default-deny".len();

/// The rules on the whole object.
fn root_rules() -> Vec<ValidationRule> {
    vec![
        ValidationRule {
            rule: format!("size(self.metadata.name) <= {MAX_NAME_LEN}"),
            message: Some(format!(
                "metadata.name: use at most {MAX_NAME_LEN} characters, since the operator derives names such as <name>-default-deny that must fit in 63"
            )),
            ..ValidationRule::default()
        },
        ValidationRule {
            rule: "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')".to_owned(),
            message: Some(
                "metadata.name: start with a letter and use only lower-case letters, digits and '-', since it names a Service".to_owned(),
            ),
            ..ValidationRule::default()
        },
    ]
}

/// Rewrites the formats Kubernetes does not know (`uint32` and the like, which schemars
/// gives unsigned fields and the API server warns about at every install) to `int64`,
/// keeping a minimum of 0.
fn known_formats(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            let unsigned = map
                .get("format")
                .and_then(|f| f.as_str())
                .is_some_and(|f| matches!(f, "uint8" | "uint16" | "uint32" | "uint64"));
            if unsigned {
                map.insert("format".to_owned(), "int64".into());
                map.entry("minimum").or_insert(0.into());
            }
            map.values_mut().for_each(known_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(known_formats),
        _ => {}
    }
}

/// The CRD, with every rule.
pub fn crd() -> CustomResourceDefinition {
    let derived = GeneralBot::crd();
    let mut crd = serde_json::to_value(&derived)
        .ok()
        .map(|mut v| {
            known_formats(&mut v);
            v
        })
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(derived);
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema
                .x_kubernetes_validations
                .get_or_insert_with(Vec::new)
                .extend(root_rules());
        }
    }
    crd
}

/// The OpenAPI v3 schema of the served version, as JSON (what `render` validates
/// against); `None` only if the CRD had no schema.
pub fn schema_json() -> Option<serde_json::Value> {
    crd()
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_format_is_one_kubernetes_knows() {
        let text = serde_json::to_string(&super::crd()).unwrap_or_default();
        assert!(
            !text.contains("\"uint"),
            "a format the API server warns about"
        );
        assert!(text.contains("\"int64\""));
    }
}
