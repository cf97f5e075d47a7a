//! Network isolation settings: which peers may reach the bot, how cluster DNS is found,
//! and egress beyond the declared services. Every rule names a peer and a port: the API
//! has no way to say "all egress", and a CIDR that covers every address (`0.0.0.0/0`,
//! `::/0`) is refused unless the peer says `allowAnyAddress: true`, where a reviewer
//! sees it. Selector labels are checked as the API server checks labels, so a policy
//! the operator writes is never refused later.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The schema of a label value, for the values of every label map: at most 63 letters,
/// digits, `-`, `_` or `.`, starting and ending with a letter or digit. (Keys are checked
/// by the operator and `render`: a CEL rule over map keys costs more than the API server
/// allows.)
pub(crate) fn label_value_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "string",
        "maxLength": 63,
        "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
    })
}

/// Which pods may reach the bot, and any egress beyond the declared services.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Peers allowed to reach the bot's API port: the reverse proxy or ingress
    /// controller. Empty means no ingress to the API at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub ingress_from: Vec<NetworkPeer>,
    /// Peers allowed to scrape the metrics port (Prometheus). Empty means none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub metrics_from: Vec<NetworkPeer>,
    /// Where cluster DNS runs. The default fits kube-dns and CoreDNS in `kube-system`.
    #[serde(default)]
    pub dns: DnsSpec,
    /// Egress beyond the services under `spec.services`, each to named peers and ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        extend("x-kubernetes-validations" = [{
            "rule": "self.all(r, self.exists_one(s, s.name == r.name))",
            "message": "two rules share a name: give each rule of extraEgress its own name"
        }])
    )]
    pub extra_egress: Vec<EgressRule>,
    /// The bot's front door: an Ingress or an HTTPRoute for one public host, with TLS.
    /// Its controller's pods must be in `ingressFrom` (and in
    /// `server.settings.trustedProxies`, so rate limits see the client's address). The
    /// security headers (HSTS, CSP, X-Frame-Options, X-Content-Type-Options,
    /// Referrer-Policy) and the rate limits are set and enforced by the bot server itself
    /// on every response: the front door needs no annotation for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<super::FrontDoorSpec>,
}

/// A set of peers in a network policy: pods chosen by labels, or IP blocks. Give
/// selectors or CIDRs, not both, and never an empty selector (that would match every pod).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.podSelector) || has(self.namespaceSelector)) != (has(self.cidrs) && size(self.cidrs) > 0)",
        "message": "give either podSelector/namespaceSelector or cidrs, exactly one of the two"
    },
    {
        "rule": "!has(self.podSelector) || size(self.podSelector) > 0",
        "message": "podSelector must name at least one label: an empty selector matches every pod",
        "fieldPath": ".podSelector"
    },
    {
        "rule": "!has(self.namespaceSelector) || size(self.namespaceSelector) > 0",
        "message": "namespaceSelector must name at least one label: an empty selector matches every namespace",
        "fieldPath": ".namespaceSelector"
    },
    {
        "rule": "(has(self.allowAnyAddress) && self.allowAnyAddress) || !has(self.cidrs) || self.cidrs.all(c, !c.endsWith('/0'))",
        "message": "a CIDR ending in /0 covers every address: name the peer's own range, or set allowAnyAddress: true beside it if every address is meant",
        "fieldPath": ".cidrs"
    }
]))]
pub struct NetworkPeer {
    /// Labels of the peer pods. Without `namespaceSelector` they are looked for in the
    /// GeneralBot's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16, "additionalProperties" = label_value_schema()))]
    pub pod_selector: Option<BTreeMap<String, String>>,
    /// Labels of the namespaces the peer pods run in, such as
    /// `kubernetes.io/metadata.name: ingress-nginx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16, "additionalProperties" = label_value_schema()))]
    pub namespace_selector: Option<BTreeMap<String, String>>,
    /// IP blocks of peers outside the cluster, such as a managed database.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(max = 43)),
        extend("x-kubernetes-validations" = [{"rule": "self.all(c, isCIDR(c))", "message": "every entry of cidrs must be a CIDR such as 10.0.0.0/24 or 2001:db8::/64"}])
    )]
    pub cidrs: Vec<String>,
    /// Set to true, beside `cidrs`, to allow a CIDR that covers every address
    /// (`0.0.0.0/0`, `::/0`); refused otherwise, since it opens the port to the world.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_any_address: bool,
}

/// Where cluster DNS runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsSpec {
    /// The DNS pods, as a network peer.
    #[serde(default = "default_dns_peer")]
    pub peer: NetworkPeer,
    /// The port the DNS pods listen on (UDP and TCP): 53, or 5353 on clusters whose DNS
    /// Service translates 53 to it (OpenShift).
    #[serde(default = "default_dns_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

fn default_dns_port() -> i32 {
    53
}

impl Default for DnsSpec {
    fn default() -> Self {
        Self {
            peer: default_dns_peer(),
            port: default_dns_port(),
        }
    }
}

fn default_dns_peer() -> NetworkPeer {
    NetworkPeer {
        pod_selector: Some(BTreeMap::from([(
            "k8s-app".to_owned(),
            "kube-dns".to_owned(),
        )])),
        namespace_selector: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            "kube-system".to_owned(),
        )])),
        cidrs: Vec::new(),
        allow_any_address: false,
    }
}

/// Egress to a peer on given ports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressRule {
    /// A short name for the rule, shown in the network policy.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Who the bot may reach.
    pub peer: NetworkPeer,
    /// TCP ports it may reach them on.
    #[schemars(length(min = 1, max = 16), inner(range(min = 1, max = 65535)))]
    pub ports: Vec<i32>,
}
