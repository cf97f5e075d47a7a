//! Prometheus metrics of the security core: failed logins, lockouts, rate-limited
//! requests and request latency, rendered in the text format on `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Failed login attempts.
    pub failed_logins: Counter,
    /// Account or IP lockouts.
    pub lockouts: Counter,
    /// Requests answered 429.
    pub rate_limited: Counter,
    /// Administrator operations refused to a signed-in non-administrator
    /// (privilege-escalation attempts).
    pub authorization_failures: Counter,
    /// Refresh-token reuses detected (families revoked).
    pub refresh_reuse: Counter,
    /// API request latency in seconds.
    pub request_seconds: Histogram,
    /// Stored values a re-encryption pass could not decrypt (left as they are).
    pub undecryptable: Counter,
    /// Audit rows that could not be appended after every retry.
    pub audit_failures: Counter,
    /// Mail handed to the SMTP server.
    pub mail_sent: Counter,
    /// Mail that could not be sent (queue full, server refused or unreachable).
    pub mail_failures: Counter,
    /// Messages a bot answered from its knowledge base.
    pub bot_answered: Counter,
    /// Messages a bot was unsure about (fallback and suggestions).
    pub bot_unsure: Counter,
    /// Flows stopped at their step limit.
    pub bot_step_limits: Counter,
    /// WebSocket connections dropped for suspicious activity.
    pub websocket_drops: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("botserver");
        let failed_logins = Counter::default();
        let lockouts = Counter::default();
        let rate_limited = Counter::default();
        let refresh_reuse = Counter::default();
        let authorization_failures = Counter::default();
        let request_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let undecryptable = Counter::default();
        let audit_failures = Counter::default();
        let mail_sent = Counter::default();
        let mail_failures = Counter::default();
        let bot_answered = Counter::default();
        let bot_unsure = Counter::default();
        let bot_step_limits = Counter::default();
        let websocket_drops = Counter::default();
        registry.register(
            "bot_answered",
            "Messages a bot answered from its knowledge base",
            bot_answered.clone(),
        );
        registry.register(
            "bot_unsure",
            "Messages a bot was unsure about (fallback and suggestions)",
            bot_unsure.clone(),
        );
        registry.register(
            "bot_step_limits",
            "Conversation flows stopped at their step limit",
            bot_step_limits.clone(),
        );
        registry.register(
            "websocket_drops",
            "WebSocket connections dropped for suspicious activity (invalid frames, rate abuse)",
            websocket_drops.clone(),
        );
        registry.register(
            "mail_sent",
            "Mail handed to the SMTP server",
            mail_sent.clone(),
        );
        registry.register(
            "mail_failures",
            "Mail that could not be sent (queue full, server refused or unreachable)",
            mail_failures.clone(),
        );
        registry.register(
            "audit_append_failures",
            "Audit rows that could not be appended after every retry (the JSON log still has them)",
            audit_failures.clone(),
        );
        registry.register(
            "undecryptable_values",
            "Stored values a re-encryption pass could not decrypt and left as they are",
            undecryptable.clone(),
        );
        registry.register(
            "failed_logins",
            "Failed login attempts",
            failed_logins.clone(),
        );
        registry.register("lockouts", "Accounts or IPs locked out", lockouts.clone());
        registry.register(
            "authorization_failures",
            "Administrator operations refused to a signed-in non-administrator (privilege-escalation attempts)",
            authorization_failures.clone(),
        );
        registry.register(
            "rate_limited_requests",
            "Requests answered 429",
            rate_limited.clone(),
        );
        registry.register(
            "refresh_token_reuse",
            "Refresh-token reuses (family revoked)",
            refresh_reuse.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "API request latency",
            request_seconds.clone(),
        );
        Self {
            registry,
            failed_logins,
            lockouts,
            authorization_failures,
            rate_limited,
            refresh_reuse,
            request_seconds,
            undecryptable,
            audit_failures,
            mail_sent,
            mail_failures,
            bot_answered,
            bot_unsure,
            bot_step_limits,
            websocket_drops,
        }
    }
}

impl Metrics {
    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
