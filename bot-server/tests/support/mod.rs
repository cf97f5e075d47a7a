//! The real services the integration tests start (the workspace's test kit), and the
//! helpers the bot server's integration tests share: key-ring files, one HTTP call.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use generalbot_bot_server::config::{self, Config, MapSource};
use generalbot_bot_server::http::AppState;
use generalbot_bot_server::{Listeners, build_state, serve};
use generalbot_crds::contract::{self, KeyEntry, KeyRingFile, env, key_files};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub use generalbot_testkit::*;

/// A key-ring file as the operator writes it.
pub fn ring_file(active: &str, keys: &[(&str, Vec<u8>)], algorithm: Option<&str>) -> String {
    serde_json::to_string(&KeyRingFile {
        version: contract::KEY_RING_VERSION,
        active: active.into(),
        algorithm: algorithm.map(str::to_owned),
        keys: keys
            .iter()
            .map(|(id, m)| KeyEntry {
                id: (*id).into(),
                created: "2026-01-01T00:00:00Z".into(),
                material: base64::engine::general_purpose::STANDARD.encode(m),
            })
            .collect(),
    })
    .unwrap()
}

pub fn random32() -> Vec<u8> {
    let mut k = vec![0u8; 32];
    getrandom::fill(&mut k).unwrap();
    k
}

/// An HTTP answer.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Head, lower case.
    pub head: String,
    /// JSON body (null when none).
    pub body: serde_json::Value,
}

/// One HTTP/1.1 request from `client` (as `X-Forwarded-For`), with an optional bearer
/// token and JSON body.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    client: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let auth: Vec<(&str, String)> = token
        .map(|t| ("Authorization", format!("Bearer {t}")))
        .into_iter()
        .collect();
    call_with(addr, method, path, client, &auth, body).await
}

/// [`call`] with any headers.
pub async fn call_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    client: &str,
    headers: &[(&str, String)],
    body: Option<serde_json::Value>,
) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: {client}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, &req).await
}

/// One bot server in this process, as a replica of a Deployment: its state and its API
/// address; it stops when dropped.
pub struct Replica {
    /// Its state.
    pub state: Arc<AppState>,
    /// Its API address.
    pub api: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The secrets every replica mounts: key rings, database credentials.
pub fn secrets(pg: &Postgres) -> std::path::PathBuf {
    let dir = temp_dir("gb-replicas");
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for (file, id) in [
        (key_files::FIELD, "f1"),
        (key_files::DATA, "d1"),
        (key_files::HMAC, "h1"),
    ] {
        write(
            &keys.join(file),
            ring_file(id, &[(id, random32())], None),
            0o400,
        );
    }
    let jwt = generalbot_bot_server::crypto::keyring::pkcs8_from_pem(include_str!(
        "../fixtures/test-rsa-1.pem"
    ))
    .unwrap();
    write(
        &keys.join(key_files::JWT),
        ring_file("j1", &[("j1", jwt.to_vec())], Some("RS256")),
        0o400,
    );
    write(&dir.join("db-user"), &pg.user, 0o400);
    write(&dir.join("db-password"), &pg.password, 0o400);
    write(&dir.join("db-owner"), &pg.owner, 0o400);
    write(&dir.join("db-owner-password"), &pg.owner_password, 0o400);
    dir
}

/// The configuration of a replica: production (or `dev`), the given PostgreSQL and
/// optional Redis, the secrets under `dir`, plain HTTP, and `settings` on top.
pub fn replica_config(
    dir: &Path,
    pg: &Postgres,
    redis: Option<&Redis>,
    dev: bool,
    settings: &[(&str, String)],
) -> Config {
    Config::load(&source(replica_vars(dir, pg, redis, settings)), dev)
        .expect("the configuration is accepted")
}

/// A configuration source with these variables, as this process.
pub fn source(vars: BTreeMap<String, String>) -> MapSource {
    MapSource {
        vars,
        groups: config::process_groups(),
    }
}

/// The variables of [`replica_config`].
pub fn replica_vars(
    dir: &Path,
    pg: &Postgres,
    redis: Option<&Redis>,
    settings: &[(&str, String)],
) -> BTreeMap<String, String> {
    let p = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    let mut vars: BTreeMap<String, String> = [
        (env::MODE, "production".to_string()),
        // Plain HTTP, as behind a proxy that terminates TLS.
        (env::ALLOW_PLAINTEXT, "true".to_string()),
        (env::KEYS_DIR, p(dir.join("keys"))),
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
        (env::TRUSTED_PROXIES, "127.0.0.1/32".into()),
    ]
    .into_iter()
    .chain(settings.iter().map(|(k, v)| (*k, v.clone())))
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(r) = redis {
        write(&dir.join("cache-password"), &r.password, 0o400);
        vars.insert(
            env::CACHE_URL.into(),
            format!("rediss://127.0.0.1:{}", r.port),
        );
        vars.insert("CACHE_PASSWORD_FILE".into(), p(dir.join("cache-password")));
        vars.insert(env::CACHE_CA_FILE.into(), p(r.ca.clone()));
        if let Some((cert, key)) = &r.client {
            vars.insert(env::CACHE_CLIENT_CERT_FILE.into(), p(cert.clone()));
            vars.insert(env::CACHE_CLIENT_KEY_FILE.into(), p(key.clone()));
        }
    }
    vars
}

/// The settings of a bucket on `moto`, its credentials written under `dir`.
pub fn storage_settings(dir: &Path, moto: &Moto, bucket: &str) -> Vec<(&'static str, String)> {
    write(&dir.join("s3-access"), Moto::ACCESS_KEY, 0o400);
    write(&dir.join("s3-secret"), Moto::SECRET_KEY, 0o400);
    let p = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    vec![
        (env::STORAGE_ENDPOINT, moto.endpoint()),
        (env::STORAGE_BUCKET, bucket.to_owned()),
        (env::STORAGE_ACCESS_KEY_FILE, p(dir.join("s3-access"))),
        (env::STORAGE_SECRET_KEY_FILE, p(dir.join("s3-secret"))),
        (env::STORAGE_CA_FILE, p(moto.ca.clone())),
    ]
}

/// A replica serving with that configuration ([`replica_config`]).
pub async fn replica(
    dir: &Path,
    pg: &Postgres,
    redis: Option<&Redis>,
    dev: bool,
    settings: &[(&str, String)],
) -> Replica {
    let cfg = replica_config(dir, pg, redis, dev, settings);
    let state = build_state(&cfg).await.unwrap();
    let listeners = Listeners::bind(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let api = listeners.api.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listeners, state.clone(), async move {
        let _ = stopped.await;
    }));
    Replica {
        state,
        api,
        _stop: stop,
    }
}

/// One HTTP/1.1 request with a raw body of the given content type.
pub async fn call_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> Reply {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, &req).await
}

/// Sends one whole request on a fresh connection and reads the answer to its end.
async fn exchange(addr: SocketAddr, req: &str) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    Reply {
        status,
        head: head.to_lowercase(),
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    }
}

/// One HTTP/1.1 request with a binary body; the status, the head (lower case) and the
/// body's bytes.
pub async fn call_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: 10.1.1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) before it reads the whole body.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..split]).to_lowercase();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.get(split + 4..).unwrap_or_default().to_vec();
    (status, head, body)
}
