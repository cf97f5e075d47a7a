//! TLS 1.3 for the API (rustls with the ring provider, TLS 1.2 and older refused),
//! from a PEM certificate chain and key that are reloaded when the files change, so a
//! renewed certificate is served without a restart; with client certificates asked for
//! ([`crate::client_certs`]), the trust bundle they are verified against is reloaded
//! with them. The listeners hold connections
//! within the bounds of [`crate::conn_limits`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::conn_limits::{Counted, Gate};

/// What failed loading the certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no certificate.
    #[error("reading the TLS certificate {path}: {detail}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The key file is unreadable or holds no private key.
    #[error("reading the TLS private key {path}: it must hold a PEM private key")]
    Key {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair.
    #[error("the TLS certificate and key do not form a usable pair: {0}")]
    Config(#[source] rustls::Error),
}

/// Builds a TLS-1.3-only server configuration from PEM files; with `client_ca`, client
/// certificates are asked for and verified against that bundle.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<rustls::ServerConfig, TlsError> {
    let cert_err = |detail: String| TlsError::Certificate {
        path: cert.to_owned(),
        detail,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no certificate found".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|_| TlsError::Key {
        path: key.to_owned(),
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(TlsError::Config)?;
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(crate::client_certs::verifier(ca)?),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key_der)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The current TLS configuration, replaced when the files change.
#[derive(Debug, Clone)]
pub struct ReloadingTls {
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

fn file_digest<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in paths {
        if let Ok(bytes) = std::fs::read(p) {
            let bytes = zeroize::Zeroizing::new(bytes);
            ctx.update(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
        }
    }
    ctx.finish().as_ref().to_vec()
}

impl ReloadingTls {
    /// Loads the files (and the bundle client certificates are verified against, if
    /// they are asked for).
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsError> {
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(server_config(cert, key, client_ca)?))),
            cert: cert.to_owned(),
            key: key.to_owned(),
            client_ca: client_ca.map(Path::to_owned),
        })
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        [self.cert.as_path(), self.key.as_path()]
            .into_iter()
            .chain(self.client_ca.as_deref())
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Polls the files every `every`; a changed pair that loads replaces the old one,
    /// one that does not is logged and the old one stays.
    pub fn spawn_reload(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        // Taken now, not in the task, so a change made right after this call is seen.
        let mut last = file_digest(self.files());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = file_digest(this.files());
                if now == last {
                    continue;
                }
                match server_config(&this.cert, &this.key, this.client_ca.as_deref()) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        match this.current.write() {
                            Ok(mut g) => *g = c,
                            Err(p) => *p.into_inner() = c,
                        }
                        last = now;
                        tracing::info!(
                            client_certificates = this.client_ca.is_some(),
                            "TLS certificate and trust bundle reloaded"
                        );
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS certificate changed but cannot be loaded; keeping the previous one")
                    }
                }
            }
        })
    }
}

