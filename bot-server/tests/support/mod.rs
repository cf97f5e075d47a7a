//! The real services the integration tests start (the workspace's test kit), and the
//! helpers the bot server's integration tests share: key-ring files, one HTTP call.
#![allow(dead_code)]

use std::net::SocketAddr;

use base64::Engine as _;
use generalbot_crds::contract::{self, KeyEntry, KeyRingFile};
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
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: {client}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
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
