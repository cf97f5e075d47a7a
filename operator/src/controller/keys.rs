//! The key-ring Secret of one GeneralBot as the reconcile handles it: created once for a
//! new GeneralBot, stepped through rotations, never silently replaced when it is lost,
//! and owned by the GeneralBot only when its keys' deletion policy is `Delete`.
//!
//! The Secret is never replaced wholesale: a step writes the changed rings and their
//! recorded phases in one update that names the `resourceVersion` it read, so a
//! concurrent change fails it rather than being lost, and a crash leaves either the old
//! state or the new one. What the status says of the rings is recorded on the Secret as
//! an annotation, so a steady reconcile reports them from the watch cache alone.

use std::collections::BTreeMap;

use generalbot_crds::GeneralBot;
use generalbot_crds::contract::key_files;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::Context;
use crate::apply::FIELD_MANAGER;
use crate::builders::{self, key_secret, key_secret_name};
use crate::key_usage;
use crate::keyrings::{self, ring_specs};
use crate::rotation::triggers;
use crate::status::KeysObserved;
use crate::{Error, Result};

/// The annotation on a GeneralBot by which a user accepts that its lost key Secret be
/// replaced by fresh keys (data encrypted under the lost keys stays unreadable). Each
/// value is honoured once.
pub const ACCEPT_KEY_LOSS: &str = "generalbots.io/accept-key-loss";

/// What happened to the key Secret this reconcile.
#[derive(Debug, Default)]
pub(super) struct KeysOutcome {
    /// The Secret was created.
    pub created: bool,
    /// The Secret was created to replace a lost one, accepting the loss with this value
    /// of [`ACCEPT_KEY_LOSS`].
    pub replaced_lost: Option<String>,
    /// The Secret of a GeneralBot that had keys is gone, and nothing accepts the loss:
    /// nothing else may be applied.
    pub missing: bool,
    /// Rotation steps carried out, as `(ring, what)`.
    pub done: Vec<(String, String)>,
    /// The rings as planned or as last recorded on the Secret.
    pub observed: Option<KeysObserved>,
    /// When a ring next needs a step.
    pub next: Option<Timestamp>,
    /// Writes made to the Secret (creation, rotation steps, ownership).
    pub writes: u32,
}

/// Creates the key-ring Secret of a new GeneralBot, reports a lost one, keeps its owner
/// reference in line with the deletion policy, and carries out the next rotation step
/// of each ring when one is due.
pub(super) async fn rotate_keys(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    now: Timestamp,
) -> Result<KeysOutcome> {
    let bctx = builders::BuildContext::new(gb)?;
    let name = key_secret_name(bctx.name);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let read_error = |source| Error::ReadSecret {
        namespace: namespace.to_owned(),
        name: name.clone(),
        source: Box::new(source),
    };
    let cached = ctx
        .stores
        .secrets
        .get(&ObjectRef::new(&name).within(namespace))
        .map(|s| s.as_ref().clone());
    // The cache may lag behind a Secret just made: ask before concluding it is gone.
    let live = match cached {
        Some(s) => Some(s),
        None => api
            .get_opt(&name)
            .await
            .map_err(read_error)?
            .map(metadata_only),
    };
    let Some(live) = live else {
        return create_or_report_missing(ctx, gb, &api, &name, now).await;
    };
    let mut out = KeysOutcome::default();
    if sync_ownership(gb, &api, &live).await? {
        out.writes += 1;
    }
    let specs = ring_specs(gb, ctx.propagation);
    if !keyrings::due(gb, live.annotations(), &specs, now) {
        out.observed = keyrings::recorded(live.annotations());
        out.next = live
            .annotations()
            .get(keyrings::NEXT_STEP_ANNOTATION)
            .and_then(|t| t.parse().ok());
        return Ok(out);
    }
    let mut secret = api.get(&name).await.map_err(read_error)?;
    let awaiting_report = live.annotations().iter().any(|(k, v)| {
        k.starts_with(keyrings::PHASE_ANNOTATION) && v.contains("activated") && !k.ends_with(".jwt")
    });
    let report = match (awaiting_report, ops_token(&secret)) {
        (true, Some(token)) => {
            let trust = trust_bundle(&api, bctx.name).await;
            key_usage::fetch(bctx.name, namespace, &token, &trust, &ctx.connect_to).await
        }
        _ => None,
    };
    let window = triggers::window_open(&gb.spec.security.maintenance_windows, now);
    let plan = {
        let (gb, secret) = (gb.clone(), secret.clone());
        ctx.cpu(move || keyrings::plan(&gb, &secret, &specs, now, window, report.as_ref()))
            .await??
    };
    let mut plan = plan;
    if let Some(changes) = plan.write.as_mut() {
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
        api.replace(&name, &post_params(), &secret)
            .await
            .map_err(|source| Error::CreateSecret {
                namespace: namespace.to_owned(),
                name: name.clone(),
                source: Box::new(source),
            })?;
        out.writes += 1;
    }
    zeroize_data(&mut secret);
    out.done = std::mem::take(&mut plan.done);
    out.observed = Some(KeysObserved {
        rings: std::mem::take(&mut plan.status),
        blocked: std::mem::take(&mut plan.blocked),
    });
    out.next = plan.next;
    Ok(out)
}

