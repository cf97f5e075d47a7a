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
//!
//! Layout: [`source`] (where settings come from), [`secrets`] (secret files and value
//! parsing), [`keys`], [`services`] (database and cache), [`policy`]; this module holds
//! the variable names, the error type and [`Config::load`].

mod capabilities;
mod directory;
mod keys;
mod mail;
mod policy;
mod secrets;
mod services;
mod source;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use generalbot_crds::contract::{self, env};

use crate::crypto::keyring::KeyRingError;

pub use capabilities::*;
pub use directory::*;
pub use keys::*;
pub use mail::*;
pub use policy::*;
pub use secrets::*;
pub use services::*;
pub use source::*;

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
    /// A setting production needs is missing.
    #[error("{var} is not set: {what}")]
    Required {
        /// The variable.
        var: &'static str,
        /// What to set.
        what: &'static str,
    },
    /// The API would serve plain HTTP in production.
    #[error(
        "the API would serve plain HTTP: set BOTSERVER_TLS_CERT_FILE and BOTSERVER_TLS_KEY_FILE (the operator does), or, only behind a proxy that terminates TLS, set {var}=true"
    )]
    PlaintextRefused {
        /// The variable that allows it.
        var: &'static str,
    },
    /// The ops token is too short to resist guessing.
    #[error("{path}: the ops token is {len} bytes; use at least 32 random bytes")]
    OpsTokenShort {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// One key serves two purposes.
    #[error(
        "the {first} and {second} keys share key material ({id}): give each purpose its own random key"
    )]
    KeysNotDistinct {
        /// One purpose.
        first: &'static str,
        /// The other.
        second: &'static str,
        /// The key id in the first.
        id: String,
    },
    /// Random bytes for dev keys could not be drawn.
    #[error("generating development keys: {0}")]
    Random(String),
    /// Settings of ours that this server would not read.
    #[error(
        "{vars} set but not used by this bot server: remove them, or run a bot server that honours them (it never ignores a setting)"
    )]
    Unread {
        /// The variables, comma-separated.
        vars: String,
    },
    /// A setting asks for a capability this server does not have.
    #[error("{var} asks for {what}, which this bot server does not have: {fix}")]
    NotAvailable {
        /// The variable.
        var: &'static str,
        /// The capability.
        what: String,
        /// What to do.
        fix: &'static str,
    },
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
    /// The role that owns the schema, when the server runs migrations itself.
    pub database_owner: Option<DatabaseConfig>,
    /// Cache; in memory when absent.
    pub cache: Option<CacheConfig>,
    /// TLS certificate and key files of the API.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Policies.
    pub policy: Policy,
    /// Optional modules, object storage, the trust bundle, the log level.
    pub capabilities: Capabilities,
    /// Sign-in through a directory service, when declared.
    pub directory: Option<DirectoryConfig>,
    /// Who may sign in with a local password.
    pub password_login: PasswordLogin,
    /// Bots to load from a mounted directory.
    pub bots_dir: Option<PathBuf>,
    /// The (email, password) files of the administrator created at start while none
    /// exists.
    pub bootstrap_admin: Option<(PathBuf, PathBuf)>,
}

/// Refuses settings of ours that nothing read (in production; `--dev` only warns).
fn refuse_unread(rec: &Recording<'_>, dev: bool) -> Result<(), ConfigError> {
    let unread = rec.unread();
    if unread.is_empty() {
        return Ok(());
    }
    let vars = unread.join(", ");
    if dev {
        tracing::warn!(%vars, "settings set but not used by this bot server");
        return Ok(());
    }
    Err(ConfigError::Unread { vars })
}

/// What `bot-server migrate` reads: the database settings, the owner's, the mode and the
/// log level; any other setting of ours is refused.
pub fn migration_settings(
    src: &dyn Source,
    dev: bool,
) -> Result<(DatabaseConfig, Option<DatabaseConfig>), ConfigError> {
    let rec = Recording::new(src);
    let dev = dev || rec.get(env::MODE).is_some_and(|m| m == "dev");
    let _ = rec.get(env::LOG_LEVEL);
    let runtime = database(&rec, dev)?;
    let owner = database_owner(&rec, &runtime, dev)?;
    refuse_unread(&rec, dev)?;
    Ok((runtime, owner))
}

impl Config {
    /// The bundle client certificates on the API are verified against, when they are
    /// asked for.
    pub fn client_ca(&self) -> Option<&Path> {
        (self.policy.client_certificates != ClientCertificates::Off)
            .then_some(self.capabilities.trust_bundle.as_deref())
            .flatten()
    }

    /// Reads and validates everything; a setting of ours that nothing read is refused
    /// in production. `dev` forces loopback listeners.
    pub fn load(src: &dyn Source, dev: bool) -> Result<Self, ConfigError> {
        let rec = Recording::new(src);
        let cfg = Self::load_from(&rec, dev)?;
        refuse_unread(&rec, cfg.dev)?;
        Ok(cfg)
    }

    fn load_from(src: &dyn Source, dev: bool) -> Result<Self, ConfigError> {
        let dev = dev || src.get(env::MODE).is_some_and(|m| m == "dev");
        let bots_dir = src.get(env::BOTS_DIR).map(PathBuf::from);
        let bootstrap_admin = match (
            src.get(env::BOOTSTRAP_ADMIN_EMAIL_FILE),
            src.get(env::BOOTSTRAP_ADMIN_PASSWORD_FILE),
        ) {
            (Some(e), Some(p)) => {
                if !dev {
                    check_secret_file(
                        env::BOOTSTRAP_ADMIN_PASSWORD_FILE,
                        Path::new(&p),
                        &src.groups(),
                    )?;
                }
                Some((PathBuf::from(e), PathBuf::from(p)))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    var: env::BOOTSTRAP_ADMIN_EMAIL_FILE,
                    value: "<one of two>".into(),
                    expected: "both BOTSERVER_BOOTSTRAP_ADMIN_EMAIL_FILE and BOTSERVER_BOOTSTRAP_ADMIN_PASSWORD_FILE, or neither",
                });
            }
        };
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
        let plaintext = src.get(env::ALLOW_PLAINTEXT).as_deref() == Some("true");
        if tls.is_none() && !dev && !plaintext {
            return Err(ConfigError::PlaintextRefused {
                var: env::ALLOW_PLAINTEXT,
            });
        }
        let database = database(src, dev)?;
        let (directory, password_login) = directory(src, dev, plaintext)?;
        let config = Self {
            dev,
            listen,
            metrics_listen,
            keys: keys(src, dev)?,
            database_owner: database_owner(src, &database, dev)?,
            database,
            cache: cache(src, dev)?,
            tls,
            policy: Policy {
                password_login,
                ..policy(src)?
            },
            capabilities: capabilities(src, dev)?,
            directory,
            password_login,
            bots_dir,
            bootstrap_admin,
        };
        if config.policy.client_certificates != ClientCertificates::Off
            && (config.tls.is_none() || config.capabilities.trust_bundle.is_none())
        {
            return Err(ConfigError::Required {
                var: env::CLIENT_CERTIFICATES,
                what: "client certificates are verified by the API's own TLS against the trust bundle: set BOTSERVER_TLS_CERT_FILE, BOTSERVER_TLS_KEY_FILE and BOTSERVER_TLS_CA_FILE (the operator does), or set it to off",
            });
        }
        Ok(config)
    }
}
