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

/// The CRD, with every rule.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = GeneralBot::crd();
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
