//! The audit log: every security event the guide lists, appended to a hash-chained
//! table (each row stores sha256(previous hash ‖ canonical row)) and written as a JSON
//! log line; verification walks the chain and names the first row that does not fit.

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

/// Checks every link of the chain.
pub fn verify_chain(rows: &[AuditRow]) -> Result<(), AuditError> {
    let mut prev = GENESIS.to_owned();
    for (expected_seq, r) in (1..).zip(rows) {
        if r.seq != expected_seq || r.prev_hash != prev || chain_hash(&prev, r) != r.hash {
            return Err(AuditError::ChainBroken { seq: r.seq });
        }
        prev = r.hash.clone();
    }
    Ok(())
}

/// Appends audit events.
#[derive(Debug)]
pub struct Audit {
    store: Store,
    enabled: bool,
    lock: tokio::sync::Mutex<()>,
}

impl Audit {
    /// An audit log over `store`; when not `enabled` events are only logged.
    pub fn new(store: Store, enabled: bool) -> Self {
        Self {
            store,
            enabled,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Records an event. `detail` must never hold secrets or message text. Failures
    /// are logged, not returned: an audit outage must not hide the original outcome.
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
        if let Err(e) = self.append(kind, actor, outcome, detail).await {
            tracing::error!(error = %e, kind = kind.as_str(), "audit append failed");
        }
    }

    async fn append(
        &self,
        kind: AuditKind,
        actor: &str,
        outcome: &str,
        detail: serde_json::Value,
    ) -> Result<(), AuditError> {
        let _guard = self.lock.lock().await;
        let (seq, prev) = self
            .store
            .audit_tail()
            .await?
            .unwrap_or((0, GENESIS.to_owned()));
        let mut row = AuditRow {
            seq: seq + 1,
            at: jiff::Timestamp::now().to_string(),
            kind: kind.as_str().to_owned(),
            actor: actor.to_owned(),
            outcome: outcome.to_owned(),
            detail: detail.to_string(),
            prev_hash: prev,
            hash: String::new(),
        };
        row.hash = chain_hash(&row.prev_hash, &row);
        self.store.insert_audit(&row).await?;
        Ok(())
    }

    /// Every row, after checking the chain.
    pub async fn read_verified(&self) -> Result<Vec<AuditRow>, AuditError> {
        let rows = self.store.audit_rows().await?;
        verify_chain(&rows)?;
        Ok(rows)
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
        let audit = Audit::new(store.clone(), true);
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
