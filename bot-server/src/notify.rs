//! Who is told what by mail (the `email` module): a user whose account was locked; a user
//! who signed in from a network they never used (not at their first sign-in); and every
//! administrator about the security events the guide lists (failed-login alerts and
//! lockouts, refresh-token reuse, privilege-escalation attempts), at most once per kind
//! of event every 10 minutes. Addresses are decrypted only to send; a body never holds a
//! secret (the audit detail it quotes never does).

use std::net::IpAddr;
use std::time::Duration;

use crate::audit::AuditKind;
use crate::crypto::field::{self, FieldContext};
use crate::crypto::store::KeyStore;
use crate::http::ratelimit::client_key;
use crate::mail::{Mail, Mailer};
use crate::shared::Shared;
use crate::store::Store;

/// How long a network stays known for a user.
const KNOWN_NETWORK: Duration = Duration::from_secs(90 * 24 * 3600);
/// At most one alert of a kind to the administrators in this time.
const ALERT_EVERY: Duration = Duration::from_secs(600);

/// The notifier.
#[derive(Debug)]
pub struct Notifier {
    store: Store,
    keys: KeyStore,
    shared: Shared,
    mailer: Mailer,
}

/// What the administrators are told about, by audit kind and outcome.
pub fn is_alert(kind: AuditKind, outcome: &str) -> bool {
    match kind {
        AuditKind::AuthorizationFailure => true,
        AuditKind::SecurityViolation => matches!(
            outcome,
            "alert" | "ip_alert" | "account_locked" | "ip_locked" | "refresh_token_reuse"
        ),
        _ => false,
    }
}

/// The subject and body of an alert to the administrators.
pub fn alert_text(kind: AuditKind, outcome: &str, detail: &serde_json::Value) -> (String, String) {
    let what = match (kind, outcome) {
        (AuditKind::AuthorizationFailure, _) => "a privilege escalation attempt (critical)",
        (_, "alert" | "ip_alert") => "repeated failed sign-ins (warning)",
        (_, "account_locked") => "an account locked after failed sign-ins",
        (_, "ip_locked") => "a client address locked after failed sign-ins",
        _ => "a refresh token used twice (its session was revoked)",
    };
    (
        format!("[GeneralBot] Security alert: {what}"),
        format!(
            "The bot server recorded {what}.\n\nEvent: {} / {outcome}\nDetail: {detail}\n\nThe audit log has the whole record (GET /api/admin/audit). Further alerts of this kind are held back for 10 minutes.\n",
            kind.as_str()
        ),
    )
}

impl Notifier {
    /// A notifier sending through `mailer`.
    pub fn new(store: Store, keys: KeyStore, shared: Shared, mailer: Mailer) -> Self {
        Self {
            store,
            keys,
            shared,
            mailer,
        }
    }

    async fn email_of(&self, user_id: &str, email_enc: &str) -> Option<String> {
        let keys = self.keys.current();
        let plain = field::decrypt(
            &keys.field,
            &FieldContext {
                table: "users",
                column: "email",
                row: user_id,
            },
            email_enc,
        )
        .ok()?;
        String::from_utf8(plain.to_vec())
            .ok()
            .filter(|e| !e.ends_with(".invalid"))
    }

    async fn email_of_user(&self, user_id: &str) -> Option<String> {
        let user = self.store.user_by_id(user_id).await.ok()??;
        self.email_of(&user.id, &user.email_enc).await
    }

    /// Tells a user their account was locked until `until` (unix seconds).
    pub async fn account_locked(&self, user_id: &str, until: i64) {
        let Some(to) = self.email_of_user(user_id).await else {
            return;
        };
        let until = jiff::Timestamp::from_second(until)
            .map(|t| t.to_string())
            .unwrap_or_default();
        self.mailer.send(Mail {
            to,
            subject: "[GeneralBot] Your account was locked".into(),
            body: format!(
                "Too many failed sign-ins: your account is locked until {until}.\n\nIf it was not you, someone is guessing your password: change it once the lock ends, and tell your administrator.\n"
            ),
        });
    }

    /// Tells a user who signed in from a network they never used before (an IPv4
    /// address, or an IPv6 /64), unless it is their first sign-in.
    pub async fn signed_in(&self, user_id: &str, ip: IpAddr) {
        let network = client_key(ip);
        let first_ever = self
            .shared
            .hit(&format!("sign-ins:{user_id}"), KNOWN_NETWORK)
            .await
            .map(|h| h.count == 1);
        let new_network = self
            .shared
            .hit(&format!("network:{user_id}:{network}"), KNOWN_NETWORK)
            .await
            .map(|h| h.count == 1);
        if !matches!((first_ever, new_network), (Ok(false), Ok(true))) {
            return;
        }
        let Some(to) = self.email_of_user(user_id).await else {
            return;
        };
        self.mailer.send(Mail {
            to,
            subject: "[GeneralBot] Sign-in from a new network".into(),
            body: format!(
                "Your account signed in from {network}, a network it had not used.\n\nIf it was not you, sign out everywhere, change your password and tell your administrator.\n"
            ),
        });
    }

    /// Tells every administrator about a security event, at most once per kind every
    /// 10 minutes.
    pub async fn security_event(&self, kind: AuditKind, outcome: &str, detail: &serde_json::Value) {
        if !is_alert(kind, outcome) {
            return;
        }
        let key = format!("mail-alert:{}:{outcome}", kind.as_str());
        match self.shared.hit(&key, ALERT_EVERY).await {
            Ok(h) if h.count == 1 => {}
            _ => return,
        }
        let (subject, body) = alert_text(kind, outcome, detail);
        let admins = match self.store.admins().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "listing administrators for an alert");
                return;
            }
        };
        for (id, email_enc) in admins {
            if let Some(to) = self.email_of(&id, &email_enc).await {
                self.mailer.send(Mail {
                    to,
                    subject: subject.clone(),
                    body: body.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_events_alert_the_administrators() {
        assert!(is_alert(AuditKind::AuthorizationFailure, "denied"));
        for o in ["alert", "ip_alert", "account_locked", "ip_locked"] {
            assert!(is_alert(AuditKind::SecurityViolation, o), "{o}");
        }
        assert!(!is_alert(AuditKind::AuthAttempt, "failure"));
        assert!(!is_alert(
            AuditKind::SecurityViolation,
            "undecryptable_value"
        ));
        let (subject, body) = alert_text(
            AuditKind::AuthorizationFailure,
            "denied",
            &serde_json::json!({"path": "/api/admin/audit"}),
        );
        assert!(subject.contains("privilege escalation"));
        assert!(body.contains("/api/admin/audit"));
    }
}
