//! Scale on a real API server (a benchmark, not a test): many GeneralBots created at
//! once, against the cluster `KUBECONFIG` names (`hack/control-plane up`).
//!
//! 1. Reference: the API server's own write rate in the same run, measured with many
//!    parallel creates of ConfigMaps.
//! 2. `GENERALBOT_SCALE_BOTS` (default 1000) GeneralBots, one replica each, created at
//!    once against the release operator: the time until all are Ready with their keys
//!    and certificates in the status, the operator's writes and write rate (as a share
//!    of the reference), and its peak memory.
//! 3. Steady state with one ring blocked on `min(100, bots)` of them (a forced data-key
//!    rotation that waits for a key-usage report no bot server can give here): the
//!    operator's writes over three minutes, as writes per hour.
//!
//! `cargo bench -p generalbot-tests --bench scale` (set `GENERALBOT_SCALE_JWT=ES256` to
//! take RSA key generation out of the figure, `GENERALBOT_SCALE_BLOCKED=0` to skip 3).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use generalbot_crds::GeneralBot;
use generalbot_crds::v1alpha1::JwtAlgorithm;
use generalbot_tests::e2e::{cluster_or_skip, example, operator_writes, secret, start};
use generalbot_tests::note;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

const PARALLEL: usize = 32;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of the process `pid` (the operator), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn ready_with_keys(gb: &GeneralBot) -> bool {
    let Some(st) = gb.status.as_ref() else {
        return false;
    };
    st.key_rings.len() == 4
        && st.certificates.len() == 3
        && st
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[tokio::main]
async fn main() {
    let Some(client) = cluster_or_skip().await else {
        return;
    };
    let bots = env_usize("GENERALBOT_SCALE_BOTS", 1000);
    let jwt = match std::env::var("GENERALBOT_SCALE_JWT").as_deref() {
        Ok("ES256") => JwtAlgorithm::ES256,
        _ => JwtAlgorithm::RS256,
    };
    let run = start(client.clone(), 10, &[]).await;
    let ns = run.ns.clone();
    let pid = run.operator_pid().unwrap();

    // 1. The API server's own write rate: parallel ConfigMap creates.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let t = Instant::now();
    futures::stream::iter(0..bots)
        .map(|i| {
            let api = configmaps.clone();
            async move {
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(format!("ref-{i}"));
                cm.data = Some(BTreeMap::from([("k".to_owned(), "v".repeat(64))]));
                api.create(&PostParams::default(), &cm).await.map(|_| ())
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let raw_rate = bots as f64 / t.elapsed().as_secs_f64();
    note(&format!(
        "scale: reference: {bots} ConfigMaps created in {:.1} s with {PARALLEL} in flight: {raw_rate:.0} writes/s",
        t.elapsed().as_secs_f64()
    ));

    // 2. Many GeneralBots at once.
    secret(&run, "pg-credentials", &["username", "password"]).await;
    secret(&run, "pg-owner", &["username", "password"]).await;
    secret(&run, "s3-credentials", &["accessKeyId", "secretAccessKey"]).await;
    let api: Api<GeneralBot> = Api::namespaced(client.clone(), &ns);
    let template = example("minimal.yaml", &ns);
    let writes_before = operator_writes(run.metrics).await;
    let t = Instant::now();
    futures::stream::iter(0..bots)
        .map(|i| {
            let api = api.clone();
            let mut gb = template.clone();
            gb.metadata.name = Some(format!("bot-{i:04}"));
            gb.spec.server.replicas = 1;
            gb.spec.security.keys.jwt_algorithm = jwt;
            async move { api.create(&PostParams::default(), &gb).await.map(|_| ()) }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let created = t.elapsed();
    let mut last_note = Instant::now();
    let all_ready = loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let ready = list.items.iter().filter(|g| ready_with_keys(g)).count();
        if ready == bots {
            break t.elapsed();
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            note(&format!(
                "scale: {ready}/{bots} Ready after {:.0} s",
                t.elapsed().as_secs_f64()
            ));
            last_note = Instant::now();
        }
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "not all Ready in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let writes = operator_writes(run.metrics).await - writes_before;
    let rate = writes as f64 / all_ready.as_secs_f64();
    note(&format!(
        "scale: {bots} GeneralBots ({jwt:?}) created in {:.1} s; all Ready with keys and certificates after {:.1} s; operator writes {writes} ({:.1} per bot), {rate:.0} writes/s = {:.0} % of the reference; operator peak RSS {} MiB",
        created.as_secs_f64(),
        all_ready.as_secs_f64(),
        writes as f64 / bots as f64,
        100.0 * rate / raw_rate,
        peak_rss_kib(pid) / 1024
    ));

    // 3. Steady state with the data ring blocked on up to 100 of them.
    let blocked = bots.min(env_usize("GENERALBOT_SCALE_BLOCKED", 100));
    if blocked == 0 {
        return;
    }
    for i in 0..blocked {
        api.patch(
            &format!("bot-{i:04}"),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {"generalbots.io/rotate": "data@scale"}}
            })),
        )
        .await
        .unwrap();
    }
    // Added, then activated after the propagation delay (10 s), then blocked waiting
    // for a key-usage report.
    let t = Instant::now();
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let n = list
            .items
            .iter()
            .filter(|g| {
                g.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "KeysReady" && c.reason == "RotationBlocked")
                })
            })
            .count();
        if n == blocked {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(600), "only {n} blocked");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = operator_writes(run.metrics).await;
    let window = Duration::from_secs(180);
    tokio::time::sleep(window).await;
    let after = operator_writes(run.metrics).await;
    note(&format!(
        "scale: steady state, {blocked} GeneralBots with a blocked ring among {bots}: {} writes in {} s = {} writes per hour; operator peak RSS {} MiB",
        after - before,
        window.as_secs(),
        (after - before) * 3600 / window.as_secs(),
        peak_rss_kib(pid) / 1024
    ));
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|g| g.name_any())
        .collect();
    note(&format!("scale: done with {} GeneralBots", names.len()));
    drop(run);
}
