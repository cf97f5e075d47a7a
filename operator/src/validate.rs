//! Checks on a GeneralBot beyond what the API server already enforced, each failure
//! naming the field and what to change. Pure: the Secrets a spec refers to are passed
//! in as what was found, so the controller and `render` run the same checks.
//!
//! The CRD's own CEL rules are evaluated here too (with kube's client-side CEL), so an
//! offline `render` refuses exactly what the API server would, from one set of rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use generalbot_crds::GeneralBot;
use kube::CustomResourceExt;
use kube::core::cel::{CompiledSchema, Validator, compile_schema};

use crate::builders::declared_services;

/// Longest GeneralBot name: the longest derived name (`<name>-default-deny`) must stay
/// within the 63 characters of a DNS label.
pub const MAX_NAME_LEN: usize = 63 - "-default-deny".len();

/// One thing wrong with a GeneralBot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecProblem {
    /// The field to fix, as a path (`spec.services.postgres.credentialsSecret.name`).
    pub field: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> SpecProblem {
    SpecProblem {
        field: field.into(),
        message: message.into(),
    }
}

/// What was found of a Secret the spec refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoundSecret {
    /// No Secret of that name in the namespace.
    Missing,
    /// The Secret exists with these keys (values are never passed around).
    Keys(BTreeSet<String>),
}

/// A Secret the spec refers to, and the keys it must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretNeed {
    /// Name of the Secret.
    pub name: String,
    /// The field that names it.
    pub field: String,
    /// Keys it must hold.
    pub keys: Vec<&'static str>,
}

/// Every Secret the spec refers to, with the keys each must hold.
pub fn secret_needs(gb: &GeneralBot) -> Vec<SecretNeed> {
    let mut needs = Vec::new();
    if let Some(ca) = &gb.spec.security.certificates.ca_secret {
        needs.push(SecretNeed {
            name: ca.name.clone(),
            field: "spec.security.certificates.caSecret.name".to_owned(),
            keys: vec!["tls.crt", "tls.key", "ca.crt"],
        });
    }
    for service in declared_services(&gb.spec) {
        let e = service.endpoint;
        if let Some(secret) = &e.credentials_secret {
            needs.push(SecretNeed {
                name: secret.name.clone(),
                field: format!("{}.credentialsSecret.name", service.kind.field()),
                keys: service
                    .kind
                    .credential_keys()
                    .iter()
                    .map(|k| k.key)
                    .collect(),
            });
        }
        if let Some(ca) = &e.tls.ca_secret {
            needs.push(SecretNeed {
                name: ca.name.clone(),
                field: format!("{}.tls.caSecret.name", service.kind.field()),
                keys: vec!["ca.crt"],
            });
        }
    }
    needs
}

