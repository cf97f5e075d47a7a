//! The bot's front door (`spec.network.ingress`): an `Ingress` with TLS (a Secret, or
//! one cert-manager issues) or a Gateway API `HTTPRoute` on an HTTPS listener, both
//! sending every path of one host to the bot's API port.
//!
//! The bot server speaks only TLS, with a certificate of the bot's own CA, so the
//! Ingress asks ingress-nginx to reach it over HTTPS and verify it against that CA
//! (annotations other controllers ignore; `spec.network.ingress.annotations` adds
//! theirs). Security headers and rate limits need no annotation: the bot server sets
//! and enforces them on every response, whatever proxy is in front.

use generalbot_crds::contract::{API_PORT, API_PORT_NAME};
use generalbot_crds::v1alpha1::{FrontDoorKind, FrontDoorSpec, IssuerKind};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::BuildContext;
use super::meta::object_meta;
use crate::foreign::{BackendRef, HTTPRoute, HTTPRouteSpec, ParentRef, RouteRule};

/// The Secret cert-manager writes the host's certificate to, when an issuer is named.
pub fn issued_secret_name(name: &str) -> String {
    format!("{name}-ingress-tls")
}

fn front_door<'a>(ctx: &'a BuildContext<'_>) -> Option<&'a FrontDoorSpec> {
    ctx.gb.spec.network.ingress.as_ref()
}

