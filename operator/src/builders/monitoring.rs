//! The bot's alerts and scraping: a `PrometheusRule` holding the General Bots guide's
//! alerts with the thresholds of `spec.monitoring.thresholds`, and a `ServiceMonitor`
//! that scrapes the bot server over TLS verified against the bot's CA.
//!
//! The bot server's series are picked by the `namespace` and `service` labels the
//! Prometheus Operator gives every target; the operator's own series carry the
//! GeneralBot's `namespace` and `name` (its chart scrapes them with `honorLabels`).

use std::collections::BTreeMap;

use generalbot_crds::contract::{METRICS_PATH, METRICS_PORT_NAME, tls_files};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::BuildContext;
use super::meta::{object_meta, selector_labels};
use crate::foreign::{
    AlertRule, PrometheusRule, PrometheusRuleSpec, RuleGroup, ScrapeEndpoint, ScrapeTls, SecretKey,
    SecretOrConfigMap, ServiceMonitor, ServiceMonitorSpec,
};

/// Names of the metrics the alerts read, as their samples are named.
pub mod series {
    /// Failed logins (bot server).
    pub const FAILED_LOGINS: &str = "botserver_failed_logins_total";
    /// Lockouts (bot server).
    pub const LOCKOUTS: &str = "botserver_lockouts_total";
    /// Administrator operations refused to a non-administrator (bot server).
    pub const AUTHORIZATION_FAILURES: &str = "botserver_authorization_failures_total";
    /// Seconds until each certificate expires (operator).
    pub const CERTIFICATE_EXPIRY: &str = "generalbot_operator_certificate_expiry_seconds";
    /// 1 while a key ring's rotation is blocked (operator).
    pub const ROTATION_BLOCKED: &str = "generalbot_operator_rotation_blocked";
    /// 1 while a condition is True, 0 while False (operator).
    pub const CONDITION: &str = "generalbot_operator_condition";
}

/// The `PrometheusRule`, when `spec.monitoring.alerts` asks for it.
pub fn prometheus_rule(ctx: &BuildContext<'_>) -> Option<PrometheusRule> {
    if !ctx.gb.spec.monitoring.alerts {
        return None;
    }
    Some(PrometheusRule {
        metadata: monitoring_meta(ctx),
        spec: PrometheusRuleSpec {
            groups: vec![RuleGroup {
                name: format!("generalbot.{}.{}", ctx.namespace, ctx.name),
                rules: alert_rules(ctx),
            }],
        },
    })
}

/// The `ServiceMonitor`, when `spec.monitoring.serviceMonitor` asks for it.
pub fn service_monitor(ctx: &BuildContext<'_>) -> Option<ServiceMonitor> {
    if !ctx.gb.spec.monitoring.service_monitor {
        return None;
    }
    Some(ServiceMonitor {
        metadata: monitoring_meta(ctx),
        spec: ServiceMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(ctx.name)),
                ..LabelSelector::default()
            },
            endpoints: vec![ScrapeEndpoint {
                port: METRICS_PORT_NAME.to_owned(),
                scheme: "https".to_owned(),
                path: METRICS_PATH.to_owned(),
                tls_config: ScrapeTls {
                    ca: SecretOrConfigMap {
                        secret: SecretKey {
                            name: crate::certs::tls_secret_name(ctx.name),
                            key: tls_files::CA.to_owned(),
                        },
                    },
                    server_name: format!("{}.{}.svc", ctx.name, ctx.namespace),
                },
            }],
        },
    })
}

/// The metadata of both objects: ours, plus `spec.monitoring.labels` for Prometheus's
/// selectors (ours win: the operator finds its objects by them).
fn monitoring_meta(
    ctx: &BuildContext<'_>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    let mut metadata = object_meta(ctx, ctx.name);
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in &ctx.gb.spec.monitoring.labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    metadata
}

