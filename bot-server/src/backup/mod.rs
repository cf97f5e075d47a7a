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
pub mod tables;

use futures::TryStreamExt as _;
use generalbot_storage::layout::{self, BackupObject};
use generalbot_storage::upload::{MIN_PART, Multipart};
use generalbot_storage::{Client, StorageError};
use sqlx::Row as _;
use tokio::sync::mpsc;

use crate::config::Keys;
use crate::objects::sealed::{Opener, SealError, Sealer};
use crate::store::{Backend, Store};
use format::{Event, FormatError, Header, Reader};

/// Bytes of rows gathered before they go to the compressor.
const BLOCK: usize = 1024 * 1024;
/// Bytes of sealed output gathered into one uploaded part.
const PART: usize = 2 * MIN_PART;
/// Rows (or bytes of them) loaded per statement.
const LOAD_ROWS: usize = 2000;
const LOAD_BYTES: usize = 8 * 1024 * 1024;

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

/// A backup taken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Taken {
    /// Its object key.
    pub key: String,
    /// Its size in the bucket.
    pub bytes: u64,
    /// Bytes before compression and sealing.
    pub plain_bytes: u64,
    /// Rows.
    pub rows: u64,
    /// Tables.
    pub tables: usize,
}

/// Takes a backup of `store` into `bucket` under the data ring's active key.
pub async fn take(
    store: &Store,
    keys: &Keys,
    s3: &Client,
    bucket: &str,
    now: jiff::Timestamp,
) -> Result<Taken, BackupError> {
    if store.backend() != Backend::Postgres {
        return Err(BackupError::NotPostgres);
    }
    let key = layout::backup_key(now, keys.data.active_id());
    let (sealer, _) =
        Sealer::new(&keys.data, &format!("backup:{key}")).map_err(BackupError::seal(&key))?;
    let (plain_tx, plain_rx) = mpsc::channel::<Vec<u8>>(pipeline::DEPTH);
    let (sealed_tx, mut sealed_rx) = mpsc::channel::<Vec<u8>>(pipeline::DEPTH);
    let worker = pipeline::seal(sealer, plain_rx, sealed_tx);
    let producer = tokio::spawn(export(store.clone(), now, plain_tx));
    let mut upload = Multipart::start(s3, bucket, &key).await?;
    let mut part = Vec::with_capacity(PART);
    let mut sent = Ok(());
    while let Some(sealed) = sealed_rx.recv().await {
        part.extend_from_slice(&sealed);
        if part.len() >= PART {
            sent = upload.part(std::mem::take(&mut part)).await;
            if sent.is_err() {
                break;
            }
        }
    }
    drop(sealed_rx);
    let produced = producer
        .await
        .map_err(|_| BackupError::Worker("the export stopped"))
        .and_then(|r| r);
    let sealed = worker
        .await
        .map_err(|_| BackupError::Worker("the compressor stopped"))
        .and_then(|r| r);
    let done = async {
        sent?;
        let (rows, tables) = produced?;
        let plain_bytes = sealed?;
        upload.part(part).await?;
        Ok::<_, BackupError>((rows, tables, plain_bytes))
    }
    .await;
    match done {
        Ok((rows, tables, plain_bytes)) => {
            let bytes = upload.complete().await?;
            Ok(Taken {
                key,
                bytes,
                plain_bytes,
                rows,
                tables,
            })
        }
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}

/// Reads every table in one read-only snapshot and sends its lines in blocks.
async fn export(
    store: Store,
    now: jiff::Timestamp,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(u64, usize), BackupError> {
    let stopped = |_| BackupError::Worker("the compressor stopped");
    let mut conn = store
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(BackupError::db("opening a snapshot"))?;
    sqlx::query("SELECT set_config('app.user_id', $1, true)")
        .bind(crate::store::MAINTENANCE)
        .execute(&mut *conn)
        .await
        .map_err(BackupError::db("opening a snapshot"))?;
    let order = tables::in_order(&mut conn)
        .await
        .map_err(BackupError::db("listing the tables"))?;
    let schema: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(BackupError::db("reading the schema version"))?;
    let header = Header {
        format: format::FORMAT.into(),
        version: format::VERSION,
        schema,
        taken_at: now.to_string(),
        tables: order.clone(),
    };
    let mut block = format::header(&header).into_bytes();
    let mut total = 0u64;
    for table in &order {
        block.extend_from_slice(format::table(table).as_bytes());
        let sql = format!(
            "SELECT row_to_json(t)::text FROM {} t",
            tables::quoted(table)
        );
        let mut rows = sqlx::query(&sql).fetch(&mut *conn);
        let mut n = 0u64;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(BackupError::db("reading rows"))?
        {
            let json: String = row.try_get(0).map_err(BackupError::db("reading rows"))?;
            format::row(&mut block, &json);
            n += 1;
            if block.len() >= BLOCK {
                tx.send(std::mem::replace(
                    &mut block,
                    Vec::with_capacity(BLOCK + 4096),
                ))
                .await
                .map_err(stopped)?;
            }
        }
        drop(rows);
        total += n;
        block.extend_from_slice(format::end(table, n).as_bytes());
    }
    block.extend_from_slice(format::done(total).as_bytes());
    tx.send(block).await.map_err(stopped)?;
    conn.commit()
        .await
        .map_err(BackupError::db("closing the snapshot"))?;
    Ok((total, order.len()))
}

/// A restore done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    /// The object.
    pub key: String,
    /// Rows loaded.
    pub rows: u64,
    /// Tables loaded.
    pub tables: usize,
    /// The backup's schema version (the database was then migrated to this build's).
    pub schema: i64,
}

/// Restores `key` from `bucket` into the empty database `store` (connected as the
/// owner role), then migrates it to this build's schema.
pub async fn restore(
    store: &Store,
    keys: &Keys,
    s3: &Client,
    bucket: &str,
    key: &str,
) -> Result<Restored, BackupError> {
    if store.backend() != Backend::Postgres {
        return Err(BackupError::NotPostgres);
    }
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| StorageError::call("GetObject", bucket, e))?;
    let mut body = object.body;
    let (sealed_tx, sealed_rx) = mpsc::channel(pipeline::DEPTH);
    let (lines_tx, mut lines_rx) = mpsc::channel::<Vec<String>>(pipeline::DEPTH);
    let worker = pipeline::open(
        key.to_owned(),
        Opener::new(&keys.data, &format!("backup:{key}")),
        sealed_rx,
        lines_tx,
    );
    let bucket_name = bucket.to_owned();
    let download = tokio::spawn(async move {
        while let Some(chunk) = body.try_next().await.map_err(|e| StorageError::Call {
            call: "GetObject",
            bucket: bucket_name.clone(),
            message: e.to_string(),
        })? {
            if sealed_tx.send(chunk).await.is_err() {
                break;
            }
        }
        Ok::<_, BackupError>(())
    });
    let loaded = load(store, key, &mut lines_rx).await;
    drop(lines_rx);
    let downloaded = download
        .await
        .map_err(|_| BackupError::Worker("the download stopped"))
        .and_then(|r| r);
    let opened = worker
        .await
        .map_err(|_| BackupError::Worker("the decryption stopped"))
        .and_then(|r| r);
    // The object's verdict first (a cut or altered object causes the other errors),
    // unless the worker only stopped because the loader had.
    match opened {
        Err(BackupError::Worker(_)) => {}
        other => other?,
    }
    let (mut tx, restored, forced) = loaded?;
    downloaded?;
    for t in &forced {
        sqlx::query(&format!(
            "ALTER TABLE {} FORCE ROW LEVEL SECURITY",
            tables::quoted(t)
        ))
        .execute(&mut *tx)
        .await
        .map_err(BackupError::db("restoring row-level security"))?;
    }
    tx.commit()
        .await
        .map_err(BackupError::db("committing the restore"))?;
    store.migrate().await?;
    Ok(restored)
}

