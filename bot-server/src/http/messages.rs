//! `/api/conversations`: a user's conversations (with a bot, or plain notes) and their
//! messages over HTTP, stored encrypted and visible only to their owner. The logic is
//! [`super::chat`]'s, shared with the WebSocket.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::chat::{self, HistoryMessage};
use super::error::ApiError;
use super::extractor::AuthUser;
use crate::bots::run::Reply;

pub use super::chat::body_context;

/// A new conversation.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// The bot to talk to (none: a conversation of plain notes).
    #[serde(default)]
    pub bot: Option<String>,
}

/// A new message.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct NewMessage {
    /// The text.
    pub text: String,
}

/// A message stored, and the bot's replies.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Said {
    /// The id of the stored message.
    pub id: String,
    /// What the bot answered (none in a conversation without a bot).
    pub replies: Vec<Reply>,
}

/// A conversation as listed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ConversationSummary {
    /// Id.
    pub id: String,
    /// Its bot.
    pub bot: Option<String>,
    /// Unix microseconds.
    pub created_at: i64,
}

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list_conversations))
        .routes(routes!(list, append))
}

/// Starts a conversation, with a bot (its first replies) or of plain notes (no body).
#[utoipa::path(post, path = "/api/conversations", operation_id = "start_conversation", tag = "chat", security(("bearer" = [])),
    request_body(content = Option<NewConversation>, description = "the bot to talk to; none for plain notes"),
    responses((status = 200, description = "`id` and the bot's first `replies`", body = serde_json::Value),
        (status = 404, description = "no such bot")))]
async fn create(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    // No body (or an empty one) starts a conversation of plain notes.
    let new: NewConversation = if body.iter().all(u8::is_ascii_whitespace) {
        NewConversation::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::BadRequest("the body must be {\"bot\": \"<slug>\"} or empty"))?
    };
    let (id, replies) = chat::start(&s, &p.user_id, new.bot.as_deref()).await?;
    Ok(Json(serde_json::json!({ "id": id, "replies": replies })))
}

/// The caller's conversations, newest first.
#[utoipa::path(get, path = "/api/conversations", operation_id = "list_conversations", tag = "chat", security(("bearer" = [])),
    responses((status = 200, description = "success", body = Vec<ConversationSummary>)))]
async fn list_conversations(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
) -> Result<Json<Vec<ConversationSummary>>, ApiError> {
    let rows = s.store.conversations(&p.user_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| ConversationSummary {
                id: r.id,
                bot: r.bot_slug,
                created_at: r.created_at,
            })
            .collect(),
    ))
}

/// Says something; the bot's turn answers.
#[utoipa::path(post, path = "/api/conversations/{id}/messages", operation_id = "send_message", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path, description = "the conversation")), request_body = NewMessage,
    responses((status = 200, description = "success", body = Said), (status = 404, description = "not the caller's conversation"),
        (status = 409, description = "busy with other messages: send again")))]
async fn append(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Path(conv): Path<String>,
    Json(m): Json<NewMessage>,
) -> Result<Json<Said>, ApiError> {
    let (id, replies) = chat::say(&s, &p.user_id, &conv, &m.text).await?;
    Ok(Json(Said { id, replies }))
}

/// The conversation's messages, decrypted for its owner (audited).
#[utoipa::path(get, path = "/api/conversations/{id}/messages", operation_id = "list_messages", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path, description = "the conversation")),
    responses((status = 200, description = "success", body = Vec<HistoryMessage>), (status = 404, description = "not the caller's conversation")))]
async fn list(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Path(conv): Path<String>,
) -> Result<Json<Vec<HistoryMessage>>, ApiError> {
    Ok(Json(chat::history(&s, &p.user_id, &conv).await?))
}
