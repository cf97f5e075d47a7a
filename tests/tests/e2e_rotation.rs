//! End-to-end, the product's central promise: every key ring and the CA rotate, forced,
//! while clients keep signing in and writing and reading encrypted messages over TLS,
//! and no request fails and every message stays readable, also after the bot server
//! restarts.
//!
//! The operator runs as a local process against the cluster `KUBECONFIG` names; the bot
//! server runs as a local process built from the Deployment the operator made, fed as
//! the kubelet feeds its pod ([`generalbot_tests::kubelet`]), with a real PostgreSQL
//! (TLS only) started here. Needs no pod networking, `exec`, `logs` or `port-forward`.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use generalbot_crds::GeneralBot;
use generalbot_crds::v1alpha1::SecretRef;
use generalbot_testkit::Postgres;
use generalbot_tests::e2e::{
    certificate_serial, cluster_or_skip, condition, eventually, example, force_rotation, key_ids,
    old_root_retired, plain_get, secret_with, start, with_rings_and_certificates,
};
use generalbot_tests::https::request;
use generalbot_tests::kubelet::{LocalPod, free_addr};
use generalbot_tests::{bot_server_bin, note, skip};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};

const PASSWORD: &str = "rotation-e2e-password-4d1f";
const CLIENTS: usize = 3;

/// What the traffic saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failures: Mutex<Vec<String>>,
    /// Client to every message text it wrote, in order.
    written: Mutex<BTreeMap<usize, Vec<String>>>,
}

/// Where the bot server answers and what to trust, as a client in the cluster sees it.
#[derive(Clone)]
struct Target {
    addr: Arc<RwLock<SocketAddr>>,
    name: String,
    trust: Arc<RwLock<Vec<u8>>>,
}

impl Target {
    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let addr = *self.addr.read().unwrap();
        let trust = self.trust.read().unwrap().clone();
        let r = request(addr, &self.name, &trust, method, path, bearer, body).await?;
        if r.status / 100 == 2 {
            Ok(r.body)
        } else {
            Err(format!("{method} {path}: status {} {}", r.status, r.body))
        }
    }

    async fn login(&self, client: usize) -> Result<String, String> {
        let body = self
            .call(
                "POST",
                "/api/auth/login",
                None,
                Some(serde_json::json!({"email": email(client), "password": PASSWORD})),
            )
            .await?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("login answered no token: {body}"))
    }

    /// Every message text of `conversation`.
    async fn texts(&self, token: &str, conversation: &str) -> Result<Vec<String>, String> {
        let body = self
            .call(
                "GET",
                &format!("/api/conversations/{conversation}/messages"),
                Some(token),
                None,
            )
            .await?;
        Ok(body
            .as_array()
            .ok_or_else(|| format!("messages: {body}"))?
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect())
    }
}

fn email(client: usize) -> String {
    format!("client{client}@example.com")
}

