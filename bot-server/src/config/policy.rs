//! Security limits and policies (the `BOTSERVER_*` settings) and their defaults.

use std::net::IpAddr;
use std::time::Duration;

use generalbot_crds::contract::env;

use super::{ConfigError, Source, list, parse, parse_positive, parse_secs};

/// Security limits and policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Session idle timeout.
    pub session_timeout: Duration,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_token_ttl: Duration,
    /// Failed logins before lockout.
    pub max_login_attempts: u32,
    /// Failed logins before an audit alert.
    pub login_alert_threshold: u32,
    /// Lockout duration.
    pub lockout_duration: Duration,
    /// CORS allow-list (exact origins); empty admits no cross-origin request.
    pub allowed_origins: Vec<String>,
    /// Requests per minute per client IP.
    pub rate_limit_per_ip: u32,
    /// Requests per hour per user.
    pub rate_limit_per_user: u32,
    /// Proxies whose `X-Forwarded-For` is trusted.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Largest request body in bytes.
    pub max_upload_size: usize,
    /// TOTP required for every login.
    pub require_mfa: bool,
    /// Audit log enabled.
    pub enable_audit: bool,
    /// Who may sign in with a local password (set from the directory settings).
    pub password_login: super::PasswordLogin,
    /// Client certificates on the API.
    pub client_certificates: ClientCertificates,
}

/// Client certificates on the API (`BOTSERVER_CLIENT_CERTIFICATES`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientCertificates {
    /// Not asked for.
    #[default]
    Off,
    /// Asked for, and verified against the trust bundle when presented.
    Optional,
    /// Every `/api/` request must come over a connection with a verified one.
    Required,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(3600),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            max_login_attempts: 10,
            login_alert_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            allowed_origins: Vec::new(),
            rate_limit_per_ip: 100,
            rate_limit_per_user: 1000,
            trusted_proxies: Vec::new(),
            max_upload_size: 10 * 1024 * 1024,
            require_mfa: false,
            enable_audit: true,
            password_login: super::PasswordLogin::All,
            client_certificates: ClientCertificates::Off,
        }
    }
}

/// Reads the policies.
pub fn policy(src: &dyn Source) -> Result<Policy, ConfigError> {
    let d = Policy::default();
    let mut trusted_proxies = Vec::new();
    for cidr in list(src, env::TRUSTED_PROXIES) {
        let net = cidr
            .parse::<ipnet::IpNet>()
            .or_else(|_| cidr.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| ConfigError::Invalid {
                var: env::TRUSTED_PROXIES,
                value: cidr.clone(),
                expected: "comma-separated CIDRs such as 10.0.0.0/8",
            })?;
        trusted_proxies.push(net);
    }
    let allowed_origins = list(src, env::ALLOWED_ORIGINS);
    for o in &allowed_origins {
        if o == "*" || !(o.starts_with("https://") || o.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                var: env::ALLOWED_ORIGINS,
                value: o.clone(),
                expected: "comma-separated origins such as https://chat.example.com (no wildcard)",
            });
        }
    }
    let max_login_attempts = parse_positive(src, env::MAX_LOGIN_ATTEMPTS, d.max_login_attempts)?;
    let login_alert_threshold =
        parse_positive(src, env::LOGIN_ALERT_THRESHOLD, d.login_alert_threshold)?;
    Ok(Policy {
        session_timeout: parse_secs(src, env::SESSION_TIMEOUT, d.session_timeout)?,
        access_token_ttl: parse_secs(src, env::ACCESS_TOKEN_TTL, d.access_token_ttl)?,
        refresh_token_ttl: parse_secs(src, env::REFRESH_TOKEN_TTL, d.refresh_token_ttl)?,
        max_login_attempts,
        login_alert_threshold,
        lockout_duration: parse_secs(src, env::LOCKOUT_DURATION, d.lockout_duration)?,
        allowed_origins,
        rate_limit_per_ip: parse_positive(src, env::RATE_LIMIT_PER_IP, d.rate_limit_per_ip)?,
        rate_limit_per_user: parse_positive(src, env::RATE_LIMIT_PER_USER, d.rate_limit_per_user)?,
        trusted_proxies,
        max_upload_size: parse(
            src,
            env::MAX_UPLOAD_SIZE,
            d.max_upload_size,
            "a size in bytes",
        )?,
        require_mfa: parse(src, env::REQUIRE_MFA, d.require_mfa, "true or false")?,
        enable_audit: parse(src, env::ENABLE_AUDIT, d.enable_audit, "true or false")?,
        password_login: d.password_login,
        client_certificates: match src.get(env::CLIENT_CERTIFICATES).as_deref() {
            None | Some("off") => ClientCertificates::Off,
            Some("optional") => ClientCertificates::Optional,
            Some("required") => ClientCertificates::Required,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: env::CLIENT_CERTIFICATES,
                    value: other.to_owned(),
                    expected: "off, optional or required",
                });
            }
        },
    })
}
