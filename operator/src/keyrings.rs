//! The key-ring Secret of one GeneralBot: which rings it holds, how each rotates, and
//! the plan for one reconcile. Pure apart from key generation: given the Secret as read,
//! the time and the consumers' report, [`plan`] returns the Secret to write (every ring
//! change and its recorded phase together, so one update carries a whole step) and what
//! the status should say.
//!
//! The phase of each ring is recorded in the annotation `generalbots.io/rotation.<ring>`
//! and the last honoured force value in `generalbots.io/rotate-honoured.<ring>`; the
//! earliest time any ring needs looking at again is in `generalbots.io/keys-next-step`,
//! so a steady reconcile can skip reading the Secret's data at all.

use std::collections::BTreeMap;

use generalbot_crds::GeneralBot;
use generalbot_crds::contract::KeyUsageReport;
use generalbot_crds::contract::key_files;
use generalbot_crds::v1alpha1::KeyRingStatus;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use zeroize::Zeroizing;

use crate::rotation::keygen::{KeyGenError, KeyKind, generate};
use crate::rotation::machine::{
    Inputs, Phase, Policy, RetireWhen, Step, StepError, Usage, apply, decide,
};
use crate::rotation::ring::{Ring, RingError};
use crate::rotation::triggers::{force_value, forced};
use crate::status::KeysObserved;

/// Annotation prefix recording each ring's phase.
pub const PHASE_ANNOTATION: &str = "generalbots.io/rotation.";
/// Annotation prefix recording the force value each ring honoured last.
pub const HONOURED_ANNOTATION: &str = "generalbots.io/rotate-honoured.";
/// Annotation with the earliest time any ring needs a step.
pub const NEXT_STEP_ANNOTATION: &str = "generalbots.io/keys-next-step";
/// Annotation with what the status says of the rings (key ids, ages, phases, what is
/// blocked): no key material. Written only when it changes.
pub const STATUS_ANNOTATION: &str = "generalbots.io/keys-status";

/// How long a changed Secret takes to reach every pod (the kubelet syncs mounted Secrets
/// within about a minute) and be reloaded, unless the operator is told otherwise.
pub const DEFAULT_PROPAGATION: SignedDuration = SignedDuration::from_secs(120);

/// Extra time an old signing key stays after the longest life of what it made.
pub const GRACE: SignedDuration = SignedDuration::from_mins(5);

/// A ring of the key Secret and how it rotates.
#[derive(Clone, Debug)]
pub struct RingSpec {
    /// Ring name, as in the force annotation and the status.
    pub name: &'static str,
    /// File in the Secret.
    pub file: &'static str,
    /// What kind of key it holds.
    pub kind: KeyKind,
    /// How it rotates.
    pub policy: Policy,
}

/// The rings of a GeneralBot. `propagation` is how long a changed Secret takes to reach
/// every pod and be reloaded.
pub fn ring_specs(gb: &GeneralBot, propagation: SignedDuration) -> Vec<RingSpec> {
    let keys = &gb.spec.security.keys;
    let settings = &gb.spec.server.settings;
    let days = |d: u32| SignedDuration::from_hours(24 * i64::from(d));
    let secs = |s: u32| SignedDuration::from_secs(i64::from(s));
    let records = |period| Policy {
        period,
        propagation,
        retire_when: RetireWhen::NoRecordsLeft,
    };
    vec![
        RingSpec {
            name: "jwt",
            file: key_files::JWT,
            kind: KeyKind::Signing(keys.jwt_algorithm),
            policy: Policy {
                period: days(keys.jwt_rotation_days),
                propagation,
                // No token signed with the old key outlives this.
                retire_when: RetireWhen::After(secs(settings.access_token_ttl_seconds) + GRACE),
            },
        },
        RingSpec {
            name: "data",
            file: key_files::DATA,
            kind: KeyKind::Symmetric,
            policy: records(days(keys.data_key_rotation_days)),
        },
        RingSpec {
            name: "field",
            file: key_files::FIELD,
            kind: KeyKind::Symmetric,
            policy: records(days(keys.field_key_rotation_days)),
        },
        RingSpec {
            name: "hmac",
            file: key_files::HMAC,
            kind: KeyKind::Symmetric,
            // Refresh tokens and blind indexes are HMACs under this key: the bot server
            // reports how many remain under each key id.
            policy: records(days(keys.hmac_rotation_days)),
        },
    ]
}

