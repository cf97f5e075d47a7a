//! Encrypted backups on real services: PostgreSQL (TLS) and an S3 server (moto, TLS).
//! `bot-server backup` takes one, as the operator's CronJob runs it; `bot-server
//! restore` loads it into a fresh database, where every table is identical. The object
//! is sealed (no plaintext, no readable gzip), unreadable without its key, and a cut
//! or altered object is refused with nothing loaded.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;

use generalbot_bot_server::auth::Role;
use generalbot_bot_server::backup::tables::EXCLUDED;
use generalbot_crds::contract::{env, key_files};
use generalbot_storage::{AccessKeys, Endpoint, layout};

const BUCKET: &str = "generalbot-backups";
const MARKER: &str = "a message that must never be readable in the bucket";

/// Runs `bot-server ARGS` with exactly these variables; its stdout, or its stderr.
fn bot_server(args: &[&str], vars: &BTreeMap<String, String>) -> Result<String, String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bot-server"))
        .args(args)
        .env_clear()
        .envs(vars)
        .output()
        .unwrap();
    if out.status.success() {
        // Logs are JSON lines on stdout too; the result is the last line.
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(stdout.lines().last().unwrap_or_default().to_owned())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Every backed-up table's rows, as one digest per table, and the row counts.
fn digests(pg: &support::Postgres, db: &str) -> BTreeMap<String, String> {
    let tables = pg.psql(
        db,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    tables
        .lines()
        .filter(|t| !t.is_empty() && !EXCLUDED.contains(t))
        .map(|t| {
            // The owner would see nothing through forced row-level security; psql runs
            // as the superuser, which sees every row.
            let d = pg.psql(
                db,
                &format!(
                    "SELECT COUNT(*) || ':' || COALESCE(md5(string_agg(row_to_json(x)::text, E'\\n' ORDER BY row_to_json(x)::text)), '') FROM {t} x"
                ),
            );
            (t.to_owned(), d.trim().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_backup_restores_identically_and_a_damaged_one_changes_nothing() {
    let pg = match support::Postgres::start() {
        Ok(pg) => pg,
        Err(why) => return support::skip("backups", &why),
    };
    let moto = match support::Moto::start() {
        Ok(m) => m,
        Err(why) => return support::skip("backups", &why),
    };
    let dir = support::secrets(&pg);
    let mut storage = support::storage_settings(&dir, &moto, BUCKET);
    storage.push((env::BACKUP_RETENTION_DAYS, "30".to_owned()));
    let s3 = generalbot_storage::client(&Endpoint {
        url: moto.endpoint(),
        region: "us-east-1".into(),
        keys: Some(AccessKeys {
            access_key_id: support::Moto::ACCESS_KEY.to_owned().into(),
            secret_access_key: support::Moto::SECRET_KEY.to_owned().into(),
        }),
        ca_pem: Some(std::fs::read(&moto.ca).unwrap()),
    })
    .unwrap();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    // A backup past the retention, which this run prunes.
    let old = layout::backup_key("2020-01-01T00:00:00Z".parse().unwrap(), "d0");
    s3.put_object()
        .bucket(BUCKET)
        .key(&old)
        .body(b"old".to_vec().into())
        .send()
        .await
        .unwrap();

    // Data through the server: users (encrypted emails, blind indexes), an audit chain,
    // sign-ins (refresh tokens), a conversation with encrypted messages.
    let replica = support::replica(&dir, &pg, None, false, &storage).await;
    let state = &replica.state;
    for i in 0..5 {
        let role = if i == 0 { Role::Admin } else { Role::User };
        state
            .auth
            .register(
                &format!("user{i}@example.com"),
                "a long and secret passphrase",
                role,
                false,
            )
            .await
            .unwrap();
        let r = support::call(
            replica.api,
            "POST",
            "/api/auth/login",
            "10.0.0.1",
            None,
            Some(serde_json::json!({"email": format!("user{i}@example.com"), "password": "a long and secret passphrase"})),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let token = support::call(
        replica.api,
        "POST",
        "/api/auth/login",
        "10.0.0.1",
        None,
        Some(serde_json::json!({"email": "user1@example.com", "password": "a long and secret passphrase"})),
    )
    .await
    .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let conv = support::call(
        replica.api,
        "POST",
        "/api/conversations",
        "10.0.0.2",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(conv.status, 200, "{:?}", conv.body);
    let id = conv.body["id"].as_str().unwrap().to_owned();
    for text in [MARKER, "ünïcødé, \"quotes\", a\nnewline and a \\ backslash"] {
        let r = support::call(
            replica.api,
            "POST",
            &format!("/api/conversations/{id}/messages"),
            "10.0.0.2",
            Some(&token),
            Some(serde_json::json!({"text": text})),
        )
        .await;
        assert!(r.status < 300, "{:?}", r.body);
    }
    // Volume: many conversations and messages, written as the superuser.
    pg.psql(
        &pg.database,
        "INSERT INTO conversations (id, user_id, created_at) SELECT 'bulk-' || g, 'u-' || (g % 7), g FROM generate_series(1, 300) g; \
         INSERT INTO messages (id, conversation_id, user_id, body_enc, created_at, sender) \
         SELECT 'm-' || g, 'bulk-' || (1 + g % 300), 'u-' || (g % 7), repeat(md5(g::text), 8), g, CASE WHEN g % 2 = 0 THEN 'bot' ELSE 'user' END FROM generate_series(1, 20000) g",
    );
    drop(replica);
    let source = digests(&pg, &pg.database);
    assert!(source.len() >= 7, "{source:?}");

    // The backup, as the CronJob runs it: the server's settings, nothing else.
    let vars = support::replica_vars(&dir, &pg, None, &storage);
    let out = bot_server(&["backup"], &vars).unwrap_or_else(|e| panic!("backup: {e}"));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let key = report["key"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("backups/") && key.ends_with("-d1.gbbak"),
        "{key}"
    );
    assert_eq!(report["pruned"], serde_json::json!([old]));
    assert!(report["rows"].as_u64().unwrap() > 20_000, "{report}");
    assert_eq!(report["tables"].as_u64().unwrap() as usize, source.len());

    // Sealed: the key id in clear, no plaintext, not even a gzip header.
    let sealed = s3
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec();
    assert_eq!(sealed.len() as u64, report["bytes"].as_u64().unwrap());
    assert!(sealed.starts_with(b"GBS1\x02d1"));
    let hay = String::from_utf8_lossy(&sealed);
    assert!(!hay.contains("user0") && !hay.contains("audit") && !hay.contains("bulk-"));
    // No gzip stream in clear: the header flate2 writes (magic, deflate, no flags, mtime
    // 0). Eight bytes, so random ciphertext never matches by chance, as the three bytes
    // of the magic alone did now and then in a large object.
    assert!(
        !sealed
            .windows(8)
            .any(|w| w == [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00]),
        "a gzip header in clear"
    );

    // Restored into a fresh database: every table identical, row-level security forced.
    let restore_into = |db: &str, object: &str, vars: &BTreeMap<String, String>| {
        pg.psql(
            "postgres",
            &format!("CREATE DATABASE {db} OWNER {}", pg.owner),
        );
        let mut v = vars.clone();
        v.insert(env::DATABASE_NAME.into(), db.into());
        bot_server(&["restore", "--object", object], &v)
    };
    let out = restore_into("restored", &key, &vars).unwrap_or_else(|e| panic!("restore: {e}"));
    let restored: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(restored["rows"], report["rows"]);
    assert_eq!(digests(&pg, "restored"), source);
    assert_eq!(
        pg.psql(
            "restored",
            "SELECT COUNT(*) FROM pg_class WHERE relforcerowsecurity"
        )
        .trim(),
        pg.psql(
            &pg.database,
            "SELECT COUNT(*) FROM pg_class WHERE relforcerowsecurity"
        )
        .trim()
    );
    assert_eq!(
        pg.psql(
            "restored",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations"
        ),
        pg.psql(
            &pg.database,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations"
        )
    );
    // And a server starts on it and signs a user in.
    let mut on_restored = vars.clone();
    on_restored.insert(env::DATABASE_NAME.into(), "restored".into());
    let state = generalbot_bot_server::build_state(
        &generalbot_bot_server::config::Config::load(&support::source(on_restored.clone()), false)
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(
        state
            .auth
            .login(
                "user3@example.com",
                "a long and secret passphrase",
                None,
                "10.0.0.9".parse().unwrap()
            )
            .await
            .is_ok()
    );
    drop(state);

    // Into a database that has data: refused, by table.
    let err = bot_server(&["restore", "--latest"], &on_restored).unwrap_err();
    assert!(err.contains("restore needs an empty database"), "{err}");

    // Without its key: the data ring no longer holds d1.
    let no_key = support::temp_dir("gb-nokey");
    std::fs::create_dir_all(no_key.join("keys")).unwrap();
    for f in [key_files::FIELD, key_files::HMAC, key_files::JWT] {
        std::fs::copy(dir.join("keys").join(f), no_key.join("keys").join(f)).unwrap();
    }
    support::write(
        &no_key.join("keys").join(key_files::DATA),
        support::ring_file("d2", &[("d2", support::random32())], None),
        0o400,
    );
    let mut v = vars.clone();
    v.insert(
        env::KEYS_DIR.into(),
        no_key.join("keys").to_str().unwrap().to_owned(),
    );
    let err = restore_into("nokey", &key, &v).unwrap_err();
    assert!(
        err.contains("sealed with key") && err.contains("d1") && err.contains("no longer holds"),
        "{err}"
    );

    // Altered in the middle, then cut short: refused, and nothing was loaded.
    for (db, damaged, says) in [
        (
            "tampered",
            {
                let mut d = sealed.clone();
                let mid = d.len() / 2;
                d[mid] ^= 0x40;
                d
            },
            "altered",
        ),
        (
            "truncated",
            sealed[..sealed.len() - 100].to_vec(),
            "truncated",
        ),
    ] {
        // Same bytes under another name do not open either (the name is authenticated),
        // so the damaged copy goes under the original name, in a bucket of its own.
        let b2 = format!("damaged-{db}");
        s3.create_bucket().bucket(&b2).send().await.unwrap();
        s3.put_object()
            .bucket(&b2)
            .key(&key)
            .body(damaged.into())
            .send()
            .await
            .unwrap();
        let mut v = vars.clone();
        v.insert(env::STORAGE_BUCKET.into(), b2.clone());
        let err = restore_into(db, &key, &v).unwrap_err();
        assert!(err.contains(says), "{db}: {err}");
        let loaded = pg.psql(
            db,
            "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM messages)",
        );
        assert_eq!(
            loaded.trim(),
            "0",
            "{db}: rows were loaded from a damaged backup"
        );
    }
    // The original under another name does not open: the name is part of what is sealed.
    let renamed = "backups/20261130T000000Z-d1.gbbak";
    s3.put_object()
        .bucket(BUCKET)
        .key(renamed)
        .body(sealed.into())
        .send()
        .await
        .unwrap();
    let err = restore_into("renamed", renamed, &vars).unwrap_err();
    assert!(err.contains("altered"), "{err}");
}
