//! Client certificates on the API (mutual TLS, `BOTSERVER_CLIENT_CERTIFICATES`): the
//! verifier built from the trust bundle (`BOTSERVER_TLS_CA_FILE`, rebuilt whenever the
//! bundle rotates, see [`crate::tls::ReloadingTls`]), the identity a verified
//! certificate gives its connection, and the rule that every `/api/` request needs one
//! when they are required.
//!
//! The handshake asks for a certificate and refuses one that does not chain to the
//! bundle, but lets a client without one through: the operator's `/internal/` calls
//! (which carry the ops token) and the kubelet's probes (on the operations port) need
//! none, so `required` is enforced per request, where the path is known.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use crate::tls::TlsError;

/// The verifier of client certificates: any that chains to a CA of `bundle`.
pub fn verifier(bundle: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let err = |detail: String| TlsError::Certificate {
        path: bundle.to_owned(),
        detail,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(bundle).map_err(|e| err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no CA certificate found".into()));
    }
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| err(e.to_string()))
}

/// Who a verified client certificate names: its subject's common name, else its first
/// DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity(pub Arc<str>);

impl ClientIdentity {
    /// From the peer certificates of a connection rustls verified (the leaf first).
    pub fn of(certs: Option<&[CertificateDer<'_>]>) -> Option<Self> {
        let leaf = certs?.first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        let cn = cert
            .subject()
            .iter_common_name()
            .find_map(|a| a.as_str().ok().map(str::to_owned));
        let dns = || {
            cert.subject_alternative_name()
                .ok()
                .flatten()
                .and_then(|san| {
                    san.value.general_names.iter().find_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                        _ => None,
                    })
                })
        };
        let name = cn.or_else(dns).unwrap_or_else(|| "<unnamed>".to_owned());
        Some(Self(name.into()))
    }
}

