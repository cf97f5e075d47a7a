//! The audit log: append-only rows chained by hash (the database refuses changes, and
//! appends from every replica are serialized in it), read in pages.

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
    /// Id of the HMAC key that signed the hash (`""` for rows from before signing).
    #[serde(default)]
    pub mac_key: String,
    /// HMAC-SHA256 of the hash under that key, hex.
    #[serde(default)]
    pub mac: String,
}

impl Store {
    /// The last audit row (the chain head).
    pub async fn audit_head_row(&self) -> Result<Option<AuditRow>, StoreError> {
        let row = sqlx::query("SELECT seq, at, kind, actor, outcome, detail, prev_hash, hash, mac_key, mac FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(q("reading the audit head"))?;
        row.as_ref()
            .map(row_of)
            .transpose()
            .map_err(q("reading the audit head"))
    }

    /// Appends the row `make` builds from the chain head (sequence and hash, `None` for
    /// an empty log), in one transaction. On PostgreSQL the transaction first takes an
    /// advisory lock, so appends from every replica are serialized in the database and
    /// the chain never forks.
    pub async fn append_audit(
        &self,
        make: impl FnOnce(Option<(i64, String)>) -> AuditRow,
    ) -> Result<AuditRow, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(q("appending to the audit log"))?;
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(AUDIT_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(q("locking the audit log"))?;
        }
        let r = make(tail(&mut *tx).await?);
        sqlx::query("INSERT INTO audit_log (seq, at, kind, actor, outcome, detail, prev_hash, hash, mac_key, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(r.seq)
            .bind(&r.at)
            .bind(&r.kind)
            .bind(&r.actor)
            .bind(&r.outcome)
            .bind(&r.detail)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(&r.mac_key)
            .bind(&r.mac)
            .execute(&mut *tx)
            .await
            .map_err(q("appending to the audit log"))?;
        tx.commit().await.map_err(q("appending to the audit log"))?;
        Ok(r)
    }

    /// Up to `limit` audit rows after sequence number `after`, in order.
    pub async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query("SELECT seq, at, kind, actor, outcome, detail, prev_hash, hash, mac_key, mac FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("reading the audit log"))?;
        rows.iter()
            .map(row_of)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("reading the audit log"))
    }

    /// The hash of row `seq` (the chain's start, `None`, for 0).
    pub async fn audit_hash(&self, seq: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("reading the audit log"))?;
        row.map(|r| r.try_get("hash"))
            .transpose()
            .map_err(q("reading the audit log"))
    }
}

/// The chain head, read through `db` (the pool, or the append's transaction).
async fn tail<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
) -> Result<Option<(i64, String)>, StoreError> {
    sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(db)
        .await
        .map_err(q("reading the audit tail"))?
        .map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
        .transpose()
        .map_err(q("reading the audit tail"))
}

/// The advisory lock that serializes audit appends across replicas.
const AUDIT_LOCK: i64 = 7_243_913;

fn row_of(r: &sqlx::any::AnyRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        kind: r.try_get("kind")?,
        actor: r.try_get("actor")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        mac_key: r.try_get("mac_key")?,
        mac: r.try_get("mac")?,
    })
}
