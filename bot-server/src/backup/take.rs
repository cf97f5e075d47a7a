//! Taking a backup: every table read in one read-only snapshot (as the maintenance
//! scope, which row-level security lets read every row), gzipped and sealed on one
//! blocking thread, uploaded in parts as it is produced.

use futures::TryStreamExt as _;
use generalbot_storage::Client;
use generalbot_storage::layout;
use generalbot_storage::upload::{MIN_PART, Multipart};
use sqlx::Row as _;
use tokio::sync::mpsc;

use super::format::{self, Header};
use super::{BackupError, pipeline, tables};
use crate::config::Keys;
use crate::objects::sealed::Sealer;
use crate::store::{Backend, Store};

/// Bytes of rows gathered before they go to the compressor.
const BLOCK: usize = 1024 * 1024;
/// Bytes of sealed output gathered into one uploaded part.
const PART: usize = 2 * MIN_PART;

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