/// Whether a request to `path` may go on: with `required`, every `/api/` request needs
/// a verified client certificate.
pub fn admitted(
    mode: crate::config::ClientCertificates,
    path: &str,
    client: Option<&ClientIdentity>,
) -> bool {
    mode != crate::config::ClientCertificates::Required
        || client.is_some()
        || !path.starts_with("/api/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientCertificates as Mode;

    #[test]
    fn required_means_every_api_request() {
        let someone = ClientIdentity("svc".into());
        assert!(admitted(Mode::Required, "/api/me", Some(&someone)));
        assert!(!admitted(Mode::Required, "/api/me", None));
        assert!(admitted(Mode::Required, "/internal/key-usage", None));
        assert!(admitted(Mode::Optional, "/api/me", None));
        assert!(admitted(Mode::Off, "/api/me", None));
    }
}

/// Mutual TLS end to end: a real listener, the real router, certificates from a CA
/// made for the test, and the bundle rotated under a running server.
#[cfg(test)]
mod served {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::time::Duration;

    use generalbot_crds::contract::env;
    use generalbot_testkit::TestPki;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn pem_chain(path: &Path) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// One request over TLS, with `client` (certificate, key) if given; the answer, or
    /// what failed.
    async fn get(
        addr: SocketAddr,
        server_ca: &Path,
        client: Option<(&Path, &Path)>,
        path: &str,
    ) -> String {
        let mut roots = rustls::RootCertStore::empty();
        for c in pem_chain(server_ca) {
            roots.add(c).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
        let cfg = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    pem_chain(cert),
                    rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = match tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
        {
            Ok(t) => t,
            Err(e) => return format!("handshake refused: {e}"),
        };
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        if let Err(e) = tls.write_all(req.as_bytes()).await {
            return format!("refused: {e}");
        }
        let mut out = String::new();
        match tls.read_to_string(&mut out).await {
            Ok(_) if !out.is_empty() => out,
            Ok(_) => "refused: closed".to_owned(),
            Err(e) => format!("refused: {e}"),
        }
    }

    #[tokio::test]
    async fn required_client_certificates_chain_to_the_bundle_and_follow_its_rotation() {
        let dir = std::env::temp_dir().join(format!("gb-mtls-{}", std::process::id()));
        let (first, second) = (dir.join("first"), dir.join("second"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        let ours = TestPki::generate(&first);
        let next = TestPki::generate(&second);
        let bundle = dir.join("bundle.crt");
        std::fs::copy(&ours.ca, &bundle).unwrap();
        let p = |p: &Path| p.display().to_string();
        let vars = BTreeMap::from([
            (env::TLS_CERT_FILE.to_owned(), p(&ours.cert)),
            (env::TLS_KEY_FILE.to_owned(), p(&ours.key)),
            (env::TLS_CA_FILE.to_owned(), p(&bundle)),
            (env::CLIENT_CERTIFICATES.to_owned(), "required".to_owned()),
        ]);
        let source = crate::config::MapSource {
            vars: vars.clone(),
            groups: Vec::new(),
        };
        let config = crate::config::Config::load(&source, true).unwrap();
        assert_eq!(config.client_ca(), Some(bundle.as_path()));
        let tls =
            crate::tls::ReloadingTls::load(&ours.cert, &ours.key, config.client_ca()).unwrap();
        let _reload = tls.spawn_reload(Duration::from_millis(100));
        let (addr, state, tx, server) = crate::tls::serve_for_test(tls, &config).await;
        let with = |pki: &TestPki| (pki.client_cert.clone(), pki.client_key.clone());
        let (our_cert, our_key) = with(&ours);
        let (next_cert, next_key) = with(&next);

        // A client certificate of the bundle's CA: past the check, on to sign-in (401).
        let r = get(addr, &ours.ca, Some((&our_cert, &our_key)), "/api/bots").await;
        assert!(r.starts_with("HTTP/1.1 401"), "{r}");
        // None: refused, saying what to do, and audited.
        let r = get(addr, &ours.ca, None, "/api/bots").await;
        assert!(r.starts_with("HTTP/1.1 403"), "{r}");
        assert!(r.contains("client certificate"), "{r}");
        let rows = state.auth.audit.read_verified().await.unwrap();
        assert!(
            rows.iter()
                .any(|r| r.outcome == "client_certificate_required"),
            "the refusal is audited"
        );
        // Outside /api/ (the key set, the web page) none is needed.
        let r = get(addr, &ours.ca, None, "/.well-known/jwks.json").await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        // One of another CA: the handshake fails.
        let r = get(addr, &ours.ca, Some((&next_cert, &next_key)), "/api/bots").await;
        assert!(!r.starts_with("HTTP/1.1"), "{r}");

        // The bundle rotates to the next CA: its clients get in, the old ones no
        // longer do, with no restart.
        std::fs::write(&bundle, std::fs::read(&next.ca).unwrap()).unwrap();
        let mut r = String::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            r = get(addr, &ours.ca, Some((&next_cert, &next_key)), "/api/bots").await;
            if r.starts_with("HTTP/1.1 401") {
                break;
            }
        }
        assert!(
            r.starts_with("HTTP/1.1 401"),
            "the rotated bundle was not picked up: {r}"
        );
        let r = get(addr, &ours.ca, Some((&our_cert, &our_key)), "/api/bots").await;
        assert!(
            !r.starts_with("HTTP/1.1"),
            "a retired CA's client still got in: {r}"
        );

        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn asking_for_client_certificates_without_tls_is_refused_by_name() {
        let source = crate::config::MapSource {
            vars: BTreeMap::from([(env::CLIENT_CERTIFICATES.to_owned(), "required".to_owned())]),
            groups: Vec::new(),
        };
        let err = crate::config::Config::load(&source, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains(env::CLIENT_CERTIFICATES), "{err}");
        let source = crate::config::MapSource {
            vars: BTreeMap::from([(env::CLIENT_CERTIFICATES.to_owned(), "sometimes".to_owned())]),
            groups: Vec::new(),
        };
        let err = crate::config::Config::load(&source, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("off, optional or required"), "{err}");
    }
}
