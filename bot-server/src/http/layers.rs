//! The layers every request goes through: latency, the shared rate limits (per address
//! and per user, 429 with `Retry-After`), client certificates where they are required,
//! and the audit of state-changing calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppState, ClientIp, PeerAddr, ratelimit};
use crate::audit::AuditKind;

pub(super) async fn latency(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .request_seconds
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// Counts one request of `key` in the budget every replica shares; `Err(retry_after)`
/// when it is over `limit` per `window`. When the shared state cannot be reached the
/// request is refused (503 is the caller's to say): a limit that fails open is none.
async fn over_budget(
    state: &AppState,
    key: &str,
    limit: u32,
    window: Duration,
) -> Result<(), Option<Duration>> {
    match state.auth.shared.hit(key, window).await {
        Ok(hit) if hit.count <= u64::from(limit) => Ok(()),
        Ok(hit) => Err(Some(hit.resets_in)),
        Err(e) => {
            tracing::error!(error = %e, "counting a request");
            Err(None)
        }
    }
}

/// With `BOTSERVER_CLIENT_CERTIFICATES=required`, a `/api/` request over a connection
/// without a verified client certificate is refused (403, audited).
pub(super) async fn client_certificate(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .and_then(|c| c.0.1.clone());
    let path = req.uri().path().to_owned();
    if crate::client_certs::admitted(state.policy.client_certificates, &path, client.as_ref()) {
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    // Nobody is proven: aggregated with the other anonymous failures, so a flood of
    // refusals cannot flood the log.
    state
        .authorization_failure(
            "anonymous",
            "client_certificate_required",
            serde_json::json!({"path": path, "ip": ip}),
        )
        .await;
    super::error::ApiError::ClientCertificateRequired.into_response()
}

/// Per-IP (per minute) and per-user (per hour) limits; 429 with `Retry-After` beyond.
pub(super) async fn rate_limit(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0.0);
    let xff: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        // A line that is not text is a client the proxy could not name.
        .map(|v| v.to_str().unwrap_or("unreadable"))
        .collect();
    let ip = ratelimit::client_ip(peer, &xff, &state.policy.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    let mut verdict = over_budget(
        &state,
        &format!("rate-ip:{}", ratelimit::client_key(ip)),
        state.policy.rate_limit_per_ip,
        Duration::from_secs(60),
    )
    .await;
    if verdict.is_ok() {
        let user = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| crate::auth::tokens::verify(&state.keys.current().jwt, t).ok());
        if let Some(claims) = user {
            verdict = over_budget(
                &state,
                &format!("rate-user:{}", claims.sub),
                state.policy.rate_limit_per_user,
                Duration::from_secs(3600),
            )
            .await;
        }
    }
    match verdict {
        Ok(()) => next.run(req).await,
        Err(None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": "the shared state is unavailable; try again"})),
        )
            .into_response(),
        Err(Some(retry)) => {
            state.metrics.rate_limited.inc();
            tracing::warn!(client = %ip, path = req.uri().path(), "rate limited");
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(serde_json::json!({"error": "too many requests"})),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

/// Records every state-changing API call (method, path, status; never bodies).
pub(super) async fn audit_calls(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    if method != Method::GET && method != Method::HEAD && method != Method::OPTIONS {
        let kind = if resp.status() == StatusCode::FORBIDDEN {
            AuditKind::AuthorizationFailure
        } else {
            AuditKind::ApiCall
        };
        state
            .auth
            .audit
            .record(
                kind,
                "-",
                resp.status().as_str(),
                serde_json::json!({"method": method.as_str(), "path": path, "ip": ip}),
            )
            .await;
    }
    resp
}
