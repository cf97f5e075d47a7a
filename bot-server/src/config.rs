//! The server's configuration: read once at start from environment variables and
//! mounted files (names from [`generalbot_crds::contract::env`] and the General Bots
//! security guide), validated, and refused with a message naming the variable and the
//! problem when a production setting is unsafe.
//!
//! Every secret has a `_FILE` variant; the operator only ever uses the file. Setting
//! both the value and the file of one secret is refused as ambiguous.
//!
//! `BOTSERVER_JWT_SECRET(_FILE)` holds a PEM (PKCS#8) RSA private key, not the guide's
//! "256-bit hex string": access tokens are RS256, and RS256 signs with an RSA key, which
//! no 256-bit string can be. `BOTSERVER_ENCRYPTION_KEY(_FILE)` and
//! `DATABASE_ENCRYPTION_KEY(_FILE)` are 64 hex characters (32 bytes). The HMAC key for
//! blind indexes and refresh tokens, which the guide does not name, is derived from the
//! database key unless a key-ring directory provides `hmac.json`.
//!
//! Key rings in the key directory ([`contract::KEYS_DIR`], or `BOTSERVER_KEYS_DIR`) take
//! precedence over the single-key variables when their files are present.
//!
//! `--dev` generates ephemeral keys (and an ES256 signing key, because `ring` cannot
//! generate RSA keys), binds 127.0.0.1 only and logs a loud warning.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use generalbot_crds::contract::{self, env, key_files};

use crate::crypto::keyring::{KeyRingError, SigningRing, SymmetricRing};

/// The API's TLS certificate chain (PEM).
pub const TLS_CERT_FILE: &str = env::TLS_CERT_FILE;
/// The API's TLS private key (PEM).
pub const TLS_KEY_FILE: &str = env::TLS_KEY_FILE;
/// The guide's name of the token-signing secret (here a PEM RSA private key).
pub const JWT_SECRET: &str = env::JWT_SECRET;
/// The guide's data-encryption key (64 hex characters).
pub const ENCRYPTION_KEY: &str = env::ENCRYPTION_KEY;
/// The guide's database field-encryption key (64 hex characters).
pub const DATABASE_ENCRYPTION_KEY: &str = env::DATABASE_ENCRYPTION_KEY;
/// A full database URL (`postgres://…` or `sqlite:…`), used when `DATABASE_HOST` is unset.
pub const DATABASE_URL: &str = env::DATABASE_URL;
/// File holding the PostgreSQL client certificate (PEM), for mutual TLS.
pub const DATABASE_CLIENT_CERT_FILE: &str = env::DATABASE_CLIENT_CERT_FILE;
/// File holding the PostgreSQL client key (PEM).
pub const DATABASE_CLIENT_KEY_FILE: &str = env::DATABASE_CLIENT_KEY_FILE;

/// What is wrong with the configuration. Every message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required secret is absent.
    #[error(
        "{var} is not set: set {var}_FILE to a file holding {what} (or run with --dev for ephemeral keys)"
    )]
    SecretMissing {
        /// The variable.
        var: &'static str,
        /// What the secret must hold.
        what: &'static str,
    },
    /// Both the value and the file of one secret are set.
    #[error("both {var} and {var}_FILE are set: keep only {var}_FILE")]
    SecretSetTwice {
        /// The variable.
        var: &'static str,
    },
    /// A hex key has the wrong length or characters.
    #[error(
        "{var} must be 64 hex characters (32 bytes); it has {len} characters or non-hex digits: generate one with `openssl rand -hex 32`"
    )]
    KeyMalformed {
        /// The variable.
        var: &'static str,
        /// Its length.
        len: usize,
    },
    /// A key is all zero bytes.
    #[error("{var} is all zeros: generate a random key with `openssl rand -hex 32`")]
    KeyAllZeros {
        /// The variable.
        var: &'static str,
    },
    /// The JWT key is not a usable RSA PKCS#8 key.
    #[error(
        "{var} does not hold a PEM PKCS#8 RSA private key of at least 2048 bits: generate one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`"
    )]
    JwtKeyInvalid {
        /// The variable.
        var: &'static str,
    },
    /// A secret file is readable by everybody.
    #[error("{var}: {path} is readable by others (mode {mode:o}): run `chmod o-rwx {path}`")]
    KeyFileReadableByOthers {
        /// The variable.
        var: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A secret file is readable by a group the process is not in.
    #[error(
        "{var}: {path} is readable by group {gid}, which is not this process's group: run `chmod g-rwx {path}` or `chgrp <the server's group> {path}`"
    )]
    KeyFileReadableByGroup {
        /// The variable.
        var: &'static str,
        /// The file.
        path: PathBuf,
        /// The file's group.
        gid: u32,
    },
    /// A secret file cannot be read.
    #[error("{var}: cannot read {path}: {source}")]
    FileUnreadable {
        /// The variable.
        var: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A setting does not parse.
    #[error("{var}={value:?} is not valid: {expected}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// The value (never a secret).
        value: String,
        /// What is expected.
        expected: &'static str,
    },
    /// A key-ring file is unusable.
    #[error("key ring {path}: {source}")]
    KeyRing {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: KeyRingError,
    },
    /// Random bytes for dev keys could not be drawn.
    #[error("generating development keys: {0}")]
    Random(String),
}

