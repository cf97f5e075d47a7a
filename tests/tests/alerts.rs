//! The alerts and the dashboard: the PrometheusRule the operator writes for a GeneralBot
//! and the chart's own rules pass `promtool check rules`; `promtool test rules` shows
//! each bot alert firing at the guide's thresholds (and not below them); and every
//! series a rule or a dashboard panel reads is one the bot server or the operator
//! exports (their registries are encoded here, not grepped).

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use generalbot_operator::foreign::PrometheusRule;
use generalbot_tests::{TempDir, root, run, skip, which};
use serde_json::{Value, json};

fn promtool() -> Option<PathBuf> {
    let p = which("promtool");
    if p.is_none() {
        skip(
            "promtool",
            "promtool is not installed (apt-get install prometheus; .ci/run installs it)",
        );
    }
    p
}

/// The full example, with the rule it asks for.
fn example_rule() -> PrometheusRule {
    let path = root().join("examples/full.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let gb = generalbot_operator::render::parse(&path, &text, None).unwrap();
    assert!(
        gb.spec.monitoring.alerts,
        "the full example asks for alerts"
    );
    generalbot_operator::builders::desired(&gb)
        .unwrap()
        .prometheus_rule
        .expect("a PrometheusRule")
}

/// The chart's PrometheusRule, rendered with it turned on.
fn chart_rule() -> Option<Value> {
    let helm = which("helm")?;
    let (ok, out) = run(Command::new(helm)
        .args(["template", "gb", "--namespace", "generalbot-system"])
        .arg(root().join("charts/generalbot-operator"))
        .args([
            "--set",
            "apiServer.cidrs={10.96.0.1/32}",
            "--set",
            "monitoring.prometheusRule.enabled=true",
        ]));
    assert!(ok, "{out}");
    let doc = out
        .split("\n---")
        .find(|d| d.contains("kind: PrometheusRule"))
        .expect("the chart renders a PrometheusRule");
    Some(serde_saphyr::from_str(doc).unwrap())
}

/// Writes the rule groups as a rules file (JSON is YAML).
fn rules_file(dir: &Path, name: &str, spec: &Value) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, serde_json::to_string_pretty(spec).unwrap()).unwrap();
    file
}

#[test]
fn the_rules_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let dir = TempDir::new("gb-rules");
    let mut files = vec![rules_file(
        &dir.0,
        "bot.rules.json",
        &serde_json::to_value(&example_rule().spec).unwrap(),
    )];
    match chart_rule() {
        Some(rule) => files.push(rules_file(&dir.0, "operator.rules.json", &rule["spec"])),
        None => skip("chart rules", "helm is not installed"),
    }
    let (ok, out) = run(Command::new(promtool).args(["check", "rules"]).args(&files));
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 8 rules found"), "{out}");
    assert!(out.contains("SUCCESS: 2 rules found"), "{out}");
}

/// A series for `promtool test rules`: `values` in its notation, one per minute.
fn series(name: &str, labels: &str, values: &str) -> Value {
    json!({"series": format!("{name}{{{labels}}}"), "values": values})
}

