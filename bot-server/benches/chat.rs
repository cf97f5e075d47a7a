//! Chat throughput and latency, and FAQ answer time.
//!
//! 1. Messages per second, p50 and p99, with 64 concurrent clients talking to a bot (its
//!    flow done, so every message is a knowledge-base answer) through one bot server on
//!    the real PostgreSQL (TLS), each on its own conversation: over HTTP (keep-alive)
//!    and over the WebSocket. Every message is a whole turn: the conversation's state
//!    decrypted, the bot's turn, the message, the replies and the new state encrypted and
//!    written in one transaction, and an audit row.
//! 2. The same turns without field encryption, as the reference. The server cannot run
//!    with it off (`BOTSERVER_ENCRYPT_FIELDS` accepts only `true`), so the bench runs the
//!    same turn in process twice, through `chat::say` (encrypted) and through the same
//!    store calls with plaintext values, on the same database, 64 tasks each.
//! 3. FAQ answer time for a 10,000-entry knowledge base (index build, then lookups).
//!
//! `cargo bench -p generalbot-bot-server --bench chat`

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

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{request_from, send};
use futures_util::{SinkExt as _, StreamExt as _};
use generalbot_bot_server::auth::Role;
use generalbot_bot_server::bots::faq::FaqEntry;
use generalbot_bot_server::bots::rank::FaqIndex;
use generalbot_bot_server::bots::run::{self, ConversationState};
use generalbot_bot_server::http::{AppState, chat};
use generalbot_bot_server::store::{NewMessage, Sender};
use generalbot_crds::contract::env;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 64;
const SECONDS: u64 = 8;
const PW: &str = "a long bench password";
const QUESTIONS: [&str; 4] = [
    "how do I reset my password",
    "what are your opening hours",
    "how do I export my data",
    "do you ship abroad",
];
const BOT: &str = "slug: bench\nwelcome: Hi.\nfallback: No idea.\nfaq:\n  - question: How do I reset my password?\n    answer: Use the link.\n  - question: What are your opening hours?\n    answer: 9 to 5.\n  - question: How do I export my data?\n    answer: In Settings.\n  - question: Do you ship abroad?\n    answer: Yes.\n";

struct Run {
    messages: usize,
    seconds: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn report(&self, what: &str) -> f64 {
        let mut l = self.latencies.clone();
        l.sort();
        let p = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
        let rate = self.messages as f64 / self.seconds;
        println!(
            "{what}: {rate:.0} messages/s, p50 {:.1} ms, p99 {:.1} ms ({} messages, {CLIENTS} clients)",
            p(0.50).as_secs_f64() * 1e3,
            p(0.99).as_secs_f64() * 1e3,
            self.messages
        );
        rate
    }
}

async fn timed<F, Fut>(f: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Vec<Duration>> + Send + 'static,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS).map(|c| tokio::spawn(f(c))).collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    Run {
        messages: latencies.len(),
        seconds: start.elapsed().as_secs_f64(),
        latencies,
    }
}