/// The key material the server starts with.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Data (files, attachments) encryption ring.
    pub data: SymmetricRing,
    /// Database field encryption ring.
    pub field: SymmetricRing,
    /// HMAC ring (blind indexes, refresh tokens).
    pub hmac: SymmetricRing,
    /// Token signing ring.
    pub jwt: SigningRing,
    /// Token of the operator for [`contract::KEY_USAGE_PATH`], if mounted.
    pub ops_token: Option<zeroize::Zeroizing<String>>,
    /// The key directory, when the rings came from it (then they are reloaded).
    pub keys_dir: Option<PathBuf>,
}

/// How to reach the database.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// PostgreSQL.
    Postgres {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Database name.
        database: String,
        /// User.
        user: String,
        /// Password (from a file).
        password: Option<zeroize::Zeroizing<String>>,
        /// True for `verify-full`, false for `disable`.
        verify_full: bool,
        /// CA of the server certificate.
        ca_file: Option<PathBuf>,
        /// Client certificate and key for mutual TLS.
        client_cert: Option<(PathBuf, PathBuf)>,
    },
    /// A URL as given (`sqlite:…`, or `postgres://…` in development).
    Url(zeroize::Zeroizing<String>),
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres {
                host,
                port,
                database,
                verify_full,
                ..
            } => f
                .debug_struct("Postgres")
                .field("host", host)
                .field("port", port)
                .field("database", database)
                .field("verify_full", verify_full)
                .field("user", &"<redacted>")
                .field("password", &"<redacted>")
                .finish(),
            Self::Url(_) => f.write_str("Url(<redacted>)"),
        }
    }
}

/// How to reach the cache.
#[derive(Clone)]
pub struct CacheConfig {
    /// `redis://` or `rediss://` URL without credentials.
    pub url: String,
    /// Password, from a file.
    pub password: Option<zeroize::Zeroizing<String>>,
    /// CA of the cache's certificate.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

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
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Development mode.
    pub dev: bool,
    /// API address.
    pub listen: SocketAddr,
    /// Metrics address.
    pub metrics_listen: SocketAddr,
    /// Keys.
    pub keys: Keys,
    /// Database.
    pub database: DatabaseConfig,
    /// Cache; in memory when absent.
    pub cache: Option<CacheConfig>,
    /// TLS certificate and key files of the API.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Policies.
    pub policy: Policy,
}

/// Where settings come from: the environment in production, a map in tests.
pub trait Source {
    /// The value of `var`, if set and not empty.
    fn get(&self, var: &str) -> Option<String>;
    /// The groups the process belongs to (effective gid first).
    fn groups(&self) -> Vec<u32>;
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok().filter(|v| !v.is_empty())
    }
    fn groups(&self) -> Vec<u32> {
        process_groups()
    }
}

/// A fixed map of settings, for tests and tools.
#[derive(Debug, Default, Clone)]
pub struct MapSource {
    /// The settings.
    pub vars: BTreeMap<String, String>,
    /// The groups of the pretend process.
    pub groups: Vec<u32>,
}

impl Source for MapSource {
    fn get(&self, var: &str) -> Option<String> {
        self.vars.get(var).filter(|v| !v.is_empty()).cloned()
    }
    fn groups(&self) -> Vec<u32> {
        self.groups.clone()
    }
}

