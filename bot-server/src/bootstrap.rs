//! What the server sets up at start: the first administrator from a mounted Secret (only
//! while none exists), the bots of a mounted directory (written only when they changed,
//! so replicas starting together write nothing twice), and in dev mode an administrator,
//! a user and the example bot, with the sign-in printed once.

use std::path::Path;

use crate::audit::AuditKind;
use crate::auth::Role;
use crate::bots::{self, dir};
use crate::http::AppState;
use crate::store::StoreError;

/// Why start-up setup failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The bot directory is refused.
    #[error(transparent)]
    Dir(#[from] dir::DirError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An account could not be created.
    #[error("creating the {email}: {reason}")]
    Account {
        /// Which account.
        email: &'static str,
        /// Why.
        reason: String,
    },
    /// Encoding a definition.
    #[error("encoding bot {0}: {1}")]
    Encode(String, String),
}

/// Loads the bots of a directory into the database; returns (written, deleted).
pub async fn load_bot_dir(state: &AppState, path: &Path) -> Result<(u64, u64), BootstrapError> {
    let path = path.to_owned();
    let defs = tokio::task::spawn_blocking(move || dir::load(&path))
        .await
        .map_err(|e| BootstrapError::Encode("directory".into(), e.to_string()))??;
    let mut rows = Vec::with_capacity(defs.len());
    for d in &defs {
        let json = serde_json::to_string(d)
            .map_err(|e| BootstrapError::Encode(d.slug.clone(), e.to_string()))?;
        rows.push((d.slug.clone(), json));
    }
    let (written, deleted) = state.store.sync_directory_bots(&rows).await?;
    if written + deleted > 0 {
        state
            .auth
            .audit
            .record(
                AuditKind::ConfigChange,
                "bot-server",
                "success",
                serde_json::json!({"bots_from_directory": defs.len(), "written": written, "deleted": deleted}),
            )
            .await;
    }
    tracing::info!(
        bots = defs.len(),
        written,
        deleted,
        "bots loaded from the bot directory"
    );
    Ok((written, deleted))
}

/// Re-reads the bot directory every `every` (a ConfigMap edit reaches the pod's files
/// within a minute or so). An invalid directory changes nothing: the error is logged and
/// the bots stay as they were.
pub fn spawn_bot_dir_reload(
    state: std::sync::Arc<AppState>,
    dir: std::path::PathBuf,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = load_bot_dir(&state, &dir).await {
                tracing::error!(error = %e, "the bot directory changed and is refused: the bots stay as they were");
            }
        }
    })
}

/// What happened to the bootstrap administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// Created now.
    Created,
    /// An administrator already exists: nothing written.
    AdminExists,
}

/// Creates the first administrator from the mounted Secret, only while no
/// administrator exists; never changes an account. Audited.
pub async fn bootstrap_admin(
    state: &AppState,
    email_file: &Path,
    password_file: &Path,
) -> Result<Bootstrap, BootstrapError> {
    if !state.store.admins().await?.is_empty() {
        tracing::info!(
            "bootstrap administrator not created: an administrator exists (delete the bootstrap Secret)"
        );
        return Ok(Bootstrap::AdminExists);
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|s| zeroize::Zeroizing::new(s.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|e| BootstrapError::Account {
                email: "bootstrap administrator",
                reason: format!("reading {}: {e}", path.display()),
            })
    };
    let email = read(email_file)?;
    let password = read(password_file)?;
    match state
        .auth
        .register(email.trim(), &password, Role::Admin, false)
        .await
    {
        Ok((id, _)) => {
            state
                .auth
                .audit
                .record(
                    AuditKind::AdminAction,
                    "bot-server",
                    "success",
                    serde_json::json!({"action": "bootstrap_admin_created", "user": id}),
                )
                .await;
            tracing::info!(user = %id, "bootstrap administrator created");
            Ok(Bootstrap::Created)
        }
        // Another replica created it first.
        Err(crate::auth::service::AuthError::EmailTaken) => Ok(Bootstrap::AdminExists),
        Err(e) => Err(BootstrapError::Account {
            email: "bootstrap administrator",
            reason: e.to_string(),
        }),
    }
}

/// The dev accounts printed at start.
pub struct DevLogin {
    /// The administrator's email.
    pub admin_email: &'static str,
    /// The user's email.
    pub user_email: &'static str,
    /// The password of both (random, for this run only).
    pub password: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for DevLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevLogin")
            .field("admin_email", &self.admin_email)
            .field("user_email", &self.user_email)
            .finish_non_exhaustive()
    }
}

