//! Pure computation of a GeneralBot's status from what the reconcile observed. The clock
//! is passed in; a condition keeps its `lastTransitionTime` unless its status flips, so an
//! unchanged world computes an identical status and nothing is written.

use generalbot_crds::v1alpha1::{CertificateStatus, KeyRingStatus, TlsMode};
use generalbot_crds::{GeneralBot, GeneralBotStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::builders::declared_services;
use crate::validate::SpecProblem;

/// Condition types.
pub mod types {
    /// Everything below is true.
    pub const READY: &str = "Ready";
    /// Enough bot server pods are available.
    pub const WORKLOAD_AVAILABLE: &str = "WorkloadAvailable";
    /// The default-deny and allow policies are in place.
    pub const NETWORK_ISOLATED: &str = "NetworkIsolated";
    /// Every declared service is reached over verified TLS.
    pub const ENCRYPTED_IN_TRANSIT: &str = "EncryptedInTransit";
    /// Every key ring exists and no rotation is stuck.
    pub const KEYS_READY: &str = "KeysReady";
    /// The bot's certificates are issued and current.
    pub const CERTIFICATES_READY: &str = "CertificatesReady";
}

/// Condition reasons.
pub mod reasons {
    /// The spec has a problem the message names.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Everything is in place.
    pub const RECONCILED: &str = "Reconciled";
    /// Pods are starting or rolling.
    pub const PROGRESSING: &str = "Progressing";
    /// Enough pods are available.
    pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
    /// The network policies are applied.
    pub const POLICIES_APPLIED: &str = "PoliciesApplied";
    /// Every service uses verified TLS.
    pub const ALL_SERVICES_TLS: &str = "AllServicesTLS";
    /// Some service has TLS disabled.
    pub const TLS_DISABLED: &str = "TLSDisabled";
    /// Every key ring is current or rotating normally.
    pub const KEYS_CURRENT: &str = "KeysCurrent";
    /// A rotation cannot finish; the message says why.
    pub const ROTATION_BLOCKED: &str = "RotationBlocked";
    /// Every certificate is issued and not due.
    pub const CERTIFICATES_CURRENT: &str = "CertificatesCurrent";
    /// A certificate is missing.
    pub const CERTIFICATES_MISSING: &str = "CertificatesMissing";
    /// The key Secret of a bot that had keys is gone.
    pub const KEYS_MISSING: &str = "KeysMissing";
}

/// What one reconcile saw and did.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    /// Problems with the spec; when any, nothing was applied.
    pub problems: &'a [SpecProblem],
    /// The Deployment as last seen, if any.
    pub deployment: Option<&'a Deployment>,
    /// The key rings, when the reconcile read them (otherwise the status keeps what it
    /// said before).
    pub keys: Option<&'a KeysObserved>,
    /// The certificates, when the reconcile looked at them.
    pub certificates: Option<&'a [CertificateStatus]>,
    /// The key Secret of a bot that had keys is gone, and no one accepted the loss:
    /// nothing was applied.
    pub keys_missing: bool,
}

/// The key rings as one reconcile found and left them. Recorded on the key Secret as a
/// non-secret annotation, so a steady reconcile can report them from the watch cache.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeysObserved {
    /// Every ring.
    pub rings: Vec<KeyRingStatus>,
    /// Rings whose rotation cannot go on, and why.
    pub blocked: Vec<(String, String)>,
}

/// Where the bot server's replicas share state: the cache when one is declared, else
/// PostgreSQL (always declared), so more than one replica never means separate budgets.
pub fn shared_state_of(gb: &GeneralBot) -> &'static str {
    use generalbot_crds::contract::shared_state;
    if gb.spec.services.cache.is_some() {
        shared_state::CACHE
    } else {
        shared_state::DATABASE
    }
}

