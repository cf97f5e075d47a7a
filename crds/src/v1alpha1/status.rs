//! The observed state of a GeneralBot, as `kubectl get gb` and `kubectl describe gb`
//! show it. Follows the API conventions: `observedGeneration` and typed conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a GeneralBot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneralBotStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, plus one condition per concern (`WorkloadAvailable`, `NetworkIsolated`,
    /// …). A condition that is not `True` says why in its reason and message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Bot server pods that are available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Where the bot server's replicas share sessions, rate-limit windows and failed-login
    /// counts: `cache` (Redis, `spec.services.cache`) or `database` (PostgreSQL, when no
    /// cache is declared). Either way every replica enforces one budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<String>,
    /// The digest `spec.server.image` is pinned to (`sha256:…`), when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Every certificate the operator issued for this bot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateStatus>,
    /// Every key ring of this bot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_rings: Vec<KeyRingStatus>,
    /// The value of the `generalbots.io/accept-key-loss` annotation the operator last
    /// honoured: it replaced a lost key Secret with fresh keys once for that value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_key_loss: Option<String>,
    /// A row of the bot server's audit chain the operator saw, signed, at some time: at
    /// each check the row must still be there with the same hash, or the audit log was
    /// truncated or rewritten (condition `AuditChainIntact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_chain: Option<AuditChainStatus>,
    /// When the next key or certificate is due to rotate (RFC 3339): the earliest of each
    /// certificate's renewal time and each key ring's activation plus its period. A
    /// maintenance window may hold a rotation until it opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<String>,
    /// The newest backup in the bucket, as the operator last listed it (condition
    /// `BackupsReady` says whether it is recent enough for the schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupStatus>,
}

/// A backup in the bucket.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// When it was taken (RFC 3339).
    pub time: String,
    /// Its object key (`backups/…`), to restore with `bot-server restore --object`.
    pub object: String,
    /// Its size in bytes, compressed and sealed.
    pub size_bytes: i64,
    /// The data key it is sealed with (kept in the ring while a retained backup needs it).
    pub key_id: String,
    /// Backups in the bucket.
    pub count: i32,
}

/// A recorded row of the audit chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditChainStatus {
    /// Its sequence number.
    pub seq: i64,
    /// Its chain hash (hex).
    pub hash: String,
    /// When the operator recorded it (RFC 3339).
    pub recorded_at: String,
}

/// One certificate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// Which certificate (`root`, `intermediate`, `serving`, `postgres-client`, …).
    pub name: String,
    /// Serial number, in hex.
    pub serial: String,
    /// When it expires (RFC 3339).
    pub not_after: String,
    /// When the operator will renew it (RFC 3339).
    pub renew_at: String,
}

/// One key ring.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRingStatus {
    /// Which ring (`jwt`, `data`, `field`, `hmac`).
    pub name: String,
    /// Id of the key used for new signatures or encryptions.
    pub active_key_id: String,
    /// When the active key was created (RFC 3339).
    pub active_since: String,
    /// Keys in the ring, the active one included.
    pub keys: u32,
    /// The rotation under way, if any: `Added`, `Activated` or `Retiring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_phase: Option<String>,
}
