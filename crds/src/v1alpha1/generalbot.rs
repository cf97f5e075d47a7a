//! The `GeneralBot` resource: its spec root, the bot server workload and its settings,
//! encryption at rest and backups. Cross-field rules live here as CEL
//! (`x-kubernetes-validations`) so the API server refuses bad input before we see it.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{GeneralBotStatus, MonitoringSpec, NetworkSpec, SecretRef, SecuritySpec, ServicesSpec};

/// The image the operator runs when `spec.server.image` is not set.
pub const DEFAULT_IMAGE: &str = "ghcr.io/generalbots/bot-server:0.1.0";

/// An image reference a container runtime can pull: optional registry host and port,
/// lower-case path components, optional tag, optional sha256 digest.
pub const IMAGE_PATTERN: &str = r"^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(:[0-9]{1,5})?/)?[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][-A-Za-z0-9_.]{0,127})?(@sha256:[a-f0-9]{64})?$";

/// The digest of an image reference pinned by one (`sha256:…`).
pub fn image_digest(image: &str) -> Option<&str> {
    image.rsplit_once('@').map(|(_, digest)| digest)
}

/// A GeneralBot: one secure-by-default bot server with its network isolation, keys,
/// certificates, encryption at rest and backups, reconciled by the GeneralBot operator.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
// Each printcolumn repeats `type_ =`; clippy reads the repeats as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "generalbots.io",
    version = "v1alpha1",
    kind = "GeneralBot",
    plural = "generalbots",
    singular = "generalbot",
    shortname = "gb",
    category = "all",
    namespaced,
    status = "GeneralBotStatus",
    derive = "PartialEq",
    doc = "A GeneralBot runs one secure-by-default chat bot server: hardened pods, default-deny network policies, rotating keys and certificates, encryption at rest and backups.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.server.replicas"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas"
    ),
    printcolumn(
        name = "Next-Rotation",
        type_ = "string",
        description = "When the next key or certificate is due to rotate",
        json_path = ".status.nextRotation"
    ),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.server.image",
        priority = 1
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!self.server.features.vectordb || has(self.services.vectorDb)",
        "message": "spec.server.features.vectordb is true: set spec.services.vectorDb to the vector database the bot may reach, or turn the feature off",
        "fieldPath": ".services"
    },
    {
        "rule": "!self.server.features.email || has(self.services.mail)",
        "message": "spec.server.features.email is true: set spec.services.mail to the mail server the bot may reach, or turn the feature off",
        "fieldPath": ".services"
    },
    {
        "rule": "!self.backup.enabled || has(self.services.objectStorage)",
        "message": "spec.backup.enabled is true but backups need a place to go: set spec.services.objectStorage, or set spec.backup.enabled to false",
        "fieldPath": ".backup"
    },
    {
        "rule": "!has(self.network.ingress) || (has(self.network.ingressFrom) && size(self.network.ingressFrom) > 0)",
        "message": "spec.network.ingress is set, but no pod may reach the bot: add the ingress controller's or gateway's pods to spec.network.ingressFrom",
        "fieldPath": ".network.ingressFrom"
    },
    {
        "rule": "!has(self.monitoring) || !has(self.monitoring.serviceMonitor) || !self.monitoring.serviceMonitor || (has(self.network.metricsFrom) && size(self.network.metricsFrom) > 0)",
        "message": "spec.monitoring.serviceMonitor is true, but no pod may scrape the bot: add Prometheus's pods to spec.network.metricsFrom",
        "fieldPath": ".network.metricsFrom"
    },
    {
        "rule": "self.security.keys.jwtRotationDays * 86400 > self.server.settings.accessTokenTtlSeconds",
        "message": "spec.security.keys.jwtRotationDays must outlast an access token: make it longer than spec.server.settings.accessTokenTtlSeconds",
        "fieldPath": ".security.keys.jwtRotationDays"
    }
]))]
pub struct GeneralBotSpec {
    /// The bot server workload: image, replicas, resources, settings and features.
    #[serde(default)]
    pub server: ServerSpec,
    /// The services the bot uses (PostgreSQL is required; cache, object storage, vector
    /// database, directory and mail are optional) and how to reach each one securely.
    pub services: ServicesSpec,
    /// Which pods may reach the bot, and any egress beyond the declared services.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Certificates, key rings, rotation periods and maintenance windows.
    #[serde(default)]
    pub security: SecuritySpec,
    /// Encryption at rest for database fields and object storage.
    #[serde(default)]
    pub encryption: EncryptionSpec,
    /// Database backups to object storage.
    #[serde(default)]
    pub backup: BackupSpec,
    /// Alerts (a PrometheusRule from the guide's thresholds) and metrics scraping (a
    /// ServiceMonitor). Both need the Prometheus Operator's CRDs in the cluster.
    #[serde(default, skip_serializing_if = "is_default")]
    pub monitoring: MonitoringSpec,
    /// ConfigMaps of bots: each `*.yaml`, `*.yml` or `*.json` key is one bot definition
    /// (slug, welcome, fallback, FAQ, flow), and a `faq_csv` field names a CSV key of the
    /// same ConfigMap. All are mounted read-only in one directory; the bot server checks
    /// them at start and every 30 s after (an invalid edit changes nothing and is logged),
    /// and such bots cannot be changed through the API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub bots: Vec<ConfigMapRef>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    value == &T::default()
}