/// The effective gid and supplementary groups of this process, from `/proc/self/status`.
/// Kubernetes adds the pod's `fsGroup` as a supplementary group, which is why those
/// count as the process's own.
pub fn process_groups() -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return vec![u32::try_from(contract::RUN_AS_GROUP).unwrap_or(10001)];
    };
    let mut out = Vec::new();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Gid:") {
            if let Some(egid) = rest.split_whitespace().nth(1).and_then(|g| g.parse().ok()) {
                out.insert(0, egid);
            }
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            out.extend(
                rest.split_whitespace()
                    .filter_map(|g| g.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// Refuses a secret file readable by others, or by a group the process is not in.
pub fn check_secret_file(
    var: &'static str,
    path: &Path,
    groups: &[u32],
) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::FileUnreadable {
        var,
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(ConfigError::KeyFileReadableByOthers {
            var,
            path: path.to_owned(),
            mode,
        });
    }
    if mode & 0o070 != 0 && !groups.contains(&meta.gid()) {
        return Err(ConfigError::KeyFileReadableByGroup {
            var,
            path: path.to_owned(),
            gid: meta.gid(),
        });
    }
    Ok(())
}

/// Reads a secret file after checking its permissions (production only).
fn read_secret_file(
    var: &'static str,
    path: &Path,
    groups: &[u32],
    check: bool,
) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    if check {
        check_secret_file(var, path, groups)?;
    }
    std::fs::read_to_string(path)
        .map(|s| zeroize::Zeroizing::new(s.trim().to_owned()))
        .map_err(|source| ConfigError::FileUnreadable {
            var,
            path: path.to_owned(),
            source,
        })
}

/// The value of a secret from `VAR` or `VAR_FILE`.
fn secret(
    src: &dyn Source,
    var: &'static str,
    check: bool,
) -> Result<Option<zeroize::Zeroizing<String>>, ConfigError> {
    let file_var = format!("{var}_FILE");
    match (src.get(var), src.get(&file_var)) {
        (Some(_), Some(_)) => Err(ConfigError::SecretSetTwice { var }),
        (Some(v), None) => Ok(Some(zeroize::Zeroizing::new(v))),
        (None, Some(p)) => read_secret_file(var, Path::new(&p), &src.groups(), check).map(Some),
        (None, None) => Ok(None),
    }
}

/// A file-only secret (`DATABASE_PASSWORD_FILE` and the like), named by its `_FILE` variable.
fn secret_file(
    src: &dyn Source,
    file_var: &'static str,
    check: bool,
) -> Result<Option<zeroize::Zeroizing<String>>, ConfigError> {
    match src.get(file_var) {
        Some(p) => read_secret_file(file_var, Path::new(&p), &src.groups(), check).map(Some),
        None => Ok(None),
    }
}

/// Decodes a 64-hex-character key and refuses weak ones.
pub fn parse_hex_key(
    var: &'static str,
    hex: &str,
) -> Result<zeroize::Zeroizing<[u8; 32]>, ConfigError> {
    let hex = hex.trim();
    let malformed = || ConfigError::KeyMalformed {
        var,
        len: hex.len(),
    };
    if hex.len() != 64 {
        return Err(malformed());
    }
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    for (slot, pair) in key.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let hi = hex_digit(pair.first().copied()).ok_or_else(malformed)?;
        let lo = hex_digit(pair.get(1).copied()).ok_or_else(malformed)?;
        *slot = (hi << 4) | lo;
    }
    if key.iter().all(|b| *b == 0) {
        return Err(ConfigError::KeyAllZeros { var });
    }
    Ok(key)
}

fn hex_digit(c: Option<u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn parse<T: std::str::FromStr>(
    src: &dyn Source,
    var: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match src.get(var) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
            var,
            value: v,
            expected,
        }),
    }
}

fn parse_secs(
    src: &dyn Source,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let secs: u64 = parse(src, var, default.as_secs(), "a whole number of seconds")?;
    if secs == 0 {
        return Err(ConfigError::Invalid {
            var,
            value: "0".into(),
            expected: "a positive number of seconds",
        });
    }
    Ok(Duration::from_secs(secs))
}

fn parse_positive(src: &dyn Source, var: &'static str, default: u32) -> Result<u32, ConfigError> {
    let n: u32 = parse(src, var, default, "a positive whole number")?;
    if n == 0 {
        return Err(ConfigError::Invalid {
            var,
            value: "0".into(),
            expected: "a positive whole number",
        });
    }
    Ok(n)
}

fn list(src: &dyn Source, var: &str) -> Vec<String> {
    src.get(var)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
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
    })
}

