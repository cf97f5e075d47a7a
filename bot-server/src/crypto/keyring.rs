//! Key rings in memory: symmetric rings (AES-256-GCM and HMAC keys of 32 bytes) and the
//! token-signing ring, loaded from the contract's [`KeyRingFile`] format or built from a
//! single configured key. Material lives in zeroizing buffers and never prints.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use generalbot_crds::contract::{KEY_RING_VERSION, KeyRingFile};
use hmac::Mac as _;
use ring::signature::KeyPair as _;
use zeroize::Zeroizing;

/// What is wrong with a key ring.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The file cannot be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not the contract's JSON.
    #[error("not a key-ring file: {0}")]
    Parse(#[source] serde_json::Error),
    /// The version is unknown.
    #[error(
        "version {found} is not supported (expected {KEY_RING_VERSION}); upgrade the bot server"
    )]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The active id names no key.
    #[error("active key {active:?} is not among the ring's keys")]
    ActiveMissing {
        /// The active id.
        active: String,
    },
    /// A key id has characters the envelope cannot carry.
    #[error("key id {id:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-' or '_'")]
    BadKeyId {
        /// The id.
        id: String,
    },
    /// A key's material is not valid base64 of the right size.
    #[error("key {id:?}: material must be base64 of {expected}")]
    BadMaterial {
        /// The key id.
        id: String,
        /// What is expected.
        expected: &'static str,
    },
    /// A key is all zeros.
    #[error("key {id:?} is all zeros")]
    AllZeros {
        /// The key id.
        id: String,
    },
    /// The signing algorithm is not supported.
    #[error("algorithm {0:?} is not supported (RS256 or ES256)")]
    Algorithm(Option<String>),
    /// A signing key is not a usable PKCS#8 key.
    #[error("key {id:?} is not a PKCS#8 {algorithm} private key (RSA keys need 2048 bits or more)")]
    BadSigningKey {
        /// The key id.
        id: String,
        /// The algorithm.
        algorithm: &'static str,
    },
    /// Random generation failed.
    #[error("generating a key failed")]
    Random,
}

/// A 32-byte secret key.
pub type Key32 = Zeroizing<[u8; 32]>;

/// A ring of 32-byte keys with one active id.
#[derive(Clone)]
pub struct SymmetricRing {
    active: String,
    keys: BTreeMap<String, Arc<Key32>>,
}

impl std::fmt::Debug for SymmetricRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymmetricRing")
            .field("active", &self.active)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Checks a key id: it is carried inside envelopes, so it must be short and plain.
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn read_ring_file(path: &Path) -> Result<KeyRingFile, KeyRingError> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(KeyRingError::Read)?);
    let file: KeyRingFile = serde_json::from_slice(&bytes).map_err(KeyRingError::Parse)?;
    if file.version != KEY_RING_VERSION {
        return Err(KeyRingError::Version {
            found: file.version,
        });
    }
    if !file.keys.iter().any(|k| k.id == file.active) {
        return Err(KeyRingError::ActiveMissing {
            active: file.active.clone(),
        });
    }
    if let Some(k) = file.keys.iter().find(|k| !valid_key_id(&k.id)) {
        return Err(KeyRingError::BadKeyId { id: k.id.clone() });
    }
    Ok(file)
}

fn decode_material(
    id: &str,
    material: &str,
    expected: &'static str,
) -> Result<Zeroizing<Vec<u8>>, KeyRingError> {
    base64::engine::general_purpose::STANDARD
        .decode(material.trim())
        .map(Zeroizing::new)
        .map_err(|_| KeyRingError::BadMaterial {
            id: id.to_owned(),
            expected,
        })
}

impl SymmetricRing {
    /// Reads a ring file of 32-byte keys.
    pub fn load(path: &Path) -> Result<Self, KeyRingError> {
        let file = read_ring_file(path)?;
        let mut keys = BTreeMap::new();
        for entry in &file.keys {
            let raw = decode_material(&entry.id, &entry.material, "32 bytes")?;
            let mut key = Zeroizing::new([0u8; 32]);
            if raw.len() != 32 {
                return Err(KeyRingError::BadMaterial {
                    id: entry.id.clone(),
                    expected: "32 bytes",
                });
            }
            key.copy_from_slice(&raw);
            if key.iter().all(|b| *b == 0) {
                return Err(KeyRingError::AllZeros {
                    id: entry.id.clone(),
                });
            }
            keys.insert(entry.id.clone(), Arc::new(key));
        }
        Ok(Self {
            active: file.active,
            keys,
        })
    }

    /// A ring of one key, whose id is a fingerprint of the key (so a changed key gets a
    /// new id and data under the old key is reported, not silently misread).
    pub fn single(key: Key32) -> Self {
        let id = fingerprint(&key);
        Self {
            active: id.clone(),
            keys: BTreeMap::from([(id, Arc::new(key))]),
        }
    }

