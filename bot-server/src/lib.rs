//! The GeneralBot bot server.
//!
//! Layout:
//! - [`serve`]: runs the API and operations listeners until a shutdown future resolves.
//! - [`audit`]: the hash-chained audit log.
//! - [`auth`]: users, roles, passwords, lockout, TOTP, tokens, sessions.
//! - [`conn_limits`]: bounds on open connections and TLS handshakes.
//! - [`config`]: settings and secrets from the environment and mounted files, validated.
//! - [`crypto`]: key rings, field encryption, blind indexes, live key reload.
//! - [`store`]: PostgreSQL and SQLite behind one set of calls; migrations.
//! - [`http`]: the API, its resources and hardening layers.
//! - [`metrics`]: Prometheus counters and latency.
//! - [`tls`]: TLS 1.3 serving with certificate reload.
//! - [`key_usage`]: how many stored records still need each key (for the operator).
//! - [`shared`]: sessions and counters every replica shares (cache, database or memory).
//! - [`reencrypt`]: background re-encryption and re-indexing under the active keys.
//! - [`oidc`]: sign-in through the directory service (OpenID Connect relying party).
//! - [`mail`]: sending mail over SMTP with TLS; [`notify`]: who is told what by mail.
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`bots`]: bots, their knowledge bases and flows; [`bootstrap`]: the first accounts
//!   and the bots of a mounted directory, at start.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod bootstrap;
pub mod bots;
pub mod client_certs;
pub mod config;
pub mod conn_limits;
pub mod crypto;
pub mod http;
pub mod key_usage;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod objects;
pub mod oidc;
pub mod ops;
pub mod reencrypt;
pub mod shared;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::audit::Audit;
use crate::auth::service::AuthService;
use crate::config::Config;
use crate::crypto::store::KeyStore;
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::shared::{Shared, SharedError};
use crate::store::StoreError;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database may not be used as configured (schema or role).
    #[error(transparent)]
    Database(#[from] store::OpenError),
    /// The cache is unusable.
    #[error(transparent)]
    Shared(#[from] SharedError),
    /// The TLS certificate is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The directory service's settings are unusable.
    #[error(transparent)]
    Directory(#[from] oidc::OidcError),
    /// The mail settings are unusable.
    #[error(transparent)]
    Mail(#[from] mail::MailError),
    /// The object storage client cannot be built.
    #[error(transparent)]
    Storage(#[from] generalbot_storage::StorageError),
}

/// Connects storage and cache and builds the shared state.
pub async fn build_state(config: &Config) -> Result<Arc<AppState>, StartError> {
    let store = store::open(&config.database, config.database_owner.as_ref(), config.dev).await?;
    // Replicas share sessions and counters through the cache, else through the
    // database; process memory only in dev mode (one replica).
    let shared = match (&config.cache, config.dev) {
        (Some(c), _) => Shared::redis(c).await?,
        (None, true) => Shared::memory(),
        (None, false) => Shared::database(store.clone()),
    };
    tracing::info!(
        shared_state = shared.kind(),
        "sessions and counters are shared through it"
    );
    let keys = KeyStore::new(config.keys.clone());
    let metrics = Arc::new(Metrics::default());
    let notifier = match &config.capabilities.mail {
        Some(m) => Some(Arc::new(notify::Notifier::new(
            store.clone(),
            keys.clone(),
            shared.clone(),
            mail::Mailer::start(m, metrics.clone())?,
        ))),
        None => None,
    };
    let audit = Arc::new(
        Audit::new(
            store.clone(),
            keys.clone(),
            config.policy.enable_audit,
            Some(shared.clone()),
            metrics.audit_failures.clone(),
        )
        .with_alerts(notifier.clone()),
    );
    let directory = match &config.directory {
        Some(d) => Some(Arc::new(oidc::Directory::new(d.clone())?)),
        None => None,
    };
    let auth = Arc::new(
        AuthService::new(
            store.clone(),
            keys.clone(),
            shared,
            audit,
            metrics.clone(),
            config.policy.clone(),
        )
        .with_directory(directory)
        .with_notifier(notifier),
    );
    let files = match &config.capabilities.storage {
        Some(s) => objects::files::Files::Bucket {
            client: s.client(config.capabilities.trust_bundle.as_deref())?,
            bucket: s.bucket.clone(),
        },
        None => objects::files::Files::Local(config.capabilities.files_dir.clone()),
    };
    Ok(Arc::new(AppState {
        auth,
        bots: bots::registry::Registry::new(store.clone()),
        files,
        retention: config.capabilities.retention,
        cpu_slots: AppState::cpu_bound(),
        store,
        keys,
        metrics,
        policy: config.policy.clone(),
        reencrypting: Default::default(),
    }))
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A listener failed while serving.
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// The bound API and operations listeners.
pub struct Listeners {
    /// The API.
    pub api: TcpListener,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub ops: TcpListener,
    /// TLS for the API, when a certificate is configured.
    pub tls: Option<tls::ReloadingTls>,
}

impl Listeners {
    /// Binds both listeners.
    pub async fn bind(api: SocketAddr, ops: SocketAddr) -> Result<Self, ServeError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })
        };
        Ok(Self {
            api: bind(api).await?,
            ops: bind(ops).await?,
            tls: None,
        })
    }

    /// Serves the API over TLS 1.3 with this configuration.
    pub fn with_tls(mut self, tls: tls::ReloadingTls) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listeners: Listeners,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    for (name, l) in [("api", &listeners.api), ("ops", &listeners.ops)] {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, listener = name, "listening");
        }
    }
    let app = http::router(state.clone());
    let api_rx = rx.clone();
    let Listeners {
        api: api_listener,
        ops: ops_listener,
        tls,
    } = listeners;
    let gate = conn_limits::Gate::new(
        conn_limits::Limits::default(),
        state.policy.trusted_proxies.clone(),
    );
    let api = async move {
        match tls {
            Some(tls) => {
                let l =
                    tls::TlsListener::new(api_listener, tls, gate).map_err(ServeError::Serve)?;
                axum::serve(
                    l,
                    app.into_make_service_with_connect_info::<http::PeerAddr>(),
                )
                .with_graceful_shutdown(wait(api_rx))
                .await
                .map_err(ServeError::Serve)
            }
            None => axum::serve(
                tls::CappedTcpListener::new(api_listener, gate),
                app.into_make_service_with_connect_info::<http::PeerAddr>(),
            )
            .with_graceful_shutdown(wait(api_rx))
            .await
            .map_err(ServeError::Serve),
        }
    };
    let ops = axum::serve(ops_listener, ops::router(state)).with_graceful_shutdown(wait(rx));
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let (a, o) = tokio::join!(api, ops.into_future());
    a?;
    o.map_err(ServeError::Serve)?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_answers_and_shutdown_is_clean() {
        let l = Listeners::bind(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let ops = l.ops.local_addr().unwrap();
        let config = Config::load(&config::MapSource::default(), true).unwrap();
        let state = build_state(&config).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(l, state, async move {
            let _ = rx.await;
        }));
        for (path, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
            let mut stream = tokio::net::TcpStream::connect(ops).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            let mut out = String::new();
            stream.read_to_string(&mut out).await.unwrap();
            assert!(out.starts_with("HTTP/1.1 200"), "{out}");
            assert!(out.ends_with(want));
        }
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
