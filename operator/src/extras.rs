//! The conditions of a GeneralBot's optional children, judged purely from the spec and
//! from which kinds the cluster serves: `FrontDoorReady` while `spec.network.ingress`
//! is set, `MonitoringReady` while `spec.monitoring` asks for alerts or scraping. Each
//! is absent while not asked for, so a bot without them shows no condition about them.

use generalbot_crds::GeneralBot;
use generalbot_crds::v1alpha1::FrontDoorKind;

use crate::foreign::Served;

/// The front door's condition.
pub const FRONT_DOOR: &str = "FrontDoorReady";
/// The monitoring objects' condition.
pub const MONITORING: &str = "MonitoringReady";

/// What a condition says: status, reason, message.
pub type Judged = (bool, &'static str, String);

/// Each condition type with what it says, or `None` when it should be absent.
pub fn judge(gb: &GeneralBot, served: Served) -> [(&'static str, Option<Judged>); 2] {
    let name = gb.metadata.name.as_deref().unwrap_or_default();
    let door = gb.spec.network.ingress.as_ref().map(|door| match door.kind {
        FrontDoorKind::Ingress => (
            true,
            "Applied",
            format!("Ingress {name} sends https://{} to the bot", door.host),
        ),
        FrontDoorKind::HttpRoute if served.gateway => (
            true,
            "Applied",
            format!("HTTPRoute {name} sends https://{} to the bot", door.host),
        ),
        FrontDoorKind::HttpRoute => (
            false,
            "GatewayAPIMissing",
            "this cluster does not serve HTTPRoute (gateway.networking.k8s.io/v1): install the Gateway API CRDs and restart the operator, or use kind: Ingress".to_owned(),
        ),
    });
    let m = &gb.spec.monitoring;
    let monitoring = (m.alerts || m.service_monitor).then(|| {
        if served.monitoring {
            let what: Vec<String> = [
                m.alerts.then(|| format!("PrometheusRule {name}")),
                m.service_monitor.then(|| format!("ServiceMonitor {name}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            (true, "Applied", format!("{} in place", what.join(" and ")))
        } else {
            (
                false,
                "PrometheusOperatorMissing",
                "this cluster does not serve PrometheusRule and ServiceMonitor (monitoring.coreos.com/v1): install the Prometheus Operator's CRDs and restart the operator, or set spec.monitoring.alerts and serviceMonitor to false".to_owned(),
            )
        }
    });
    [(FRONT_DOOR, door), (MONITORING, monitoring)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::mk_gb;
    use generalbot_crds::v1alpha1::{FrontDoorSpec, GatewayRef};

    fn door(kind: FrontDoorKind) -> FrontDoorSpec {
        FrontDoorSpec {
            kind,
            host: "chat.example.com".to_owned(),
            class_name: None,
            tls: None,
            gateway: Some(GatewayRef {
                name: "public".to_owned(),
                namespace: None,
                section_name: "https".to_owned(),
            }),
            annotations: Default::default(),
        }
    }

    #[test]
    fn nothing_asked_means_no_condition() {
        let gb = mk_gb("b");
        for (_, judged) in judge(&gb, Served::default()) {
            assert!(judged.is_none());
        }
    }

    #[test]
    fn a_kind_the_cluster_does_not_serve_is_named_with_the_fix() {
        let mut gb = mk_gb("b");
        gb.spec.network.ingress = Some(door(FrontDoorKind::HttpRoute));
        gb.spec.monitoring.alerts = true;
        let [(_, door_j), (_, mon)] = judge(&gb, Served::default());
        let (ok, reason, message) = door_j.unwrap();
        assert!(!ok);
        assert_eq!(reason, "GatewayAPIMissing");
        assert!(message.contains("install the Gateway API CRDs"));
        let (ok, reason, _) = mon.unwrap();
        assert!(!ok);
        assert_eq!(reason, "PrometheusOperatorMissing");

        let served = Served {
            monitoring: true,
            gateway: true,
        };
        let [(_, door_j), (_, mon)] = judge(&gb, served);
        assert!(door_j.unwrap().0);
        let (ok, _, message) = mon.unwrap();
        assert!(ok);
        assert_eq!(message, "PrometheusRule b in place");
    }

    #[test]
    fn an_ingress_needs_no_crd() {
        let mut gb = mk_gb("b");
        gb.spec.network.ingress = Some(door(FrontDoorKind::Ingress));
        let [(_, door_j), _] = judge(&gb, Served::default());
        let (ok, _, message) = door_j.unwrap();
        assert!(ok);
        assert!(message.contains("https://chat.example.com"));
    }
}
