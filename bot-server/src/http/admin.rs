//! `/api/admin/*`: for admins only. Creating users, changing their role, deleting them,
//! and reading the audit log with its chain verified.

use std::sync::Arc;

use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};

use super::AppState;
use super::error::ApiError;
use super::extractor::AdminUser;
use crate::audit::{AuditError, AuditKind};
use crate::auth::Role;

/// A user to create.
#[derive(serde::Deserialize)]
pub struct NewUser {
    /// Email.
    pub email: String,
    /// Initial password (wiped from memory when dropped).
    pub password: zeroize::Zeroizing<String>,
    /// Role.
    pub role: Role,
}

/// The routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/admin/users", post(create_user))
        .route("/api/admin/users/{id}", delete(delete_user))
        .route("/api/admin/users/{id}/role", put(set_role))
        .route("/api/admin/audit", get(audit))
}

async fn create_user(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    Json(u): Json<NewUser>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (id, _) = s
        .auth
        .register(&u.email, &u.password, u.role, false)
        .await?;
    s.auth
        .audit
        .record(
            AuditKind::AdminAction,
            &p.user_id,
            "success",
            serde_json::json!({"action": "create_user", "user": id, "role": u.role.as_str()}),
        )
        .await;
    Ok(Json(serde_json::json!({ "id": id })))
}

/// A role to set.
#[derive(serde::Deserialize)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
}

/// Sets a user's role; it takes effect on the user's next request.
async fn set_role(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    Path(id): Path<String>,
    Json(r): Json<RoleChange>,
) -> Result<StatusCode, ApiError> {
    s.auth.set_role(&p, &id, r.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a user and their data; their tokens stop working on the next request.
async fn delete_user(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.auth.delete_user(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which page of the audit log.
#[derive(Debug, serde::Deserialize)]
struct PageQuery {
    /// Rows after this sequence number (0: from the start).
    #[serde(default)]
    after: i64,
    /// At most this many rows (1 to 1,000; 100 by default).
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// A page of the audit log, verified against itself and the row before it; `next_after`
/// names the next page.
async fn audit(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    s.auth
        .audit
        .record(
            AuditKind::AdminAction,
            &p.user_id,
            "success",
            serde_json::json!({"action": "read_audit"}),
        )
        .await;
    match s.auth.audit.page(q.after, q.limit).await {
        Ok(page) => Ok(Json(serde_json::json!({
            "verified": true,
            "rows": page.rows,
            "next_after": page.next_after,
        }))),
        Err(
            e @ (AuditError::ChainBroken { seq }
            | AuditError::BadSignature { seq }
            | AuditError::HeadUnsigned { seq }),
        ) => Ok(Json(
            serde_json::json!({ "verified": false, "broken_at": seq, "reason": e.to_string() }),
        )),
        Err(AuditError::Store(e)) => Err(ApiError::Store(e)),
    }
}
