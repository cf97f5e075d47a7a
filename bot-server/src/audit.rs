//! The audit log: every security event the guide lists, appended to a hash-chained
//! table (each row stores sha256(previous hash ‖ canonical row), signed with a keyed
//! MAC under the active HMAC key) and written as a JSON log line; verification walks
//! the chain and names the first row that does not fit. Without the key, whoever can
//! write to the database cannot rewrite the chain and sign it again; a row signed by a
//! key since retired is vouched for by the first later row signed by a held key, whose
//! hash covers it.
//! The table is append-only in the database, appends from every replica are serialized
//! there and retried, the chain head is published (so a truncation shows), reads are
//! paged, and anonymous floods are aggregated.

use std::time::Duration;

use generalbot_crds::contract::{AuditHead, AuditMark};

use crate::crypto::keyring::{SymmetricRing, hmac32};
use crate::crypto::store::KeyStore;
use crate::shared::Shared;
use crate::store::{AuditRow, Store, StoreError};

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The kinds of events the guide requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A login or token exchange, successful or not.
    AuthAttempt,
    /// An authenticated user tried something their role forbids.
    AuthorizationFailure,
    /// Stored data was read.
    DataRead,
    /// Stored data was written.
    DataWrite,
    /// Configuration or keys changed.
    ConfigChange,
    /// An administrator acted.
    AdminAction,
    /// An API call that changes state.
    ApiCall,
    /// Something hostile: token reuse, lockout, rate limiting.
    SecurityViolation,
}

impl AuditKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthAttempt => "auth_attempt",
            Self::AuthorizationFailure => "authorization_failure",
            Self::DataRead => "data_read",
            Self::DataWrite => "data_write",
            Self::ConfigChange => "config_change",
            Self::AdminAction => "admin_action",
            Self::ApiCall => "api_call",
            Self::SecurityViolation => "security_violation",
        }
    }
}

/// What failed in the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Storage failed.
    #[error("audit storage: {0}")]
    Store(#[from] StoreError),
    /// The chain is broken.
    #[error("audit chain broken at row {seq}: the row or one before it was altered or removed")]
    ChainBroken {
        /// The first row that does not fit.
        seq: i64,
    },
    /// A row's MAC does not verify under the key it names.
    #[error(
        "audit row {seq} is not signed by the key it names: the chain was rewritten without the key"
    )]
    BadSignature {
        /// The row.
        seq: i64,
    },
    /// The last row is not signed by a key the server holds.
    #[error(
        "the audit chain's last row ({seq}) is not signed by a key this server holds: it could have been forged"
    )]
    HeadUnsigned {
        /// The row.
        seq: i64,
    },
}

/// The canonical bytes of a row (everything but its hashes), as JSON.
pub fn canonical(r: &AuditRow) -> String {
    serde_json::json!([r.seq, r.at, r.kind, r.actor, r.outcome, r.detail]).to_string()
}

