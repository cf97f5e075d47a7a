//! `/api/auth/*`: login, token refresh, logout and TOTP enrolment; and the JWKS at
//! `/.well-known/jwks.json` for verifiers.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::IntoResponse as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extractor::AuthUser;
use super::{AppState, ClientIp};
use crate::auth::service::TokenPair;

/// A login request.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// Email.
    pub email: String,
    /// Password (wiped from memory when dropped).
    #[schema(value_type = String)]
    pub password: zeroize::Zeroizing<String>,
    /// TOTP code.
    #[serde(default)]
    pub totp: Option<String>,
}

/// A refresh request.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    /// The refresh token.
    pub refresh_token: String,
}

/// A TOTP code confirming an enrolment.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct TotpCode {
    /// The 6-digit code.
    pub code: String,
}

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(enrol_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(jwks))
}

/// Signs in with a local password (and a TOTP code when the account has one).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "success", body = TokenPair), (status = 401, description = "wrong credentials or TOTP code required"),
        (status = 423, description = "account locked"), (status = 429, description = "rate limited")))]
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

/// Exchanges a refresh token (single use; a reuse revokes its family).
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "success", body = TokenPair), (status = 401, description = "invalid, used or expired")))]
async fn refresh(
    State(s): State<Arc<AppState>>,
    Extension(ip): Extension<ClientIp>,
    Json(r): Json<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(s.auth.refresh(&r.refresh_token, ip.0).await?))
}

/// Ends the session; with a directory, also says where to send the browser to sign out
/// of the directory.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "signed out"), (status = 200, description = "signed out; `end_session_url` of the directory", body = serde_json::Value)))]
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

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "a JSON Web Key Set", body = serde_json::Value)))]
async fn jwks(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(s.keys.current().jwt.jwks())
}

/// Starts TOTP enrolment: the secret and its `otpauth://` URI, shown this once.
#[utoipa::path(post, path = "/api/auth/totp/enrol", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "`secret` and `otpauth_uri`", body = serde_json::Value)))]
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
#[utoipa::path(post, path = "/api/auth/totp/confirm", tag = "auth", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 204, description = "the new second factor is in force"), (status = 401, description = "wrong code")))]
async fn confirm_totp(
    State(s): State<Arc<AppState>>,
    AuthUser(p): AuthUser,
    Json(c): Json<TotpCode>,
) -> Result<axum::http::StatusCode, ApiError> {
    s.auth.confirm_totp(&p, &c.code).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
