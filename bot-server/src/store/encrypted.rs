//! Every field-encrypted value and every blind index with where it lives, for the
//! key-usage report, re-encryption and re-indexing under the active keys.

use sqlx::Row as _;

use super::{MAINTENANCE, Store, StoreError, q};

impl Store {
    /// Every field-encrypted value with where it lives, for the key-usage report and
    /// re-encryption.
    pub async fn encrypted_values(&self) -> Result<Vec<StoredValue>, StoreError> {
        let mut tx = self.as_user(MAINTENANCE).await?;
        let mut out = Vec::new();
        for column in EncryptedColumn::ALL {
            let rows = sqlx::query(column.select_sql())
                .fetch_all(&mut *tx)
                .await
                .map_err(q("reading encrypted values"))?;
            for r in rows {
                out.push(StoredValue {
                    column,
                    row: r.try_get("id").map_err(q("reading encrypted values"))?,
                    owner: r.try_get("owner").map_err(q("reading encrypted values"))?,
                    envelope: r.try_get("v").map_err(q("reading encrypted values"))?,
                });
            }
        }
        tx.commit().await.map_err(q("reading encrypted values"))?;
        Ok(out)
    }

    /// Every field-encrypted value, for the key-usage report.
    pub async fn field_envelopes(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .encrypted_values()
            .await?
            .into_iter()
            .map(|v| v.envelope)
            .collect())
    }

    /// Replaces a stored value if it is still `v.envelope` (a concurrent write wins);
    /// returns whether it was replaced.
    pub async fn replace_value(&self, v: &StoredValue, new: &str) -> Result<bool, StoreError> {
        let mut tx = self.as_user(&v.owner).await?;
        let done = sqlx::query(v.column.update_sql())
            .bind(new)
            .bind(&v.row)
            .bind(&v.envelope)
            .execute(&mut *tx)
            .await
            .map_err(q("re-encrypting a value"))?;
        tx.commit().await.map_err(q("re-encrypting a value"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Every user's email index with the HMAC key that made it (`""` for rows stored
    /// before key ids were recorded) and the encrypted email to recompute it from.
    pub async fn indexed_emails(&self) -> Result<Vec<IndexedEmail>, StoreError> {
        let rows = sqlx::query("SELECT id, email_enc, email_index, email_index_key FROM users")
            .fetch_all(&self.pool)
            .await
            .map_err(q("reading email indexes"))?;
        rows.iter()
            .map(|r| {
                Ok(IndexedEmail {
                    id: r.try_get("id")?,
                    email_enc: r.try_get("email_enc")?,
                    index: r.try_get("email_index")?,
                    key: r.try_get("email_index_key")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("reading email indexes"))
    }

    /// Replaces a user's email index if it is still `old.index` (a concurrent change
    /// wins); returns whether it was replaced.
    pub async fn reindex_email(
        &self,
        old: &IndexedEmail,
        index: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET email_index = $1, email_index_key = $2 WHERE id = $3 AND email_index = $4",
        )
        .bind(index)
        .bind(key)
        .bind(&old.id)
        .bind(&old.index)
        .execute(&self.pool)
        .await
        .map_err(q("re-indexing an email"))?;
        Ok(done.rows_affected() == 1)
    }
}

/// A field-encrypted column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptedColumn {
    /// `users.email_enc`.
    UserEmail,
    /// `users.totp_enc`.
    UserTotp,
    /// `messages.body_enc`.
    MessageBody,
}

impl EncryptedColumn {
    /// Every encrypted column.
    pub const ALL: [Self; 3] = [Self::UserEmail, Self::UserTotp, Self::MessageBody];

    /// The (table, column) its associated data names.
    pub fn context(self) -> (&'static str, &'static str) {
        match self {
            Self::UserEmail => ("users", "email"),
            Self::UserTotp => ("users", "totp"),
            Self::MessageBody => ("messages", "body"),
        }
    }

    fn select_sql(self) -> &'static str {
        match self {
            Self::UserEmail => "SELECT id, id AS owner, email_enc AS v FROM users",
            Self::UserTotp => {
                "SELECT id, id AS owner, totp_enc AS v FROM users WHERE totp_enc IS NOT NULL"
            }
            Self::MessageBody => "SELECT id, user_id AS owner, body_enc AS v FROM messages",
        }
    }

    fn update_sql(self) -> &'static str {
        match self {
            Self::UserEmail => "UPDATE users SET email_enc = $1 WHERE id = $2 AND email_enc = $3",
            Self::UserTotp => "UPDATE users SET totp_enc = $1 WHERE id = $2 AND totp_enc = $3",
            Self::MessageBody => {
                "UPDATE messages SET body_enc = $1 WHERE id = $2 AND body_enc = $3"
            }
        }
    }
}

/// One stored encrypted value and where it lives.
#[derive(Debug, Clone)]
pub struct StoredValue {
    /// The column.
    pub column: EncryptedColumn,
    /// The row id (what the associated data binds).
    pub row: String,
    /// The user the row belongs to (row-level security).
    pub owner: String,
    /// The envelope (ciphertext).
    pub envelope: String,
}

/// One user's email blind index and where it came from.
#[derive(Debug, Clone)]
pub struct IndexedEmail {
    /// The user id.
    pub id: String,
    /// The encrypted email.
    pub email_enc: String,
    /// The blind index.
    pub index: String,
    /// The id of the HMAC key that made it (`""` when unknown).
    pub key: String,
}
