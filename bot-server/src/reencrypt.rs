//! Background re-encryption and re-indexing: rewrites every stored value that is not
//! under the active field key, and every email blind index that is not under the active
//! HMAC key, so a key the operator rotated out stops being used and the key-usage report
//! can reach zero for it. Each value is decrypted with its own key and re-encrypted with
//! the active one for the same table, column and row; a value changed meanwhile is left
//! to the next pass. A value that cannot be decrypted (its key left the ring, or it was
//! altered) is logged, audited and counted (metric) by place, never by content, and
//! skipped: it keeps its key reported as needed, and the rest of the pass goes on.
//! Values are read in keyset pages; one replica at a time runs a pass (a database lock).
//! A pass ends by signing the audit chain's head under the active HMAC key, if it is not.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::audit::AuditKind;
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

/// The advisory lock that lets one replica at a time run a pass.
pub const PASS_LOCK: i64 = 7_243_912;

/// One pass over every encrypted value and blind index; `None` when another replica is
/// running one.
pub async fn run_once(state: &AppState) -> Result<Option<Outcome>, StoreError> {
    let store = state.store.clone();
    store
        .exclusively(PASS_LOCK, async {
            state.reencrypting.store(true, Ordering::SeqCst);
            let mut outcome = Outcome::default();
            let mut result = reencrypt(state, &mut outcome).await;
            if result.is_ok() {
                result = reindex(state, &mut outcome).await;
            }
            if result.is_ok() {
                result = resign_audit_head(state).await;
            }
            state.reencrypting.store(false, Ordering::SeqCst);
            result.map(|()| outcome)
        })
        .await?
        .transpose()
}

/// When the audit chain's last row is signed by an HMAC key that is no longer active,
/// appends a row signed by the active key: it vouches for every row before it, so the
/// old key is no longer needed to verify the chain.
async fn resign_audit_head(state: &AppState) -> Result<(), StoreError> {
    let audit = &state.auth.audit;
    let head = match audit.head(None).await {
        Ok(head) => head,
        Err(crate::audit::AuditError::Store(e)) => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "reading the audit head");
            return Ok(());
        }
    };
    let active = state.keys.current().hmac.active_id().to_owned();
    if head.seq > 0 && head.mac_key != active {
        audit
            .record(
                AuditKind::ConfigChange,
                "system",
                "success",
                serde_json::json!({"action": "audit_chain_signed", "key": active, "previous_key": head.mac_key, "through": head.seq}),
            )
            .await;
    }
    Ok(())
}

/// A value left as it is: logged and audited by place, never by content, and counted.
async fn skipped(
    state: &AppState,
    table: &str,
    column: &str,
    row: &str,
    e: &FieldError,
    outcome: &mut Outcome,
) {
    tracing::error!(table, column, row, error = %e, "a stored value cannot be decrypted; left as it is");
    state.metrics.undecryptable.inc();
    state
        .auth
        .audit
        .record(
            AuditKind::SecurityViolation,
            "system",
            "undecryptable_value",
            serde_json::json!({"table": table, "column": column, "row": row, "error": e.to_string()}),
        )
        .await;
    outcome.skipped += 1;
}

async fn reencrypt(state: &AppState, outcome: &mut Outcome) -> Result<(), StoreError> {
    let keys = state.keys.current();
    let active = keys.field.active_id().to_owned();
    let mut pages = state.store.encrypted_pages();
    while let Some(page) = pages.next().await? {
        for v in page {
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
                Err(e) => skipped(state, table, column, &v.row, &e, outcome).await,
            }
        }
    }
    Ok(())
}

async fn reindex(state: &AppState, outcome: &mut Outcome) -> Result<(), StoreError> {
    let keys = state.keys.current();
    let active = keys.hmac.active_id().to_owned();
    let mut pages = state.store.email_pages();
    while let Some(page) = pages.next().await? {
        for row in page {
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
                    skipped(state, "users", "email", &row.id, &e, outcome).await;
                    continue;
                }
            };
            let Ok(email) = std::str::from_utf8(&email) else {
                skipped(
                    state,
                    "users",
                    "email",
                    &row.id,
                    &FieldError::Malformed,
                    outcome,
                )
                .await;
                continue;
            };
            if let Some((key, index)) = blind_index::index(&keys.hmac, blind_index::EMAIL, email)
                && state.store.reindex_email(&row, &index, &key).await?
            {
                outcome.reindexed += 1;
            }
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
                Ok(None) => tracing::debug!("another replica is moving stored values"),
                Ok(Some(Outcome {
                    rewritten: 0,
                    reindexed: 0,
                    skipped: 0,
                })) => {}
                Ok(Some(o)) => tracing::info!(
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
