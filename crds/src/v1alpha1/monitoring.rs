//! `spec.monitoring`: the alerts the operator writes for one bot (a Prometheus Operator
//! `PrometheusRule` built from the General Bots guide's thresholds) and the
//! `ServiceMonitor` that scrapes the bot server's metrics over verified TLS.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::network::label_value_schema;

/// Alerts and scraping for this bot (both need the Prometheus Operator's CRDs).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Create a `PrometheusRule` named after the bot with the guide's alerts: failed
    /// logins (warning), lockouts (warning), privilege-escalation attempts (critical),
    /// a certificate close to expiry, a blocked key rotation and an overdue or failed
    /// backup.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alerts: bool,
    /// Create a `ServiceMonitor` that scrapes the bot server's metrics port over TLS,
    /// verified against the bot's own CA. Prometheus must also be allowed in by
    /// `spec.network.metricsFrom`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub service_monitor: bool,
    /// Labels on the `PrometheusRule` and `ServiceMonitor`, so that Prometheus selects
    /// them (kube-prometheus-stack selects `release: <its release name>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16, "additionalProperties" = label_value_schema()))]
    pub labels: BTreeMap<String, String>,
    /// The thresholds of the alerts.
    #[serde(default)]
    pub thresholds: AlertThresholds,
}

/// When each alert fires. The defaults are the guide's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertThresholds {
    /// Failed logins within `windowMinutes` that raise a warning. Unset: the same as
    /// `spec.server.settings.loginAlertThreshold` (the guide's 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub failed_logins: Option<u32>,
    /// Lockouts within `windowMinutes` that raise a warning.
    #[serde(default = "default_lockouts")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub lockouts: u32,
    /// The window the counts above are taken over, in minutes.
    #[serde(default = "default_window")]
    #[schemars(range(min = 1, max = 1440))]
    pub window_minutes: u32,
    /// A certificate expiring within this many days is critical: renewal normally
    /// happens long before (`renewAtPercent`), so this means renewal is failing.
    #[serde(default = "default_certificate_days")]
    #[schemars(range(min = 1, max = 365))]
    pub certificate_expiry_days: u32,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            failed_logins: None,
            lockouts: default_lockouts(),
            window_minutes: default_window(),
            certificate_expiry_days: default_certificate_days(),
        }
    }
}

fn default_lockouts() -> u32 {
    1
}
fn default_window() -> u32 {
    15
}
fn default_certificate_days() -> u32 {
    7
}
