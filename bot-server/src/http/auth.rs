//! `/api/auth/*`: login, token refresh and logout; and the JWKS at
//! `/.well-known/jwks.json` for verifiers.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::error::ApiError;
use super::extractor::AuthUser;
use super::{AppState, ClientIp};
use crate::auth::service::TokenPair;

/// A login request.
#[derive(serde::Deserialize)]
pub struct LoginRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// TOTP code.
    #[serde(default)]
    pub totp: Option<String>,
}

/// A refresh request.
#[derive(serde::Deserialize)]
pub struct RefreshRequest {
    /// The refresh token.
    pub refresh_token: String,
}

/// The routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/.well-known/jwks.json", get(jwks))
}

async fn login(
    State(s): State<Arc<AppState>>,
    Extension(ip): Extension<ClientIp>,
    Json(r): Json<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(
        s.auth
            .login(&r.email, &r.password, r.totp.as_deref(), ip.0)
            .await?,
    ))
}

async fn refresh(
    State(s): State<Arc<AppState>>,
    Extension(ip): Extension<ClientIp>,
    Json(r): Json<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(s.auth.refresh(&r.refresh_token, ip.0).await?))
}

async fn logout(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
) -> Result<axum::http::StatusCode, ApiError> {
    s.auth.logout(&p).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn jwks(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(s.keys.current().jwt.jwks())
}
