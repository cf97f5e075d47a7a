//! The GeneralBot bot server.
//!
//! Layout:
//! - [`serve`]: runs the API and operations listeners until a shutdown future resolves.
//! - [`audit`]: the hash-chained audit log.
//! - [`auth`]: users, roles, passwords, lockout, TOTP, tokens, sessions.
//! - [`config`]: settings and secrets from the environment and mounted files, validated.
//! - [`crypto`]: key rings, field encryption, blind indexes, live key reload.
//! - [`store`]: PostgreSQL and SQLite behind one set of calls; migrations.
//! - [`metrics`]: Prometheus counters and latency.
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics`.

pub mod audit;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod metrics;
pub mod ops;
pub mod store;

use std::net::SocketAddr;

use tokio::net::TcpListener;

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
        })
    }
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listeners: Listeners,
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
    let api =
        axum::serve(listeners.api, ops::api_router()).with_graceful_shutdown(wait(rx.clone()));
    let ops = axum::serve(listeners.ops, ops::router()).with_graceful_shutdown(wait(rx));
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let (a, o) = tokio::join!(api.into_future(), ops.into_future());
    a.map_err(ServeError::Serve)?;
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
