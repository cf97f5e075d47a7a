//! The rotation state machine, pure: given a ring, its recorded phase, the time and what
//! the consumers report, it says which single step comes next. The caller carries out a
//! step and records the new phase in the same write, so a crash at any point leaves
//! either the old state or the new one, and the next call resumes from there.
//!
//! A rotation is three steps, each only when it is safe:
//! 1. **add** the new key beside the old ones (still inactive);
//! 2. **activate** it once every consumer has had time to load it;
//! 3. **retire** the old key once nothing depends on it: no token signed with it can
//!    still be valid, or no stored record is encrypted under it, as the ring's policy
//!    says.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::ring::{NewKey, Ring, RingError};

/// Where a ring's rotation stands, as recorded on its Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum Phase {
    /// No rotation under way.
    #[default]
    Idle,
    /// `new` is in the ring, not yet active, since `since`.
    Added {
        /// The new key.
        new: String,
        /// When it was added.
        since: Timestamp,
    },
    /// `new` is active; `old` is kept until nothing depends on it.
    Activated {
        /// The previous active key.
        old: String,
        /// The new active key.
        new: String,
        /// When it became active.
        since: Timestamp,
    },
}

impl Phase {
    /// The phase name shown in the status.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Self::Idle => None,
            Self::Added { .. } => Some("Added"),
            Self::Activated { .. } => Some("Activated"),
        }
    }
}

/// What must be true before an old key may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetireWhen {
    /// After this long in the `Activated` phase: the longest life of anything made with
    /// the old key (a token, a refresh token) plus a grace period.
    After(SignedDuration),
    /// When the bot server reports no record left under the old key.
    NoRecordsLeft,
}

/// How one ring rotates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// How long a key stays active before the next rotation starts.
    pub period: SignedDuration,
    /// How long to wait after adding a key before making it active: the time for a
    /// changed Secret to reach every pod (the kubelet syncs mounted Secrets within about
    /// a minute) and for the bot server to reload it.
    pub propagation: SignedDuration,
    /// When the old key may be retired.
    pub retire_when: RetireWhen,
}

/// What the bot server said about stored records, for [`RetireWhen::NoRecordsLeft`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Usage {
    /// No report could be had (the bot server is not reachable or not ready).
    Unknown,
    /// Records that still need the key in question.
    Records(u64),
}

/// Everything a decision depends on besides the ring and its phase.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// The time.
    pub now: Timestamp,
    /// The ring's policy.
    pub policy: &'a Policy,
    /// A forced rotation was asked for and not yet honoured.
    pub forced: bool,
    /// Whether a disruptive step may run now (inside a maintenance window, or no
    /// windows configured).
    pub window_open: bool,
    /// Records under the old key, when the phase is `Activated`.
    pub usage: Usage,
}

/// The next step for a ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do until `until` (or a change of inputs).
    Wait {
        /// When to look again.
        until: Timestamp,
    },
    /// Add a new key; record `Added`.
    Add,
    /// Make `new` active; record `Activated`.
    Activate {
        /// The key to activate.
        new: String,
    },
    /// Remove `old`; record `Idle`.
    Retire {
        /// The key to remove.
        old: String,
    },
    /// The old key cannot go yet, for the reason given; look again at `until`.
    Blocked {
        /// Why.
        reason: String,
        /// When to look again.
        until: Timestamp,
    },
}

/// How soon to look again while blocked on the bot server's report.
pub const BLOCKED_RETRY: SignedDuration = SignedDuration::from_secs(60);

fn later(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// The next step for `ring` in `phase`.
pub fn decide(ring: &Ring, phase: &Phase, inputs: &Inputs<'_>) -> Step {
    let now = inputs.now;
    let policy = inputs.policy;
    match phase {
        Phase::Idle => {
            let since = ring.active_since().unwrap_or(Timestamp::UNIX_EPOCH);
            let due = later(since, policy.period);
            if inputs.forced || now >= due {
                Step::Add
            } else {
                Step::Wait { until: due }
            }
        }
        Phase::Added { new, since } => {
            if !ring.contains(new) {
                // The recorded key is gone (edited by hand): start again.
                return Step::Add;
            }
            let ready = later(*since, policy.propagation);
            if now < ready {
                Step::Wait { until: ready }
            } else if !inputs.window_open {
                Step::Blocked {
                    reason: "activating the new key waits for a maintenance window".to_owned(),
                    until: later(now, BLOCKED_RETRY),
                }
            } else {
                Step::Activate { new: new.clone() }
            }
        }
        Phase::Activated { old, since, .. } => {
            if !ring.contains(old) {
                return Step::Retire { old: old.clone() };
            }
            // Until every consumer has loaded the new active key, one may still be
            // making signatures or records under the old one: no report counts yet.
            let settled = later(*since, policy.propagation);
            if now < settled {
                return Step::Wait { until: settled };
            }
            match (&policy.retire_when, &inputs.usage) {
                (RetireWhen::After(d), _) => {
                    let free = later(*since, *d);
                    if now >= free {
                        Step::Retire { old: old.clone() }
                    } else {
                        Step::Wait { until: free }
                    }
                }
                (RetireWhen::NoRecordsLeft, Usage::Records(0)) => Step::Retire { old: old.clone() },
                (RetireWhen::NoRecordsLeft, Usage::Records(n)) => Step::Blocked {
                    reason: format!(
                        "{n} stored records still need key {old}; the bot server moves encrypted fields and indexes to the active key, and refresh tokens, attachments and backups leave as they are used or expire"
                    ),
                    until: later(now, BLOCKED_RETRY),
                },
                (RetireWhen::NoRecordsLeft, Usage::Unknown) => Step::Blocked {
                    reason: format!(
                        "waiting for the bot server to report that no record is left under key {old}"
                    ),
                    until: later(now, BLOCKED_RETRY),
                },
            }
        }
    }
}

/// Carries `step` out on `ring` at `now`, with `fresh` making the key an `Add` needs,
/// and returns the phase to record with it in the same write (`None` when the step
/// changes nothing).
pub fn apply<E>(
    ring: &mut Ring,
    step: &Step,
    now: Timestamp,
    fresh: impl FnOnce() -> Result<NewKey, E>,
) -> Result<Option<Phase>, StepError<E>> {
    match step {
        Step::Wait { .. } | Step::Blocked { .. } => Ok(None),
        Step::Add => {
            let key = fresh().map_err(StepError::KeyGen)?;
            let new = key.id.clone();
            ring.add(key, now);
            Ok(Some(Phase::Added { new, since: now }))
        }
        Step::Activate { new } => {
            let old = ring.file.active.clone();
            ring.activate(new).map_err(StepError::Ring)?;
            Ok(Some(Phase::Activated {
                old,
                new: new.clone(),
                since: now,
            }))
        }
        Step::Retire { old } => {
            ring.retire(old).map_err(StepError::Ring)?;
            Ok(Some(Phase::Idle))
        }
    }
}

/// A step that could not be carried out; the ring is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum StepError<E> {
    /// The ring refused the change.
    #[error(transparent)]
    Ring(RingError),
    /// No new key could be made.
    #[error("generating a new key: {0}")]
    KeyGen(E),
}
