//! Controller behaviour against kube's mock API service: what a reconcile asks the API
//! server, in which case, and that a steady state asks for no write at all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use generalbot_crds::GeneralBot;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::*;
use crate::builders::desired;
use crate::fixtures::{mk_available_deployment, mk_gb, t};
use crate::keyrings::DEFAULT_PROPAGATION;
use crate::metrics::Metrics;

/// One request the mock API server saw.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    body: Value,
}

impl Seen {
    fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

/// How the mock API server answers a GET of a user Secret.
#[derive(Clone, Copy)]
enum UserSecret {
    Present,
    Missing,
}

fn store_of<K>(objects: Vec<K>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    // The writer may go: the reader keeps what it holds and stays ready.
    std::mem::forget(writer);
    reader
}

/// Stores holding what the API server holds once a GeneralBot is fully reconciled,
/// with the fields the server adds on its own (defaults, status, cluster IP).
fn settled_stores(gb: &GeneralBot) -> Stores {
    let d = desired(gb).unwrap();
    let mut service = d.service.clone();
    if let Some(spec) = service.spec.as_mut() {
        spec.cluster_ip = Some("10.96.0.10".to_owned());
        spec.session_affinity = Some("None".to_owned());
    }
    let mut deployment = mk_available_deployment(gb);
    deployment.metadata.resource_version = Some("42".to_owned());
    if let Some(spec) = deployment.spec.as_mut() {
        spec.progress_deadline_seconds = Some(600);
    }
    // The key and certificate Secrets as the cache holds them: metadata only.
    let mut keys = full_key_secret(gb);
    keys.data = None;
    let mut cached_secrets = vec![keys];
    for mut s in cert_secrets(gb) {
        s.data = None;
        cached_secrets.push(s);
    }
    Stores {
        service_accounts: store_of(vec![applied(&d.service_account, d.service_account.clone())]),
        deployments: store_of(vec![applied(&d.deployment, deployment)]),
        services: store_of(vec![applied(&d.service, service)]),
        pdbs: store_of(vec![applied(
            &d.pod_disruption_budget,
            d.pod_disruption_budget.clone(),
        )]),
        network_policies: store_of(
            d.network_policies
                .iter()
                .chain(d.backup.iter().map(|(_, p)| p))
                .map(|p| applied(p, p.clone()))
                .collect(),
        ),
        cron_jobs: store_of(
            d.backup
                .iter()
                .map(|(c, _)| applied(c, c.clone()))
                .collect(),
        ),
        secrets: store_of(cached_secrets),
        optional: OptionalStores::default(),
    }
}

/// `live` as the operator's last apply of `desired` left it: with the hash it recorded.
fn applied<K: Resource + serde::Serialize>(desired: &K, mut live: K) -> K {
    let hash = crate::apply::hash_of(&serde_json::to_value(desired).unwrap());
    live.meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(crate::apply::DESIRED_HASH.to_owned(), hash);
    live
}

/// The status the last reconcile wrote for a settled bot.
fn settled_status(
    gb: &GeneralBot,
    deployment: &k8s_openapi::api::apps::v1::Deployment,
) -> generalbot_crds::GeneralBotStatus {
    let secrets = cert_secrets(gb);
    let by_suffix = |suffix: &str| {
        secrets
            .iter()
            .find(|s| s.metadata.name.as_deref().unwrap().ends_with(suffix))
            .cloned()
    };
    let certs = crate::certs::status(
        gb,
        &crate::certs::CertSecrets {
            root: by_suffix("-ca-root"),
            ca: by_suffix("-ca"),
            tls: by_suffix("-tls"),
            user_ca: None,
        },
    );
    let keys = crate::keyrings::recorded(full_key_secret(gb).annotations());
    let mut status = compute_status(
        gb,
        &Observed {
            problems: &[],
            deployment: Some(deployment),
            keys: keys.as_ref(),
            certificates: Some(&certs),
            keys_missing: false,
        },
        &t(-3600),
    );
    // What the last audit chain check said: no bot server answers the mock.
    super::audit::apply(
        &mut status,
        crate::audit_chain::judge(None, None, None, t(-3600).0),
        gb.metadata.generation,
        &t(-3600),
    );
    status
}

/// The certificate Secrets as issued an hour before `t(0)`: issued once per test run,
/// so the cache and the last status describe the same certificates.
fn cert_secrets(gb: &GeneralBot) -> Vec<Secret> {
    static ISSUED: std::sync::OnceLock<Vec<Secret>> = std::sync::OnceLock::new();
    ISSUED.get_or_init(|| issue_cert_secrets(gb)).clone()
}

fn issue_cert_secrets(gb: &GeneralBot) -> Vec<Secret> {
    let policy = crate::certs::CertPolicy::of(gb, DEFAULT_PROPAGATION);
    let plan = crate::certs::plan(
        gb,
        &crate::certs::CertSecrets::default(),
        &policy,
        t(-3600).0,
        true,
    )
    .unwrap();
    plan.writes
        .iter()
        .map(|w| {
            let mut s = Secret::default();
            s.metadata.name = Some(w.name.clone());
            s.metadata.namespace = gb.metadata.namespace.clone();
            s.metadata.annotations = Some(w.annotations.clone());
            s.data = Some(w.data.clone());
            s
        })
        .collect()
}

/// The key Secret as created an hour before `t(0)` (before any force annotation), with
/// its data.
fn full_key_secret(gb: &GeneralBot) -> Secret {
    static MADE: std::sync::OnceLock<Secret> = std::sync::OnceLock::new();
    MADE.get_or_init(|| make_key_secret(gb)).clone()
}

fn make_key_secret(gb: &GeneralBot) -> Secret {
    let mut gb = gb.clone();
    gb.metadata.annotations = None;
    let ctx = crate::builders::BuildContext::new(&gb).unwrap();
    let mut s = crate::builders::key_secret(&ctx, t(-3600).0)
        .unwrap()
        .0
        .clone();
    s.metadata.resource_version = Some("7".to_owned());
    s
}

fn empty_stores() -> Stores {
    Stores {
        service_accounts: store_of(vec![]),
        deployments: store_of(vec![]),
        services: store_of(vec![]),
        pdbs: store_of(vec![]),
        network_policies: store_of(vec![]),
        cron_jobs: store_of(vec![]),
        secrets: store_of(vec![]),
        optional: OptionalStores::default(),
    }
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// Runs one reconcile of `gb` against a mock API server that answers as a real one
/// would, and returns every request it saw.
async fn reconcile_against_mock(
    gb: GeneralBot,
    stores: Stores,
    user_secret: UserSecret,
) -> (Result<Action>, Vec<Seen>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keys_exist = stores
        .secrets
        .state()
        .iter()
        .any(|s| s.metadata.name.as_deref() == Some("bot-keys"));
    let gb_json = serde_json::to_value(&gb).unwrap();
    let gb_for_keys = gb.clone();
    let log = seen.clone();
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if method == Method::PATCH && !path.contains("/events") {
                assert!(
                    query.contains("fieldManager=generalbot-operator"),
                    "every apply names our field manager: {path}?{query}"
                );
            }
            log.lock().unwrap().push(Seen {
                method: method.clone(),
                path: path.clone(),
                body: body.clone(),
            });
            let response = match (method, path.as_str()) {
                (Method::GET, p) if p.ends_with("/secrets/bot-keys") && !keys_exist => respond(
                    StatusCode::NOT_FOUND,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "secrets \"bot-keys\" not found"}),
                ),
                (Method::GET, p) if p.ends_with("/secrets/bot-keys") => respond(
                    StatusCode::OK,
                    &serde_json::to_value(full_key_secret(&gb_for_keys)).unwrap(),
                ),
                (Method::PUT, p) if p.ends_with("/secrets/bot-keys") => {
                    respond(StatusCode::OK, &body)
                }
                (Method::GET, p) if p.contains("/secrets/") => match user_secret {
                    UserSecret::Present => {
                        let mut s = Secret::default();
                        s.metadata.name = p.rsplit('/').next().map(str::to_owned);
                        s.data = Some(BTreeMap::from([
                            ("username".to_owned(), ByteString(b"bot".to_vec())),
                            ("password".to_owned(), ByteString(b"hunter2".to_vec())),
                        ]));
                        respond(StatusCode::OK, &serde_json::to_value(s).unwrap())
                    }
                    UserSecret::Missing => respond(
                        StatusCode::NOT_FOUND,
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "secrets not found"}),
                    ),
                },
                (Method::PATCH, p) if p.ends_with("/status") => {
                    let mut out = gb_json.clone();
                    out["status"] = body["status"].clone();
                    respond(StatusCode::OK, &out)
                }
                (Method::POST, _) => respond(StatusCode::CREATED, &body),
                (Method::PATCH, _) => respond(StatusCode::OK, &body),
                (m, p) => panic!("unexpected request {m} {p}"),
            };
            send.send_response(response);
        }
    });
    let mut ctx = Context::new(client, stores, Metrics::default(), "test");
    ctx.clock = Arc::new(|| t(0).0);
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        reconcile(Arc::new(gb), Arc::new(ctx)),
    )
    .await
    .expect("reconcile finished in time");
    server.abort();
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