/// Planning the key Secret failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A stored ring is damaged.
    #[error("the key Secret holds a damaged ring: {0}")]
    Ring(#[from] RingError),
    /// A new key could not be made.
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
    /// The random source failed.
    #[error("reading the operating system's random source: {0}")]
    Random(#[from] getrandom::Error),
}

impl From<StepError<KeyGenError>> for KeysError {
    fn from(e: StepError<KeyGenError>) -> Self {
        match e {
            StepError::Ring(r) => Self::Ring(r),
            StepError::KeyGen(k) => Self::KeyGen(k),
        }
    }
}

/// What one reconcile should do with the key Secret.
#[derive(Debug, Default)]
pub struct Plan {
    /// The Secret's new data and annotations, when anything changed.
    pub write: Option<Changes>,
    /// The steps taken, as `(ring, what happened)`, for events.
    pub done: Vec<(String, String)>,
    /// Rings whose rotation cannot go on, and why.
    pub blocked: Vec<(String, String)>,
    /// The status of every ring.
    pub status: Vec<KeyRingStatus>,
    /// When to look again.
    pub next: Option<Timestamp>,
}

/// New data and annotations for the key Secret (merged over what is there).
#[derive(Default)]
pub struct Changes {
    /// Files to set.
    pub data: BTreeMap<String, ByteString>,
    /// Annotations to set.
    pub annotations: BTreeMap<String, String>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("files", &self.data.keys().collect::<Vec<_>>())
            .field("annotations", &self.annotations)
            .finish()
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for v in self.data.values_mut() {
            v.0.zeroize();
        }
    }
}

/// What the consumers said about stored records under `key` of `ring`. A report that
/// does not cover the ring at all says nothing (the key is kept); within a covered ring,
/// a key id that is absent has no record left.
pub fn usage_of(report: Option<&KeyUsageReport>, ring: &str, key: &str) -> Usage {
    match report.and_then(|r| r.rings.get(ring)) {
        Some(keys) => Usage::Records(keys.get(key).copied().unwrap_or(0)),
        None => Usage::Unknown,
    }
}

/// The plan for `secret` (as read, with its data) at `now`.
pub fn plan(
    gb: &GeneralBot,
    secret: &Secret,
    specs: &[RingSpec],
    now: Timestamp,
    window_open: bool,
    report: Option<&KeyUsageReport>,
) -> Result<Plan, KeysError> {
    let data = secret.data.clone().unwrap_or_default();
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let force = force_value(gb);
    let mut out = Plan::default();
    let mut changes = Changes::default();
    let mut next: Option<Timestamp> = None;
    // The earliest step due, leaving out rechecks of blocked rings: those happen on every
    // requeue anyway, and recording their ever-moving time would write in a steady state.
    let mut recorded_next: Option<Timestamp> = None;

    for spec in specs {
        let phase_key = format!("{PHASE_ANNOTATION}{}", spec.name);
        let honoured_key = format!("{HONOURED_ANNOTATION}{}", spec.name);
        let is_forced = forced(
            force,
            annotations.get(&honoured_key).map(String::as_str),
            spec.name,
        );
        let stored = data.get(spec.file).map(|b| Ring::parse(spec.name, &b.0));
        let (mut ring, mut phase) = match stored {
            Some(ring) => (
                ring?,
                annotations
                    .get(&phase_key)
                    .and_then(|p| serde_json::from_str::<Phase>(p).ok())
                    .unwrap_or_default(),
            ),
            None => {
                // A ring this Secret does not hold yet (a new Secret, or one made by an
                // older operator): start it. A key this new already meets any force.
                let ring = Ring::new(
                    spec.name,
                    spec.kind.algorithm(),
                    generate(spec.name, spec.kind, now)?,
                    now,
                );
                changes
                    .data
                    .insert(spec.file.to_owned(), ByteString(ring.to_json().to_vec()));
                changes
                    .annotations
                    .insert(phase_key.clone(), phase_json(&Phase::Idle));
                if let (true, Some(value)) = (is_forced, force) {
                    changes
                        .annotations
                        .insert(honoured_key.clone(), value.to_owned());
                }
                out.done.push((
                    spec.name.to_owned(),
                    format!("created key {}", ring.file.active),
                ));
                let until = ring
                    .active_since()
                    .and_then(|t| t.checked_add(spec.policy.period).ok())
                    .unwrap_or(now);
                next = Some(next.map_or(until, |n| n.min(until)));
                recorded_next = Some(recorded_next.map_or(until, |n| n.min(until)));
                out.status.push(ring_status(&ring, &Phase::Idle));
                continue;
            }
        };
        let usage = match &phase {
            Phase::Activated { old, .. } => usage_of(report, spec.name, old),
            _ => Usage::Unknown,
        };
        let inputs = Inputs {
            now,
            policy: &spec.policy,
            forced: is_forced,
            window_open,
            usage,
        };
        let step = decide(&ring, &phase, &inputs);
        let mut again = None;
        let mut blocked = false;
        match &step {
            Step::Wait { until } => again = Some(*until),
            Step::Blocked { reason, until } => {
                out.blocked.push((spec.name.to_owned(), reason.clone()));
                again = Some(*until);
                blocked = true;
            }
            _ => {}
        }
        let what = describe(&step);
        if let Some(new_phase) = apply(&mut ring, &step, now, || {
            generate(spec.name, spec.kind, now)
        })? {
            if let (Step::Add, true, Some(value)) = (&step, is_forced, force) {
                changes
                    .annotations
                    .insert(honoured_key.clone(), value.to_owned());
            }
            changes
                .data
                .insert(spec.file.to_owned(), ByteString(ring.to_json().to_vec()));
            changes
                .annotations
                .insert(phase_key.clone(), phase_json(&new_phase));
            if let Some(what) = what {
                out.done.push((spec.name.to_owned(), what));
            }
            phase = new_phase;
            // Look again soon: the next step may already be due.
            again = Some(now);
            blocked = false;
        }
        if let Some(t) = again {
            next = Some(next.map_or(t, |n| n.min(t)));
            if !blocked {
                recorded_next = Some(recorded_next.map_or(t, |n| n.min(t)));
            }
        }
        out.status.push(ring_status(&ring, &phase));
    }

    if !data.contains_key(key_files::OPS_TOKEN) {
        let mut token = Zeroizing::new([0u8; 32]);
        getrandom::fill(token.as_mut())?;
        use base64::Engine;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.as_ref());
        changes.data.insert(
            key_files::OPS_TOKEN.to_owned(),
            ByteString(text.into_bytes()),
        );
    }
    if let Some(n) = recorded_next {
        let value = n.to_string();
        if annotations.get(NEXT_STEP_ANNOTATION) != Some(&value) {
            changes
                .annotations
                .insert(NEXT_STEP_ANNOTATION.to_owned(), value);
        }
    }
    let summary = serde_json::to_string(&KeysObserved {
        rings: out.status.clone(),
        blocked: out.blocked.clone(),
    })
    .unwrap_or_default();
    if annotations.get(STATUS_ANNOTATION) != Some(&summary) {
        changes
            .annotations
            .insert(STATUS_ANNOTATION.to_owned(), summary);
    }
    out.next = next;
    if !changes.data.is_empty() || !changes.annotations.is_empty() {
        out.write = Some(changes);
    }
    Ok(out)
}

