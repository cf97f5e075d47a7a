//! The security promises, proven against a real PostgreSQL (TLS `verify-full`, SCRAM)
//! and a real Redis (TLS, password) started by the harness, with the server configured
//! exactly as the operator configures it (production mode, key rings and secrets as
//! files) and driven over real HTTP.

// Test code: a panic here is a failed test, as in #[test] functions (see clippy.toml).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use generalbot_bot_server::config::{self, Config, MapSource};
use generalbot_bot_server::crypto::field::{self, FieldContext};
use generalbot_bot_server::{Listeners, build_state, serve};
use generalbot_crds::contract::{self, env, key_files};
use support::{call, random32, ring_file};

const PW: &str = "a long and secret passphrase";
const SECRET_TEXT: &str = "my card number is 4111-1111-1111-1111";
const OPS_TOKEN: &str = "ops-token-for-the-operator-0123456789abcdef";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Replaces the ring file `name` at once (as the kubelet swaps a Secret volume) and
/// waits until the server's keys satisfy `loaded`.
async fn swap_ring(
    state: &generalbot_bot_server::http::AppState,
    keys_dir: &std::path::Path,
    name: &str,
    content: String,
    loaded: impl Fn(&config::Keys) -> bool,
) {
    let staged = keys_dir.join(format!("{name}.new"));
    support::write(&staged, content, 0o400);
    std::fs::rename(&staged, keys_dir.join(name)).unwrap();
    for _ in 0..100 {
        if loaded(&state.keys.current()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the {name} ring was not reloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_server_against_real_postgres_and_redis() {
    let test = "production_server_against_real_postgres_and_redis";
    let pg = match support::Postgres::start() {
        Ok(p) => p,
        Err(why) => return support::skip(test, &why),
    };
    let redis = match support::Redis::start() {
        Ok(r) => r,
        Err(why) => return support::skip(test, &why),
    };

    // Logs as in production: JSON at INFO, captured for the secrets check at the end.
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);

    // Secrets as the operator mounts them: files, owner-only.
    let dir = support::temp_dir("gb-secrets");
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let (field_old, data_key, hmac_key) = (random32(), random32(), random32());
    let jwt_der = generalbot_bot_server::crypto::keyring::pkcs8_from_pem(include_str!(
        "fixtures/test-rsa-1.pem"
    ))
    .unwrap();
    support::write(
        &keys_dir.join(key_files::FIELD),
        ring_file("f1", &[("f1", field_old.clone())], None),
        0o400,
    );
    support::write(
        &keys_dir.join(key_files::DATA),
        ring_file("d1", &[("d1", data_key.clone())], None),
        0o400,
    );
    support::write(
        &keys_dir.join(key_files::HMAC),
        ring_file("h1", &[("h1", hmac_key.clone())], None),
        0o400,
    );
    support::write(
        &keys_dir.join(key_files::JWT),
        ring_file("j1", &[("j1", jwt_der.to_vec())], Some("RS256")),
        0o400,
    );
    support::write(&keys_dir.join(key_files::OPS_TOKEN), OPS_TOKEN, 0o400);
    support::write(&dir.join("db-user"), &pg.user, 0o400);
    support::write(&dir.join("db-password"), &pg.password, 0o400);
    support::write(&dir.join("db-owner"), &pg.owner, 0o400);
    support::write(&dir.join("db-owner-password"), &pg.owner_password, 0o400);
    support::write(&dir.join("cache-password"), &redis.password, 0o400);
    let p = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    let vars: BTreeMap<String, String> = [
        (env::MODE, "production".to_string()),
        // Plain HTTP: the test speaks to the API directly (the TLS listener has its own test).
        (env::ALLOW_PLAINTEXT, "true".to_string()),
        (env::KEYS_DIR, p(keys_dir.clone())),
        (env::DATABASE_HOST, "127.0.0.1".into()),
        (env::DATABASE_PORT, pg.port.to_string()),
        (env::DATABASE_NAME, pg.database.clone()),
        (env::DATABASE_SSLMODE, "verify-full".into()),
        (env::DATABASE_USER_FILE, p(dir.join("db-user"))),
        (env::DATABASE_PASSWORD_FILE, p(dir.join("db-password"))),
        (env::DATABASE_OWNER_USER_FILE, p(dir.join("db-owner"))),
        (
            env::DATABASE_OWNER_PASSWORD_FILE,
            p(dir.join("db-owner-password")),
        ),
        (env::DATABASE_CA_FILE, p(pg.ca.clone())),
        (env::CACHE_URL, format!("rediss://127.0.0.1:{}", redis.port)),
        ("CACHE_PASSWORD_FILE", p(dir.join("cache-password"))),
        (env::CACHE_CA_FILE, p(redis.ca.clone())),
        (env::MAX_LOGIN_ATTEMPTS, "3".into()),
        (env::LOGIN_ALERT_THRESHOLD, "2".into()),
        (env::RATE_LIMIT_PER_IP, "20".into()),
        (env::TRUSTED_PROXIES, "127.0.0.1/32".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let src = MapSource {
        vars,
        groups: config::process_groups(),
    };
    let cfg = Config::load(&src, false).expect("production configuration is accepted");
    let state = build_state(&cfg)
        .await
        .expect("connects to PostgreSQL and Redis over TLS");
    let _reload = state.keys.spawn_reload(
        Arc::new(src.clone()),
        false,
        Duration::from_millis(100),
        Some(state.auth.audit.clone()),
    );
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
    let server = tokio::spawn(serve(listeners, state.clone(), async move {
        let _ = stopped.await;
    }));

    let ready = call(ops, "GET", contract::READY_PATH, "127.0.0.1", None, None).await;
    assert_eq!(ready.status, 200, "database and cache reachable");

    // Users (the first admin is bootstrapped directly).
    let (alice, _) = state
        .auth
        .register(
            "alice@example.com",
            PW,
            generalbot_bot_server::auth::Role::Admin,
            false,
        )
        .await
        .unwrap();
    let (_bob, _) = state
        .auth
        .register(
            "bob@example.com",
            PW,
            generalbot_bot_server::auth::Role::User,
            false,
        )
        .await
        .unwrap();
    let login = |email: &'static str, pw: &'static str, client: &'static str| async move {
        call(
            api,
            "POST",
            "/api/auth/login",
            client,
            None,
            Some(serde_json::json!({"email": email, "password": pw})),
        )
        .await
    };
    let a = login("alice@example.com", PW, "198.51.100.1").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let alice_token = a.body["access_token"].as_str().unwrap().to_owned();
    let alice_refresh = a.body["refresh_token"].as_str().unwrap().to_owned();

    // A conversation with a secret message.
    let conv = call(
        api,
        "POST",
        "/api/conversations",
        "198.51.100.1",
        Some(&alice_token),
        None,
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/conversations/{conv}/messages");
    let m1 = call(
        api,
        "POST",
        &path,
        "198.51.100.1",
        Some(&alice_token),
        Some(serde_json::json!({"text": SECRET_TEXT})),
    )
    .await;
    assert_eq!(m1.status, 200);
    let m2 = call(
        api,
        "POST",
        &path,
        "198.51.100.1",
        Some(&alice_token),
        Some(serde_json::json!({"text": "second message"})),
    )
    .await;
    let (m1, m2) = (
        m1.body["id"].as_str().unwrap().to_owned(),
        m2.body["id"].as_str().unwrap().to_owned(),
    );
    let list = call(api, "GET", &path, "198.51.100.1", Some(&alice_token), None).await;
    assert_eq!(list.body[0]["text"], SECRET_TEXT);

    // SQL injection attempts fail and change nothing.
    for evil in [
        "' OR '1'='1",
        "alice@example.com' --",
        "x'; DROP TABLE users; --",
    ] {
        let r = call(
            api,
            "POST",
            "/api/auth/login",
            "198.51.100.50",
            None,
            Some(serde_json::json!({"email": evil, "password": "' OR '1'='1"})),
        )
        .await;
        assert_eq!(r.status, 401, "{evil}");
    }
    let r = call(
        api,
        "GET",
        "/api/conversations/x'%20OR%20'1'='1/messages",
        "198.51.100.1",
        Some(&alice_token),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        pg.psql(&pg.database, "SELECT count(*) FROM users").trim(),
        "2"
    );

    // The dump holds no plaintext of any encrypted column.
    let dump = pg.dump();
    assert!(dump.contains("gb1.f1."), "encrypted values are in the dump");
    for plain in [
        SECRET_TEXT,
        "second message",
        "alice@example.com",
        "bob@example.com",
    ] {
        assert!(!dump.contains(plain), "plaintext {plain:?} in pg_dump");
    }

    // Row-level security: the application role sees a user's messages only as that user.
    // (psql prints command tags too: the count is the last numeric line.)
    let count = |out: String| {
        out.lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .unwrap()
    };
    let rls = |user: &str| {
        count(pg.psql(
            &pg.database,
            &format!("SET ROLE {}; BEGIN; SELECT set_config('app.user_id', '{user}', true); SELECT count(*) FROM messages; COMMIT;", pg.user),
        ))
    };
    assert_eq!(rls(&alice), 2);
    assert_eq!(rls("someone-else"), 0);
    let unscoped = count(pg.psql(
        &pg.database,
        &format!("SET ROLE {}; SELECT count(*) FROM messages;", pg.user),
    ));
    assert_eq!(unscoped, 0, "no app.user_id, no rows");

    // A value moved to another row does not decrypt.
    let body_of = |id: &str| {
        pg.psql(
            &pg.database,
            &format!("SELECT body_enc FROM messages WHERE id = '{id}'"),
        )
        .trim()
        .to_owned()
    };
    let ring = state.keys.current().field.clone();
    let moved = body_of(&m1);
    assert!(
        field::decrypt(
            &ring,
            &FieldContext {
                table: "messages",
                column: "body",
                row: &m1
            },
            &moved
        )
        .is_ok()
    );
    assert!(
        field::decrypt(
            &ring,
            &FieldContext {
                table: "messages",
                column: "body",
                row: &m2
            },
            &moved
        )
        .is_err()
    );
    pg.psql(&pg.database, &format!("UPDATE messages SET body_enc = (SELECT body_enc FROM messages WHERE id = '{m1}') WHERE id = '{m2}'"));
    let r = call(api, "GET", &path, "198.51.100.1", Some(&alice_token), None).await;
    assert_eq!(r.status, 500, "the moved value fails to decrypt");
    assert_eq!(r.body["error"], "internal error");
    pg.psql(
        &pg.database,
        &format!("DELETE FROM messages WHERE id = '{m2}'"),
    );

    // Lockout at exactly the threshold (3), from different addresses.
    for i in 0..2 {
        assert_eq!(
            login(
                "bob@example.com",
                "wrong password",
                ["203.0.113.1", "203.0.113.2"][i]
            )
            .await
            .status,
            401
        );
    }
    assert_eq!(
        login("bob@example.com", PW, "203.0.113.3").await.status,
        200,
        "2 failures: not locked"
    );
    for client in ["203.0.113.4", "203.0.113.5", "203.0.113.6"] {
        assert_eq!(
            login("bob@example.com", "wrong password", client)
                .await
                .status,
            401
        );
    }
    let locked = login("bob@example.com", PW, "203.0.113.7").await;
    assert_eq!(
        locked.status, 401,
        "3 failures: locked even with the right password"
    );
    assert_eq!(
        locked.body["error"], "invalid credentials",
        "same answer as a wrong password"
    );

    // Refresh rotation; reuse revokes the family (and the session in Redis).
    let r1 = call(
        api,
        "POST",
        "/api/auth/refresh",
        "198.51.100.2",
        None,
        Some(serde_json::json!({"refresh_token": alice_refresh})),
    )
    .await;
    assert_eq!(r1.status, 200);
    let new_refresh = r1.body["refresh_token"].as_str().unwrap().to_owned();
    let new_access = r1.body["access_token"].as_str().unwrap().to_owned();
    let reuse = call(
        api,
        "POST",
        "/api/auth/refresh",
        "198.51.100.2",
        None,
        Some(serde_json::json!({"refresh_token": alice_refresh})),
    )
    .await;
    assert_eq!(reuse.status, 401);
    let after = call(
        api,
        "POST",
        "/api/auth/refresh",
        "198.51.100.2",
        None,
        Some(serde_json::json!({"refresh_token": new_refresh})),
    )
    .await;
    assert_eq!(after.status, 401, "the whole family is revoked");
    assert_eq!(
        call(api, "GET", &path, "198.51.100.2", Some(&new_access), None)
            .await
            .status,
        401,
        "session ended"
    );

    // Rate limit: past 20 requests a minute from one address, 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..22 {
        statuses.push(
            call(
                api,
                "GET",
                "/.well-known/jwks.json",
                "192.0.2.77",
                None,
                None,
            )
            .await,
        );
    }
    assert!(statuses[..20].iter().all(|r| r.status == 200));
    assert_eq!(statuses[20].status, 429);
    assert!(statuses[20].head.contains("retry-after:"));

    // Key rotation while running: old data still decrypts, new data uses the new key.
    let a = login("alice@example.com", PW, "198.51.100.3").await;
    let token = a.body["access_token"].as_str().unwrap().to_owned();
    let field_new = random32();
    swap_ring(
        &state,
        &keys_dir,
        key_files::FIELD,
        ring_file(
            "f2",
            &[("f1", field_old.clone()), ("f2", field_new.clone())],
            None,
        ),
        |k| k.field.active_id() == "f2",
    )
    .await;
    let m3 = call(
        api,
        "POST",
        &path,
        "198.51.100.3",
        Some(&token),
        Some(serde_json::json!({"text": "after rotation"})),
    )
    .await;
    let m3 = m3.body["id"].as_str().unwrap().to_owned();
    assert!(body_of(&m3).starts_with("gb1.f2."));
    assert!(body_of(&m1).starts_with("gb1.f1."));
    let list = call(api, "GET", &path, "198.51.100.3", Some(&token), None).await;
    let texts: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, [SECRET_TEXT, "after rotation"]);

    // The operator's key-usage report.
    let usage = call(
        ops,
        "GET",
        contract::KEY_USAGE_PATH,
        "127.0.0.1",
        Some(OPS_TOKEN),
        None,
    )
    .await;
    assert_eq!(usage.status, 200);
    let report: contract::KeyUsageReport = serde_json::from_value(usage.body).unwrap();
    assert_eq!(report.rings["field"]["f2"], 1);
    assert_eq!(
        report.rings["field"]["f1"], 3,
        "2 emails and 1 message still under f1"
    );

    // Re-encryption moves everything to f2; then the operator can retire f1.
    assert!(!report.reencrypting);
    let pass = generalbot_bot_server::reencrypt::run_once(&state)
        .await
        .unwrap()
        .expect("no other replica runs a pass");
    assert_eq!(
        (pass.rewritten, pass.reindexed, pass.skipped),
        (3, 0, 0),
        "3 values moved to f2; every blind index already under the active HMAC key"
    );
    // One replica at a time: while another holds the pass lock, a pass does nothing.
    use generalbot_bot_server::reencrypt;
    let while_held = state
        .store
        .exclusively(reencrypt::PASS_LOCK, reencrypt::run_once(&state))
        .await
        .unwrap()
        .expect("the lock was free")
        .unwrap();
    assert!(while_held.is_none(), "a second pass waits for the first");
    let usage = call(
        ops,
        "GET",
        contract::KEY_USAGE_PATH,
        "127.0.0.1",
        Some(OPS_TOKEN),
        None,
    )
    .await;
    let report: contract::KeyUsageReport = serde_json::from_value(usage.body).unwrap();
    assert_eq!(
        report.rings["field"].get("f1"),
        None,
        "no record left under f1"
    );
    assert_eq!(report.rings["field"]["f2"], 4);
    swap_ring(
        &state,
        &keys_dir,
        key_files::FIELD,
        ring_file("f2", &[("f2", field_new.clone())], None),
        |k| k.field.get("f1").is_none(),
    )
    .await;
    let list = call(api, "GET", &path, "198.51.100.3", Some(&token), None).await;
    assert_eq!(list.status, 200, "everything still decrypts without f1");
    assert_eq!(list.body[0]["text"], SECRET_TEXT);

    // HMAC rotation: h2 becomes active beside h1. An account indexed under h1 still logs
    // in and cannot be registered twice; the pass re-indexes every email under h2; the
    // report counts what still needs h1 (live refresh tokens made under it), so the
    // operator keeps h1 until they are used or expire; without h1, every account is
    // still found.
    use generalbot_bot_server::auth::{Role, service::AuthError};
    let (carol_id, _) = state
        .auth
        .register("carol@example.com", PW, Role::User, false)
        .await
        .unwrap();
    let carol = login("carol@example.com", PW, "198.51.100.20").await;
    assert_eq!(carol.status, 200);
    let carol_refresh_h1 = carol.body["refresh_token"].as_str().unwrap().to_owned();
    let usage = || async {
        let r = call(
            ops,
            "GET",
            contract::KEY_USAGE_PATH,
            "127.0.0.1",
            Some(OPS_TOKEN),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        serde_json::from_value::<contract::KeyUsageReport>(r.body).unwrap()
    };
    let hmac_new = random32();
    swap_ring(
        &state,
        &keys_dir,
        key_files::HMAC,
        ring_file(
            "h2",
            &[("h1", hmac_key.clone()), ("h2", hmac_new.clone())],
            None,
        ),
        |k| k.hmac.active_id() == "h2",
    )
    .await;
    let indexed_h1 = state
        .store
        .email_indexes_by_key()
        .await
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "h1")
        .map_or(0, |(_, n)| n);
    assert_eq!(indexed_h1, 3, "alice, bob and carol are indexed under h1");
    let report = usage().await;
    assert!(
        report.rings["hmac"]["h1"] > indexed_h1,
        "emails and live refresh tokens under h1: {report:?}"
    );
    assert!(
        report.rings["hmac"].get("h2").copied().unwrap_or(0) <= 1,
        "under h2, at most the audit chain's head (signed once the reload was audited): {report:?}"
    );
    assert_eq!(
        report.rings["data"].len(),
        0,
        "nothing is under the data ring"
    );
    assert!(matches!(
        state
            .auth
            .register(" Carol@Example.com", PW, Role::User, false)
            .await,
        Err(AuthError::EmailTaken)
    ));
    let carol = login("carol@example.com", PW, "198.51.100.21").await;
    assert_eq!(carol.status, 200, "found under h1 before re-indexing");
    let pass = generalbot_bot_server::reencrypt::run_once(&state)
        .await
        .unwrap()
        .expect("no other replica runs a pass");
    assert_eq!(
        (pass.rewritten, pass.reindexed, pass.skipped),
        (0, 3, 0),
        "every email re-indexed under h2"
    );
    let live_h1 = state
        .store
        .live_refresh_by_key()
        .await
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "h1")
        .map_or(0, |(_, n)| n);
    assert!(live_h1 >= 1, "carol's first refresh token is under h1");
    let report = usage().await;
    assert_eq!(
        report.rings["hmac"].get("h1").copied().unwrap_or(0),
        live_h1,
        "only live refresh tokens still need h1: {report:?}"
    );
    assert!(
        report.rings["hmac"]["h2"] > 3,
        "3 emails and carol's second refresh token"
    );
    // A refresh token made under h1 is exchanged (found under h1) for one under h2.
    let exchanged = call(
        api,
        "POST",
        "/api/auth/refresh",
        "198.51.100.21",
        None,
        Some(serde_json::json!({"refresh_token": carol_refresh_h1})),
    )
    .await;
    assert_eq!(exchanged.status, 200, "{:?}", exchanged.body);
    swap_ring(
        &state,
        &keys_dir,
        key_files::HMAC,
        ring_file("h2", &[("h2", hmac_new.clone())], None),
        |k| k.hmac.get("h1").is_none(),
    )
    .await;
    for (email, client) in [
        ("alice@example.com", "198.51.100.22"),
        ("carol@example.com", "198.51.100.23"),
    ] {
        assert_eq!(
            login(email, PW, client).await.status,
            200,
            "{email} is found under h2 alone"
        );
    }
    assert!(matches!(
        state
            .auth
            .register("carol@example.com", PW, Role::User, false)
            .await,
        Err(AuthError::EmailTaken)
    ));
    assert_eq!(
        call(
            ops,
            "GET",
            contract::KEY_USAGE_PATH,
            "127.0.0.1",
            Some("wrong"),
            None
        )
        .await
        .status,
        401
    );

    // The audit chain verifies through the admin API; metrics count what happened.
    let audit = call(
        api,
        "GET",
        "/api/admin/audit",
        "198.51.100.3",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(audit.body["verified"], true);
    let kinds: Vec<&str> = audit.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "auth_attempt",
        "data_write",
        "data_read",
        "api_call",
        "security_violation",
        "config_change",
        "admin_action",
    ] {
        assert!(kinds.contains(&kind), "no {kind} event in the audit log");
    }
    let metrics = call(ops, "GET", contract::METRICS_PATH, "127.0.0.1", None, None).await;
    assert_eq!(metrics.status, 200);

    // A role change and a deletion take effect on the next request, same token.
    let b = login("carol@example.com", PW, "198.51.100.9").await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    let carol_token = b.body["access_token"].as_str().unwrap().to_owned();
    let carol_reads_audit = || {
        let carol_token = carol_token.clone();
        async move {
            call(
                api,
                "GET",
                "/api/admin/audit?limit=1",
                "198.51.100.9",
                Some(&carol_token),
                None,
            )
            .await
            .status
        }
    };
    assert_eq!(carol_reads_audit().await, 403);
    let promoted = call(
        api,
        "PUT",
        &format!("/api/admin/users/{carol_id}/role"),
        "198.51.100.3",
        Some(&token),
        Some(serde_json::json!({"role": "admin"})),
    )
    .await;
    assert_eq!(promoted.status, 204, "{:?}", promoted.body);
    assert_eq!(
        carol_reads_audit().await,
        200,
        "promoted on the next request"
    );
    let deleted = call(
        api,
        "DELETE",
        &format!("/api/admin/users/{carol_id}"),
        "198.51.100.3",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        carol_reads_audit().await,
        401,
        "deleted: the token stops at once"
    );
    let self_delete = call(
        api,
        "DELETE",
        &format!("/api/admin/users/{alice}"),
        "198.51.100.3",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(self_delete.status, 409, "{:?}", self_delete.body);

    // TOTP enrolment: the secret is shown once, never cached.
    let enrol = call(
        api,
        "POST",
        "/api/auth/totp/enrol",
        "198.51.100.3",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(enrol.status, 200, "{:?}", enrol.body);
    assert!(
        enrol.head.contains("cache-control: no-store"),
        "{}",
        enrol.head
    );
    let totp_secret = enrol.body["secret"].as_str().unwrap().to_owned();
    assert!(
        enrol.body["otpauth_uri"]
            .as_str()
            .unwrap()
            .contains(&totp_secret)
    );

    // Logout revokes.
    assert_eq!(
        call(
            api,
            "POST",
            "/api/auth/logout",
            "198.51.100.3",
            Some(&token),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(api, "GET", &path, "198.51.100.3", Some(&token), None)
            .await
            .status,
        401
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    // No secret in the logs of the whole run.
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("audit event"), "logs were captured");
    let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
    for secret in [
        PW.to_string(),
        SECRET_TEXT.to_string(),
        "alice@example.com".into(),
        pg.password.clone(),
        pg.owner_password.clone(),
        totp_secret,
        redis.password.clone(),
        OPS_TOKEN.into(),
        alice_token,
        alice_refresh,
        new_refresh,
        token,
        b64(&field_old),
        b64(&field_new),
        b64(&data_key),
        b64(&hmac_key),
        "PRIVATE KEY".into(),
    ] {
        assert!(
            !logs.contains(&secret),
            "a secret leaked into the logs: {}…",
            secret.get(..12).unwrap_or(&secret)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
