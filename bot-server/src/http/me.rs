//! `/api/me`: the GDPR rights of the signed-in user. `GET /api/me/export` gives all the
//! data held about them as JSON, decrypted for them (never a password hash, a TOTP secret
//! or a token), audited. `DELETE /api/me` with `{"confirm": "erase my account"}` erases
//! the account and everything of it; the audit record left names only the account's
//! random id.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::chat::{self, state_context};
use super::error::ApiError;
use super::extractor::AuthUser;
use crate::audit::AuditKind;
use crate::auth::Role;
use crate::crypto::field::{self, FieldContext};

/// The phrase that confirms an erasure.
pub const CONFIRM: &str = "erase my account";

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(erase))
        .routes(routes!(export))
}

/// All the data held about the caller, decrypted for them (audited).
#[utoipa::path(get, path = "/api/me/export", tag = "gdpr", security(("bearer" = [])),
    responses((status = 200, description = "the account, identities, conversations and messages", body = serde_json::Value)))]
async fn export(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
) -> Result<impl IntoResponse, ApiError> {
    let profile = s
        .store
        .profile(&p.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let keys = s.keys.current();
    let email = field::decrypt_text(
        &keys.field,
        &FieldContext {
            table: "users",
            column: "email",
            row: &p.user_id,
        },
        &profile.email_enc,
    )?;
    let mut conversations = Vec::new();
    for c in s.store.conversations(&p.user_id).await? {
        let state = match &c.state_enc {
            Some(sealed) => {
                let json = field::decrypt(&keys.field, &state_context(&c.id), sealed)?;
                serde_json::from_slice::<serde_json::Value>(&json).unwrap_or_default()
            }
            None => serde_json::Value::Null,
        };
        let messages = chat::history_unaudited(&s, &p.user_id, &c.id).await?;
        conversations.push(serde_json::json!({
            "id": c.id,
            "bot": c.bot_slug,
            "created_at": c.created_at,
            "state": state,
            "messages": messages,
        }));
    }
    // Attachments are listed (the files themselves are downloaded one by one).
    let attachments = s
        .store
        .attachments_of(&p.user_id)
        .await?
        .iter()
        .map(|row| super::attachments::Attachment::of(&s, row))
        .collect::<Result<Vec<_>, _>>()?;
    let body = serde_json::json!({
        "exported_at": jiff::Timestamp::now().to_string(),
        "account": {
            "id": p.user_id,
            "email": email.as_str(),
            "role": profile.role,
            "created_at": profile.created_at,
            "totp_enabled": profile.totp,
            "directory_identities": s.store.identities(&p.user_id).await?,
        },
        "conversations": conversations,
        "attachments": attachments,
    });
    s.auth
        .audit
        .record(
            AuditKind::DataRead,
            &p.user_id,
            "success",
            serde_json::json!({"action": "gdpr_export", "conversations": conversations.len()}),
        )
        .await;
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"generalbot-export.json\"",
        )],
        Json(body),
    ))
}

/// The erasure confirmation.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Erase {
    /// Must be [`CONFIRM`].
    pub confirm: String,
}

/// Erases the caller's account and everything of it.
#[utoipa::path(delete, path = "/api/me", tag = "gdpr", security(("bearer" = [])), request_body = Erase,
    responses((status = 204, description = "erased"), (status = 400, description = "not confirmed"),
        (status = 409, description = "the last administrator")))]
async fn erase(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Json(e): Json<Erase>,
) -> Result<StatusCode, ApiError> {
    if e.confirm != CONFIRM {
        return Err(ApiError::BadRequest(
            "send {\"confirm\": \"erase my account\"} to erase your account and all its data",
        ));
    }
    if p.role == Role::Admin && s.store.admins().await?.len() <= 1 {
        return Err(ApiError::Conflict(
            "the last administrator cannot erase their account: make another administrator first",
        ));
    }
    let files: Vec<String> = s
        .store
        .attachments_of(&p.user_id)
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect();
    if !s.store.delete_user(&p.user_id).await? {
        return Err(ApiError::NotFound);
    }
    crate::objects::attachments::remove_files(&s, &files).await;
    s.auth
        .audit
        .record(
            AuditKind::DataWrite,
            &p.user_id,
            "success",
            serde_json::json!({"action": "gdpr_erasure"}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
