//! Limiter memory after one million distinct client addresses (a flood from a botnet, or
//! spoofed sources behind a careless proxy). Each address is counted as the server counts
//! it (`client_key`, then a one-minute window in the shared state):
//!
//! - in this process (`--dev`: the bounded map), against the same keys in an unbounded
//!   `HashMap` (the limiter with its bound off), each in a fresh child process, by the
//!   growth of its resident memory;
//! - in a real Redis over TLS (production with a cache), by the growth of the Redis
//!   server's resident memory, with the hit rate beside it.
//!
//! `cargo bench -p generalbot-bot-server --bench limiter`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use generalbot_bot_server::config::CacheConfig;
use generalbot_bot_server::http::ratelimit::client_key;
use generalbot_bot_server::shared::Shared;

const ADDRESSES: u32 = 1_000_000;
const WINDOW: Duration = Duration::from_secs(60);
const CHILD: &str = "GB_LIMITER_CHILD";

/// Resident memory of a process, in KiB.
fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The key of the n-th distinct client address.
fn key(n: u32) -> String {
    let ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + n));
    format!("rate-ip:{}", client_key(ip))
}

/// In a child: counts every address, prints the growth of resident memory in KiB.
async fn child(mode: &str) {
    let before = rss_kib("self");
    match mode {
        "bounded" => {
            let shared = Shared::memory();
            for n in 0..ADDRESSES {
                shared.hit(&key(n), WINDOW).await.unwrap();
            }
            println!("{}", rss_kib("self").saturating_sub(before));
            drop(shared);
        }
        _ => {
            let mut map: HashMap<String, (u64, Instant)> = HashMap::new();
            let now = Instant::now();
            for n in 0..ADDRESSES {
                map.entry(key(n)).or_insert((0, now + WINDOW)).0 += 1;
            }
            println!("{}", rss_kib("self").saturating_sub(before));
            drop(map);
        }
    }
}

fn in_child(mode: &str) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, mode)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::main]
async fn main() {
    if let Ok(mode) = std::env::var(CHILD) {
        return child(&mode).await;
    }
    let bounded = in_child("bounded");
    let unbounded = in_child("unbounded");
    println!(
        "NOTE limiter in process: {ADDRESSES} distinct addresses: {:.1} MiB with the bound, {:.1} MiB without it ({:.3}x)",
        bounded as f64 / 1024.0,
        unbounded as f64 / 1024.0,
        bounded as f64 / unbounded as f64
    );

    let redis = match support::Redis::start() {
        Ok(r) => r,
        Err(why) => return support::skip("limiter (Redis)", &why),
    };
    let pid = redis.pid.clone().unwrap();
    let shared = Shared::redis(&CacheConfig {
        url: format!("rediss://127.0.0.1:{}", redis.port),
        password: Some(zeroize::Zeroizing::new(redis.password.clone())),
        ca_file: Some(redis.ca.clone()),
        client_cert: None,
    })
    .await
    .unwrap();
    let before = rss_kib(&pid);
    let started = Instant::now();
    let clients = 32u32;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut n = c;
                while n < ADDRESSES {
                    shared.hit(&key(n), WINDOW).await.unwrap();
                    n += clients;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    let grown = rss_kib(&pid).saturating_sub(before);
    println!(
        "NOTE limiter in Redis (TLS, {clients} clients): {ADDRESSES} distinct addresses in {took:.1} s ({:.0} hits/s): Redis grew by {:.1} MiB; every key expires with its {}-second window ({:.2}x the unbounded in-process map)",
        f64::from(ADDRESSES) / took,
        grown as f64 / 1024.0,
        WINDOW.as_secs(),
        grown as f64 / unbounded as f64
    );
}
