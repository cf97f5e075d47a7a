//! The rotation machine driven by an injected clock through years of rotations, with
//! crashes injected before and after every step, and property tests of the ring
//! invariants.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::machine::{Inputs, Phase, Policy, RetireWhen, Step, Usage, apply, decide};
use super::ring::{NewKey, Ring};

const DAY: SignedDuration = SignedDuration::from_hours(24);

fn start() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

struct Fresh(u64);

impl Fresh {
    fn key(&mut self) -> NewKey {
        self.0 += 1;
        NewKey {
            id: format!("k{}", self.0),
            material: Zeroizing::new(vec![self.0 as u8; 32]),
        }
    }
}

/// A crash injected around a step.
#[derive(Clone, Copy, Debug)]
enum Crash {
    None,
    /// The process dies after deciding, before the write.
    BeforeWrite,
    /// The process dies right after the write (before status, events, anything else).
    AfterWrite,
}

/// What survives a crash: the Secret (ring and phase written together).
#[derive(Clone, Debug)]
struct Stored {
    ring: Ring,
    phase: Phase,
}

/// A bot server's stored records per key id, re-encrypted to the active key a batch at
/// a time.
#[derive(Default)]
struct Records(BTreeMap<String, u64>);

impl Records {
    fn write(&mut self, active: &str, n: u64) {
        *self.0.entry(active.to_owned()).or_default() += n;
    }

    fn reencrypt(&mut self, active: &str, batch: u64) {
        let mut moved = 0;
        for (id, n) in self.0.iter_mut() {
            if id != active {
                let m = (*n).min(batch - moved);
                *n -= m;
                moved += m;
            }
        }
        *self.0.entry(active.to_owned()).or_default() += moved;
        self.0.retain(|_, n| *n > 0);
    }

    fn under(&self, id: &str) -> u64 {
        self.0.get(id).copied().unwrap_or(0)
    }
}

/// Drives one ring for `days` in steps of `tick`, crashing as `crash(i)` says, and
/// checks the invariants after every step. Returns the number of completed rotations.
fn simulate(policy: &Policy, days: i64, tick: SignedDuration, crash: impl Fn(u64) -> Crash) -> u32 {
    let mut fresh = Fresh(0);
    let mut stored = Stored {
        ring: Ring::new("data", None, fresh.key(), start()),
        phase: Phase::Idle,
    };
    let mut records = Records::default();
    // Tokens: (signing key id, valid until).
    let mut tokens: Vec<(String, Timestamp)> = Vec::new();
    let token_life = SignedDuration::from_mins(15);
    let mut rotations = 0;
    let mut now = start();
    let end = now.checked_add(DAY * days as i32).unwrap();
    let mut i = 0u64;
    while now < end {
        i += 1;
        let active = stored.ring.file.active.clone();
        records.write(&active, 3);
        records.reencrypt(&active, 50);
        tokens.retain(|(_, until)| *until > now);
        tokens.push((active.clone(), now.checked_add(token_life).unwrap()));

        let usage = match &stored.phase {
            Phase::Activated { old, .. } => Usage::Records(records.under(old)),
            _ => Usage::Unknown,
        };
        let inputs = Inputs {
            now,
            policy,
            forced: false,
            window_open: true,
            usage,
        };
        let step = decide(&stored.ring, &stored.phase, &inputs);
        match crash(i) {
            Crash::BeforeWrite => {}
            c => {
                let mut ring = stored.ring.clone();
                if let Some(phase) =
                    apply(&mut ring, &step, now, || Ok::<_, ()>(fresh.key())).unwrap()
                {
                    if matches!(step, Step::Retire { .. }) {
                        rotations += 1;
                    }
                    stored = Stored { ring, phase };
                }
                let _ = c; // AfterWrite: the state is already stored; nothing else is lost.
            }
        }

        // Invariants after every step, crash or not.
        stored.ring.check().unwrap();
        match policy.retire_when {
            // An encryption ring: no key goes while a record is stored under it.
            RetireWhen::NoRecordsLeft => {
                for (id, n) in &records.0 {
                    assert!(
                        *n == 0 || stored.ring.contains(id),
                        "key {id} was retired with {n} records under it"
                    );
                }
            }
            // A signing ring: no key goes while a token signed with it is valid.
            RetireWhen::After(_) => {
                for (id, until) in &tokens {
                    assert!(
                        *until <= now || stored.ring.contains(id),
                        "key {id} was retired while a token signed with it was valid"
                    );
                }
            }
        }
        now = now.checked_add(tick).unwrap();
    }
    rotations
}

