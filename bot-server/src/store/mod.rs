//! Storage: one set of calls over PostgreSQL (production, TLS `verify-full`) and SQLite
//! (the embedded default), through sqlx's `Any` driver with runtime queries and bound
//! parameters only: no SQL is ever built from a value. Migrations are numbered files in
//! `migrations/<backend>/`, applied at start.

mod attachments;
mod audit;
mod bots;
mod encrypted;
mod gdpr;
mod messages;
mod migrate;
mod refresh;
mod roles;
mod scope;
mod shared;
mod users;

pub use attachments::AttachmentRow;
pub use audit::AuditRow;
pub use bots::{BotRow, SOURCE_API, SOURCE_DIRECTORY};
pub use encrypted::{EmailPages, EncryptedColumn, EncryptedPages, IndexedEmail, StoredValue};
pub use gdpr::{Identity, Profile};
pub use messages::{ConversationRow, MessageRow, NewMessage, Sender};
pub use refresh::RefreshRow;
pub use roles::{OpenError, RoleReport, migrate_as_owner, open};
pub use users::{NewUser, UserRow};

use std::path::Path;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

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

pub(crate) fn q(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
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

pub(crate) use scope::{AUTH, MAINTENANCE};

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

pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Store {
    /// Connects and applies migrations as the connecting role (SQLite, development, and
    /// the owner role).
    pub async fn connect(cfg: &DatabaseConfig) -> Result<Self, StoreError> {
        let store = Self::connect_only(cfg).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema.
    pub async fn connect_only(cfg: &DatabaseConfig) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let url = url_of(cfg);
        let backend = match crate::config::url_backend(&url) {
            Some(crate::config::UrlBackend::Postgres) => Backend::Postgres,
            _ => Backend::Sqlite,
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
        Ok(Self { pool, backend })
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(&self.pool, self.backend).await
    }

    /// Applies the migrations not yet applied up to `version`.
    pub async fn migrate_to(&self, version: i64) -> Result<(), StoreError> {
        migrate::run_to(&self.pool, self.backend, version).await
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

    async fn emails(s: &Store) -> Vec<IndexedEmail> {
        let mut out = Vec::new();
        let mut pages = s.email_pages();
        while let Some(page) = pages.next().await.unwrap() {
            out.extend(page);
        }
        out
    }

    #[tokio::test]
    async fn passes_read_keyset_pages() {
        let s = memory().await;
        for i in 0..1203 {
            s.insert_user(user(&format!("u{i:05}"), &format!("idx{i}")))
                .await
                .unwrap();
        }
        let mut ids = Vec::new();
        let mut pages = s.encrypted_pages();
        while let Some(page) = pages.next().await.unwrap() {
            ids.extend(page.into_iter().map(|v| v.row));
        }
        assert_eq!(ids.len(), 1203, "three pages, every row once");
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(emails(&s).await.len(), 1203);
    }

    fn user<'a>(id: &'a str, email_index: &'a str) -> NewUser<'a> {
        NewUser {
            id,
            email_enc: "gb1.x.y",
            email_index,
            email_index_key: "h1",
            password_hash: "hash",
            role: "user",
            totp_enc: None,
        }
    }

    #[tokio::test]
    async fn sqlite_round_trip_and_injection_is_inert() {
        let s = memory().await;
        s.ping().await.unwrap();
        s.insert_user(user("u1", "idx")).await.unwrap();
        assert!(matches!(
            s.insert_user(user("u2", "idx")).await,
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
        assert_eq!(s.reserve_login_attempt("u1", 0).await.unwrap(), Some(1));
        assert_eq!(s.reserve_login_attempt("u1", 0).await.unwrap(), Some(2));
        s.lock_user("u1", 100).await.unwrap();
        assert_eq!(
            s.reserve_login_attempt("u1", 50).await.unwrap(),
            None,
            "locked"
        );
        s.reset_failed_logins("u1", 50).await.unwrap();
        assert_eq!(
            s.reserve_login_attempt("u1", 50).await.unwrap(),
            None,
            "a success never lifts a lock"
        );
        assert_eq!(
            s.reserve_login_attempt("u1", 100).await.unwrap(),
            Some(1),
            "the lock ended"
        );
        s.refund_login_attempt("u1").await.unwrap();
        assert_eq!(s.reserve_login_attempt("u1", 100).await.unwrap(), Some(1));
        s.insert_conversation("u1", "c1", None, &[]).await.unwrap();
        s.insert_messages(
            "u1",
            "c1",
            &[NewMessage {
                id: "m1".into(),
                body_enc: "gb1.k.z".into(),
                sender: Sender::User,
            }],
        )
        .await
        .unwrap();
        assert_eq!(s.messages("u1", "c1").await.unwrap().len(), 1);
        assert_eq!(s.messages("u2", "c1").await.unwrap().len(), 0);
        let mut values = Vec::new();
        let mut pages = s.encrypted_pages();
        while let Some(page) = pages.next().await.unwrap() {
            values.extend(page);
        }
        assert_eq!(values.len(), 2);
    }

    #[tokio::test]
    async fn hmac_key_ids_are_recorded_and_reindexing_is_conditional() {
        let s = memory().await;
        s.insert_user(user("u1", "old-idx")).await.unwrap();
        let now = super::now();
        s.insert_refresh("t1", "h1", "fam", "u1", now + 600)
            .await
            .unwrap();
        s.insert_refresh("t2", "h2", "fam", "u1", now + 600)
            .await
            .unwrap();
        s.insert_refresh("t3", "h1", "fam", "u1", now - 1)
            .await
            .unwrap();
        s.use_refresh("t2").await.unwrap();
        assert_eq!(
            s.live_refresh_by_key().await.unwrap(),
            vec![("h1".to_owned(), 1)],
            "used and expired tokens need no key"
        );
        let rows = emails(&s).await;
        assert_eq!(
            (rows[0].index.as_str(), rows[0].key.as_str()),
            ("old-idx", "h1")
        );
        assert!(s.reindex_email(&rows[0], "new-idx", "h2").await.unwrap());
        assert_eq!(
            s.email_indexes_by_key().await.unwrap(),
            vec![("h2".to_owned(), 1)]
        );
        assert!(
            !s.reindex_email(&rows[0], "other", "h3").await.unwrap(),
            "a row changed since it was read is left alone"
        );
        let rows = emails(&s).await;
        assert_eq!(
            (rows[0].index.as_str(), rows[0].key.as_str()),
            ("new-idx", "h2")
        );
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
