//! The builders as pure functions: a GeneralBot in, objects out, checked field by field.

use std::collections::BTreeMap;

use generalbot_crds::contract::{self, labels};
use generalbot_crds::v1alpha1::SecretRef;
use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::*;
use crate::fixtures::{mk_full_gb, mk_gb};

fn policy<'a>(d: &'a Desired, suffix: &str) -> &'a NetworkPolicy {
    d.network_policies
        .iter()
        .find(|p| p.metadata.name.as_deref().unwrap().ends_with(suffix))
        .unwrap()
}

#[test]
fn pods_are_hardened_past_restricted() {
    let d = desired(&mk_full_gb("bot")).unwrap();
    let pod = d.deployment.spec.unwrap().template.spec.unwrap();
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(contract::RUN_AS_USER));
    assert_eq!(psc.run_as_group, Some(contract::RUN_AS_GROUP));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.enable_service_links, Some(false));
    assert!(!pod.topology_spread_constraints.unwrap().is_empty());
    let c = pod.containers.first().unwrap();
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.privileged, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    let res = c.resources.clone().unwrap();
    assert!(res.requests.unwrap().contains_key("memory"));
    assert!(res.limits.unwrap().contains_key("cpu"));
    assert!(c.startup_probe.is_some() && c.readiness_probe.is_some() && c.liveness_probe.is_some());
    let tmp = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == contract::TMP_DIR);
    assert!(
        tmp.is_some(),
        "a writable /tmp, since the root is read-only"
    );
}

#[test]
fn user_namespaces_follow_the_spec() {
    let mut gb = mk_gb("bot");
    let host_users = |gb: &GeneralBot| {
        desired(gb)
            .unwrap()
            .deployment
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .host_users
    };
    assert_eq!(host_users(&gb), None);
    gb.spec.server.user_namespaces = true;
    assert_eq!(host_users(&gb), Some(false));
}

#[test]
fn secrets_reach_the_pod_only_as_read_only_files() {
    let d = desired(&mk_full_gb("bot")).unwrap();
    let pod = d.deployment.spec.unwrap().template.spec.unwrap();
    let c = pod.containers.first().unwrap();
    for e in c.env.as_ref().unwrap() {
        assert!(e.value_from.is_none(), "{} comes from a reference", e.name);
        if e.name.ends_with("_FILE") {
            assert!(
                e.value
                    .as_deref()
                    .unwrap()
                    .starts_with(contract::SECRETS_DIR),
                "{}",
                e.name
            );
        }
        let v = e.value.as_deref().unwrap_or_default();
        assert!(
            !(v.contains("://") && v.contains('@')),
            "credentials in a URL: {}",
            e.name
        );
    }
    assert!(c.env_from.is_none());
    for v in pod.volumes.unwrap() {
        if let Some(s) = v.secret {
            assert_eq!(s.default_mode, Some(0o400), "{}", v.name);
            for item in s.items.unwrap() {
                assert_eq!(item.mode, Some(0o400));
            }
        }
    }
    for m in c.volume_mounts.as_ref().unwrap() {
        if m.mount_path.starts_with(contract::SECRETS_DIR) {
            assert_eq!(m.read_only, Some(true), "{}", m.mount_path);
        }
    }
}

#[test]
fn migrations_run_as_the_owner_in_an_init_container_that_alone_sees_its_credentials() {
    let plain = desired(&mk_gb("bot")).unwrap();
    let pod = plain.deployment.spec.unwrap().template.spec.unwrap();
    assert!(
        pod.init_containers.is_none(),
        "no owner, no migration container"
    );

    let mut gb = mk_gb("bot");
    gb.spec.services.postgres.owner_credentials_secret = Some(SecretRef {
        name: "pg-owner".to_owned(),
    });
    let pod = desired(&gb)
        .unwrap()
        .deployment
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let init = pod.init_containers.as_ref().unwrap();
    assert_eq!(init.len(), 1);
    let migrate = &init[0];
    assert_eq!(migrate.args.as_deref(), Some(&["migrate".to_owned()][..]));
    assert_eq!(migrate.image, pod.containers[0].image);
    let sc = migrate.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let env = |c: &k8s_openapi::api::core::v1::Container, name: &str| {
        c.env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    let owner_dir = contract::database_owner_dir();
    assert_eq!(
        env(migrate, contract::env::DATABASE_OWNER_USER_FILE),
        Some(format!("{owner_dir}/username"))
    );
    assert!(env(migrate, contract::env::DATABASE_HOST).is_some());
    assert!(env(migrate, contract::env::DATABASE_USER_FILE).is_some());
    let mounted = |c: &k8s_openapi::api::core::v1::Container| -> Vec<String> {
        c.volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.clone())
            .collect()
    };
    assert!(mounted(migrate).contains(&owner_dir));
    assert!(
        !mounted(migrate).contains(&contract::KEYS_DIR.to_owned()),
        "no key ring in the migration container"
    );
    let server = &pod.containers[0];
    assert!(
        !mounted(server).contains(&owner_dir),
        "the server never sees the owner"
    );
    assert!(env(server, contract::env::DATABASE_OWNER_USER_FILE).is_none());
    let owner_volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("pg-owner"))
        .unwrap();
    assert_eq!(
        owner_volume.secret.as_ref().unwrap().default_mode,
        Some(0o400)
    );
}

