//! `generalbot-operator run`: the metrics server, leader election, the watch caches of
//! owned objects and the controller loop, until a signal or lost leadership.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt};
use generalbot_crds::GeneralBot;
use generalbot_crds::contract::labels;
use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;

use super::{Context, OptionalStores, Stores, error_policy, reconcile};
use crate::foreign::{HTTPRoute, PrometheusRule, Served, ServiceMonitor};
use crate::leader::{Elector, LeaderError, LeaseConfig};
use crate::metrics::{Metrics, ServerState};

/// Errors that end `run`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("connecting to Kubernetes (set KUBECONFIG or run in a pod): {0}")]
    Connect(#[source] kube::Error),
    /// The metrics address could not be bound.
    #[error("listening on {addr} for /metrics: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Leadership was lost or could not be sought.
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// Settings of `generalbot-operator run`.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` listen.
    pub metrics_addr: SocketAddr,
    /// Only this namespace, or every namespace when `None`.
    pub watch_namespace: Option<String>,
    /// The leader lease.
    pub lease: LeaseConfig,
    /// How long a changed Secret takes to reach every pod and be reloaded.
    pub propagation: SignedDuration,
    /// Where to reach bot servers instead of their Service names.
    pub connect_to: crate::tls_client::ConnectTo,
    /// The operator's own pods, to admit to each bot's API port.
    pub operator_peer: Option<generalbot_crds::v1alpha1::NetworkPeer>,
    /// How many GeneralBots are reconciled at once.
    pub concurrency: u16,
    /// How often each bot's audit chain is checked.
    pub audit_every: std::time::Duration,
    /// How often each bot's database connection is checked (zero: never).
    pub database_every: std::time::Duration,
    /// How often each bot's bucket and backups are checked (zero: never).
    pub storage_every: std::time::Duration,
}

fn api_for<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A cache of one owned kind and the stream of changes that feeds it and triggers the
/// controller. Only objects we manage (by label) are watched, and managed fields are
/// dropped as they arrive to keep the cache small.
fn owned<K>(
    client: &Client,
    namespace: Option<&str>,
    strip: fn(&mut K),
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let config =
        watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER));
    let stream = watcher(api_for::<K>(client, namespace), config)
        .default_backoff()
        .modify(move |o: &mut K| {
            o.managed_fields_mut().clear();
            strip(o);
        })
        .reflect(writer)
        .touched_objects();
    (reader, stream)
}

fn keep(_: &mut impl Resource) {}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn drop_secret_data(s: &mut Secret) {
    s.data = None;
    s.string_data = None;
}

