//! Encrypted database backups to the bucket, and restores from them (`bot-server backup`
//! and `bot-server restore`, run by the operator's CronJob and by hand).
//!
//! A backup reads every table ([`tables`]) in one read-only snapshot, as one line per
//! row ([`format`]), gzips it and seals it with the data ring's active key in 64 KiB
//! chunks ([`crate::objects::sealed`]), and uploads it in parts: it is never whole in
//! memory. The object's name carries its time and key id
//! ([`generalbot_storage::layout`]), so pruning and the key-usage report need only a
//! listing. A restore loads one into an empty database in a single transaction that
//! commits only once the last chunk has authenticated and every count matched: a
//! truncated or altered backup changes nothing.

pub mod command;
pub mod format;
mod pipeline;
mod restore;
pub mod tables;
mod take;

pub use restore::{Restored, restore};
pub use take::{Taken, take};

use generalbot_storage::layout::{self, BackupObject};
use generalbot_storage::{Client, StorageError};

use crate::objects::sealed::SealError;
use format::FormatError;

/// Why a backup or a restore failed; nothing was committed or left half-written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Backups read PostgreSQL.
    #[error(
        "backups need PostgreSQL (DATABASE_URL or DATABASE_HOST); the embedded SQLite database is one file to copy"
    )]
    NotPostgres,
    /// A database step failed.
    #[error("database, {what}: {source}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The schema could not be brought to the backup's version.
    #[error("migrating the database: {0}")]
    Migrate(#[from] crate::store::StoreError),
    /// The bucket refused or could not be reached.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The sealed object does not open.
    #[error("backup {key}: {source}")]
    Seal {
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: SealError,
    },
    /// The content is not a whole, well-ordered backup.
    #[error("backup {key}: {source}")]
    Format {
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: FormatError,
    },
    /// Compressing failed.
    #[error("compressing the backup: {0}")]
    Compress(#[source] std::io::Error),
    /// The content does not decompress.
    #[error("backup {key}: it does not decompress ({source}); it is damaged")]
    Inflate {
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The target database is not empty.
    #[error(
        "restore needs an empty database: table {table} has {rows} rows (restore into a new database, then point the GeneralBot at it)"
    )]
    NotEmpty {
        /// The table.
        table: String,
        /// Its rows.
        rows: i64,
    },
    /// The backup is of a schema this database cannot take.
    #[error("backup {key} is of schema version {backup}; {why}")]
    Schema {
        /// The object.
        key: String,
        /// The backup's version.
        backup: i64,
        /// Why it cannot load.
        why: String,
    },
    /// The backup names a table the schema does not have.
    #[error("backup {key} holds table {table:?}, which schema version {schema} does not have")]
    UnknownTable {
        /// The object.
        key: String,
        /// The table.
        table: String,
        /// The schema version.
        schema: i64,
    },
    /// A pipeline stage stopped.
    #[error("backup pipeline: {0}")]
    Worker(&'static str),
    /// No backup to restore.
    #[error("bucket {0:?} holds no backup")]
    NoBackup(String),
}

impl BackupError {
    fn seal(key: &str) -> impl Fn(SealError) -> Self + '_ {
        move |source| Self::Seal {
            key: key.to_owned(),
            source,
        }
    }
    fn inflate(key: &str) -> impl Fn(std::io::Error) -> Self + '_ {
        move |source| Self::Inflate {
            key: key.to_owned(),
            source,
        }
    }
    fn db(what: &'static str) -> impl Fn(sqlx::Error) -> Self {
        move |source| Self::Database { what, source }
    }
}

/// Deletes the backups past `retention_days` (never the newest); returns their keys.
pub async fn prune(
    s3: &Client,
    bucket: &str,
    now: jiff::Timestamp,
    retention_days: u32,
) -> Result<Vec<String>, BackupError> {
    let all = layout::list_backups(s3, bucket).await?;
    let mut gone = Vec::new();
    for b in layout::expired(&all, now, retention_days) {
        s3.delete_object()
            .bucket(bucket)
            .key(&b.key)
            .send()
            .await
            .map_err(|e| StorageError::call("DeleteObject", bucket, e))?;
        gone.push(b.key.clone());
    }
    Ok(gone)
}

/// The newest backup, for `restore --latest`.
pub async fn latest(s3: &Client, bucket: &str) -> Result<BackupObject, BackupError> {
    layout::list_backups(s3, bucket)
        .await?
        .pop()
        .ok_or_else(|| BackupError::NoBackup(bucket.to_owned()))
}
