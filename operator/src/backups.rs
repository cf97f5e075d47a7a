//! Whether a bot's backups are current, judged into the `BackupsReady` condition from
//! what the bucket holds (the newest backup's time, from its name), the newest backup
//! Job, and the schedule: a Job that failed after the newest backup is reported at
//! once; otherwise a backup is due at the first scheduled time after the newest one (or
//! after the bot was created, before the first), and overdue [`GRACE`] later. Pure; the
//! listing is [`crate::controller`]'s.

use std::str::FromStr as _;

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::database_tls::Judgement;

/// The condition type.
pub const CONDITION: &str = "BackupsReady";
/// How long after its scheduled time a backup may take to appear.
pub const GRACE: SignedDuration = SignedDuration::from_hours(2);

/// What the judge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The newest backup's time, if any.
    pub newest: Option<Timestamp>,
    /// When the bot was created.
    pub since: Timestamp,
    /// The newest backup Job, when it failed: its name, when it started, why.
    pub failed: Option<FailedJob>,
}

/// A backup Job that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJob {
    /// Its name.
    pub name: String,
    /// When it started.
    pub started: Timestamp,
    /// Its Failed condition's reason and message.
    pub why: String,
}

/// Judges `seen` at `now` against `schedule` (cron, UTC).
pub fn judge(schedule: &str, seen: &Seen, now: Timestamp) -> Judgement {
    let Ok(cron) = Cron::from_str(schedule) else {
        return Judgement::new(
            false,
            "InvalidSchedule",
            format!("spec.backup.schedule {schedule:?} is not a cron expression"),
        );
    };
    if let Some(f) = &seen.failed
        && seen.newest.is_none_or(|n| f.started > n)
    {
        return Judgement::new(
            false,
            "BackupFailed",
            format!(
                "the backup Job {} (started {}) failed: {}; see kubectl logs job/{}",
                f.name, f.started, f.why, f.name
            ),
        );
    }
    let from = seen.newest.unwrap_or(seen.since);
    let Ok(due) = cron.find_next_occurrence(&from.to_zoned(TimeZone::UTC), false) else {
        return Judgement::new(
            false,
            "InvalidSchedule",
            format!("spec.backup.schedule {schedule:?} never fires"),
        );
    };
    let due = due.timestamp();
    let overdue = now > due.checked_add(GRACE).unwrap_or(due);
    match (seen.newest, overdue) {
        (Some(newest), false) => Judgement::new(
            true,
            "Current",
            format!("the last backup is from {newest}; the next is due at {due}"),
        ),
        (Some(newest), true) => Judgement::new(
            false,
            "Overdue",
            format!(
                "the last backup is from {newest}, and one was due at {due}: see the backup Jobs (kubectl get jobs -l app.kubernetes.io/component=backup) and their pods' logs"
            ),
        ),
        (None, false) => Judgement::new(
            true,
            "FirstBackupPending",
            format!("no backup yet; the first is due at {due}"),
        ),
        (None, true) => Judgement::new(
            false,
            "Overdue",
            format!(
                "no backup in the bucket, and the first was due at {due}: see the backup Jobs (kubectl get jobs -l app.kubernetes.io/component=backup) and their pods' logs"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn current_pending_and_overdue() {
        let every_12h = "0 */12 * * *";
        let since = at("2026-11-30T01:00:00Z");
        let none = Seen {
            newest: None,
            since,
            failed: None,
        };
        let j = judge(every_12h, &none, at("2026-11-30T11:00:00Z"));
        assert_eq!((j.status, j.reason), ("True", "FirstBackupPending"));
        assert!(j.message.contains("2026-11-30T12:00:00Z"), "{}", j.message);
        let j = judge(every_12h, &none, at("2026-11-30T14:00:01Z"));
        assert_eq!((j.status, j.reason), ("False", "Overdue"));
        let taken = Seen {
            newest: Some(at("2026-11-30T12:00:40Z")),
            since,
            failed: None,
        };
        let j = judge(every_12h, &taken, at("2026-11-30T23:00:00Z"));
        assert_eq!((j.status, j.reason), ("True", "Current"));
        let j = judge(every_12h, &taken, at("2026-12-01T02:00:01Z"));
        assert_eq!((j.status, j.reason), ("False", "Overdue"));
        assert!(j.message.contains("2026-12-01T00:00:00Z"), "{}", j.message);
        let j = judge("not a schedule", &taken, at("2026-12-01T02:00:01Z"));
        assert_eq!((j.status, j.reason), ("False", "InvalidSchedule"));
        // A Job that failed after the newest backup is reported at once; one that failed
        // before it is history.
        let failed = |started: &str| Seen {
            failed: Some(FailedJob {
                name: "bot-backup-29012345".into(),
                started: at(started),
                why: "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
            }),
            ..taken.clone()
        };
        let j = judge(
            every_12h,
            &failed("2026-12-01T00:00:05Z"),
            at("2026-12-01T00:10:00Z"),
        );
        assert_eq!((j.status, j.reason), ("False", "BackupFailed"));
        assert!(
            j.message.contains("kubectl logs job/bot-backup-29012345"),
            "{}",
            j.message
        );
        let j = judge(
            every_12h,
            &failed("2026-11-30T00:00:05Z"),
            at("2026-11-30T23:00:00Z"),
        );
        assert_eq!((j.status, j.reason), ("True", "Current"));
    }
}
