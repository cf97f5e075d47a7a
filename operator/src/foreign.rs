//! Kinds of other projects that the operator writes for a GeneralBot, typed with only
//! the fields it sets: the Prometheus Operator's `PrometheusRule` and `ServiceMonitor`,
//! and the Gateway API's `HTTPRoute`. Their CRDs may be missing from a cluster; the
//! controller asks the API server which of them it serves ([`Served`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// `monitoring.coreos.com/v1` `PrometheusRule`: groups of alerting rules.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PrometheusRule",
    plural = "prometheusrules",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
pub struct PrometheusRuleSpec {
    /// Rule groups.
    pub groups: Vec<RuleGroup>,
}

/// One group of rules, evaluated together.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RuleGroup {
    /// The group's name.
    pub name: String,
    /// Its rules.
    pub rules: Vec<AlertRule>,
}

/// One alerting rule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AlertRule {
    /// The alert's name.
    pub alert: String,
    /// The PromQL expression; the alert fires while it returns anything.
    pub expr: String,
    /// How long the expression must hold before the alert fires.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Labels of the alert (`severity`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `monitoring.coreos.com/v1` `ServiceMonitor`: what Prometheus scrapes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    plural = "servicemonitors",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// The Services to scrape.
    pub selector: LabelSelector,
    /// Their ports.
    pub endpoints: Vec<ScrapeEndpoint>,
}

/// One scraped port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeEndpoint {
    /// The Service port's name.
    pub port: String,
    /// `https`.
    pub scheme: String,
    /// The metrics path.
    pub path: String,
    /// How the server's certificate is verified.
    pub tls_config: ScrapeTls,
}

/// TLS of a scrape.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeTls {
    /// The CA bundle, from a Secret key.
    pub ca: SecretOrConfigMap,
    /// The name the server's certificate must carry.
    pub server_name: String,
}

/// A key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SecretOrConfigMap {
    /// The Secret and key.
    pub secret: SecretKey,
}

/// A Secret's key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SecretKey {
    /// The Secret.
    pub name: String,
    /// The key.
    pub key: String,
}

/// `gateway.networking.k8s.io/v1` `HTTPRoute`: routes a host on a Gateway to Services.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    plural = "httproutes",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    /// The Gateway listeners it attaches to.
    pub parent_refs: Vec<ParentRef>,
    /// The host names it answers for.
    pub hostnames: Vec<String>,
    /// Where requests go.
    pub rules: Vec<RouteRule>,
}

/// A Gateway listener.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// The Gateway.
    pub name: String,
    /// Its namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The listener.
    pub section_name: String,
}

/// One rule of a route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// The Services requests go to.
    pub backend_refs: Vec<BackendRef>,
}

/// A Service port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BackendRef {
    /// The Service.
    pub name: String,
    /// Its port.
    pub port: i32,
}

/// Which of these kinds the API server serves, learnt once at start (a CRD installed
/// later needs an operator restart; the status says so).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// `PrometheusRule` and `ServiceMonitor` (the Prometheus Operator's CRDs).
    pub monitoring: bool,
    /// `HTTPRoute` (the Gateway API's CRDs).
    pub gateway: bool,
}

impl Served {
    /// Asks the API server.
    pub async fn discover(client: &kube::Client) -> Self {
        Self {
            monitoring: serves(
                client,
                "monitoring.coreos.com/v1",
                &["PrometheusRule", "ServiceMonitor"],
            )
            .await,
            gateway: serves(client, "gateway.networking.k8s.io/v1", &["HTTPRoute"]).await,
        }
    }
}

async fn serves(client: &kube::Client, group_version: &str, kinds: &[&str]) -> bool {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => kinds
            .iter()
            .all(|k| list.resources.iter().any(|r| r.kind == *k)),
        Err(e) => {
            tracing::info!(group_version, error = %e, "not served by this cluster");
            false
        }
    }
}