/// The alerting rules, in the guide's order.
pub fn alert_rules(ctx: &BuildContext<'_>) -> Vec<AlertRule> {
    let spec = &ctx.gb.spec;
    let t = &spec.monitoring.thresholds;
    let failed = t
        .failed_logins
        .unwrap_or(spec.server.settings.login_alert_threshold);
    let window = format!("{}m", t.window_minutes);
    let bot = format!(r#"namespace="{}",service="{}""#, ctx.namespace, ctx.name);
    let owner = format!(r#"namespace="{}",name="{}""#, ctx.namespace, ctx.name);
    let who = format!("GeneralBot {}/{}", ctx.namespace, ctx.name);
    let increase = |metric: &str| format!("sum(increase({metric}{{{bot}}}[{window}]))");
    let condition = |c: &str| {
        format!(
            r#"max by (namespace, name, condition) ({}{{{owner},condition="{c}"}}) == 0"#,
            series::CONDITION
        )
    };

    let mut rules = vec![
        rule(
            "GeneralBotFailedLogins",
            format!("{} >= {failed}", increase(series::FAILED_LOGINS)),
            None,
            "warning",
            format!("{who}: {failed} or more failed logins in {window}"),
            "The guide warns at 5 failed logins: someone may be guessing passwords. The audit log (login_failure) names the accounts and client addresses.",
        ),
        rule(
            "GeneralBotLockouts",
            format!("{} >= {}", increase(series::LOCKOUTS), t.lockouts),
            None,
            "warning",
            format!("{who}: {} or more lockouts in {window}", t.lockouts),
            "Accounts or client addresses were locked after too many failed logins (spec.server.settings.maxLoginAttempts).",
        ),
        rule(
            "GeneralBotPrivilegeEscalation",
            format!("{} > 0", increase(series::AUTHORIZATION_FAILURES)),
            None,
            "critical",
            format!("{who}: a user asked for an administrator's operation"),
            "A privilege-escalation attempt: a signed-in user without the administrator role called an administrator's API. The audit log (authorization_failure) names the user.",
        ),
        rule(
            "GeneralBotCertificateExpiring",
            format!(
                "min by (item) ({}{{{owner}}}) < {}",
                series::CERTIFICATE_EXPIRY,
                u64::from(t.certificate_expiry_days) * 86_400
            ),
            None,
            "critical",
            format!(
                "{who}: certificate {{{{ $labels.item }}}} expires within {} days",
                t.certificate_expiry_days
            ),
            "The operator renews certificates long before this: renewal is failing. kubectl describe gb shows why.",
        ),
        rule(
            "GeneralBotRotationBlocked",
            format!(
                "max by (item) ({}{{{owner}}}) > 0",
                series::ROTATION_BLOCKED
            ),
            Some("15m"),
            "warning",
            format!("{who}: the rotation of key ring {{{{ $labels.item }}}} is blocked"),
            "A key rotation cannot finish (the KeysReady condition says why, often a bot server that cannot report its key usage). Keys are kept until it can.",
        ),
        rule(
            "GeneralBotAuditChainBroken",
            condition("AuditChainIntact"),
            None,
            "critical",
            format!("{who}: the audit chain is broken"),
            "The tamper-evident audit log does not verify: rows were changed or removed. The AuditChainIntact condition names the first bad row.",
        ),
        rule(
            "GeneralBotNotReady",
            condition("Ready"),
            Some("15m"),
            "warning",
            format!("{who} is not Ready"),
            "The Ready condition has been False for 15 minutes; its reason and message say what to fix.",
        ),
    ];
    if crate::builders::backups_on(spec) {
        rules.push(rule(
            "GeneralBotBackupOverdue",
            condition("BackupsReady"),
            Some("5m"),
            "warning",
            format!("{who}: the backup is overdue or failed"),
            "No backup finished after its scheduled time (spec.backup.schedule), or the newest backup Job failed. The BackupsReady condition says which.",
        ));
    }
    rules
}

fn rule(
    alert: &str,
    expr: String,
    for_: Option<&str>,
    severity: &str,
    summary: String,
    description: &str,
) -> AlertRule {
    AlertRule {
        alert: alert.to_owned(),
        expr,
        for_: for_.map(str::to_owned),
        labels: BTreeMap::from([("severity".to_owned(), severity.to_owned())]),
        annotations: BTreeMap::from([
            ("summary".to_owned(), summary),
            ("description".to_owned(), description.to_owned()),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{mk_full_gb, mk_gb};

    #[test]
    fn nothing_unless_asked() {
        let gb = mk_gb("bot");
        let ctx = BuildContext::new(&gb).unwrap();
        assert!(prometheus_rule(&ctx).is_none());
        assert!(service_monitor(&ctx).is_none());
    }

    #[test]
    fn thresholds_come_from_the_spec() {
        let mut gb = mk_full_gb("bot");
        gb.spec.monitoring.alerts = true;
        gb.spec.server.settings.login_alert_threshold = 4;
        gb.spec.monitoring.thresholds.window_minutes = 30;
        gb.spec.monitoring.thresholds.certificate_expiry_days = 3;
        let ctx = BuildContext::new(&gb).unwrap();
        let rule = prometheus_rule(&ctx).unwrap();
        let rules = &rule.spec.groups[0].rules;
        let by = |name: &str| rules.iter().find(|r| r.alert == name).unwrap();
        assert_eq!(
            by("GeneralBotFailedLogins").expr,
            r#"sum(increase(botserver_failed_logins_total{namespace="bots",service="bot"}[30m])) >= 4"#
        );
        assert!(
            by("GeneralBotCertificateExpiring")
                .expr
                .ends_with("< 259200")
        );
        assert_eq!(
            by("GeneralBotPrivilegeEscalation").labels["severity"],
            "critical"
        );
        // Backups are on in the full fixture: their alert is there.
        assert!(rules.iter().any(|r| r.alert == "GeneralBotBackupOverdue"));

        gb.spec.monitoring.thresholds.failed_logins = Some(12);
        gb.spec.backup.enabled = false;
        let ctx = BuildContext::new(&gb).unwrap();
        let rules = alert_rules(&ctx);
        assert!(rules[0].expr.ends_with(">= 12"));
        assert!(!rules.iter().any(|r| r.alert == "GeneralBotBackupOverdue"));
    }

    #[test]
    fn the_scrape_verifies_the_bot_against_its_ca() {
        let mut gb = mk_gb("bot");
        gb.spec.monitoring.service_monitor = true;
        gb.spec.monitoring.labels = BTreeMap::from([("release".to_owned(), "prom".to_owned())]);
        let ctx = BuildContext::new(&gb).unwrap();
        let m = service_monitor(&ctx).unwrap();
        assert_eq!(m.metadata.labels.as_ref().unwrap()["release"], "prom");
        let e = &m.spec.endpoints[0];
        assert_eq!(e.scheme, "https");
        assert_eq!(e.tls_config.ca.secret.name, "bot-tls");
        assert_eq!(e.tls_config.server_name, "bot.bots.svc");
        assert_eq!(
            m.spec.selector.match_labels.as_ref().unwrap(),
            &selector_labels("bot")
        );
    }
}
