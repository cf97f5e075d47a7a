//! The PodDisruptionBudget: drains and rollouts take at most one bot pod at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::BuildContext;
use super::meta::{object_meta, selector_labels};

/// The budget. `maxUnavailable: 1` rather than `minAvailable` so a one-replica bot can
/// still be drained, and a many-replica bot loses at most one pod at once.
pub fn pod_disruption_budget(ctx: &BuildContext<'_>) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: object_meta(ctx, ctx.name),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(ctx.name)),
                match_expressions: None,
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}
