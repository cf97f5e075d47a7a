//! `bot-server`: the GeneralBot bot server. Reads and validates its configuration
//! (refusing to start on an unsafe production setting), connects storage and cache,
//! follows key-ring files, and serves the API and the operations port.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use generalbot_bot_server::config::{Config, ProcessEnv};
use generalbot_bot_server::tls::ReloadingTls;
use generalbot_bot_server::{Listeners, build_state, serve, shutdown_signal};
use generalbot_crds::contract::env;

/// The GeneralBot bot server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Development mode: ephemeral keys, SQLite in memory, 127.0.0.1 only.
    #[arg(long)]
    dev: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The guide: INFO in production, DEBUG in development.
    let dev = cli.dev || std::env::var(env::MODE).is_ok_and(|m| m == "dev");
    let level =
        std::env::var(env::LOG_LEVEL).unwrap_or_else(|_| if dev { "debug" } else { "info" }.into());
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .init();
    let config = match Config::load(&ProcessEnv, cli.dev) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "refusing to start: fix the configuration");
            return ExitCode::FAILURE;
        }
    };
    if config.dev {
        tracing::warn!(
            "DEV MODE: EPHEMERAL KEYS (data is unreadable after a restart), in-memory database, 127.0.0.1 only. NEVER USE IN PRODUCTION"
        );
    }
    let state = match build_state(&config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let _reload = state.keys.spawn_reload(
        Arc::new(ProcessEnv),
        config.dev,
        Duration::from_secs(5),
        Some(state.auth.audit.clone()),
    );
    let _reencrypt =
        generalbot_bot_server::reencrypt::spawn(state.clone(), Duration::from_secs(60));
    let listeners = match Listeners::bind(config.listen, config.metrics_listen).await {
        Ok(l) => match &config.tls {
            Some((cert, key)) => match ReloadingTls::load(cert, key) {
                Ok(tls) => {
                    drop(tls.spawn_reload(Duration::from_secs(5)));
                    l.with_tls(tls)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start");
                    return ExitCode::FAILURE;
                }
            },
            None => {
                tracing::warn!(
                    "no TLS certificate configured: the API is plain HTTP (behind a TLS-terminating proxy only)"
                );
                l
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    match serve(listeners, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            ExitCode::FAILURE
        }
    }
}