fn data_policy() -> Policy {
    Policy {
        period: DAY * 90,
        propagation: SignedDuration::from_mins(2),
        retire_when: RetireWhen::NoRecordsLeft,
    }
}

fn jwt_policy() -> Policy {
    Policy {
        period: DAY * 30,
        propagation: SignedDuration::from_mins(2),
        retire_when: RetireWhen::After(SignedDuration::from_mins(15 + 5)),
    }
}

#[test]
fn three_years_of_rotations_without_a_crash() {
    let tick = SignedDuration::from_mins(30);
    let data = simulate(&data_policy(), 3 * 365, tick, |_| Crash::None);
    assert!(data >= 10, "data rotated {data} times in three years");
    let jwt = simulate(&jwt_policy(), 3 * 365, tick, |_| Crash::None);
    assert!(jwt >= 35, "jwt rotated {jwt} times in three years");
}

#[test]
fn a_crash_before_or_after_every_step_resumes_consistently() {
    let tick = SignedDuration::from_mins(30);
    for policy in [data_policy(), jwt_policy()] {
        let clean = simulate(&policy, 400, tick, |_| Crash::None);
        // Crash at every other step, alternating before and after the write.
        let crashed = simulate(&policy, 400, tick, |i| match i % 4 {
            0 => Crash::BeforeWrite,
            2 => Crash::AfterWrite,
            _ => Crash::None,
        });
        assert!(
            crashed >= clean - 1,
            "{crashed} rotations with crashes, {clean} without"
        );
    }
}

#[test]
fn retirement_waits_for_the_bot_servers_report() {
    let mut fresh = Fresh(0);
    let mut ring = Ring::new("field", None, fresh.key(), start());
    let old = ring.file.active.clone();
    let policy = data_policy();
    let now = start().checked_add(DAY * 91).unwrap();
    let inputs = |usage| Inputs {
        now,
        policy: &policy,
        forced: false,
        window_open: true,
        usage,
    };
    let step = decide(&ring, &Phase::Idle, &inputs(Usage::Unknown));
    assert_eq!(step, Step::Add);
    let phase = apply(&mut ring, &step, now, || Ok::<_, ()>(fresh.key()))
        .unwrap()
        .unwrap();
    let later = Inputs {
        now: now.checked_add(SignedDuration::from_mins(3)).unwrap(),
        ..inputs(Usage::Unknown)
    };
    let step = decide(&ring, &phase, &later);
    let phase = apply(&mut ring, &step, later.now, || Ok::<_, ()>(fresh.key()))
        .unwrap()
        .unwrap();
    assert!(matches!(phase, Phase::Activated { .. }));
    // Right after activation a clean report does not count: a pod may not have
    // loaded the new key yet.
    assert!(matches!(
        decide(
            &ring,
            &phase,
            &Inputs {
                usage: Usage::Records(0),
                ..later.clone()
            }
        ),
        Step::Wait { .. }
    ));
    let settled = |usage| Inputs {
        now: later
            .now
            .checked_add(SignedDuration::from_mins(10))
            .unwrap(),
        ..inputs(usage)
    };
    for usage in [Usage::Unknown, Usage::Records(7)] {
        match decide(&ring, &phase, &settled(usage)) {
            Step::Blocked { reason, .. } => assert!(reason.contains(&old), "{reason}"),
            other => panic!("retired without a clean report: {other:?}"),
        }
    }
    assert_eq!(
        decide(&ring, &phase, &settled(Usage::Records(0))),
        Step::Retire { old }
    );
}

