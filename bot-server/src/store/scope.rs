//! Row-level-security scopes. On PostgreSQL every statement on user data runs in a
//! transaction that names whose rows it may see (`app.user_id`, set for that transaction
//! only): a user id, [`AUTH`] for the identity service, [`MAINTENANCE`] for the key-usage
//! count and re-encryption. Unscoped, a statement sees no row.

use sqlx::any::{AnyArguments, AnyRow};

use super::{Backend, Store, StoreError, q};

/// The scope of the identity service: it finds accounts by email before it knows who
/// asks, and manages sessions and roles.
pub(crate) const AUTH: &str = "__auth__";
/// The scope that may read every row (key usage, re-encryption).
pub(crate) const MAINTENANCE: &str = "__maintenance__";

/// A statement with its bound parameters.
pub(crate) type Statement<'q> = sqlx::query::Query<'q, sqlx::Any, AnyArguments<'q>>;

impl Store {
    async fn begin_scoped(
        &self,
        scope: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT set_config('app.user_id', $1, true)")
                .bind(scope)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Begins a transaction scoped to `user_id` (or a scope above).
    pub(crate) async fn as_user(
        &self,
        user_id: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        self.begin_scoped(user_id)
            .await
            .map_err(q("beginning a scoped transaction"))
    }

    /// Runs one statement in `scope`; returns the rows it changed.
    pub(crate) async fn scoped_execute(
        &self,
        scope: &str,
        statement: Statement<'_>,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.begin_scoped(scope).await?;
        let done = statement.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Runs one statement in `scope`; returns its row, if any.
    pub(crate) async fn scoped_optional(
        &self,
        scope: &str,
        statement: Statement<'_>,
    ) -> Result<Option<AnyRow>, sqlx::Error> {
        let mut tx = self.begin_scoped(scope).await?;
        let row = statement.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Runs one statement in `scope`; returns its rows.
    pub(crate) async fn scoped_all(
        &self,
        scope: &str,
        statement: Statement<'_>,
    ) -> Result<Vec<AnyRow>, sqlx::Error> {
        let mut tx = self.begin_scoped(scope).await?;
        let rows = statement.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }
}
