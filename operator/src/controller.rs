//! The controller: watches GeneralBots and every object they own, and reconciles each
//! GeneralBot into its children and its status.
//!
//! A reconcile checks the spec first and applies nothing when it is wrong (the status
//! says what to fix), so a bad resource is never half-applied. Owned objects are read
//! from watch caches and written only when they drift, so an unchanged GeneralBot costs
//! no write. Deletion needs no finalizer: every child carries a controller owner
//! reference and the garbage collector removes it with its GeneralBot.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use generalbot_crds::contract::labels;
use generalbot_crds::{GeneralBot, GeneralBotStatus};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::apply::{FIELD_MANAGER, Outcome, apply_if_drifted, cached};
use crate::builders::{self, key_secret, key_secret_name};
use crate::certs;
use crate::key_usage;
use crate::keyrings::{self, DEFAULT_PROPAGATION, ring_specs};
use crate::leader::{Elector, LeaderError, LeaseConfig};
use crate::metrics::{Metrics, ServerState, WriteLabels};
use crate::rotation::triggers;
use crate::status::KeysObserved;
use crate::status::{Observed, compute_status, find, types};
use crate::validate::{FoundSecret, check_secrets, check_spec, secret_needs};
use crate::{Error, Result};

/// How often an unchanged GeneralBot is looked at again, to catch what no watch reports
/// (a referenced Secret edited, a clock-driven step).
pub const RESYNC: Duration = Duration::from_secs(300);
/// How soon a GeneralBot with a spec problem is looked at again (a missing Secret may
/// have been created since).
pub const INVALID_RETRY: Duration = Duration::from_secs(30);
/// First delay of the per-object error backoff; each failure doubles it.
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest delay of the per-object error backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

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
    /// Secrets the operator generated, metadata only: key material is dropped from the
    /// cache as it arrives.
    pub secrets: Store<Secret>,
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
            self.secrets.wait_until_ready(),
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
        }
    }

    async fn publish(&self, gb: &GeneralBot, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &gb.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing an event failed");
        }
    }
}

/// Reconciles one GeneralBot: a span, a timer, then [`apply`].
pub async fn reconcile(gb: Arc<GeneralBot>, ctx: Arc<Context>) -> Result<Action> {
    let span = tracing::info_span!(
        "reconcile",
        namespace = gb.namespace().unwrap_or_default(),
        name = gb.name_any()
    );
    let _guard = span.enter();
    ctx.metrics.reconciles.inc();
    let started = Instant::now();
    let result = apply(&gb, &ctx).await;
    ctx.metrics
        .observe(started.elapsed(), result.as_ref().err());
    if let (Ok(_), Ok(mut failures)) = (&result, ctx.failures.lock()) {
        failures.remove(&ObjectRef::from(gb.as_ref()));
    }
    result
}