/// A conversation of `user` with the bench bot, its flow done.
async fn conversation(state: &AppState, user: &str) -> String {
    chat::start(state, user, Some("bench")).await.unwrap().0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    faq_answer_time();

    let pg = support::Postgres::start().expect("PostgreSQL 15 server binaries");
    let dir = support::secrets(&pg);
    let settings = [
        (env::RATE_LIMIT_PER_IP, "100000000".to_owned()),
        (env::RATE_LIMIT_PER_USER, "100000000".to_owned()),
    ];
    let server = support::replica(&dir, &pg, None, false, &settings).await;
    let state = server.state.clone();
    let def = generalbot_bot_server::bots::parse_definition(BOT).unwrap();
    state
        .store
        .insert_bot("bench", &serde_json::to_string(&def).unwrap())
        .await
        .unwrap();
    let mut users = Vec::new();
    for c in 0..CLIENTS {
        let email = format!("client{c}@example.com");
        let (id, _) = state
            .auth
            .register(&email, PW, Role::User, false)
            .await
            .unwrap();
        users.push((id, email));
    }
    let mut tokens = Vec::new();
    for (_, email) in &users {
        let pair = state
            .auth
            .login(email, PW, None, "203.0.113.1".parse().unwrap())
            .await
            .unwrap();
        tokens.push(pair.access_token.clone());
    }
    let api = server.api;
    let deadline = || Instant::now() + Duration::from_secs(SECONDS);

    // HTTP, keep-alive.
    let mut convs = Vec::new();
    for (id, _) in &users {
        convs.push(conversation(&state, id).await);
    }
    let (tokens_h, convs_h) = (Arc::new(tokens.clone()), Arc::new(convs));
    let http = timed(|c| {
        let (tokens, convs) = (tokens_h.clone(), convs_h.clone());
        let until = deadline();
        async move {
            let mut s = TcpStream::connect(api).await.unwrap();
            let client = format!("198.51.100.{}", c + 1);
            let path = format!("/api/conversations/{}/messages", convs[c]);
            let mut out = Vec::new();
            let mut i = 0;
            while Instant::now() < until {
                let body = serde_json::json!({"text": QUESTIONS[i % 4]}).to_string();
                let req = request_from(Some(&client), "POST", &path, Some(&tokens[c]), &body);
                let t = Instant::now();
                let (status, _) = send(&mut s, &req).await;
                assert_eq!(status, 200);
                out.push(t.elapsed());
                i += 1;
            }
            out
        }
    })
    .await;
    let http_rate = http.report("HTTP, encrypted");

    // WebSocket.
    let mut convs = Vec::new();
    for (id, _) in &users {
        convs.push(conversation(&state, id).await);
    }
    let convs_w = Arc::new(convs);
    let ws = timed(|c| {
        let (tokens, convs) = (tokens_h.clone(), convs_w.clone());
        let until = deadline();
        async move {
            let (mut s, _) = tokio_tungstenite::connect_async(format!("ws://{api}/api/ws"))
                .await
                .unwrap();
            let text = |v: serde_json::Value| Message::Text(v.to_string().into());
            s.send(text(serde_json::json!({"type": "auth", "token": tokens[c]})))
                .await
                .unwrap();
            s.next().await.unwrap().unwrap();
            let mut out = Vec::new();
            let mut i = 0;
            while Instant::now() < until {
                let t = Instant::now();
                s.send(text(serde_json::json!({"type": "say", "conversation": convs[c], "text": QUESTIONS[i % 4]})))
                    .await
                    .unwrap();
                loop {
                    if let Message::Text(m) = s.next().await.unwrap().unwrap() {
                        assert!(m.contains("\"replies\""), "{m}");
                        break;
                    }
                }
                out.push(t.elapsed());
                i += 1;
                // 5 messages per second per connection is the server's limit (burst 10).
                tokio::time::sleep(Duration::from_millis(200).saturating_sub(t.elapsed())).await;
            }
            out
        }
    })
    .await;
    let ws_rate =
        ws.report("WebSocket, encrypted (each client at most 5/s, the per-connection limit)");

    // In process: the same turn encrypted (chat::say) and in plaintext (same queries).
    let mut convs = Vec::new();
    for (id, _) in &users {
        convs.push(conversation(&state, id).await);
    }
    let (users_a, convs_a) = (Arc::new(users.clone()), Arc::new(convs));
    let encrypted = timed(|c| {
        let (state, users, convs) = (state.clone(), users_a.clone(), convs_a.clone());
        let until = deadline();
        async move {
            let mut out = Vec::new();
            let mut i = 0;
            while Instant::now() < until {
                let t = Instant::now();
                chat::say(&state, &users[c].0, &convs[c], QUESTIONS[i % 4])
                    .await
                    .unwrap();
                out.push(t.elapsed());
                i += 1;
            }
            out
        }
    })
    .await;
    let enc_rate = encrypted.report("in process, encrypted (chat::say)");
    let bot = state.bots.get("bench").await.unwrap().unwrap();
    let mut plain_convs = Vec::new();
    for (id, _) in &users {
        let conv = uuid::Uuid::new_v4().to_string();
        let mut st = ConversationState::default();
        run::begin(&bot, &mut st);
        let json = serde_json::to_string(&st).unwrap();
        state
            .store
            .insert_conversation(id, &conv, Some(("bench", &json)), &[])
            .await
            .unwrap();
        plain_convs.push(conv);
    }
    let convs_p = Arc::new(plain_convs);
    let plain = timed(|c| {
        let (state, users, convs, bot) =
            (state.clone(), users_a.clone(), convs_p.clone(), bot.clone());
        let until = deadline();
        async move {
            let mut out = Vec::new();
            let mut i = 0;
            let user = &users[c].0;
            while Instant::now() < until {
                let t = Instant::now();
                let row = state
                    .store
                    .conversation(user, &convs[c])
                    .await
                    .unwrap()
                    .unwrap();
                let old = row.state_enc.unwrap();
                let mut st: ConversationState = serde_json::from_str(&old).unwrap();
                let (b, q) = (bot.clone(), QUESTIONS[i % 4]);
                let (replies, st) = tokio::task::spawn_blocking(move || {
                    let (r, _) = run::turn(&b, &mut st, q);
                    (r, st)
                })
                .await
                .unwrap();
                let new = serde_json::to_string(&st).unwrap();
                let mut messages = vec![NewMessage {
                    id: uuid::Uuid::new_v4().to_string(),
                    body_enc: QUESTIONS[i % 4].to_owned(),
                    sender: Sender::User,
                }];
                for r in replies {
                    messages.push(NewMessage {
                        id: uuid::Uuid::new_v4().to_string(),
                        body_enc: r.text,
                        sender: Sender::Bot,
                    });
                }
                assert!(
                    state
                        .store
                        .record_turn(user, &convs[c], &old, &new, &messages)
                        .await
                        .unwrap()
                );
                state
                    .auth
                    .audit
                    .record(
                        generalbot_bot_server::audit::AuditKind::DataWrite,
                        user,
                        "success",
                        serde_json::json!({"conversation": convs[c]}),
                    )
                    .await;
                out.push(t.elapsed());
                i += 1;
            }
            out
        }
    })
    .await;
    let plain_rate =
        plain.report("in process, plaintext reference (same queries, no field encryption)");
    println!(
        "ratios: encrypted/plaintext in process {:.2}x; HTTP/in-process {:.2}x; WebSocket/HTTP {:.2}x",
        enc_rate / plain_rate,
        http_rate / enc_rate,
        ws_rate / http_rate
    );
}

