//! Network policies: deny everything in both directions, then allow ingress from the
//! configured proxy and metrics peers to their own ports, and egress to cluster DNS and to
//! each declared service on its port. Every allow rule names both a peer and a port, so
//! no rule ever allows all egress.

use generalbot_crds::contract;
use generalbot_crds::v1alpha1::NetworkPeer;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::BuildContext;
use super::meta::{object_meta, selector_labels};
use super::services::{ServiceKind, declared_services};

/// Suffix of the default-deny policy's name.
pub const DENY_SUFFIX: &str = "default-deny";
/// Suffix of the ingress policy's name.
pub const INGRESS_SUFFIX: &str = "ingress";
/// Suffix of the egress policy's name.
pub const EGRESS_SUFFIX: &str = "egress";

/// The three policies, always all three so that none is ever left behind stale: an
/// empty allow list simply allows nothing.
pub fn network_policies(ctx: &BuildContext<'_>) -> Vec<NetworkPolicy> {
    let net = &ctx.gb.spec.network;
    let deny = policy(ctx, DENY_SUFFIX, &["Ingress", "Egress"], None, None);

    let named = |name: &str| vec![tcp(IntOrString::String(name.to_owned()))];
    // The operator asks for the key-usage report on the API port, over TLS.
    let operator: Vec<NetworkPeer> = ctx.operator.cloned().into_iter().collect();
    let ingress: Vec<NetworkPolicyIngressRule> = [
        (&net.ingress_from, named(contract::API_PORT_NAME)),
        (&net.metrics_from, named(contract::METRICS_PORT_NAME)),
        (&operator, named(contract::API_PORT_NAME)),
    ]
    .into_iter()
    .filter_map(|(from, ports)| {
        let from: Vec<_> = from.iter().flat_map(peers).collect();
        // An empty `from` would admit every source: leave the rule out instead.
        (!from.is_empty()).then_some(NetworkPolicyIngressRule {
            from: Some(from),
            ports: Some(ports),
        })
    })
    .collect();
    let ingress = policy(ctx, INGRESS_SUFFIX, &["Ingress"], Some(ingress), None);

    let mut wanted = vec![dns(ctx)];
    for service in declared_services(&ctx.gb.spec) {
        wanted.push(to_service(&service));
    }
    for rule in &net.extra_egress {
        let ports = rule.ports.iter().map(|p| tcp(IntOrString::Int(*p)));
        wanted.push((peers(&rule.peer), ports.collect()));
    }
    let egress = policy(
        ctx,
        EGRESS_SUFFIX,
        &["Egress"],
        None,
        Some(egress_rules(wanted)),
    );

    vec![deny, ingress, egress]
}

type Wanted = (Vec<NetworkPolicyPeer>, Vec<NetworkPolicyPort>);

fn dns(ctx: &BuildContext<'_>) -> Wanted {
    let dns = &ctx.gb.spec.network.dns;
    let ports = vec![
        port("UDP", IntOrString::Int(dns.port)),
        port("TCP", IntOrString::Int(dns.port)),
    ];
    (peers(&dns.peer), ports)
}

fn to_service(service: &super::DeclaredService<'_>) -> Wanted {
    (
        peers(&service.endpoint.peer),
        // A NetworkPolicy matches after the Service translated the port.
        vec![tcp(IntOrString::Int(service.target_port()))],
    )
}

fn egress_rules(wanted: Vec<Wanted>) -> Vec<NetworkPolicyEgressRule> {
    wanted
        .into_iter()
        // An empty `to` would allow every destination: leave the rule out instead.
        .filter(|(to, ports)| !to.is_empty() && !ports.is_empty())
        .map(|(to, ports)| NetworkPolicyEgressRule {
            to: Some(to),
            ports: Some(ports),
        })
        .collect()
}

/// The backup pods' own policy: no ingress at all, egress only to DNS, the database and
/// the object storage.
pub fn backup_policy(
    ctx: &BuildContext<'_>,
    name: String,
    pod_labels: std::collections::BTreeMap<String, String>,
) -> NetworkPolicy {
    let mut wanted = vec![dns(ctx)];
    for service in declared_services(&ctx.gb.spec) {
        if matches!(
            service.kind,
            ServiceKind::Postgres | ServiceKind::ObjectStorage
        ) {
            wanted.push(to_service(&service));
        }
    }
    let mut metadata = object_meta(ctx, name);
    metadata.labels = Some(pod_labels.clone());
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(pod_labels),
                match_expressions: None,
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: None,
            egress: Some(egress_rules(wanted)).filter(|r| !r.is_empty()),
        }),
    }
}

fn policy(
    ctx: &BuildContext<'_>,
    suffix: &str,
    types: &[&str],
    ingress: Option<Vec<NetworkPolicyIngressRule>>,
    egress: Option<Vec<NetworkPolicyEgressRule>>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: object_meta(ctx, format!("{}-{suffix}", ctx.name)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(ctx.name)),
                match_expressions: None,
            }),
            policy_types: Some(types.iter().map(|t| (*t).to_owned()).collect()),
            ingress: ingress.filter(|r| !r.is_empty()),
            egress: egress.filter(|r| !r.is_empty()),
        }),
    }
}

fn tcp(p: IntOrString) -> NetworkPolicyPort {
    port("TCP", p)
}

fn port(protocol: &str, p: IntOrString) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(p),
        protocol: Some(protocol.to_owned()),
        end_port: None,
    }
}

/// A spec peer as policy peers: one per CIDR, or one selector peer. A peer with neither
/// (the schema refuses it) yields no peer, and callers drop a rule with no peers, since
/// Kubernetes reads an empty peer list as "everyone".
pub fn peers(peer: &NetworkPeer) -> Vec<NetworkPolicyPeer> {
    if !peer.cidrs.is_empty() {
        return peer
            .cidrs
            .iter()
            .map(|cidr| NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: cidr.clone(),
                    except: None,
                }),
                ..NetworkPolicyPeer::default()
            })
            .collect();
    }
    let selector = |labels: &Option<std::collections::BTreeMap<String, String>>| {
        labels
            .as_ref()
            .filter(|l| !l.is_empty())
            .map(|l| LabelSelector {
                match_labels: Some(l.clone()),
                match_expressions: None,
            })
    };
    let pod_selector = selector(&peer.pod_selector);
    let namespace_selector = selector(&peer.namespace_selector);
    if pod_selector.is_none() && namespace_selector.is_none() {
        return Vec::new();
    }
    vec![NetworkPolicyPeer {
        pod_selector,
        namespace_selector,
        ip_block: None,
    }]
}
