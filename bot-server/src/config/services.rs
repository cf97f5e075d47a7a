//! How to reach the database and the cache, with their credentials and TLS.

use std::path::{Path, PathBuf};

use generalbot_crds::contract::env;

use super::{
    ConfigError, DATABASE_CLIENT_CERT_FILE, DATABASE_CLIENT_KEY_FILE, DATABASE_URL, Source,
    check_secret_file, parse, secret, secret_file,
};

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
    /// Client certificate and key files (PEM), for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert.as_ref().map(|(c, _)| c))
            .finish()
    }
}

/// A client certificate and key given as two file variables: both or neither, the key
/// file's permissions checked in production.
fn client_cert(
    src: &dyn Source,
    cert_var: &'static str,
    key_var: &'static str,
    check: bool,
) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
    match (src.get(cert_var), src.get(key_var)) {
        (Some(c), Some(k)) => {
            if check {
                check_secret_file(key_var, Path::new(&k), &src.groups())?;
            }
            Ok(Some((PathBuf::from(c), PathBuf::from(k))))
        }
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => Err(ConfigError::Invalid {
            var: cert_var,
            value: "<one of two>".into(),
            expected: "both the certificate and the key file, or neither",
        }),
    }
}

/// The role that owns the schema and runs migrations: the runtime settings with the
/// owner's user and password (`DATABASE_OWNER_USER_FILE`, `DATABASE_OWNER_PASSWORD_FILE`,
/// both or neither). `None` when not given.
pub fn database_owner(
    src: &dyn Source,
    runtime: &DatabaseConfig,
    dev: bool,
) -> Result<Option<DatabaseConfig>, ConfigError> {
    let check = !dev;
    let user = secret_file(src, env::DATABASE_OWNER_USER_FILE, check)?;
    let password = secret_file(src, env::DATABASE_OWNER_PASSWORD_FILE, check)?;
    let (user, password) = match (user, password) {
        (None, None) => return Ok(None),
        (Some(u), Some(p)) => (u, p),
        _ => {
            return Err(ConfigError::Invalid {
                var: env::DATABASE_OWNER_USER_FILE,
                value: "<one of two>".into(),
                expected: "both DATABASE_OWNER_USER_FILE and DATABASE_OWNER_PASSWORD_FILE, or neither",
            });
        }
    };
    match runtime {
        DatabaseConfig::Postgres {
            user: runtime_user, ..
        } if runtime_user.as_str() == user.trim() => Err(ConfigError::Invalid {
            var: env::DATABASE_OWNER_USER_FILE,
            value: "<the runtime user>".into(),
            expected: "an owner role other than the server's own (DATABASE_USER_FILE): the server runs as a role that owns nothing",
        }),
        DatabaseConfig::Postgres { .. } => {
            let mut owner = runtime.clone();
            if let DatabaseConfig::Postgres {
                user: u,
                password: p,
                ..
            } = &mut owner
            {
                *u = user.trim().to_owned();
                *p = Some(password);
            }
            Ok(Some(owner))
        }
        DatabaseConfig::Url(_) => Err(ConfigError::Invalid {
            var: env::DATABASE_OWNER_USER_FILE,
            value: "<set>".into(),
            expected: "DATABASE_HOST and its companions (owner credentials do not combine with DATABASE_URL)",
        }),
    }
}

/// Reads the database settings: `DATABASE_HOST` and friends (the operator's), else
/// `DATABASE_URL`; in development only, an SQLite database in memory.
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
        let client_cert = client_cert(
            src,
            DATABASE_CLIENT_CERT_FILE,
            DATABASE_CLIENT_KEY_FILE,
            check,
        )?;
        return Ok(DatabaseConfig::Postgres {
            host,
            port: parse(src, env::DATABASE_PORT, 5432, "a port number")?,
            database: src
                .get(env::DATABASE_NAME)
                .unwrap_or_else(|| "generalbot".into()),
            user,
            password: secret_file(src, env::DATABASE_PASSWORD_FILE, check)?,
            verify_full,
            // Without a CA of its own, the operator's trust bundle.
            ca_file: src
                .get(env::DATABASE_CA_FILE)
                .or_else(|| src.get(env::TLS_CA_FILE))
                .map(PathBuf::from),
            client_cert,
        });
    }
    if let Some(url) = secret(src, DATABASE_URL, check)? {
        let refuse = |expected| ConfigError::Invalid {
            var: DATABASE_URL,
            value: "<redacted>".into(),
            expected,
        };
        match url_backend(&url) {
            Some(UrlBackend::Postgres)
                if !dev && url_param(&url, "sslmode") != Some("verify-full") =>
            {
                return Err(refuse("a postgres URL with sslmode=verify-full"));
            }
            Some(_) => {}
            None => return Err(refuse("a postgres://, postgresql:// or sqlite: URL")),
        }
        return Ok(DatabaseConfig::Url(url));
    }
    if !dev {
        // No silent fallback: a production server with nowhere to keep its data would
        // keep it in a file the next restart loses.
        return Err(ConfigError::Required {
            var: env::DATABASE_HOST,
            what: "set DATABASE_HOST (the operator does) or DATABASE_URL; only --dev keeps data in memory",
        });
    }
    Ok(DatabaseConfig::Url(zeroize::Zeroizing::new(
        "sqlite::memory:".to_owned(),
    )))
}

/// Which database a URL names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlBackend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite:`.
    Sqlite,
}

/// The database a URL names, from its scheme; `None` for any other scheme.
pub fn url_backend(url: &str) -> Option<UrlBackend> {
    match url.split_once(':')?.0 {
        "postgres" | "postgresql" => Some(UrlBackend::Postgres),
        "sqlite" => Some(UrlBackend::Sqlite),
        _ => None,
    }
}

/// The value of query parameter `name` of a URL (exact name, first occurrence).
fn url_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
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
        // Without a CA of its own, the operator's trust bundle.
        ca_file: src
            .get(env::CACHE_CA_FILE)
            .or_else(|| src.get(env::TLS_CA_FILE))
            .map(PathBuf::from),
        client_cert: client_cert(
            src,
            env::CACHE_CLIENT_CERT_FILE,
            env::CACHE_CLIENT_KEY_FILE,
            !dev,
        )?,
    }))
}
