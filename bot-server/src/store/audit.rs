//! The audit log: append-only rows chained by hash.

use sqlx::Row as _;

use super::{Store, StoreError, q};

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Event kind.
    pub kind: String,
    /// Who (user id, `anonymous`, `system`).
    pub actor: String,
    /// `success`, `failure`, `alert`, …
    pub outcome: String,
    /// JSON detail, never a secret.
    pub detail: String,
    /// Hash of the previous row (hex).
    pub prev_hash: String,
    /// sha256(prev_hash ‖ canonical row), hex.
    pub hash: String,
}

impl Store {
    /// The last audit row's sequence number and hash.
    pub async fn audit_tail(&self) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(q("reading the audit tail"))?;
        row.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
            .transpose()
            .map_err(q("reading the audit tail"))
    }

    /// Appends an audit row.
    pub async fn insert_audit(&self, r: &AuditRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (seq, at, kind, actor, outcome, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(r.seq)
            .bind(&r.at)
            .bind(&r.kind)
            .bind(&r.actor)
            .bind(&r.outcome)
            .bind(&r.detail)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(q("appending to the audit log"))
    }

    /// Every audit row in order.
    pub async fn audit_rows(&self) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query("SELECT seq, at, kind, actor, outcome, detail, prev_hash, hash FROM audit_log ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(q("reading the audit log"))?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    actor: r.try_get("actor")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("reading the audit log"))
    }
}
