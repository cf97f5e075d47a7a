//! Talking to a bot, the same over HTTP and the WebSocket: start a conversation (the
//! welcome and the flow up to its first question), say something (the bot's turn), read
//! the history. The conversation's state and every message are encrypted, bound to
//! their row; a turn is written whole or not at all, and retried when another turn on
//! the same conversation won the race.

use std::sync::Arc;

use super::AppState;
use super::error::ApiError;
use crate::audit::AuditKind;
use crate::bots::Bot;
use crate::bots::run::{self, ConversationState, Outcome, Reply};
use crate::crypto::field::{self, FieldContext};
use crate::store::{NewMessage, Sender};

/// The longest message a person may send, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Attempts at a turn when other turns on the same conversation win.
const TURN_ATTEMPTS: usize = 3;

/// The field context of a message body.
pub fn body_context(id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "messages",
        column: "body",
        row: id,
    }
}

/// The field context of a conversation's state.
pub fn state_context(id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "conversations",
        column: "state",
        row: id,
    }
}

fn message(s: &AppState, text: &str, sender: Sender) -> Result<NewMessage, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    let body_enc = field::encrypt(&s.keys.current().field, &body_context(&id), text.as_bytes())?;
    Ok(NewMessage {
        id,
        body_enc,
        sender,
    })
}

fn seal_state(s: &AppState, conv: &str, state: &ConversationState) -> Result<String, ApiError> {
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(state).map_err(|e| ApiError::Invalid(e.to_string()))?,
    );
    Ok(field::encrypt(
        &s.keys.current().field,
        &state_context(conv),
        &json,
    )?)
}

fn open_state(s: &AppState, conv: &str, sealed: &str) -> Result<ConversationState, ApiError> {
    let json = field::decrypt(&s.keys.current().field, &state_context(conv), sealed)?;
    // A state this server cannot read (written by another version) starts over.
    Ok(serde_json::from_slice(&json).unwrap_or_default())
}

fn count(s: &AppState, outcome: Outcome) {
    match outcome {
        Outcome::Answered => s.metrics.bot_answered.inc(),
        Outcome::Unsure => s.metrics.bot_unsure.inc(),
        Outcome::StepLimit => s.metrics.bot_step_limits.inc(),
        Outcome::Flow => 0,
    };
}

async fn bot(s: &AppState, slug: &str) -> Result<Arc<Bot>, ApiError> {
    match s.bots.get(slug).await {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(ApiError::NotFound),
        Err(e) => {
            tracing::error!(error = %e, "loading a bot");
            Err(ApiError::Conflict("this bot cannot be used now"))
        }
    }
}

/// Runs a pure bot step on the blocking pool (a large knowledge base is real work).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::Conflict("the bot's turn was cancelled"))
}

/// Starts a conversation with a bot: its id and the bot's first replies.
pub async fn start(
    s: &AppState,
    user: &str,
    slug: Option<&str>,
) -> Result<(String, Vec<Reply>), ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    let Some(slug) = slug else {
        s.store.insert_conversation(user, &id, None, &[]).await?;
        audit(s, user, serde_json::json!({"conversation": id})).await;
        return Ok((id, Vec::new()));
    };
    let bot = bot(s, slug).await?;
    let (replies, state, outcome) = blocking(move || {
        let mut state = ConversationState::default();
        let (replies, outcome) = run::begin(&bot, &mut state);
        (replies, state, outcome)
    })
    .await?;
    count(s, outcome);
    let sealed = seal_state(s, &id, &state)?;
    let messages = replies
        .iter()
        .map(|r| message(s, &r.text, Sender::Bot))
        .collect::<Result<Vec<_>, _>>()?;
    s.store
        .insert_conversation(user, &id, Some((slug, &sealed)), &messages)
        .await?;
    audit(
        s,
        user,
        serde_json::json!({"conversation": id, "bot": slug}),
    )
    .await;
    Ok((id, replies))
}

/// Says something in a conversation; returns the id of the stored message and the bot's
/// replies (none without a bot).
pub async fn say(
    s: &AppState,
    user: &str,
    conv: &str,
    text: &str,
) -> Result<(String, Vec<Reply>), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest("empty message"));
    }
    if text.len() > MAX_TEXT {
        return Err(ApiError::BadRequest("message longer than 16 KiB"));
    }
    for _ in 0..TURN_ATTEMPTS {
        let row = s
            .store
            .conversation(user, conv)
            .await?
            .ok_or(ApiError::NotFound)?;
        let (Some(slug), Some(sealed)) = (row.bot_slug, row.state_enc) else {
            let m = message(s, text, Sender::User)?;
            let id = m.id.clone();
            s.store.insert_messages(user, conv, &[m]).await?;
            audit(
                s,
                user,
                serde_json::json!({"conversation": conv, "message": id}),
            )
            .await;
            return Ok((id, Vec::new()));
        };
        let bot = bot(s, &slug).await?;
        let state = open_state(s, conv, &sealed)?;
        let input = text.to_owned();
        let (replies, state, outcome) = blocking(move || {
            let mut state = state;
            let (replies, outcome) = run::turn(&bot, &mut state, &input);
            (replies, state, outcome)
        })
        .await?;
        let said = message(s, text, Sender::User)?;
        let id = said.id.clone();
        let mut messages = vec![said];
        for r in &replies {
            messages.push(message(s, &r.text, Sender::Bot)?);
        }
        let new_state = seal_state(s, conv, &state)?;
        if s.store
            .record_turn(user, conv, &sealed, &new_state, &messages)
            .await?
        {
            count(s, outcome);
            audit(
                s,
                user,
                serde_json::json!({"conversation": conv, "bot": slug, "messages": messages.len()}),
            )
            .await;
            return Ok((id, replies));
        }
    }
    Err(ApiError::Conflict(
        "this conversation is busy with other messages; send again",
    ))
}

/// A message of the history.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryMessage {
    /// Id.
    pub id: String,
    /// Who said it.
    pub sender: Sender,
    /// The text.
    pub text: String,
    /// Unix microseconds.
    pub created_at: i64,
}

/// A conversation's messages, decrypted for its owner (audited).
pub async fn history(
    s: &AppState,
    user: &str,
    conv: &str,
) -> Result<Vec<HistoryMessage>, ApiError> {
    if !s.store.owns_conversation(user, conv).await? {
        return Err(ApiError::NotFound);
    }
    let out = history_unaudited(s, user, conv).await?;
    s.auth
        .audit
        .record(
            AuditKind::DataRead,
            user,
            "success",
            serde_json::json!({"conversation": conv, "messages": out.len()}),
        )
        .await;
    Ok(out)
}

/// A conversation's messages, decrypted (the caller audits; rows are the user's only).
pub async fn history_unaudited(
    s: &AppState,
    user: &str,
    conv: &str,
) -> Result<Vec<HistoryMessage>, ApiError> {
    let keys = s.keys.current();
    let rows = s.store.messages(user, conv).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let text = field::decrypt_text(&keys.field, &body_context(&r.id), &r.body_enc)?;
        out.push(HistoryMessage {
            id: r.id,
            sender: r.sender,
            text: text.to_string(),
            created_at: r.created_at,
        });
    }
    Ok(out)
}

async fn audit(s: &AppState, user: &str, detail: serde_json::Value) {
    s.auth
        .audit
        .record(AuditKind::DataWrite, user, "success", detail)
        .await;
}
