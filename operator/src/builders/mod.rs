//! Pure builders of the objects a GeneralBot owns. No client and no `async`: each takes
//! the GeneralBot and returns the object we want, so the controller, `render` and the
//! tests all share one definition of "desired".

mod backup;
mod deployment;
mod front_door;
mod keys;
mod meta;
mod monitoring;
mod network_policy;
mod pdb;
mod pod_volumes;
mod service;
mod service_account;
mod services;

pub use backup::{
    BACKUP_APP_NAME, BACKUP_COMPONENT, backup, backup_labels, backup_name, backups_on,
};
pub use deployment::deployment;
pub use front_door::{http_route, ingress, issued_secret_name};
pub use keys::{GeneratedSecret, key_secret, key_secret_name};
pub use meta::{
    OWNER_PLACEHOLDER_UID, kept_meta, kept_owner_references, object_meta, owner_reference,
    selector_labels,
};
pub use monitoring::{alert_rules, prometheus_rule, series, service_monitor};
pub use network_policy::network_policies;
pub use pdb::pod_disruption_budget;
pub use service::service;
pub use service_account::service_account;
pub use services::{CredentialKey, DeclaredService, ServiceKind, declared_services};

use generalbot_crds::GeneralBot;
use generalbot_crds::v1alpha1::NetworkPeer;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::foreign::{HTTPRoute, PrometheusRule, ServiceMonitor};
use crate::{Error, Result};

/// Every object a GeneralBot owns that the operator keeps in line with the spec on each
/// reconcile. (The key Secret is separate: it is created once and then only rotated.)
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The pod identity, with no API token.
    pub service_account: ServiceAccount,
    /// The bot server pods.
    pub deployment: Deployment,
    /// The bot's API and metrics ports inside the cluster.
    pub service: Service,
    /// Keeps voluntary evictions to one pod at a time.
    pub pod_disruption_budget: PodDisruptionBudget,
    /// Default deny, then the ingress and egress the spec allows.
    pub network_policies: Vec<NetworkPolicy>,
    /// The backup CronJob and its own NetworkPolicy, when backups are on.
    pub backup: Option<(CronJob, NetworkPolicy)>,
    /// The alerts, when `spec.monitoring.alerts` asks for them.
    pub prometheus_rule: Option<PrometheusRule>,
    /// The scrape of the metrics port, when `spec.monitoring.serviceMonitor` asks.
    pub service_monitor: Option<ServiceMonitor>,
    /// The front door, when `spec.network.ingress` is an Ingress.
    pub ingress: Option<Ingress>,
    /// The front door, when `spec.network.ingress` is an HTTPRoute.
    pub http_route: Option<HTTPRoute>,
}

/// Builds every object the GeneralBot owns, in the order they are applied.
pub fn desired(gb: &GeneralBot) -> Result<Desired> {
    desired_for(gb, None)
}

/// As [`desired`], with the operator's own pods (`operator`) admitted to the bot's API
/// port, where it asks for the key-usage report. `render` does not know where the
/// operator runs and leaves that rule out.
pub fn desired_for(gb: &GeneralBot, operator: Option<&NetworkPeer>) -> Result<Desired> {
    let mut ctx = BuildContext::new(gb)?;
    ctx.operator = operator;
    Ok(Desired {
        service_account: service_account(&ctx),
        deployment: deployment(&ctx),
        service: service(&ctx),
        pod_disruption_budget: pod_disruption_budget(&ctx),
        network_policies: network_policies(&ctx),
        backup: backup(&ctx),
        prometheus_rule: prometheus_rule(&ctx),
        service_monitor: service_monitor(&ctx),
        ingress: ingress(&ctx),
        http_route: http_route(&ctx),
    })
}

/// What every builder needs: the GeneralBot and its name and namespace, checked once.
pub struct BuildContext<'a> {
    /// The GeneralBot being built for.
    pub gb: &'a GeneralBot,
    /// Its name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The operator's own pods, admitted to the API port for the key-usage report.
    pub operator: Option<&'a NetworkPeer>,
}

impl<'a> BuildContext<'a> {
    /// Checks that the GeneralBot has a name and a namespace.
    pub fn new(gb: &'a GeneralBot) -> Result<Self> {
        let name = gb
            .metadata
            .name
            .as_deref()
            .ok_or(Error::MissingMetadata("metadata.name"))?;
        let namespace = gb
            .metadata
            .namespace
            .as_deref()
            .ok_or(Error::MissingMetadata("metadata.namespace"))?;
        Ok(Self {
            gb,
            name,
            namespace,
            operator: None,
        })
    }
}

#[cfg(test)]
mod tests;
