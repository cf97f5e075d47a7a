//! Two bot-server replicas behave as one server: the same real PostgreSQL, and either no
//! cache (the state every replica shares lives in the database) or one real Redis. A
//! client that alternates between them never gets an unexpected 401; a refresh token
//! used on one and replayed on the other revokes its family; failed logins spread over
//! both lock the account at exactly the configured count; the per-address budget is one
//! budget, not one per replica.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;

use generalbot_bot_server::audit::AuditKind;
use generalbot_bot_server::auth::Role;
use generalbot_crds::contract::env;
use support::{Replica, call, replica, secrets};

const PW: &str = "a long and secret passphrase";
const MAX_LOGIN_ATTEMPTS: u32 = 4;
const RATE_LIMIT_PER_IP: u32 = 20;

/// Which cache a test runs with.
#[derive(Clone, Copy, PartialEq)]
enum Cache {
    None,
    Redis,
    RedisMutualTls,
}

/// The services a test needs (PostgreSQL, and Redis as asked), or `None` after saying
/// why the test skips.
fn services(test: &str, cache: Cache) -> Option<(support::Postgres, Option<support::Redis>)> {
    let pg = support::Postgres::start()
        .map_err(|why| support::skip(test, &why))
        .ok()?;
    let redis = match cache {
        Cache::None => None,
        Cache::Redis => Some(support::Redis::start()),
        Cache::RedisMutualTls => Some(support::Redis::start_mutual()),
    };
    match redis.transpose() {
        Ok(redis) => Some((pg, redis)),
        Err(why) => {
            support::skip(test, &why);
            None
        }
    }
}

fn settings() -> Vec<(&'static str, String)> {
    vec![
        (env::MAX_LOGIN_ATTEMPTS, MAX_LOGIN_ATTEMPTS.to_string()),
        (env::LOGIN_ALERT_THRESHOLD, "2".into()),
        (env::RATE_LIMIT_PER_IP, RATE_LIMIT_PER_IP.to_string()),
    ]
}

async fn login(at: SocketAddr, email: &str, pw: &str, client: &str) -> support::Reply {
    call(
        at,
        "POST",
        "/api/auth/login",
        client,
        None,
        Some(serde_json::json!({"email": email, "password": pw})),
    )
    .await
}