fn faq_answer_time() {
    let words = [
        "account", "billing", "delivery", "password", "refund", "invoice", "shipping", "order",
        "return", "warranty", "login", "email", "address", "payment", "card", "coupon", "discount",
        "gift", "size", "color", "stock", "store", "hours", "phone",
    ];
    let entries: Vec<FaqEntry> = (0..10_000)
        .map(|i| FaqEntry {
            question: format!(
                "How do I change the {} {} of my {} number {i}?",
                words[i % words.len()],
                words[(i / 7) % words.len()],
                words[(i / 49) % words.len()]
            ),
            answer: format!("Answer {i}."),
            keywords: vec![words[(i / 3) % words.len()].to_owned()],
        })
        .collect();
    let t = Instant::now();
    let index = FaqIndex::new(entries, 0.5);
    let build = t.elapsed();
    let queries = [
        "how can I change the billing address of my card",
        "refund for my order please",
        "change password login",
        "what are the store hours",
        "zebra",
    ];
    let n = 2_000;
    let t = Instant::now();
    for i in 0..n {
        std::hint::black_box(index.lookup(queries[i % queries.len()]));
    }
    let per = t.elapsed() / n as u32;
    println!(
        "FAQ of 10,000 entries: index built in {:.0} ms; answer time {:.0} µs per question ({n} questions)",
        build.as_secs_f64() * 1e3,
        per.as_secs_f64() * 1e6
    );
}