/// After a failed reconcile: retry that GeneralBot alone, later each time it fails again
/// (2 s, 4 s, 8 s, … up to 5 minutes). Others are not held up.
pub fn error_policy(gb: Arc<GeneralBot>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(ObjectRef::from(gb.as_ref())).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let delay = backoff(failures);
    tracing::warn!(
        namespace = gb.namespace().unwrap_or_default(),
        name = gb.name_any(),
        error = %error,
        failures,
        retry_in_seconds = delay.as_secs(),
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// Delay after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_MAX)
}

async fn apply(gb: &GeneralBot, ctx: &Context) -> Result<Action> {
    let namespace = gb
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    ctx.stores.wait_ready().await;
    let now = Time((ctx.clock)());

    let mut problems = check_spec(gb);
    let needs = secret_needs(gb);
    let found = read_secrets(
        &ctx.client,
        &namespace,
        needs.iter().map(|n| n.name.as_str()),
    )
    .await?;
    problems.extend(check_secrets(&namespace, &needs, &found));
    if !problems.is_empty() {
        let status = compute_status(
            gb,
            &Observed {
                problems: &problems,
                deployment: None,
                keys: None,
                certificates: None,
            },
            &now,
        );
        let message = find(&status, types::READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let was = gb
            .status
            .as_ref()
            .and_then(|s| find(s, types::READY))
            .map(|c| c.message.clone());
        if was.as_deref() != Some(message.as_str()) {
            ctx.publish(gb, EventType::Warning, "InvalidSpec", message)
                .await;
        }
        patch_status(ctx, gb, status).await?;
        return Ok(Action::requeue(INVALID_RETRY));
    }

    let desired = builders::desired(gb)?;
    let mut written = Vec::new();
    let keys = rotate_keys(ctx, gb, &namespace, now.0).await?;
    if keys.created {
        written.push(format!(
            "created Secret {}",
            key_secret_name(&gb.name_any())
        ));
        record_write(ctx, "Secret");
    }
    for (ring, what) in &keys.done {
        ctx.publish(
            gb,
            EventType::Normal,
            "KeyRotation",
            format!("key ring {ring}: {what}"),
        )
        .await;
    }
    if !keys.done.is_empty() {
        record_write(ctx, "Secret");
    }
    let certs = reconcile_certs(ctx, gb, &namespace, now.0).await?;
    for what in &certs.done {
        ctx.publish(gb, EventType::Normal, "Certificates", what.clone())
            .await;
    }
    let client = &ctx.client;
    let s = &ctx.stores;
    let mut outcomes = vec![
        apply_one(
            client,
            &namespace,
            &s.service_accounts,
            &desired.service_account,
        )
        .await?,
        apply_one(client, &namespace, &s.services, &desired.service).await?,
        apply_one(client, &namespace, &s.deployments, &desired.deployment).await?,
        apply_one(client, &namespace, &s.pdbs, &desired.pod_disruption_budget).await?,
    ];
    for policy in &desired.network_policies {
        outcomes.push(apply_one(client, &namespace, &s.network_policies, policy).await?);
    }
    for (kind, name, outcome) in outcomes {
        let verb = match outcome {
            Outcome::Unchanged => continue,
            Outcome::Created => "created",
            Outcome::Updated => "updated",
        };
        record_write(ctx, &kind);
        written.push(format!("{verb} {kind} {name}"));
    }
    if !written.is_empty() {
        tracing::info!(changes = %written.join(", "), "applied");
        ctx.publish(gb, EventType::Normal, "Applied", written.join(", "))
            .await;
    }

    let deployment = cached(&s.deployments, &desired.deployment);
    let status = compute_status(
        gb,
        &Observed {
            problems: &[],
            deployment: deployment.as_deref(),
            keys: keys.observed.as_ref(),
            certificates: Some(&certs.status),
        },
        &now,
    );
    if let Some(k) = &keys.observed {
        ctx.metrics.record_key_ages(gb, &k.rings, now.0);
    }
    ctx.metrics.record_cert_expiry(gb, &certs.status, now.0);
    let ready = |st: Option<&GeneralBotStatus>| {
        st.and_then(|st| find(st, types::READY))
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    let before = ready(gb.status.as_ref());
    let after = ready(Some(&status));
    if let (true, Some(c)) = (before != after, find(&status, types::READY)) {
        {
            let kind = if c.status == "True" {
                EventType::Normal
            } else {
                EventType::Warning
            };
            ctx.publish(gb, kind, &c.reason, c.message.clone()).await;
        }
    }
    patch_status(ctx, gb, status).await?;
    let next = match (keys.next, certs.next) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let wake = next
        .map(|t| t.duration_since(now.0).unsigned_abs())
        .map_or(RESYNC, |d| d.clamp(Duration::from_secs(1), RESYNC));
    Ok(Action::requeue(wake))
}

fn record_write(ctx: &Context, kind: &str) {
    ctx.metrics
        .writes
        .get_or_create(&WriteLabels {
            kind: kind.to_owned(),
        })
        .inc();
}

async fn apply_one<K>(
    client: &Client,
    namespace: &str,
    store: &Store<K>,
    desired: &K,
) -> Result<(String, String, Outcome)>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + 'static,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let outcome = apply_if_drifted(&api, store, desired).await?;
    Ok((K::kind(&()).into_owned(), desired.name_any(), outcome))
}

/// What happened to the key Secret this reconcile.
#[derive(Debug, Default)]
struct KeysOutcome {
    /// The Secret was created.
    created: bool,
    /// Rotation steps carried out, as `(ring, what)`.
    done: Vec<(String, String)>,
    /// The rings as planned, when the Secret was read this time.
    observed: Option<KeysObserved>,
    /// When a ring next needs a step.
    next: Option<Timestamp>,
}

/// Creates the key-ring Secret when it does not exist, and otherwise carries out the
/// next rotation step of each ring when one is due. The Secret is never replaced
/// wholesale: a step writes the changed rings and their recorded phases in one update
/// that names the `resourceVersion` it read, so a concurrent change fails it rather than
/// being lost, and a crash leaves either the old state or the new one.
async fn rotate_keys(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    now: Timestamp,
) -> Result<KeysOutcome> {
    let bctx = builders::BuildContext::new(gb)?;
    let name = key_secret_name(bctx.name);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let read_error = |source| Error::ReadSecret {
        namespace: namespace.to_owned(),
        name: name.clone(),
        source: Box::new(source),
    };
    let write_error = |source| Error::CreateSecret {
        namespace: namespace.to_owned(),
        name: name.clone(),
        source: Box::new(source),
    };
    let Some(cached) = ctx
        .stores
        .secrets
        .get(&ObjectRef::new(&name).within(namespace))
    else {
        let secret = key_secret(&bctx, now)?;
        return match api.create(&params, &secret.0).await {
            Ok(_) => Ok(KeysOutcome {
                created: true,
                ..KeysOutcome::default()
            }),
            // Already there (the cache had not caught up): keep it as it is.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(KeysOutcome::default()),
            Err(source) => Err(write_error(source)),
        };
    };
    let specs = ring_specs(gb, ctx.propagation);
    if !keyrings::due(gb, cached.annotations(), &specs, now) {
        return Ok(KeysOutcome::default());
    }
    let mut secret = api.get(&name).await.map_err(read_error)?;
    let awaiting_report = cached.annotations().iter().any(|(k, v)| {
        k.starts_with(keyrings::PHASE_ANNOTATION) && v.contains("activated") && !k.ends_with(".jwt")
    });
    let report = match (awaiting_report, ops_token(&secret)) {
        (true, Some(token)) => key_usage::fetch(bctx.name, namespace, &token).await,
        _ => None,
    };
    let window = triggers::window_open(&gb.spec.security.maintenance_windows, now);
    let plan = keyrings::plan(gb, &secret, &specs, now, window, report.as_ref())?;
    if let Some(mut changes) = plan.write {
        secret
            .data
            .get_or_insert_with(BTreeMap::new)
            .append(&mut changes.data);
        secret
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .append(&mut changes.annotations);
        secret.metadata.managed_fields = None;
        api.replace(&name, &params, &secret)
            .await
            .map_err(write_error)?;
    }
    if let Some(data) = secret.data.as_mut() {
        for value in data.values_mut() {
            zeroize::Zeroize::zeroize(&mut value.0);
        }
    }
    Ok(KeysOutcome {
        created: false,
        done: plan.done,
        observed: Some(KeysObserved {
            rings: plan.status,
            blocked: plan.blocked,
        }),
        next: plan.next,
    })
}

/// What happened to the certificate Secrets this reconcile.
struct CertsOutcome {
    done: Vec<String>,
    status: Vec<generalbot_crds::v1alpha1::CertificateStatus>,
    next: Option<Timestamp>,
}

/// Issues, renews and rotates the bot's certificates. Reads only cached metadata unless
/// something is missing or due; then reads the Secrets, plans, and writes each changed
/// Secret whole, naming the `resourceVersion` it read.
async fn reconcile_certs(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    now: Timestamp,
) -> Result<CertsOutcome> {
    let bctx = builders::BuildContext::new(gb)?;
    let names = [
        certs::root_secret_name(bctx.name),
        certs::ca_secret_name(bctx.name),
        certs::tls_secret_name(bctx.name),
    ];
    let cached = |n: &str| {
        ctx.stores
            .secrets
            .get(&ObjectRef::new(n).within(namespace))
            .map(|s| s.as_ref().clone())
    };
    let [root, ca, tls] = &names;
    let seen = certs::CertSecrets {
        root: cached(root),
        ca: cached(ca),
        tls: cached(tls),
        user_ca: None,
    };
    if !certs::needs_work(gb, &seen, now) {
        return Ok(CertsOutcome {
            done: Vec::new(),
            status: certs::status(gb, &seen),
            next: None,
        });
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let read = |name: String| {
        let api = api.clone();
        async move {
            api.get_opt(&name)
                .await
                .map_err(|source| Error::ReadSecret {
                    namespace: namespace.to_owned(),
                    name: name.clone(),
                    source: Box::new(source),
                })
        }
    };
    let mut secrets = certs::CertSecrets {
        root: read(root.clone()).await?,
        ca: read(ca.clone()).await?,
        tls: read(tls.clone()).await?,
        user_ca: match &gb.spec.security.certificates.ca_secret {
            Some(user) => read(user.name.clone()).await?,
            None => None,
        },
    };
    let window = triggers::window_open(&gb.spec.security.maintenance_windows, now);
    let plan = certs::plan(
        gb,
        &secrets,
        &certs::CertPolicy::of(gb, ctx.propagation),
        now,
        window,
    )?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    for w in &plan.writes {
        let slot = if &w.name == root {
            &mut secrets.root
        } else if &w.name == ca {
            &mut secrets.ca
        } else {
            &mut secrets.tls
        };
        let mut secret = Secret {
            metadata: builders::object_meta(&bctx, w.name.clone()),
            type_: Some("Opaque".to_owned()),
            data: Some(w.data.clone()),
            ..Secret::default()
        };
        secret.metadata.annotations = Some(w.annotations.clone());
        let written = match slot
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone())
        {
            Some(version) => {
                secret.metadata.resource_version = Some(version);
                api.replace(&w.name, &params, &secret).await
            }
            None => api.create(&params, &secret).await,
        }
        .map_err(|source| Error::CreateSecret {
            namespace: namespace.to_owned(),
            name: w.name.clone(),
            source: Box::new(source),
        })?;
        record_write(ctx, "Secret");
        *slot = Some(written);
    }
    let status = certs::status(gb, &secrets);
    for s in [
        &mut secrets.root,
        &mut secrets.ca,
        &mut secrets.tls,
        &mut secrets.user_ca,
    ] {
        if let Some(data) = s.as_mut().and_then(|s| s.data.as_mut()) {
            for v in data.values_mut() {
                zeroize::Zeroize::zeroize(&mut v.0);
            }
        }
    }
    Ok(CertsOutcome {
        done: plan.done,
        status,
        next: plan.next,
    })
}

fn ops_token(secret: &Secret) -> Option<zeroize::Zeroizing<String>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(generalbot_crds::contract::key_files::OPS_TOKEN))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .map(zeroize::Zeroizing::new)
}

