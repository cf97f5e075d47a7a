//! Asks a bot server how many stored records are still under each key id (the
//! contract's [`KEY_USAGE_PATH`]), so the operator retires a data, field or HMAC key only
//! when nothing needs it. Any failure is "unknown", which keeps the key.

use std::time::Duration;

use generalbot_crds::contract::{KEY_USAGE_PATH, KeyUsageReport, METRICS_PORT};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Largest report accepted.
const MAX_REPORT_BYTES: usize = 64 * 1024;
/// How long to wait for a report.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The report of the bot `name` in `namespace`, through its Service, or `None`.
pub async fn fetch(name: &str, namespace: &str, token: &str) -> Option<KeyUsageReport> {
    let url = format!("http://{name}.{namespace}.svc:{METRICS_PORT}{KEY_USAGE_PATH}");
    match tokio::time::timeout(TIMEOUT, get(&url, token)).await {
        Ok(Ok(report)) => Some(report),
        Ok(Err(reason)) => {
            tracing::debug!(%url, %reason, "no key usage report");
            None
        }
        Err(_) => {
            tracing::debug!(%url, "key usage report timed out");
            None
        }
    }
}

async fn get(url: &str, token: &str) -> Result<KeyUsageReport, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let request = http::Request::get(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
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