/// Runs the operator until a signal, or until leadership is lost.
pub async fn run(cfg: RunConfig) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Connect)?;
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(cfg.metrics_addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: cfg.metrics_addr,
            source,
        })?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /metrics, /healthz and /readyz");
    let server = tokio::spawn(
        axum::serve(
            listener,
            crate::metrics::router(ServerState {
                registry: Arc::new(registry),
                ready: ready.clone(),
            }),
        )
        .into_future(),
    );

    // Ready means serving: a standby is ready too, so a rolling update of several
    // replicas completes; the leader gauge says which one leads.
    ready.store(true, Ordering::Relaxed);

    let elector = Elector::new(client.clone(), cfg.lease.clone());
    tracing::info!(lease = %cfg.lease.name, identity = %cfg.lease.identity, "waiting to become leader");
    tokio::select! {
        acquired = elector.acquire() => acquired?,
        () = stop_signal() => {
            tracing::info!("stopping before becoming leader");
            server.abort();
            return Ok(());
        }
    }
    metrics.leader.set(1);
    tracing::info!("became leader");

    let ns = cfg.watch_namespace.as_deref();
    let (service_accounts, sa_stream) = owned::<ServiceAccount>(&client, ns, keep);
    let (deployments, deploy_stream) = owned::<Deployment>(&client, ns, keep);
    let (services, svc_stream) = owned::<Service>(&client, ns, keep);
    let (pdbs, pdb_stream) = owned::<PodDisruptionBudget>(&client, ns, keep);
    let (network_policies, np_stream) = owned::<NetworkPolicy>(&client, ns, keep);
    let (cron_jobs, cron_stream) = owned::<CronJob>(&client, ns, keep);
    let (secrets, secret_stream) = owned::<Secret>(&client, ns, drop_secret_data);
    // The optional kinds: Ingress always, the others where their CRDs are installed.
    let served = Served::discover(&client).await;
    tracing::info!(
        prometheus_operator = served.monitoring,
        gateway_api = served.gateway,
        "optional kinds this cluster serves"
    );
    let (ingresses, ingress_stream) = owned::<Ingress>(&client, ns, keep);
    let routes = served
        .gateway
        .then(|| owned::<HTTPRoute>(&client, ns, keep));
    let rules = served
        .monitoring
        .then(|| owned::<PrometheusRule>(&client, ns, keep));
    let monitors = served
        .monitoring
        .then(|| owned::<ServiceMonitor>(&client, ns, keep));
    let (http_routes, route_stream) = routes.unzip();
    let (prometheus_rules, rule_stream) = rules.unzip();
    let (service_monitors, monitor_stream) = monitors.unzip();
    let optional = OptionalStores {
        ingresses: Some(ingresses),
        http_routes,
        prometheus_rules,
        service_monitors,
    };
    let stores = Stores {
        service_accounts,
        deployments,
        services,
        pdbs,
        network_policies,
        cron_jobs,
        secrets,
        optional,
    };
    let mut ctx = Context::new(client.clone(), stores, metrics.clone(), &cfg.lease.identity);
    ctx.propagation = cfg.propagation;
    ctx.connect_to = cfg.connect_to.clone();
    ctx.audit_every = cfg.audit_every;
    ctx.database_every = cfg.database_every;
    ctx.storage_every = cfg.storage_every;
    ctx.operator_peer = cfg.operator_peer.clone();
    ctx.served = served;
    let ctx = Arc::new(ctx);
    // The GeneralBots' own cache, without managed fields (a large share of each object).
    let (bots, bot_writer) = reflector::store();
    let bot_stream = watcher(
        api_for::<GeneralBot>(&client, ns),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .modify(|gb: &mut GeneralBot| gb.managed_fields_mut().clear())
    .reflect(bot_writer)
    .applied_objects();
    let mut controller = Controller::for_stream(bot_stream, bots)
        // A bounded number of reconciles at once: a burst of new GeneralBots must not flood
        // the API server (unbounded, 1,000 at once got 504s back from it).
        .with_config(kube::runtime::controller::Config::default().concurrency(cfg.concurrency))
        .owns_stream(sa_stream)
        .owns_stream(deploy_stream)
        .owns_stream(svc_stream)
        .owns_stream(pdb_stream)
        .owns_stream(np_stream)
        .owns_stream(cron_stream)
        .owns_stream(ingress_stream)
        // Key and CA Secrets may carry no owner reference (the keys' deletion policy
        // `Retain`): map every generated Secret to its GeneralBot by the instance label.
        .watches_stream(secret_stream, |s: Secret| {
            let namespace = s.namespace()?;
            let name = s.labels().get(labels::INSTANCE)?.clone();
            Some(ObjectRef::<GeneralBot>::new(&name).within(&namespace))
        });
    if let Some(stream) = route_stream {
        controller = controller.owns_stream(stream);
    }
    if let Some(stream) = rule_stream {
        controller = controller.owns_stream(stream);
    }
    if let Some(stream) = monitor_stream {
        controller = controller.owns_stream(stream);
    }
    let controller = controller
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile ended with an error");
            }
        });

    let outcome = tokio::select! {
        () = controller => {
            tracing::info!("controller stopped; shutting down");
            Ok(())
        }
        lost = elector.hold() => {
            tracing::error!(error = %lost, "stopping: leadership lost");
            Err(RunError::Leader(lost))
        }
    };
    metrics.leader.set(0);
    elector.release().await;
    server.abort();
    outcome
}
