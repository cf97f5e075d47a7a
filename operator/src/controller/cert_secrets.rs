//! The certificate Secrets of one GeneralBot as the reconcile handles them: issued,
//! renewed and rotated from cached metadata, the CA Secrets owned only as the keys'
//! deletion policy says. Planning (key generation, signing) runs on the bounded
//! blocking pool, never on the async workers.

use generalbot_crds::GeneralBot;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::reflector::ObjectRef;

use super::Context;
use super::keys::sync_ownership;
use crate::apply::FIELD_MANAGER;
use crate::builders;
use crate::certs;
use crate::rotation::triggers;
use crate::{Error, Result};

/// What happened to the certificate Secrets this reconcile.
pub(super) struct CertsOutcome {
    /// What was done, for events.
    pub done: Vec<String>,
    /// Every certificate, for the status.
    pub status: Vec<generalbot_crds::v1alpha1::CertificateStatus>,
    /// When something is next due.
    pub next: Option<Timestamp>,
    /// Writes made.
    pub writes: u32,
}

/// Issues, renews and rotates the bot's certificates. Reads only cached metadata unless
/// something is missing or due; then reads the Secrets, plans, and writes each changed
/// Secret whole, naming the `resourceVersion` it read.
pub(super) async fn reconcile_certs(
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
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let mut writes = 0;
    for kept in [&seen.root, &seen.ca].into_iter().flatten() {
        if sync_ownership(gb, &api, kept).await? {
            writes += 1;
        }
    }
    if !certs::needs_work(gb, &seen, now) {
        return Ok(CertsOutcome {
            done: Vec::new(),
            status: certs::status(gb, &seen),
            next: certs::next_due(gb, &seen),
            writes,
        });
    }
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
    let plan = {
        let (gb, secrets, policy) = (
            gb.clone(),
            secrets.clone(),
            certs::CertPolicy::of(gb, ctx.propagation),
        );
        ctx.cpu(move || certs::plan(&gb, &secrets, &policy, now, window))
            .await??
    };
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
            metadata: certs::secret_meta(&bctx, w.name.clone()),
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
        writes += 1;
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
        writes,
    })
}
