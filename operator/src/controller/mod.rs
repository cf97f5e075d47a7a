//! The controller: watches GeneralBots and every object they own, and reconciles each
//! GeneralBot into its children and its status.
//!
//! A reconcile checks the spec first and applies nothing when it is wrong (the status
//! says what to fix), so a bad resource is never half-applied. Owned objects are read
//! from watch caches and written only when they drift, so an unchanged GeneralBot costs
//! no write. Deletion needs no finalizer: every child carries a controller owner
//! reference and the garbage collector removes it with its GeneralBot, except the key
//! and CA Secrets, which are kept unless the keys' deletion policy says `Delete`.
//!
//! Layout: [`keys`] handles the key-ring Secret, [`cert_secrets`] the certificate Secrets,
//! [`audit`] the check of each bot's audit chain, [`optional`] the children a spec may
//! or may not ask for (backups, front door, monitoring), [`run`] the watches, leader
//! election and the controller loop.

mod audit;
mod cert_secrets;
mod context;
mod database;
mod keys;
mod optional;
mod run;
mod storage;

pub use context::{Clock, Context, OptionalStores, Stores, cpu_slots};
pub use keys::ACCEPT_KEY_LOSS;
pub use run::{RunConfig, RunError, run};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use generalbot_crds::{GeneralBot, GeneralBotStatus};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::apply::{FIELD_MANAGER, Outcome, apply_if_drifted, cached};
use crate::builders::{self, key_secret_name};
use crate::metrics::WriteLabels;
use crate::status::{Observed, compute_status, find, reasons, types};
use crate::validate::{FoundSecret, check_secrets, check_spec, secret_needs};
use crate::{Error, Result};

/// How often each bot's audit chain is checked by default.
pub const DEFAULT_AUDIT_EVERY: Duration = Duration::from_secs(300);

/// The longest an unchanged GeneralBot goes without being looked at again, to catch what
/// no watch reports (a referenced Secret edited). Clock-driven steps (a renewal, a
/// ring's next step) wake it at their own time.
pub const RESYNC: Duration = Duration::from_secs(3600);
/// How soon a GeneralBot with a spec problem is looked at again (a missing Secret may
/// have been created since).
pub const INVALID_RETRY: Duration = Duration::from_secs(30);
/// First delay of the per-object error backoff; each failure doubles it.
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest delay of the per-object error backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Reconciles one GeneralBot: a span, a timer, then [`apply`].
pub async fn reconcile(gb: Arc<GeneralBot>, ctx: Arc<Context>) -> Result<Action> {
    let span = tracing::info_span!(
        "reconcile",
        namespace = gb.namespace().unwrap_or_default(),
        name = gb.name_any()
    );
    ctx.metrics.reconciles.inc();
    let started = Instant::now();
    let result = tracing::Instrument::instrument(apply(&gb, &ctx), span).await;
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
    // Being deleted: the garbage collector is removing the children; re-creating them
    // would fight it. Nothing to do until it is gone.
    if gb.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
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
                ..Observed::default()
            },
            &now,
        );
        publish_ready_change(ctx, gb, &status).await;
        patch_status(ctx, gb, status).await?;
        return Ok(Action::requeue(INVALID_RETRY));
    }

    let desired = builders::desired_for(gb, ctx.operator_peer.as_ref())?;
    let mut written = Vec::new();
    let keys = keys::rotate_keys(ctx, gb, &namespace, now.0).await?;
    record_writes(ctx, "Secret", keys.writes);
    if keys.missing {
        // Apply nothing that could start a bot server with keys that cannot read its
        // data; the status says how to restore the Secret or accept the loss.
        let status = compute_status(
            gb,
            &Observed {
                keys_missing: true,
                ..Observed::default()
            },
            &now,
        );
        publish_ready_change(ctx, gb, &status).await;
        patch_status(ctx, gb, status).await?;
        return Ok(Action::requeue(INVALID_RETRY));
    }
    if keys.created {
        written.push(format!(
            "created Secret {}",
            key_secret_name(&gb.name_any())
        ));
    }
    if let Some(value) = &keys.replaced_lost {
        ctx.publish(
            gb,
            EventType::Warning,
            "KeysReplaced",
            format!(
                "the lost key Secret was replaced by fresh keys, as {ACCEPT_KEY_LOSS}={value} asks; data encrypted under the lost keys cannot be read"
            ),
        )
        .await;
    }
    // One event per kind of change and reconcile: every step is in it, and a burst of
    // new GeneralBots costs the API server a few writes less each.
    if !keys.done.is_empty() {
        let steps: Vec<String> = keys
            .done
            .iter()
            .map(|(ring, what)| format!("key ring {ring}: {what}"))
            .collect();
        ctx.publish(gb, EventType::Normal, "KeyRotation", steps.join("; "))
            .await;
    }
    let certs = cert_secrets::reconcile_certs(ctx, gb, &namespace, now.0).await?;
    record_writes(ctx, "Secret", certs.writes);
    if !certs.done.is_empty() {
        ctx.publish(gb, EventType::Normal, "Certificates", certs.done.join("; "))
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
    let optional = optional::reconcile(ctx, gb, &namespace, &desired).await?;
    outcomes.extend(optional.applied);
    record_writes(
        ctx,
        "deletion",
        u32::try_from(optional.deleted.len()).unwrap_or(u32::MAX),
    );
    written.extend(optional.deleted);
    for (kind, name, outcome) in outcomes {
        let verb = match outcome {
            Outcome::Unchanged => continue,
            Outcome::Created => "created",
            Outcome::Updated => "updated",
        };
        record_writes(ctx, &kind, 1);
        written.push(format!("{verb} {kind} {name}"));
    }
    if !written.is_empty() {
        tracing::info!(changes = %written.join(", "), "applied");
        ctx.publish(gb, EventType::Normal, "Applied", written.join(", "))
            .await;
    }

    let deployment = cached(&s.deployments, &desired.deployment);
    let mut status = compute_status(
        gb,
        &Observed {
            problems: &[],
            deployment: deployment.as_deref(),
            keys: keys.observed.as_ref(),
            certificates: Some(&certs.status),
            keys_missing: false,
        },
        &now,
    );
    if let Some(value) = keys.replaced_lost {
        status.accepted_key_loss = Some(value);
    }
    let (judgement, next_audit) = audit::check(ctx, gb, &namespace, now.0).await;
    if let Some(j) = judgement {
        audit::apply(&mut status, j, gb.metadata.generation, &now);
    }
    let (database, next_database) = database::check(ctx, gb, &namespace, now.0).await;
    if let Some(j) = database {
        database::apply(&mut status, j, gb.metadata.generation, &now);
    }
    let (stored, next_storage) = storage::check(ctx, gb, &namespace, now.0).await;
    if let Some(found) = stored {
        storage::apply(&mut status, found, gb.metadata.generation, &now);
    }
    optional::apply_conditions(&mut status, gb, ctx.served, &now);
    if let Some(k) = &keys.observed {
        ctx.metrics.record_key_ages(gb, &k.rings, now.0);
        ctx.metrics.record_blocked(gb, k);
    }
    ctx.metrics.record_cert_expiry(gb, &certs.status, now.0);
    ctx.metrics.record_conditions(gb, &status);
    publish_ready_change(ctx, gb, &status).await;
    patch_status(ctx, gb, status).await?;
    let next = [
        keys.next,
        certs.next,
        Some(next_audit),
        next_database,
        next_storage,
    ]
    .into_iter()
    .flatten()
    .min();
    Ok(Action::requeue(wake_after(next, now.0)))
}

