//! Numbered schema migrations, embedded in the binary and applied once each, in order,
//! inside a transaction; PostgreSQL replicas serialize on an advisory lock.

use sqlx::{AnyPool, Row as _};

use super::{Backend, StoreError};

/// (version, PostgreSQL SQL, SQLite SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        include_str!("../../migrations/postgres/0001_init.sql"),
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../migrations/postgres/0002_hmac_key_ids.sql"),
        include_str!("../../migrations/sqlite/0002_hmac_key_ids.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_shared_state.sql"),
        include_str!("../../migrations/sqlite/0003_shared_state.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_totp_last_step.sql"),
        include_str!("../../migrations/sqlite/0004_totp_last_step.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_audit_append_only.sql"),
        include_str!("../../migrations/sqlite/0005_audit_append_only.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_audit_mac_totp_enrolment.sql"),
        include_str!("../../migrations/sqlite/0006_audit_mac_totp_enrolment.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_least_privilege.sql"),
        include_str!("../../migrations/sqlite/0007_least_privilege.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_directory_identities.sql"),
        include_str!("../../migrations/sqlite/0008_directory_identities.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_bots.sql"),
        include_str!("../../migrations/sqlite/0009_bots.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_attachments.sql"),
        include_str!("../../migrations/sqlite/0010_attachments.sql"),
    ),
];

/// The schema version this build needs.
pub const LATEST: i64 = 10;

/// Applies every migration not yet applied.
pub async fn run(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    run_to(pool, backend, LATEST).await
}

/// Applies every migration not yet applied up to `until` (a restore loads a backup at
/// its own schema version, then migrates on).
pub async fn run_to(pool: &AnyPool, backend: Backend, until: i64) -> Result<(), StoreError> {
    let err = |version| move |source| StoreError::Migrate { version, source };
    let mut conn = pool.acquire().await.map_err(err(0))?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock(7243911)")
            .execute(&mut *conn)
            .await
            .map_err(err(0))?;
    }
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await
        .map_err(err(0))?;
    let mut result = Ok(());
    for (version, pg, lite) in MIGRATIONS.iter().filter(|m| m.0 <= until) {
        let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(*version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(err(*version))?;
        if done.is_some_and(|r| r.try_get::<i64, _>(0).is_ok()) {
            continue;
        }
        let sql = match backend {
            Backend::Postgres => *pg,
            Backend::Sqlite => *lite,
        };
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(err(*version))?;
        let applied = async {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(jiff::Timestamp::now().as_second())
                .execute(&mut *tx)
                .await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match applied {
            Ok(()) => tx.commit().await.map_err(err(*version))?,
            Err(source) => {
                result = Err(StoreError::Migrate {
                    version: *version,
                    source,
                });
                break;
            }
        }
        tracing::info!(version, "migration applied");
    }
    if backend == Backend::Postgres {
        let _ = sqlx::query("SELECT pg_advisory_unlock(7243911)")
            .execute(&mut *conn)
            .await;
    }
    result
}
