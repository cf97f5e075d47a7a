//! A key ring as the operator changes it: one active key and any number of older keys
//! still accepted. The three changes rotation makes ([`Ring::add`], [`Ring::activate`],
//! [`Ring::retire`]) each keep the invariants: exactly one active key, the active key is
//! in the ring, ids are unique, and the active key is never removed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use generalbot_crds::contract::{KEY_RING_VERSION, KeyEntry, KeyRingFile};
use jiff::{Timestamp, Unit};
use zeroize::Zeroizing;

/// What can go wrong changing a ring. Each is a refused change; the ring is untouched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    /// The stored ring is not in the contract's format.
    #[error("key ring {ring} is not valid: {reason}")]
    Invalid {
        /// Which ring.
        ring: String,
        /// What is wrong.
        reason: String,
    },
    /// A key id that is not in the ring.
    #[error("key ring {ring} has no key {id}")]
    NoSuchKey {
        /// Which ring.
        ring: String,
        /// The id asked for.
        id: String,
    },
    /// Removing the active key was asked for.
    #[error("key {id} of ring {ring} is active and cannot be retired")]
    RetireActive {
        /// Which ring.
        ring: String,
        /// The active id.
        id: String,
    },
}

/// A key ring and its name.
#[derive(Clone, PartialEq, Eq)]
pub struct Ring {
    /// Ring name (`jwt`, `data`, `field`, `hmac`).
    pub name: String,
    /// The ring as mounted into the bot server.
    pub file: KeyRingFile,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("name", &self.name)
            .field("active", &self.file.active)
            .field(
                "keys",
                &self.file.keys.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Fresh key material and the id it gets.
pub struct NewKey {
    /// The id.
    pub id: String,
    /// The material (raw bytes: a symmetric key or a PKCS#8 DER private key).
    pub material: Zeroizing<Vec<u8>>,
}

/// A key id for ring `ring` created at `now`: readable, sortable, and unique thanks to a
/// random suffix.
pub fn key_id(ring: &str, now: Timestamp, suffix: [u8; 4]) -> String {
    format!(
        "{ring}-{}-{}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

impl Ring {
    /// A ring holding one key, active.
    pub fn new(name: &str, algorithm: Option<&str>, key: NewKey, now: Timestamp) -> Self {
        let id = key.id.clone();
        Self {
            name: name.to_owned(),
            file: KeyRingFile {
                version: KEY_RING_VERSION,
                active: id,
                algorithm: algorithm.map(str::to_owned),
                keys: vec![entry(key, now)],
            },
        }
    }

    /// Reads a ring, checking the invariants.
    pub fn parse(name: &str, json: &[u8]) -> Result<Self, RingError> {
        let invalid = |reason: String| RingError::Invalid {
            ring: name.to_owned(),
            reason,
        };
        let file: KeyRingFile = serde_json::from_slice(json)
            .map_err(|e| invalid(format!("not JSON of the ring format: {e}")))?;
        let ring = Self {
            name: name.to_owned(),
            file,
        };
        ring.check().map_err(invalid)?;
        Ok(ring)
    }

    /// The invariants; `Err` says which one fails.
    pub fn check(&self) -> Result<(), String> {
        if self.file.version != KEY_RING_VERSION {
            return Err(format!(
                "version {} is not {KEY_RING_VERSION}",
                self.file.version
            ));
        }
        let active = self
            .file
            .keys
            .iter()
            .filter(|k| k.id == self.file.active)
            .count();
        if active != 1 {
            return Err(format!(
                "active key {} appears {active} times, not once",
                self.file.active
            ));
        }
        let mut ids: Vec<&str> = self.file.keys.iter().map(|k| k.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.file.keys.len() {
            return Err("two keys share an id".to_owned());
        }
        Ok(())
    }

    /// The JSON mounted into the bot server.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(&self.file).unwrap_or_default())
    }

    /// The active key's entry.
    pub fn active(&self) -> Option<&KeyEntry> {
        self.file.keys.iter().find(|k| k.id == self.file.active)
    }

    /// When the active key was created.
    pub fn active_since(&self) -> Option<Timestamp> {
        self.active().and_then(|k| k.created.parse().ok())
    }

    /// Whether the ring holds `id`.
    pub fn contains(&self, id: &str) -> bool {
        self.file.keys.iter().any(|k| k.id == id)
    }

    /// Adds a key, not yet active. Adding an id already there changes nothing.
    pub fn add(&mut self, key: NewKey, now: Timestamp) {
        if !self.contains(&key.id) {
            self.file.keys.push(entry(key, now));
        }
    }

    /// Makes `id` the active key.
    pub fn activate(&mut self, id: &str) -> Result<(), RingError> {
        if !self.contains(id) {
            return Err(RingError::NoSuchKey {
                ring: self.name.clone(),
                id: id.to_owned(),
            });
        }
        self.file.active = id.to_owned();
        Ok(())
    }

    /// Removes `id`, which must not be the active key. Removing an id already gone
    /// changes nothing.
    pub fn retire(&mut self, id: &str) -> Result<(), RingError> {
        if self.file.active == id {
            return Err(RingError::RetireActive {
                ring: self.name.clone(),
                id: id.to_owned(),
            });
        }
        self.file.keys.retain(|k| k.id != id);
        Ok(())
    }
}

fn entry(key: NewKey, now: Timestamp) -> KeyEntry {
    KeyEntry {
        id: key.id,
        created: now.round(Unit::Second).unwrap_or(now).to_string(),
        material: STANDARD.encode(key.material.as_slice()),
    }
}
