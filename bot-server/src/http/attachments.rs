//! `/api/conversations/{id}/attachments` and `/api/attachments/{id}`: send a file in
//! your conversation (its type declared and checked, sealed before it is stored), read
//! it back, delete it; owners only, audited. The rules are
//! [`crate::objects::attachments`]'.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extractor::AuthUser;
use crate::audit::AuditKind;
use crate::objects::attachments;
use crate::store::AttachmentRow;

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(download, remove))
}

/// An attachment, as the API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// Its id.
    pub id: String,
    /// The conversation.
    pub conversation: String,
    /// Its checked content type.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// The name given, if any.
    pub name: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: it is deleted then.
    pub expires_at: i64,
}

impl Attachment {
    /// The API's view of a row.
    pub fn of(s: &AppState, row: &AttachmentRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.id.clone(),
            conversation: row.conversation_id.clone(),
            content_type: row.content_type.clone(),
            size: row.size,
            name: attachments::name_of(s, row)?,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

/// The upload's query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// A name to remember it by (stored encrypted; never a file name on disk).
    pub name: Option<String>,
}

/// Sends a file in the caller's conversation: the body is the file, `Content-Type` its
/// type (one of the accepted ones, and true of the bytes).
#[utoipa::path(post, path = "/api/conversations/{id}/attachments", operation_id = "upload_attachment", tag = "attachments", security(("bearer" = [])),
    params(("id" = String, Path, description = "the conversation"), UploadQuery),
    request_body(content = Vec<u8>, description = "the file, at most BOTSERVER_MAX_UPLOAD_SIZE bytes", content_type = "application/octet-stream"),
    responses((status = 201, description = "stored, sealed", body = Attachment),
        (status = 404, description = "not the caller's conversation"),
        (status = 413, description = "larger than the upload limit"),
        (status = 415, description = "a type not accepted, or content not of its type")))]
async fn upload(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Path(conversation): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<Attachment>), ApiError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let row = attachments::store(
        &s,
        &p.user_id,
        &conversation,
        declared,
        q.name.as_deref(),
        body,
    )
    .await?;
    s.auth
        .audit
        .record(
            AuditKind::DataWrite,
            &p.user_id,
            "success",
            serde_json::json!({"action": "attachment_upload", "attachment": row.id, "size": row.size, "content_type": row.content_type}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(Attachment::of(&s, &row)?)))
}

/// The file, to its owner (audited).
#[utoipa::path(get, path = "/api/attachments/{id}", operation_id = "download_attachment", tag = "attachments", security(("bearer" = [])),
    params(("id" = String, Path, description = "the attachment")),
    responses((status = 200, description = "the file, with its type", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "not the caller's, or expired")))]
async fn download(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (row, plain) = attachments::open(&s, &p.user_id, &id).await?;
    s.auth
        .audit
        .record(
            AuditKind::DataRead,
            &p.user_id,
            "success",
            serde_json::json!({"action": "attachment_download", "attachment": row.id}),
        )
        .await;
    Ok((
        [
            (header::CONTENT_TYPE, row.content_type.clone()),
            // Always a download, never rendered in the page; the id is the file name.
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", row.id),
            ),
        ],
        plain,
    ))
}

/// Deletes a file of the caller's (audited).
#[utoipa::path(delete, path = "/api/attachments/{id}", operation_id = "delete_attachment", tag = "attachments", security(("bearer" = [])),
    params(("id" = String, Path, description = "the attachment")),
    responses((status = 204, description = "deleted"), (status = 404, description = "not the caller's")))]
async fn remove(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !attachments::remove(&s, &p.user_id, &id).await? {
        return Err(ApiError::NotFound);
    }
    s.auth
        .audit
        .record(
            AuditKind::DataWrite,
            &p.user_id,
            "success",
            serde_json::json!({"action": "attachment_delete", "attachment": id}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