/// The status a GeneralBot should have, given what was observed at `now`.
pub fn compute_status(gb: &GeneralBot, observed: &Observed<'_>, now: &Time) -> GeneralBotStatus {
    let previous = gb.status.clone().unwrap_or_default();
    let generation = gb.metadata.generation;
    let mut status = GeneralBotStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        available_replicas: previous.available_replicas,
        image_digest: generalbot_crds::v1alpha1::image_digest(&gb.spec.server.image)
            .map(str::to_owned),
        shared_state: Some(shared_state_of(gb).to_owned()),
        certificates: previous.certificates.clone(),
        key_rings: previous.key_rings.clone(),
        accepted_key_loss: previous.accepted_key_loss.clone(),
        audit_chain: previous.audit_chain.clone(),
        next_rotation: None,
        last_backup: previous.last_backup.clone(),
    };
    let mut set = |type_: &str, ok: bool, reason: &str, message: String| {
        set_condition(
            &mut status.conditions,
            condition(type_, ok, reason, message, generation, now),
        );
    };

    if !observed.problems.is_empty() {
        let message = observed
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        set(
            types::READY,
            false,
            reasons::INVALID_SPEC,
            truncate(message),
        );
        return status;
    }

    if observed.keys_missing {
        let name = gb.metadata.name.clone().unwrap_or_default();
        let message = format!(
            "the key Secret {name}-keys is gone, and the data this bot stored needs its keys: restore the Secret from a backup (kubectl apply -f <backup of {name}-keys>), or accept losing what was encrypted with: kubectl annotate gb {name} {ACCEPT}=<date>; until then nothing is applied",
            ACCEPT = "generalbots.io/accept-key-loss"
        );
        set(
            types::KEYS_READY,
            false,
            reasons::KEYS_MISSING,
            message.clone(),
        );
        set(
            types::READY,
            false,
            reasons::KEYS_MISSING,
            truncate(message),
        );
        return status;
    }

    let (available, workload_ok, workload_message) = workload(gb, observed.deployment);
    set(
        types::WORKLOAD_AVAILABLE,
        workload_ok,
        if workload_ok {
            reasons::MINIMUM_REPLICAS_AVAILABLE
        } else {
            reasons::PROGRESSING
        },
        workload_message.clone(),
    );
    set(
        types::NETWORK_ISOLATED,
        true,
        reasons::POLICIES_APPLIED,
        "default deny in both directions; ingress only from the configured peers, egress only to DNS and the declared services".to_owned(),
    );
    let clear: Vec<&str> = declared_services(&gb.spec)
        .iter()
        .filter(|s| s.endpoint.tls.mode == TlsMode::Disabled)
        .map(|s| s.kind.field())
        .collect();
    if clear.is_empty() {
        set(
            types::ENCRYPTED_IN_TRANSIT,
            true,
            reasons::ALL_SERVICES_TLS,
            "every declared service is reached over TLS with full verification".to_owned(),
        );
    } else {
        set(
            types::ENCRYPTED_IN_TRANSIT,
            false,
            reasons::TLS_DISABLED,
            format!(
                "traffic is in clear to {}: set tls.mode to VerifyFull there",
                clear.join(", ")
            ),
        );
    }
    if let Some(certs) = observed.certificates {
        status.certificates = certs.to_vec();
        if certs.iter().any(|c| c.name == "serving") {
            let soonest = certs
                .iter()
                .map(|c| c.not_after.as_str())
                .min()
                .unwrap_or_default();
            set(
                types::CERTIFICATES_READY,
                true,
                reasons::CERTIFICATES_CURRENT,
                format!("every certificate is issued; the first expires at {soonest}"),
            );
        } else {
            set(
                types::CERTIFICATES_READY,
                false,
                reasons::CERTIFICATES_MISSING,
                "the serving certificate is not issued yet".to_owned(),
            );
        }
    }
    if let Some(keys) = observed.keys {
        status.key_rings = keys.rings.clone();
        if keys.blocked.is_empty() {
            set(
                types::KEYS_READY,
                true,
                reasons::KEYS_CURRENT,
                "every key ring is current or rotating normally".to_owned(),
            );
        } else {
            let why = keys
                .blocked
                .iter()
                .map(|(ring, reason)| format!("{ring}: {reason}"))
                .collect::<Vec<_>>()
                .join("; ");
            set(
                types::KEYS_READY,
                false,
                reasons::ROTATION_BLOCKED,
                truncate(why),
            );
        }
    }
    status.available_replicas = Some(available);
    if workload_ok {
        set(
            types::READY,
            true,
            reasons::RECONCILED,
            format!(
                "the bot server is available and isolated; its replicas share sessions and rate limits through the {}",
                shared_state_of(gb)
            ),
        );
    } else {
        set(types::READY, false, reasons::PROGRESSING, workload_message);
    }
    status.next_rotation = crate::rotation::due::next_rotation(gb, &status);
    status
}