/// Whether a periodic check of `gb`, last run as recorded in `checked`, is due at `now`
/// every `every`: `Ok(next)` records `now` and says when the one after is due;
/// `Err(next)` says when this one will be.
fn due(
    checked: &Mutex<HashMap<ObjectRef<GeneralBot>, Timestamp>>,
    gb: &GeneralBot,
    every: Duration,
    now: Timestamp,
) -> std::result::Result<Timestamp, Timestamp> {
    let key = ObjectRef::from_obj(gb);
    let every = jiff::SignedDuration::try_from(every).unwrap_or_default();
    let last = checked.lock().ok().and_then(|m| m.get(&key).copied());
    if let Some(last) = last
        && now < last + every
    {
        return Err(last + every);
    }
    if let Ok(mut m) = checked.lock() {
        m.insert(key, now);
    }
    Ok(now + every)
}

/// Sets the condition a periodic check judged.
fn set_checked_condition(
    status: &mut GeneralBotStatus,
    type_: &str,
    (state, reason, message): (&str, &str, String),
    generation: Option<i64>,
    now: &Time,
) {
    crate::status::set_condition(
        &mut status.conditions,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: type_.to_owned(),
            status: state.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: now.clone(),
        },
    );
}

/// How long to sleep until `next` (at least a second), or [`RESYNC`] when nothing is due.
pub fn wake_after(next: Option<Timestamp>, now: Timestamp) -> Duration {
    next.map(|t| t.duration_since(now)).map_or(RESYNC, |d| {
        d.unsigned_abs().clamp(Duration::from_secs(1), RESYNC)
    })
}

/// Publishes an Event when the `Ready` condition changes status or reason (or message,
/// for a spec problem, so each new problem is announced once).
async fn publish_ready_change(ctx: &Context, gb: &GeneralBot, status: &GeneralBotStatus) {
    let ready = |st: Option<&GeneralBotStatus>| {
        st.and_then(|st| find(st, types::READY))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let before = ready(gb.status.as_ref());
    let Some((state, reason, message)) = ready(Some(status)) else {
        return;
    };
    let changed = match &before {
        None => true,
        Some((s, r, m)) => {
            s != &state || r != &reason || (reason == reasons::INVALID_SPEC && m != &message)
        }
    };
    if changed {
        let kind = if state == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.publish(gb, kind, &reason, message).await;
    }
}

/// Counts `n` writes of `kind` in the writes metric.
fn record_writes(ctx: &Context, kind: &str, n: u32) {
    if n > 0 {
        ctx.metrics
            .writes
            .get_or_create(&WriteLabels {
                kind: kind.to_owned(),
            })
            .inc_by(u64::from(n));
    }
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
    record_writes(ctx, "GeneralBotStatus", 1);
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

#[cfg(test)]
mod tests;