/// A listener that hands out TLS streams; handshakes run concurrently, so a slow client
/// does not hold up the others, within the bounds of a [`Gate`]: a connection over a
/// bound is closed at once, and a handshake that takes too long is dropped.
#[derive(Debug)]
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(Counted<TlsStream<TcpStream>>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Wraps a bound TCP listener.
    pub fn new(tcp: TcpListener, tls: ReloadingTls, gate: Gate) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let timeout = gate.limits().handshake_timeout;
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (Some(connection), Some(slot)) = (gate.connection(), gate.handshake(addr.ip()))
                else {
                    tracing::debug!(client = %addr, "connection refused: over the connection or handshake bound");
                    drop(stream);
                    continue;
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                let sender = tx.clone();
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
                    drop(slot);
                    match handshake {
                        Ok(Ok(s)) => {
                            let _ = sender.send((Counted::new(s, connection), addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, client = %addr, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(client = %addr, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    break;
                }
            }
        });
        Ok(Self { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Counted<TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(x) = self.rx.recv().await {
                return x;
            }
            // The acceptor task ended: nothing more will come.
            std::future::pending::<()>().await;
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A plain TCP listener (behind a TLS-terminating proxy) within the connection bound of
/// a [`Gate`].
#[derive(Debug)]
pub struct CappedTcpListener {
    tcp: TcpListener,
    gate: Gate,
}

impl CappedTcpListener {
    /// Wraps a bound TCP listener.
    pub fn new(tcp: TcpListener, gate: Gate) -> Self {
        Self { tcp, gate }
    }
}

impl axum::serve::Listener for CappedTcpListener {
    type Io = Counted<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((stream, addr)) => match self.gate.connection() {
                    Some(permit) => return (Counted::new(stream, permit), addr),
                    None => {
                        tracing::debug!(client = %addr, "connection refused: over the connection bound");
                        drop(stream);
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A whole server on loopback for in-crate tests: the API over `tls`, built from
/// `config`; it stops when the sender is used or dropped.
#[cfg(test)]
pub(crate) async fn serve_for_test(
    tls: ReloadingTls,
    config: &crate::config::Config,
) -> (
    SocketAddr,
    Arc<crate::http::AppState>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), crate::ServeError>>,
) {
    let l = crate::Listeners::bind(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
    .with_tls(tls);
    let addr = l.api.local_addr().unwrap();
    let state = crate::build_state(config).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(l, state.clone(), async move {
        let _ = rx.await;
    }));
    (addr, state, tx, server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn write_cert(dir: &Path) -> Vec<u8> {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(dir.join("tls.crt"), ck.cert.pem()).unwrap();
        std::fs::write(dir.join("tls.key"), ck.signing_key.serialize_pem()).unwrap();
        ck.cert.der().to_vec()
    }

    /// A TLS 1.3 client trusting `roots`.
    fn client_config(roots: &[Vec<u8>]) -> rustls::ClientConfig {
        let mut store = rustls::RootCertStore::empty();
        for r in roots {
            store.add(CertificateDer::from(r.clone())).unwrap();
        }
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth()
    }

    async fn handshake(
        addr: SocketAddr,
        roots: &[Vec<u8>],
    ) -> (Vec<u8>, rustls::ProtocolVersion, String) {
        let cfg = client_config(roots);
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        let (_, conn) = tls.get_ref();
        let peer = conn.peer_certificates().unwrap()[0].to_vec();
        let version = conn.protocol_version().unwrap();
        tls.write_all(
            b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut out = String::new();
        let _ = tls.read_to_string(&mut out).await;
        (peer, version, out)
    }

    /// A handshake and one request, or an empty answer if the server closed the
    /// connection.
    async fn handshake_or_refused(addr: SocketAddr, root: &[u8]) -> String {
        let cfg = client_config(&[root.to_vec()]);
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let Ok(mut tls) = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
        else {
            return String::new();
        };
        let _ = tls
            .write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await;
        let mut out = String::new();
        let _ = tls.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn serves_tls13_and_reloads_the_certificate() {
        let dir = std::env::temp_dir().join(format!("gb-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = write_cert(&dir);
        let tls = ReloadingTls::load(&dir.join("tls.crt"), &dir.join("tls.key"), None).unwrap();
        let _reload = tls.spawn_reload(Duration::from_millis(100));
        let config =
            crate::config::Config::load(&crate::config::MapSource::default(), true).unwrap();
        let (addr, _state, tx, server) = serve_for_test(tls, &config).await;

        let (peer, version, body) = handshake(addr, std::slice::from_ref(&first)).await;
        assert_eq!(peer, first);
        assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains("strict-transport-security"));

        let second = write_cert(&dir);
        let mut served = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            served = handshake(addr, &[first.clone(), second.clone()]).await.0;
            if served == second {
                break;
            }
        }
        assert_eq!(served, second, "the renewed certificate was not picked up");

        // A flood of connections that never handshake: one client holds at most its
        // share of handshake slots, the rest are closed at once; once the flood goes,
        // a real client is served.
        let per_client = crate::conn_limits::Limits::default().handshakes_per_client as usize;
        let mut idle = Vec::new();
        for _ in 0..per_client + 24 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut closed = 0;
        for s in &mut idle {
            let mut b = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await
            {
                closed += 1;
            }
        }
        assert_eq!(
            closed, 24,
            "connections over the per-client handshake bound are closed"
        );
        drop(idle);
        let mut body = String::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            body = handshake_or_refused(addr, &second).await;
            if body.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            body.starts_with("HTTP/1.1 200"),
            "served once the flood is gone: {body}"
        );
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
