//! Asks a bot server how many stored records are still under each key id (the
//! contract's [`KEY_USAGE_PATH`]), so the operator retires a data, field or HMAC key only
//! when nothing needs it. Asked over TLS on the API port, the bot's serving certificate
//! verified against the operator's trust bundle, with the ops token. Any failure is
//! "unknown", which keeps the key.

use std::time::Duration;

use generalbot_crds::contract::{API_PORT, KEY_USAGE_PATH, KeyUsageReport};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use crate::tls_client::{self, ConnectTo};

/// Largest report accepted.
const MAX_REPORT_BYTES: usize = 64 * 1024;
/// How long to wait for a report.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The report of the bot `name` in `namespace`, asked over TLS on its API port through
/// its Service (or where `connect_to` says), verifying its serving certificate against
/// `trust_pem`; `None` when there is none.
pub async fn fetch(
    name: &str,
    namespace: &str,
    token: &str,
    trust_pem: &[u8],
    connect_to: &ConnectTo,
) -> Option<KeyUsageReport> {
    let host = format!("{name}.{namespace}.svc");
    match tokio::time::timeout(TIMEOUT, get(&host, token, trust_pem, connect_to)).await {
        Ok(Ok(report)) => Some(report),
        Ok(Err(reason)) => {
            tracing::debug!(%host, %reason, "no key usage report");
            None
        }
        Err(_) => {
            tracing::debug!(%host, "key usage report timed out");
            None
        }
    }
}

async fn get(
    host: &str,
    token: &str,
    trust_pem: &[u8],
    connect_to: &ConnectTo,
) -> Result<KeyUsageReport, String> {
    let port = u16::try_from(API_PORT).map_err(|e| e.to_string())?;
    let tls = tls_client::connect(host, port, trust_pem, connect_to).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = http::Request::get(KEY_USAGE_PATH)
        .header(http::header::HOST, host)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_REPORT_BYTES)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}
