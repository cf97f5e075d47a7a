//! Children a GeneralBot has only while its spec asks for them: applied like every
//! owned object then, deleted (when ours) once it no longer does, so nothing stale keeps
//! running or routing. The backup CronJob and its policy, the front door (Ingress or
//! HTTPRoute) and the monitoring objects (PrometheusRule, ServiceMonitor) go through
//! here; a kind the cluster does not serve has no cache and is never written.

use generalbot_crds::GeneralBot;
use generalbot_crds::GeneralBotStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::{Context, apply_one};
use crate::apply::Outcome;
use crate::builders::Desired;
use crate::foreign::Served;
use crate::{Error, Result};

/// What the optional children's reconcile wrote: `(kind, name, outcome)` per apply,
/// and a line per deletion.
#[derive(Default)]
pub struct Changes {
    /// Applies.
    pub applied: Vec<(String, String, Outcome)>,
    /// Deletions.
    pub deleted: Vec<String>,
}

impl Changes {
    /// Applies `desired` when the spec asks for it, else deletes our `name` of that
    /// kind if the cache has it. Without a cache (the kind is not served) nothing is done.
    pub async fn converge<K>(
        &mut self,
        ctx: &Context,
        store: Option<&Store<K>>,
        namespace: &str,
        name: &str,
        desired: Option<&K>,
    ) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + serde::de::DeserializeOwned
            + 'static,
    {
        let Some(store) = store else {
            return Ok(());
        };
        match desired {
            Some(d) => self
                .applied
                .push(apply_one(&ctx.client, namespace, store, d).await?),
            None => {
                if delete_cached(ctx, store, namespace, name).await? {
                    self.deleted
                        .push(format!("deleted {} {name}", K::kind(&())));
                }
            }
        }
        Ok(())
    }
}

/// The backup CronJob and its policy, the front door and the monitoring objects.
pub async fn reconcile(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    desired: &Desired,
) -> Result<Changes> {
    let s = &ctx.stores;
    let o = &s.optional;
    let name = gb.name_any();
    let backup = crate::builders::backup_name(&name);
    let mut c = Changes::default();
    let (cron, policy) = desired.backup.as_ref().map(|(c, p)| (c, p)).unzip();
    c.converge(ctx, Some(&s.cron_jobs), namespace, &backup, cron)
        .await?;
    c.converge(ctx, Some(&s.network_policies), namespace, &backup, policy)
        .await?;
    c.converge(
        ctx,
        o.ingresses.as_ref(),
        namespace,
        &name,
        desired.ingress.as_ref(),
    )
    .await?;
    c.converge(
        ctx,
        o.http_routes.as_ref(),
        namespace,
        &name,
        desired.http_route.as_ref(),
    )
    .await?;
    c.converge(
        ctx,
        o.prometheus_rules.as_ref(),
        namespace,
        &name,
        desired.prometheus_rule.as_ref(),
    )
    .await?;
    c.converge(
        ctx,
        o.service_monitors.as_ref(),
        namespace,
        &name,
        desired.service_monitor.as_ref(),
    )
    .await?;
    Ok(c)
}

/// Sets `FrontDoorReady` and `MonitoringReady` as [`crate::extras::judge`] says, and
/// removes them while not asked for.
pub fn apply_conditions(
    status: &mut GeneralBotStatus,
    gb: &GeneralBot,
    served: Served,
    now: &Time,
) {
    for (type_, judged) in crate::extras::judge(gb, served) {
        match judged {
            Some((ok, reason, message)) => crate::status::set_condition(
                &mut status.conditions,
                crate::status::condition(type_, ok, reason, message, gb.metadata.generation, now),
            ),
            None => status.conditions.retain(|c| c.type_ != type_),
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
