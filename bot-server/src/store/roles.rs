//! Database roles (PostgreSQL): migrations run as an owner role, which then grants the
//! server's runtime role exactly what it uses; the runtime role is checked to own
//! nothing, to be no superuser and not to bypass row-level security.

use sqlx::Row as _;

use super::{Backend, Store, StoreError, migrate, q};
use crate::config::DatabaseConfig;

/// Why the server may not use the database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Migrations are missing and the server may not run them.
    #[error(
        "the database schema is at version {found} and this server needs {needed}: run `bot-server migrate` with the owner role's credentials (DATABASE_OWNER_USER_FILE and DATABASE_OWNER_PASSWORD_FILE; the operator's migration init container does this when spec.services.postgres.ownerCredentialsSecret is set)"
    )]
    SchemaBehind {
        /// The version applied.
        found: i64,
        /// The version needed.
        needed: i64,
    },
    /// The runtime role can do more than the server needs.
    #[error(
        "the database role {role:?} {what}: the server runs as a role that owns nothing and is subject to row-level security. Create a separate owner role, run migrations as it (DATABASE_OWNER_USER_FILE and DATABASE_OWNER_PASSWORD_FILE, or spec.services.postgres.ownerCredentialsSecret), and give the server a plain LOGIN role (on PostgreSQL before 15 also REVOKE CREATE ON SCHEMA public FROM PUBLIC)"
    )]
    RoleTooPowerful {
        /// The role.
        role: String,
        /// What it may do that it should not.
        what: String,
    },
    /// Owner credentials were given with a database URL.
    #[error("owner credentials need DATABASE_HOST and its companions, not DATABASE_URL")]
    OwnerNeedsHost,
}

/// Opens the database for the server. With `owner`, migrations run first as that role,
/// which then grants the runtime role what it uses. On PostgreSQL in production the
/// runtime role never migrates: the schema must be current and the role must own
/// nothing, be no superuser and not bypass row-level security. In development, and on
/// SQLite, the connecting role migrates.
pub async fn open(
    runtime: &DatabaseConfig,
    owner: Option<&DatabaseConfig>,
    dev: bool,
) -> Result<Store, OpenError> {
    if let Some(owner) = owner {
        migrate_as_owner(owner, runtime).await?;
    }
    let store = Store::connect_only(runtime).await?;
    let Some(report) = store.role_report().await? else {
        store.migrate().await?;
        return Ok(store);
    };
    if dev && owner.is_none() {
        store.migrate().await?;
        return Ok(store);
    }
    let (found, needed) = (store.schema_version().await?, Store::schema_needed());
    if found < needed {
        return Err(OpenError::SchemaBehind { found, needed });
    }
    let excess = report.excess();
    if !excess.is_empty() {
        return Err(OpenError::RoleTooPowerful {
            role: report.role,
            what: excess.join(", "),
        });
    }
    Ok(store)
}

/// Runs migrations as `owner` and grants the runtime role of `runtime` what it uses.
pub async fn migrate_as_owner(
    owner: &DatabaseConfig,
    runtime: &DatabaseConfig,
) -> Result<(), OpenError> {
    let DatabaseConfig::Postgres { user, .. } = runtime else {
        return Err(OpenError::OwnerNeedsHost);
    };
    let store = Store::connect_only(owner).await?;
    let done = async {
        store.migrate().await?;
        store.grant_runtime(user).await
    }
    .await;
    store.close().await;
    done?;
    tracing::info!(
        version = Store::schema_needed(),
        "migrations applied as the owner role; runtime role granted"
    );
    Ok(())
}

/// How the connecting role stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleReport {
    /// The role name.
    pub role: String,
    /// A superuser bypasses every check.
    pub superuser: bool,
    /// `BYPASSRLS` ignores row-level security.
    pub bypass_rls: bool,
    /// Tables, views and sequences it owns in the current schema (an owner can alter
    /// them, drop the audit log's triggers or a policy).
    pub owned: i64,
    /// Whether it may create objects in the current schema.
    pub can_create: bool,
}

impl RoleReport {
    /// What this role may do beyond what the server needs, in words; empty when none.
    pub fn excess(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.superuser {
            out.push("is a superuser".to_owned());
        }
        if self.bypass_rls {
            out.push("bypasses row-level security (BYPASSRLS)".to_owned());
        }
        if self.owned > 0 {
            out.push(format!("owns {} objects of the schema", self.owned));
        }
        if self.can_create {
            out.push("may create objects in the schema".to_owned());
        }
        out
    }
}

impl Store {
    /// The schema version applied (0 before the first migration).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let exists = match self.backend {
            Backend::Postgres => {
                "SELECT COUNT(*) AS present FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
            }
            Backend::Sqlite => {
                "SELECT COUNT(*) AS present FROM sqlite_master WHERE name = 'schema_migrations'"
            }
        };
        let present: i64 = sqlx::query(exists)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get("present"))
            .map_err(q("reading the schema version"))?;
        if present == 0 {
            return Ok(0);
        }
        sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get("v"))
            .map_err(q("reading the schema version"))
    }

    /// The schema version this build needs.
    pub fn schema_needed() -> i64 {
        migrate::LATEST
    }

    /// Grants `runtime` what the server uses (as the owner, after migrating).
    pub async fn grant_runtime(&self, runtime: &str) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT generalbot_grant_runtime($1::name)")
            .bind(runtime)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(q("granting the runtime role"))
    }

    /// How the connecting role stands; `None` on SQLite, which has no roles.
    pub async fn role_report(&self) -> Result<Option<RoleReport>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT current_user::text AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls, \
             (SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = current_schema() AND c.relowner = r.oid) AS owned, \
             has_schema_privilege(current_user, current_schema(), 'CREATE') AS can_create \
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(q("reading the database role"))?;
        let report = (|| {
            Ok::<_, sqlx::Error>(RoleReport {
                role: row.try_get("role")?,
                superuser: row.try_get("superuser")?,
                bypass_rls: row.try_get("bypass_rls")?,
                owned: row.try_get("owned")?,
                can_create: row.try_get("can_create")?,
            })
        })()
        .map_err(q("reading the database role"))?;
        Ok(Some(report))
    }

    /// Closes every connection (the owner's, once migrations are done).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
