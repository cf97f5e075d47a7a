//! The bot's ClusterIP Service: the API port for the proxy, the metrics port for
//! Prometheus.

use generalbot_crds::contract::{API_PORT, API_PORT_NAME, METRICS_PORT, METRICS_PORT_NAME};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::BuildContext;
use super::meta::{object_meta, selector_labels};

/// The Service in front of the bot server pods.
pub fn service(ctx: &BuildContext<'_>) -> Service {
    let port = |name: &str, number: i32| ServicePort {
        name: Some(name.to_owned()),
        port: number,
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    };
    Service {
        metadata: object_meta(ctx, ctx.name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(ctx.name)),
            ports: Some(vec![
                port(API_PORT_NAME, API_PORT),
                port(METRICS_PORT_NAME, METRICS_PORT),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
