//! Storage: one set of calls over PostgreSQL (production, TLS `verify-full`) and SQLite
//! (the embedded default), through sqlx's `Any` driver with runtime queries and bound
//! parameters only: no SQL is ever built from a value. Migrations are numbered files in
//! `migrations/<backend>/`, applied at start.

mod migrate;

use std::path::Path;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};

use crate::config::DatabaseConfig;

/// What failed in the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed.
    #[error("connecting to the database ({backend}): {source}")]
    Connect {
        /// `postgres` or `sqlite`.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("applying migration {version}: {source}")]
    Migrate {
        /// The migration.
        version: i64,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A query failed.
    #[error("database {operation}: {source}")]
    Query {
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A unique value is taken.
    #[error("{what} already exists")]
    Conflict {
        /// What.
        what: &'static str,
    },
}

fn q(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { operation, source }
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// The database handle.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// The row-level-security user that may read every row (key usage, re-encryption).
const MAINTENANCE: &str = "__maintenance__";

/// A user as stored.
#[derive(Clone)]
pub struct UserRow {
    /// Id (UUIDv4).
    pub id: String,
    /// Encrypted email.
    pub email_enc: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role name.
    pub role: String,
    /// Encrypted TOTP secret.
    pub totp_enc: Option<String>,
    /// Consecutive failed logins.
    pub failed_logins: i64,
    /// Locked until (unix seconds).
    pub locked_until: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// A refresh token as stored (only its HMAC).
#[derive(Debug, Clone)]
pub struct RefreshRow {
    /// Family (one login's chain of rotations).
    pub family_id: String,
    /// Owner.
    pub user_id: String,
    /// Already exchanged.
    pub used: bool,
    /// Revoked.
    pub revoked: bool,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

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

/// One message as stored.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// Id.
    pub id: String,
    /// Encrypted text.
    pub body_enc: String,
    /// Unix microseconds (fine enough to keep a conversation in order).
    pub created_at: i64,
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn path_str(p: &Path) -> String {
    percent(&p.to_string_lossy())
}

/// The connection URL of a configuration (it holds the password: never log it).
fn url_of(cfg: &DatabaseConfig) -> zeroize::Zeroizing<String> {
    match cfg {
        DatabaseConfig::Url(u) => u.clone(),
        DatabaseConfig::Postgres {
            host,
            port,
            database,
            user,
            password,
            verify_full,
            ca_file,
            client_cert,
        } => {
            let mut url = format!("postgres://{}", percent(user));
            if let Some(p) = password {
                url.push(':');
                url.push_str(&percent(p));
            }
            url.push_str(&format!("@{host}:{port}/{}", percent(database)));
            url.push_str(if *verify_full {
                "?sslmode=verify-full"
            } else {
                "?sslmode=disable"
            });
            if let Some(ca) = ca_file {
                url.push_str(&format!("&sslrootcert={}", path_str(ca)));
            }
            if let Some((c, k)) = client_cert {
                url.push_str(&format!("&sslcert={}&sslkey={}", path_str(c), path_str(k)));
            }
            zeroize::Zeroizing::new(url)
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Store {
    /// Connects and applies migrations.
    pub async fn connect(cfg: &DatabaseConfig) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let url = url_of(cfg);
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let name = match backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        };
        // An in-memory SQLite database exists per connection: keep exactly one.
        let max = if url.contains(":memory:") { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(if max == 1 { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect {
                backend: name,
                source,
            })?;
        let store = Self { pool, backend };
        migrate::run(&store.pool, backend).await?;
        Ok(store)
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for tests that inspect raw columns.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(q("ping"))
    }

    /// Inserts a user.
    pub async fn insert_user(
        &self,
        id: &str,
        email_enc: &str,
        email_index: &str,
        password_hash: &str,
        role: &str,
        totp_enc: Option<&str>,
    ) -> Result<(), StoreError> {
        let r = sqlx::query(
            "INSERT INTO users (id, email_enc, email_index, password_hash, role, totp_enc, failed_logins, locked_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7)",
        )
        .bind(id)
        .bind(email_enc)
        .bind(email_index)
        .bind(password_hash)
        .bind(role)
        .bind(totp_enc)
        .bind(now())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict {
                what: "a user with this email",
            }),
            Err(source) => Err(StoreError::Query {
                operation: "inserting a user",
                source,
            }),
        }
    }

    fn user_of(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
        Ok(UserRow {
            id: row.try_get("id")?,
            email_enc: row.try_get("email_enc")?,
            password_hash: row.try_get("password_hash")?,
            role: row.try_get("role")?,
            totp_enc: row.try_get("totp_enc")?,
            failed_logins: row.try_get("failed_logins")?,
            locked_until: row.try_get("locked_until")?,
        })
    }

    /// Finds a user by any of the email's blind indexes.
    pub async fn user_by_email_index(
        &self,
        candidates: &[String],
    ) -> Result<Option<UserRow>, StoreError> {
        for index in candidates {
            let row = sqlx::query(
                "SELECT id, email_enc, password_hash, role, totp_enc, failed_logins, locked_until FROM users WHERE email_index = $1",
            )
            .bind(index)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("finding a user"))?;
            if let Some(row) = row {
                return Self::user_of(&row).map(Some).map_err(q("reading a user"));
            }
        }
        Ok(None)
    }

    /// A user by id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email_enc, password_hash, role, totp_enc, failed_logins, locked_until FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("reading a user"))?;
        row.map(|r| Self::user_of(&r))
            .transpose()
            .map_err(q("reading a user"))
    }

    /// Adds one failed login and returns the new count.
    pub async fn record_failed_login(&self, id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(q("counting a failed login"))?;
        row.try_get(0).map_err(q("counting a failed login"))
    }

    /// Locks an account until `until` (unix seconds) and restarts its count.
    pub async fn lock_user(&self, id: &str, until: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2")
            .bind(until)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(q("locking an account"))
    }

    /// Clears the failed-login count after a success.
    pub async fn reset_failed_logins(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(q("clearing failed logins"))
    }

    /// Stores a refresh token's HMAC.
    pub async fn insert_refresh(
        &self,
        token_hmac: &str,
        family_id: &str,
        user_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hmac, family_id, user_id, used, revoked, expires_at, created_at) VALUES ($1, $2, $3, 0, 0, $4, $5)",
        )
        .bind(token_hmac)
        .bind(family_id)
        .bind(user_id)
        .bind(expires_at)
        .bind(now())
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(q("storing a refresh token"))
    }

    /// Marks a refresh token used, atomically. Returns the row as it was before, or
    /// `None` when no such token exists; a row with `used` true means reuse.
    pub async fn use_refresh(&self, token_hmac: &str) -> Result<Option<RefreshRow>, StoreError> {
        let row = sqlx::query("SELECT family_id, user_id, used, revoked, expires_at FROM refresh_tokens WHERE token_hmac = $1")
            .bind(token_hmac)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("reading a refresh token"))?;
        let Some(row) = row else { return Ok(None) };
        let mut found = RefreshRow {
            family_id: row
                .try_get("family_id")
                .map_err(q("reading a refresh token"))?,
            user_id: row
                .try_get("user_id")
                .map_err(q("reading a refresh token"))?,
            used: row
                .try_get::<i64, _>("used")
                .map_err(q("reading a refresh token"))?
                != 0,
            revoked: row
                .try_get::<i64, _>("revoked")
                .map_err(q("reading a refresh token"))?
                != 0,
            expires_at: row
                .try_get("expires_at")
                .map_err(q("reading a refresh token"))?,
        };
        if !found.used {
            // Only one concurrent exchange wins; the loser sees a reuse.
            let done = sqlx::query(
                "UPDATE refresh_tokens SET used = 1 WHERE token_hmac = $1 AND used = 0",
            )
            .bind(token_hmac)
            .execute(&self.pool)
            .await
            .map_err(q("using a refresh token"))?;
            if done.rows_affected() == 0 {
                found.used = true;
            }
        }
        Ok(Some(found))
    }

    /// Revokes every token of a family.
    pub async fn revoke_family(&self, family_id: &str) -> Result<u64, StoreError> {
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1")
            .bind(family_id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(q("revoking a token family"))
    }

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

    /// Begins a transaction scoped to `user_id` by row-level security (PostgreSQL).
    async fn as_user(
        &self,
        user_id: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(q("beginning a transaction"))?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT set_config('app.user_id', $1, true)")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(q("scoping to a user"))?;
        }
        Ok(tx)
    }

    /// Creates a conversation of a user.
    pub async fn insert_conversation(&self, user_id: &str, id: &str) -> Result<(), StoreError> {
        let mut tx = self.as_user(user_id).await?;
        sqlx::query("INSERT INTO conversations (id, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(user_id)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(q("creating a conversation"))?;
        tx.commit().await.map_err(q("creating a conversation"))
    }

    /// Whether a conversation belongs to a user.
    pub async fn owns_conversation(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.as_user(user_id).await?;
        let row = sqlx::query("SELECT user_id FROM conversations WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("reading a conversation"))?;
        tx.commit().await.map_err(q("reading a conversation"))?;
        Ok(row.is_some())
    }

    /// Appends a message (already encrypted).
    pub async fn insert_message(
        &self,
        user_id: &str,
        conversation_id: &str,
        id: &str,
        body_enc: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.as_user(user_id).await?;
        sqlx::query("INSERT INTO messages (id, conversation_id, user_id, body_enc, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(conversation_id)
            .bind(user_id)
            .bind(body_enc)
            .bind(jiff::Timestamp::now().as_microsecond())
            .execute(&mut *tx)
            .await
            .map_err(q("storing a message"))?;
        tx.commit().await.map_err(q("storing a message"))
    }

    /// The messages of a conversation, as visible to `user_id`.
    pub async fn messages(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let mut tx = self.as_user(user_id).await?;
        let rows = sqlx::query("SELECT id, body_enc, created_at FROM messages WHERE conversation_id = $1 AND user_id = $2 ORDER BY created_at, id")
            .bind(conversation_id)
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("reading messages"))?;
        tx.commit().await.map_err(q("reading messages"))?;
        rows.iter()
            .map(|r| {
                Ok(MessageRow {
                    id: r.try_get("id")?,
                    body_enc: r.try_get("body_enc")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("reading messages"))
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) async fn memory() -> Store {
        Store::connect(&DatabaseConfig::Url(zeroize::Zeroizing::new(
            "sqlite::memory:".into(),
        )))
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn sqlite_round_trip_and_injection_is_inert() {
        let s = memory().await;
        s.ping().await.unwrap();
        s.insert_user("u1", "gb1.x.y", "idx", "hash", "user", None)
            .await
            .unwrap();
        assert!(matches!(
            s.insert_user("u2", "gb1.x.y", "idx", "hash", "user", None)
                .await,
            Err(StoreError::Conflict { .. })
        ));
        for evil in ["' OR '1'='1", "idx' --", "idx'; DROP TABLE users; --"] {
            assert!(
                s.user_by_email_index(&[evil.to_string()])
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert!(
            s.user_by_email_index(&["idx".into()])
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(s.record_failed_login("u1").await.unwrap(), 1);
        assert_eq!(s.record_failed_login("u1").await.unwrap(), 2);
        s.insert_conversation("u1", "c1").await.unwrap();
        s.insert_message("u1", "c1", "m1", "gb1.k.z").await.unwrap();
        assert_eq!(s.messages("u1", "c1").await.unwrap().len(), 1);
        assert_eq!(s.messages("u2", "c1").await.unwrap().len(), 0);
        assert_eq!(s.field_envelopes().await.unwrap().len(), 2);
    }

    #[test]
    fn url_escapes_credentials() {
        let u = url_of(&DatabaseConfig::Postgres {
            host: "db".into(),
            port: 5432,
            database: "gb".into(),
            user: "bot".into(),
            password: Some(zeroize::Zeroizing::new("p@ss/word".into())),
            verify_full: true,
            ca_file: Some("/ca dir/ca.crt".into()),
            client_cert: None,
        });
        assert_eq!(
            u.as_str(),
            "postgres://bot:p%40ss%2Fword@db:5432/gb?sslmode=verify-full&sslrootcert=%2Fca%20dir%2Fca.crt"
        );
    }
}
