//! The backup CronJob and its NetworkPolicy: applied like every owned object while
//! backups are on, deleted when they are turned off (or the bucket is removed), so no
//! stale Job keeps running.

use generalbot_crds::GeneralBot;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::{Context, apply_one};
use crate::apply::Outcome;
use crate::builders::{Desired, backup_name};
use crate::{Error, Result};

/// Applies or removes them; returns what was written, as `(kind, name, outcome)`, and
/// what was deleted.
pub async fn reconcile(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    desired: &Desired,
) -> Result<(Vec<(String, String, Outcome)>, Vec<String>)> {
    let s = &ctx.stores;
    match &desired.backup {
        Some((cron, policy)) => Ok((
            vec![
                apply_one(&ctx.client, namespace, &s.cron_jobs, cron).await?,
                apply_one(&ctx.client, namespace, &s.network_policies, policy).await?,
            ],
            Vec::new(),
        )),
        None => {
            let name = backup_name(&gb.name_any());
            let mut deleted = Vec::new();
            if delete_cached::<CronJob>(ctx, &s.cron_jobs, namespace, &name).await? {
                deleted.push(format!("deleted CronJob {name}"));
            }
            if delete_cached::<NetworkPolicy>(ctx, &s.network_policies, namespace, &name).await? {
                deleted.push(format!("deleted NetworkPolicy {name}"));
            }
            Ok((Vec::new(), deleted))
        }
    }
}

/// Deletes `name` when the cache has it (and it is ours): true when it did.
async fn delete_cached<K>(
    ctx: &Context,
    store: &Store<K>,
    namespace: &str,
    name: &str,
) -> Result<bool>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + 'static,
{
    let Some(live) = store.get(&ObjectRef::new(name).within(namespace)) else {
        return Ok(false);
    };
    let ours = live
        .labels()
        .get(generalbot_crds::contract::labels::MANAGED_BY)
        .map(String::as_str)
        == Some(generalbot_crds::contract::labels::MANAGER);
    if !ours {
        return Ok(false);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(source) => Err(Error::Apply {
            kind: K::kind(&()).into_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source: Box::new(source),
        }),
    }
}