/// The Ingress, when the front door is one.
pub fn ingress(ctx: &BuildContext<'_>) -> Option<Ingress> {
    let door = front_door(ctx).filter(|d| d.kind == FrontDoorKind::Ingress)?;
    let mut annotations = door.annotations.clone();
    let ours = [
        (
            "nginx.ingress.kubernetes.io/backend-protocol",
            "HTTPS".to_owned(),
        ),
        (
            "nginx.ingress.kubernetes.io/proxy-ssl-verify",
            "on".to_owned(),
        ),
        (
            "nginx.ingress.kubernetes.io/proxy-ssl-secret",
            format!(
                "{}/{}",
                ctx.namespace,
                crate::certs::tls_secret_name(ctx.name)
            ),
        ),
        (
            "nginx.ingress.kubernetes.io/proxy-ssl-name",
            format!("{}.{}.svc", ctx.name, ctx.namespace),
        ),
        (
            "nginx.ingress.kubernetes.io/proxy-ssl-server-name",
            "on".to_owned(),
        ),
        (
            "nginx.ingress.kubernetes.io/ssl-redirect",
            "true".to_owned(),
        ),
    ];
    for (k, v) in ours {
        annotations.insert(k.to_owned(), v);
    }
    let tls = door.tls.as_ref();
    let secret = match tls {
        Some(t) => t
            .secret_name
            .clone()
            .unwrap_or_else(|| issued_secret_name(ctx.name)),
        None => issued_secret_name(ctx.name),
    };
    if let Some(issuer) = tls.and_then(|t| t.issuer.as_ref()) {
        let key = match issuer.kind {
            IssuerKind::Issuer => "cert-manager.io/issuer",
            IssuerKind::ClusterIssuer => "cert-manager.io/cluster-issuer",
        };
        annotations.insert(key.to_owned(), issuer.name.clone());
    }
    let mut metadata = object_meta(ctx, ctx.name);
    metadata.annotations = Some(annotations);
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: door.class_name.clone(),
            tls: Some(vec![IngressTLS {
                hosts: Some(vec![door.host.clone()]),
                secret_name: Some(secret),
            }]),
            rules: Some(vec![IngressRule {
                host: Some(door.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".to_owned()),
                        path_type: "Prefix".to_owned(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: ctx.name.to_owned(),
                                port: Some(ServiceBackendPort {
                                    name: Some(API_PORT_NAME.to_owned()),
                                    number: None,
                                }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            default_backend: None,
        }),
        status: None,
    })
}

/// The HTTPRoute, when the front door is one.
pub fn http_route(ctx: &BuildContext<'_>) -> Option<HTTPRoute> {
    let door = front_door(ctx).filter(|d| d.kind == FrontDoorKind::HttpRoute)?;
    let gateway = door.gateway.as_ref()?;
    let mut metadata = object_meta(ctx, ctx.name);
    if !door.annotations.is_empty() {
        metadata.annotations = Some(door.annotations.clone());
    }
    Some(HTTPRoute {
        metadata,
        spec: HTTPRouteSpec {
            parent_refs: vec![ParentRef {
                name: gateway.name.clone(),
                namespace: gateway.namespace.clone(),
                section_name: gateway.section_name.clone(),
            }],
            hostnames: vec![door.host.clone()],
            rules: vec![RouteRule {
                backend_refs: vec![BackendRef {
                    name: ctx.name.to_owned(),
                    port: API_PORT,
                }],
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use generalbot_crds::v1alpha1::{FrontDoorTls, GatewayRef, IssuerRef};

    use super::*;
    use crate::fixtures::mk_gb;

    fn with(door: FrontDoorSpec) -> generalbot_crds::GeneralBot {
        let mut gb = mk_gb("bot");
        gb.spec.network.ingress = Some(door);
        gb
    }

    fn door(kind: FrontDoorKind) -> FrontDoorSpec {
        FrontDoorSpec {
            kind,
            host: "chat.example.com".to_owned(),
            class_name: Some("nginx".to_owned()),
            tls: Some(FrontDoorTls {
                secret_name: None,
                issuer: Some(IssuerRef {
                    name: "letsencrypt".to_owned(),
                    kind: IssuerKind::ClusterIssuer,
                }),
            }),
            gateway: None,
            annotations: std::collections::BTreeMap::from([
                ("example.com/extra".to_owned(), "1".to_owned()),
                // Ours win: the bot is reached over verified HTTPS.
                (
                    "nginx.ingress.kubernetes.io/backend-protocol".to_owned(),
                    "HTTP".to_owned(),
                ),
            ]),
        }
    }

    #[test]
    fn no_front_door_unless_asked() {
        let gb = mk_gb("bot");
        let ctx = BuildContext::new(&gb).unwrap();
        assert!(ingress(&ctx).is_none());
        assert!(http_route(&ctx).is_none());
    }

    #[test]
    fn an_ingress_has_tls_and_reaches_the_bot_over_verified_https() {
        let gb = with(door(FrontDoorKind::Ingress));
        let ctx = BuildContext::new(&gb).unwrap();
        assert!(http_route(&ctx).is_none());
        let i = ingress(&ctx).unwrap();
        let a = i.metadata.annotations.unwrap();
        assert_eq!(a["cert-manager.io/cluster-issuer"], "letsencrypt");
        assert_eq!(a["nginx.ingress.kubernetes.io/backend-protocol"], "HTTPS");
        assert_eq!(
            a["nginx.ingress.kubernetes.io/proxy-ssl-secret"],
            "bots/bot-tls"
        );
        assert_eq!(
            a["nginx.ingress.kubernetes.io/proxy-ssl-name"],
            "bot.bots.svc"
        );
        assert_eq!(a["example.com/extra"], "1");
        let spec = i.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let tls = &spec.tls.unwrap()[0];
        assert_eq!(tls.secret_name.as_deref(), Some("bot-ingress-tls"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("chat.example.com"));
        let backend = rule.http.as_ref().unwrap().paths[0]
            .backend
            .service
            .clone()
            .unwrap();
        assert_eq!(backend.name, "bot");
        assert_eq!(backend.port.unwrap().name.as_deref(), Some(API_PORT_NAME));
    }

    #[test]
    fn a_secret_of_the_users_is_used_as_it_is() {
        let mut d = door(FrontDoorKind::Ingress);
        d.tls = Some(FrontDoorTls {
            secret_name: Some("chat-cert".to_owned()),
            issuer: None,
        });
        let gb = with(d);
        let i = ingress(&BuildContext::new(&gb).unwrap()).unwrap();
        let a = i.metadata.annotations.unwrap();
        assert!(!a.keys().any(|k| k.starts_with("cert-manager.io/")));
        assert_eq!(
            i.spec.unwrap().tls.unwrap()[0].secret_name.as_deref(),
            Some("chat-cert")
        );
    }

    #[test]
    fn an_http_route_attaches_to_the_named_listener() {
        let mut d = door(FrontDoorKind::HttpRoute);
        d.tls = None;
        d.class_name = None;
        d.gateway = Some(GatewayRef {
            name: "public".to_owned(),
            namespace: Some("gateways".to_owned()),
            section_name: "https".to_owned(),
        });
        let gb = with(d);
        let ctx = BuildContext::new(&gb).unwrap();
        assert!(ingress(&ctx).is_none());
        let r = http_route(&ctx).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(v["spec"]["parentRefs"][0]["sectionName"], "https");
        assert_eq!(v["spec"]["parentRefs"][0]["namespace"], "gateways");
        assert_eq!(v["spec"]["hostnames"][0], "chat.example.com");
        assert_eq!(v["spec"]["rules"][0]["backendRefs"][0]["port"], API_PORT);
    }
}