/// Reads the keys: rings from the key directory when present, else the single-key
/// variables; in `dev` mode missing keys are generated.
pub fn keys(src: &dyn Source, dev: bool) -> Result<Keys, ConfigError> {
    let check = !dev;
    let groups = src.groups();
    let dir = PathBuf::from(
        src.get(env::KEYS_DIR)
            .unwrap_or_else(|| contract::KEYS_DIR.to_owned()),
    );
    let ring_path = |name: &str| dir.join(name);
    let load_ring = |name: &str| -> Result<Option<SymmetricRing>, ConfigError> {
        let path = ring_path(name);
        if !path.exists() {
            return Ok(None);
        }
        if check {
            check_secret_file(env::KEYS_DIR, &path, &groups)?;
        }
        SymmetricRing::load(&path)
            .map(Some)
            .map_err(|source| ConfigError::KeyRing { path, source })
    };
    let data_ring = load_ring(key_files::DATA)?;
    let field_ring = load_ring(key_files::FIELD)?;
    let hmac_ring = load_ring(key_files::HMAC)?;
    let jwt_path = ring_path(key_files::JWT);
    let jwt_ring = if jwt_path.exists() {
        if check {
            check_secret_file(env::KEYS_DIR, &jwt_path, &groups)?;
        }
        Some(
            SigningRing::load(&jwt_path).map_err(|source| ConfigError::KeyRing {
                path: jwt_path.clone(),
                source,
            })?,
        )
    } else {
        None
    };
    let from_dir = data_ring.is_some() || field_ring.is_some() || jwt_ring.is_some();

    let data = match data_ring {
        Some(r) => r,
        None => single_key(src, ENCRYPTION_KEY, check, dev)?,
    };
    let field = match field_ring {
        Some(r) => r,
        None => single_key(src, DATABASE_ENCRYPTION_KEY, check, dev)?,
    };
    let hmac = match hmac_ring {
        Some(r) => r,
        None => field.derive("generalbot hmac v1"),
    };
    let jwt = match jwt_ring {
        Some(r) => r,
        None => match secret(src, JWT_SECRET, check)? {
            Some(pem) => SigningRing::from_rsa_pem(&pem)
                .map_err(|_| ConfigError::JwtKeyInvalid { var: JWT_SECRET })?,
            None if dev => {
                SigningRing::generate_es256().map_err(|e| ConfigError::Random(e.to_string()))?
            }
            None => {
                return Err(ConfigError::SecretMissing {
                    var: JWT_SECRET,
                    what: "a PEM PKCS#8 RSA private key",
                });
            }
        },
    };
    let ops_path = ring_path(key_files::OPS_TOKEN);
    let ops_token = if ops_path.exists() {
        Some(read_secret_file(env::KEYS_DIR, &ops_path, &groups, check)?)
    } else {
        None
    };
    Ok(Keys {
        data,
        field,
        hmac,
        jwt,
        ops_token,
        keys_dir: from_dir.then_some(dir),
    })
}

fn single_key(
    src: &dyn Source,
    var: &'static str,
    check: bool,
    dev: bool,
) -> Result<SymmetricRing, ConfigError> {
    match secret(src, var, check)? {
        Some(hex) => Ok(SymmetricRing::single(parse_hex_key(var, &hex)?)),
        None if dev => {
            let mut key = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(key.as_mut()).map_err(|e| ConfigError::Random(e.to_string()))?;
            Ok(SymmetricRing::single(key))
        }
        None => Err(ConfigError::SecretMissing {
            var,
            what: "64 hex characters (`openssl rand -hex 32`)",
        }),
    }
}

