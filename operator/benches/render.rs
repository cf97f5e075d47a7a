//! Benchmark: how fast the builders turn GeneralBots into objects, and how much memory
//! the controller's caches take for 1,000 GeneralBots and everything they own.
//!
//! `cargo bench -p generalbot-operator` prints objects rendered per second (build plus
//! YAML, as `render` does, and build alone, as a reconcile does) and the resident memory
//! added by filling watch caches with 1,000 GeneralBots' objects.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::time::Instant;

use generalbot_crds::GeneralBot;
use generalbot_operator::builders::desired;
use generalbot_operator::render;
use kube::runtime::reflector;
use kube::runtime::watcher;

const BOTS: usize = 1000;

fn bots() -> Vec<GeneralBot> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/full.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let base = render::parse(&path, &text, Some("bots")).unwrap();
    (0..BOTS)
        .map(|i| {
            let mut gb = base.clone();
            gb.metadata.name = Some(format!("bot-{i}"));
            gb.metadata.uid = Some(format!("00000000-0000-0000-0000-{i:012}"));
            gb
        })
        .collect()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let bots = bots();
    let rounds = 5;

    // Build only: what a reconcile does.
    let mut best = f64::MAX;
    let mut objects = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        objects = 0;
        for gb in &bots {
            let d = black_box(desired(gb).unwrap());
            objects += 4 + d.network_policies.len();
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "build: {BOTS} GeneralBots -> {objects} objects in {:.1} ms = {:.0} objects/s",
        best * 1e3,
        objects as f64 / best
    );

    // Build and print as YAML, generating the key and certificate Secrets (RSA-2048 for
    // the RS256 ring, three P-256 certificates): what `render` does. Key generation
    // dominates, so this runs once over 100 GeneralBots.
    let render_bots = &bots[..100];
    let mut best = f64::MAX;
    let mut bytes = 0;
    for _ in 0..1 {
        let start = Instant::now();
        bytes = 0;
        objects = 0;
        for gb in render_bots {
            let out = black_box(render::render(gb).unwrap());
            bytes += out.len();
            objects += out.matches("\n---\n").count() + 1;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "render (with key and certificate generation): {} GeneralBots -> {objects} objects ({} KiB of YAML) in {:.1} ms = {:.0} objects/s",
        render_bots.len(),
        bytes / 1024,
        best * 1e3,
        objects as f64 / best
    );

    // Validation: the fullest example read and checked as `render` does (structural
    // schema, then CEL and label keys) and built, against the same read and build with
    // validation off (the schema and the rules were compiled by the first parse above).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/full.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let n = 2000;
    let timed = |validate: bool| {
        let start = Instant::now();
        for _ in 0..n {
            let gb = if validate {
                let gb = render::parse(&path, &text, Some("bots")).unwrap();
                assert!(generalbot_operator::validate::check_spec(&gb).is_empty());
                gb
            } else {
                serde_saphyr::from_str::<GeneralBot>(&text).unwrap()
            };
            black_box(desired(&gb).unwrap());
        }
        start.elapsed().as_secs_f64() / f64::from(n)
    };
    let (mut on, mut off) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        off = off.min(timed(false));
        on = on.min(timed(true));
    }
    println!(
        "examples/full.yaml read and built: {:.3} ms with validation (schema + CEL + label keys), {:.3} ms without: {:.2}x",
        on * 1e3,
        off * 1e3,
        on / off
    );

    // Leaf issuance: ECDSA P-256 key pair plus a certificate signed by a P-256
    // intermediate, as the operator issues the serving certificate.
    let now = jiff::Timestamp::now();
    let day = jiff::SignedDuration::from_hours(24);
    let root = generalbot_operator::pki::root_ca("bench root", now, day * 3650).unwrap();
    let inter = generalbot_operator::pki::intermediate_ca(
        &generalbot_operator::pki::Signer::of(&root).unwrap(),
        "bench intermediate",
        &generalbot_operator::pki::permitted_dns("bots"),
        now,
        day * 365,
    )
    .unwrap();
    let signer = generalbot_operator::pki::Signer::of(&inter).unwrap();
    let names = generalbot_operator::pki::service_dns_names("bot", "bots");
    let n = 500;
    let start = Instant::now();
    for _ in 0..n {
        black_box(generalbot_operator::pki::serving_leaf(&signer, &names, now, day * 90).unwrap());
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "leaf issuance (P-256 key + ECDSA-SHA256 signature): {:.3} ms each, {:.0}/s",
        per * 1e3,
        1.0 / per
    );

    // Rotating every ring: one forced step (add) on every ring of every bot's key Secret.
    for (label, alg, count) in [
        (
            "ES256",
            generalbot_crds::v1alpha1::JwtAlgorithm::ES256,
            BOTS,
        ),
        ("RS256", generalbot_crds::v1alpha1::JwtAlgorithm::RS256, 100),
    ] {
        let mut forced: Vec<GeneralBot> = bots.iter().take(count).cloned().collect();
        for gb in &mut forced {
            gb.spec.security.keys.jwt_algorithm = alg;
        }
        let secrets: Vec<_> = forced
            .iter()
            .map(|gb| {
                let ctx = generalbot_operator::builders::BuildContext::new(gb).unwrap();
                generalbot_operator::builders::key_secret(&ctx, now)
                    .unwrap()
                    .0
                    .clone()
            })
            .collect();
        for gb in &mut forced {
            gb.metadata.annotations = Some(std::collections::BTreeMap::from([(
                "generalbots.io/rotate".to_owned(),
                "all@bench".to_owned(),
            )]));
        }
        let start = Instant::now();
        for (gb, secret) in forced.iter().zip(&secrets) {
            let specs = generalbot_operator::keyrings::ring_specs(
                gb,
                generalbot_operator::keyrings::DEFAULT_PROPAGATION,
            );
            let plan =
                generalbot_operator::keyrings::plan(gb, secret, &specs, now, true, None).unwrap();
            assert_eq!(plan.done.len(), 4);
            black_box(plan);
        }
        let took = start.elapsed().as_secs_f64();
        println!(
            "rotation step (add a key to all 4 rings), JWT {label}: {count} GeneralBots in {:.2} s = {:.2} ms per GeneralBot; {BOTS} would take {:.1} s",
            took,
            took * 1e3 / count as f64,
            took * BOTS as f64 / count as f64
        );
    }

    // Memory: fill watch caches as the controller holds them.
    let before = rss_kib();
    let (gb_store, mut gb_writer) = reflector::store::<GeneralBot>();
    let (dep_store, mut dep_writer) = reflector::store();
    let (svc_store, mut svc_writer) = reflector::store();
    let (sa_store, mut sa_writer) = reflector::store();
    let (pdb_store, mut pdb_writer) = reflector::store();
    let (np_store, mut np_writer) = reflector::store();
    for gb in &bots {
        let d = desired(gb).unwrap();
        gb_writer.apply_watcher_event(&watcher::Event::Apply(gb.clone()));
        dep_writer.apply_watcher_event(&watcher::Event::Apply(d.deployment));
        svc_writer.apply_watcher_event(&watcher::Event::Apply(d.service));
        sa_writer.apply_watcher_event(&watcher::Event::Apply(d.service_account));
        pdb_writer.apply_watcher_event(&watcher::Event::Apply(d.pod_disruption_budget));
        for p in d.network_policies {
            np_writer.apply_watcher_event(&watcher::Event::Apply(p));
        }
    }
    let after = rss_kib();
    let cached = gb_store.len()
        + dep_store.len()
        + svc_store.len()
        + sa_store.len()
        + pdb_store.len()
        + np_store.len();
    println!(
        "memory: {cached} cached objects for {BOTS} GeneralBots add {:.1} MiB resident ({:.1} KiB per GeneralBot)",
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / BOTS as f64
    );
}
