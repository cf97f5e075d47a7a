//! Certificate, key ring and rotation settings. The operator issues every certificate and
//! generates every key itself; these settings say how long each lives and when disruptive
//! rotation steps may run.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Certificates, key rings and when they rotate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecuritySpec {
    /// The internal CA and the lifetimes of the certificates it issues.
    #[serde(default)]
    pub certificates: CertificatesSpec,
    /// Rotation periods of the key rings.
    #[serde(default)]
    pub keys: KeysSpec,
    /// Windows in which disruptive rotation steps may run. Empty means any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

/// The internal CA and certificate lifetimes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.leafDays * 2 <= self.intermediateDays",
        "message": "leafDays must be at most half of intermediateDays, so a leaf never outlives its issuer's renewal",
        "fieldPath": ".leafDays"
    },
    {
        "rule": "self.intermediateDays * 2 <= self.rootDays",
        "message": "intermediateDays must be at most half of rootDays",
        "fieldPath": ".intermediateDays"
    }
]))]
pub struct CertificatesSpec {
    /// Bring your own intermediate CA: a Secret with `tls.crt` (the intermediate, then
    /// its chain), `tls.key` and `ca.crt` (the root). The operator then holds no root key.
    /// Without it the operator generates a root and an intermediate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<super::SecretRef>,
    /// Lifetime of a generated root CA in days.
    #[serde(default = "default_root_days")]
    #[schemars(range(min = 30, max = 36_500))]
    pub root_days: u32,
    /// Lifetime of the intermediate CA in days.
    #[serde(default = "default_intermediate_days")]
    #[schemars(range(min = 2, max = 3650))]
    pub intermediate_days: u32,
    /// Lifetime of the bot's serving and client certificates in days.
    #[serde(default = "default_leaf_days")]
    #[schemars(range(min = 1, max = 397))]
    pub leaf_days: u32,
    /// Renew when this percentage of a certificate's lifetime has passed.
    #[serde(default = "default_renew_percent")]
    #[schemars(range(min = 50, max = 90))]
    pub renew_at_percent: u32,
}

impl Default for CertificatesSpec {
    fn default() -> Self {
        Self {
            ca_secret: None,
            root_days: default_root_days(),
            intermediate_days: default_intermediate_days(),
            leaf_days: default_leaf_days(),
            renew_at_percent: default_renew_percent(),
        }
    }
}

fn default_root_days() -> u32 {
    3650
}
fn default_intermediate_days() -> u32 {
    365
}
fn default_leaf_days() -> u32 {
    90
}
fn default_renew_percent() -> u32 {
    66
}

/// Rotation periods of the key rings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeysSpec {
    /// Signature algorithm of access tokens. Fixed once the GeneralBot exists: tokens
    /// and keys made under one algorithm do not verify under the other.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "jwtAlgorithm cannot change on an existing GeneralBot: its signing keys and the tokens they signed are of the old algorithm. Create a new GeneralBot with the algorithm you want and move clients to it"}]))]
    pub jwt_algorithm: JwtAlgorithm,
    /// Days between rotations of the token signing key.
    #[serde(default = "default_jwt_days")]
    #[schemars(range(min = 1, max = 365))]
    pub jwt_rotation_days: u32,
    /// Days between rotations of the data encryption key (files).
    #[serde(default = "default_data_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub data_key_rotation_days: u32,
    /// Days between rotations of the database field key.
    #[serde(default = "default_data_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub field_key_rotation_days: u32,
    /// Days between rotations of the HMAC secret (refresh tokens, blind indexes).
    #[serde(default = "default_hmac_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub hmac_rotation_days: u32,
    /// What happens to the key and CA Secrets when this GeneralBot is deleted. `Retain`
    /// (the default, like a PersistentVolume's reclaim policy) keeps them, because the
    /// data they encrypt lives in services the operator does not own; a GeneralBot
    /// created again with the same name adopts them. `Delete` lets the garbage
    /// collector remove them with the GeneralBot.
    #[serde(default)]
    pub deletion_policy: KeysDeletionPolicy,
}

/// What happens to the key and CA Secrets when their GeneralBot is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum KeysDeletionPolicy {
    /// Keep them (no owner reference the garbage collector follows).
    #[default]
    Retain,
    /// Delete them with the GeneralBot.
    Delete,
}

impl Default for KeysSpec {
    fn default() -> Self {
        Self {
            jwt_algorithm: JwtAlgorithm::default(),
            jwt_rotation_days: default_jwt_days(),
            data_key_rotation_days: default_data_days(),
            field_key_rotation_days: default_data_days(),
            hmac_rotation_days: default_hmac_days(),
            deletion_policy: KeysDeletionPolicy::default(),
        }
    }
}

fn default_jwt_days() -> u32 {
    30
}
fn default_data_days() -> u32 {
    90
}
fn default_hmac_days() -> u32 {
    180
}

/// Signature algorithm of access tokens.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum JwtAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256, as the General Bots security guide specifies.
    #[default]
    RS256,
    /// ECDSA P-256 with SHA-256: smaller keys and tokens.
    ES256,
}

/// A window in which disruptive steps may run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    /// When the window opens, as a five-field cron expression in UTC.
    #[schemars(length(min = 9, max = 128), pattern(r"^(\S+\s+){4}\S+$"))]
    pub schedule: String,
    /// How long it stays open, in minutes.
    #[schemars(range(min = 1, max = 1440))]
    pub duration_minutes: u32,
}