/// A ConfigMap in the GeneralBot's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapRef {
    /// Name of the ConfigMap.
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// The bot server workload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Container image of the bot server: `[registry[:port]/]path[:tag][@sha256:digest]`,
    /// as a container runtime can pull it. A digest, when given, is shown in the status.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512), regex(pattern = IMAGE_PATTERN))]
    pub image: String,
    /// When the kubelet pulls the image.
    #[serde(default)]
    pub image_pull_policy: PullPolicy,
    /// Number of bot server pods. Two or more keep the bot up through node drains.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: i32,
    /// CPU and memory requests and limits of the bot server container.
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Run pods in their own user namespace (`hostUsers: false`). Needs Kubernetes 1.33
    /// or later with a container runtime that supports user namespaces.
    #[serde(default)]
    pub user_namespaces: bool,
    /// Extra labels for the bot server pods. The operator's own keys
    /// (`app.kubernetes.io/name`, `instance`, `component`, `managed-by`) select its pods and
    /// may not be set here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 32,
        "additionalProperties" = super::network::label_value_schema(),
        "x-kubernetes-validations" = [{
            "rule": "!('app.kubernetes.io/name' in self) && !('app.kubernetes.io/instance' in self) && !('app.kubernetes.io/component' in self) && !('app.kubernetes.io/managed-by' in self)",
            "message": "app.kubernetes.io/name, instance, component and managed-by are the operator's own labels (they select the bot's pods): use other keys"
        }]
    ))]
    pub pod_labels: BTreeMap<String, String>,
    /// The bot server's own security settings (the `BOTSERVER_*` variables).
    #[serde(default)]
    pub settings: ServerSettings,
    /// Optional features of the bot server.
    #[serde(default)]
    pub features: Features,
    /// A Secret with `email` and `password` (at least 12 characters): the first
    /// administrator, created at start only while no administrator exists (never
    /// overwritten, audited). Delete the Secret once you have signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_admin_secret: Option<SecretRef>,
}

impl Default for ServerSpec {
    fn default() -> Self {
        Self {
            image: default_image(),
            image_pull_policy: PullPolicy::default(),
            replicas: default_replicas(),
            resources: ResourcesSpec::default(),
            user_namespaces: false,
            pod_labels: BTreeMap::new(),
            settings: ServerSettings::default(),
            features: Features::default(),
            bootstrap_admin_secret: None,
        }
    }
}

fn default_image() -> String {
    DEFAULT_IMAGE.to_owned()
}

fn default_replicas() -> i32 {
    2
}

/// When the kubelet pulls the image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    /// Pull on every pod start, so the registry checks the pull credentials each time
    /// and a pod never runs a stale image left on the node.
    #[default]
    Always,
    /// Pull only when the image is not on the node.
    IfNotPresent,
    /// Never pull; the image must already be on the node.
    Never,
}

impl PullPolicy {
    /// The value Kubernetes expects in `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IfNotPresent => "IfNotPresent",
            Self::Always => "Always",
            Self::Never => "Never",
        }
    }
}