type LoadTx = sqlx::Transaction<'static, sqlx::Any>;

/// Loads lines into one transaction, returned uncommitted with what it loaded and the
/// tables whose forced row-level security it lifted for the load.
async fn load(
    store: &Store,
    key: &str,
    lines: &mut mpsc::Receiver<Vec<String>>,
) -> Result<(LoadTx, Restored, Vec<String>), BackupError> {
    let fmt = |source| BackupError::Format {
        key: key.to_owned(),
        source,
    };
    let mut reader = Reader::default();
    let mut tx: Option<LoadTx> = None;
    let mut forced = Vec::new();
    let mut header: Option<Header> = None;
    let mut batch: Vec<String> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut table = String::new();
    while let Some(chunk) = lines.recv().await {
        for line in &chunk {
            match reader.read(line).map_err(fmt)? {
                Event::Header(h) => {
                    let (t, f) = prepare(store, key, &h).await?;
                    tx = Some(t);
                    forced = f;
                    header = Some(h);
                }
                Event::Table(t) => table = t.to_owned(),
                Event::Row(json) => {
                    batch_bytes += json.len();
                    batch.push(json.to_owned());
                    if batch.len() >= LOAD_ROWS || batch_bytes >= LOAD_BYTES {
                        insert(tx.as_mut(), &table, &mut batch).await?;
                        batch_bytes = 0;
                    }
                }
                Event::End(_) => {
                    insert(tx.as_mut(), &table, &mut batch).await?;
                    batch_bytes = 0;
                }
                Event::Done => {}
            }
        }
    }
    let rows = reader.finish().map_err(fmt)?;
    match (tx, header) {
        (Some(tx), Some(h)) => Ok((
            tx,
            Restored {
                key: key.to_owned(),
                rows,
                tables: h.tables.len(),
                schema: h.schema,
            },
            forced,
        )),
        _ => Err(fmt(FormatError::Incomplete { line: 0 })),
    }
}

