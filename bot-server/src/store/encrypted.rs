//! Every field-encrypted value and every blind index with where it lives, for the
//! key-usage report, re-encryption and re-indexing under the active keys: read in keyset
//! pages (one page in memory at a time), and a maintenance lock so one replica at a time
//! runs a pass.

use sqlx::Row as _;

use super::{MAINTENANCE, Store, StoreError, q};

/// Rows per page of a pass.
const PAGE: i64 = 500;
/// [`PAGE`] as a length.
const PAGE_LEN: usize = 500;

impl Store {
    /// Up to `limit` field-encrypted values of `column` whose row id comes after
    /// `after` (`""` for the first page), in id order: keyset pages, so a pass over a
    /// large table holds one page in memory and each query is an index range scan.
    pub async fn encrypted_page(
        &self,
        column: EncryptedColumn,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StoredValue>, StoreError> {
        let mut tx = self.as_user(MAINTENANCE).await?;
        let rows = sqlx::query(column.page_sql())
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("reading encrypted values"))?;
        tx.commit().await.map_err(q("reading encrypted values"))?;
        rows.iter()
            .map(|r| {
                Ok(StoredValue {
                    column,
                    row: r.try_get("id")?,
                    owner: r.try_get("owner")?,
                    envelope: r.try_get("v")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("reading encrypted values"))
    }

    /// Every field-encrypted value, a page at a time.
    pub fn encrypted_pages(&self) -> EncryptedPages<'_> {
        EncryptedPages {
            store: self,
            column: 0,
            after: String::new(),
        }
    }

    /// Every user's email index, a page at a time.
    pub fn email_pages(&self) -> EmailPages<'_> {
        EmailPages {
            store: self,
            after: String::new(),
            done: false,
        }
    }

    async fn email_page(&self, after: &str) -> Result<Vec<IndexedEmail>, StoreError> {
        let rows = self
            .scoped_all(
                MAINTENANCE,
                sqlx::query(
                    "SELECT id, email_enc, email_index, email_index_key FROM users WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after)
                .bind(PAGE),
            )
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

    /// Email indexes by the HMAC key that made them (`""` when unknown).
    pub async fn email_indexes_by_key(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .scoped_all(
                MAINTENANCE,
                sqlx::query(
                    "SELECT email_index_key, COUNT(*) AS n FROM users GROUP BY email_index_key",
                ),
            )
            .await
            .map_err(q("counting email indexes"))?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                Ok((r.try_get("email_index_key")?, u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("counting email indexes"))
    }

    /// Runs `pass` unless another replica runs one: a PostgreSQL advisory lock held by a
    /// transaction for the whole pass (released if this process dies). SQLite has one
    /// process. Returns `None` when another replica holds the lock.
    pub async fn exclusively<T, F: std::future::Future<Output = T>>(
        &self,
        lock_id: i64,
        pass: F,
    ) -> Result<Option<T>, StoreError> {
        if self.backend != super::Backend::Postgres {
            return Ok(Some(pass.await));
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(q("taking a maintenance lock"))?;
        let row = sqlx::query("SELECT pg_try_advisory_xact_lock($1) AS got")
            .bind(lock_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(q("taking a maintenance lock"))?;
        let got: bool = row.try_get("got").map_err(q("taking a maintenance lock"))?;
        let out = if got { Some(pass.await) } else { None };
        tx.rollback()
            .await
            .map_err(q("releasing a maintenance lock"))?;
        Ok(out)
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

    /// Replaces a user's email index if it is still `old.index` (a concurrent change
    /// wins); returns whether it was replaced.
    pub async fn reindex_email(
        &self,
        old: &IndexedEmail,
        index: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .scoped_execute(
                MAINTENANCE,
                sqlx::query(
                    "UPDATE users SET email_index = $1, email_index_key = $2 WHERE id = $3 AND email_index = $4",
                )
                .bind(index)
                .bind(key)
                .bind(&old.id)
                .bind(&old.index),
            )
            .await
            .map_err(q("re-indexing an email"))?;
        Ok(done == 1)
    }
}

/// A field-encrypted column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptedColumn {
    /// `users.email_enc`.
    UserEmail,
    /// `users.totp_enc`.
    UserTotp,
    /// `users.totp_pending_enc` (a secret being enrolled; encrypted as a TOTP secret, so
    /// confirming it moves the value as is).
    UserTotpPending,
    /// `messages.body_enc`.
    MessageBody,
    /// `conversations.state_enc` (where a conversation's flow stands, its variables).
    ConversationState,
}

impl EncryptedColumn {
    /// Every encrypted column.
    pub const ALL: [Self; 5] = [
        Self::UserEmail,
        Self::UserTotp,
        Self::UserTotpPending,
        Self::MessageBody,
        Self::ConversationState,
    ];

    /// The (table, column) its associated data names.
    pub fn context(self) -> (&'static str, &'static str) {
        match self {
            Self::UserEmail => ("users", "email"),
            Self::UserTotp | Self::UserTotpPending => ("users", "totp"),
            Self::MessageBody => ("messages", "body"),
            Self::ConversationState => ("conversations", "state"),
        }
    }

    fn page_sql(self) -> &'static str {
        match self {
            Self::UserEmail => {
                "SELECT id, id AS owner, email_enc AS v FROM users WHERE id > $1 ORDER BY id LIMIT $2"
            }
            Self::UserTotp => {
                "SELECT id, id AS owner, totp_enc AS v FROM users WHERE totp_enc IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
            }
            Self::UserTotpPending => {
                "SELECT id, id AS owner, totp_pending_enc AS v FROM users WHERE totp_pending_enc IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
            }
            Self::MessageBody => {
                "SELECT id, user_id AS owner, body_enc AS v FROM messages WHERE id > $1 ORDER BY id LIMIT $2"
            }
            Self::ConversationState => {
                "SELECT id, user_id AS owner, state_enc AS v FROM conversations WHERE state_enc IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
            }
        }
    }

    fn update_sql(self) -> &'static str {
        match self {
            Self::UserEmail => "UPDATE users SET email_enc = $1 WHERE id = $2 AND email_enc = $3",
            Self::UserTotp => "UPDATE users SET totp_enc = $1 WHERE id = $2 AND totp_enc = $3",
            Self::UserTotpPending => {
                "UPDATE users SET totp_pending_enc = $1 WHERE id = $2 AND totp_pending_enc = $3"
            }
            Self::MessageBody => {
                "UPDATE messages SET body_enc = $1 WHERE id = $2 AND body_enc = $3"
            }
            Self::ConversationState => {
                "UPDATE conversations SET state_enc = $1 WHERE id = $2 AND state_enc = $3"
            }
        }
    }
}

/// Keyset pages over every encrypted column ([`Store::encrypted_pages`]).
#[derive(Debug)]
pub struct EncryptedPages<'a> {
    store: &'a Store,
    column: usize,
    after: String,
}

impl EncryptedPages<'_> {
    /// The next non-empty page, or `None` when every column is done.
    pub async fn next(&mut self) -> Result<Option<Vec<StoredValue>>, StoreError> {
        while let Some(column) = EncryptedColumn::ALL.get(self.column).copied() {
            let page = self.store.encrypted_page(column, &self.after, PAGE).await?;
            match page.last() {
                Some(last) if page.len() == PAGE_LEN => self.after = last.row.clone(),
                _ => {
                    self.column += 1;
                    self.after.clear();
                }
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
    }
}

/// Keyset pages over the users' email indexes ([`Store::email_pages`]).
#[derive(Debug)]
pub struct EmailPages<'a> {
    store: &'a Store,
    after: String,
    done: bool,
}

impl EmailPages<'_> {
    /// The next non-empty page, or `None` when done.
    pub async fn next(&mut self) -> Result<Option<Vec<IndexedEmail>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = self.store.email_page(&self.after).await?;
        match page.last() {
            Some(last) if page.len() == PAGE_LEN => self.after = last.id.clone(),
            _ => self.done = true,
        }
        Ok((!page.is_empty()).then_some(page))
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
