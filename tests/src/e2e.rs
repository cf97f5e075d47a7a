//! The end-to-end suites' shared part: the cluster `KUBECONFIG` names (or why there is
//! none), a run of the operator as a local process in a namespace of its own, cleaned
//! up even when a step fails, and small helpers to wait for and read GeneralBots.

// Test support only: a helper that cannot do its job fails the test that called it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use generalbot_crds::GeneralBot;
use generalbot_operator::render::parse;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};

use crate::{TempDir, note, operator_bin, root, skip};

pub const MANAGER: &str = "generalbot-e2e";
pub const WAIT: Duration = Duration::from_secs(90);

/// Polls `check` every half second until it returns `Some`, or fails after `WAIT`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The cluster, or why there is none. With `GENERALBOT_E2E_REQUIRED` set (CI sets it
/// after bringing up its control plane), having none is a failure, not a skip.
pub async fn cluster_or_skip() -> Option<Client> {
    match cluster().await {
        Ok(c) => Some(c),
        Err(why) if std::env::var_os("GENERALBOT_E2E_REQUIRED").is_some() => {
            panic!("GENERALBOT_E2E_REQUIRED is set but {why}")
        }
        Err(why) => {
            skip("e2e_operator", &why);
            None
        }
    }
}

/// The cluster, or why there is none.
pub async fn cluster() -> Result<Client, String> {
    if std::env::var_os("KUBECONFIG").is_none() {
        return Err(
            "KUBECONFIG is not set; point it at a cluster to run the end-to-end suite".into(),
        );
    }
    let client = Client::try_default()
        .await
        .map_err(|e| format!("KUBECONFIG names no usable cluster: {e}"))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| format!("the cluster KUBECONFIG names is unreachable: {e}"))?;
    Ok(client)
}

/// A namespace of this run's own, removed (with everything in it) when dropped, along
/// with the operator process and the CRD if this run installed it.
pub struct Run {
    /// The client of the test's runtime.
    pub client: Client,
    /// The run's namespace.
    pub ns: String,
    operator: Option<Child>,
    installed_crd: bool,
    /// The Prometheus Operator's and the Gateway API's CRDs this run installed.
    installed_third_party: Vec<String>,
    /// Whether those kinds are served (installed by this run or already there).
    pub third_party_served: bool,
    /// Where the operator serves `/metrics`.
    pub metrics: std::net::SocketAddr,
    logs: TempDir,
}

impl Run {
    /// The operator process's id, while it runs.
    pub fn operator_pid(&self) -> Option<u32> {
        self.operator.as_ref().map(Child::id)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failed run says what the operator was doing.
            let log = std::fs::read_to_string(self.logs.0.join("operator.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            note(&format!(
                "e2e: last lines of the operator's log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        if let Some(mut child) = self.operator.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let ns = self.ns.clone();
        let crd = self.installed_crd;
        let third_party = std::mem::take(&mut self.installed_third_party);
        // Drop cannot await, and the test's runtime may be unwinding: clean up on a
        // runtime of its own, with a client of its own (a client is bound to the
        // runtime that made it).
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            rt.block_on(async move {
                let Ok(client) = Client::try_default().await else {
                    note(&format!(
                        "e2e: could not clean up namespace {ns}: no client"
                    ));
                    return;
                };
                if let Err(e) = Api::<Namespace>::all(client.clone())
                    .delete(&ns, &DeleteParams::background())
                    .await
                {
                    note(&format!("e2e: could not delete namespace {ns}: {e}"));
                }
                for name in &third_party {
                    let _ = Api::<CustomResourceDefinition>::all(client.clone())
                        .delete(name, &DeleteParams::default())
                        .await;
                }
                if crd {
                    let _ = Api::<CustomResourceDefinition>::all(client)
                        .delete(GeneralBot::crd_name(), &DeleteParams::default())
                        .await;
                }
            });
        })
        .join();
    }
}

/// Waits until the API server serves the CRD `name`.
pub async fn established(crds: &Api<CustomResourceDefinition>, name: &str) {
    eventually(&format!("CRD {name} to be established"), || {
        let crds = crds.clone();
        async move {
            let crd = crds.get(name).await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        }
    })
    .await;
}