fn ring_status(ring: &Ring, phase: &Phase) -> KeyRingStatus {
    KeyRingStatus {
        name: ring.name.clone(),
        active_key_id: ring.file.active.clone(),
        active_since: ring.active().map(|k| k.created.clone()).unwrap_or_default(),
        keys: u32::try_from(ring.file.keys.len()).unwrap_or(u32::MAX),
        rotation_phase: phase.name().map(str::to_owned),
    }
}

fn describe(step: &Step) -> Option<String> {
    match step {
        Step::Add => Some("added a new key".to_owned()),
        Step::Activate { new } => Some(format!("activated key {new}")),
        Step::Retire { old } => Some(format!("retired key {old}")),
        Step::Wait { .. } | Step::Blocked { .. } => None,
    }
}

fn phase_json(p: &Phase) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| "{\"phase\":\"idle\"}".to_owned())
}

/// What the key Secret's annotations record of its rings, without reading its data.
pub fn recorded(secret_annotations: &BTreeMap<String, String>) -> Option<KeysObserved> {
    secret_annotations
        .get(STATUS_ANNOTATION)
        .and_then(|s| serde_json::from_str(s).ok())
}

/// Whether the key Secret needs its data read this reconcile: a step may be due, a
/// force value is new, a ring is blocked (its recheck is never recorded), or a ring
/// has no recorded phase or status yet.
pub fn due(
    gb: &GeneralBot,
    secret_annotations: &BTreeMap<String, String>,
    specs: &[RingSpec],
    now: Timestamp,
) -> bool {
    let force = force_value(gb);
    let next_due = secret_annotations
        .get(NEXT_STEP_ANNOTATION)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_none_or(|t| t <= now);
    let blocked_or_unrecorded = recorded(secret_annotations).is_none_or(|r| !r.blocked.is_empty());
    next_due
        || blocked_or_unrecorded
        || specs.iter().any(|s| {
            !secret_annotations.contains_key(&format!("{PHASE_ANNOTATION}{}", s.name))
                || forced(
                    force,
                    secret_annotations
                        .get(&format!("{HONOURED_ANNOTATION}{}", s.name))
                        .map(String::as_str),
                    s.name,
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_the_report_does_not_cover_keeps_its_old_key() {
        let report = KeyUsageReport {
            generated_at: String::new(),
            rings: BTreeMap::from([
                ("field".to_owned(), BTreeMap::from([("k1".to_owned(), 3)])),
                ("data".to_owned(), BTreeMap::new()),
            ]),
            reencrypting: false,
        };
        assert_eq!(usage_of(Some(&report), "field", "k1"), Usage::Records(3));
        assert_eq!(usage_of(Some(&report), "field", "k0"), Usage::Records(0));
        assert_eq!(usage_of(Some(&report), "data", "k9"), Usage::Records(0));
        assert_eq!(usage_of(Some(&report), "hmac", "k1"), Usage::Unknown);
        assert_eq!(usage_of(None, "field", "k1"), Usage::Unknown);
    }
}
