//! Audit appends per second from two bot-server replicas on one real PostgreSQL (TLS):
//! each append takes the database lock, reads the chain head and inserts the next row,
//! so replicas never fork the chain; the chain is verified afterwards. References in the
//! same run: one replica, and plain INSERTs of the same rows with no lock and no chain.
//!
//! `cargo bench -p generalbot-bot-server --bench audit`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use generalbot_bot_server::audit::AuditKind;

const WRITERS_PER_REPLICA: usize = 4;
const SECONDS: u64 = 4;

/// Appends from every replica's writers for a few seconds; returns rows per second.
async fn appends(replicas: &[&support::Replica], label: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for r in replicas {
        for w in 0..WRITERS_PER_REPLICA {
            let state = r.state.clone();
            let label = label.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    state
                        .auth
                        .audit
                        .record(
                            AuditKind::ApiCall,
                            "bench",
                            "success",
                            serde_json::json!({"run": label, "writer": w, "n": n}),
                        )
                        .await;
                    n += 1;
                }
                n
            }));
        }
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pg = support::Postgres::start().expect("PostgreSQL 15 server binaries");
    let dir = support::secrets(&pg);
    let a = support::replica(&dir, &pg, None, false, &[]).await;
    let b = support::replica(&dir, &pg, None, false, &[]).await;

    let one = appends(&[&a], "one").await;
    let two = appends(&[&a, &b], "two").await;
    let verify = Instant::now();
    let rows = a.state.auth.audit.read_verified().await.unwrap();
    let verified_in = verify.elapsed().as_secs_f64();

    // Reference: the same rows as plain INSERTs, no lock, no chain.
    let pool = a.state.store.pool().clone();
    // Made by the superuser: the server's role may create nothing.
    pg.psql(
        &pg.database,
        &format!(
            "CREATE TABLE bench_plain (seq BIGSERIAL PRIMARY KEY, at TEXT, kind TEXT, actor TEXT, outcome TEXT, detail TEXT); \
             GRANT SELECT, INSERT ON bench_plain TO {user}; GRANT USAGE ON SEQUENCE bench_plain_seq_seq TO {user};",
            user = pg.user
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..2 * WRITERS_PER_REPLICA {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                sqlx::query("INSERT INTO bench_plain (at, kind, actor, outcome, detail) VALUES ($1, $2, $3, $4, $5)")
                    .bind(jiff::Timestamp::now().to_string())
                    .bind("api_call")
                    .bind("bench")
                    .bind("success")
                    .bind(serde_json::json!({"writer": w, "n": n}).to_string())
                    .execute(&pool)
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut plain = 0;
    for t in tasks {
        plain += t.await.unwrap();
    }
    let plain = plain as f64 / started.elapsed().as_secs_f64();
    println!(
        "audit appends, chained and serialized in PostgreSQL: 2 replicas {two:.0}/s, 1 replica {one:.0}/s ({:.2}x), plain INSERTs without lock or chain {plain:.0}/s (2 replicas at {:.2}x); the chain of {} rows verified in {:.2} s",
        two / one,
        two / plain,
        rows.len(),
        verified_in
    );
}
