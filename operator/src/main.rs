//! `generalbot-operator`: `run` the controller, print the `crd`, or `render` a GeneralBot
//! offline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use generalbot_operator::controller::{RunConfig, run};
use generalbot_operator::leader::LeaseConfig;
use generalbot_operator::{render, telemetry};

/// The GeneralBot operator.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the cluster KUBECONFIG (or the pod's service account) names.
    Run {
        /// Address of /metrics, /healthz and /readyz.
        #[arg(long, default_value = "0.0.0.0:8080")]
        metrics_addr: SocketAddr,
        /// Watch only this namespace (default: every namespace).
        #[arg(long)]
        namespace: Option<String>,
        /// Namespace of the leader Lease (default: $POD_NAMESPACE, else --namespace, else "default").
        #[arg(long)]
        lease_namespace: Option<String>,
        /// Name of the leader Lease.
        #[arg(long, default_value = "generalbot-operator")]
        lease_name: String,
        /// This replica's identity in the Lease (default: $POD_NAME, else host name and pid).
        #[arg(long)]
        identity: Option<String>,
        /// Seconds a lease lasts without renewal.
        #[arg(long, default_value_t = 15)]
        lease_seconds: u64,
        /// Seconds a changed key Secret takes to reach every pod and be reloaded: a new
        /// key becomes active only this long after it was added.
        #[arg(long, default_value_t = 120)]
        propagation_seconds: u64,
        /// Reach a bot server's `HOST:PORT` at `ADDR:PORT` instead (`*.svc:8080=…`
        /// matches any host under `svc`), for an operator run outside the cluster.
        /// Repeatable.
        #[arg(long, value_name = "HOST:PORT=ADDR:PORT")]
        connect_to: Vec<String>,
        /// Labels of the operator's own pods (`k=v,k=v`), with their namespace
        /// ($POD_NAMESPACE): each bot's NetworkPolicy admits them to its API port, where
        /// the operator asks for the key-usage report. The chart sets it.
        #[arg(long, value_name = "K=V,...")]
        operator_pod_labels: Option<String>,
        /// How many GeneralBots are reconciled at once (a burst never floods the API
        /// server; key generation is bounded by the cores on its own).
        #[arg(long, default_value_t = 16)]
        concurrency: u16,
        /// Seconds between checks of each bot's audit chain (its head, and the row the
        /// status recorded, must still be there).
        #[arg(long, default_value_t = 300)]
        audit_check_seconds: u64,
        /// Seconds between checks of each bot's database connection (TLS verified,
        /// plaintext refused; condition DatabaseTLS); 0 turns the check off.
        #[arg(long, default_value_t = 300)]
        database_check_seconds: u64,
        /// Seconds between checks of each bot's bucket (encryption, versioning, lifecycle,
        /// object lock and public access block applied and read back; condition
        /// StorageEncryption) and of its backups (BackupsReady); 0 turns them off.
        #[arg(long, default_value_t = 300)]
        storage_check_seconds: u64,
    },
    /// Ask a running operator's `/healthz` (the image's HEALTHCHECK: the image has no
    /// shell or curl). Exits 0 when it answers 200.
    Healthcheck {
        /// Where `/healthz` listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
    /// Print the GeneralBot CustomResourceDefinition as YAML.
    Crd,
    /// Print every object the operator would create for a GeneralBot, with no cluster.
    Render {
        /// The GeneralBot YAML file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Namespace to render into, overriding the file's.
        #[arg(short, long)]
        namespace: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => print(render::crd_yaml()),
        Command::Healthcheck { addr } => healthcheck(addr).await,
        Command::Render { file, namespace } => {
            print(render::render_file(&file, namespace.as_deref()))
        }
        Command::Run {
            metrics_addr,
            namespace,
            lease_namespace,
            lease_name,
            identity,
            lease_seconds,
            propagation_seconds,
            connect_to,
            operator_pod_labels,
            concurrency,
            audit_check_seconds,
            database_check_seconds,
            storage_check_seconds,
        } => {
            telemetry::init();
            let connect_to = match generalbot_operator::tls_client::ConnectTo::parse(
                connect_to.iter().map(String::as_str),
            ) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let lease_namespace = lease_namespace
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .or_else(|| namespace.clone())
                .unwrap_or_else(|| "default".to_owned());
            let identity = identity
                .or_else(|| std::env::var("POD_NAME").ok())
                .unwrap_or_else(default_identity);
            let duration = Duration::from_secs(lease_seconds.max(3));
            let cfg = RunConfig {
                metrics_addr,
                watch_namespace: namespace,
                lease: LeaseConfig {
                    namespace: lease_namespace,
                    name: lease_name,
                    identity,
                    duration,
                    renew_every: duration / 3,
                },
                propagation: jiff::SignedDuration::from_secs(
                    i64::try_from(propagation_seconds).unwrap_or(i64::MAX),
                ),
                connect_to,
                concurrency: concurrency.max(1),
                audit_every: Duration::from_secs(audit_check_seconds.max(1)),
                database_every: Duration::from_secs(database_check_seconds),
                storage_every: Duration::from_secs(storage_check_seconds),
                operator_peer: match operator_pod_labels
                    .as_deref()
                    .map(|l| operator_peer(l, std::env::var("POD_NAMESPACE").ok()))
                {
                    None => None,
                    Some(Ok(peer)) => Some(peer),
                    Some(Err(e)) => {
                        eprintln!("error: --operator-pod-labels: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            match run(cfg).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "operator stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The operator's pods as a network peer: `k=v,...` labels in `namespace` (any
/// namespace's pods with those labels when it is unknown).
fn operator_peer(
    labels: &str,
    namespace: Option<String>,
) -> Result<generalbot_crds::v1alpha1::NetworkPeer, String> {
    let mut pod_selector = std::collections::BTreeMap::new();
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not KEY=VALUE"))?;
        pod_selector.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    if pod_selector.is_empty() {
        return Err("give at least one KEY=VALUE label".to_owned());
    }
    Ok(generalbot_crds::v1alpha1::NetworkPeer {
        pod_selector: Some(pod_selector),
        namespace_selector: Some(std::collections::BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            namespace.unwrap_or_default(),
        )]))
        .filter(|m| m.values().all(|v| !v.is_empty())),
        cidrs: Vec::new(),
        allow_any_address: false,
    })
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "operator".to_owned());
    format!("{host}-{}", std::process::id())
}

fn print(result: Result<String, render::RenderError>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// GET `/healthz` at `addr`: success when it answers 200 within 2 seconds.
async fn healthcheck(addr: SocketAddr) -> ExitCode {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut status = [0u8; 12];
        s.read_exact(&mut status).await?;
        Ok::<_, std::io::Error>(status.ends_with(b" 200"))
    };
    match tokio::time::timeout(Duration::from_secs(2), ask).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