/// Requests and limits of the bot server container. Quantities use the Kubernetes
/// notation (`250m`, `1`, `256Mi`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!isQuantity(self.limitsCpu) || !isQuantity(self.requestsCpu) || quantity(self.limitsCpu).compareTo(quantity(self.requestsCpu)) >= 0",
        "message": "limitsCpu must be at least requestsCpu",
        "fieldPath": ".limitsCpu"
    },
    {
        "rule": "!isQuantity(self.limitsMemory) || !isQuantity(self.requestsMemory) || quantity(self.limitsMemory).compareTo(quantity(self.requestsMemory)) >= 0",
        "message": "limitsMemory must be at least requestsMemory",
        "fieldPath": ".limitsMemory"
    }
]))]
pub struct ResourcesSpec {
    /// CPU the scheduler reserves for each pod.
    #[serde(default = "default_requests_cpu")]
    #[schemars(length(max = 32), extend("x-kubernetes-validations" = [{"rule": "isQuantity(self)", "message": "must be a Kubernetes quantity such as 250m or 1"}]))]
    pub requests_cpu: String,
    /// Memory the scheduler reserves for each pod.
    #[serde(default = "default_requests_memory")]
    #[schemars(length(max = 32), extend("x-kubernetes-validations" = [{"rule": "isQuantity(self)", "message": "must be a Kubernetes quantity such as 256Mi"}]))]
    pub requests_memory: String,
    /// Most CPU each pod may use.
    #[serde(default = "default_limits_cpu")]
    #[schemars(length(max = 32), extend("x-kubernetes-validations" = [{"rule": "isQuantity(self)", "message": "must be a Kubernetes quantity such as 500m or 2"}]))]
    pub limits_cpu: String,
    /// Most memory each pod may use; past it the pod is killed.
    #[serde(default = "default_limits_memory")]
    #[schemars(length(max = 32), extend("x-kubernetes-validations" = [{"rule": "isQuantity(self)", "message": "must be a Kubernetes quantity such as 512Mi"}]))]
    pub limits_memory: String,
}

impl Default for ResourcesSpec {
    fn default() -> Self {
        Self {
            requests_cpu: default_requests_cpu(),
            requests_memory: default_requests_memory(),
            limits_cpu: default_limits_cpu(),
            limits_memory: default_limits_memory(),
        }
    }
}

fn default_requests_cpu() -> String {
    "100m".to_owned()
}
fn default_requests_memory() -> String {
    "128Mi".to_owned()
}
fn default_limits_cpu() -> String {
    "1".to_owned()
}
fn default_limits_memory() -> String {
    "512Mi".to_owned()
}

