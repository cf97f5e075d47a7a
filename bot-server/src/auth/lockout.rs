//! Failed-login policy, pure: what a failure at a given count means (nothing, an audit
//! alert, or a lockout). The counts live in the users table (per account) and in the
//! shared counters (per client address, [`crate::shared`]).

use std::time::Duration;

/// What a failed login leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Nothing beyond counting.
    Counted,
    /// The alert threshold was reached: write an audit alert.
    Alert,
    /// The lockout threshold was reached: lock.
    Lock,
}

/// Thresholds.
#[derive(Debug, Clone, Copy)]
pub struct FailurePolicy {
    /// Failures that raise an alert.
    pub alert_at: u32,
    /// Failures that lock.
    pub lock_at: u32,
    /// How long a lock lasts.
    pub lock_for: Duration,
}

impl FailurePolicy {
    /// The outcome of the `count`th consecutive failure (1-based).
    pub fn outcome(&self, count: u64) -> FailureOutcome {
        if count >= u64::from(self.lock_at) {
            FailureOutcome::Lock
        } else if count == u64::from(self.alert_at) {
            FailureOutcome::Alert
        } else {
            FailureOutcome::Counted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_then_lock_at_exact_thresholds() {
        let p = FailurePolicy {
            alert_at: 5,
            lock_at: 10,
            lock_for: Duration::from_secs(60),
        };
        let outcomes: Vec<_> = (1..=10).map(|n| p.outcome(n)).collect();
        assert_eq!(outcomes[3], FailureOutcome::Counted);
        assert_eq!(outcomes[4], FailureOutcome::Alert);
        assert_eq!(outcomes[8], FailureOutcome::Counted);
        assert_eq!(outcomes[9], FailureOutcome::Lock);
    }
}
