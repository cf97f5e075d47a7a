//! Logins per second at the guide's Argon2id parameters (19456 KiB, t=2, p=1) with many
//! concurrent clients, while a prober measures `/healthz`: Argon2 runs on the bounded
//! blocking pool, so health checks stay fast and excess logins are told to come back
//! (503) instead of queueing without bound. The reference, in the same run, is raw
//! Argon2id verification on every core with no server around it.
//!
//! `cargo bench -p generalbot-bot-server --bench logins`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{request_from, send};
use generalbot_bot_server::auth::password;
use generalbot_bot_server::config::{self, Config, MapSource};
use generalbot_bot_server::{Listeners, build_state, serve};
use tokio::net::TcpStream;

const CLIENTS: usize = 32;
const SECONDS: u64 = 5;
const PW: &str = "a long bench password";

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Reference: Argon2id verifications per second on every core, nothing else.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let phc = password::hash(PW).unwrap();
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let phc = phc.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while started.elapsed() < Duration::from_secs(SECONDS) {
                    assert!(password::verify(PW, &phc));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let raw: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let raw_rate = raw as f64 / started.elapsed().as_secs_f64();

    let vars = BTreeMap::from([
        (
            "BOTSERVER_RATE_LIMIT_PER_IP".to_owned(),
            "100000000".to_owned(),
        ),
        ("BOTSERVER_MAX_LOGIN_ATTEMPTS".to_owned(), "100".to_owned()),
    ]);
    let src = MapSource {
        vars,
        groups: config::process_groups(),
    };
    let cfg = Config::load(&src, true).unwrap();
    let state = build_state(&cfg).await.unwrap();
    for i in 0..CLIENTS {
        state
            .auth
            .register(
                &format!("user{i}@example.com"),
                PW,
                generalbot_bot_server::auth::Role::User,
                false,
            )
            .await
            .unwrap();
    }
    let listeners = Listeners::bind(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let (api, ops) = (
        listeners.api.local_addr().unwrap(),
        listeners.ops.local_addr().unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listeners, state, async move {
        let _ = stopped.await;
    }));

    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let prober = tokio::spawn(async move {
        let mut s = TcpStream::connect(ops).await.unwrap();
        let req = request_from(None, "GET", "/healthz", None, "");
        let mut latencies = Vec::new();
        while Instant::now() < deadline {
            let at = Instant::now();
            let (status, _) = send(&mut s, &req).await;
            assert_eq!(status, 200);
            latencies.push(at.elapsed().as_secs_f64());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latencies
    });
    let started = Instant::now();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(api).await.unwrap();
            let body = format!(r#"{{"email":"user{i}@example.com","password":"{PW}"}}"#);
            let req = request_from(None, "POST", "/api/auth/login", None, &body);
            let (mut ok, mut busy) = (0u64, 0u64);
            while Instant::now() < deadline {
                match send(&mut s, &req).await {
                    (200, _) => ok += 1,
                    (503, _) => {
                        busy += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    (status, body) => panic!("login answered {status}: {body}"),
                }
            }
            (ok, busy)
        }));
    }
    let (mut ok, mut busy) = (0, 0);
    for c in clients {
        let (o, b) = c.await.unwrap();
        ok += o;
        busy += b;
    }
    let took = started.elapsed().as_secs_f64();
    let health = prober.await.unwrap();
    let probes = health.len();
    let rate = ok as f64 / took;
    println!(
        "logins at Argon2id m=19456 KiB t=2 p=1 with {CLIENTS} concurrent clients: {rate:.1}/s ({:.2}x raw Argon2id verification on {cores} cores: {raw_rate:.1}/s), {busy} answered 503 (come back), /healthz p99 {:.1} ms over {probes} probes",
        rate / raw_rate,
        p99(health) * 1e3
    );
    let _ = stop.send(());
    let _ = server.await;
}