/// Seeds dev mode: an administrator, a user and the example bot. Refused outside dev.
pub async fn seed_dev(state: &AppState, dev: bool) -> Result<Option<DevLogin>, BootstrapError> {
    if !dev {
        return Ok(None);
    }
    let mut raw = [0u8; 12];
    getrandom::fill(&mut raw).map_err(|e| BootstrapError::Account {
        email: "dev accounts",
        reason: e.to_string(),
    })?;
    use base64::Engine as _;
    let password = zeroize::Zeroizing::new(format!(
        "dev-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    ));
    let login = DevLogin {
        admin_email: "admin@dev.local",
        user_email: "user@dev.local",
        password,
    };
    for (email, role) in [
        (login.admin_email, Role::Admin),
        (login.user_email, Role::User),
    ] {
        match state
            .auth
            .register(email, &login.password, role, false)
            .await
        {
            Ok(_) | Err(crate::auth::service::AuthError::EmailTaken) => {}
            Err(e) => {
                return Err(BootstrapError::Account {
                    email: "dev account",
                    reason: format!("{email}: {e}"),
                });
            }
        }
    }
    let example = bots::parse_definition(bots::EXAMPLE)
        .map_err(|e| BootstrapError::Encode("support".into(), e.to_string()))?;
    let json = serde_json::to_string(&example)
        .map_err(|e| BootstrapError::Encode("support".into(), e.to_string()))?;
    match state.store.insert_bot(&example.slug, &json).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Some(login))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Policy;

    async fn state() -> AppState {
        let svc = crate::auth::service::tests::service(Policy::default()).await;
        AppState {
            store: svc.store.clone(),
            keys: svc.keys.clone(),
            metrics: svc.metrics.clone(),
            bots: crate::bots::registry::Registry::new(svc.store.clone()),
            auth: Arc::new(svc),
            policy: Policy::default(),
            reencrypting: Default::default(),
            files: crate::objects::files::Files::Local(
                std::env::temp_dir().join(format!("gb-files-{}", uuid::Uuid::new_v4())),
            ),
            retention: crate::config::Retention::default(),
            cpu_slots: AppState::cpu_bound(),
        }
    }

    #[tokio::test]
    async fn the_bootstrap_admin_is_created_once_and_never_overwritten() {
        let s = state().await;
        let dir = std::env::temp_dir().join(format!("gb-bootstrap-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (email, pw) = (dir.join("email"), dir.join("password"));
        std::fs::write(&email, "root@example.com\n").unwrap();
        std::fs::write(&pw, "a long first password\n").unwrap();
        assert_eq!(
            bootstrap_admin(&s, &email, &pw).await.unwrap(),
            Bootstrap::Created
        );
        std::fs::write(&pw, "another long password").unwrap();
        assert_eq!(
            bootstrap_admin(&s, &email, &pw).await.unwrap(),
            Bootstrap::AdminExists
        );
        let ip = "203.0.113.9".parse().unwrap();
        assert!(
            s.auth
                .login("root@example.com", "a long first password", None, ip)
                .await
                .is_ok()
        );
        assert!(
            s.auth
                .login("root@example.com", "another long password", None, ip)
                .await
                .is_err()
        );
        let rows = s.store.audit_page(0, 1_000).await.unwrap();
        assert_eq!(
            rows.iter()
                .filter(|r| r.detail.contains("bootstrap_admin_created"))
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn a_weak_bootstrap_password_is_refused_by_name() {
        let s = state().await;
        let dir = std::env::temp_dir().join(format!("gb-bootstrap-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (email, pw) = (dir.join("email"), dir.join("password"));
        std::fs::write(&email, "root@example.com").unwrap();
        std::fs::write(&pw, "short").unwrap();
        let e = bootstrap_admin(&s, &email, &pw)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("creating the bootstrap administrator:"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn dev_seeding_happens_only_in_dev() {
        let s = state().await;
        assert!(seed_dev(&s, false).await.unwrap().is_none());
        assert!(s.store.bots().await.unwrap().is_empty());
        let login = seed_dev(&s, true).await.unwrap().unwrap();
        assert_eq!(s.store.bots().await.unwrap().len(), 1);
        let ip = "203.0.113.9".parse().unwrap();
        assert!(
            s.auth
                .login(login.admin_email, &login.password, None, ip)
                .await
                .is_ok()
        );
    }
}
