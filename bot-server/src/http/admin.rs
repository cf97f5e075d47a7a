//! `/api/admin/*`: for admins only. Creating users, changing their role, deleting them,
//! and reading the audit log with its chain verified.

use std::sync::Arc;

use axum::Json;
use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extractor::AdminUser;
use crate::audit::{AuditError, AuditKind};
use crate::auth::Role;

/// A user to create.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    /// Email.
    pub email: String,
    /// Initial password (wiped from memory when dropped).
    #[schema(value_type = String)]
    pub password: zeroize::Zeroizing<String>,
    /// Role.
    pub role: Role,
}

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(delete_user))
        .routes(routes!(set_role))
        .routes(routes!(audit))
}

/// Creates a user (audited).
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", security(("bearer" = [])), request_body = NewUser,
    responses((status = 200, description = "`id` of the new user", body = serde_json::Value),
        (status = 403, description = "not an administrator"), (status = 409, description = "the email is taken")))]
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
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
}

/// Sets a user's role; it takes effect on the user's next request.
#[utoipa::path(put, path = "/api/admin/users/{id}/role", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "the user")), request_body = RoleChange,
    responses((status = 204, description = "changed"), (status = 404, description = "no such user")))]
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
#[utoipa::path(delete, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "the user")),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such user")))]
async fn delete_user(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // The files go with the account: listed before, removed once the rows are gone.
    let files: Vec<String> = s
        .store
        .attachments_of(&id)
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect();
    s.auth.delete_user(&p, &id).await?;
    crate::objects::attachments::remove_files(&s, &files).await;
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
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", security(("bearer" = [])),
    params(("after" = Option<i64>, Query, description = "rows after this sequence number"),
        ("limit" = Option<i64>, Query, description = "at most this many rows (1 to 1,000; 100 by default)")),
    responses((status = 200, description = "`verified`, `rows`, `next_after`; or `verified: false` with where and why", body = serde_json::Value)))]
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
