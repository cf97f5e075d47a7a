//! End-to-end: against the cluster `KUBECONFIG` names, install the CRD, run the operator
//! binary as a local process, apply the examples and check the children, the status, bad
//! input and deletion. Each run works in a namespace of its own and removes it after.
//!
//! Needs no pod networking, `exec`, `logs` or `port-forward`, and no container runtime:
//! pods need not start. Skips, saying why, when `KUBECONFIG` is unset or unreachable.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use generalbot_crds::GeneralBot;
use generalbot_operator::render::parse;
use generalbot_tests::e2e::{
    Run, certificate_serial, cluster_or_skip, condition, eventually, example, force_rotation,
    key_ids, old_root_retired, operator_writes, secret, start, with_rings_and_certificates,
};
use generalbot_tests::{note, plugin_bin, root};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

/// Watches every kind the operator writes, and the GeneralBots, for a minute from their
/// current versions: a steady state sees no event, and the write counter stays flat.
async fn steady_state(run: &Run) {
    async fn quiet<K>(api: Api<K>, labels: Option<&str>) -> Vec<String>
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
    {
        use futures::StreamExt;
        let mut lp = ListParams::default();
        let mut wp = kube::api::WatchParams::default().timeout(60);
        if let Some(l) = labels {
            lp = lp.labels(l);
            wp = wp.labels(l);
        }
        let version = api
            .list_metadata(&lp)
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap_or_default();
        let mut events = Vec::new();
        let mut stream = api.watch(&wp, &version).await.unwrap().boxed();
        while let Some(event) = stream.next().await {
            match event.unwrap() {
                kube::api::WatchEvent::Added(o)
                | kube::api::WatchEvent::Modified(o)
                | kube::api::WatchEvent::Deleted(o) => {
                    // Who wrote last, to say whose write broke the steady state.
                    let last = o
                        .meta()
                        .managed_fields
                        .iter()
                        .flatten()
                        .max_by_key(|f| f.time.as_ref().map(|t| t.0))
                        .map(|f| {
                            format!(
                                "{} {}",
                                f.manager.clone().unwrap_or_default(),
                                f.subresource.clone().unwrap_or_default()
                            )
                        })
                        .unwrap_or_default();
                    events.push(format!("{} {} by {last}", K::kind(&()), o.name_any()));
                }
                kube::api::WatchEvent::Bookmark(_) => {}
                kube::api::WatchEvent::Error(e) => panic!("watch failed: {e:?}"),
            }
        }
        events
    }
    let (c, ns) = (run.client.clone(), run.ns.as_str());
    let managed = Some("app.kubernetes.io/managed-by=generalbot-operator");
    let before = operator_writes(run.metrics).await;
    let (a, b, cc, d, e, f, g) = futures::join!(
        quiet(Api::<Deployment>::namespaced(c.clone(), ns), managed),
        quiet(Api::<Service>::namespaced(c.clone(), ns), managed),
        quiet(Api::<ServiceAccount>::namespaced(c.clone(), ns), managed),
        quiet(
            Api::<PodDisruptionBudget>::namespaced(c.clone(), ns),
            managed
        ),
        quiet(Api::<NetworkPolicy>::namespaced(c.clone(), ns), managed),
        quiet(Api::<Secret>::namespaced(c.clone(), ns), managed),
        quiet(Api::<GeneralBot>::namespaced(c.clone(), ns), None),
    );
    let seen: Vec<String> = [a, b, cc, d, e, f, g].concat();
    let after = operator_writes(run.metrics).await;
    assert!(seen.is_empty(), "changes in a steady state: {seen:?}");
    assert_eq!(before, after, "the operator wrote in a steady state");
    note(&format!(
        "e2e: steady state held for 60 s: 0 events, writes metric at {after}"
    ));
}

