//! `/api/conversations`: a user's conversations and their messages, stored encrypted
//! (AES-256-GCM bound to the message row) and visible only to their owner.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use super::error::ApiError;
use super::extractor::AuthUser;
use crate::audit::AuditKind;
use crate::crypto::field::{self, FieldContext};

/// A new message.
#[derive(serde::Deserialize)]
pub struct NewMessage {
    /// The text.
    pub text: String,
}

/// A message as returned.
#[derive(serde::Serialize)]
pub struct Message {
    /// Id.
    pub id: String,
    /// The text.
    pub text: String,
    /// Unix microseconds.
    pub created_at: i64,
}

/// The routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/conversations", post(create))
        .route("/api/conversations/{id}/messages", get(list).post(append))
}

/// The field context of a message body.
pub fn body_context(id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "messages",
        column: "body",
        row: id,
    }
}

async fn create(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    s.store.insert_conversation(&p.user_id, &id).await?;
    s.auth
        .audit
        .record(
            AuditKind::DataWrite,
            &p.user_id,
            "success",
            serde_json::json!({"conversation": id}),
        )
        .await;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn append(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Path(conv): Path<String>,
    Json(m): Json<NewMessage>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !s.store.owns_conversation(&p.user_id, &conv).await? {
        return Err(ApiError::NotFound);
    }
    if m.text.is_empty() {
        return Err(ApiError::BadRequest("empty message"));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let body = field::encrypt(
        &s.keys.current().field,
        &body_context(&id),
        m.text.as_bytes(),
    )?;
    s.store
        .insert_message(&p.user_id, &conv, &id, &body)
        .await?;
    s.auth
        .audit
        .record(
            AuditKind::DataWrite,
            &p.user_id,
            "success",
            serde_json::json!({"conversation": conv, "message": id}),
        )
        .await;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn list(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Path(conv): Path<String>,
) -> Result<Json<Vec<Message>>, ApiError> {
    if !s.store.owns_conversation(&p.user_id, &conv).await? {
        return Err(ApiError::NotFound);
    }
    let keys = s.keys.current();
    let rows = s.store.messages(&p.user_id, &conv).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let text = field::decrypt_text(&keys.field, &body_context(&r.id), &r.body_enc)?;
        out.push(Message {
            id: r.id,
            text: text.to_string(),
            created_at: r.created_at,
        });
    }
    s.auth
        .audit
        .record(
            AuditKind::DataRead,
            &p.user_id,
            "success",
            serde_json::json!({"conversation": conv, "messages": out.len()}),
        )
        .await;
    Ok(Json(out))
}
