//! The services a bot uses and how to reach each one: its address, the network peer the
//! egress policy opens, the Secret holding its credentials and the TLS it must speak.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::NetworkPeer;

/// The services the bot uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicesSpec {
    /// The PostgreSQL database (required).
    pub postgres: PostgresSpec,
    /// A Redis-compatible cache for sessions. Without one, sessions live in each pod's
    /// memory and a user may have to log in again after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<ServiceEndpoint>,
    /// S3-compatible object storage for attachments, exports and backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_storage: Option<ObjectStorageSpec>,
    /// A vector database (Qdrant) for the `vectordb` feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_db: Option<ServiceEndpoint>,
    /// An OIDC directory (Zitadel, Keycloak) whose access tokens the bot accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySpec>,
    /// A mail server (SMTP submission) for the `email` feature: TLS required (port 465
    /// implicit, any other STARTTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailSpec>,
}

/// A mail server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailSpec {
    /// Where it is, its credentials (keys `username` and `password`) and TLS.
    #[serde(flatten)]
    pub endpoint: ServiceEndpoint,
    /// The sender address of the bot's mail (account locked, new sign-in, security
    /// alerts to administrators).
    #[schemars(length(min = 3, max = 254), pattern(r"^[^@\s<>]+@[^@\s<>]+$"))]
    pub from: String,
}

/// Where a service is and how to reach it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpoint {
    /// DNS name or IP address the bot connects to. With TLS verification this is also
    /// the name the server certificate must carry.
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$")
    )]
    pub host: String,
    /// TCP port. Each service has its usual default (PostgreSQL 5432, Redis 6379, object
    /// storage 443, Qdrant 6334, SMTP submission 587).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// The port the service's pods listen on, when its Service translates `port` to
    /// another one (an S3 Service on 443 in front of pods on 9000, say). A NetworkPolicy
    /// matches after that translation, so egress is allowed to this port. Default: `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<i32>,
    /// Who the service is, for the egress network policy: its pods by label, or its IP
    /// blocks. Egress to this port goes to this peer only.
    pub peer: NetworkPeer,
    /// The Secret holding the credentials for this service. Its keys depend on the
    /// service: see the operator documentation (for example `username` and `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<SecretRef>,
    /// TLS to this service.
    #[serde(default)]
    pub tls: TlsSpec,
}

/// The PostgreSQL database.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSpec {
    /// Where it is, its credentials (keys `username` and `password`) and TLS.
    #[serde(flatten)]
    pub endpoint: ServiceEndpoint,
    /// The database name.
    #[serde(default = "default_database")]
    #[schemars(length(min = 1, max = 63), pattern(r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub database: String,
    /// The role that owns the schema (keys `username` and `password`). An init container
    /// runs the migrations as it (`bot-server migrate`, this Secret mounted there only)
    /// and grants the server's role, the one of `credentialsSecret`, what it uses: the
    /// server then runs as a role that owns nothing. Without it, a production bot server
    /// refuses a role that owns the schema, and the schema must be migrated by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_credentials_secret: Option<SecretRef>,
}

fn default_database() -> String {
    "generalbot".to_owned()
}

/// S3-compatible object storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorageSpec {
    /// Where it is, its credentials (keys `accessKeyId` and `secretAccessKey`) and TLS.
    #[serde(flatten)]
    pub endpoint: ServiceEndpoint,
    /// The bucket the bot stores files and backups in.
    #[schemars(length(min = 3, max = 63), pattern(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"))]
    pub bucket: String,
    /// The region of the bucket.
    #[serde(default = "default_region")]
    #[schemars(length(min = 1, max = 64))]
    pub region: String,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// An OIDC directory service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySpec {
    /// Where it is, its client credentials (keys `clientId` and `clientSecret`) and TLS.
    #[serde(flatten)]
    pub endpoint: ServiceEndpoint,
    /// The OIDC issuer URL, which must be HTTPS.
    #[schemars(length(min = 9, max = 512), pattern(r"^https://"))]
    pub issuer_url: String,
    /// The bot's public callback URL, registered with the directory as a redirect URI
    /// (`https://chat.example.com/api/auth/oidc/callback`).
    #[schemars(length(min = 9, max = 512), pattern(r"^https://"))]
    pub redirect_url: String,
    /// The ID token claim that lists the user's groups.
    #[serde(default = "default_roles_claim")]
    #[schemars(length(min = 1, max = 128))]
    pub roles_claim: String,
    /// Groups whose members are administrators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub admin_groups: Vec<String>,
    /// Groups whose members are operators. Anyone else signs in as a plain user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub operator_groups: Vec<String>,
    /// The audience a directory access token must carry to be accepted on the API; the
    /// client id when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub api_audience: Option<String>,
    /// `acr` values (authentication context classes) that mean the directory used a
    /// second factor, such as `phrh` or Keycloak's level `2`. The bot asks the directory
    /// for them at sign-in, and a token carrying one meets `requireMfa` like an `amr` of
    /// `otp`, `hwk` or `mfa` does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        inner(length(min = 1, max = 256), pattern(r"^[!#-~]+$"))
    )]
    pub mfa_acr_values: Vec<String>,
    /// Who may still sign in with a local password: `AdminsOnly` (break-glass
    /// administrators), `All` or `Off`.
    #[serde(default)]
    pub password_login: PasswordLogin,
}

fn default_roles_claim() -> String {
    "groups".to_owned()
}

/// Who may sign in with a local password when a directory is declared.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PasswordLogin {
    /// Administrators only (break-glass accounts).
    #[default]
    AdminsOnly,
    /// Every local account.
    All,
    /// Nobody: every sign-in goes through the directory.
    Off,
}

impl PasswordLogin {
    /// The value of `BOTSERVER_PASSWORD_LOGIN`.
    pub fn as_env(self) -> &'static str {
        match self {
            Self::AdminsOnly => "admins",
            Self::All => "all",
            Self::Off => "off",
        }
    }
}

/// A reference to a Secret in the GeneralBot's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// TLS to a service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// `VerifyFull` (the default) checks the server's chain and host name. `Disabled`
    /// sends traffic in clear and shows a warning condition; use it only for a service
    /// that cannot speak TLS.
    #[serde(default)]
    pub mode: TlsMode,
    /// A Secret whose `ca.crt` holds the CA that signs the server's certificate. Without
    /// it the operator's own trust bundle is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<SecretRef>,
    /// Present a client certificate issued by the operator's CA (mutual TLS).
    #[serde(default)]
    pub client_certificate: bool,
}

/// How strictly TLS to a service is checked.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TlsMode {
    /// TLS with full verification of the chain and the host name.
    #[default]
    VerifyFull,
    /// No TLS. Traffic to this service is in clear.
    Disabled,
}