async fn two_replicas_behave_as_one(label: &str, a: Replica, b: Replica) {
    let both = [a.api, b.api];
    assert_eq!(a.state.auth.shared.kind(), label);
    for (i, email) in ["alice@example.com", "bob@example.com"].iter().enumerate() {
        [&a, &b][i]
            .state
            .auth
            .register(email, PW, Role::User, false)
            .await
            .unwrap();
    }

    // A session made on one replica is known to the other: 0 unexpected 401s.
    let first = login(a.api, "alice@example.com", PW, "198.51.100.1").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let access = first.body["access_token"].as_str().unwrap().to_owned();
    let refresh = first.body["refresh_token"].as_str().unwrap().to_owned();
    let conv = call(
        b.api,
        "POST",
        "/api/conversations",
        "198.51.100.1",
        Some(&access),
        None,
    )
    .await;
    assert_eq!(conv.status, 200, "{:?}", conv.body);
    let path = format!(
        "/api/conversations/{}/messages",
        conv.body["id"].as_str().unwrap()
    );
    let mut unexpected = 0;
    for i in 0..12 {
        let r = call(
            both[i % 2],
            "GET",
            &path,
            "198.51.100.1",
            Some(&access),
            None,
        )
        .await;
        if r.status != 200 {
            unexpected += 1;
        }
    }
    assert_eq!(
        unexpected, 0,
        "{label}: a session is known to both replicas"
    );

    // A refresh token used on one replica and replayed on the other revokes the family
    // and ends the session on both.
    let body = |t: &str| Some(serde_json::json!({"refresh_token": t}));
    let used = call(
        a.api,
        "POST",
        "/api/auth/refresh",
        "198.51.100.2",
        None,
        body(&refresh),
    )
    .await;
    assert_eq!(used.status, 200, "{:?}", used.body);
    let next = used.body["refresh_token"].as_str().unwrap().to_owned();
    let next_access = used.body["access_token"].as_str().unwrap().to_owned();
    let replay = call(
        b.api,
        "POST",
        "/api/auth/refresh",
        "198.51.100.2",
        None,
        body(&refresh),
    )
    .await;
    assert_eq!(replay.status, 401, "{label}: the replay is refused");
    for at in both {
        let r = call(
            at,
            "POST",
            "/api/auth/refresh",
            "198.51.100.2",
            None,
            body(&next),
        )
        .await;
        assert_eq!(r.status, 401, "{label}: the whole family is revoked");
        let r = call(at, "GET", &path, "198.51.100.2", Some(&next_access), None).await;
        assert_eq!(r.status, 401, "{label}: the session ended on every replica");
    }

    // Failed logins spread over both replicas lock the account at exactly the count.
    let client = |n: u32| format!("203.0.113.{n}");
    for n in 1..MAX_LOGIN_ATTEMPTS {
        let r = login(
            both[n as usize % 2],
            "bob@example.com",
            "wrong password",
            &client(n),
        )
        .await;
        assert_eq!(r.status, 401);
    }
    let ok = login(b.api, "bob@example.com", PW, &client(20)).await;
    assert_eq!(
        ok.status, 200,
        "{label}: one failure short of the count: not locked"
    );
    for n in 1..=MAX_LOGIN_ATTEMPTS {
        let r = login(
            both[n as usize % 2],
            "bob@example.com",
            "wrong password",
            &client(30 + n),
        )
        .await;
        assert_eq!(r.status, 401);
    }
    for at in both {
        let locked = login(at, "bob@example.com", PW, &client(50)).await;
        assert_eq!(
            locked.status, 401,
            "{label}: locked at exactly {MAX_LOGIN_ATTEMPTS} failures, on every replica"
        );
    }

    // Failed logins from one address, spread over both replicas, lock the address at the
    // count, across accounts (password spraying).
    let sprayer = "198.51.100.77";
    for n in 0..MAX_LOGIN_ATTEMPTS {
        let r = login(
            both[n as usize % 2],
            &format!("nobody{n}@example.com"),
            "guess",
            sprayer,
        )
        .await;
        assert_eq!(r.status, 401);
    }
    let r = login(both[1], "alice@example.com", PW, sprayer).await;
    assert_eq!(
        r.status, 401,
        "{label}: the address is locked on every replica"
    );

    // One per-address budget for both replicas.
    let mut statuses = Vec::new();
    for i in 0..RATE_LIMIT_PER_IP + 10 {
        let r = call(
            both[i as usize % 2],
            "GET",
            "/.well-known/jwks.json",
            "192.0.2.99",
            None,
            None,
        )
        .await;
        statuses.push(r.status);
    }
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (passed, limited),
        (RATE_LIMIT_PER_IP as usize, 10),
        "{label}: one budget of {RATE_LIMIT_PER_IP} per minute: {statuses:?}"
    );
    // Audit rows appended by both replicas at once form one chain, which the database
    // keeps append-only.
    let mut appends = Vec::new();
    for i in 0..40 {
        let state = [&a, &b][i % 2].state.clone();
        appends.push(tokio::spawn(async move {
            state
                .auth
                .audit
                .record(
                    AuditKind::ApiCall,
                    "tester",
                    "success",
                    serde_json::json!({ "n": i }),
                )
                .await;
        }));
    }
    for t in appends {
        t.await.unwrap();
    }
    let rows = a.state.auth.audit.read_verified().await.unwrap();
    let appended = rows.iter().filter(|r| r.actor == "tester").count();
    assert_eq!(
        appended, 40,
        "{label}: every concurrent append is in the chain"
    );
    let head = b.state.auth.audit.head(None).await.unwrap();
    assert_eq!(head.seq, rows.last().unwrap().seq);
    assert!(head.signed, "the head is signed by the active HMAC key");
    for sql in [
        "UPDATE audit_log SET actor = 'x' WHERE seq = 1",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let refused = sqlx::query(sql)
            .execute(a.state.store.pool())
            .await
            .unwrap_err();
        // The runtime role has no such privilege (and the table's triggers refuse
        // even its owner: tests/roles.rs).
        assert!(
            refused.to_string().contains("permission denied"),
            "{sql}: {refused}"
        );
    }

    eprintln!(
        "NOTE replicas ({label}): 2 replicas, 0 unexpected 401s, replayed refresh revoked its family, lockout at exactly {MAX_LOGIN_ATTEMPTS}, {passed} of {} requests within one per-address budget of {RATE_LIMIT_PER_IP}",
        statuses.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_without_a_cache_share_state_through_postgresql() {
    let Some((pg, _)) = services(
        "two_replicas_without_a_cache_share_state_through_postgresql",
        Cache::None,
    ) else {
        return;
    };
    let dir = secrets(&pg);
    let a = replica(&dir, &pg, None, false, &settings()).await;
    let b = replica(&dir, &pg, None, false, &settings()).await;
    two_replicas_behave_as_one("database", a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_redis_share_state_through_it() {
    let Some((pg, Some(redis))) = services(
        "two_replicas_with_redis_share_state_through_it",
        Cache::Redis,
    ) else {
        return;
    };
    let dir = secrets(&pg);
    let a = replica(&dir, &pg, Some(&redis), false, &settings()).await;
    let b = replica(&dir, &pg, Some(&redis), false, &settings()).await;
    two_replicas_behave_as_one("cache", a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_can_require_a_client_certificate() {
    let Some((pg, Some(redis))) = services(
        "the_cache_can_require_a_client_certificate",
        Cache::RedisMutualTls,
    ) else {
        return;
    };
    let dir = secrets(&pg);
    let with = replica(&dir, &pg, Some(&redis), false, &settings()).await;
    assert_eq!(with.state.auth.shared.kind(), "cache");
    with.state.auth.shared.ping().await.unwrap();
    let sid = with
        .state
        .auth
        .shared
        .create_session("u1", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        with.state
            .auth
            .shared
            .touch_session(&sid, std::time::Duration::from_secs(60))
            .await
            .unwrap()
            .is_some()
    );
    let mut without = support::replica_config(&dir, &pg, Some(&redis), false, &settings());
    without.cache.as_mut().unwrap().client_cert = None;
    assert!(
        generalbot_bot_server::build_state(&without).await.is_err(),
        "without its client certificate the cache refuses the server"
    );
}
