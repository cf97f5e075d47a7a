//! What every reconcile shares: the watch caches of owned objects ([`Stores`]), the
//! client, Events, metrics, the clock, the CPU-bound pool, and the cadence and last
//! time of each periodic check ([`Context`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use generalbot_crds::GeneralBot;
use generalbot_crds::contract::labels;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};

use super::{DEFAULT_AUDIT_EVERY, record_writes};
use crate::foreign::{HTTPRoute, PrometheusRule, Served, ServiceMonitor};
use crate::keyrings::DEFAULT_PROPAGATION;
use crate::metrics::Metrics;
use crate::{Error, Result};

/// Watch caches of everything GeneralBots own.
#[derive(Clone)]
pub struct Stores {
    /// ServiceAccounts.
    pub service_accounts: Store<ServiceAccount>,
    /// Deployments.
    pub deployments: Store<Deployment>,
    /// Services.
    pub services: Store<Service>,
    /// PodDisruptionBudgets.
    pub pdbs: Store<PodDisruptionBudget>,
    /// NetworkPolicies.
    pub network_policies: Store<NetworkPolicy>,
    /// Backup CronJobs.
    pub cron_jobs: Store<CronJob>,
    /// Secrets the operator generated, metadata only: key material is dropped from the
    /// cache as it arrives.
    pub secrets: Store<Secret>,
    /// Caches of the kinds a spec may not ask for, some of which a cluster may not serve.
    pub optional: OptionalStores,
}

/// Caches of the optional children's kinds; `None` where the kind is not watched
/// (not served by the cluster, or left out by a test).
#[derive(Clone, Default)]
pub struct OptionalStores {
    /// Ingresses.
    pub ingresses: Option<Store<Ingress>>,
    /// HTTPRoutes (the Gateway API).
    pub http_routes: Option<Store<HTTPRoute>>,
    /// PrometheusRules (the Prometheus Operator).
    pub prometheus_rules: Option<Store<PrometheusRule>>,
    /// ServiceMonitors (the Prometheus Operator).
    pub service_monitors: Option<Store<ServiceMonitor>>,
}

impl OptionalStores {
    /// Waits until every cache that exists has its first full list.
    pub async fn wait_ready(&self) {
        async fn ready<K: Resource<DynamicType = ()> + Clone + 'static>(s: Option<&Store<K>>) {
            if let Some(s) = s {
                let _ = s.wait_until_ready().await;
            }
        }
        futures::join!(
            ready(self.ingresses.as_ref()),
            ready(self.http_routes.as_ref()),
            ready(self.prometheus_rules.as_ref()),
            ready(self.service_monitors.as_ref()),
        );
    }
}

impl Stores {
    /// Waits until every cache has its first full list.
    pub async fn wait_ready(&self) {
        let _ = futures::join!(
            self.service_accounts.wait_until_ready(),
            self.deployments.wait_until_ready(),
            self.services.wait_until_ready(),
            self.pdbs.wait_until_ready(),
            self.network_policies.wait_until_ready(),
            self.cron_jobs.wait_until_ready(),
            self.secrets.wait_until_ready(),
            self.optional.wait_ready(),
        );
    }
}

/// A clock, injectable so tests can drive time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes Events on GeneralBots.
    pub recorder: Recorder,
    /// Operator metrics.
    pub metrics: Metrics,
    /// Watch caches of owned objects.
    pub stores: Stores,
    /// Consecutive failures per GeneralBot, for the exponential backoff.
    pub failures: Mutex<HashMap<ObjectRef<GeneralBot>, u32>>,
    /// The time.
    pub clock: Clock,
    /// How long a changed Secret takes to reach every pod and be reloaded.
    pub propagation: SignedDuration,
    /// Bounds the CPU-heavy work (key generation, signing) running at once on the
    /// blocking pool, so a burst of new GeneralBots never starves the async workers
    /// that renew the lease and serve the watches.
    pub cpu_slots: Arc<tokio::sync::Semaphore>,
    /// Where to reach bot servers instead of their Service names (an operator run
    /// outside the cluster).
    pub connect_to: crate::tls_client::ConnectTo,
    /// The operator's own pods, admitted to each bot's API port (for the key-usage
    /// report) when known.
    pub operator_peer: Option<generalbot_crds::v1alpha1::NetworkPeer>,
    /// How often each bot's audit chain is checked.
    pub audit_every: Duration,
    /// When each bot's audit chain was last checked.
    pub audit_checked: Mutex<HashMap<ObjectRef<GeneralBot>, Timestamp>>,
    /// How often each bot's database connection is checked (zero: never).
    pub database_every: Duration,
    /// When each bot's database connection was last checked.
    pub database_checked: Mutex<HashMap<ObjectRef<GeneralBot>, Timestamp>>,
    /// How often each bot's bucket settings and backups are checked (zero: never).
    pub storage_every: Duration,
    /// When each bot's bucket was last checked.
    pub storage_checked: Mutex<HashMap<ObjectRef<GeneralBot>, Timestamp>>,
    /// Which optional kinds the cluster serves.
    pub served: Served,
}

impl Context {
    /// A context with the system clock.
    pub fn new(client: Client, stores: Stores, metrics: Metrics, identity: &str) -> Self {
        let reporter = Reporter {
            controller: labels::MANAGER.to_owned(),
            instance: Some(identity.to_owned()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            stores,
            failures: Mutex::new(HashMap::new()),
            clock: Arc::new(Timestamp::now),
            propagation: DEFAULT_PROPAGATION,
            cpu_slots: Arc::new(tokio::sync::Semaphore::new(cpu_slots())),
            connect_to: crate::tls_client::ConnectTo::default(),
            operator_peer: None,
            audit_every: DEFAULT_AUDIT_EVERY,
            audit_checked: Mutex::new(HashMap::new()),
            database_every: Duration::ZERO,
            database_checked: Mutex::new(HashMap::new()),
            storage_every: Duration::ZERO,
            storage_checked: Mutex::new(HashMap::new()),
            served: Served::default(),
        }
    }

    /// Runs CPU-heavy `work` on the blocking pool, at most [`cpu_slots`] at once.
    pub async fn cpu<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .cpu_slots
            .acquire()
            .await
            .map_err(|e| Error::Blocking(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Blocking(e.to_string()))
    }

    pub(super) async fn publish(
        &self,
        gb: &GeneralBot,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        record_writes(self, "Event", 1);
        if let Err(e) = self.recorder.publish(&event, &gb.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing an event failed");
        }
    }
}

/// How many CPU-heavy tasks may run at once: the cores this process may use.
pub fn cpu_slots() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}
