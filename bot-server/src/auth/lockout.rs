//! Failed-login policy, pure: what a failure at a given count means (nothing, an audit
//! alert, or a lockout), and an in-memory per-IP counter with a window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Failed logins per client IP, across accounts (catches password spraying).
#[derive(Debug, Default)]
pub struct IpFailures {
    map: Mutex<HashMap<IpAddr, (u64, Instant)>>,
}

impl IpFailures {
    /// Counts a failure from `ip`; counts older than `window` restart.
    pub fn record(&self, ip: IpAddr, window: Duration, now: Instant) -> u64 {
        let mut map = match self.map.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= window {
            *entry = (0, now);
        }
        entry.0 += 1;
        entry.0
    }

    /// Whether `ip` is locked out at `now`.
    pub fn locked(&self, ip: IpAddr, policy: &FailurePolicy, now: Instant) -> bool {
        let map = match self.map.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.get(&ip).is_some_and(|(n, since)| {
            *n >= u64::from(policy.lock_at) && now.duration_since(*since) < policy.lock_for
        })
    }

    /// Clears `ip` after a successful login.
    pub fn clear(&self, ip: IpAddr) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&ip);
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

    #[test]
    fn ip_counter_locks_and_expires() {
        let p = FailurePolicy {
            alert_at: 2,
            lock_at: 3,
            lock_for: Duration::from_secs(60),
        };
        let f = IpFailures::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t = Instant::now();
        for _ in 0..2 {
            f.record(ip, p.lock_for, t);
        }
        assert!(!f.locked(ip, &p, t));
        assert_eq!(f.record(ip, p.lock_for, t), 3);
        assert!(f.locked(ip, &p, t));
        assert!(!f.locked(ip, &p, t + Duration::from_secs(61)));
    }
}
