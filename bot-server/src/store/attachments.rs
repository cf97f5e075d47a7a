//! Attachments as rows: what each file is (its encrypted name, type, size, the data key
//! that sealed it, when it expires), read and written as its owner under row-level
//! security; the expired ones and the per-key counts under the maintenance scope. The
//! files themselves are [`crate::objects::files`]'.

use sqlx::Row as _;

use super::{Store, StoreError, q, scope::MAINTENANCE};

/// One attachment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    /// Id (its file's name in storage).
    pub id: String,
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// The encrypted name the user gave it, if any.
    pub name_enc: Option<String>,
    /// Its checked content type.
    pub content_type: String,
    /// Its size in bytes (before sealing).
    pub size: i64,
    /// The data key that sealed it.
    pub key_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

const COLUMNS: &str =
    "id, conversation_id, name_enc, content_type, size, key_id, created_at, expires_at";

fn row_of(r: &sqlx::any::AnyRow) -> Result<AttachmentRow, sqlx::Error> {
    Ok(AttachmentRow {
        id: r.try_get("id")?,
        conversation_id: r.try_get("conversation_id")?,
        name_enc: r.try_get("name_enc")?,
        content_type: r.try_get("content_type")?,
        size: r.try_get("size")?,
        key_id: r.try_get("key_id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl Store {
    /// Records an attachment of `user_id` (whose file is already stored).
    pub async fn insert_attachment(
        &self,
        user_id: &str,
        a: &AttachmentRow,
    ) -> Result<(), StoreError> {
        self.scoped_execute(
            user_id,
            sqlx::query(&format!(
                "INSERT INTO attachments (user_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(user_id)
            .bind(&a.id)
            .bind(&a.conversation_id)
            .bind(&a.name_enc)
            .bind(&a.content_type)
            .bind(a.size)
            .bind(&a.key_id)
            .bind(a.created_at)
            .bind(a.expires_at),
        )
        .await
        .map(drop)
        .map_err(q("recording an attachment"))
    }

    /// An attachment of `user_id`, if it is theirs and has not expired at `now`.
    pub async fn attachment(
        &self,
        user_id: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<AttachmentRow>, StoreError> {
        let row = self
            .scoped_optional(
                user_id,
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM attachments WHERE id = $1 AND user_id = $2 AND expires_at > $3"
                ))
                .bind(id)
                .bind(user_id)
                .bind(now),
            )
            .await
            .map_err(q("reading an attachment"))?;
        row.as_ref()
            .map(row_of)
            .transpose()
            .map_err(q("reading an attachment"))
    }

    /// Every attachment of `user_id` (their export, their erasure).
    pub async fn attachments_of(&self, user_id: &str) -> Result<Vec<AttachmentRow>, StoreError> {
        let rows = self
            .scoped_all(
                user_id,
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM attachments WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind(user_id),
            )
            .await
            .map_err(q("listing attachments"))?;
        rows.iter()
            .map(row_of)
            .collect::<Result<_, _>>()
            .map_err(q("listing attachments"))
    }

    /// Removes an attachment's row as its owner; `false` when it is not theirs.
    pub async fn delete_attachment(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        self.scoped_execute(
            user_id,
            sqlx::query("DELETE FROM attachments WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id),
        )
        .await
        .map(|n| n == 1)
        .map_err(q("deleting an attachment"))
    }

    /// Up to `limit` attachments expired at `now`, oldest first.
    pub async fn expired_attachments(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .scoped_all(
                MAINTENANCE,
                sqlx::query("SELECT id FROM attachments WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2")
                    .bind(now)
                    .bind(limit),
            )
            .await
            .map_err(q("listing expired attachments"))?;
        rows.iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()
            .map_err(q("listing expired attachments"))
    }

    /// Removes the row of an expired attachment (its file is already gone).
    pub async fn forget_attachment(&self, id: &str) -> Result<(), StoreError> {
        self.scoped_execute(
            MAINTENANCE,
            sqlx::query("DELETE FROM attachments WHERE id = $1").bind(id),
        )
        .await
        .map(drop)
        .map_err(q("forgetting an attachment"))
    }

    /// Attachments by the data key that sealed them (the key-usage report).
    pub async fn attachments_by_key(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .scoped_all(
                MAINTENANCE,
                sqlx::query("SELECT key_id, COUNT(*) AS n FROM attachments GROUP BY key_id"),
            )
            .await
            .map_err(q("counting attachments by key"))?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                Ok((r.try_get("key_id")?, u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("counting attachments by key"))
    }
}