#[test]
fn each_bot_alert_fires_at_its_threshold_and_not_below() {
    let Some(promtool) = promtool() else { return };
    let dir = TempDir::new("gb-rules-test");
    let rules = rules_file(
        &dir.0,
        "bot.rules.json",
        &serde_json::to_value(&example_rule().spec).unwrap(),
    );
    let bot = r#"namespace="bots",service="sales-bot""#;
    let other = r#"namespace="bots",service="another-bot""#;
    let owner = r#"namespace="bots",name="sales-bot""#;
    let rule = example_rule();
    let expect = |alert: &str, at: &str, fired: Value| json!({"eval_time": at, "alertname": alert, "exp_alerts": fired});
    // The alert as it fires: its severity, the labels its expression keeps, and its
    // annotations with `$labels` filled in.
    let fired = |alert: &str, severity: &str, item: Option<&str>| {
        let r = rule.spec.groups[0]
            .rules
            .iter()
            .find(|r| r.alert == alert)
            .unwrap();
        let mut labels = json!({"severity": severity});
        let mut annotations = serde_json::Map::new();
        for (k, v) in &r.annotations {
            let v = v.replace("{{ $labels.item }}", item.unwrap_or_default());
            annotations.insert(k.clone(), json!(v));
        }
        if let Some(item) = item {
            labels["item"] = json!(item);
        }
        json!([{"exp_labels": labels, "exp_annotations": annotations}])
    };
    // A condition's alert keeps whose condition it is.
    let mut backup_overdue = fired("GeneralBotBackupOverdue", "warning", None);
    backup_overdue[0]["exp_labels"]["namespace"] = json!("bots");
    backup_overdue[0]["exp_labels"]["name"] = json!("sales-bot");
    backup_overdue[0]["exp_labels"]["condition"] = json!("BackupsReady");
    let test = json!({
        "rule_files": [rules.file_name().unwrap().to_str().unwrap()],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                // 5 failed logins in the first 15 minutes (the guide's threshold), and
                // 4 on another bot (under it).
                series("botserver_failed_logins_total", bot, "0 0 1 2 3 4 5 5 5 5 5 5 5 5 5 5 5 5 5 5"),
                series("botserver_failed_logins_total", other, "0 0 1 2 3 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4"),
                series("botserver_lockouts_total", bot, "0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 1"),
                series("botserver_lockouts_total", other, "0x20"),
                series("botserver_authorization_failures_total", bot, "0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1"),
                series("botserver_authorization_failures_total", other, "0x20"),
                // The serving certificate has 6 days left, the CA 300.
                series("generalbot_operator_certificate_expiry_seconds", &format!(r#"{owner},item="serving""#), "518400x20"),
                series("generalbot_operator_certificate_expiry_seconds", &format!(r#"{owner},item="ca""#), "25920000x20"),
                // The data ring is blocked from minute 0 (the alert waits 15 minutes).
                series("generalbot_operator_rotation_blocked", &format!(r#"{owner},item="data""#), "1x30"),
                series("generalbot_operator_rotation_blocked", &format!(r#"{owner},item="jwt""#), "0x30"),
                series("generalbot_operator_condition", &format!(r#"{owner},condition="BackupsReady""#), "0x30"),
                series("generalbot_operator_condition", &format!(r#"{owner},condition="AuditChainIntact""#), "1x30"),
                series("generalbot_operator_condition", &format!(r#"{owner},condition="Ready""#), "1x30"),
            ],
            "alert_rule_test": [
                expect("GeneralBotFailedLogins", "4m", json!([])),
                expect("GeneralBotFailedLogins", "10m", fired("GeneralBotFailedLogins", "warning", None)),
                expect("GeneralBotLockouts", "6m", json!([])),
                expect("GeneralBotLockouts", "10m", fired("GeneralBotLockouts", "warning", None)),
                expect("GeneralBotPrivilegeEscalation", "8m", json!([])),
                expect("GeneralBotPrivilegeEscalation", "10m", fired("GeneralBotPrivilegeEscalation", "critical", None)),
                expect("GeneralBotCertificateExpiring", "10m", fired("GeneralBotCertificateExpiring", "critical", Some("serving"))),
                expect("GeneralBotRotationBlocked", "10m", json!([])),
                expect("GeneralBotRotationBlocked", "20m", fired("GeneralBotRotationBlocked", "warning", Some("data"))),
                expect("GeneralBotBackupOverdue", "3m", json!([])),
                expect("GeneralBotBackupOverdue", "10m", backup_overdue),
                expect("GeneralBotAuditChainBroken", "10m", json!([])),
                expect("GeneralBotNotReady", "20m", json!([])),
            ],
        }],
    });
    let file = dir.0.join("bot.test.json");
    std::fs::write(&file, serde_json::to_string_pretty(&test).unwrap()).unwrap();
    let (ok, out) = run(Command::new(promtool)
        .current_dir(&dir.0)
        .args(["test", "rules"])
        .arg(&file));
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every sample name the bot server and the operator export, from their registries.
fn exported() -> BTreeSet<String> {
    let mut text = generalbot_bot_server::metrics::Metrics::default().render();
    let mut registry = prometheus_client::registry::Registry::default();
    let operator = generalbot_operator::metrics::Metrics::default();
    operator.register(&mut registry);
    // A family with no series is not encoded at all: give each one a series.
    use generalbot_operator::metrics::{ConditionLabels, ErrorLabels, ItemLabels, WriteLabels};
    let item = ItemLabels {
        namespace: "n".into(),
        name: "b".into(),
        item: "i".into(),
    };
    operator.key_age.get_or_create(&item).set(1.0);
    operator.cert_expiry.get_or_create(&item).set(1.0);
    operator.rotation_blocked.get_or_create(&item).set(0);
    operator
        .errors
        .get_or_create(&ErrorLabels { error: "e".into() })
        .inc();
    operator
        .writes
        .get_or_create(&WriteLabels { kind: "k".into() })
        .inc();
    operator
        .conditions
        .get_or_create(&ConditionLabels {
            namespace: "n".into(),
            name: "b".into(),
            condition: "Ready".into(),
        })
        .set(1);
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    names
}

/// The names of our series an expression reads.
fn read_by(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("botserver_") || w.starts_with("generalbot_operator_"))
        .map(str::to_owned)
        .collect()
}

fn assert_exported(what: &str, exprs: &[String]) {
    let names = exported();
    let mut read = 0;
    for expr in exprs {
        for name in read_by(expr) {
            read += 1;
            assert!(
                names.contains(&name),
                "{what}: {name} is read by `{expr}` but exported by no registry; exported: {names:?}"
            );
        }
    }
    assert!(read > 0, "{what}: no series read");
}

#[test]
fn every_series_an_alert_reads_is_exported() {
    let rule = example_rule();
    let mut exprs: Vec<String> = rule.spec.groups[0]
        .rules
        .iter()
        .map(|r| r.expr.clone())
        .collect();
    if let Some(chart) = chart_rule() {
        for r in chart["spec"]["groups"][0]["rules"].as_array().unwrap() {
            exprs.push(r["expr"].as_str().unwrap().to_owned());
        }
    }
    assert_exported("alert rules", &exprs);
}

#[test]
fn the_dashboard_reads_only_exported_series() {
    let path = root().join("charts/generalbot-operator/dashboards/generalbot.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let ids: BTreeSet<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 15, "{exprs:?}");
    assert_exported("dashboard", &exprs);
    // Every security counter of the bot server has a panel.
    for name in [
        "botserver_failed_logins_total",
        "botserver_lockouts_total",
        "botserver_authorization_failures_total",
        "botserver_rate_limited_requests_total",
        "botserver_refresh_token_reuse_total",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(name)),
            "no panel reads {name}"
        );
    }
}