/// Available pods, whether that is enough, and a message saying so.
fn workload(gb: &GeneralBot, deployment: Option<&Deployment>) -> (i32, bool, String) {
    let want = gb.spec.server.replicas;
    let Some(d) = deployment else {
        return (0, false, "waiting for the Deployment to appear".to_owned());
    };
    let st = d.status.clone().unwrap_or_default();
    let available = st.available_replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let current = st.observed_generation >= d.metadata.generation;
    if !current || updated < want {
        return (
            available,
            false,
            format!("rolling out: {updated} of {want} pods updated, {available} available"),
        );
    }
    if available < want {
        return (
            available,
            false,
            format!("{available} of {want} pods available"),
        );
    }
    (
        available,
        true,
        format!("{available} of {want} pods available"),
    )
}

/// The API server caps a condition message at 32768 bytes; keep ours far shorter.
fn truncate(mut message: String) -> String {
    const MAX: usize = 1024;
    if message.len() > MAX {
        let mut cut = MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// A condition observed at `now`.
pub fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// Puts `new` in the list, keeping the old `lastTransitionTime` when the status did not
/// change, and the list in a stable order (by type).
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    if let Some(old) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        if old.status == new.status {
            new.last_transition_time = old.last_transition_time.clone();
        }
        *old = new;
    } else {
        conditions.push(new);
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    }
}

/// The condition of the given type, if present.
pub fn find<'a>(status: &'a GeneralBotStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{mk_available_deployment, mk_gb, t};

    #[test]
    fn invalid_spec_sets_ready_false_with_the_field() {
        let gb = mk_gb("bot");
        let problems = vec![SpecProblem {
            field: "spec.services.postgres.credentialsSecret.name".to_owned(),
            message: "Secret \"pg\" not found".to_owned(),
        }];
        let st = compute_status(
            &gb,
            &Observed {
                problems: &problems,
                deployment: None,
                keys: None,
                certificates: None,
                keys_missing: false,
            },
            &t(0),
        );
        let ready = find(&st, types::READY).unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason, reasons::INVALID_SPEC);
        assert!(
            ready
                .message
                .contains("spec.services.postgres.credentialsSecret.name")
        );
        assert_eq!(st.observed_generation, Some(1));
    }

    #[test]
    fn available_deployment_makes_ready() {
        let gb = mk_gb("bot");
        let d = mk_available_deployment(&gb);
        let st = compute_status(
            &gb,
            &Observed {
                problems: &[],
                deployment: Some(&d),
                keys: None,
                certificates: None,
                keys_missing: false,
            },
            &t(0),
        );
        assert_eq!(find(&st, types::READY).unwrap().status, "True");
        assert_eq!(st.available_replicas, Some(2));
        assert_eq!(st.image_digest, None, "a tag only: no digest");
        assert_eq!(
            st.shared_state.as_deref(),
            Some("database"),
            "no cache declared"
        );
    }

    #[test]
    fn a_pinned_image_shows_its_digest() {
        let mut gb = mk_gb("bot");
        let digest = format!("sha256:{}", "ab".repeat(32));
        gb.spec.server.image = format!("registry.example.com:5000/bots/server:1.2@{digest}");
        let st = compute_status(&gb, &Observed::default(), &t(0));
        assert_eq!(st.image_digest.as_deref(), Some(digest.as_str()));
    }

    #[test]
    fn transition_time_changes_only_when_status_flips() {
        let mut gb = mk_gb("bot");
        let d = mk_available_deployment(&gb);
        let obs = Observed {
            problems: &[],
            deployment: Some(&d),
            keys: None,
            certificates: None,
            keys_missing: false,
        };
        let first = compute_status(&gb, &obs, &t(0));
        gb.status = Some(first.clone());
        let second = compute_status(&gb, &obs, &t(100));
        assert_eq!(
            first, second,
            "an unchanged world computes an identical status"
        );

        gb.status = Some(second);
        let third = compute_status(
            &gb,
            &Observed {
                problems: &[],
                deployment: None,
                keys: None,
                certificates: None,
                keys_missing: false,
            },
            &t(200),
        );
        let ready = find(&third, types::READY).unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.last_transition_time, t(200));
        let net = find(&third, types::NETWORK_ISOLATED).unwrap();
        assert_eq!(
            net.last_transition_time,
            t(0),
            "unflipped condition keeps its time"
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(2000);
        let cut = truncate(long);
        assert!(cut.len() <= 1024 + '…'.len_utf8());
    }
}
