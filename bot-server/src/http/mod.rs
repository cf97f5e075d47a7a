//! The API: one module per resource with its router, the error mapping, the `AuthUser`
//! extractor, and the hardening every request passes through (rate limits per IP and
//! per user, CORS from the allow-list only, security headers, a body size limit,
//! latency metrics).

pub mod admin;
pub mod attachments;
pub mod auth;
pub mod bots;
pub mod chat;
pub mod error;
pub mod extractor;
mod layers;
pub mod me;
pub mod messages;
pub mod oidc;
pub mod openapi;
pub mod ratelimit;
pub mod web;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::service::AuthService;
use crate::config::Policy;
use crate::crypto::store::KeyStore;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// Identity.
    pub auth: Arc<AuthService>,
    /// Storage.
    pub store: Store,
    /// Keys.
    pub keys: KeyStore,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Policies.
    pub policy: Policy,
    /// True while a re-encryption pass runs (the key-usage report says so).
    pub reencrypting: std::sync::atomic::AtomicBool,
    /// The bots, compiled.
    pub bots: crate::bots::registry::Registry,
    /// Where sealed files live.
    pub files: crate::objects::files::Files,
    /// How long temporary files and backups are kept.
    pub retention: crate::config::Retention,
    /// Bounds CPU-heavy work (sealing and opening files) on the blocking pool.
    pub cpu_slots: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A refused attempt at something the caller may not do (a privilege-escalation
    /// attempt, in the guide's words): counted for the alert and audited.
    pub async fn authorization_failure(
        &self,
        actor: &str,
        outcome: &str,
        detail: serde_json::Value,
    ) {
        self.metrics.authorization_failures.inc();
        self.auth
            .audit
            .record(
                crate::audit::AuditKind::AuthorizationFailure,
                actor,
                outcome,
                detail,
            )
            .await;
    }

    /// Runs CPU-heavy `work` on the blocking pool, at most as many at once as there are
    /// cores, so the async workers keep serving.
    pub async fn cpu<T, F>(&self, work: F) -> Result<T, error::ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .cpu_slots
            .acquire()
            .await
            .map_err(|_| error::ApiError::Internal("the CPU pool is closed"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| error::ApiError::Internal("a CPU task stopped"))
    }

    /// The CPU bound: the cores this process may use.
    pub fn cpu_bound() -> Arc<tokio::sync::Semaphore> {
        Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        ))
    }
}

/// The TCP peer of a connection (plain or TLS), as axum's connect info, and who its
/// verified client certificate names (mutual TLS), if it presented one.
#[derive(Debug, Clone)]
pub struct PeerAddr(
    pub SocketAddr,
    pub Option<crate::client_certs::ClientIdentity>,
);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr(), None)
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        // rustls verified these during the handshake (or there are none).
        let (_, connection) = stream.io().get_ref().get_ref();
        let client = crate::client_certs::ClientIdentity::of(connection.peer_certificates());
        Self(*stream.remote_addr(), client)
    }
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, crate::tls::CappedTcpListener>,
    > for PeerAddr
{
    fn connect_info(
        stream: axum::serve::IncomingStream<'_, crate::tls::CappedTcpListener>,
    ) -> Self {
        Self(*stream.remote_addr(), None)
    }
}

/// The client address of a request, set by the rate-limit layer.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

/// The content security policy: no inline script or style, no eval, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The whole API with its hardening layers.
pub fn router(state: Arc<AppState>) -> Router {
    let origins: Vec<HeaderValue> = state
        .policy
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    let (api, _) = openapi::routes().split_for_parts();
    api.fallback(|| async { error::ApiError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::audit_calls,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            state.policy.max_upload_size,
        ))
        // Inside the rate limit, so refusals cannot flood the audit log.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::client_certificate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::rate_limit,
        ))
        .layer(cors)
        .layer(set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ))
        .layer(set(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::CACHE_CONTROL, "no-store"))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::latency,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests;