/// Waits until the Deployment's rollout is complete and the PodDisruptionBudget has
/// counted its healthy pods: after that, nothing but a write changes them.
async fn settled(deployments: &Api<Deployment>, pdbs: &Api<PodDisruptionBudget>, name: &str) {
    eventually("the rollout and the disruption budget to settle", || {
        let (deployments, pdbs) = (deployments.clone(), pdbs.clone());
        async move {
            let d = deployments.get(name).await.ok()?;
            let ds = d.status.as_ref()?;
            let complete = ds.observed_generation == d.metadata.generation
                && ds.conditions.iter().flatten().any(|c| {
                    c.type_ == "Progressing"
                        && c.reason.as_deref() == Some("NewReplicaSetAvailable")
                })
                && ds.available_replicas == d.spec.as_ref()?.replicas;
            let p = pdbs.get(name).await.ok()?;
            let ps = p.status.as_ref()?;
            let counted = ps.observed_generation == p.metadata.generation
                && ps.current_healthy == ds.available_replicas.unwrap_or(0)
                && ps.current_healthy >= ps.desired_healthy;
            (complete && counted).then_some(())
        }
    })
    .await;
    // The operator sees that last change and writes the status it implies.
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// The three policies: default deny both ways, ingress only from named peers on the
/// named ports, egress only to DNS and the declared services, never to every address.
async fn check_network_policies(np: &Api<NetworkPolicy>, bot: &str) {
    let deny = np.get(&format!("{bot}-default-deny")).await.unwrap();
    let spec = deny.spec.unwrap();
    assert_eq!(
        spec.policy_types.clone().unwrap_or_default(),
        ["Ingress", "Egress"]
    );
    assert!(spec.ingress.unwrap_or_default().is_empty());
    assert!(spec.egress.unwrap_or_default().is_empty());
    let ingress = np
        .get(&format!("{bot}-ingress"))
        .await
        .unwrap()
        .spec
        .unwrap();
    for rule in ingress.ingress.unwrap_or_default() {
        assert!(
            !rule.from.unwrap_or_default().is_empty(),
            "an ingress rule with no peer allows everyone"
        );
        assert!(
            !rule.ports.unwrap_or_default().is_empty(),
            "an ingress rule with no port"
        );
    }
    let egress = np
        .get(&format!("{bot}-egress"))
        .await
        .unwrap()
        .spec
        .unwrap();
    let rules = egress.egress.unwrap_or_default();
    assert!(!rules.is_empty(), "no egress at all (not even DNS)");
    let mut ports = Vec::new();
    for rule in rules {
        let to = rule.to.unwrap_or_default();
        assert!(
            !to.is_empty(),
            "an egress rule with no peer allows every address"
        );
        for peer in &to {
            if let Some(block) = &peer.ip_block {
                assert!(
                    block.cidr != "0.0.0.0/0" && block.cidr != "::/0",
                    "{block:?}"
                );
            }
        }
        let rule_ports = rule.ports.unwrap_or_default();
        assert!(!rule_ports.is_empty(), "an egress rule with no port");
        ports.extend(rule_ports.into_iter().filter_map(|p| p.port));
    }
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    for want in [53, 5432, 443] {
        assert!(
            ports.contains(&IntOrString::Int(want)),
            "egress lacks port {want}: {ports:?}"
        );
    }
}

/// The full example's front door (an Ingress) and monitoring (a PrometheusRule and a
/// ServiceMonitor, checked by the API server against the Prometheus Operator's own
/// CRDs): created, a hand edit put back, and deleted once the spec no longer asks.
async fn front_door_and_monitoring(run: &Run, bots: &Api<GeneralBot>) {
    use generalbot_operator::foreign::{PrometheusRule, ServiceMonitor};
    use k8s_openapi::api::networking::v1::Ingress;
    let ns = run.ns.as_str();
    let ingresses: Api<Ingress> = Api::namespaced(run.client.clone(), ns);
    let ingress = eventually("the full example's Ingress", || {
        let ingresses = ingresses.clone();
        async move { ingresses.get_opt("sales-bot").await.ok().flatten() }
    })
    .await;
    let a = ingress.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(a["cert-manager.io/cluster-issuer"], "letsencrypt");
    assert_eq!(a["nginx.ingress.kubernetes.io/backend-protocol"], "HTTPS");
    assert_eq!(a["nginx.ingress.kubernetes.io/proxy-ssl-verify"], "on");
    let spec = ingress.spec.clone().unwrap();
    let tls = &spec.tls.unwrap()[0];
    assert_eq!(
        tls.hosts.as_deref(),
        Some(&["sales-chat.example.com".to_owned()][..])
    );
    assert_eq!(tls.secret_name.as_deref(), Some("sales-bot-ingress-tls"));
    // A hand edit of the host is put back.
    ingresses
        .patch(
            "sales-bot",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"rules": [{"host": "evil.example.com", "http": spec.rules.unwrap()[0].http}]}})),
        )
        .await
        .unwrap();
    eventually("the Ingress's host to be put back", || {
        let ingresses = ingresses.clone();
        async move {
            let i = ingresses.get("sales-bot").await.ok()?;
            let host = i.spec?.rules?.first()?.host.clone()?;
            (host == "sales-chat.example.com").then_some(())
        }
    })
    .await;

    let rules: Api<PrometheusRule> = Api::namespaced(run.client.clone(), ns);
    let monitors: Api<ServiceMonitor> = Api::namespaced(run.client.clone(), ns);
    let (state, reason, message) = eventually("MonitoringReady", || {
        let bots = bots.clone();
        async move { condition(&bots.get("sales-bot").await.ok()?, "MonitoringReady") }
    })
    .await;
    if run.third_party_served {
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("True", "Applied"),
            "{message}"
        );
        let rule = rules.get("sales-bot").await.unwrap();
        assert_eq!(
            rule.metadata.labels.as_ref().unwrap()["release"],
            "kube-prometheus-stack"
        );
        let alerts: Vec<&str> = rule.spec.groups[0]
            .rules
            .iter()
            .map(|r| r.alert.as_str())
            .collect();
        assert_eq!(
            alerts,
            [
                "GeneralBotFailedLogins",
                "GeneralBotLockouts",
                "GeneralBotPrivilegeEscalation",
                "GeneralBotCertificateExpiring",
                "GeneralBotRotationBlocked",
                "GeneralBotAuditChainBroken",
                "GeneralBotNotReady",
                "GeneralBotBackupOverdue"
            ]
        );
        assert!(rule.spec.groups[0].rules[0].expr.ends_with(">= 5"));
        let monitor = monitors.get("sales-bot").await.unwrap();
        let endpoint = &monitor.spec.endpoints[0];
        assert_eq!(endpoint.scheme, "https");
        assert_eq!(
            endpoint.tls_config.server_name,
            format!("sales-bot.{ns}.svc")
        );
        // A hand edit of a threshold is put back.
        let mut edited = serde_json::to_value(&rule.spec).unwrap();
        edited["groups"][0]["rules"][0]["expr"] = serde_json::json!("vector(0)");
        rules
            .patch(
                "sales-bot",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": edited})),
            )
            .await
            .unwrap();
        eventually("the alert's expression to be put back", || {
            let rules = rules.clone();
            async move {
                let r = rules.get("sales-bot").await.ok()?;
                r.spec.groups[0].rules[0]
                    .expr
                    .ends_with(">= 5")
                    .then_some(())
            }
        })
        .await;
    } else {
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "PrometheusOperatorMissing"),
            "{message}"
        );
    }
    let (state, _, message) =
        condition(&bots.get("sales-bot").await.unwrap(), "FrontDoorReady").expect("FrontDoorReady");
    assert_eq!(state, "True", "{message}");

    // No front door and no alerts asked for: both deleted, the conditions gone.
    bots.patch(
        "sales-bot",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {
            "network": {"ingress": null},
            "monitoring": {"alerts": false, "serviceMonitor": false}
        }})),
    )
    .await
    .unwrap();
    let served = run.third_party_served;
    eventually(
        "the Ingress and the monitoring objects to be deleted",
        || {
            let (ingresses, rules, monitors, bots) = (
                ingresses.clone(),
                rules.clone(),
                monitors.clone(),
                bots.clone(),
            );
            async move {
                let mut gone = ingresses.get_opt("sales-bot").await.ok()?.is_none();
                if served {
                    gone &= rules.get_opt("sales-bot").await.ok()?.is_none()
                        && monitors.get_opt("sales-bot").await.ok()?.is_none();
                }
                let gb = bots.get("sales-bot").await.ok()?;
                gone &= condition(&gb, "FrontDoorReady").is_none()
                    && condition(&gb, "MonitoringReady").is_none();
                gone.then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn e2e_operator_reconciles_examples_bad_input_and_deletion() {
    let Some(client) = cluster_or_skip().await else {
        return;
    };
    let run = start(client.clone(), 3, &[]).await;
    let ns = run.ns.as_str();
    note(&format!("e2e: namespace {ns}"));
    let bots: Api<GeneralBot> = Api::namespaced(client.clone(), ns);

    // A bot whose credentials Secrets do not exist yet: Ready=False naming the field.
    let gb = example("minimal.yaml", ns);
    bots.create(&PostParams::default(), &gb).await.unwrap();
    let (_, reason, message) = eventually("InvalidSpec for the missing Secret", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            condition(&gb, "Ready").filter(|(s, r, _)| s == "False" && r == "InvalidSpec")
        }
    })
    .await;
    assert!(
        message.contains("spec.services.postgres.credentialsSecret.name"),
        "{reason}: {message}"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    assert!(
        deployments.get_opt("support-bot").await.unwrap().is_none(),
        "nothing half-applied"
    );

    // The API server refuses what CEL can catch, with our message.
    let bad_path = root().join("tests/invalid/42-vectordb-without-service.yaml");
    let bad = parse(
        &bad_path,
        &std::fs::read_to_string(&bad_path).unwrap(),
        Some(ns),
    )
    .unwrap();
    let refused = bots.create(&PostParams::default(), &bad).await;
    match refused {
        Err(kube::Error::Api(s)) => assert!(
            s.message.contains("spec.services.vectorDb"),
            "{}",
            s.message
        ),
        other => panic!("an invalid GeneralBot was accepted: {other:?}"),
    }

    // Once the Secrets exist, the operator carries on by itself.
    secret(&run, "pg-credentials", &["username", "password"]).await;
    secret(&run, "pg-owner", &["username", "password"]).await;
    secret(&run, "s3-credentials", &["accessKeyId", "secretAccessKey"]).await;
    let d = eventually("the Deployment", || {
        let deployments = deployments.clone();
        async move { deployments.get_opt("support-bot").await.ok().flatten() }
    })
    .await;
    let pod = d.spec.clone().unwrap().template.spec.unwrap();
    let sc = pod.containers[0].security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let owner = &d.owner_references()[0];
    assert_eq!(owner.kind, "GeneralBot");

    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let svc: Api<Service> = Api::namespaced(client.clone(), ns);
    let pdb: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let np: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    eventually("every child", || {
        let (sa, svc, pdb, np, secrets) = (
            sa.clone(),
            svc.clone(),
            pdb.clone(),
            np.clone(),
            secrets.clone(),
        );
        async move {
            sa.get_opt("support-bot").await.ok()??;
            svc.get_opt("support-bot").await.ok()??;
            pdb.get_opt("support-bot").await.ok()??;
            secrets.get_opt("support-bot-keys").await.ok()??;
            let policies = np.list(&ListParams::default()).await.ok()?;
            // Default deny, ingress, egress, and the backup pods' own policy.
            (policies.items.len() == 4).then_some(())
        }
    })
    .await;
    // Backups: a CronJob on the spec's schedule, hardened like the Deployment, whose pods
    // the bot's Service and policies do not select, under a policy with no ingress.
    let cron_jobs: Api<k8s_openapi::api::batch::v1::CronJob> = Api::namespaced(client.clone(), ns);
    let cron = cron_jobs.get("support-bot-backup").await.unwrap();
    let cron_spec = cron.spec.clone().unwrap();
    assert_eq!(cron_spec.schedule, "0 */12 * * *");
    assert_eq!(cron_spec.concurrency_policy.as_deref(), Some("Forbid"));
    let job_pod = cron_spec.job_template.spec.unwrap().template;
    let labels = job_pod.metadata.unwrap().labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/component"], "backup");
    assert_ne!(labels["app.kubernetes.io/name"], "generalbot");
    let job_pod = job_pod.spec.unwrap();
    assert_eq!(job_pod.containers[0].args, Some(vec!["backup".to_owned()]));
    let sc = job_pod.containers[0].security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(job_pod.automount_service_account_token, Some(false));
    let backup_policy = np.get("support-bot-backup").await.unwrap().spec.unwrap();
    assert!(backup_policy.ingress.is_none());
    assert_eq!(
        backup_policy.policy_types,
        Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
    );

    // Status: observed generation, and a Ready condition that says where things stand.
    let gb = eventually("a status for the current generation", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            let st = gb.status.as_ref()?;
            let current = st.observed_generation == gb.metadata.generation;
            let reconciled = condition(&gb, "NetworkIsolated").is_some_and(|(s, _, _)| s == "True");
            (current && reconciled).then_some(gb)
        }
    })
    .await;
    let (ready, reason, message) = condition(&gb, "Ready").unwrap();
    note(&format!(
        "e2e: Ready={ready} reason={reason} message={message}"
    ));
    assert_ne!(reason, "InvalidSpec");

    // Ready once the simulated node runs both pods.
    eventually("Ready=True", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            condition(&gb, "Ready").filter(|(s, _, _)| s == "True")
        }
    })
    .await;

    // Status from the first reconcile: rings and certificates are there at once.
    let gb = bots.get("support-bot").await.unwrap();
    let st = gb.status.clone().unwrap();
    assert_eq!(st.key_rings.len(), 4, "{:?}", st.key_rings);
    assert_eq!(st.certificates.len(), 3, "{:?}", st.certificates);
    assert_eq!(
        condition(&gb, "KeysReady").map(|c| c.0),
        Some("True".to_owned())
    );

    // The NetworkPolicies say what the README promises.
    check_network_policies(&np, "support-bot").await;

    // Steady state: once the cluster's own controllers have settled (the Deployment's
    // rollout finished, the disruption budget counted its pods), for a minute no owned
    // object and no GeneralBot changes, and the operator's write counter stays flat.
    settled(&deployments, &pdb, "support-bot").await;
    steady_state(&run).await;

    // A deleted child comes back.
    svc.delete("support-bot", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted Service to come back", || {
        let svc = svc.clone();
        async move {
            let s = svc.get_opt("support-bot").await.ok()??;
            s.metadata.deletion_timestamp.is_none().then_some(())
        }
    })
    .await;

    // A hand edit of a field the operator owns is put back.
    deployments
        .patch(
            "support-bot",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "spec": {"replicas": 5}
            })),
        )
        .await
        .unwrap();
    eventually("the hand edit to be reverted", || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("support-bot").await.ok()?;
            (d.spec?.replicas == Some(2)).then_some(())
        }
    })
    .await;

    // The token algorithm cannot change under a running bot (a CEL transition rule).
    let refused = bots
        .patch(
            "support-bot",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "spec": {"security": {"keys": {"jwtAlgorithm": "ES256"}}}
            })),
        )
        .await;
    match refused {
        Err(kube::Error::Api(s)) => assert!(s.message.contains("jwtAlgorithm"), "{}", s.message),
        other => panic!("the token algorithm changed in place: {other:?}"),
    }

    // A hardening field removed by hand comes back.
    deployments
        .patch(
            "support-bot",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(serde_json::json!([
                    {"op": "remove", "path": "/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation"},
                    {"op": "remove", "path": "/spec/template/spec/automountServiceAccountToken"}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    eventually("the removed hardening fields to come back", || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("support-bot").await.ok()?;
            let pod = d.spec?.template.spec?;
            let sc = pod.containers.first()?.security_context.clone()?;
            (sc.allow_privilege_escalation == Some(false)
                && pod.automount_service_account_token == Some(false))
            .then_some(())
        }
    })
    .await;

    // Keys and certificates: every ring and certificate is in the status.
    let gb = with_rings_and_certificates(&bots, "support-bot").await;
    let st = gb.status.clone().unwrap();
    let jwt_before = st
        .key_rings
        .iter()
        .find(|r| r.name == "jwt")
        .unwrap()
        .active_key_id
        .clone();
    let root_before = certificate_serial(&gb, "root").unwrap();
    let tls = secrets.get("support-bot-tls").await.unwrap();
    assert!(tls.data.as_ref().unwrap().contains_key("tls.crt"));

    // The kubectl plugin shows it all on one screen, and as JSON.
    let plugin = |args: &[&str]| {
        let out = std::process::Command::new(plugin_bin())
            .args(args)
            .args(["--namespace", ns])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // (A rollout may still be going on: ask until the plugin shows it Ready.)
    let text = eventually("kubectl generalbot status to show Ready True", || {
        let (code, text, _) = plugin(&["status", "support-bot"]);
        let ready = format!("GeneralBot {ns}/support-bot: Ready True");
        async move { (code == Some(0) && text.contains(&ready)).then_some(text) }
    })
    .await;
    assert!(
        text.contains(&jwt_before) && text.contains("days left"),
        "{text}"
    );
    note(&format!("e2e: kubectl generalbot status:\n{text}"));
    let (_, json, _) = plugin(&["status", "support-bot", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["key_rings"].as_array().unwrap().len(), 4);
    assert_eq!(json["next_rotation"], serde_json::json!(st.next_rotation));
    assert!(
        st.next_rotation.is_some(),
        "the status says when the next rotation is due"
    );
    let (code, _, err) = plugin(&["rotate", "support-bot", "everything"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("jwt, data, field, hmac, ca, all"), "{err}");

    // Force a rotation of the token keys and of the CA, and watch both go through.
    force_rotation(&bots, "support-bot", "jwt,ca@e2e-1").await;
    let gb = eventually(
        "the CA rotation to complete and a new token key to be active",
        || {
            let bots = bots.clone();
            let (jwt_before, root_before) = (jwt_before.clone(), root_before.clone());
            async move {
                let gb = bots.get("support-bot").await.ok()?;
                let st = gb.status.as_ref()?;
                let jwt = st.key_rings.iter().find(|r| r.name == "jwt")?;
                let serving = certificate_serial(&gb, "serving")?;
                let ca_done = certificate_serial(&gb, "root")? != root_before;
                // The old token key stays (phase Activated) until no token signed with it
                // can still be valid.
                let jwt_done = jwt.active_key_id != jwt_before && jwt.keys == 2;
                (ca_done && jwt_done && !serving.is_empty()).then_some(gb)
            }
        },
    )
    .await;
    let root_secret = secrets.get("support-bot-ca-root").await.unwrap();
    let phase = root_secret
        .annotations()
        .get("generalbots.io/rotation.ca")
        .cloned()
        .unwrap_or_default();
    note(&format!(
        "e2e: after forced rotation, CA phase {phase}; key rings {:?}",
        gb.status.unwrap().key_rings
    ));
    old_root_retired(&secrets, "support-bot").await;

    // The full example works as it is too (given its Secrets).
    for (name, keys) in [
        ("sales-db-app", &["username", "password"][..]),
        ("sales-db-owner", &["username", "password"]),
        ("sales-db-ca", &["ca.crt"]),
        ("redis-credentials", &["password"]),
        ("redis-ca", &["ca.crt"]),
        ("qdrant-api-key", &["apiKey"]),
        ("oidc-client", &["clientId", "clientSecret"]),
        ("smtp-credentials", &["username", "password"]),
    ] {
        secret(&run, name, keys).await;
    }
    let full = example("full.yaml", ns);
    bots.create(&PostParams::default(), &full).await.unwrap();
    // The plugin asks for a rotation as the README says.
    let (code, said, err) = plugin(&["rotate", "sales-bot", "hmac"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(said.contains("asked the operator to rotate hmac"), "{said}");
    let value = bots
        .get("sales-bot")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()["generalbots.io/rotate"]
        .clone();
    assert!(value.starts_with("hmac@"), "{value}");
    eventually("the full example's Deployment", || {
        let deployments = deployments.clone();
        async move { deployments.get_opt("sales-bot").await.ok().flatten() }
    })
    .await;

    front_door_and_monitoring(&run, &bots).await;

    // Turning backups off removes the CronJob and its policy; nothing stale keeps running.
    eventually("the full example's backup CronJob", || {
        let cron_jobs = cron_jobs.clone();
        async move { cron_jobs.get_opt("sales-bot-backup").await.ok().flatten() }
    })
    .await;
    bots.patch(
        "sales-bot",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"backup": {"enabled": false}}})),
    )
    .await
    .unwrap();
    eventually("the backup CronJob and its policy to be deleted", || {
        let (cron_jobs, np) = (cron_jobs.clone(), np.clone());
        async move {
            let gone = cron_jobs.get_opt("sales-bot-backup").await.ok()?.is_none()
                && np.get_opt("sales-bot-backup").await.ok()?.is_none();
            gone.then_some(())
        }
    })
    .await;

    // Deleting a GeneralBot removes what it owns, and keeps (policy Retain, the
    // default) the keys and the CA that its data needs.
    let rings_before = key_ids(&bots.get("support-bot").await.unwrap());
    bots.delete("support-bot", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("the children to be garbage collected", || {
        let (deployments, svc, bots) = (deployments.clone(), svc.clone(), bots.clone());
        async move {
            let gone = deployments.get_opt("support-bot").await.ok()?.is_none()
                && svc.get_opt("support-bot").await.ok()?.is_none()
                && bots.get_opt("support-bot").await.ok()?.is_none();
            gone.then_some(())
        }
    })
    .await;
    for kept in ["support-bot-keys", "support-bot-ca-root", "support-bot-ca"] {
        let s = secrets.get(kept).await.unwrap();
        assert!(
            s.owner_references().is_empty(),
            "{kept} has an owner reference the garbage collector would follow"
        );
    }

    // Created again with the same name, it adopts the kept keys: same key ids.
    bots.create(&PostParams::default(), &example("minimal.yaml", ns))
        .await
        .unwrap();
    let adopted = eventually("the new GeneralBot to report its rings", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            (gb.status.as_ref()?.key_rings.len() == 4).then_some(gb)
        }
    })
    .await;
    assert_eq!(
        key_ids(&adopted),
        rings_before,
        "the kept keys were adopted"
    );

    // A lost key Secret is reported, never silently replaced by fresh keys.
    secrets
        .delete("support-bot-keys", &DeleteParams::default())
        .await
        .unwrap();
    let (_, _, message) = eventually("KeysMissing", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            condition(&gb, "KeysReady").filter(|(s, r, _)| s == "False" && r == "KeysMissing")
        }
    })
    .await;
    assert!(message.contains("accept-key-loss"), "{message}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        secrets.get_opt("support-bot-keys").await.unwrap().is_none(),
        "fresh keys were made in place of the lost ones"
    );

    drop(run);
}
