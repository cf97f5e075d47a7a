//! Prometheus metrics of the operator and the small HTTP server that exposes them with
//! `/healthz` (the process is alive) and `/readyz` (its caches are filled).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// What failed ([`crate::Error::metric_label`]).
    pub error: String,
}

/// Labels of the write counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// Kind of object written.
    pub kind: String,
}

/// Labels of per-ring and per-certificate gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ItemLabels {
    /// Namespace of the GeneralBot.
    pub namespace: String,
    /// Name of the GeneralBot.
    pub name: String,
    /// The ring or certificate.
    pub item: String,
}

impl ItemLabels {
    /// The labels of `item` of `gb`.
    pub fn of(gb: &generalbot_crds::GeneralBot, item: &str) -> Self {
        use kube::ResourceExt;
        Self {
            namespace: gb.namespace().unwrap_or_default(),
            name: gb.name_any(),
            item: item.to_owned(),
        }
    }
}

/// Labels of the condition gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    /// Namespace of the GeneralBot.
    pub namespace: String,
    /// Name of the GeneralBot.
    pub name: String,
    /// The condition type.
    pub condition: String,
}

/// A gauge holding seconds.
pub type Seconds = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The operator's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// Reconciles started.
    pub reconciles: Counter,
    /// Reconciles that failed, by error.
    pub errors: Family<ErrorLabels, Counter>,
    /// Reconcile duration in seconds.
    pub duration: Histogram,
    /// Objects written (created or changed back), by kind.
    pub writes: Family<WriteLabels, Counter>,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
    /// Age of each ring's active key, in seconds.
    pub key_age: Family<ItemLabels, Seconds>,
    /// Seconds until each certificate expires.
    pub cert_expiry: Family<ItemLabels, Seconds>,
    /// 1 while a ring's rotation is blocked, 0 otherwise.
    pub rotation_blocked: Family<ItemLabels, Gauge>,
    /// 1 while a condition is True, 0 while it is False.
    pub conditions: Family<ConditionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Counter::default(),
            errors: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            writes: Family::default(),
            leader: Gauge::default(),
            key_age: Family::default(),
            cert_expiry: Family::default(),
            rotation_blocked: Family::default(),
            conditions: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric under the `generalbot_operator` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("generalbot_operator");
        r.register("reconciles", "Reconciles started", self.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconciles that failed, by error",
            self.errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            self.duration.clone(),
        );
        r.register(
            "object_writes",
            "Writes to the API server (owned objects, Secrets, status, events), by kind",
            self.writes.clone(),
        );
        r.register(
            "leader",
            "1 while this replica holds the leader lease",
            self.leader.clone(),
        );
        r.register(
            "key_age_seconds",
            "Age of each key ring's active key, by GeneralBot (namespace, name) and ring (item)",
            self.key_age.clone(),
        );
        r.register(
            "certificate_expiry_seconds",
            "Seconds until each certificate expires, by GeneralBot and certificate (item)",
            self.cert_expiry.clone(),
        );
        r.register(
            "rotation_blocked",
            "1 while a key ring's rotation cannot go on (KeysReady says why), by GeneralBot and ring (item)",
            self.rotation_blocked.clone(),
        );
        r.register(
            "condition",
            "1 while a GeneralBot's condition is True, 0 while it is False",
            self.conditions.clone(),
        );
    }

    /// Sets the blocked-rotation gauges of a GeneralBot's rings.
    pub fn record_blocked(
        &self,
        gb: &generalbot_crds::GeneralBot,
        keys: &crate::status::KeysObserved,
    ) {
        for ring in &keys.rings {
            let blocked = keys.blocked.iter().any(|(name, _)| name == &ring.name);
            self.rotation_blocked
                .get_or_create(&ItemLabels::of(gb, &ring.name))
                .set(i64::from(blocked));
        }
    }

    /// Sets the condition gauges from a GeneralBot's status.
    pub fn record_conditions(
        &self,
        gb: &generalbot_crds::GeneralBot,
        status: &generalbot_crds::GeneralBotStatus,
    ) {
        use kube::ResourceExt;
        for c in &status.conditions {
            if c.status == "Unknown" {
                continue;
            }
            self.conditions
                .get_or_create(&ConditionLabels {
                    namespace: gb.namespace().unwrap_or_default(),
                    name: gb.name_any(),
                    condition: c.type_.clone(),
                })
                .set(i64::from(c.status == "True"));
        }
    }

    /// Sets the key-age gauges of a GeneralBot's rings.
    pub fn record_key_ages(
        &self,
        gb: &generalbot_crds::GeneralBot,
        rings: &[generalbot_crds::v1alpha1::KeyRingStatus],
        now: jiff::Timestamp,
    ) {
        for ring in rings {
            let Ok(since) = ring.active_since.parse::<jiff::Timestamp>() else {
                continue;
            };
            let labels = ItemLabels::of(gb, &ring.name);
            self.key_age
                .get_or_create(&labels)
                .set(now.duration_since(since).as_secs_f64());
        }
    }

    /// Sets the seconds-to-expiry gauges of a GeneralBot's certificates.
    pub fn record_cert_expiry(
        &self,
        gb: &generalbot_crds::GeneralBot,
        certs: &[generalbot_crds::v1alpha1::CertificateStatus],
        now: jiff::Timestamp,
    ) {
        for c in certs {
            let Ok(not_after) = c.not_after.parse::<jiff::Timestamp>() else {
                continue;
            };
            let labels = ItemLabels::of(gb, &c.name);
            self.cert_expiry
                .get_or_create(&labels)
                .set(not_after.duration_since(now).as_secs_f64());
        }
    }

    /// Records a finished reconcile.
    pub fn observe(&self, took: Duration, error: Option<&crate::Error>) {
        self.duration.observe(took.as_secs_f64());
        if let Some(e) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    error: e.metric_label().to_owned(),
                })
                .inc();
        }
    }
}

/// What the HTTP server serves.
#[derive(Clone)]
pub struct ServerState {
    /// The registry to encode on `/metrics`.
    pub registry: Arc<Registry>,
    /// Set once the caches are filled.
    pub ready: Arc<AtomicBool>,
}

/// The router for `/metrics`, `/healthz` and `/readyz`.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches are not filled yet")
    }
}
