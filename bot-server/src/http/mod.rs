//! The API: one module per resource with its router, the error mapping, the `AuthUser`
//! extractor, and the hardening every request passes through (rate limits per IP and
//! per user, CORS from the allow-list only, security headers, a body size limit,
//! latency metrics).

pub mod admin;
pub mod auth;
pub mod bots;
pub mod chat;
pub mod error;
pub mod extractor;
pub mod me;
pub mod messages;
pub mod oidc;
pub mod openapi;
pub mod ratelimit;
pub mod web;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::audit::AuditKind;
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
}

/// The TCP peer of a connection (plain or TLS), as axum's connect info.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
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
        Self(*stream.remote_addr())
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
            audit_calls,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            state.policy.max_upload_size,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit,
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
        .layer(axum::middleware::from_fn_with_state(state.clone(), latency))
        .with_state(state)
}

async fn latency(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
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

/// Per-IP (per minute) and per-user (per hour) limits; 429 with `Retry-After` beyond.
async fn rate_limit(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
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
async fn audit_calls(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    async fn state(policy: Policy) -> Arc<AppState> {
        let svc = crate::auth::service::tests::service(policy.clone()).await;
        Arc::new(AppState {
            store: svc.store.clone(),
            keys: svc.keys.clone(),
            metrics: svc.metrics.clone(),
            bots: crate::bots::registry::Registry::new(svc.store.clone()),
            auth: Arc::new(svc),
            policy,
            reencrypting: Default::default(),
        })
    }

    fn req(
        method: &str,
        uri: &str,
        body: Option<serde_json::Value>,
        token: Option<&str>,
    ) -> Request {
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        b = b.extension(ConnectInfo(PeerAddr(SocketAddr::from((
            [127, 0, 0, 1],
            4000,
        )))));
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        }
    }

    async fn json(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    }

    const PW: &str = "correct horse battery";

    #[tokio::test]
    async fn every_route_is_described_and_every_description_is_served() {
        let s = state(Policy::default()).await;
        let (api, doc) = openapi::routes().split_for_parts();
        // A route not served would reach this fallback.
        let app = api
            .fallback(|| async { (StatusCode::IM_A_TEAPOT, "undescribed") })
            .with_state(s.clone());
        let mut described = 0;
        for (path, item) in &doc.paths.paths {
            let uri = path.replace("{id}", "x").replace("{slug}", "x");
            let methods = [
                ("GET", item.get.is_some()),
                ("PUT", item.put.is_some()),
                ("POST", item.post.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            assert!(methods.iter().any(|m| m.1), "{path} has no method");
            for (method, _) in methods.iter().filter(|m| m.1) {
                let resp = app
                    .clone()
                    .oneshot(req(method, &uri, None, None))
                    .await
                    .unwrap();
                assert_ne!(resp.status(), StatusCode::IM_A_TEAPOT, "{method} {path}");
                described += 1;
            }
        }
        assert!(described >= 30, "{described} operations described");
        // The API is served only through that router: no route is added beside it (the
        // operations listener of ops.rs is the one other router, on its own port).
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|n| n != "ops.rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let raw = [".route", "(\""].concat();
                    assert!(
                        !text.contains(&raw),
                        "{} adds a route the description does not see",
                        path.display()
                    );
                }
            }
        }
        // Served, and naming the operator's paths as the contract does.
        let resp = router(s)
            .oneshot(req("GET", "/openapi.json", None, None))
            .await
            .unwrap();
        let spec = json(resp).await;
        assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
        for p in [
            generalbot_crds::contract::KEY_USAGE_PATH,
            generalbot_crds::contract::AUDIT_HEAD_PATH,
            "/api/bots/{slug}/faq",
            "/api/ws",
            "/openapi.json",
        ] {
            assert!(spec["paths"].get(p).is_some(), "{p} is not described");
        }
        assert!(spec["components"]["schemas"].get("BotDefinition").is_some());
    }

    #[test]
    fn the_description_is_valid_openapi() {
        const TEST: &str = "the_description_is_valid_openapi";
        let check = std::process::Command::new("python3")
            .args(["-c", "import openapi_spec_validator"])
            .output();
        if !check.is_ok_and(|o| o.status.success()) {
            generalbot_testkit::skip(
                TEST,
                "the Python package openapi-spec-validator is not installed (pip install openapi-spec-validator)",
            );
            return;
        }
        let file = generalbot_testkit::temp_dir("gb-openapi").join("openapi.json");
        std::fs::write(&file, openapi::description()).unwrap();
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openapi-spec-validator refuses the description: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[tokio::test]
    async fn security_headers_cors_and_body_limit() {
        let s = state(Policy {
            allowed_origins: vec!["https://chat.example".into()],
            max_upload_size: 1024,
            ..Policy::default()
        })
        .await;
        let app = router(s);
        let resp = app
            .clone()
            .oneshot(req("GET", "/.well-known/jwks.json", None, None))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            h[header::STRICT_TRANSPORT_SECURITY]
                .to_str()
                .unwrap()
                .starts_with("max-age=")
        );
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(h.contains_key(header::REFERRER_POLICY));
        assert_eq!(json(resp).await["keys"][0]["alg"], "RS256");

        let preflight = |origin: &'static str| {
            axum::http::Request::builder()
                .method("OPTIONS")
                .uri("/api/auth/login")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .extension(ConnectInfo(PeerAddr(SocketAddr::from((
                    [127, 0, 0, 1],
                    4000,
                )))))
                .body(Body::empty())
                .unwrap()
        };
        let ok = app
            .clone()
            .oneshot(preflight("https://chat.example"))
            .await
            .unwrap();
        assert_eq!(
            ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://chat.example"
        );
        let bad = app
            .clone()
            .oneshot(preflight("https://evil.example"))
            .await
            .unwrap();
        assert!(
            !bad.headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );

        let big = serde_json::json!({"email": "x".repeat(2000), "password": "p"});
        let resp = app
            .oneshot(req("POST", "/api/auth/login", Some(big), None))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn empty_allow_list_admits_no_origin() {
        let app = router(state(Policy::default()).await);
        let r = axum::http::Request::builder()
            .uri("/.well-known/jwks.json")
            .header(header::ORIGIN, "https://anything.example")
            .extension(ConnectInfo(PeerAddr(SocketAddr::from((
                [127, 0, 0, 1],
                4000,
            )))))
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(r).await.unwrap();
        assert!(
            !resp
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
    }

    #[tokio::test]
    async fn requests_past_the_rate_get_429_with_retry_after() {
        let s = state(Policy {
            rate_limit_per_ip: 5,
            ..Policy::default()
        })
        .await;
        let app = router(s.clone());
        for _ in 0..5 {
            let resp = app
                .clone()
                .oneshot(req("GET", "/.well-known/jwks.json", None, None))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
        let resp = app
            .clone()
            .oneshot(req("GET", "/.well-known/jwks.json", None, None))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = resp.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(s.metrics.rate_limited.get(), 1);
        assert!(
            s.metrics
                .render()
                .contains("botserver_rate_limited_requests_total 1")
        );
    }

    #[tokio::test]
    async fn a_forged_forwarded_for_line_does_not_escape_the_limit() {
        // 127.0.0.1 is the trusted proxy; the client writes a line of its own, different
        // each time, and the proxy adds a line with the one address it saw.
        let s = state(Policy {
            rate_limit_per_ip: 20,
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..Policy::default()
        })
        .await;
        let app = router(s.clone());
        let mut limited = 0;
        for i in 0..40 {
            let mut r = req("GET", "/.well-known/jwks.json", None, None);
            let headers = r.headers_mut();
            headers.append(
                "x-forwarded-for",
                HeaderValue::from_str(&format!("203.0.113.{i}")).unwrap(),
            );
            headers.append("x-forwarded-for", HeaderValue::from_static("198.51.100.7"));
            let resp = app.clone().oneshot(r).await.unwrap();
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                limited += 1;
            }
        }
        assert_eq!(limited, 20, "one client, one budget of 20");
    }

    #[tokio::test]
    async fn per_user_limit_applies_across_addresses() {
        let s = state(Policy {
            rate_limit_per_user: 3,
            ..Policy::default()
        })
        .await;
        s.auth
            .register("u@example.com", PW, crate::auth::Role::User, false)
            .await
            .unwrap();
        let app = router(s);
        let login = app
            .clone()
            .oneshot(req(
                "POST",
                "/api/auth/login",
                Some(serde_json::json!({"email": "u@example.com", "password": PW})),
                None,
            ))
            .await
            .unwrap();
        let token = json(login).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..3 {
            let r = app
                .clone()
                .oneshot(req("POST", "/api/conversations", None, Some(&token)))
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        let r = app
            .oneshot(req("POST", "/api/conversations", None, Some(&token)))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[tokio::test]
    async fn messages_are_encrypted_private_and_audited() {
        let s = state(Policy::default()).await;
        s.auth
            .register("admin@example.com", PW, crate::auth::Role::Admin, false)
            .await
            .unwrap();
        s.auth
            .register("eve@example.com", PW, crate::auth::Role::User, false)
            .await
            .unwrap();
        let app = router(s.clone());
        let token = |email: &'static str| {
            let app = app.clone();
            async move {
                let r = app
                    .oneshot(req(
                        "POST",
                        "/api/auth/login",
                        Some(serde_json::json!({"email": email, "password": PW})),
                        None,
                    ))
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                json(r).await["access_token"].as_str().unwrap().to_owned()
            }
        };
        let admin = token("admin@example.com").await;
        let eve = token("eve@example.com").await;
        let conv = json(
            app.clone()
                .oneshot(req("POST", "/api/conversations", None, Some(&admin)))
                .await
                .unwrap(),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret_text = "the launch code is 0000-SECRET";
        let r = app
            .clone()
            .oneshot(req(
                "POST",
                &format!("/api/conversations/{conv}/messages"),
                Some(serde_json::json!({"text": secret_text})),
                Some(&admin),
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let list = json(
            app.clone()
                .oneshot(req(
                    "GET",
                    &format!("/api/conversations/{conv}/messages"),
                    None,
                    Some(&admin),
                ))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(list[0]["text"], secret_text);
        // Another user neither reads nor writes it.
        let r = app
            .clone()
            .oneshot(req(
                "GET",
                &format!("/api/conversations/{conv}/messages"),
                None,
                Some(&eve),
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // No plaintext in the raw columns.
        use sqlx::Row as _;
        for sql in [
            "SELECT body_enc AS v FROM messages",
            "SELECT email_enc AS v FROM users",
        ] {
            for row in sqlx::query(sql).fetch_all(s.store.pool()).await.unwrap() {
                let v: String = row.get("v");
                assert!(
                    v.starts_with("gb1.") && !v.contains("SECRET") && !v.contains("example.com"),
                    "{v}"
                );
            }
        }
        // Non-admins are refused the audit log, and that is audited.
        let r = app
            .clone()
            .oneshot(req("GET", "/api/admin/audit", None, Some(&eve)))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let audit = json(
            app.clone()
                .oneshot(req("GET", "/api/admin/audit", None, Some(&admin)))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(audit["verified"], true);
        let kinds: Vec<&str> = audit["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        for k in [
            "auth_attempt",
            "data_write",
            "data_read",
            "authorization_failure",
            "api_call",
            "admin_action",
        ] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
        // Pages: two rows at a time, each page checked against the row before it.
        let page = json(
            app.clone()
                .oneshot(req(
                    "GET",
                    "/api/admin/audit?after=2&limit=2",
                    None,
                    Some(&admin),
                ))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(page["verified"], true);
        assert_eq!(page["rows"].as_array().unwrap().len(), 2);
        assert_eq!(page["rows"][0]["seq"], 3);
        assert_eq!(page["next_after"], 4);
        // Tampering (by someone who can drop the append-only trigger) is reported by the
        // admin API.
        sqlx::query("DROP TRIGGER audit_log_no_update")
            .execute(s.store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
            .execute(s.store.pool())
            .await
            .unwrap();
        let audit = json(
            app.oneshot(req("GET", "/api/admin/audit", None, Some(&admin)))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(audit["verified"], false);
        assert_eq!(audit["broken_at"], 3);
    }

    #[tokio::test]
    async fn key_usage_requires_the_ops_token() {
        let s = state(Policy::default()).await;
        let mut keys = (*s.keys.current()).clone();
        keys.ops_token = Some(zeroize::Zeroizing::new("ops-secret".into()));
        s.keys.replace(keys);
        s.auth
            .register("k@example.com", PW, crate::auth::Role::User, false)
            .await
            .unwrap();
        let ops = crate::ops::router(s.clone());
        let get = |token: Option<&'static str>| {
            let mut b =
                axum::http::Request::builder().uri(generalbot_crds::contract::KEY_USAGE_PATH);
            if let Some(t) = token {
                b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            b.body(Body::empty()).unwrap()
        };
        for bad in [None, Some("wrong")] {
            let r = ops.clone().oneshot(get(bad)).await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            assert!(
                axum::body::to_bytes(r.into_body(), 1024)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        let r = ops.oneshot(get(Some("ops-secret"))).await.unwrap();
        let report: generalbot_crds::contract::KeyUsageReport =
            serde_json::from_value(json(r).await).unwrap();
        let active = s.keys.current().field.active_id().to_owned();
        assert_eq!(report.rings["field"][&active], 1);
    }
}