/// One client: signs in every few requests, writes a message, reads the conversation
/// back and checks that everything it wrote is there, until `stop`.
async fn client_loop(
    target: Target,
    client: usize,
    conversation: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let mut token = String::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let step: Result<(), String> = async {
            if i.is_multiple_of(5) {
                token = target.login(client).await?;
                tally.ok.fetch_add(1, Ordering::Relaxed);
            }
            let text = format!("client {client} message {i}");
            target
                .call(
                    "POST",
                    &format!("/api/conversations/{conversation}/messages"),
                    Some(&token),
                    Some(serde_json::json!({ "text": text })),
                )
                .await?;
            tally.ok.fetch_add(1, Ordering::Relaxed);
            tally
                .written
                .lock()
                .unwrap()
                .entry(client)
                .or_default()
                .push(text);
            if i.is_multiple_of(3) {
                let have: BTreeSet<String> = target
                    .texts(&token, &conversation)
                    .await?
                    .into_iter()
                    .collect();
                tally.ok.fetch_add(1, Ordering::Relaxed);
                let written = tally.written.lock().unwrap()[&client].clone();
                if let Some(lost) = written.iter().find(|t| !have.contains(*t)) {
                    return Err(format!("client {client}: {lost:?} is no longer readable"));
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = step {
            tally.failures.lock().unwrap().push(e);
            // A failed sign-in leaves no token: sign in again next time.
            i = 0;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Keeps `trust` equal to the trust bundle the operator publishes in `<bot>-tls`.
fn follow_trust_bundle(
    client: Client,
    ns: &str,
    bot: &str,
    trust: Arc<RwLock<Vec<u8>>>,
) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let api: Api<Secret> = Api::namespaced(client, ns);
    let name = format!("{bot}-tls");
    tokio::spawn(async move {
        while !flag.load(Ordering::Relaxed) {
            if let Ok(s) = api.get(&name).await
                && let Some(ca) = s.data.and_then(|d| d.get("ca.crt").cloned())
            {
                *trust.write().unwrap() = ca.0;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    stop
}

/// Every client's messages are all readable, through a fresh sign-in.
async fn all_readable(target: &Target, conversations: &[String], tally: &Tally) -> usize {
    let mut count = 0;
    for (client, conversation) in conversations.iter().enumerate() {
        let token = target.login(client).await.unwrap();
        let have: BTreeSet<String> = target
            .texts(&token, conversation)
            .await
            .unwrap()
            .into_iter()
            .collect();
        let written = tally
            .written
            .lock()
            .unwrap()
            .get(&client)
            .cloned()
            .unwrap_or_default();
        for t in &written {
            assert!(have.contains(t), "client {client}: {t:?} is not readable");
        }
        count += written.len();
    }
    count
}

/// The bot server's key-usage report, asked on its metrics port with the ops token.
async fn key_usage(metrics: SocketAddr, token: &str) -> serde_json::Value {
    let path = generalbot_crds::contract::KEY_USAGE_PATH;
    let (status, body) = plain_get(metrics, path, Some(token)).await.unwrap();
    assert_eq!(status, 200, "key usage: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_every_key_and_the_ca_rotate_under_traffic_without_a_failed_request() {
    let Some(client) = cluster_or_skip().await else {
        return;
    };
    let pg = match Postgres::start() {
        Ok(pg) => pg,
        Err(why) if std::env::var_os("GENERALBOT_E2E_REQUIRED").is_some() => {
            panic!("GENERALBOT_E2E_REQUIRED is set but PostgreSQL cannot start: {why}")
        }
        Err(why) => return skip("e2e_rotation", &why),
    };
    // The bucket: a real S3 server over TLS, for the bot server's backups and the
    // operator's StorageEncryption and BackupsReady checks.
    let moto = match generalbot_testkit::Moto::start() {
        Ok(m) => m,
        Err(why) if std::env::var_os("GENERALBOT_E2E_REQUIRED").is_some() => {
            panic!("GENERALBOT_E2E_REQUIRED is set but the S3 server cannot start: {why}")
        }
        Err(why) => return skip("e2e_rotation", &why),
    };
    let s3 = generalbot_storage::client(&generalbot_storage::Endpoint {
        url: moto.endpoint(),
        region: "us-east-1".into(),
        keys: Some(generalbot_storage::AccessKeys {
            access_key_id: generalbot_testkit::Moto::ACCESS_KEY.to_owned().into(),
            secret_access_key: generalbot_testkit::Moto::SECRET_KEY.to_owned().into(),
        }),
        ca_pem: Some(std::fs::read(&moto.ca).unwrap()),
    })
    .unwrap();
    // Propagation above the bot server's 5 s reload interval, as on a real cluster. The
    // operator reaches the bot server's API (for its key-usage report) where the pod
    // will listen.
    let api = free_addr();
    let connect_to = format!("*.svc:8080={api}");
    // And the database, as the bot server does (verify-full), to check its TLS.
    let database_at = format!("postgres.databases.svc:5432=127.0.0.1:{}", pg.port);
    let storage_at = format!("s3.storage.svc:443=127.0.0.1:{}", moto.port);
    let run = start(
        client.clone(),
        8,
        &[
            "--connect-to",
            &connect_to,
            "--connect-to",
            &database_at,
            "--audit-check-seconds",
            "2",
            "--database-check-seconds",
            "2",
            "--connect-to",
            &storage_at,
            "--storage-check-seconds",
            "2",
        ],
    )
    .await;
    let ns = run.ns.clone();
    note(&format!("e2e rotation: namespace {ns}"));
    let bots: Api<GeneralBot> = Api::namespaced(client.clone(), &ns);

    secret_with(
        &run,
        "pg-credentials",
        &[
            ("username", pg.user.as_bytes()),
            ("password", pg.password.as_bytes()),
        ],
    )
    .await;
    secret_with(
        &run,
        "pg-owner",
        &[
            ("username", pg.owner.as_bytes()),
            ("password", pg.owner_password.as_bytes()),
        ],
    )
    .await;
    secret_with(
        &run,
        "pg-ca",
        &[("ca.crt", &std::fs::read(&pg.ca).unwrap())],
    )
    .await;
    secret_with(
        &run,
        "s3-credentials",
        &[
            (
                "accessKeyId",
                generalbot_testkit::Moto::ACCESS_KEY.as_bytes(),
            ),
            (
                "secretAccessKey",
                generalbot_testkit::Moto::SECRET_KEY.as_bytes(),
            ),
        ],
    )
    .await;
    secret_with(
        &run,
        "s3-ca",
        &[("ca.crt", &std::fs::read(&moto.ca).unwrap())],
    )
    .await;
    // The example bot, from a ConfigMap: the clients talk to it, so its encrypted
    // conversation state goes through the rotation too.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    config_maps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("support-bots".into()),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(
                    "support.yaml".to_owned(),
                    std::fs::read_to_string(
                        generalbot_tests::root().join("examples/bots/support.yaml"),
                    )
                    .unwrap(),
                )])),
                ..ConfigMap::default()
            },
        )
        .await
        .unwrap();
    let mut gb = example("minimal.yaml", &ns);
    gb.spec.bots = vec![generalbot_crds::v1alpha1::ConfigMapRef {
        name: "support-bots".into(),
    }];
    gb.spec.services.postgres.endpoint.tls.ca_secret = Some(SecretRef {
        name: "pg-ca".to_owned(),
    });
    let storage = gb.spec.services.object_storage.as_mut().unwrap();
    storage.endpoint.tls.ca_secret = Some(SecretRef {
        name: "s3-ca".to_owned(),
    });
    s3.create_bucket()
        .bucket(&storage.bucket)
        .send()
        .await
        .unwrap();
    let bucket = storage.bucket.clone();
    let storage_host = storage.endpoint.host.clone();
    gb.spec.server.replicas = 1;
    gb.spec.server.settings.rate_limit_per_ip = 1_000_000;
    gb.spec.server.settings.rate_limit_per_user = 1_000_000;
    bots.create(&PostParams::default(), &gb).await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = eventually("the Deployment", || {
        let deployments = deployments.clone();
        async move { deployments.get_opt("support-bot").await.ok().flatten() }
    })
    .await;
    let before = with_rings_and_certificates(&bots, "support-bot").await;

    // The pod, as the kubelet would run it, with the database on loopback.
    let hosts = BTreeMap::from([
        (
            gb.spec.services.postgres.endpoint.host.clone(),
            SocketAddr::from(([127, 0, 0, 1], pg.port)),
        ),
        (storage_host, SocketAddr::from(([127, 0, 0, 1], moto.port))),
    ]);
    let mut pod = LocalPod::new_at(&client, &deployment, bot_server_bin(), &hosts, api).await;
    let syncing = pod.volumes.keep_syncing(Duration::from_millis(500));
    // The migration init container, as the owner role; the server runs as a role that
    // owns nothing.
    assert_eq!(pod.run_init_containers(), 1, "one init container: migrate");
    let password = pod.file("password", PASSWORD);
    for c in 0..CLIENTS {
        let out = pod.run(&[
            "admin",
            "create-user",
            "--email",
            &email(c),
            "--role",
            "user",
            "--password-file",
            password.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "admin create-user: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    pod.start();
    pod.wait_ready().await;

    // The operator checked the database as the bot server reaches it: TLS 1.3, the
    // certificate verified, plaintext refused.
    let (tls_status, tls_reason, tls_message) = eventually("DatabaseTLS", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            condition(&gb, "DatabaseTLS").filter(|c| c.1 == "Verified")
        }
    })
    .await;
    assert_eq!(tls_status, "True");
    assert!(
        tls_message.contains("TLSv1.3") && tls_message.contains("plaintext connections refused"),
        "{tls_reason}: {tls_message}"
    );
    note(&format!(
        "e2e rotation: DatabaseTLS=True {tls_reason}: {tls_message}"
    ));

    // The bucket: its settings applied and read back by the operator.
    let (_, storage_reason, storage_message) = eventually("StorageEncryption=True", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            condition(&gb, "StorageEncryption").filter(|c| c.0 == "True")
        }
    })
    .await;
    assert!(
        storage_message.contains(
            "SSE-S3 (AES256), versioning on, tmp/ expires after 30 d, public access blocked"
        ),
        "{storage_reason}: {storage_message}"
    );
    note(&format!(
        "e2e rotation: StorageEncryption=True {storage_reason}: {storage_message}"
    ));
    // A backup, as the CronJob's pod takes it (same image, settings and mounts as the
    // server's), under the data key that is active now.
    let data_before = key_ids(&before)["data"].clone();
    let out = pod.run(&["backup"]);
    assert!(
        out.status.success(),
        "bot-server backup: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let taken: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    let backup_key = taken["key"].as_str().unwrap().to_owned();
    assert!(
        backup_key.ends_with(&format!("-{data_before}.gbbak")),
        "{backup_key}"
    );
    let last = eventually(
        "BackupsReady=True with the backup in status.lastBackup",
        || {
            let (bots, backup_key) = (bots.clone(), backup_key.clone());
            async move {
                let gb = bots.get("support-bot").await.ok()?;
                let ready = condition(&gb, "BackupsReady")
                    .is_some_and(|c| c.0 == "True" && c.1 == "Current");
                let last = gb.status?.last_backup?;
                (ready && last.object == backup_key).then_some(last)
            }
        },
    )
    .await;
    note(&format!(
        "e2e rotation: backup {} ({} bytes, key {}); BackupsReady=True Current",
        last.object, last.size_bytes, last.key_id
    ));

    let trust = Arc::new(RwLock::new(Vec::new()));
    let following = follow_trust_bundle(client.clone(), &ns, "support-bot", trust.clone());
    eventually("the trust bundle", || {
        let trust = trust.clone();
        async move { (!trust.read().unwrap().is_empty()).then_some(()) }
    })
    .await;
    let target = Target {
        addr: Arc::new(RwLock::new(pod.api)),
        name: format!("support-bot.{ns}.svc"),
        trust,
    };
    let mut conversations = Vec::new();
    for c in 0..CLIENTS {
        let token = target.login(c).await.unwrap();
        let conv = target
            .call(
                "POST",
                "/api/conversations",
                Some(&token),
                Some(serde_json::json!({"bot": "support"})),
            )
            .await
            .unwrap();
        conversations.push(conv["id"].as_str().unwrap().to_owned());
    }

    // Traffic, then a forced rotation of every ring and of the CA under it.
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = conversations
        .iter()
        .enumerate()
        .map(|(c, conv)| {
            tokio::spawn(client_loop(
                target.clone(),
                c,
                conv.clone(),
                tally.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let keys_before = key_ids(&before);
    let root_before = certificate_serial(&before, "root").unwrap();
    force_rotation(&bots, "support-bot", "all@e2e-rotation").await;
    let after = eventually(
        "every ring to have a new active key and the CA a new root",
        || {
            let bots = bots.clone();
            let (keys_before, root_before) = (keys_before.clone(), root_before.clone());
            async move {
                let gb = bots.get("support-bot").await.ok()?;
                let keys = key_ids(&gb);
                let all_new = keys.len() == 4
                    && keys
                        .iter()
                        .all(|(ring, id)| keys_before.get(ring) != Some(id));
                let root = certificate_serial(&gb, "root")?;
                (all_new && root != root_before).then_some(gb)
            }
        },
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    old_root_retired(&secrets, "support-bot").await;
    // Traffic goes on past the last step, then stops.
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failures = tally.failures.lock().unwrap().clone();
    let ok = tally.ok.load(Ordering::Relaxed);
    note(&format!(
        "e2e rotation: {ok} requests succeeded and {} failed during a forced rotation of every ring and the CA; rings now {:?}",
        failures.len(),
        key_ids(&after)
    ));
    assert!(
        failures.is_empty(),
        "requests failed during the rotation: {failures:#?}\nbot server:\n{}",
        pod.log_tail(30)
    );
    assert!(
        ok > 50,
        "too little traffic to prove anything: {ok} requests"
    );

    // The bot server took the new keys up: records written since are under the new
    // active field key, by its own key-usage report.
    let keys = secrets.get("support-bot-keys").await.unwrap();
    let ops_token = String::from_utf8(keys.data.unwrap()["ops-token"].0.clone()).unwrap();
    let report = key_usage(pod.metrics, &ops_token).await;
    let field_now = &key_ids(&after)["field"];
    let under_new = report["rings"]["field"][field_now].as_u64().unwrap_or(0);
    note(&format!(
        "e2e rotation: key usage after the rotation: {report}"
    ));
    assert!(
        under_new > 0,
        "no record under the new field key {field_now}: {report}"
    );

    // With the report, the operator retires the old field key once the bot server's
    // background pass has moved every record to the new key; the old data key stays,
    // because the backup taken before the rotation is sealed with it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let retired = loop {
        let gb = bots.get("support-bot").await.unwrap();
        let rings: BTreeMap<String, u32> = gb
            .status
            .iter()
            .flat_map(|s| &s.key_rings)
            .map(|r| (r.name.clone(), r.keys))
            .collect();
        if rings.get("data") == Some(&2) && rings.get("field") == Some(&1) {
            break rings;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old field key was not retired, or the data ring lost a key: {rings:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(
        key_ids(&bots.get("support-bot").await.unwrap())["field"],
        *field_now
    );
    note(&format!(
        "e2e rotation: old keys retired once the bot server reported none under them: keys per ring {retired:?}"
    ));
    // The data key the backup needs is still there; once the backup is gone (past its
    // retention, here deleted by hand), the operator retires it too.
    let gb = bots.get("support-bot").await.unwrap();
    let (_, _, keys_message) = condition(&gb, "KeysReady").unwrap_or_default();
    assert_ne!(key_ids(&gb)["data"], data_before);
    s3.delete_object()
        .bucket(&bucket)
        .key(&backup_key)
        .send()
        .await
        .unwrap();
    let data_retired = eventually(
        "the old data key to be retired once no backup needs it",
        || {
            let bots = bots.clone();
            async move {
                let gb = bots.get("support-bot").await.ok()?;
                let rings: BTreeMap<String, u32> = gb
                    .status
                    .iter()
                    .flat_map(|s| &s.key_rings)
                    .map(|r| (r.name.clone(), r.keys))
                    .collect();
                (rings.get("data") == Some(&1)).then_some(rings)
            }
        },
    )
    .await;
    note(&format!(
        "e2e rotation: the old data key was kept while the backup needed it ({keys_message}); retired once it was gone: {data_retired:?}"
    ));

    // The HMAC ring is judged from the report too: once the email indexes are moved, the
    // old key is kept only for the refresh tokens made under it that can still be used
    // (they cannot be re-hashed), and the status says so rather than waiting for a report.
    let hmac_old = &key_ids(&before)["hmac"];
    let hmac_now = &key_ids(&after)["hmac"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (hmac_report, keys_ready) = loop {
        let report = key_usage(pod.metrics, &ops_token).await;
        let gb = bots.get("support-bot").await.unwrap();
        let keys_ready = condition(&gb, "KeysReady")
            .map(|(_, _, m)| m)
            .unwrap_or_default();
        let judged = keys_ready.contains(&format!("still need key {hmac_old}"))
            || gb
                .status
                .iter()
                .flat_map(|s| &s.key_rings)
                .any(|r| r.name == "hmac" && r.keys == 1);
        if report["rings"]["hmac"][hmac_now].as_u64().unwrap_or(0) > 0 && judged {
            break (report, keys_ready);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the HMAC ring was not judged from the report: {report}; KeysReady: {keys_ready}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        !keys_ready.contains("waiting for the bot server to report"),
        "{keys_ready}"
    );
    note(&format!(
        "e2e rotation: HMAC ring after re-indexing: {} (KeysReady: {keys_ready})",
        hmac_report["rings"]["hmac"]
    ));

    // Every message is readable, and still after a restart of the bot server.
    let messages = all_readable(&target, &conversations, &tally).await;
    pod.stop();
    pod.start();
    pod.wait_ready().await;
    let after_restart = all_readable(&target, &conversations, &tally).await;
    assert_eq!(messages, after_restart);
    note(&format!(
        "e2e rotation: all {messages} messages readable after the rotation and after a restart"
    ));

    // The operator records a signed row of the audit chain and checks it stays there:
    // whoever removes rows in the database (triggers disabled) is found out.
    let recorded = eventually("the audit chain recorded and verified", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            let (state, _, _) = condition(&gb, "AuditChainIntact")?;
            let chain = gb.status?.audit_chain?;
            (state == "True" && chain.seq > 0).then_some(chain)
        }
    })
    .await;
    pg.psql(
        &pg.database,
        &format!(
            "ALTER TABLE audit_log DISABLE TRIGGER USER; DELETE FROM audit_log WHERE seq >= {}; ALTER TABLE audit_log ENABLE TRIGGER USER;",
            recorded.seq
        ),
    );
    let (_, reason, message) = eventually("the truncation found", || {
        let bots = bots.clone();
        async move {
            let gb = bots.get("support-bot").await.ok()?;
            condition(&gb, "AuditChainIntact").filter(|(s, _, _)| s == "False")
        }
    })
    .await;
    assert!(
        ["Truncated", "Rewritten"].contains(&reason.as_str()),
        "{reason}: {message}"
    );
    // The operator may have recorded a newer row between our read and the DELETE (it
    // checks every 2 s): either way the row it recorded is among those removed, and it
    // stays in the status as evidence, named in the message.
    let gb = bots.get("support-bot").await.unwrap();
    let evidence = gb.status.unwrap().audit_chain.unwrap();
    assert!(
        evidence.seq >= recorded.seq,
        "the recorded row is kept as evidence: {evidence:?}, recorded before {recorded:?}"
    );
    assert!(
        message.contains(&format!("row {} ", evidence.seq)),
        "{message}"
    );
    note(&format!(
        "e2e rotation: audit chain row {} recorded, then removed in the database: AuditChainIntact=False {reason}: {message}",
        recorded.seq
    ));
    following.store(true, Ordering::Relaxed);
    syncing.store(true, Ordering::Relaxed);
    drop(pod);
    drop(run);
    drop(pg);
}