/// The bot server's security settings. Each maps to one `BOTSERVER_*` variable of the
/// General Bots security guide; the defaults are the guide's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.loginAlertThreshold < self.maxLoginAttempts",
        "message": "loginAlertThreshold must be below maxLoginAttempts, so the alert comes before the lockout",
        "fieldPath": ".loginAlertThreshold"
    },
    {
        "rule": "self.refreshTokenTtlSeconds > self.accessTokenTtlSeconds",
        "message": "refreshTokenTtlSeconds must be longer than accessTokenTtlSeconds",
        "fieldPath": ".refreshTokenTtlSeconds"
    }
]))]
pub struct ServerSettings {
    /// Requests per minute from one client IP (`BOTSERVER_RATE_LIMIT_PER_IP`).
    #[serde(default = "default_rate_limit_per_ip")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub rate_limit_per_ip: u32,
    /// Requests per hour from one authenticated user (`BOTSERVER_RATE_LIMIT_PER_USER`).
    #[serde(default = "default_rate_limit_per_user")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub rate_limit_per_user: u32,
    /// Origins allowed to call the API from a browser (`BOTSERVER_ALLOWED_ORIGINS`), each
    /// a scheme and host with no path, such as `https://chat.example.com`. Empty allows
    /// no cross-origin request at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 64),
        inner(length(max = 253), pattern(r"^https://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$|^http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?$"))
    )]
    pub allowed_origins: Vec<String>,
    /// Client networks whose `X-Forwarded-For` header is trusted (the reverse proxy), as
    /// CIDRs. From anyone else the header is ignored, so it cannot dodge the rate limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(max = 43)),
        extend("x-kubernetes-validations" = [{"rule": "self.all(c, isCIDR(c))", "message": "every trustedProxies entry must be a CIDR such as 10.0.0.0/8"}])
    )]
    pub trusted_proxies: Vec<String>,
    /// Idle time in seconds after which a session ends (`BOTSERVER_SESSION_TIMEOUT`).
    #[serde(default = "default_session_timeout")]
    #[schemars(range(min = 60, max = 604_800))]
    pub session_timeout_seconds: u32,
    /// Lifetime of an access token in seconds.
    #[serde(default = "default_access_token_ttl")]
    #[schemars(range(min = 60, max = 86_400))]
    pub access_token_ttl_seconds: u32,
    /// Lifetime of a refresh token in seconds.
    #[serde(default = "default_refresh_token_ttl")]
    #[schemars(range(min = 300, max = 7_776_000))]
    pub refresh_token_ttl_seconds: u32,
    /// Failed logins before an account or client IP is locked (`BOTSERVER_MAX_LOGIN_ATTEMPTS`).
    #[serde(default = "default_max_login_attempts")]
    #[schemars(range(min = 3, max = 100))]
    pub max_login_attempts: u32,
    /// Failed logins that raise an audit alert, before the lockout.
    #[serde(default = "default_login_alert_threshold")]
    #[schemars(range(min = 1, max = 99))]
    pub login_alert_threshold: u32,
    /// How long a lockout lasts, in seconds (`BOTSERVER_LOCKOUT_DURATION`).
    #[serde(default = "default_lockout_duration")]
    #[schemars(range(min = 60, max = 86_400))]
    pub lockout_duration_seconds: u32,
    /// Largest upload or message body in bytes (`BOTSERVER_MAX_UPLOAD_SIZE`).
    #[serde(default = "default_max_upload_size")]
    #[schemars(range(min = 1024, max = 1_073_741_824))]
    pub max_upload_size_bytes: u32,
    /// Require a second factor (TOTP) for every login (`BOTSERVER_REQUIRE_MFA`).
    #[serde(default)]
    pub require_mfa: bool,
    /// Write the tamper-evident audit log (`BOTSERVER_ENABLE_AUDIT`).
    #[serde(default = "default_true")]
    pub audit: bool,
    /// Client certificates on the API, for service-to-service mutual TLS
    /// (`BOTSERVER_CLIENT_CERTIFICATES`): `Off`; `Optional`, a certificate presented must
    /// chain to the bot's trust bundle (the internal CA, or `caSecret`'s) or the
    /// handshake fails; `Required`, every `/api/` request also needs one. The bundle is
    /// reloaded when it rotates, without a restart.
    #[serde(default)]
    pub client_certificates: ClientCertificates,
    /// Log level of the bot server. Production runs at `info`.
    #[serde(default)]
    pub log_level: LogLevel,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            rate_limit_per_ip: default_rate_limit_per_ip(),
            rate_limit_per_user: default_rate_limit_per_user(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            session_timeout_seconds: default_session_timeout(),
            access_token_ttl_seconds: default_access_token_ttl(),
            refresh_token_ttl_seconds: default_refresh_token_ttl(),
            max_login_attempts: default_max_login_attempts(),
            login_alert_threshold: default_login_alert_threshold(),
            lockout_duration_seconds: default_lockout_duration(),
            max_upload_size_bytes: default_max_upload_size(),
            require_mfa: false,
            audit: true,
            client_certificates: ClientCertificates::default(),
            log_level: LogLevel::default(),
        }
    }
}

fn default_rate_limit_per_ip() -> u32 {
    100
}
fn default_rate_limit_per_user() -> u32 {
    1000
}
fn default_session_timeout() -> u32 {
    28_800
}
fn default_access_token_ttl() -> u32 {
    900
}
fn default_refresh_token_ttl() -> u32 {
    1_209_600
}
fn default_max_login_attempts() -> u32 {
    10
}
fn default_login_alert_threshold() -> u32 {
    5
}
fn default_lockout_duration() -> u32 {
    900
}
fn default_max_upload_size() -> u32 {
    10 * 1024 * 1024
}
pub(super) fn default_true() -> bool {
    true
}

/// Client certificates on the bot's API.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ClientCertificates {
    /// Not asked for.
    #[default]
    Off,
    /// Verified when presented.
    Optional,
    /// Needed by every `/api/` request.
    Required,
}

