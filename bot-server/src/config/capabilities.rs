//! Settings beyond the core, each honoured or refused by name, never ignored: the
//! optional modules asked for (`BOTSERVER_FEATURES`); the service whose client this
//! server does not have yet (a vector database); object
//! storage (validated at start); the trust bundle (the fallback CA of outgoing TLS); field
//! encryption (always on, so the only accepted value is `true`); the log level.

use std::path::{Path, PathBuf};

use generalbot_crds::contract::env;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use super::{ConfigError, Source, parse, secret_file};

/// The optional modules the operator may ask for.
pub const KNOWN_FEATURES: [&str; 2] = ["vectordb", "email"];
/// The optional modules this build has (vector search is not built yet).
pub const BUILT_FEATURES: [&str; 1] = ["email"];

/// Settings beyond the core.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// The optional modules to run.
    pub features: Vec<String>,
    /// Object storage, when declared.
    pub storage: Option<StorageConfig>,
    /// The operator's trust bundle: the CA of outgoing TLS when a service has none of its
    /// own.
    pub trust_bundle: Option<PathBuf>,
    /// The log level or filter (`info`, `debug,sqlx=warn`, …).
    pub log_level: String,
    /// Mail, with the email module.
    pub mail: Option<super::MailConfig>,
    /// How long backups and temporary files are kept.
    pub retention: Retention,
    /// Where attachments live without object storage.
    pub files_dir: PathBuf,
}

/// How long stored things are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days a backup is kept (the newest always is).
    pub backup_days: u32,
    /// Days a temporary file is kept.
    pub temporary_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            backup_days: 30,
            temporary_days: 30,
        }
    }
}

/// The embedded default of [`Capabilities::files_dir`].
pub const DEFAULT_FILES_DIR: &str = "/var/lib/generalbot/files";

/// An S3-compatible bucket.
#[derive(Clone)]
pub struct StorageConfig {
    /// `https://host:port` (plain `http` only with `--dev`).
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region.
    pub region: String,
    /// Access key id, from a file.
    pub access_key: Option<zeroize::Zeroizing<String>>,
    /// Secret access key, from a file.
    pub secret_key: Option<zeroize::Zeroizing<String>>,
    /// The CA of the endpoint's certificate.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field(
                "credentials",
                &self.access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Reads and checks them. Every setting is read before the first refusal is returned,
/// so a refusal never hides another setting as unread.
pub fn capabilities(src: &dyn Source, dev: bool) -> Result<Capabilities, ConfigError> {
    let missing = refuse_missing_clients(src);
    let features = features(src);
    let asked_email = features
        .as_ref()
        .map(|f| f.iter().any(|f| f == "email"))
        .unwrap_or(false);
    let mail = super::mail(src, dev, asked_email);
    let storage = storage(src, dev);
    let encrypt = parse(src, env::ENCRYPT_FIELDS, true, "true");
    let log_level = src.get(env::LOG_LEVEL).unwrap_or_else(|| "info".into());
    let trust_bundle = src.get(env::TLS_CA_FILE).map(PathBuf::from);
    let backup_days = days(src, env::BACKUP_RETENTION_DAYS);
    let temporary_days = days(src, env::TEMP_FILE_RETENTION_DAYS);
    let files_dir = src.get(env::FILES_DIR).map_or_else(
        || {
            if dev {
                std::env::temp_dir().join(format!("generalbot-dev-files-{}", std::process::id()))
            } else {
                PathBuf::from(DEFAULT_FILES_DIR)
            }
        },
        PathBuf::from,
    );
    missing?;
    if !encrypt? {
        return Err(ConfigError::Invalid {
            var: env::ENCRYPT_FIELDS,
            value: "false".into(),
            expected: "true, or unset: field encryption is always on",
        });
    }
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        return Err(ConfigError::Invalid {
            var: env::LOG_LEVEL,
            value: log_level,
            expected: "a level (error, warn, info, debug, trace) or a filter such as info,sqlx=warn",
        });
    }
    if let Some(path) = &trust_bundle {
        certificates(env::TLS_CA_FILE, path)?;
    }
    Ok(Capabilities {
        features: features?,
        storage: storage?,
        trust_bundle,
        log_level,
        mail: mail?,
        retention: Retention {
            backup_days: backup_days?,
            temporary_days: temporary_days?,
        },
        files_dir,
    })
}

/// A retention in days, 1 to 3650 (30 when unset).
fn days(src: &dyn Source, var: &'static str) -> Result<u32, ConfigError> {
    const EXPECTED: &str = "a whole number of days from 1 to 3650";
    let d = parse(src, var, 30u32, EXPECTED)?;
    if (1..=3650).contains(&d) {
        Ok(d)
    } else {
        Err(ConfigError::Invalid {
            var,
            value: d.to_string(),
            expected: EXPECTED,
        })
    }
}

impl StorageConfig {
    /// An S3 client for this bucket: its CA (or the operator's trust bundle), its
    /// credentials.
    pub fn client(
        &self,
        trust_bundle: Option<&Path>,
    ) -> Result<generalbot_storage::Client, generalbot_storage::StorageError> {
        let ca = self.ca_file.as_deref().or(trust_bundle);
        let ca_pem = match ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                generalbot_storage::StorageError::Client(format!(
                    "reading the CA file {}: {e}",
                    path.display()
                ))
            })?),
            None => None,
        };
        let keys = match (&self.access_key, &self.secret_key) {
            (Some(a), Some(s)) => Some(generalbot_storage::AccessKeys {
                access_key_id: a.clone(),
                secret_access_key: s.clone(),
            }),
            _ => None,
        };
        generalbot_storage::client(&generalbot_storage::Endpoint {
            url: self.endpoint.clone(),
            region: self.region.clone(),
            keys,
            ca_pem,
        })
    }
}

