//! `bot-server`: the GeneralBot bot server.
//!
//! This first cut serves the operations endpoints the operator's probes use (`/healthz`,
//! `/readyz`, `/metrics` on the metrics port) and answers on the API port; the chat
//! platform and its security core build on it.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use generalbot_bot_server::{Listeners, serve, shutdown_signal};
use generalbot_crds::contract::{self, env};

/// The GeneralBot bot server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Development mode: binds to 127.0.0.1 only.
    #[arg(long)]
    dev: bool,
    /// Address of the API.
    #[arg(long, env = env::LISTEN)]
    listen: Option<SocketAddr>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = env::METRICS_LISTEN)]
    metrics_listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().json().flatten_event(true).init();
    let cli = Cli::parse();
    let dev = cli.dev || std::env::var(env::MODE).is_ok_and(|m| m == "dev");
    let api = cli
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], port(contract::API_PORT))));
    let metrics = cli
        .metrics_listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], port(contract::METRICS_PORT))));
    let (api, metrics) = if dev {
        tracing::warn!("DEV MODE: listening on 127.0.0.1 only; never use this mode in production");
        (
            SocketAddr::new([127, 0, 0, 1].into(), api.port()),
            SocketAddr::new([127, 0, 0, 1].into(), metrics.port()),
        )
    } else {
        (api, metrics)
    };
    let listeners = match Listeners::bind(api, metrics).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    match serve(listeners, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            ExitCode::FAILURE
        }
    }
}

fn port(p: i32) -> u16 {
    u16::try_from(p).unwrap_or(8080)
}