/// Reads the key names (never the values) of the Secrets the spec refers to.
async fn read_secrets<'a>(
    client: &Client,
    namespace: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<BTreeMap<String, FoundSecret>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut found = BTreeMap::new();
    for name in names.collect::<BTreeSet<_>>() {
        let secret = api
            .get_opt(name)
            .await
            .map_err(|source| Error::ReadSecret {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source: Box::new(source),
            })?;
        let entry = match secret {
            None => FoundSecret::Missing,
            Some(s) => {
                let mut keys: BTreeSet<String> =
                    s.data.into_iter().flat_map(|d| d.into_keys()).collect();
                keys.extend(s.string_data.into_iter().flat_map(|d| d.into_keys()));
                FoundSecret::Keys(keys)
            }
        };
        found.insert(name.to_owned(), entry);
    }
    Ok(found)
}

async fn patch_status(ctx: &Context, gb: &GeneralBot, status: GeneralBotStatus) -> Result<()> {
    if gb.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let namespace = gb.namespace().unwrap_or_default();
    let name = gb.name_any();
    let api: Api<GeneralBot> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": GeneralBot::api_version(&()),
        "kind": GeneralBot::kind(&()),
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::PatchStatus {
        namespace,
        name,
        source: Box::new(source),
    })?;
    Ok(())
}

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

    let elector = Elector::new(client.clone(), cfg.lease.clone());
    tracing::info!(lease = %cfg.lease.name, identity = %cfg.lease.identity, "waiting to become leader");
    tokio::select! {
        acquired = elector.acquire() => acquired?,
        _ = tokio::signal::ctrl_c() => {
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
    let (secrets, secret_stream) = owned::<Secret>(&client, ns, drop_secret_data);
    let stores = Stores {
        service_accounts,
        deployments,
        services,
        pdbs,
        network_policies,
        secrets,
    };
    {
        let stores = stores.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            stores.wait_ready().await;
            ready.store(true, Ordering::Relaxed);
        });
    }
    let mut ctx = Context::new(client.clone(), stores, metrics.clone(), &cfg.lease.identity);
    ctx.propagation = cfg.propagation;
    let ctx = Arc::new(ctx);
    let controller = Controller::new(
        api_for::<GeneralBot>(&client, ns),
        watcher::Config::default().any_semantic(),
    )
    .owns_stream(sa_stream)
    .owns_stream(deploy_stream)
    .owns_stream(svc_stream)
    .owns_stream(pdb_stream)
    .owns_stream(np_stream)
    .owns_stream(secret_stream)
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

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
