//! `/api/auth/*`: login, token refresh, logout and TOTP enrolment; and the JWKS at
//! `/.well-known/jwks.json` for verifiers.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::response::IntoResponse as _;
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
    /// Password (wiped from memory when dropped).
    pub password: zeroize::Zeroizing<String>,
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

/// A TOTP code confirming an enrolment.
#[derive(serde::Deserialize)]
pub struct TotpCode {
    /// The 6-digit code.
    pub code: String,
}

/// The routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/totp/enrol", post(enrol_totp))
        .route("/api/auth/totp/confirm", post(confirm_totp))
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

/// Ends the session; with a directory, also says where to send the browser to sign out
/// of the directory.
async fn logout(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
) -> Result<axum::response::Response, ApiError> {
    s.auth.logout(&p).await?;
    let end_session = match &s.auth.directory {
        Some(d) => d.end_session_url().await,
        None => None,
    };
    Ok(match end_session {
        Some(url) => Json(serde_json::json!({ "end_session_url": url })).into_response(),
        None => axum::http::StatusCode::NO_CONTENT.into_response(),
    })
}

async fn jwks(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(s.keys.current().jwt.jwks())
}

/// Starts TOTP enrolment: the secret and its `otpauth://` URI, shown this once.
async fn enrol_totp(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
) -> Result<axum::response::Response, ApiError> {
    let e = s.auth.enrol_totp(&p).await?;
    let mut resp = Json(serde_json::json!({
        "secret": e.secret_base32,
        "otpauth_uri": e.uri,
        "next": "POST /api/auth/totp/confirm with a code from your authenticator",
    }))
    .into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// Confirms TOTP enrolment with a first code.
async fn confirm_totp(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Json(c): Json<TotpCode>,
) -> Result<axum::http::StatusCode, ApiError> {
    s.auth.confirm_totp(&p, &c.code).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