#[test]
fn bots_and_the_first_administrator_reach_the_server_only() {
    let plain = desired(&mk_gb("bot")).unwrap();
    let pod = plain.deployment.spec.unwrap().template.spec.unwrap();
    let server = &pod.containers[0];
    let has_env = |c: &k8s_openapi::api::core::v1::Container, name: &str| {
        c.env.iter().flatten().any(|e| e.name == name)
    };
    assert!(!has_env(server, contract::env::BOTS_DIR));
    assert!(!has_env(server, contract::env::BOOTSTRAP_ADMIN_EMAIL_FILE));

    let mut gb = mk_full_gb("bot");
    gb.spec.server.bootstrap_admin_secret = Some(SecretRef {
        name: "first-admin".to_owned(),
    });
    gb.spec.services.postgres.owner_credentials_secret = Some(SecretRef {
        name: "pg-owner".to_owned(),
    });
    let pod = desired(&gb)
        .unwrap()
        .deployment
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let server = &pod.containers[0];
    let bots = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "bots")
        .unwrap();
    let projected = bots.projected.as_ref().unwrap();
    let sources: Vec<&str> = projected
        .sources
        .iter()
        .flatten()
        .map(|s| s.config_map.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(sources, ["support-bots"]);
    let mount = |c: &k8s_openapi::api::core::v1::Container, path: &str| {
        c.volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == path)
            .cloned()
    };
    assert_eq!(
        mount(server, contract::BOTS_DIR).unwrap().read_only,
        Some(true)
    );
    assert!(has_env(server, contract::env::BOTS_DIR));
    let admin = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("first-admin"))
        .unwrap();
    assert_eq!(admin.secret.as_ref().unwrap().default_mode, Some(0o400));
    assert!(mount(server, contract::BOOTSTRAP_ADMIN_DIR).is_some());
    assert!(has_env(
        server,
        contract::env::BOOTSTRAP_ADMIN_PASSWORD_FILE
    ));
    let migrate = &pod.init_containers.as_ref().unwrap()[0];
    assert!(mount(migrate, contract::BOOTSTRAP_ADMIN_DIR).is_none());
    assert!(mount(migrate, contract::BOTS_DIR).is_none());
}

#[test]
fn default_deny_covers_both_directions() {
    let d = desired(&mk_gb("bot")).unwrap();
    let deny = policy(&d, "-default-deny").spec.clone().unwrap();
    assert_eq!(deny.policy_types.unwrap(), ["Ingress", "Egress"]);
    assert!(deny.ingress.is_none() && deny.egress.is_none());
    assert_eq!(
        deny.pod_selector.unwrap().match_labels.unwrap(),
        selector_labels("bot")
    );
}

#[test]
fn no_rule_allows_all_traffic() {
    for gb in [mk_gb("bot"), mk_full_gb("bot")] {
        let d = desired(&gb).unwrap();
        for p in &d.network_policies {
            let spec = p.spec.clone().unwrap();
            for r in spec.egress.unwrap_or_default() {
                assert!(
                    !r.to.clone().unwrap_or_default().is_empty(),
                    "egress to everyone"
                );
                assert!(
                    !r.ports.clone().unwrap_or_default().is_empty(),
                    "egress on every port"
                );
            }
            for r in spec.ingress.unwrap_or_default() {
                assert!(
                    !r.from.clone().unwrap_or_default().is_empty(),
                    "ingress from everyone"
                );
                assert!(!r.ports.clone().unwrap_or_default().is_empty());
            }
        }
    }
}

#[test]
fn the_operator_is_admitted_to_the_api_port_when_it_says_where_it_runs() {
    let peer = generalbot_crds::v1alpha1::NetworkPeer {
        pod_selector: Some(BTreeMap::from([(
            "app.kubernetes.io/name".to_owned(),
            "generalbot-operator".to_owned(),
        )])),
        namespace_selector: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            "generalbot-system".to_owned(),
        )])),
        cidrs: Vec::new(),
        allow_any_address: false,
    };
    let d = super::desired_for(&mk_gb("bot"), Some(&peer)).unwrap();
    let rules = policy(&d, "-ingress")
        .spec
        .clone()
        .unwrap()
        .ingress
        .unwrap();
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    let from = rule.from.clone().unwrap();
    assert_eq!(
        from[0]
            .namespace_selector
            .clone()
            .unwrap()
            .match_labels
            .unwrap()["kubernetes.io/metadata.name"],
        "generalbot-system"
    );
    assert_eq!(
        rule.ports.clone().unwrap()[0].port,
        Some(
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                generalbot_crds::contract::API_PORT_NAME.to_owned()
            )
        )
    );
}

