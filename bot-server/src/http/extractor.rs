//! `AuthUser`: an extractor whose presence in a handler's arguments requires a valid
//! bearer token and a live session; `AdminUser` additionally requires the admin role.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::auth::Role;
use crate::auth::service::{AuthError, Principal};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

/// The authenticated caller, who is an admin.
#[derive(Debug, Clone)]
pub struct AdminUser(pub Principal);

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

impl FromRequestParts<Arc<AppState>> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Auth(AuthError::InvalidToken))?;
        state
            .auth
            .authenticate(token)
            .await
            .map(AuthUser)
            .map_err(ApiError::Auth)
    }
}

impl FromRequestParts<Arc<AppState>> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let AuthUser(p) = AuthUser::from_request_parts(parts, state).await?;
        if p.role != Role::Admin {
            state
                .authorization_failure(
                    &p.user_id,
                    "denied",
                    serde_json::json!({"path": parts.uri.path(), "role": p.role.as_str()}),
                )
                .await;
            return Err(ApiError::Auth(AuthError::Forbidden));
        }
        Ok(AdminUser(p))
    }
}