/// Checks the Secrets the spec refers to against what was found.
pub fn check_secrets(
    namespace: &str,
    needs: &[SecretNeed],
    found: &BTreeMap<String, FoundSecret>,
) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    for need in needs {
        match found.get(&need.name) {
            None | Some(FoundSecret::Missing) => problems.push(problem(
                &need.field,
                format!(
                    "Secret {:?} not found in namespace {namespace:?}: create it with the keys {}",
                    need.name,
                    need.keys.join(", ")
                ),
            )),
            Some(FoundSecret::Keys(keys)) => {
                let missing: Vec<&str> = need
                    .keys
                    .iter()
                    .copied()
                    .filter(|k| !keys.contains(*k))
                    .collect();
                if !missing.is_empty() {
                    problems.push(problem(
                        &need.field,
                        format!(
                            "Secret {:?} lacks the keys {}: add them",
                            need.name,
                            missing.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    problems
}

/// Checks what the schema cannot: the name's length and form, unique rule names, and
/// (for input that never passed through an API server) the CRD's CEL rules.
pub fn check_spec(gb: &GeneralBot) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let name = gb.metadata.name.as_deref().unwrap_or_default();
    if name.len() > MAX_NAME_LEN {
        problems.push(problem(
            "metadata.name",
            format!(
                "{name:?} is {} characters long; use at most {MAX_NAME_LEN}, since the operator derives names such as {name}-default-deny that must fit in 63",
                name.len()
            ),
        ));
    }
    if !is_dns_1035_label(name) {
        problems.push(problem(
            "metadata.name",
            format!(
                "{name:?} must start with a letter and hold only lower-case letters, digits and '-', since it names a Service"
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, rule) in gb.spec.network.extra_egress.iter().enumerate() {
        if !seen.insert(rule.name.as_str()) {
            problems.push(problem(
                format!("spec.network.extraEgress[{i}].name"),
                format!(
                    "{:?} is used by an earlier rule: give each rule its own name",
                    rule.name
                ),
            ));
        }
    }
    problems.extend(check_cel(gb));
    problems
}

fn is_dns_1035_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    matches!(bytes.first(), Some(b'a'..=b'z'))
        && matches!(bytes.last(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// Evaluates the CRD's CEL rules on the object, as the API server would on create.
pub fn check_cel(gb: &GeneralBot) -> Vec<SpecProblem> {
    thread_local! {
        // Compiling the rules costs far more than evaluating them: once per thread.
        static CEL: (Validator, Option<CompiledSchema>) = (Validator::new(), compiled_crd_schema());
    }
    let Ok(object) = serde_json::to_value(gb) else {
        return vec![problem("spec", "could not read this object as JSON")];
    };
    CEL.with(|(validator, compiled)| {
        let Some(compiled) = compiled else {
            return vec![problem(
                "spec",
                "could not compile the CEL rules of the CRD",
            )];
        };
        match validator.validate_compiled(compiled, &object, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .as_slice()
                .iter()
                .map(|e| problem(e.field_path.clone(), e.message.clone()))
                .collect(),
        }
    })
}

fn compiled_crd_schema() -> Option<CompiledSchema> {
    let crd = GeneralBot::crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())?;
    Some(compile_schema(&schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{mk_full_gb, mk_gb};
    use generalbot_crds::v1alpha1::{BucketEncryptionMode, NetworkPeer};

    fn fields(problems: &[SpecProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn valid_bots_pass() {
        assert_eq!(check_spec(&mk_gb("bot")), []);
        assert_eq!(check_spec(&mk_full_gb("bot")), []);
    }

    #[test]
    fn cel_rules_of_the_crd_are_enforced_offline() {
        let mut gb = mk_gb("bot");
        gb.spec.server.features.vectordb = true;
        let p = check_spec(&gb);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("spec.services.vectorDb"), "{p:?}");

        let mut gb = mk_full_gb("bot");
        gb.spec.encryption.bucket.mode = BucketEncryptionMode::SseKms;
        let p = check_spec(&gb);
        assert!(p.iter().any(|p| p.message.contains("kmsKeyId")), "{p:?}");

        let mut gb = mk_gb("bot");
        gb.spec.services.postgres.endpoint.peer = NetworkPeer::default();
        let p = check_spec(&gb);
        assert!(p.iter().any(|p| p.message.contains("exactly one")), "{p:?}");

        let mut gb = mk_gb("bot");
        gb.spec.services.postgres.endpoint.peer.cidrs = vec!["10.0.0.0/33".to_owned()];
        gb.spec.services.postgres.endpoint.peer.pod_selector = None;
        let p = check_spec(&gb);
        assert!(p.iter().any(|p| p.message.contains("CIDR")), "{p:?}");

        let mut gb = mk_gb("bot");
        gb.spec.server.resources.limits_memory = "64Mi".to_owned();
        let p = check_spec(&gb);
        assert!(
            p.iter().any(|p| p.message.contains("limitsMemory")),
            "{p:?}"
        );

        let mut gb = mk_gb("bot");
        gb.spec.server.settings.login_alert_threshold = 10;
        let p = check_spec(&gb);
        assert!(
            p.iter().any(|p| p.message.contains("loginAlertThreshold")),
            "{p:?}"
        );
    }

    #[test]
    fn names_must_leave_room_for_derived_names() {
        let long = "b".repeat(MAX_NAME_LEN + 1);
        assert_eq!(fields(&check_spec(&mk_gb(&long))), ["metadata.name"]);
        assert_eq!(check_spec(&mk_gb(&"b".repeat(MAX_NAME_LEN))), []);
        assert_eq!(fields(&check_spec(&mk_gb("1bot"))), ["metadata.name"]);
    }

    #[test]
    fn referenced_secrets_must_exist_with_their_keys() {
        let gb = mk_full_gb("bot");
        let needs = secret_needs(&gb);
        assert_eq!(needs.len(), 6);
        let mut found = BTreeMap::new();
        for n in &needs {
            found.insert(
                n.name.clone(),
                FoundSecret::Keys(n.keys.iter().map(|k| (*k).to_owned()).collect()),
            );
        }
        assert_eq!(check_secrets("bots", &needs, &found), []);
        found.insert("redis-credentials".to_owned(), FoundSecret::Missing);
        found.insert(
            "s3-credentials".to_owned(),
            FoundSecret::Keys(BTreeSet::from(["accessKeyId".to_owned()])),
        );
        let p = check_secrets("bots", &needs, &found);
        assert_eq!(
            fields(&p),
            [
                "spec.services.cache.credentialsSecret.name",
                "spec.services.objectStorage.credentialsSecret.name"
            ]
        );
        assert!(p[0].message.contains("create it with the keys password"));
        assert!(p[1].message.contains("lacks the keys secretAccessKey"));
    }
}