#[test]
fn ingress_is_empty_until_peers_are_configured() {
    let d = desired(&mk_gb("bot")).unwrap();
    assert!(
        policy(&d, "-ingress")
            .spec
            .clone()
            .unwrap()
            .ingress
            .is_none()
    );
    let d = desired(&mk_full_gb("bot")).unwrap();
    let rules = policy(&d, "-ingress")
        .spec
        .clone()
        .unwrap()
        .ingress
        .unwrap();
    assert_eq!(
        rules.len(),
        2,
        "one rule for the proxy, one for the scraper"
    );
}

fn egress_ports(gb: &GeneralBot) -> Vec<i32> {
    let d = desired(gb).unwrap();
    policy(&d, "-egress")
        .spec
        .clone()
        .unwrap()
        .egress
        .unwrap()
        .iter()
        .flat_map(|r| r.ports.clone().unwrap())
        .filter_map(|p| match p.port {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => Some(n),
            _ => None,
        })
        .collect()
}

#[test]
fn egress_goes_to_dns_and_declared_services_only() {
    assert_eq!(egress_ports(&mk_gb("bot")), [53, 53, 5432]);
    let full = mk_full_gb("bot");
    assert_eq!(
        egress_ports(&full),
        [53, 53, 5432, 6379, 443, 6334, 443, 587]
    );
}

#[test]
fn egress_allows_the_port_the_peer_pods_listen_on() {
    // A NetworkPolicy matches after the Service translated the port: an S3 Service on
    // 443 in front of pods on 9000 needs egress to 9000.
    let mut gb = mk_full_gb("bot");
    if let Some(s3) = gb.spec.services.object_storage.as_mut() {
        s3.endpoint.target_port = Some(9000);
    }
    gb.spec.network.dns.port = 5353;
    assert_eq!(
        egress_ports(&gb),
        [5353, 5353, 5432, 6379, 9000, 6334, 443, 587]
    );
}

#[test]
fn feature_services_get_egress_only_while_the_feature_is_on() {
    let mut gb = mk_full_gb("bot");
    gb.spec.server.features.vectordb = false;
    gb.spec.server.features.email = false;
    assert_eq!(egress_ports(&gb), [53, 53, 5432, 6379, 443, 443]);
}

#[test]
fn every_object_is_owned_and_labelled() {
    let gb = mk_full_gb("bot");
    let d = desired(&gb).unwrap();
    let metas = [
        &d.service_account.metadata,
        &d.deployment.metadata,
        &d.service.metadata,
        &d.pod_disruption_budget.metadata,
    ]
    .into_iter()
    .chain(d.network_policies.iter().map(|p| &p.metadata));
    for m in metas {
        let owner = m.owner_references.as_ref().unwrap().first().unwrap();
        assert_eq!(owner.kind, "GeneralBot");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.uid, gb.metadata.uid.clone().unwrap());
        assert_eq!(
            m.labels.as_ref().unwrap().get(labels::MANAGED_BY).unwrap(),
            labels::MANAGER
        );
        assert_eq!(m.namespace.as_deref(), Some("bots"));
    }
}

#[test]
fn user_pod_labels_never_override_ours() {
    let mut gb = mk_gb("bot");
    gb.spec
        .server
        .pod_labels
        .insert(labels::INSTANCE.to_owned(), "someone-else".to_owned());
    let d = desired(&gb).unwrap();
    let l = d
        .deployment
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .labels
        .unwrap();
    assert_eq!(l.get(labels::INSTANCE).unwrap(), "bot");
}

#[test]
fn key_secret_holds_one_fresh_key_per_ring() {
    use base64::Engine;
    let gb = mk_gb("bot");
    let ctx = BuildContext::new(&gb).unwrap();
    let a = key_secret(&ctx, jiff::Timestamp::UNIX_EPOCH).unwrap();
    let b = key_secret(&ctx, jiff::Timestamp::UNIX_EPOCH).unwrap();
    let data = a.0.data.clone().unwrap();
    for file in contract::key_files::ALL {
        let ring: contract::KeyRingFile = serde_json::from_slice(&data[file].0).unwrap();
        assert_eq!(ring.keys.len(), 1);
        assert_eq!(ring.active, ring.keys[0].id);
        assert_eq!(ring.algorithm, None);
        let key = base64::engine::general_purpose::STANDARD
            .decode(&ring.keys[0].material)
            .unwrap();
        assert_eq!(key.len(), 32, "{file}");
        assert!(key.iter().any(|b| *b != 0));
        assert_ne!(
            &data[file],
            &b.0.data.as_ref().unwrap()[file],
            "two generations share no key"
        );
    }
    let jwt: contract::KeyRingFile =
        serde_json::from_slice(&data[contract::key_files::JWT].0).unwrap();
    assert_eq!(jwt.algorithm.as_deref(), Some("RS256"));
    assert!(data.contains_key(contract::key_files::OPS_TOKEN));
    let debug = format!("{a:?}");
    assert!(!debug.contains(&jwt.keys[0].material[..16]), "{debug}");
}

#[test]
fn building_is_deterministic() {
    let gb = mk_full_gb("bot");
    assert_eq!(desired(&gb).unwrap(), desired(&gb).unwrap());
}
