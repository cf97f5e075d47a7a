//! The audit log: every security event the guide lists, appended to a hash-chained
//! table (each row stores sha256(previous hash ‖ canonical row)) and written as a JSON
//! log line; verification walks the chain and names the first row that does not fit.
//! The table is append-only in the database, appends from every replica are serialized
//! there and retried, the chain head is published (so a truncation shows), reads are
//! paged, and anonymous floods are aggregated.

use std::time::Duration;

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

/// Checks `rows`, which follow row `after` whose hash is `prev`.
pub fn verify_from(after: i64, prev: &str, rows: &[AuditRow]) -> Result<(), AuditError> {
    let mut prev = prev.to_owned();
    for (expected_seq, r) in (after + 1..).zip(rows) {
        if r.seq != expected_seq || r.prev_hash != prev || chain_hash(&prev, r) != r.hash {
            return Err(AuditError::ChainBroken { seq: r.seq });
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
    /// An audit log over `store`; when not `enabled` events are only logged. With
    /// `shared`, anonymous events are aggregated (see [`Audit::record`]); `failures`
    /// counts appends that failed after every retry.
    pub fn new(
        store: Store,
        enabled: bool,
        shared: Option<Shared>,
        failures: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Self {
            store,
            enabled,
            shared,
            failures,
        }
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
                };
                row.hash = chain_hash(&row.prev_hash, &row);
                row
            })
            .await?;
        Ok(())
    }

    /// The chain head: the last row's sequence number and hash (`0` and the genesis
    /// hash for an empty log). A head that goes back, or changes at the same sequence
    /// number, means the log was truncated or rewritten.
    pub async fn head(&self) -> Result<(i64, String), AuditError> {
        Ok(self
            .store
            .audit_tail()
            .await?
            .unwrap_or((0, GENESIS.to_owned())))
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
        verify_from(after, &prev, &rows)?;
        let next_after = (i64::try_from(rows.len()).unwrap_or(0) == limit)
            .then(|| rows.last().map(|r| r.seq))
            .flatten();
        Ok(Page { rows, next_after })
    }

    /// Every row, after checking the whole chain a page at a time.
    pub async fn read_verified(&self) -> Result<Vec<AuditRow>, AuditError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.page(after, MAX_PAGE).await?;
            out.extend(page.rows);
            match page.next_after {
                Some(n) => after = n,
                None => return Ok(out),
            }
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
        let audit = Audit::new(store.clone(), true, None, Default::default());
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
}