/// The modules asked for, each one this build has.
fn features(src: &dyn Source) -> Result<Vec<String>, ConfigError> {
    let asked: Vec<String> = src
        .get(env::FEATURES)
        .unwrap_or_default()
        .split(',')
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    for f in &asked {
        if !KNOWN_FEATURES.contains(&f.as_str()) {
            return Err(ConfigError::Invalid {
                var: env::FEATURES,
                value: f.clone(),
                expected: "a comma-separated list of vectordb and email",
            });
        }
        if !BUILT_FEATURES.contains(&f.as_str()) {
            return Err(ConfigError::NotAvailable {
                var: env::FEATURES,
                what: format!("the {f} module"),
                fix: "this build has only the email module: remove it from spec.server.features",
            });
        }
    }
    Ok(asked)
}

/// A vector database needs a client this server does not have yet: each of their settings is refused by name rather than left unread.
fn refuse_missing_clients(src: &dyn Source) -> Result<(), ConfigError> {
    let groups: [(&[&'static str], &str, &'static str); 1] = [(
        &[env::VECTORDB_URL, env::VECTORDB_API_KEY_FILE],
        "a vector database",
        "remove spec.services.vectorDb",
    )];
    // Every variable is looked at, so none is reported as unread instead.
    let mut refusal = None;
    for (vars, what, fix) in groups {
        for var in vars {
            if src.get(var).is_some() && refusal.is_none() {
                refusal = Some(ConfigError::NotAvailable {
                    var,
                    what: what.to_owned(),
                    fix,
                });
            }
        }
    }
    refusal.map_or(Ok(()), Err)
}

/// Object storage: the endpoint (TLS outside `--dev`), a valid bucket name, the
/// credentials files (permissions checked), the CA.
fn storage(src: &dyn Source, dev: bool) -> Result<Option<StorageConfig>, ConfigError> {
    let check = !dev;
    let bucket = src.get(env::STORAGE_BUCKET);
    let region = src.get(env::STORAGE_REGION);
    let access_key = secret_file(src, env::STORAGE_ACCESS_KEY_FILE, check)?;
    let secret_key = secret_file(src, env::STORAGE_SECRET_KEY_FILE, check)?;
    let ca_file = src.get(env::STORAGE_CA_FILE).map(PathBuf::from);
    let Some(endpoint) = src.get(env::STORAGE_ENDPOINT) else {
        if bucket.is_some() || access_key.is_some() || ca_file.is_some() {
            return Err(ConfigError::Required {
                var: env::STORAGE_ENDPOINT,
                what: "object storage settings are given without the endpoint",
            });
        }
        return Ok(None);
    };
    let allowed = endpoint.starts_with("https://") || (dev && endpoint.starts_with("http://"));
    if !allowed {
        return Err(ConfigError::Invalid {
            var: env::STORAGE_ENDPOINT,
            value: endpoint,
            expected: "an https:// URL (plain http:// only with --dev)",
        });
    }
    let bucket = bucket.ok_or(ConfigError::Required {
        var: env::STORAGE_BUCKET,
        what: "the bucket name",
    })?;
    if !valid_bucket(&bucket) {
        return Err(ConfigError::Invalid {
            var: env::STORAGE_BUCKET,
            value: bucket,
            expected: "3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit",
        });
    }
    if access_key.is_some() != secret_key.is_some() {
        return Err(ConfigError::Invalid {
            var: env::STORAGE_ACCESS_KEY_FILE,
            value: "<one of two>".into(),
            expected: "both STORAGE_ACCESS_KEY_FILE and STORAGE_SECRET_KEY_FILE, or neither",
        });
    }
    if let Some(ca) = &ca_file {
        certificates(env::STORAGE_CA_FILE, ca)?;
    }
    Ok(Some(StorageConfig {
        endpoint,
        bucket,
        region: region.unwrap_or_else(|| "us-east-1".into()),
        access_key,
        secret_key,
        ca_file,
    }))
}

/// An S3 bucket name.
pub fn valid_bucket(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name.chars().all(ok_char)
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
}

/// Checks a PEM file holds at least one certificate (a CA bundle).
fn certificates(var: &'static str, path: &Path) -> Result<(), ConfigError> {
    let mut certs =
        CertificateDer::pem_file_iter(path).map_err(|e| ConfigError::FileUnreadable {
            var,
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
    match certs.next() {
        Some(Ok(_)) => Ok(()),
        _ => Err(ConfigError::Invalid {
            var,
            value: path.display().to_string(),
            expected: "a PEM file with at least one CA certificate",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_bucket;

    #[test]
    fn bucket_names() {
        for ok in ["bot-files", "a.b.c", "abc", "x1-2"] {
            assert!(valid_bucket(ok), "{ok}");
        }
        for bad in ["ab", "Bot", "-abc", "abc-", "a..b", "a_b", &"a".repeat(64)] {
            assert!(!valid_bucket(bad), "{bad}");
        }
    }
}
