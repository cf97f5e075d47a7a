//! What the server sets up at start: the bots of a mounted directory (written only when
//! they changed, so replicas starting together write nothing twice), and in dev mode an
//! administrator, a user and the example bot, with the sign-in printed once.

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
    #[error("creating the dev account {email}: {reason}")]
    Account {
        /// The account.
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
        email: "",
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
                    email,
                    reason: e.to_string(),
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
