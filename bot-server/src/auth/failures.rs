//! Failed sign-ins: the audit row, the count per client address (alert, then lock), and
//! what an account's already counted attempt leads to (alert, then lock, and the user
//! told by mail); and telling a user who signed in from a network they never used.

use std::net::IpAddr;

use super::lockout::FailureOutcome;
use super::service::{AuthService, ip_failures_key, now};
use crate::audit::AuditKind;

impl AuthService {
    /// Records a failed login: the audit row, the client address's count, and, for an
    /// account, what its already counted attempt (`account`: id and count) leads to.
    pub(super) async fn fail(&self, account: Option<(&str, u64)>, ip: IpAddr, reason: &str) {
        let user_id = account.map(|(id, _)| id);
        let policy = self.failure_policy();
        self.metrics.failed_logins.inc();
        let actor = user_id.unwrap_or("anonymous");
        self.audit
            .record(
                AuditKind::AuthAttempt,
                actor,
                "failure",
                serde_json::json!({"reason": reason, "ip": ip.to_string()}),
            )
            .await;
        let ip_count = match self.shared.hit(&ip_failures_key(ip), policy.lock_for).await {
            Ok(hit) => hit.count,
            Err(e) => {
                tracing::error!(error = %e, "counting a failed login of a client address");
                0
            }
        };
        if policy.outcome(ip_count) == FailureOutcome::Alert {
            self.audit
                .record(
                    AuditKind::SecurityViolation,
                    "anonymous",
                    "ip_alert",
                    serde_json::json!({"ip": ip.to_string(), "failures": ip_count}),
                )
                .await;
        }
        if policy.outcome(ip_count) == FailureOutcome::Lock && ip_count == u64::from(policy.lock_at)
        {
            self.metrics.lockouts.inc();
            self.audit
                .record(
                    AuditKind::SecurityViolation,
                    "anonymous",
                    "ip_locked",
                    serde_json::json!({"ip": ip.to_string(), "failures": ip_count}),
                )
                .await;
        }
        let Some((id, count)) = account else { return };
        match policy.outcome(count) {
            FailureOutcome::Counted => {}
            FailureOutcome::Alert => {
                self.audit
                    .record(
                        AuditKind::SecurityViolation,
                        id,
                        "alert",
                        serde_json::json!({"failures": count}),
                    )
                    .await;
            }
            FailureOutcome::Lock => {
                let until =
                    now() + i64::try_from(policy.lock_for.as_secs()).unwrap_or(i64::MAX / 2);
                if let Err(e) = self.store.lock_user(id, until).await {
                    tracing::error!(error = %e, "locking an account");
                }
                self.metrics.lockouts.inc();
                self.audit
                    .record(
                        AuditKind::SecurityViolation,
                        id,
                        "account_locked",
                        serde_json::json!({"failures": count, "until": until}),
                    )
                    .await;
                if let Some(n) = self.notifier.clone() {
                    let id = id.to_owned();
                    tokio::spawn(async move { n.account_locked(&id, until).await });
                }
            }
        }
    }

    /// Tells a user by mail when they signed in from a network they never used (not at
    /// their first sign-in), in the background.
    pub(super) fn tell_signed_in(&self, user_id: &str, ip: IpAddr) {
        if let Some(n) = self.notifier.clone() {
            let id = user_id.to_owned();
            tokio::spawn(async move { n.signed_in(&id, ip).await });
        }
    }
}
