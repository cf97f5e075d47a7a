//! `spec.network.ingress`: the bot's front door, an `Ingress` or a Gateway API
//! `HTTPRoute` for one public host, always with TLS. The security headers and the rate
//! limits are the bot server's own (every response carries them, whatever proxy is in
//! front), so the front door needs no annotations for them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A DNS name: lower-case labels of letters, digits and `-`, separated by dots.
const HOST_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A Kubernetes object name (DNS-1123 subdomain).
const NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";

/// The bot's front door.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.kind != 'Ingress' || has(self.tls)",
        "message": "an Ingress without TLS would carry sign-ins in clear text: set tls.secretName or tls.issuer",
        "fieldPath": ".tls"
    },
    {
        "rule": "self.kind != 'HTTPRoute' || (has(self.gateway) && !has(self.tls) && !has(self.className))",
        "message": "an HTTPRoute attaches to a Gateway, which holds its TLS: set gateway (its name and HTTPS listener) and remove tls and className",
        "fieldPath": ".gateway"
    },
    {
        "rule": "self.kind != 'Ingress' || !has(self.gateway)",
        "message": "gateway is for kind HTTPRoute: remove it, or set kind: HTTPRoute",
        "fieldPath": ".gateway"
    }
]))]
pub struct FrontDoorSpec {
    /// `Ingress` (networking.k8s.io/v1) or `HTTPRoute` (gateway.networking.k8s.io/v1).
    #[serde(default)]
    pub kind: FrontDoorKind,
    /// The public host name, such as `chat.example.com`.
    #[schemars(length(min = 1, max = 253), pattern(HOST_PATTERN))]
    pub host: String,
    /// Ingress only: the IngressClass; the cluster's default class when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(NAME_PATTERN))]
    pub class_name: Option<String>,
    /// Ingress only: where the certificate of `host` comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<FrontDoorTls>,
    /// HTTPRoute only: the Gateway and its HTTPS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayRef>,
    /// More annotations for the controller. The operator already asks ingress-nginx to
    /// reach the bot over HTTPS and to verify it against the bot's CA.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32, "additionalProperties" = {"type": "string", "maxLength": 4096}))]
    pub annotations: BTreeMap<String, String>,
}

/// The kind of object the front door is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum FrontDoorKind {
    /// A `networking.k8s.io/v1` Ingress.
    #[default]
    Ingress,
    /// A Gateway API `HTTPRoute`.
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
}

/// The certificate of the public host: an existing Secret, or one cert-manager issues.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.secretName) != has(self.issuer)",
    "message": "give exactly one of tls.secretName (a Secret you manage) or tls.issuer (cert-manager issues it)"
}]))]
pub struct FrontDoorTls {
    /// A `kubernetes.io/tls` Secret in the GeneralBot's namespace that holds the host's
    /// certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(NAME_PATTERN))]
    pub secret_name: Option<String>,
    /// A cert-manager issuer: the certificate goes to the Secret `<name>-ingress-tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<IssuerRef>,
}

/// A cert-manager `Issuer` (in this namespace) or `ClusterIssuer`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// Its name.
    #[schemars(length(min = 1, max = 253), pattern(NAME_PATTERN))]
    pub name: String,
    /// `Issuer` or `ClusterIssuer`.
    #[serde(default)]
    pub kind: IssuerKind,
}

/// The kind of cert-manager issuer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum IssuerKind {
    /// An `Issuer` in the GeneralBot's namespace.
    #[default]
    Issuer,
    /// A `ClusterIssuer`.
    ClusterIssuer,
}

/// A Gateway listener an HTTPRoute attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// The Gateway's name.
    #[schemars(length(min = 1, max = 253), pattern(NAME_PATTERN))]
    pub name: String,
    /// Its namespace; the GeneralBot's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,
    /// The listener, which must be an HTTPS one, so the route is never served in clear.
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub section_name: String,
}
