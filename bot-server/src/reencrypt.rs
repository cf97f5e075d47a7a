//! Background re-encryption and re-indexing: rewrites every stored value that is not
//! under the active field key, and every email blind index that is not under the active
//! HMAC key, so a key the operator rotated out stops being used and the key-usage report
//! can reach zero for it. Each value is decrypted with its own key and re-encrypted with
//! the active one for the same table, column and row; a value changed meanwhile is left
//! to the next pass. A value that cannot be decrypted (its key left the ring, or it was
//! altered) is logged by place, never by content, and skipped: it keeps its key
//! reported as needed, and the rest of the pass goes on.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::crypto::blind_index;
use crate::crypto::field::{self, FieldContext, FieldError};
use crate::http::AppState;
use crate::store::StoreError;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Values re-encrypted under the active field key.
    pub rewritten: u64,
    /// Email blind indexes recomputed under the active HMAC key.
    pub reindexed: u64,
    /// Values that could not be decrypted and were left as they are.
    pub skipped: u64,
}

/// One pass over every encrypted value and blind index.
pub async fn run_once(state: &AppState) -> Result<Outcome, StoreError> {
    state.reencrypting.store(true, Ordering::SeqCst);
    let mut outcome = Outcome::default();
    let mut result = reencrypt(state, &mut outcome).await;
    if result.is_ok() {
        result = reindex(state, &mut outcome).await;
    }
    state.reencrypting.store(false, Ordering::SeqCst);
    result.map(|()| outcome)
}

fn skipped(table: &str, column: &str, row: &str, e: &FieldError, outcome: &mut Outcome) {
    tracing::error!(table, column, row, error = %e, "a stored value cannot be decrypted; left as it is");
    outcome.skipped += 1;
}

async fn reencrypt(state: &AppState, outcome: &mut Outcome) -> Result<(), StoreError> {
    let keys = state.keys.current();
    let active = keys.field.active_id().to_owned();
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
        let new = field::decrypt(&keys.field, &ctx, &v.envelope)
            .and_then(|plain| field::encrypt(&keys.field, &ctx, &plain));
        match new {
            Ok(new) => {
                if state.store.replace_value(&v, &new).await? {
                    outcome.rewritten += 1;
                }
            }
            Err(e) => skipped(table, column, &v.row, &e, outcome),
        }
    }
    Ok(())
}

async fn reindex(state: &AppState, outcome: &mut Outcome) -> Result<(), StoreError> {
    let keys = state.keys.current();
    let active = keys.hmac.active_id().to_owned();
    for row in state.store.indexed_emails().await? {
        if row.key == active {
            continue;
        }
        let ctx = FieldContext {
            table: "users",
            column: "email",
            row: &row.id,
        };
        let email = match field::decrypt(&keys.field, &ctx, &row.email_enc) {
            Ok(email) => email,
            Err(e) => {
                skipped("users", "email", &row.id, &e, outcome);
                continue;
            }
        };
        let Ok(email) = std::str::from_utf8(&email) else {
            skipped("users", "email", &row.id, &FieldError::Malformed, outcome);
            continue;
        };
        let Some((key, index)) = blind_index::index(&keys.hmac, blind_index::EMAIL, email) else {
            return Ok(());
        };
        if state.store.reindex_email(&row, &index, &key).await? {
            outcome.reindexed += 1;
        }
    }
    Ok(())
}

/// Runs a pass every `every`, logging what it did (counts only).
pub fn spawn(state: Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&state).await {
                Ok(Outcome {
                    rewritten: 0,
                    reindexed: 0,
                    skipped: 0,
                }) => {}
                Ok(o) => tracing::info!(
                    rewritten = o.rewritten,
                    reindexed = o.reindexed,
                    skipped = o.skipped,
                    "moved stored values to the active field and HMAC keys"
                ),
                Err(e) => tracing::error!(error = %e, "re-encryption pass failed"),
            }
        }
    })
}