/// No key Secret: a new GeneralBot gets one; one that had rings gets one only when the
/// user has accepted the loss, and is otherwise reported as missing.
async fn create_or_report_missing(
    ctx: &Context,
    gb: &GeneralBot,
    api: &Api<Secret>,
    name: &str,
    now: Timestamp,
) -> Result<KeysOutcome> {
    let status = gb.status.as_ref();
    let had_rings = status.is_some_and(|s| !s.key_rings.is_empty());
    let accepted = gb.annotations().get(ACCEPT_KEY_LOSS);
    let honoured = status.and_then(|s| s.accepted_key_loss.as_ref());
    let replaced_lost = match (had_rings, accepted) {
        (false, _) => None,
        (true, Some(value)) if Some(value) != honoured => Some(value.clone()),
        (true, _) => {
            return Ok(KeysOutcome {
                missing: true,
                ..KeysOutcome::default()
            });
        }
    };
    let owned = gb.clone();
    let secret = ctx
        .cpu(move || {
            let bctx = builders::BuildContext::new(&owned)?;
            key_secret(&bctx, now)
        })
        .await??;
    let observed = keyrings::recorded(secret.0.annotations());
    match api.create(&post_params(), &secret.0).await {
        Ok(_) => Ok(KeysOutcome {
            created: true,
            replaced_lost,
            observed,
            writes: 1,
            ..KeysOutcome::default()
        }),
        // Already there (the cache had not caught up): keep it as it is.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(KeysOutcome::default()),
        Err(source) => Err(Error::CreateSecret {
            namespace: gb.namespace().unwrap_or_default(),
            name: name.to_owned(),
            source: Box::new(source),
        }),
    }
}

/// Puts the owner reference of a kept Secret (keys, CA) in line with the deletion
/// policy: the GeneralBot's controller reference under `Delete`, none under `Retain`.
/// Returns whether it wrote.
pub(super) async fn sync_ownership(
    gb: &GeneralBot,
    api: &Api<Secret>,
    live: &Secret,
) -> Result<bool> {
    let want = builders::kept_owner_references(gb);
    let have = live.metadata.owner_references.clone().unwrap_or_default();
    let same = want.len() == have.len()
        && want
            .iter()
            .zip(&have)
            .all(|(w, h)| w.uid == h.uid && w.controller == h.controller);
    if same {
        return Ok(false);
    }
    let refs = if want.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(&want).map_err(|source| Error::Serialize {
            what: "owner references".to_owned(),
            source,
        })?
    };
    let patch = serde_json::json!({ "metadata": { "ownerReferences": refs } });
    let name = live.name_any();
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::CreateSecret {
            namespace: gb.namespace().unwrap_or_default(),
            name: name.clone(),
            source: Box::new(source),
        })?;
    tracing::info!(secret = %name, owned = !want.is_empty(), "set the owner reference the keys deletion policy asks for");
    Ok(true)
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// A Secret's metadata, its data wiped.
fn metadata_only(mut s: Secret) -> Secret {
    zeroize_data(&mut s);
    s.data = None;
    s.string_data = None;
    s
}

fn zeroize_data(secret: &mut Secret) {
    if let Some(data) = secret.data.as_mut() {
        for value in data.values_mut() {
            zeroize::Zeroize::zeroize(&mut value.0);
        }
    }
}

/// A value of a Secret, by key.
pub(super) fn secret_value(secret: &Secret, name: &str) -> Option<Vec<u8>> {
    secret.data.as_ref()?.get(name).map(|b| b.0.clone())
}

/// The CA to verify a declared service with: the `ca.crt` of its `tls.caSecret`, or the
/// bot's trust bundle; `None` when there is none (or it is empty).
pub(super) async fn service_ca(
    api: &Api<Secret>,
    bot: &str,
    tls: &generalbot_crds::v1alpha1::TlsSpec,
) -> Option<Vec<u8>> {
    let ca = match &tls.ca_secret {
        Some(ca) => api
            .get_opt(&ca.name)
            .await
            .ok()
            .flatten()
            .and_then(|s| secret_value(&s, "ca.crt")),
        None => Some(trust_bundle(api, bot).await),
    };
    ca.filter(|c| !c.is_empty())
}

/// The trust bundle the bot's serving certificate chains to (the leaves' Secret's
/// `ca.crt`), or nothing, which no certificate verifies against.
pub(super) async fn trust_bundle(api: &Api<Secret>, bot: &str) -> Vec<u8> {
    let name = crate::certs::tls_secret_name(bot);
    api.get_opt(&name)
        .await
        .ok()
        .flatten()
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(generalbot_crds::contract::tls_files::CA))
        .map(|b| b.0)
        .unwrap_or_default()
}

pub(super) fn ops_token(secret: &Secret) -> Option<zeroize::Zeroizing<String>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key_files::OPS_TOKEN))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .map(zeroize::Zeroizing::new)
}
