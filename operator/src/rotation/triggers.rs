//! What starts a rotation besides the schedule, and what holds disruptive steps back:
//! the force annotation and maintenance windows.
//!
//! Force: `generalbots.io/rotate: <ring>[,<ring>…][@<tag>]` on the GeneralBot, where a
//! ring is `jwt`, `data`, `field`, `hmac`, `ca` or `all`. Each ring honours a given value
//! once: the operator records the value it honoured, so the annotation left in place
//! does not rotate again; change the tag (`all@2026-11-22`, `jwt@INC-42`) to rotate
//! again.

use std::str::FromStr;

use croner::Cron;
use generalbot_crds::v1alpha1::MaintenanceWindow;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The annotation that forces a rotation.
pub const FORCE_ANNOTATION: &str = "generalbots.io/rotate";

/// The force annotation's value on a GeneralBot, if any.
pub fn force_value(gb: &generalbot_crds::GeneralBot) -> Option<&str> {
    gb.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(FORCE_ANNOTATION))
        .map(String::as_str)
}

/// Whether the annotation value asks to rotate `ring`.
pub fn asks_for(value: &str, ring: &str) -> bool {
    let targets = value.split_once('@').map_or(value, |(t, _)| t);
    targets
        .split(',')
        .map(str::trim)
        .any(|v| v == ring || v == "all")
}

/// Whether `ring` has a forced rotation not yet honoured: the annotation asks for it and
/// the value differs from the one last honoured.
pub fn forced(annotation: Option<&str>, honoured: Option<&str>, ring: &str) -> bool {
    match annotation {
        Some(value) if asks_for(value, ring) => honoured != Some(value),
        _ => false,
    }
}

/// A maintenance window that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "spec.security.maintenanceWindows[{index}].schedule {schedule:?} is not a five-field cron expression: {reason}"
)]
pub struct WindowError {
    /// Position in the list.
    pub index: usize,
    /// The expression.
    pub schedule: String,
    /// What the parser said.
    pub reason: String,
}

/// Parses every window's schedule, so a bad one is reported before it matters.
pub fn check_windows(windows: &[MaintenanceWindow]) -> Result<(), WindowError> {
    for (index, w) in windows.iter().enumerate() {
        Cron::from_str(&w.schedule).map_err(|e| WindowError {
            index,
            schedule: w.schedule.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Whether a disruptive step may run at `now`: always when no window is configured,
/// otherwise only inside one (cron times are UTC).
pub fn window_open(windows: &[MaintenanceWindow], now: Timestamp) -> bool {
    if windows.is_empty() {
        return true;
    }
    let zoned = now.to_zoned(TimeZone::UTC);
    windows.iter().any(|w| {
        let Ok(cron) = Cron::from_str(&w.schedule) else {
            return false;
        };
        let Ok(opened) = cron.find_previous_occurrence(&zoned, true) else {
            return false;
        };
        let length = SignedDuration::from_mins(i64::from(w.duration_minutes));
        opened
            .timestamp()
            .checked_add(length)
            .is_ok_and(|closes| now < closes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn saturday_night() -> Vec<MaintenanceWindow> {
        vec![MaintenanceWindow {
            schedule: "0 2 * * 6".to_owned(),
            duration_minutes: 120,
        }]
    }

    #[test]
    fn no_window_means_always_open() {
        assert!(window_open(&[], at("2026-11-18T12:00:00Z")));
    }

    #[test]
    fn windows_open_and_close_on_schedule() {
        let w = saturday_night();
        // 2026-11-21 is a Saturday.
        assert!(!window_open(&w, at("2026-11-21T01:59:00Z")));
        assert!(window_open(&w, at("2026-11-21T02:00:00Z")));
        assert!(window_open(&w, at("2026-11-21T03:59:00Z")));
        assert!(!window_open(&w, at("2026-11-21T04:00:00Z")));
        assert!(!window_open(&w, at("2026-11-18T02:30:00Z")));
    }

    #[test]
    fn bad_schedules_are_reported_with_their_place() {
        let w = vec![
            saturday_night()[0].clone(),
            MaintenanceWindow {
                schedule: "61 * * * *".to_owned(),
                duration_minutes: 5,
            },
        ];
        let e = check_windows(&w).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.to_string().contains("maintenanceWindows[1]"));
    }

    #[test]
    fn force_is_honoured_once_per_value() {
        assert!(forced(Some("jwt"), None, "jwt"));
        assert!(!forced(Some("jwt"), Some("jwt"), "jwt"));
        assert!(forced(Some("all"), None, "data"));
        assert!(forced(Some("data,hmac"), None, "hmac"));
        assert!(!forced(Some("data"), None, "jwt"));
        assert!(!forced(None, None, "jwt"));
        assert!(
            forced(Some("jwt@2"), Some("jwt@1"), "jwt"),
            "a new tag rotates again"
        );
        assert!(!forced(Some("jwt@2"), None, "data"));
    }
}
