//! Restoring a backup into an empty database: brought to the backup's schema version,
//! loaded in one transaction that commits only once the object's last chunk has
//! authenticated and every count matched, then migrated to this build's schema.

use generalbot_storage::{Client, StorageError};
use sqlx::Row as _;
use tokio::sync::mpsc;

use super::format::{Event, FormatError, Header, Reader};
use super::{BackupError, pipeline, tables};
use crate::config::Keys;
use crate::objects::sealed::Opener;
use crate::store::{Backend, Store};

/// Rows (or bytes of them) loaded per statement.
const LOAD_ROWS: usize = 2000;
const LOAD_BYTES: usize = 8 * 1024 * 1024;

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
