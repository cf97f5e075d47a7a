//! A small HTTPS client for the end-to-end suite: one request per TLS connection to a
//! loopback address, verifying the server's chain against a trust bundle given per call
//! and its name against the Service's DNS name, as a client inside the cluster would.

// Test support only: a helper that cannot do its job fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;

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
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(trust_pem) {
        roots
            .add(cert.map_err(|e| format!("trust bundle: {e}"))?)
            .map_err(|e| format!("trust bundle: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {server_name}: {e}"))?;
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
