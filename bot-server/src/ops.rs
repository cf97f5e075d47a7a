//! Operations endpoints on their own port: liveness, readiness (database and cache),
//! metrics, and the key-usage report the operator reads before retiring a key
//! ([`contract::KEY_USAGE_PATH`], bearer token from the ops-token file).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use generalbot_crds::contract;

use crate::http::AppState;

/// `/healthz`, `/readyz`, `/metrics` and the key-usage report.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(contract::HEALTH_PATH, get(|| async { "ok" }))
        .route(contract::READY_PATH, get(ready))
        .route(contract::METRICS_PATH, get(metrics))
        .route(contract::KEY_USAGE_PATH, get(key_usage))
        .route(contract::AUDIT_HEAD_PATH, get(audit_head))
        .with_state(state)
}

async fn ready(State(s): State<Arc<AppState>>) -> Response {
    if let Err(e) = s.store.ping().await {
        tracing::warn!(error = %e, "not ready: database");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    }
    if let Err(e) = s.auth.shared.ping().await {
        tracing::warn!(error = %e, "not ready: shared state");
        return (StatusCode::SERVICE_UNAVAILABLE, "shared state unavailable").into_response();
    }
    "ready".into_response()
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// Compares two byte strings in constant time.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request carries the ops token.
fn authorized(s: &AppState, headers: &HeaderMap) -> bool {
    let keys = s.keys.current();
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&keys.ops_token, presented) {
        (Some(expected), Some(given)) => same(expected.as_bytes(), given.as_bytes()),
        _ => false,
    }
}

/// The key-usage report; also served on the API listener, where it is TLS, which is
/// where the operator asks for it.
#[utoipa::path(get, path = "/internal/key-usage", tag = "operator", security(("ops_token" = [])),
    responses((status = 200, description = "stored records per key of each ring", body = serde_json::Value),
        (status = 401, description = "not the operator's token")))]
pub async fn key_usage(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorized(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let keys = s.keys.current();
    let reencrypting = s.reencrypting.load(std::sync::atomic::Ordering::SeqCst);
    match crate::key_usage::report(&s.store, &s.files, &keys, reencrypting).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "key usage");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Which recorded row to look up beside the head.
#[derive(Debug, serde::Deserialize)]
pub struct HeadQuery {
    /// A sequence number recorded earlier.
    at: Option<i64>,
}

/// The audit chain head ([`contract::AUDIT_HEAD_PATH`]); also on the API listener.
#[utoipa::path(get, path = "/internal/audit-head", tag = "operator", security(("ops_token" = [])),
    params(("at" = Option<i64>, Query, description = "a sequence number recorded earlier")),
    responses((status = 200, description = "the head and row `at` as stored now", body = serde_json::Value),
        (status = 401, description = "not the operator's token")))]
pub async fn audit_head(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HeadQuery>,
) -> Response {
    if !authorized(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match s.auth.audit.head(q.at).await {
        Ok(head) => axum::Json(head).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "audit head");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Asks `/healthz` at `addr` (the image's HEALTHCHECK, which has no shell or curl):
/// success when it answers 200 within 2 seconds.
pub async fn healthcheck(addr: std::net::SocketAddr) -> std::process::ExitCode {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!(
                "GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                contract::HEALTH_PATH
            )
            .as_bytes(),
        )
        .await?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.ends_with(b" 200"))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), ask).await {
        Ok(Ok(true)) => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::FAILURE,
    }
}
