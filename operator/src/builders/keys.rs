//! The key-ring Secret: one file per ring in the format of
//! [`generalbot_crds::contract::KeyRingFile`], each key 32 bytes from the operating
//! system's CSPRNG. Created once; after that only rotation changes it, so a reconcile
//! never replaces a key that data still needs.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use generalbot_crds::contract::{KEY_RING_VERSION, KeyEntry, KeyRingFile, key_files};
use jiff::{Timestamp, Unit};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use zeroize::{Zeroize, Zeroizing};

use super::BuildContext;
use super::meta::object_meta;
use crate::{Error, Result};

/// Length of every symmetric key: AES-256 and HMAC-SHA256 both take 32 bytes.
pub const KEY_BYTES: usize = 32;

/// Name of the key-ring Secret of the GeneralBot called `name`.
pub fn key_secret_name(name: &str) -> String {
    format!("{name}-keys")
}

/// A generated Secret whose key material is wiped from memory when it is dropped.
pub struct GeneratedSecret(pub Secret);

impl Drop for GeneratedSecret {
    fn drop(&mut self) {
        for value in self.0.data.iter_mut().flat_map(|d| d.values_mut()) {
            value.0.zeroize();
        }
    }
}

impl std::fmt::Debug for GeneratedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedSecret")
            .field("name", &self.0.metadata.name)
            .field(
                "keys",
                &self.0.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()),
            )
            .finish()
    }
}

/// Builds the key-ring Secret with a fresh key in each ring, created at `now`.
pub fn key_secret(ctx: &BuildContext<'_>, now: Timestamp) -> Result<GeneratedSecret> {
    let mut data = BTreeMap::new();
    for file in key_files::ALL {
        let ring = file.trim_end_matches(".json");
        let json = Zeroizing::new(ring_json(ring, now)?);
        data.insert(file.to_owned(), ByteString(json.as_bytes().to_vec()));
    }
    Ok(GeneratedSecret(Secret {
        metadata: object_meta(ctx, key_secret_name(ctx.name)),
        type_: Some("Opaque".to_owned()),
        immutable: Some(false),
        data: Some(data),
        ..Secret::default()
    }))
}

fn ring_json(ring: &str, now: Timestamp) -> Result<String> {
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    getrandom::fill(key.as_mut())?;
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix)?;
    let id = format!(
        "{ring}-{}-{}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut file = KeyRingFile {
        version: KEY_RING_VERSION,
        active: id.clone(),
        algorithm: None,
        keys: vec![KeyEntry {
            id,
            created: now.round(Unit::Second).unwrap_or(now).to_string(),
            material: STANDARD.encode(key.as_ref()),
        }],
    };
    let json = serde_json::to_string(&file).map_err(|source| Error::Serialize {
        what: format!("key ring {ring}"),
        source,
    });
    for k in &mut file.keys {
        k.material.zeroize();
    }
    json
}
