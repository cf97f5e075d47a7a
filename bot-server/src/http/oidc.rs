//! `/api/auth/oidc/*`: sign-in through the directory service. `login` sends the browser
//! to the directory (a `login_hint` is passed on) with a cookie that binds the sign-in to
//! it; `callback` finishes it and answers this server's token pair. A failure answers 401
//! and is audited; the directory's message is never echoed.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::{AppState, ClientIp};
use crate::audit::AuditKind;

/// The cookie that binds a sign-in to the browser that started it.
pub const BINDING_COOKIE: &str = "gb_signin";
const COOKIE_PATH: &str = "/api/auth/oidc";

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(callback))
}

/// Options of a sign-in.
#[derive(Debug, serde::Deserialize)]
struct LoginQuery {
    /// Who is signing in, passed on to the directory.
    login_hint: Option<String>,
}

/// What the directory sends back.
#[derive(Debug, serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn cookie(s: &AppState, value: &str, max_age: u32) -> Result<HeaderValue, ApiError> {
    let secure = s
        .auth
        .directory
        .as_ref()
        .is_some_and(|d| d.config().redirect_url.starts_with("https://"));
    HeaderValue::from_str(&format!(
        "{BINDING_COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    ))
    .map_err(|_| ApiError::BadRequest("cookie"))
}

/// Sends the browser to the directory to sign in (code flow with PKCE and a nonce).
#[utoipa::path(get, path = "/api/auth/oidc/login", operation_id = "oidc_login", tag = "directory",
    params(("login_hint" = Option<String>, Query, description = "who is signing in, passed on to the directory")),
    responses((status = 303, description = "to the directory, with a cookie binding the sign-in to this browser"),
        (status = 404, description = "no directory is configured")))]
async fn login(
    State(s): State<Arc<AppState>>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ApiError> {
    let directory = s.auth.directory.as_ref().ok_or(ApiError::NotFound)?;
    let keys = s.keys.current();
    let hint = q.login_hint.filter(|h| h.len() <= 256);
    let sign_in = directory
        .begin(&keys.data, hint.as_deref())
        .await
        .map_err(crate::auth::service::AuthError::from)?;
    let mut resp = StatusCode::FOUND.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&sign_in.url).map_err(|_| ApiError::BadRequest("directory URL"))?,
    );
    headers.insert(header::SET_COOKIE, cookie(&s, &sign_in.binding, 600)?);
    Ok(resp)
}

fn binding(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == BINDING_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Finishes a sign-in: checks the ID token and answers this server's token pair.
#[utoipa::path(get, path = "/api/auth/oidc/callback", operation_id = "oidc_callback", tag = "directory",
    params(("code" = Option<String>, Query, description = "the authorization code"),
        ("state" = Option<String>, Query, description = "the state sent to the directory"),
        ("error" = Option<String>, Query, description = "the directory's refusal")),
    responses((status = 200, description = "success", body = crate::auth::service::TokenPair), (status = 401, description = "refused (audited)")))]
async fn callback(
    State(s): State<Arc<AppState>>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let directory = s.auth.directory.as_ref().ok_or(ApiError::NotFound)?;
    let refused = |reason: String| {
        let s = s.clone();
        async move {
            s.auth
                .audit
                .record(
                    AuditKind::AuthAttempt,
                    "anonymous",
                    "failure",
                    serde_json::json!({"method": "directory", "reason": reason, "ip": ip.0.to_string()}),
                )
                .await;
            s.auth.metrics.failed_logins.inc();
        }
    };
    let (Some(code), Some(state), Some(binding)) = (q.code, q.state, binding(&headers)) else {
        let reason = match q.error {
            Some(e) => format!(
                "the directory answered {}",
                e.chars().take(64).collect::<String>()
            ),
            None => "a callback without code, state or binding cookie".to_owned(),
        };
        refused(reason).await;
        return Err(crate::auth::service::AuthError::InvalidCredentials.into());
    };
    let keys = s.keys.current();
    let user = match directory.finish(&keys.data, &code, &state, &binding).await {
        Ok(user) => user,
        Err(e) => {
            refused(e.to_string()).await;
            return Err(crate::auth::service::AuthError::from(e).into());
        }
    };
    let pair = s.auth.sign_in_directory(user, ip.0).await?;
    let mut resp = Json(pair).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, "", 0)?);
    Ok(resp)
}