/// Reads the database settings: `DATABASE_HOST` and friends (the operator's), else
/// `DATABASE_URL`, else an SQLite file under /tmp (development: in memory).
pub fn database(src: &dyn Source, dev: bool) -> Result<DatabaseConfig, ConfigError> {
    let check = !dev;
    if let Some(host) = src.get(env::DATABASE_HOST) {
        let sslmode = src
            .get(env::DATABASE_SSLMODE)
            .unwrap_or_else(|| "verify-full".into());
        let verify_full = match sslmode.as_str() {
            "verify-full" => true,
            "disable" if dev => false,
            _ => {
                return Err(ConfigError::Invalid {
                    var: env::DATABASE_SSLMODE,
                    value: sslmode,
                    expected: "verify-full (disable is accepted only with --dev)",
                });
            }
        };
        let user = secret_file(src, env::DATABASE_USER_FILE, check)?
            .map(|u| u.to_string())
            .unwrap_or_else(|| "generalbot".into());
        let client_cert = match (
            src.get(DATABASE_CLIENT_CERT_FILE),
            src.get(DATABASE_CLIENT_KEY_FILE),
        ) {
            (Some(c), Some(k)) => {
                if check {
                    check_secret_file(DATABASE_CLIENT_KEY_FILE, Path::new(&k), &src.groups())?;
                }
                Some((PathBuf::from(c), PathBuf::from(k)))
            }
            _ => None,
        };
        return Ok(DatabaseConfig::Postgres {
            host,
            port: parse(src, env::DATABASE_PORT, 5432, "a port number")?,
            database: src
                .get(env::DATABASE_NAME)
                .unwrap_or_else(|| "generalbot".into()),
            user,
            password: secret_file(src, env::DATABASE_PASSWORD_FILE, check)?,
            verify_full,
            ca_file: src.get(env::DATABASE_CA_FILE).map(PathBuf::from),
            client_cert,
        });
    }
    if let Some(url) = secret(src, DATABASE_URL, check)? {
        if !dev && url.starts_with("postgres") && !url.contains("sslmode=verify-full") {
            return Err(ConfigError::Invalid {
                var: DATABASE_URL,
                value: "<redacted>".into(),
                expected: "a postgres URL with sslmode=verify-full, or an sqlite: URL",
            });
        }
        return Ok(DatabaseConfig::Url(url));
    }
    let default = if dev {
        "sqlite::memory:"
    } else {
        "sqlite:/tmp/generalbot.db?mode=rwc"
    };
    Ok(DatabaseConfig::Url(zeroize::Zeroizing::new(
        default.to_owned(),
    )))
}

/// Reads the cache settings.
pub fn cache(src: &dyn Source, dev: bool) -> Result<Option<CacheConfig>, ConfigError> {
    let Some(url) = src.get(env::CACHE_URL) else {
        return Ok(None);
    };
    if !dev && !url.starts_with("rediss://") {
        return Err(ConfigError::Invalid {
            var: env::CACHE_URL,
            value: url,
            expected: "a rediss:// URL (TLS) without credentials",
        });
    }
    if url.contains('@') {
        return Err(ConfigError::Invalid {
            var: env::CACHE_URL,
            value: "<redacted>".into(),
            expected: "a URL without credentials; put the password in CACHE_PASSWORD_FILE",
        });
    }
    Ok(Some(CacheConfig {
        url,
        password: secret(src, "CACHE_PASSWORD", !dev)?,
        ca_file: src.get(env::CACHE_CA_FILE).map(PathBuf::from),
    }))
}