fn kinds_patched(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| {
            s.method == Method::PATCH && !s.path.ends_with("/status") && !s.path.contains("/events")
        })
        .map(|s| s.body["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn first_reconcile_creates_everything_and_reports_status() {
    let gb = mk_gb("bot");
    let (result, seen) = reconcile_against_mock(gb, empty_stores(), UserSecret::Present).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        kinds_patched(&seen),
        [
            "ServiceAccount",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy"
        ]
    );
    let created_keys = seen
        .iter()
        .find(|s| s.method == Method::POST && s.path.ends_with("/secrets"))
        .expect("the key Secret is created");
    assert_eq!(created_keys.body["metadata"]["name"], "bot-keys");
    let status = seen
        .iter()
        .find(|s| s.path.ends_with("/generalbots/bot/status"))
        .expect("status is written");
    let conditions = status.body["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "False")
    );
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "NetworkIsolated" && c["status"] == "True")
    );
    assert_eq!(status.body["status"]["observedGeneration"], 1);
    let reads = seen.iter().filter(|s| !s.is_write()).count();
    let events = seen.iter().filter(|s| s.path.contains("/events")).count();
    println!(
        "first reconcile: {} requests ({reads} reads, {} writes of which {events} events)",
        seen.len(),
        seen.len() - reads
    );
}

