//! One TLS 1.3 connection to a bot server, verifying its chain against a trust bundle
//! given per call (the operator's own, which changes during a CA rotation) and its name
//! against the Service's DNS name. Where to connect can be overridden (`--connect-to`),
//! for an operator that runs outside the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Where to connect instead of a `host:port`: exact `host:port` keys, or `*.suffix:port`
/// patterns matching any host under that suffix.
#[derive(Clone, Debug, Default)]
pub struct ConnectTo(BTreeMap<String, String>);

impl ConnectTo {
    /// Parses `HOST:PORT=ADDR:PORT` entries.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for e in entries {
            let (from, to) = e
                .split_once('=')
                .ok_or_else(|| format!("--connect-to {e}: expected HOST:PORT=ADDR:PORT"))?;
            map.insert(from.to_owned(), to.to_owned());
        }
        Ok(Self(map))
    }

    /// Where `host:port` should be reached.
    pub fn resolve(&self, host: &str, port: u16) -> String {
        let key = format!("{host}:{port}");
        if let Some(to) = self.0.get(&key) {
            return to.clone();
        }
        let by_pattern = self.0.iter().find(|(pattern, _)| {
            pattern
                .strip_prefix("*.")
                .and_then(|rest| rest.strip_suffix(&format!(":{port}")))
                .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")))
        });
        by_pattern.map_or(key, |(_, to)| to.clone())
    }
}

/// A TLS 1.3 connection to `host:port` (or where `connect_to` says), presenting `host`
/// and trusting only the CA certificates in `trust_pem`.
pub async fn connect(
    host: &str,
    port: u16,
    trust_pem: &[u8],
    connect_to: &ConnectTo,
) -> Result<TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(trust_pem) {
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
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let addr = connect_to.resolve(host, port);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {host}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_match_exactly_or_by_suffix() {
        let c = ConnectTo::parse(["a.b.svc:8080=127.0.0.1:1", "*.svc:9090=127.0.0.1:2"]).unwrap();
        assert_eq!(c.resolve("a.b.svc", 8080), "127.0.0.1:1");
        assert_eq!(c.resolve("x.y.svc", 9090), "127.0.0.1:2");
        assert_eq!(c.resolve("x.y.svc", 8080), "x.y.svc:8080");
        assert_eq!(c.resolve("svc", 9090), "svc:9090");
        assert!(ConnectTo::parse(["nothing"]).is_err());
    }
}
