//! The API's hardening layers and resources, through the whole router.

use super::*;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::Response;
use std::net::SocketAddr;
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
        files: crate::objects::files::Files::Local(
            std::env::temp_dir().join(format!("gb-files-{}", uuid::Uuid::new_v4())),
        ),
        retention: crate::config::Retention::default(),
        cpu_slots: AppState::cpu_bound(),
    })
}

fn req(method: &str, uri: &str, body: Option<serde_json::Value>, token: Option<&str>) -> Request {
    let mut b = axum::http::Request::builder().method(method).uri(uri);
    b = b.extension(ConnectInfo(PeerAddr(
        SocketAddr::from(([127, 0, 0, 1], 4000)),
        None,
    )));
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
            .extension(ConnectInfo(PeerAddr(
                SocketAddr::from(([127, 0, 0, 1], 4000)),
                None,
            )))
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
        .extension(ConnectInfo(PeerAddr(
            SocketAddr::from(([127, 0, 0, 1], 4000)),
            None,
        )))
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
        let mut b = axum::http::Request::builder().uri(generalbot_crds::contract::KEY_USAGE_PATH);
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
