//! Asks a bot server for one of its operations documents (the contract's
//! [`KEY_USAGE_PATH`](generalbot_crds::contract::KEY_USAGE_PATH) and
//! [`AUDIT_HEAD_PATH`](generalbot_crds::contract::AUDIT_HEAD_PATH)) over TLS on its API
//! port, through its Service (or where `connect_to` says), its serving certificate
//! verified against the operator's trust bundle, with the ops token. Any failure is
//! `None`, logged at debug level.

use std::time::Duration;

use generalbot_crds::contract::API_PORT;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use crate::tls_client::{self, ConnectTo};

/// Largest document accepted.
const MAX_REPORT_BYTES: usize = 64 * 1024;
/// How long to wait for an answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Which bot, and how to reach and trust it.
#[derive(Clone, Copy)]
pub struct BotApi<'a> {
    /// The GeneralBot's name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The ops token.
    pub token: &'a str,
    /// The trust bundle (PEM).
    pub trust_pem: &'a [u8],
    /// Where to connect instead of the Service.
    pub connect_to: &'a ConnectTo,
}

/// The JSON document at `path` (with its query), or `None` when there is none.
pub async fn get_json<T: serde::de::DeserializeOwned>(bot: BotApi<'_>, path: &str) -> Option<T> {
    let host = format!("{}.{}.svc", bot.name, bot.namespace);
    match tokio::time::timeout(TIMEOUT, get(&host, path, bot)).await {
        Ok(Ok(doc)) => Some(doc),
        Ok(Err(reason)) => {
            tracing::debug!(%host, path, %reason, "no answer from the bot server");
            None
        }
        Err(_) => {
            tracing::debug!(%host, path, "the bot server did not answer in time");
            None
        }
    }
}

async fn get<T: serde::de::DeserializeOwned>(
    host: &str,
    path: &str,
    bot: BotApi<'_>,
) -> Result<T, String> {
    let BotApi {
        token,
        trust_pem,
        connect_to,
        ..
    } = bot;
    let port = u16::try_from(API_PORT).map_err(|e| e.to_string())?;
    let tls = tls_client::connect(host, port, trust_pem, connect_to).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = http::Request::get(path)
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