impl ClientCertificates {
    /// The value of `BOTSERVER_CLIENT_CERTIFICATES`.
    pub fn as_env(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// Log level of the bot server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The production level.
    #[default]
    Info,
    /// Development detail. Still never logs secrets or message text.
    Debug,
}

impl LogLevel {
    /// The level as the bot server reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }
}

/// Optional features of the bot server. Each one opens egress to its service, so each
/// one needs that service declared under `spec.services`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// Semantic search through a vector database (needs `spec.services.vectorDb`).
    #[serde(default)]
    pub vectordb: bool,
    /// IMAP and SMTP support (needs `spec.services.mail`).
    #[serde(default)]
    pub email: bool,
}

/// Encryption at rest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionSpec {
    /// Sensitive database fields (message text, email, TOTP secrets, conversation state,
    /// attachment metadata) are encrypted with AES-256-GCM under the field key ring. Always
    /// on: the only accepted value is `true` (the field stays so an explicit `false`
    /// is refused rather than ignored).
    #[serde(default = "default_true")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == true", "message": "field encryption is always on: remove databaseFields or set it to true"}]))]
    pub database_fields: bool,
    /// Server-side encryption of the object storage bucket.
    #[serde(default)]
    pub bucket: BucketEncryptionSpec,
    /// Keep every version of every object, so an overwrite or delete can be undone.
    #[serde(default = "default_true")]
    pub versioning: bool,
    /// Days before temporary files (exports, attachments in transit) are deleted.
    #[serde(default = "default_temp_retention")]
    #[schemars(range(min = 1, max = 3650))]
    pub temporary_file_retention_days: u32,
    /// Object lock: every new object is immutable for a number of days (the guide's
    /// immutable storage). The bucket must have been created with object lock enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLockSpec>,
}

impl Default for EncryptionSpec {
    fn default() -> Self {
        Self {
            database_fields: true,
            bucket: BucketEncryptionSpec::default(),
            versioning: true,
            temporary_file_retention_days: default_temp_retention(),
            object_lock: None,
        }
    }
}

/// Default retention of new objects under object lock.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectLockSpec {
    /// `Governance` (a privileged user can still delete) or `Compliance` (nobody can).
    pub mode: ObjectLockMode,
    /// Days each new object stays locked.
    #[schemars(range(min = 1, max = 36500))]
    pub days: u32,
}

/// Object lock mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ObjectLockMode {
    /// Deletable by users with the bypass permission.
    Governance,
    /// Deletable by nobody before the retention ends.
    Compliance,
}

fn default_temp_retention() -> u32 {
    30
}

/// Server-side encryption of the bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.mode != 'SSE-KMS' || (has(self.kmsKeyId) && size(self.kmsKeyId) > 0)",
        "message": "mode SSE-KMS needs kmsKeyId: set it to the id or ARN of the KMS key",
        "fieldPath": ".kmsKeyId"
    },
    {
        "rule": "self.mode == 'SSE-KMS' || !has(self.kmsKeyId)",
        "message": "kmsKeyId is only used with mode SSE-KMS: remove it or set mode to SSE-KMS",
        "fieldPath": ".kmsKeyId"
    }
]))]
pub struct BucketEncryptionSpec {
    /// `SSE-S3` (AES-256 keys held by the storage service) or `SSE-KMS` (a KMS key).
    #[serde(default)]
    pub mode: BucketEncryptionMode,
    /// The KMS key for `SSE-KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key_id: Option<String>,
}

/// Server-side encryption mode of the bucket.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BucketEncryptionMode {
    /// AES-256 with keys managed by the storage service.
    #[default]
    #[serde(rename = "SSE-S3")]
    SseS3,
    /// A key in the storage provider's KMS.
    #[serde(rename = "SSE-KMS")]
    SseKms,
}

/// Database backups to object storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Take backups. They need `spec.services.objectStorage`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// When to take a backup, as a five-field cron expression in UTC.
    #[serde(default = "default_backup_schedule")]
    #[schemars(length(min = 9, max = 128), pattern(r"^(\S+\s+){4}\S+$"))]
    pub schedule: String,
    /// Days to keep each backup.
    #[serde(default = "default_backup_retention")]
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: u32,
}

impl Default for BackupSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: default_backup_schedule(),
            retention_days: default_backup_retention(),
        }
    }
}

fn default_backup_schedule() -> String {
    "0 */12 * * *".to_owned()
}
fn default_backup_retention() -> u32 {
    30
}
