//! A small HTTPS client for the end-to-end suite: one request per TLS connection to a
//! loopback address, verifying the server's chain against a trust bundle given per call
//! and its name against the Service's DNS name, as a client inside the cluster would
//! (the TLS part is the operator's own [`tls_client`]).

// Test support only: a helper that cannot do its job fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;

use generalbot_operator::tls_client::{self, ConnectTo};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A response: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Sends one request over a new TLS 1.3 connection to `addr`, presenting `server_name`
/// and trusting only the CA certificates in `trust_pem`. `Err` says what failed
/// (connection, handshake, HTTP).
pub async fn request(
    addr: SocketAddr,
    server_name: &str,
    trust_pem: &[u8],
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<Response, String> {
    let connect_to = ConnectTo::parse([format!("{server_name}:{}={addr}", addr.port()).as_str()])?;
    let tls = tls_client::connect(server_name, addr.port(), trust_pem, &connect_to).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, server_name)
        .header(http::header::CONNECTION, "close");
    if let Some(token) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let bytes = match &body {
        Some(b) => {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
            serde_json::to_vec(b).unwrap()
        }
        None => Vec::new(),
    };
    let req = req
        .body(Full::new(bytes::Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{method} {path}: reading the body: {e}"))?
        .to_bytes();
    Ok(Response {
        status,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    })
}