#[test]
fn activation_waits_for_a_maintenance_window_and_force_starts_early() {
    let mut fresh = Fresh(0);
    let ring = Ring::new("jwt", Some("RS256"), fresh.key(), start());
    let policy = jwt_policy();
    let soon = start().checked_add(DAY).unwrap();
    let base = Inputs {
        now: soon,
        policy: &policy,
        forced: false,
        window_open: false,
        usage: Usage::Unknown,
    };
    assert!(matches!(
        decide(&ring, &Phase::Idle, &base),
        Step::Wait { .. }
    ));
    let forced = Inputs {
        forced: true,
        ..base.clone()
    };
    assert_eq!(decide(&ring, &Phase::Idle, &forced), Step::Add);
    let mut ring2 = ring.clone();
    ring2.add(fresh.key(), start());
    let added = Phase::Added {
        new: ring2.file.keys[1].id.clone(),
        since: start(),
    };
    assert!(matches!(
        decide(&ring2, &added, &base),
        Step::Blocked { .. }
    ));
    let open = Inputs {
        window_open: true,
        ..base
    };
    assert!(matches!(
        decide(&ring2, &added, &open),
        Step::Activate { .. }
    ));
}

#[derive(Clone, Debug)]
enum Op {
    Add,
    Activate(usize),
    Retire(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Add),
        (0usize..8).prop_map(Op::Activate),
        (0usize..8).prop_map(Op::Retire),
    ]
}

proptest! {
    /// Whatever sequence of changes is asked for, the ring keeps exactly one active key
    /// that is in the ring, and a refused change leaves it as it was.
    #[test]
    fn ring_invariants_hold_under_any_sequence(ops in proptest::collection::vec(op(), 0..40)) {
        let mut fresh = Fresh(0);
        let mut ring = Ring::new("data", None, fresh.key(), start());
        for op in ops {
            let before = ring.clone();
            let ids: Vec<String> = ring.file.keys.iter().map(|k| k.id.clone()).collect();
            let result = match op {
                Op::Add => { ring.add(fresh.key(), start()); Ok(()) }
                Op::Activate(i) => ring.activate(ids.get(i).map_or("missing", String::as_str)),
                Op::Retire(i) => ring.retire(ids.get(i).map_or("missing", String::as_str)),
            };
            if result.is_err() {
                prop_assert_eq!(&ring, &before);
            }
            prop_assert!(ring.check().is_ok());
            prop_assert!(ring.active().is_some());
        }
    }

    /// The machine never asks to retire the active key or a key with records left, and
    /// retires the old key once none is left and the new one has propagated.
    #[test]
    fn machine_never_retires_what_is_needed(records in 0u64..5, hours in 0i64..5000) {
        let mut fresh = Fresh(0);
        let mut ring = Ring::new("data", None, fresh.key(), start());
        let old = ring.file.active.clone();
        let new = fresh.key();
        let new_id = new.id.clone();
        ring.add(new, start());
        ring.activate(&new_id).unwrap();
        let phase = Phase::Activated { old: old.clone(), new: new_id.clone(), since: start() };
        let policy = data_policy();
        let inputs = Inputs {
            now: start().checked_add(SignedDuration::from_hours(hours)).unwrap(),
            policy: &policy,
            forced: false,
            window_open: true,
            usage: Usage::Records(records),
        };
        match decide(&ring, &phase, &inputs) {
            Step::Retire { old: id } => {
                prop_assert_eq!(records, 0);
                prop_assert_ne!(id, new_id);
            }
            // It waits only while a record needs the old key, or until the new key has
            // reached every consumer (propagation).
            _ => prop_assert!(
                records > 0 || inputs.now < start().checked_add(policy.propagation).unwrap()
            ),
        }
    }
}
