//! Checks on a GeneralBot beyond what the API server already enforced, each failure
//! naming the field and what to change. Pure: the Secrets a spec refers to are passed
//! in as what was found, so the controller and `render` run the same checks.
//!
//! The CRD's own CEL rules are evaluated here too (with kube's client-side CEL), so an
//! offline `render` refuses exactly what the API server would, from one set of rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use generalbot_crds::GeneralBot;
use generalbot_crds::v1alpha1::NetworkPeer;
use kube::core::cel::{CompiledSchema, Validator, compile_schema};

use crate::builders::declared_services;

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
    if let Some(owner) = &gb.spec.services.postgres.owner_credentials_secret {
        needs.push(SecretNeed {
            name: owner.name.clone(),
            field: "spec.services.postgres.ownerCredentialsSecret.name".to_owned(),
            keys: vec!["username", "password"],
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

/// The CRD's CEL rules, evaluated on the object as the API server would on create (for
/// input that never passed through an API server: `render`, and the controller's own
/// guard). The rules on `metadata.name` live there too ([`generalbot_crds::crd`]).
pub fn check_spec(gb: &GeneralBot) -> Vec<SpecProblem> {
    let mut problems = check_label_keys(gb);
    problems.extend(check_cel(gb));
    problems
}

/// Every label map of the spec (pod labels and each peer's selectors) with its field.
fn label_maps(gb: &GeneralBot) -> Vec<(String, &BTreeMap<String, String>)> {
    let spec = &gb.spec;
    let mut peers: Vec<(String, &NetworkPeer)> = Vec::new();
    for (list, field) in [
        (&spec.network.ingress_from, "spec.network.ingressFrom"),
        (&spec.network.metrics_from, "spec.network.metricsFrom"),
    ] {
        peers.extend(
            list.iter()
                .enumerate()
                .map(|(i, p)| (format!("{field}[{i}]"), p)),
        );
    }
    peers.push(("spec.network.dns.peer".to_owned(), &spec.network.dns.peer));
    for (i, rule) in spec.network.extra_egress.iter().enumerate() {
        peers.push((format!("spec.network.extraEgress[{i}].peer"), &rule.peer));
    }
    for service in declared_services(spec) {
        peers.push((
            format!("{}.peer", service.kind.field()),
            &service.endpoint.peer,
        ));
    }
    let mut maps = vec![
        ("spec.server.podLabels".to_owned(), &spec.server.pod_labels),
        ("spec.monitoring.labels".to_owned(), &spec.monitoring.labels),
    ];
    for (field, peer) in peers {
        if let Some(m) = &peer.pod_selector {
            maps.push((format!("{field}.podSelector"), m));
        }
        if let Some(m) = &peer.namespace_selector {
            maps.push((format!("{field}.namespaceSelector"), m));
        }
    }
    maps
}

/// Label keys must be qualified names, as the API server checks them on the Deployment
/// and NetworkPolicies the operator writes (the CRD cannot: a CEL rule over map keys
/// costs more than the API server allows), so such a spec is refused before anything is
/// applied.
fn check_label_keys(gb: &GeneralBot) -> Vec<SpecProblem> {
    label_maps(gb)
        .into_iter()
        .flat_map(|(field, map)| {
            map.keys()
                .filter(|k| !is_label_key(k))
                .map(move |k| {
                    problem(
                        field.clone(),
                        format!(
                            "{k:?} is not a label key: use a name of at most 63 letters, digits, '-', '_' or '.' (starting and ending with a letter or digit), optionally after a DNS prefix and '/', such as example.com/app"
                        ),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A Kubernetes label key: `[prefix/]name`, the prefix a DNS subdomain of at most 253
/// characters, the name at most 63.
pub fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|p| {
        (1..=253).contains(&p.len())
            && p.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    name_ok && prefix_ok
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
                .map(|e| cel_problem(&e.field_path, &e.message))
                .collect(),
        }
    })
}

/// A CEL failure as a problem. A rule on the whole object names its field at the start
/// of its message (`metadata.name: …`), since the API server gives it no path.
fn cel_problem(field_path: &str, message: &str) -> SpecProblem {
    match message.split_once(": ") {
        Some((field, rest)) if field_path.is_empty() && field == "metadata.name" => {
            problem(field, rest)
        }
        _ => problem(field_path, message),
    }
}

fn compiled_crd_schema() -> Option<CompiledSchema> {
    generalbot_crds::crd::schema_json().map(|schema| compile_schema(&schema))
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
    fn label_keys_are_qualified_names() {
        for good in ["app", "example.com/app", "a.b-c_d", "k8s-app", "x/y"] {
            assert!(is_label_key(good), "{good}");
        }
        for bad in [
            "",
            "-app",
            "app-",
            "has space",
            "a/b/c",
            "Example.com/app",
            "/app",
            &"a".repeat(64),
        ] {
            assert!(!is_label_key(bad), "{bad}");
        }
        let mut gb = mk_gb("bot");
        gb.spec
            .server
            .pod_labels
            .insert("team name".to_owned(), "x".to_owned());
        assert_eq!(fields(&check_spec(&gb)), ["spec.server.podLabels"]);
    }

    #[test]
    fn names_must_leave_room_for_derived_names() {
        use generalbot_crds::crd::MAX_NAME_LEN;
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
