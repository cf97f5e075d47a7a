//! How to reach the database and the cache, with their credentials and TLS.

#[allow(unused_imports)]
use super::*;

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