    /// Builds a ring from explicit keys (tests and tools).
    pub fn from_keys(
        active: &str,
        keys: impl IntoIterator<Item = (String, Key32)>,
    ) -> Option<Self> {
        let keys: BTreeMap<_, _> = keys.into_iter().map(|(id, k)| (id, Arc::new(k))).collect();
        (keys.contains_key(active) && keys.keys().all(|id| valid_key_id(id))).then(|| Self {
            active: active.to_owned(),
            keys,
        })
    }

    /// A ring of keys derived from this one's with HMAC-SHA256 under `label`, same ids.
    pub fn derive(&self, label: &str) -> Self {
        let keys = self
            .keys
            .iter()
            .map(|(id, key)| {
                (
                    id.clone(),
                    Arc::new(hmac32(key.as_slice(), label.as_bytes())),
                )
            })
            .collect();
        Self {
            active: self.active.clone(),
            keys,
        }
    }

    /// The active key's id.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// The active key.
    pub fn active(&self) -> Option<(&str, &Key32)> {
        self.keys
            .get_key_value(&self.active)
            .map(|(id, k)| (id.as_str(), k.as_ref()))
    }

    /// The key of `id`.
    pub fn get(&self, id: &str) -> Option<&Key32> {
        self.keys.get(id).map(Arc::as_ref)
    }

    /// Every key id.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Every key, active first.
    pub fn all_active_first(&self) -> impl Iterator<Item = (&str, &Key32)> {
        let active = self.active();
        active.into_iter().chain(
            self.keys
                .iter()
                .filter(|(id, _)| **id != self.active)
                .map(|(id, k)| (id.as_str(), k.as_ref())),
        )
    }
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac32(key: &[u8], data: &[u8]) -> Key32 {
    let mut out = Zeroizing::new([0u8; 32]);
    // HMAC accepts keys of any length, so this cannot fail.
    if let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        mac.update(data);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

fn fingerprint(key: &[u8; 32]) -> String {
    let mac = hmac32(key, b"generalbot key id");
    let hex: String = mac.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("k{hex}")
}

/// The token-signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl SigningAlgorithm {
    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
    /// The jsonwebtoken algorithm.
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// One signing key: what signs and what verifies, and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    /// Signs.
    pub encoding: jsonwebtoken::EncodingKey,
    /// Verifies.
    pub decoding: jsonwebtoken::DecodingKey,
    /// The public key as a JWK (JSON object).
    pub jwk: serde_json::Value,
}

/// The token-signing ring: every key verifies, the active one signs.
#[derive(Clone)]
pub struct SigningRing {
    /// The algorithm of every key.
    pub algorithm: SigningAlgorithm,
    active: String,
    keys: BTreeMap<String, Arc<SigningKey>>,
}

impl std::fmt::Debug for SigningRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningRing")
            .field("algorithm", &self.algorithm)
            .field("active", &self.active)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_key(id: &str, alg: SigningAlgorithm, pkcs8: &[u8]) -> Result<SigningKey, KeyRingError> {
    let bad = || KeyRingError::BadSigningKey {
        id: id.to_owned(),
        algorithm: alg.name(),
    };
    match alg {
        SigningAlgorithm::Rs256 => {
            let pair = ring::signature::RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| bad())?;
            if pair.public().modulus_len() < 256 {
                return Err(bad());
            }
            let parts: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
            let (n, e) = (b64url(&parts.n), b64url(&parts.e));
            // jsonwebtoken signs with ring's PKCS#1 parser; its PEM reader unwraps PKCS#8.
            let pem = Zeroizing::new(format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(pkcs8)
            ));
            let encoding =
                jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| bad())?;
            let decoding =
                jsonwebtoken::DecodingKey::from_rsa_components(&n, &e).map_err(|_| bad())?;
            Ok(SigningKey {
                encoding,
                decoding,
                jwk: serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": id, "n": n, "e": e}),
            })
        }
        SigningAlgorithm::Es256 => {
            let rng = ring::rand::SystemRandom::new();
            let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8,
                &rng,
            )
            .map_err(|_| bad())?;
            let point = pair.public_key().as_ref();
            let (x, y) = match point {
                [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                _ => return Err(bad()),
            };
            Ok(SigningKey {
                encoding: jsonwebtoken::EncodingKey::from_ec_der(pkcs8),
                decoding: jsonwebtoken::DecodingKey::from_ec_der(point),
                jwk: serde_json::json!({"kty": "EC", "use": "sig", "alg": "ES256", "kid": id, "crv": "P-256", "x": b64url(x), "y": b64url(y)}),
            })
        }
    }
}

/// Extracts the DER of a `-----BEGIN PRIVATE KEY-----` PEM block.
pub fn pkcs8_from_pem(pem: &str) -> Option<Zeroizing<Vec<u8>>> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")?;
    let body = pem.get(start + "-----BEGIN PRIVATE KEY-----".len()..)?;
    let end = body.find("-----END PRIVATE KEY-----")?;
    let b64: Zeroizing<String> = Zeroizing::new(
        body.get(..end)?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()
        .map(Zeroizing::new)
}

