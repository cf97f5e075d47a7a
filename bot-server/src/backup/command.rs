//! `bot-server backup` and `bot-server restore`: the configuration they need (the same
//! settings as the server: database, keys, object storage), then [`super::take`] with
//! the retention's pruning, or [`super::restore`] as the owner role.

use crate::config::{Config, ConfigError, DatabaseConfig, Source};
use crate::store::{Store, StoreError};

use super::{BackupError, Restored, Taken};

/// Why a backup command did not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The configuration is refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// There is no bucket.
    #[error(
        "backups go to object storage: set STORAGE_ENDPOINT and STORAGE_BUCKET (spec.services.objectStorage)"
    )]
    NoStorage,
    /// Restores run as the owner role.
    #[error(
        "restore runs as the role that owns the schema: set DATABASE_OWNER_USER_FILE and DATABASE_OWNER_PASSWORD_FILE"
    )]
    NoOwner,
    /// The database cannot be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The S3 client cannot be built.
    #[error(transparent)]
    Storage(#[from] generalbot_storage::StorageError),
    /// The backup or restore failed.
    #[error(transparent)]
    Backup(#[from] BackupError),
}

/// What `backup` did.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupReport {
    /// The backup.
    #[serde(flatten)]
    pub taken: Taken,
    /// Backups deleted as past the retention.
    pub pruned: Vec<String>,
    /// The retention in days.
    pub retention_days: u32,
}

fn storage(config: &Config) -> Result<(generalbot_storage::Client, String), CommandError> {
    let s = config
        .capabilities
        .storage
        .as_ref()
        .ok_or(CommandError::NoStorage)?;
    let client = s.client(config.capabilities.trust_bundle.as_deref())?;
    Ok((client, s.bucket.clone()))
}

/// Takes a backup, then prunes the ones past the retention.
pub async fn backup(src: &dyn Source, dev: bool) -> Result<BackupReport, CommandError> {
    let config = Config::load(src, dev)?;
    let (s3, bucket) = storage(&config)?;
    let store = Store::connect_only(&config.database).await?;
    let now = jiff::Timestamp::now();
    let taken = super::take(&store, &config.keys, &s3, &bucket, now).await;
    store.close().await;
    let taken = taken?;
    let days = config.capabilities.retention.backup_days;
    let pruned = super::prune(&s3, &bucket, now, days).await?;
    Ok(BackupReport {
        taken,
        pruned,
        retention_days: days,
    })
}

/// Restores `object` (or the newest backup) into the empty database, as the owner.
pub async fn restore(
    src: &dyn Source,
    dev: bool,
    object: Option<String>,
) -> Result<Restored, CommandError> {
    let config = Config::load(src, dev)?;
    let owner = config
        .database_owner
        .as_ref()
        .ok_or(CommandError::NoOwner)?;
    let (s3, bucket) = storage(&config)?;
    let key = match object {
        Some(k) => k,
        None => super::latest(&s3, &bucket).await?.key,
    };
    let store = Store::connect_only(owner).await?;
    let done = async {
        let restored = super::restore(&store, &config.keys, &s3, &bucket, &key).await?;
        if let DatabaseConfig::Postgres { user, .. } = &config.database {
            store.grant_runtime(user).await?;
        }
        Ok::<_, CommandError>(restored)
    }
    .await;
    store.close().await;
    done
}