#[tokio::test]
async fn steady_state_makes_no_write() {
    let mut gb = mk_gb("bot");
    let stores = settled_stores(&gb);
    // The status the last reconcile wrote.
    let deployment = mk_available_deployment(&gb);
    gb.status = Some(settled_status(&gb, &deployment));
    let (result, seen) = reconcile_against_mock(gb, stores, UserSecret::Present).await;
    assert!(result.is_ok(), "{result:?}");
    let writes: Vec<_> = seen.iter().filter(|s| s.is_write()).collect();
    assert!(writes.is_empty(), "steady state wrote: {writes:#?}");
    println!("steady-state reconcile: {} requests, all reads", seen.len());
}

#[tokio::test]
async fn drift_is_put_back_with_one_write() {
    let mut gb = mk_gb("bot");
    let deployment = mk_available_deployment(&gb);
    gb.status = Some(settled_status(&gb, &deployment));
    let stores = settled_stores(&gb);
    // Someone scaled the Deployment by hand.
    let mut edited = stores
        .deployments
        .state()
        .first()
        .map(|d| d.as_ref().clone())
        .unwrap();
    edited.spec.as_mut().unwrap().replicas = Some(7);
    let stores = Stores {
        deployments: store_of(vec![edited]),
        ..stores
    };
    let (result, seen) = reconcile_against_mock(gb, stores, UserSecret::Present).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(kinds_patched(&seen), ["Deployment"]);
}