impl Config {
    /// Reads and validates everything. `dev` forces loopback listeners.
    pub fn load(src: &dyn Source, dev: bool) -> Result<Self, ConfigError> {
        let dev = dev || src.get(env::MODE).is_some_and(|m| m == "dev");
        let default_port = |p: i32| u16::try_from(p).unwrap_or(8080);
        let mut listen: SocketAddr = parse(
            src,
            env::LISTEN,
            SocketAddr::from(([0, 0, 0, 0], default_port(contract::API_PORT))),
            "an address such as 0.0.0.0:8080",
        )?;
        let mut metrics_listen: SocketAddr = parse(
            src,
            env::METRICS_LISTEN,
            SocketAddr::from(([0, 0, 0, 0], default_port(contract::METRICS_PORT))),
            "an address such as 0.0.0.0:9090",
        )?;
        if dev {
            listen.set_ip([127, 0, 0, 1].into());
            metrics_listen.set_ip([127, 0, 0, 1].into());
        }
        let tls = match (src.get(TLS_CERT_FILE), src.get(TLS_KEY_FILE)) {
            (Some(c), Some(k)) => {
                if !dev {
                    check_secret_file(TLS_KEY_FILE, Path::new(&k), &src.groups())?;
                }
                Some((PathBuf::from(c), PathBuf::from(k)))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    var: TLS_CERT_FILE,
                    value: "<one of two>".into(),
                    expected: "both BOTSERVER_TLS_CERT_FILE and BOTSERVER_TLS_KEY_FILE, or neither",
                });
            }
        };
        Ok(Self {
            dev,
            listen,
            metrics_listen,
            keys: keys(src, dev)?,
            database: database(src, dev)?,
            cache: cache(src, dev)?,
            tls,
            policy: policy(src)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn src(vars: &[(&str, &str)]) -> MapSource {
        MapSource {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            groups: vec![4242],
        }
    }

    fn tmp() -> PathBuf {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        let d = std::env::temp_dir().join(format!("gb-config-{}", u64::from_le_bytes(b)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn file(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn production(extra: &[(&str, &str)]) -> MapSource {
        let dir = tmp();
        let pem = file(
            &dir,
            "jwt.pem",
            crate::crypto::keyring::tests::TEST_RSA_PEM,
            0o400,
        );
        let mut s = src(&[
            (env::KEYS_DIR, dir.join("nokeys").to_str().unwrap()),
            (ENCRYPTION_KEY, KEY),
            (DATABASE_ENCRYPTION_KEY, KEY),
        ]);
        s.vars
            .insert(format!("{JWT_SECRET}_FILE"), pem.to_str().unwrap().into());
        for (k, v) in extra {
            s.vars.insert(k.to_string(), v.to_string());
        }
        s
    }

    #[test]
    fn production_with_all_keys_starts() {
        let c = Config::load(&production(&[]), false).unwrap();
        assert!(!c.dev);
        assert_eq!(c.policy, Policy::default());
        assert_eq!(c.listen.ip().to_string(), "0.0.0.0");
    }

    #[test]
    fn refuses_each_missing_key() {
        for var in [ENCRYPTION_KEY, DATABASE_ENCRYPTION_KEY] {
            let mut s = production(&[]);
            s.vars.remove(var);
            let e = Config::load(&s, false).unwrap_err();
            assert!(
                matches!(e, ConfigError::SecretMissing { var: v, .. } if v == var),
                "{e}"
            );
            assert!(e.to_string().contains(var));
        }
        let mut s = production(&[]);
        s.vars.remove(&format!("{JWT_SECRET}_FILE"));
        let e = Config::load(&s, false).unwrap_err();
        assert!(e.to_string().contains(JWT_SECRET), "{e}");
    }

    #[test]
    fn refuses_short_malformed_and_zero_keys() {
        for bad in ["abcd", &KEY[..63], &format!("{}zz", &KEY[..62])] {
            let e = Config::load(&production(&[(ENCRYPTION_KEY, bad)]), false).unwrap_err();
            assert!(
                matches!(
                    e,
                    ConfigError::KeyMalformed {
                        var: ENCRYPTION_KEY,
                        ..
                    }
                ),
                "{e}"
            );
        }
        let zeros = "0".repeat(64);
        let e = Config::load(&production(&[(DATABASE_ENCRYPTION_KEY, &zeros)]), false).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::KeyAllZeros {
                    var: DATABASE_ENCRYPTION_KEY
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("openssl rand -hex 32"));
    }

    #[test]
    fn refuses_a_secret_set_twice() {
        let dir = tmp();
        let f = file(&dir, "k", KEY, 0o400);
        let e = Config::load(
            &production(&[(&format!("{ENCRYPTION_KEY}_FILE"), f.to_str().unwrap())]),
            false,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::SecretSetTwice {
                    var: ENCRYPTION_KEY
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn refuses_key_file_readable_by_others_and_foreign_group() {
        let dir = tmp();
        let f = file(&dir, "k", KEY, 0o404);
        let mut s = production(&[]);
        s.vars.remove(ENCRYPTION_KEY);
        s.vars
            .insert(format!("{ENCRYPTION_KEY}_FILE"), f.to_str().unwrap().into());
        let e = Config::load(&s, false).unwrap_err();
        assert!(
            matches!(e, ConfigError::KeyFileReadableByOthers { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod o-rwx"));

        // 0440 with a group the process is not in: refused.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o440)).unwrap();
        let e = Config::load(&s, false).unwrap_err();
        assert!(
            matches!(e, ConfigError::KeyFileReadableByGroup { .. }),
            "{e}"
        );

        // 0440 with the process's own group (Kubernetes fsGroup): accepted.
        use std::os::unix::fs::MetadataExt;
        s.groups = vec![std::fs::metadata(&f).unwrap().gid()];
        let c = Config::load(&s, false).unwrap();
        assert!(!c.dev);
        // Dev mode does not check permissions.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o444)).unwrap();
        assert!(Config::load(&s, true).is_ok());
    }

    #[test]
    fn refuses_a_ring_file_readable_by_others_and_prefers_rings() {
        use base64::Engine as _;
        let dir = tmp();
        let ring = generalbot_crds::contract::KeyRingFile {
            version: 1,
            active: "f1".into(),
            algorithm: None,
            keys: vec![generalbot_crds::contract::KeyEntry {
                id: "f1".into(),
                created: "2026-01-01T00:00:00Z".into(),
                material: base64::engine::general_purpose::STANDARD.encode([3u8; 32]),
            }],
        };
        let f = file(
            &dir,
            key_files::FIELD,
            &serde_json::to_string(&ring).unwrap(),
            0o444,
        );
        let s = production(&[(env::KEYS_DIR, dir.to_str().unwrap())]);
        let e = Config::load(&s, false).unwrap_err();
        assert!(
            matches!(e, ConfigError::KeyFileReadableByOthers { .. }),
            "{e}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o400)).unwrap();
        let c = Config::load(&s, false).unwrap();
        assert_eq!(
            c.keys.field.active_id(),
            "f1",
            "the ring wins over DATABASE_ENCRYPTION_KEY"
        );
        assert_eq!(c.keys.keys_dir.as_deref(), Some(dir.as_path()));
    }

    #[test]
    fn refuses_a_bad_jwt_key() {
        let dir = tmp();
        let f = file(
            &dir,
            "jwt",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            0o400,
        );
        let e = Config::load(
            &production(&[(&format!("{JWT_SECRET}_FILE"), f.to_str().unwrap())]),
            false,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::JwtKeyInvalid { .. }), "{e}");
    }

    #[test]
    fn refuses_bad_numbers_origins_and_cidrs() {
        for (var, value) in [
            (env::MAX_LOGIN_ATTEMPTS, "ten"),
            (env::MAX_LOGIN_ATTEMPTS, "0"),
            (env::SESSION_TIMEOUT, "-1"),
            (env::RATE_LIMIT_PER_IP, "0"),
            (env::ALLOWED_ORIGINS, "*"),
            (env::TRUSTED_PROXIES, "10.0.0.0/99"),
            (env::REQUIRE_MFA, "yes please"),
        ] {
            let e = Config::load(&production(&[(var, value)]), false).unwrap_err();
            assert!(e.to_string().contains(var), "{var}: {e}");
        }
    }

    #[test]
    fn refuses_plaintext_cache_and_database_in_production() {
        let e = Config::load(
            &production(&[(env::CACHE_URL, "redis://cache:6379")]),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains(env::CACHE_URL));
        let e = Config::load(
            &production(&[(DATABASE_URL, "postgres://u:secretpw@db/x")]),
            false,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("secretpw"), "{e}");
        let e = Config::load(
            &production(&[
                (env::DATABASE_HOST, "db"),
                (env::DATABASE_SSLMODE, "disable"),
            ]),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains(env::DATABASE_SSLMODE));
    }

    #[test]
    fn reads_policies() {
        let c = Config::load(
            &production(&[
                (env::MAX_LOGIN_ATTEMPTS, "3"),
                (env::LOCKOUT_DURATION, "60"),
                (env::ALLOWED_ORIGINS, "https://a.example, https://b.example"),
                (env::TRUSTED_PROXIES, "10.0.0.0/8,192.168.1.1"),
                (env::REQUIRE_MFA, "true"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(c.policy.max_login_attempts, 3);
        assert_eq!(c.policy.lockout_duration, Duration::from_secs(60));
        assert_eq!(
            c.policy.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(c.policy.trusted_proxies.len(), 2);
        assert!(c.policy.require_mfa);
    }

    #[test]
    fn dev_mode_generates_keys_and_binds_loopback() {
        let c = Config::load(&src(&[(env::KEYS_DIR, "/nonexistent")]), true).unwrap();
        assert!(c.dev);
        assert!(c.listen.ip().is_loopback() && c.metrics_listen.ip().is_loopback());
        assert_eq!(
            c.database,
            DatabaseConfig::Url(zeroize::Zeroizing::new("sqlite::memory:".into()))
        );
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let c = Config::load(
            &production(&[(DATABASE_URL, "sqlite:/tmp/x?pw=hunter2")]),
            false,
        )
        .unwrap();
        let d = format!("{c:?}");
        assert!(
            !d.contains("hunter2") && !d.contains(KEY) && !d.contains("PRIVATE"),
            "{d}"
        );
    }
}
