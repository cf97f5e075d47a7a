//! The GeneralBot operator: reconciles `GeneralBot` resources into hardened,
//! network-isolated bot servers.
//!
//! Layout:
//! - [`builders`]: pure functions from a GeneralBot to the objects it owns (no client, no
//!   `async`); the controller and `render` both call them.
//! - [`validate`]: checks the schema cannot express, each naming the field to fix.
//! - [`bot_api`]: asks a bot server for an operations document over TLS.
//! - [`key_usage`]: asks a bot server which key ids stored records still use.
//! - [`audit_chain`]: judges a bot server's audit chain head against the one recorded.
//! - [`keyrings`]: the key-ring Secret and the plan for rotating it.
//! - [`drift`]: decides whether a live object still matches what we want, so a steady
//!   state makes no writes.
//! - [`status`]: pure computation of the status and its conditions.
//! - [`extras`]: the conditions of the optional children (front door, monitoring).
//! - [`foreign`]: the Prometheus Operator's and the Gateway API's kinds the operator
//!   writes (alerts, scraping, the front door), and which of them a cluster serves.
//! - [`apply`]: the one server-side apply helper and its field manager.
//! - [`certs`]: the CA and certificate Secrets and the plan for renewing and rotating them.
//! - [`controller`]: the reconcile shell, error policy and the `run` loop.
//! - [`leader`]: leader election on a `coordination.k8s.io` Lease.
//! - [`metrics`]: Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` server.
//! - [`pki`]: the internal CA and leaf certificates (pure).
//! - [`render`]: the offline `render` command.
//! - [`schema`]: a GeneralBot document against the CRD's structural schema.
//! - [`rotation`]: key rings and the pure rotation state machine.
//! - [`telemetry`]: JSON logs.
//! - [`tls_client`]: one verified TLS connection to a bot server.

pub mod apply;
pub mod audit_chain;
pub mod backups;
pub mod bot_api;
pub mod builders;
pub mod certs;
pub mod controller;
pub mod database_probe;
pub mod database_tls;
pub mod drift;
pub mod extras;
pub mod foreign;
pub mod key_usage;
pub mod keyrings;
pub mod leader;
pub mod metrics;
pub mod pki;
pub mod plugin;
pub mod render;
pub mod rotation;
pub mod schema;
pub mod status;
pub mod storage_settings;
pub mod telemetry;
pub mod tls_client;
pub mod validate;

#[cfg(test)]
pub(crate) mod fixtures;

/// Everything that can go wrong in the operator. Each variant names the operation that
/// failed and carries what a user needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server-side apply of an owned object failed.
    #[error("applying {kind} {namespace}/{name}: {source}")]
    Apply {
        /// Kind of the object.
        kind: String,
        /// Namespace of the object.
        namespace: String,
        /// Name of the object.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Creating a generated Secret failed.
    #[error("creating Secret {namespace}/{name}: {source}")]
    CreateSecret {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Reading a Secret the GeneralBot refers to failed (not "not found": that is a
    /// spec problem reported in the status).
    #[error("reading Secret {namespace}/{name}: {source}")]
    ReadSecret {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Writing the status of a GeneralBot failed.
    #[error("updating status of GeneralBot {namespace}/{name}: {source}")]
    PatchStatus {
        /// Namespace of the GeneralBot.
        namespace: String,
        /// Name of the GeneralBot.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// An object could not be turned into JSON (a bug: every object we build serialises).
    #[error("serializing {what}: {source}")]
    Serialize {
        /// What was being serialised.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The GeneralBot lacks a namespace or name (the API server always sets both).
    #[error("GeneralBot has no {0}")]
    MissingMetadata(&'static str),
    /// A certificate could not be issued, or the user's CA Secret is unusable.
    #[error(transparent)]
    Certs(#[from] crate::certs::CertError),
    /// Key material could not be generated, or a stored ring is damaged.
    #[error(transparent)]
    Keys(#[from] crate::keyrings::KeysError),
    /// CPU-heavy work on the blocking pool did not finish (the process is shutting down,
    /// or the work panicked).
    #[error("key generation or signing on the blocking pool failed: {0}")]
    Blocking(String),
}

impl Error {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Apply { .. } => "apply",
            Self::CreateSecret { .. } => "create_secret",
            Self::ReadSecret { .. } => "read_secret",
            Self::PatchStatus { .. } => "patch_status",
            Self::Serialize { .. } => "serialize",
            Self::MissingMetadata(_) => "missing_metadata",
            Self::Keys(_) => "keys",
            Self::Certs(_) => "certs",
            Self::Blocking(_) => "blocking",
        }
    }
}

/// Result with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