/// sha256(prev_hash ‖ canonical row), hex.
pub fn chain_hash(prev_hash: &str, r: &AuditRow) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(canonical(r).as_bytes());
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The MAC of a chain hash under an HMAC key, hex.
pub fn sign(key: &[u8; 32], hash: &str) -> String {
    let mut data = b"generalbot audit v1\0".to_vec();
    data.extend_from_slice(hash.as_bytes());
    hmac32(key, &data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a row is signed by a key of `ring`: `Some(true)` verified, `Some(false)` a
/// held key that does not verify it (forged), `None` unsigned or signed by a key no
/// longer held.
pub fn signed_by(ring: &SymmetricRing, r: &AuditRow) -> Option<bool> {
    let key = ring.get(&r.mac_key)?;
    Some(sign(key, &r.hash) == r.mac)
}

/// Checks `rows`, which follow row `after` whose hash is `prev`: each links to the one
/// before it, and each signed by a key of `ring` verifies.
pub fn verify_from(
    after: i64,
    prev: &str,
    rows: &[AuditRow],
    ring: &SymmetricRing,
) -> Result<(), AuditError> {
    let mut prev = prev.to_owned();
    for (expected_seq, r) in (after + 1..).zip(rows) {
        if r.seq != expected_seq || r.prev_hash != prev || chain_hash(&prev, r) != r.hash {
            return Err(AuditError::ChainBroken { seq: r.seq });
        }
        if signed_by(ring, r) == Some(false) {
            return Err(AuditError::BadSignature { seq: r.seq });
        }
        prev = r.hash.clone();
    }
    Ok(())
}

/// Appends before giving up on a row (the JSON log line is written first, always).
const APPEND_ATTEMPTS: u32 = 4;

/// Largest page the admin API returns.
pub const MAX_PAGE: i64 = 1000;

/// Appends audit events.
#[derive(Debug)]
pub struct Audit {
    store: Store,
    keys: KeyStore,
    alerts: Option<std::sync::Arc<crate::notify::Notifier>>,
    enabled: bool,
    shared: Option<Shared>,
    failures: prometheus_client::metrics::counter::Counter,
}

/// One verified page of the audit log.
#[derive(Debug, serde::Serialize)]
pub struct Page {
    /// The rows, in order.
    pub rows: Vec<AuditRow>,
    /// The sequence number to ask for next (`after`), when there may be more.
    pub next_after: Option<i64>,
}

impl Audit {
    /// An audit log over `store`, rows signed with the active key of `keys`' HMAC ring;
    /// when not `enabled` events are only logged. With `shared`, anonymous events are
    /// aggregated (see [`Audit::record`]); `failures` counts appends that failed after
    /// every retry.
    pub fn new(
        store: Store,
        keys: KeyStore,
        enabled: bool,
        shared: Option<Shared>,
        failures: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Self {
            store,
            keys,
            alerts: None,
            enabled,
            shared,
            failures,
        }
    }

    /// With the security events the guide lists mailed to the administrators.
    pub fn with_alerts(mut self, alerts: Option<std::sync::Arc<crate::notify::Notifier>>) -> Self {
        self.alerts = alerts;
        self
    }

    /// Records an event. `detail` must never hold secrets or message text. Failures are
    /// retried, then logged and counted, not returned: an audit outage must not hide the
    /// original outcome.
    ///
    /// An anonymous event (a flood of failed logins or unknown tokens) is written to the
    /// table at its 1st, 2nd, 4th, 8th, … occurrence per kind, outcome and minute, with
    /// the count so far: a flood writes a few rows, not one per request, and every event
    /// is still in the JSON log.
    pub async fn record(
        &self,
        kind: AuditKind,
        actor: &str,
        outcome: &str,
        detail: serde_json::Value,
    ) {
        tracing::info!(
            target: "audit",
            kind = kind.as_str(),
            actor,
            outcome,
            detail = %detail,
            "audit event"
        );
        if let Some(alerts) = &self.alerts
            && crate::notify::is_alert(kind, outcome)
        {
            let (alerts, outcome, detail) = (alerts.clone(), outcome.to_owned(), detail.clone());
            tokio::spawn(async move { alerts.security_event(kind, &outcome, &detail).await });
        }
        if !self.enabled {
            return;
        }
        let mut detail = detail;
        if actor == "anonymous"
            && let Some(shared) = &self.shared
        {
            let key = format!("audit-anonymous:{}:{outcome}", kind.as_str());
            match shared.hit(&key, Duration::from_secs(60)).await {
                Ok(hit) if !hit.count.is_power_of_two() => return,
                Ok(hit) => {
                    if let Some(map) = detail.as_object_mut() {
                        map.insert("occurrences_this_minute".to_owned(), hit.count.into());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "counting anonymous audit events"),
            }
        }
        let mut wait = Duration::from_millis(25);
        for attempt in 1..=APPEND_ATTEMPTS {
            match self.append(kind, actor, outcome, &detail).await {
                Ok(()) => return,
                Err(e) if attempt < APPEND_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "audit append failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    self.failures.inc();
                    tracing::error!(error = %e, kind = kind.as_str(), "audit append failed after every retry");
                }
            }
        }
    }

    async fn append(
        &self,
        kind: AuditKind,
        actor: &str,
        outcome: &str,
        detail: &serde_json::Value,
    ) -> Result<(), AuditError> {
        let at = jiff::Timestamp::now().to_string();
        let keys = self.keys.current();
        self.store
            .append_audit(|tail| {
                let (seq, prev) = tail.unwrap_or((0, GENESIS.to_owned()));
                let mut row = AuditRow {
                    seq: seq + 1,
                    at,
                    kind: kind.as_str().to_owned(),
                    actor: actor.to_owned(),
                    outcome: outcome.to_owned(),
                    detail: detail.to_string(),
                    prev_hash: prev,
                    hash: String::new(),
                    mac_key: String::new(),
                    mac: String::new(),
                };
                row.hash = chain_hash(&row.prev_hash, &row);
                if let Some((id, key)) = keys.hmac.active() {
                    row.mac_key = id.to_owned();
                    row.mac = sign(key, &row.hash);
                }
                row
            })
            .await?;
        Ok(())
    }

    /// The chain head: the last row's sequence number, hash and signature (`0` and the
    /// genesis hash for an empty log), and with `at`, row `at` as stored now. A head
    /// that goes back, or a recorded row that changed or went, means the log was
    /// truncated or rewritten; an unsigned head could be forged.
    pub async fn head(&self, at: Option<i64>) -> Result<AuditHead, AuditError> {
        let ring = &self.keys.current().hmac;
        let mut head = match self.store.audit_head_row().await? {
            Some(r) => AuditHead {
                seq: r.seq,
                signed: signed_by(ring, &r) == Some(true),
                hash: r.hash,
                mac_key: r.mac_key,
                at: None,
            },
            None => AuditHead {
                seq: 0,
                hash: GENESIS.to_owned(),
                mac_key: String::new(),
                signed: true,
                at: None,
            },
        };
        if let Some(seq) = at {
            head.at = if seq == 0 {
                Some(GENESIS.to_owned())
            } else {
                self.store.audit_hash(seq).await?
            }
            .map(|hash| AuditMark { seq, hash });
        }
        Ok(head)
    }

    /// Up to `limit` rows after sequence number `after`, checked against each other and
    /// against the row they follow.
    pub async fn page(&self, after: i64, limit: i64) -> Result<Page, AuditError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let after = after.max(0);
        let prev = if after == 0 {
            GENESIS.to_owned()
        } else {
            self.store
                .audit_hash(after)
                .await?
                .ok_or(AuditError::ChainBroken { seq: after })?
        };
        let rows = self.store.audit_page(after, limit).await?;
        verify_from(after, &prev, &rows, &self.keys.current().hmac)?;
        let next_after = (i64::try_from(rows.len()).unwrap_or(0) == limit)
            .then(|| rows.last().map(|r| r.seq))
            .flatten();
        Ok(Page { rows, next_after })
    }

    /// Every row, after checking the whole chain a page at a time and that its last
    /// row is signed by a key this server holds (which vouches for every row before).
    pub async fn read_verified(&self) -> Result<Vec<AuditRow>, AuditError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.page(after, MAX_PAGE).await?;
            out.extend(page.rows);
            match page.next_after {
                Some(n) => after = n,
                None => break,
            }
        }
        match out.last() {
            Some(last) if signed_by(&self.keys.current().hmac, last) != Some(true) => {
                Err(AuditError::HeadUnsigned { seq: last.seq })
            }
            _ => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;

    #[tokio::test]
    async fn chain_verifies_and_detects_tampering() {
        let store = Store::connect(&DatabaseConfig::Url(zeroize::Zeroizing::new(
            "sqlite::memory:".into(),
        )))
        .await
        .unwrap();
        let keys = KeyStore::new(crate::auth::service::tests::keys());
        let audit = Audit::new(store.clone(), keys.clone(), true, None, Default::default());
        for i in 0..4 {
            audit
                .record(
                    AuditKind::AuthAttempt,
                    "u1",
                    "failure",
                    serde_json::json!({"n": i}),
                )
                .await;
        }
        assert_eq!(audit.read_verified().await.unwrap().len(), 4);
        // The database refuses changes and deletions.
        for sql in [
            "UPDATE audit_log SET outcome = 'success' WHERE seq = 2",
            "DELETE FROM audit_log WHERE seq = 3",
        ] {
            let refused = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
            assert!(refused.to_string().contains("append-only"), "{refused}");
        }
        // Someone who can drop the triggers is still caught by the chain.
        for t in ["audit_log_no_update", "audit_log_no_delete"] {
            sqlx::query(&format!("DROP TRIGGER {t}"))
                .execute(store.pool())
                .await
                .unwrap();
        }
        sqlx::query("UPDATE audit_log SET outcome = 'success' WHERE seq = 2")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(matches!(
            audit.read_verified().await,
            Err(AuditError::ChainBroken { seq: 2 })
        ));
        // Deleting a row is caught too.
        sqlx::query("UPDATE audit_log SET outcome = 'failure' WHERE seq = 2")
            .execute(store.pool())
            .await
            .unwrap();
        audit.read_verified().await.unwrap();
        sqlx::query("DELETE FROM audit_log WHERE seq = 3")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(matches!(
            audit.read_verified().await,
            Err(AuditError::ChainBroken { seq: 4 })
        ));
    }

    #[tokio::test]
    async fn a_chain_rewritten_without_the_key_is_caught_and_a_retired_key_is_vouched_for() {
        let store = Store::connect(&DatabaseConfig::Url(zeroize::Zeroizing::new(
            "sqlite::memory:".into(),
        )))
        .await
        .unwrap();
        let keys = KeyStore::new(crate::auth::service::tests::keys());
        let audit = Audit::new(store.clone(), keys.clone(), true, None, Default::default());
        for i in 0..3 {
            audit
                .record(
                    AuditKind::AdminAction,
                    "u1",
                    "success",
                    serde_json::json!({"n": i}),
                )
                .await;
        }
        let rows = audit.read_verified().await.unwrap();
        assert!(rows.iter().all(|r| !r.mac.is_empty()));
        let head = audit.head(Some(2)).await.unwrap();
        assert_eq!((head.seq, head.signed), (3, true));
        assert_eq!(head.at.unwrap().hash, rows[1].hash);
        assert_eq!(audit.head(Some(9)).await.unwrap().at, None, "no row 9");

        // Whoever can write to the database (triggers dropped) rewrites row 2 and
        // recomputes every hash after it, but cannot sign them.
        for t in ["audit_log_no_update", "audit_log_no_delete"] {
            sqlx::query(&format!("DROP TRIGGER {t}"))
                .execute(store.pool())
                .await
                .unwrap();
        }
        let mut forged = rows.clone();
        forged[1].outcome = "failure".into();
        for i in 1..forged.len() {
            forged[i].prev_hash = forged[i - 1].hash.clone();
            forged[i].hash = chain_hash(&forged[i].prev_hash, &forged[i]);
        }
        let rewrite = |r: &AuditRow, mac_key: &str| {
            let (store, r, mac_key) = (store.clone(), r.clone(), mac_key.to_owned());
            async move {
                sqlx::query("UPDATE audit_log SET outcome = $1, prev_hash = $2, hash = $3, mac_key = $4 WHERE seq = $5")
                    .bind(&r.outcome)
                    .bind(&r.prev_hash)
                    .bind(&r.hash)
                    .bind(&mac_key)
                    .bind(r.seq)
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
        };
        for r in &forged[1..] {
            rewrite(r, &r.mac_key).await;
        }
        assert!(matches!(
            audit.read_verified().await,
            Err(AuditError::BadSignature { seq: 2 })
        ));
        // Naming a key the server does not hold does not help: the head is unsigned.
        for r in &forged[1..] {
            rewrite(r, "k-unknown").await;
        }
        assert!(matches!(
            audit.read_verified().await,
            Err(AuditError::HeadUnsigned { seq: 3 })
        ));
        assert!(!audit.head(None).await.unwrap().signed);

        // A key since retired: rows it signed are vouched for by a later row signed
        // by a held key.
        let store = Store::connect(&DatabaseConfig::Url(zeroize::Zeroizing::new(
            "sqlite::memory:".into(),
        )))
        .await
        .unwrap();
        let mut k = crate::auth::service::tests::keys();
        let keys = KeyStore::new(k.clone());
        let audit = Audit::new(store.clone(), keys.clone(), true, None, Default::default());
        audit
            .record(
                AuditKind::ConfigChange,
                "system",
                "success",
                serde_json::json!({}),
            )
            .await;
        k.hmac = SymmetricRing::single(zeroize::Zeroizing::new([9u8; 32]));
        keys.replace(k);
        audit
            .read_verified()
            .await
            .expect_err("the head's key is gone");
        audit
            .record(
                AuditKind::ConfigChange,
                "system",
                "success",
                serde_json::json!({}),
            )
            .await;
        assert_eq!(audit.read_verified().await.unwrap().len(), 2);
    }
}