impl SigningRing {
    /// Reads the contract's JWT ring (PKCS#8 DER material).
    pub fn load(path: &Path) -> Result<Self, KeyRingError> {
        let file = read_ring_file(path)?;
        let algorithm = match file.algorithm.as_deref() {
            Some("RS256") => SigningAlgorithm::Rs256,
            Some("ES256") => SigningAlgorithm::Es256,
            other => return Err(KeyRingError::Algorithm(other.map(str::to_owned))),
        };
        let mut keys = BTreeMap::new();
        for entry in &file.keys {
            let der = decode_material(&entry.id, &entry.material, "a PKCS#8 DER private key")?;
            keys.insert(
                entry.id.clone(),
                Arc::new(signing_key(&entry.id, algorithm, &der)?),
            );
        }
        Ok(Self {
            algorithm,
            active: file.active,
            keys,
        })
    }

    /// One RS256 key from a PEM PKCS#8 private key; its id is a fingerprint of the key.
    pub fn from_rsa_pem(pem: &str) -> Result<Self, KeyRingError> {
        let der = pkcs8_from_pem(pem).ok_or(KeyRingError::BadSigningKey {
            id: "pem".into(),
            algorithm: "RS256",
        })?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        let id: String = digest
            .as_ref()
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        let id = format!("r{id}");
        let key = signing_key(&id, SigningAlgorithm::Rs256, &der)?;
        Ok(Self {
            algorithm: SigningAlgorithm::Rs256,
            active: id.clone(),
            keys: BTreeMap::from([(id, Arc::new(key))]),
        })
    }

    /// An ephemeral ES256 key for development (ring cannot generate RSA keys).
    pub fn generate_es256() -> Result<Self, KeyRingError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .map_err(|_| KeyRingError::Random)?;
        let id = "dev-ephemeral".to_owned();
        let key = signing_key(&id, SigningAlgorithm::Es256, doc.as_ref())?;
        Ok(Self {
            algorithm: SigningAlgorithm::Es256,
            active: id.clone(),
            keys: BTreeMap::from([(id, Arc::new(key))]),
        })
    }

    /// The active key.
    pub fn active(&self) -> Option<(&str, &SigningKey)> {
        self.keys
            .get_key_value(&self.active)
            .map(|(id, k)| (id.as_str(), k.as_ref()))
    }

    /// The key of `kid`.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.get(kid).map(Arc::as_ref)
    }

    /// The JWKS document of every key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": self.keys.values().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }
}

#[cfg(test)]
/// Test fixtures shared with other modules' tests.
pub mod tests {
    use super::*;

    /// A throwaway RSA key for tests.
    pub const TEST_RSA_PEM: &str = include_str!("../../tests/fixtures/test-rsa-1.pem");
    /// A second throwaway RSA key for tests.
    pub const TEST_RSA_PEM_2: &str = include_str!("../../tests/fixtures/test-rsa-2.pem");

    #[test]
    fn rsa_pem_gives_a_jwk() {
        let ring = SigningRing::from_rsa_pem(TEST_RSA_PEM).unwrap();
        let (kid, key) = ring.active().unwrap();
        assert!(kid.starts_with('r'));
        assert_eq!(key.jwk["kty"], "RSA");
        assert_eq!(key.jwk["e"], "AQAB");
        assert!(format!("{ring:?}").len() < 200);
    }

    #[test]
    fn single_key_id_depends_on_the_key() {
        let a = SymmetricRing::single(Zeroizing::new([1; 32]));
        let b = SymmetricRing::single(Zeroizing::new([2; 32]));
        assert_ne!(a.active_id(), b.active_id());
        assert!(valid_key_id(a.active_id()));
        assert!(!format!("{a:?}").contains("1, 1"));
    }

    #[test]
    fn ring_file_checks() {
        let dir = std::env::temp_dir().join(format!("gb-ring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.json");
        let write = |active: &str, mat: &[u8]| {
            let f = KeyRingFile {
                version: 1,
                active: active.into(),
                algorithm: None,
                keys: vec![generalbot_crds::contract::KeyEntry {
                    id: "a".into(),
                    created: "2026-01-01T00:00:00Z".into(),
                    material: base64::engine::general_purpose::STANDARD.encode(mat),
                }],
            };
            std::fs::write(&p, serde_json::to_vec(&f).unwrap()).unwrap();
        };
        write("a", &[7; 32]);
        assert_eq!(SymmetricRing::load(&p).unwrap().active_id(), "a");
        write("b", &[7; 32]);
        assert!(matches!(
            SymmetricRing::load(&p),
            Err(KeyRingError::ActiveMissing { .. })
        ));
        write("a", &[7; 16]);
        assert!(matches!(
            SymmetricRing::load(&p),
            Err(KeyRingError::BadMaterial { .. })
        ));
        write("a", &[0; 32]);
        assert!(matches!(
            SymmetricRing::load(&p),
            Err(KeyRingError::AllZeros { .. })
        ));
    }
}