#[tokio::test]
async fn a_forced_rotation_is_one_conditional_write_of_the_key_secret() {
    let mut gb = mk_gb("bot");
    let deployment = mk_available_deployment(&gb);
    gb.status = Some(settled_status(&gb, &deployment));
    gb.metadata.annotations = Some(BTreeMap::from([(
        "generalbots.io/rotate".to_owned(),
        "data@1".to_owned(),
    )]));
    let stores = settled_stores(&gb);
    let (result, seen) = reconcile_against_mock(gb, stores, UserSecret::Present).await;
    assert!(result.is_ok(), "{result:?}");
    let puts: Vec<_> = seen.iter().filter(|s| s.method == Method::PUT).collect();
    assert_eq!(puts.len(), 1, "{seen:#?}");
    let put = puts[0];
    assert_eq!(
        put.body["metadata"]["resourceVersion"], "7",
        "the write names the version it read"
    );
    let annotations = &put.body["metadata"]["annotations"];
    assert_eq!(annotations["generalbots.io/rotate-honoured.data"], "data@1");
    let phase = annotations["generalbots.io/rotation.data"]
        .as_str()
        .unwrap();
    assert!(phase.contains("\"added\""), "{phase}");
    let ring: generalbot_crds::contract::KeyRingFile = {
        use base64::Engine;
        let b64 = put.body["data"]["data.json"].as_str().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(ring.keys.len(), 2, "the new key joins the old one");
    assert!(kinds_patched(&seen).is_empty(), "nothing else changed");
    let event = seen
        .iter()
        .find(|s| s.path.contains("/events"))
        .expect("an event for the step");
    assert_eq!(event.body["reason"], "KeyRotation");
    let status = seen
        .iter()
        .find(|s| s.path.ends_with("/status"))
        .expect("status shows the rings");
    let rings = status.body["status"]["keyRings"].as_array().unwrap();
    assert_eq!(rings.len(), 4);
    assert!(
        rings
            .iter()
            .any(|r| r["name"] == "data" && r["rotationPhase"] == "Added")
    );
}

#[tokio::test]
async fn missing_secret_sets_ready_false_and_applies_nothing() {
    let gb = mk_gb("bot");
    let (result, seen) = reconcile_against_mock(gb, empty_stores(), UserSecret::Missing).await;
    assert!(
        matches!(result, Ok(ref a) if *a == Action::requeue(INVALID_RETRY)),
        "{result:?}"
    );
    assert!(kinds_patched(&seen).is_empty(), "nothing is half-applied");
    assert!(
        !seen
            .iter()
            .any(|s| s.method == Method::POST && s.path.ends_with("/secrets"))
    );
    let status = seen
        .iter()
        .find(|s| s.path.ends_with("/status"))
        .expect("status is written");
    let ready = status.body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidSpec");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains("spec.services.postgres.credentialsSecret.name")
            && message.contains("pg-credentials")
            && message.contains("username, password"),
        "{message}"
    );
    let warning = seen
        .iter()
        .find(|s| s.path.contains("/events"))
        .expect("a warning event is published");
    assert_eq!(warning.body["type"], "Warning");
    assert_eq!(warning.body["reason"], "InvalidSpec");
}

#[tokio::test]
async fn secret_values_never_reach_status_or_events() {
    let gb = mk_gb("bot");
    let (_, seen) = reconcile_against_mock(gb, empty_stores(), UserSecret::Present).await;
    for s in seen.iter().filter(|s| s.is_write()) {
        let text = s.body.to_string();
        assert!(
            !text.contains("hunter2"),
            "a user secret leaked into {}",
            s.path
        );
    }
}

#[test]
fn backoff_doubles_per_object_up_to_a_cap() {
    assert_eq!(backoff(1), BACKOFF_BASE);
    assert_eq!(backoff(2), BACKOFF_BASE * 2);
    assert_eq!(backoff(3), BACKOFF_BASE * 4);
    assert_eq!(backoff(40), BACKOFF_MAX);
}

#[tokio::test]
async fn error_policy_backs_off_each_object_on_its_own() {
    let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Arc::new(Context::new(
        Client::new(service, "default"),
        empty_stores(),
        Metrics::default(),
        "test",
    ));
    let err = || Error::MissingMetadata("metadata.namespace");
    let a = Arc::new(mk_gb("a"));
    let b = Arc::new(mk_gb("b"));
    assert_eq!(
        error_policy(a.clone(), &err(), ctx.clone()),
        Action::requeue(backoff(1))
    );
    assert_eq!(
        error_policy(a.clone(), &err(), ctx.clone()),
        Action::requeue(backoff(2))
    );
    assert_eq!(
        error_policy(a, &err(), ctx.clone()),
        Action::requeue(backoff(3))
    );
    assert_eq!(error_policy(b, &err(), ctx), Action::requeue(backoff(1)));
}
