//! The services a GeneralBot declares, in one list the pod, the egress policy and the
//! validator all walk: which are in use, their default ports, the keys their credential
//! Secrets must hold and the variables that tell the bot server where those files are.

use generalbot_crds::GeneralBotSpec;
use generalbot_crds::contract::env;
use generalbot_crds::v1alpha1::{ServiceEndpoint, TlsMode};

/// A kind of service a bot can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// PostgreSQL.
    Postgres,
    /// Redis-compatible cache.
    Cache,
    /// S3-compatible object storage.
    ObjectStorage,
    /// Vector database.
    VectorDb,
    /// OIDC directory.
    Directory,
    /// SMTP submission.
    Mail,
}

/// A key a credentials Secret must hold, and the variable naming its mounted file.
#[derive(Clone, Copy, Debug)]
pub struct CredentialKey {
    /// Key in the Secret.
    pub key: &'static str,
    /// Environment variable holding the path of the mounted file.
    pub env: &'static str,
}

impl ServiceKind {
    /// Short id: volume names, mount directories, network policy rule names.
    pub fn id(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Cache => "cache",
            Self::ObjectStorage => "object-storage",
            Self::VectorDb => "vector-db",
            Self::Directory => "directory",
            Self::Mail => "mail",
        }
    }

    /// Path of this service in the spec, for messages that say what to fix.
    pub fn field(self) -> &'static str {
        match self {
            Self::Postgres => "spec.services.postgres",
            Self::Cache => "spec.services.cache",
            Self::ObjectStorage => "spec.services.objectStorage",
            Self::VectorDb => "spec.services.vectorDb",
            Self::Directory => "spec.services.directory",
            Self::Mail => "spec.services.mail",
        }
    }

    /// The port used when the spec gives none.
    pub fn default_port(self) -> i32 {
        match self {
            Self::Postgres => 5432,
            Self::Cache => 6379,
            Self::ObjectStorage | Self::Directory => 443,
            Self::VectorDb => 6334,
            Self::Mail => 587,
        }
    }

    /// Keys the credentials Secret must hold.
    pub fn credential_keys(self) -> &'static [CredentialKey] {
        match self {
            Self::Postgres => &[
                CredentialKey {
                    key: "username",
                    env: env::DATABASE_USER_FILE,
                },
                CredentialKey {
                    key: "password",
                    env: env::DATABASE_PASSWORD_FILE,
                },
            ],
            Self::Cache => &[CredentialKey {
                key: "password",
                env: env::CACHE_PASSWORD_FILE,
            }],
            Self::ObjectStorage => &[
                CredentialKey {
                    key: "accessKeyId",
                    env: env::STORAGE_ACCESS_KEY_FILE,
                },
                CredentialKey {
                    key: "secretAccessKey",
                    env: env::STORAGE_SECRET_KEY_FILE,
                },
            ],
            Self::VectorDb => &[CredentialKey {
                key: "apiKey",
                env: env::VECTORDB_API_KEY_FILE,
            }],
            Self::Directory => &[
                CredentialKey {
                    key: "clientId",
                    env: env::OIDC_CLIENT_ID_FILE,
                },
                CredentialKey {
                    key: "clientSecret",
                    env: env::OIDC_CLIENT_SECRET_FILE,
                },
            ],
            Self::Mail => &[
                CredentialKey {
                    key: "username",
                    env: env::SMTP_USER_FILE,
                },
                CredentialKey {
                    key: "password",
                    env: env::SMTP_PASSWORD_FILE,
                },
            ],
        }
    }

    /// Variable naming the mounted CA file of this service, where the bot reads one.
    pub fn ca_env(self) -> Option<&'static str> {
        match self {
            Self::Postgres => Some(env::DATABASE_CA_FILE),
            Self::Cache => Some(env::CACHE_CA_FILE),
            Self::ObjectStorage => Some(env::STORAGE_CA_FILE),
            Self::Directory => Some(env::OIDC_CA_FILE),
            Self::Mail => Some(env::SMTP_CA_FILE),
            Self::VectorDb => None,
        }
    }
}

/// A service the bot will use, with its endpoint.
#[derive(Clone, Copy, Debug)]
pub struct DeclaredService<'a> {
    /// Which service.
    pub kind: ServiceKind,
    /// Where it is.
    pub endpoint: &'a ServiceEndpoint,
}

impl DeclaredService<'_> {
    /// The port, or the service's default.
    pub fn port(&self) -> i32 {
        self.endpoint
            .port
            .unwrap_or_else(|| self.kind.default_port())
    }

    /// The port its pods listen on, which egress policies must allow.
    pub fn target_port(&self) -> i32 {
        self.endpoint.target_port.unwrap_or_else(|| self.port())
    }

    /// Whether traffic to it is TLS.
    pub fn tls(&self) -> bool {
        self.endpoint.tls.mode == TlsMode::VerifyFull
    }
}

/// Every service the bot will use, in a fixed order. A vector database or mail server
/// counts only while its feature is on; declared but unused, it gets no egress.
pub fn declared_services(spec: &GeneralBotSpec) -> Vec<DeclaredService<'_>> {
    let s = &spec.services;
    let features = &spec.server.features;
    let mut out = vec![DeclaredService {
        kind: ServiceKind::Postgres,
        endpoint: &s.postgres.endpoint,
    }];
    let optional = [
        (ServiceKind::Cache, s.cache.as_ref(), true),
        (
            ServiceKind::ObjectStorage,
            s.object_storage.as_ref().map(|o| &o.endpoint),
            true,
        ),
        (
            ServiceKind::VectorDb,
            s.vector_db.as_ref(),
            features.vectordb,
        ),
        (
            ServiceKind::Directory,
            s.directory.as_ref().map(|d| &d.endpoint),
            true,
        ),
        (
            ServiceKind::Mail,
            s.mail.as_ref().map(|m| &m.endpoint),
            features.email,
        ),
    ];
    for (kind, endpoint, enabled) in optional {
        if let (Some(endpoint), true) = (endpoint, enabled) {
            out.push(DeclaredService { kind, endpoint });
        }
    }
    out
}
