//! Authenticated requests per second and p99 latency with two bot-server replicas, for
//! each place the replicas share sessions and counters: process memory (dev; clients
//! stick to one replica, since memory is not shared), PostgreSQL (no cache) and Redis;
//! each as a ratio against one replica with memory, in the same run. Also the round
//! trips each authenticated request makes to the shared state (session touch, per-address
//! and per-user rate-limit windows).
//!
//! Every configuration runs on the same real PostgreSQL (TLS) started for the bench;
//! clients come through a trusted proxy, each with an address of its own, and read a
//! conversation of 3 encrypted messages with their access token on keep-alive
//! connections, alternating between the replicas.
//!
//! `cargo bench -p generalbot-bot-server --bench replicas`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::time::{Duration, Instant};

use common::{request_from, send};
use generalbot_bot_server::auth::Role;
use generalbot_crds::contract::env;
use tokio::net::TcpStream;

const CLIENTS: usize = 8;
const SECONDS: u64 = 4;
const PW: &str = "a long bench password";

struct Outcome {
    label: &'static str,
    per_second: f64,
    p99_ms: f64,
    round_trips_per_request: f64,
}

async fn run(
    label: &'static str,
    replicas: &[support::Replica],
    sticky: bool,
    round: usize,
) -> Outcome {
    // Each client: its own user (per-user budgets apart), address and conversation.
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let email = format!("bench{round}-{i}@example.com");
        let home = &replicas[i % replicas.len()];
        home.state
            .auth
            .register(&email, PW, Role::User, false)
            .await
            .unwrap();
        let ip = format!("198.51.{round}.{}", i + 1);
        let mut c = TcpStream::connect(home.api).await.unwrap();
        let body = format!(r#"{{"email":"{email}","password":"{PW}"}}"#);
        let (status, body) = send(
            &mut c,
            &request_from(Some(&ip), "POST", "/api/auth/login", None, &body),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, body) = send(
            &mut c,
            &request_from(Some(&ip), "POST", "/api/conversations", Some(&token), ""),
        )
        .await;
        let conv = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/api/conversations/{conv}/messages");
        for m in 0..3 {
            let text = format!(r#"{{"text":"message {m}"}}"#);
            let (status, _) = send(
                &mut c,
                &request_from(Some(&ip), "POST", &path, Some(&token), &text),
            )
            .await;
            assert_eq!(status, 200);
        }
        let targets: Vec<_> = if sticky {
            vec![home.api]
        } else {
            replicas.iter().map(|r| r.api).collect()
        };
        clients.push((
            request_from(Some(&ip), "GET", &path, Some(&token), ""),
            targets,
        ));
    }

    let trips_before: u64 = replicas
        .iter()
        .map(|r| r.state.auth.shared.round_trips())
        .sum();
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (req, targets) in clients {
        tasks.push(tokio::spawn(async move {
            let mut conns = Vec::new();
            for t in &targets {
                conns.push(TcpStream::connect(t).await.unwrap());
            }
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let n = conns.len();
                let at = Instant::now();
                let (status, body) = send(&mut conns[i % n], &req).await;
                assert_eq!(status, 200, "{body}");
                latencies.push(at.elapsed().as_secs_f64());
                i += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let took = started.elapsed().as_secs_f64();
    let trips: u64 = replicas
        .iter()
        .map(|r| r.state.auth.shared.round_trips())
        .sum::<u64>()
        - trips_before;
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Outcome {
        label,
        per_second: latencies.len() as f64 / took,
        p99_ms: p99 * 1e3,
        round_trips_per_request: trips as f64 / latencies.len() as f64,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pg = support::Postgres::start()
        .expect("PostgreSQL 15 server binaries (apt-get install postgresql)");
    let redis = support::Redis::start().expect("redis-server (apt-get install redis-server)");
    let dir = support::secrets(&pg);
    let settings = [
        (env::RATE_LIMIT_PER_IP, "100000000".to_owned()),
        (env::RATE_LIMIT_PER_USER, "100000000".to_owned()),
    ];
    let mut outcomes = Vec::new();
    // (label, replicas, dev (memory), with Redis, clients stick to one replica)
    let configs: [(&'static str, usize, bool, bool, bool); 4] = [
        ("memory (dev), 1 replica", 1, true, false, true),
        (
            "memory (dev), 2 replicas, sticky clients",
            2,
            true,
            false,
            true,
        ),
        (
            "PostgreSQL, 2 replicas, alternating",
            2,
            false,
            false,
            false,
        ),
        ("Redis, 2 replicas, alternating", 2, false, true, false),
    ];
    for (round, (label, n, dev, with_redis, sticky)) in configs.into_iter().enumerate() {
        let mut replicas = Vec::new();
        for _ in 0..n {
            let cache = with_redis.then_some(&redis);
            replicas.push(support::replica(&dir, &pg, cache, dev, &settings).await);
        }
        outcomes.push(run(label, &replicas, sticky, round).await);
    }
    let reference = outcomes[0].per_second;
    let reference_p99 = outcomes[0].p99_ms;
    for o in &outcomes {
        println!(
            "{}: {:.0} authenticated requests/s ({:.2}x one replica with memory), p99 {:.1} ms ({:.2}x), {:.2} round trips to the shared state per request ({CLIENTS} clients, {SECONDS} s)",
            o.label,
            o.per_second,
            o.per_second / reference,
            o.p99_ms,
            o.p99_ms / reference_p99,
            o.round_trips_per_request
        );
    }
}