/// Creates the run's namespace, installs the CRD and starts the operator on it, with
/// `propagation` seconds for a changed Secret to reach the pods and `extra` arguments.
pub async fn start(client: Client, propagation: u32, extra: &[&str]) -> Run {
    // Unique per run and per test: the process, the time to the nanosecond and a
    // counter (two tests of one binary can start within the same second, and the
    // namespace of the one before may still be terminating).
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let suffix = format!(
        "{:x}-{:x}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond() as u64 & 0xffff_ffff,
        STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let ns = format!("gb-e2e-{suffix}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut n = Namespace::default();
    n.metadata.name = Some(ns.clone());
    n.metadata.labels = Some(BTreeMap::from([(
        "generalbots.io/e2e".to_owned(),
        "true".to_owned(),
    )]));
    namespaces.create(&PostParams::default(), &n).await.unwrap();

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let installed_crd = crds
        .get_opt(GeneralBot::crd_name())
        .await
        .unwrap()
        .is_none();
    crds.patch(
        GeneralBot::crd_name(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(generalbot_crds::crd::crd()),
    )
    .await
    .unwrap();
    established(&crds, GeneralBot::crd_name()).await;

    // Before the operator starts: it learns at start which optional kinds are served.
    let (installed_third_party, third_party_served) = match crate::third_party::install(&client)
        .await
    {
        Ok(names) => (names, true),
        Err(e) => {
            note(&format!(
                "e2e: the Prometheus Operator's and Gateway API's CRDs are not installed ({e}); the monitoring checks expect PrometheusOperatorMissing"
            ));
            (Vec::new(), false)
        }
    };

    let logs = TempDir::new("gb-e2e-logs");
    let log = std::fs::File::create(logs.0.join("operator.log")).unwrap();
    let metrics = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let child = Command::new(operator_bin())
        .args([
            "run",
            "--namespace",
            &ns,
            "--lease-namespace",
            &ns,
            "--metrics-addr",
            &metrics.to_string(),
            "--lease-seconds",
            "6",
            // Rotation steps wait this long for a changed Secret to reach the pods;
            // a real cluster would keep the default of two minutes.
            "--propagation-seconds",
            &propagation.to_string(),
        ])
        .args(extra)
        .env("RUST_LOG", "info,generalbot_operator=debug")
        // As the chart runs it.
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    Run {
        client,
        ns,
        operator: Some(child),
        installed_crd,
        installed_third_party,
        third_party_served,
        metrics,
        logs,
    }
}

/// Creates the Secret `name` with the given keys and values.
pub async fn secret_with(run: &Run, name: &str, data: &[(&str, &[u8])]) {
    let api: Api<Secret> = Api::namespaced(run.client.clone(), &run.ns);
    let mut s = Secret::default();
    s.metadata.name = Some(name.to_owned());
    s.data = Some(
        data.iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
            .collect(),
    );
    api.create(&PostParams::default(), &s).await.unwrap();
}

/// Creates the Secret `name` with placeholder values under `keys`.
pub async fn secret(run: &Run, name: &str, keys: &[&str]) {
    let api: Api<Secret> = Api::namespaced(run.client.clone(), &run.ns);
    let mut s = Secret::default();
    s.metadata.name = Some(name.to_owned());
    s.data = Some(
        keys.iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    ByteString(b"e2e-not-a-real-secret".to_vec()),
                )
            })
            .collect(),
    );
    api.create(&PostParams::default(), &s).await.unwrap();
}

pub fn example(name: &str, ns: &str) -> GeneralBot {
    let path = root().join("examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut gb = parse(&path, &text, Some(ns)).unwrap();
    gb.metadata.namespace = Some(ns.to_owned());
    gb
}

pub fn condition(gb: &GeneralBot, type_: &str) -> Option<(String, String, String)> {
    gb.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Each ring's active key id, by ring.
pub fn key_ids(gb: &GeneralBot) -> BTreeMap<String, String> {
    gb.status
        .iter()
        .flat_map(|s| &s.key_rings)
        .map(|r| (r.name.clone(), r.active_key_id.clone()))
        .collect()
}

/// Forces a rotation of the GeneralBot `name` with the annotation value `value`
/// (`jwt,ca@tag`, `all@tag`, …).
pub async fn force_rotation(api: &Api<GeneralBot>, name: &str, value: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "metadata": {"annotations": {"generalbots.io/rotate": value}}
        })),
    )
    .await
    .unwrap();
}

/// The serial of the certificate `which` (`root`, `intermediate`, `serving`) in the
/// GeneralBot's status.
pub fn certificate_serial(gb: &GeneralBot, which: &str) -> Option<String> {
    gb.status
        .as_ref()?
        .certificates
        .iter()
        .find(|c| c.name == which)
        .map(|c| c.serial.clone())
}

/// Waits until the CA rotation of the GeneralBot `bot` is over: its root Secret is idle
/// and holds no previous root any more.
pub async fn old_root_retired(secrets: &Api<Secret>, bot: &str) {
    use kube::ResourceExt;
    let name = format!("{bot}-ca-root");
    eventually("the old root to leave the trust bundle", || {
        let (secrets, name) = (secrets.clone(), name.clone());
        async move {
            let s = secrets.get(&name).await.ok()?;
            let idle = s
                .annotations()
                .get("generalbots.io/rotation.ca")?
                .contains("idle");
            (idle && !s.data?.contains_key("previous.crt")).then_some(())
        }
    })
    .await;
}

/// Waits until the GeneralBot `name` reports its 4 key rings and 3 certificates, and
/// returns it.
pub async fn with_rings_and_certificates(api: &Api<GeneralBot>, name: &str) -> GeneralBot {
    eventually("the key rings and certificates in the status", || {
        let api = api.clone();
        async move {
            let gb = api.get(name).await.ok()?;
            let st = gb.status.as_ref()?;
            (st.key_rings.len() == 4 && st.certificates.len() == 3).then_some(gb)
        }
    })
    .await
}

/// A plain HTTP/1.0 GET on loopback (metrics and health ports): the status and body,
/// or `None` when nothing answers.
pub async fn plain_get(
    addr: std::net::SocketAddr,
    path: &str,
    bearer: Option<&str>,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n").as_bytes())
        .await
        .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).await.ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The operator's writes so far, summed over kinds, from its `/metrics`.
pub async fn operator_writes(metrics: std::net::SocketAddr) -> u64 {
    let (_, text) = plain_get(metrics, "/metrics", None).await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("generalbot_operator_object_writes_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
