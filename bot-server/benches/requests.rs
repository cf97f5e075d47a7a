//! Authenticated requests per second: the bot server in-process (dev configuration,
//! SQLite in memory, audit on, rate limits raised out of the way), a user logged in
//! once, then keep-alive clients reading that user's conversation with its RS256 access
//! token for a few seconds. Each request verifies the token, checks ownership, decrypts
//! the messages and appends an audit row, as in production.
//!
//! `cargo bench -p generalbot-bot-server --bench requests`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{request, send};
use generalbot_bot_server::config::{self, Config, MapSource};
use generalbot_bot_server::{Listeners, build_state, serve};
use tokio::net::TcpStream;

mod common;

const CLIENTS: usize = 16;
const SECONDS: u64 = 5;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let vars = BTreeMap::from([
        (
            "BOTSERVER_RATE_LIMIT_PER_IP".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "BOTSERVER_RATE_LIMIT_PER_USER".to_owned(),
            "100000000".to_owned(),
        ),
        ("BOTSERVER_ENABLE_AUDIT".to_owned(), "true".to_owned()),
    ]);
    let src = MapSource {
        vars,
        groups: config::process_groups(),
    };
    let cfg = Config::load(&src, true).unwrap();
    let state = build_state(&cfg).await.unwrap();
    state
        .auth
        .register(
            "bench@example.com",
            "a long bench password",
            generalbot_bot_server::auth::Role::User,
            false,
        )
        .await
        .unwrap();
    let listeners = Listeners::bind(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let api: SocketAddr = listeners.api.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listeners, state, async move {
        let _ = stopped.await;
    }));

    let mut c = TcpStream::connect(api).await.unwrap();
    let (status, body) = send(
        &mut c,
        &request(
            "POST",
            "/api/auth/login",
            None,
            r#"{"email":"bench@example.com","password":"a long bench password"}"#,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token: String = serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = send(
        &mut c,
        &request("POST", "/api/conversations", Some(&token), ""),
    )
    .await;
    let conv = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..3 {
        let (status, _) = send(
            &mut c,
            &request(
                "POST",
                &format!("/api/conversations/{conv}/messages"),
                Some(&token),
                &format!(r#"{{"text":"message {i}"}}"#),
            ),
        )
        .await;
        assert_eq!(status, 200);
    }

    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let req = Arc::new(request(
        "GET",
        &format!("/api/conversations/{conv}/messages"),
        Some(&token),
        "",
    ));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (done, failed, req) = (done.clone(), failed.clone(), req.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(api).await.unwrap();
            while Instant::now() < deadline {
                let (status, _) = send(&mut s, &req).await;
                if status == 200 {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    let ok = done.load(Ordering::Relaxed);
    println!(
        "authenticated GET (ES256 access token from the dev key ring, ownership check, 3 field decryptions, an audit row; SQLite in memory): {ok} in {took:.1} s = {:.0} requests/s with {CLIENTS} keep-alive clients, {} non-200",
        ok as f64 / took,
        failed.load(Ordering::Relaxed)
    );
    let _ = stop.send(());
    let _ = server.await;
}