/// Brings the empty database to the backup's schema version, checks every table it
/// names exists and is empty, and opens the loading transaction. Row-level security
/// forced on the owner would refuse rows of other users, so it is lifted inside that
/// transaction only (the tables are returned) and forced again before it commits.
async fn prepare(
    store: &Store,
    key: &str,
    h: &Header,
) -> Result<(LoadTx, Vec<String>), BackupError> {
    let needed = Store::schema_needed();
    if h.schema > needed || h.schema < 1 {
        return Err(BackupError::Schema {
            key: key.to_owned(),
            backup: h.schema,
            why: format!(
                "this bot server knows schema versions 1 to {needed}: restore with the bot server version that took it"
            ),
        });
    }
    let at = store.schema_version().await?;
    if at > h.schema {
        return Err(BackupError::Schema {
            key: key.to_owned(),
            backup: h.schema,
            why: format!(
                "the database is already at version {at}: restore into a database with no schema"
            ),
        });
    }
    store.migrate_to(h.schema).await?;
    let mut tx = store
        .pool()
        .begin()
        .await
        .map_err(BackupError::db("opening the restore transaction"))?;
    sqlx::query("SELECT set_config('app.user_id', $1, true)")
        .bind(crate::store::MAINTENANCE)
        .execute(&mut *tx)
        .await
        .map_err(BackupError::db("opening the restore transaction"))?;
    let present = tables::in_order(&mut tx)
        .await
        .map_err(BackupError::db("listing the tables"))?;
    for t in &h.tables {
        if !present.contains(t) {
            return Err(BackupError::UnknownTable {
                key: key.to_owned(),
                table: t.clone(),
                schema: h.schema,
            });
        }
    }
    for t in &present {
        let rows: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {}", tables::quoted(t)))
            .fetch_one(&mut *tx)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(BackupError::db("checking the database is empty"))?;
        if rows > 0 {
            return Err(BackupError::NotEmpty {
                table: t.clone(),
                rows,
            });
        }
    }
    let forced: Vec<String> = sqlx::query(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relforcerowsecurity ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(BackupError::db("reading row-level security"))?
    .iter()
    .filter_map(|r| r.try_get::<String, _>(0).ok())
    .collect();
    for t in &forced {
        sqlx::query(&format!(
            "ALTER TABLE {} NO FORCE ROW LEVEL SECURITY",
            tables::quoted(t)
        ))
        .execute(&mut *tx)
        .await
        .map_err(BackupError::db("lifting row-level security for the load"))?;
    }
    Ok((tx, forced))
}

/// Inserts a batch of rows with PostgreSQL's own JSON-to-row conversion.
async fn insert(
    tx: Option<&mut LoadTx>,
    table: &str,
    batch: &mut Vec<String>,
) -> Result<(), BackupError> {
    if batch.is_empty() {
        return Ok(());
    }
    let tx = tx.ok_or(BackupError::Worker("rows before the header"))?;
    let t = tables::quoted(table);
    let mut array = String::with_capacity(batch.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    array.push('[');
    array.push_str(&batch.join(","));
    array.push(']');
    sqlx::query(&format!(
        "INSERT INTO {t} SELECT * FROM json_populate_recordset(NULL::{t}, $1::json)"
    ))
    .bind(array)
    .execute(&mut **tx)
    .await
    .map_err(BackupError::db("loading rows"))?;
    batch.clear();
    Ok(())
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
