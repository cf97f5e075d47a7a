//! HTTPS to the directory service (discovery, signing keys, code exchange): one
//! connection per request, the directory's certificate verified against its CA file or
//! the public roots, no redirect followed, answers capped in size and time. It is the
//! HTTP client the `openidconnect` crate calls.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

use super::OidcError;

/// Largest answer accepted.
const MAX_BODY: usize = 1024 * 1024;
/// Longest a request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The client.
#[derive(Clone)]
pub struct Https {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Https")
    }
}

impl Https {
    /// Trusting the CA certificates in `ca_file`, or the public roots.
    pub fn new(ca_file: Option<&Path>) -> Result<Self, OidcError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| OidcError::Ca(format!("{}: {e}", path.display())))?;
                for cert in certs {
                    let cert =
                        cert.map_err(|e| OidcError::Ca(format!("{}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| OidcError::Ca(format!("{}: {e}", path.display())))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| OidcError::Ca(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self { tls: Arc::new(tls) })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, OidcError> {
        tokio::time::timeout(TIMEOUT, self.exchange(request))
            .await
            .map_err(|_| OidcError::Http("the directory did not answer in time".into()))?
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, OidcError> {
        let uri = request.uri().clone();
        if uri.scheme_str() != Some("https") {
            return Err(OidcError::Http(format!("{uri}: only https is used")));
        }
        let host = uri
            .host()
            .ok_or_else(|| OidcError::Http(format!("{uri}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let name = ServerName::try_from(host.clone())
            .map_err(|e| OidcError::Http(format!("{host}: {e}")))?;
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| OidcError::Http(format!("connecting to {host}:{port}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| OidcError::Http(format!("TLS with {host}: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| OidcError::Http(e.to_string()))?;
        tokio::spawn(conn);
        let (mut parts, body) = request.into_parts();
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or(host);
        parts.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&authority).map_err(|e| OidcError::Http(e.to_string()))?,
        );
        parts.uri = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e: http::uri::InvalidUri| OidcError::Http(e.to_string()))?;
        let response = sender
            .send_request(http::Request::from_parts(
                parts,
                Full::new(bytes::Bytes::from(body)),
            ))
            .await
            .map_err(|e| OidcError::Http(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| OidcError::Http(e.to_string()))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body.to_vec()))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Https {
    type Error = OidcError;
    type Future =
        Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, OidcError>> + Send + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
