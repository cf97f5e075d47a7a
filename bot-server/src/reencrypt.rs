//! Background re-encryption: rewrites every stored value that is not under the active
//! field key, so a key the operator rotated out stops being used and the key-usage
//! report can reach zero for it. Each value is decrypted with its own key and
//! re-encrypted with the active one for the same table, column and row; a value
//! changed meanwhile is left to the next pass.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::crypto::field::{self, FieldContext, FieldError};
use crate::http::AppState;
use crate::store::StoreError;

/// What failed while re-encrypting.
#[derive(Debug, thiserror::Error)]
pub enum ReencryptError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be decrypted (its key left the ring, or it was altered).
    #[error("re-encrypting {table}.{column} of row {row}: {source}")]
    Field {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// Row id.
        row: String,
        /// What failed.
        #[source]
        source: FieldError,
    },
}

/// One pass; returns how many values were rewritten.
pub async fn run_once(state: &AppState) -> Result<u64, ReencryptError> {
    state.reencrypting.store(true, Ordering::SeqCst);
    let result = pass(state).await;
    state.reencrypting.store(false, Ordering::SeqCst);
    result
}

async fn pass(state: &AppState) -> Result<u64, ReencryptError> {
    let keys = state.keys.current();
    let active = keys.field.active_id().to_owned();
    let mut rewritten = 0;
    for v in state.store.encrypted_values().await? {
        if field::key_id_of(&v.envelope) == Some(active.as_str()) {
            continue;
        }
        let (table, column) = v.column.context();
        let ctx = FieldContext {
            table,
            column,
            row: &v.row,
        };
        let err = |source| ReencryptError::Field {
            table,
            column,
            row: v.row.clone(),
            source,
        };
        let plain = field::decrypt(&keys.field, &ctx, &v.envelope).map_err(err)?;
        let new = field::encrypt(&keys.field, &ctx, &plain).map_err(err)?;
        if state.store.replace_value(&v, &new).await? {
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// Runs a pass every `every`, logging what it did (counts only).
pub fn spawn(state: Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&state).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(rewritten = n, "re-encrypted values to the active field key")
                }
                Err(e) => tracing::error!(error = %e, "re-encryption pass failed"),
            }
        }
    })
}
