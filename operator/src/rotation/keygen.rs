//! Fresh key material for each kind of ring: 32 random bytes for AES-256 and HMAC keys,
//! and PKCS#8 private keys for token signing (RSA 2048 for RS256, P-256 for ES256).

use generalbot_crds::v1alpha1::JwtAlgorithm;
use jiff::Timestamp;
use zeroize::Zeroizing;

use super::ring::{NewKey, key_id};

/// Length of every symmetric key: AES-256 and HMAC-SHA256 both take 32 bytes.
pub const SYMMETRIC_KEY_BYTES: usize = 32;

/// What kind of key a ring holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// 32 random bytes.
    Symmetric,
    /// A token signing key pair.
    Signing(JwtAlgorithm),
}

impl KeyKind {
    /// The `algorithm` recorded in the ring file.
    pub fn algorithm(self) -> Option<&'static str> {
        match self {
            Self::Symmetric => None,
            Self::Signing(JwtAlgorithm::RS256) => Some("RS256"),
            Self::Signing(JwtAlgorithm::ES256) => Some("ES256"),
        }
    }
}

/// Key generation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyGenError {
    /// The operating system's random source failed.
    #[error("reading the operating system's random source: {0}")]
    Random(#[from] getrandom::Error),
    /// The signing key pair could not be generated.
    #[error("generating a {algorithm} signing key: {source}")]
    Signing {
        /// The algorithm.
        algorithm: &'static str,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
}

/// A new key for ring `ring`, created at `now`.
pub fn generate(ring: &str, kind: KeyKind, now: Timestamp) -> Result<NewKey, KeyGenError> {
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix)?;
    let id = key_id(ring, now, suffix);
    let material = match kind {
        KeyKind::Symmetric => {
            let mut key = Zeroizing::new(vec![0u8; SYMMETRIC_KEY_BYTES]);
            getrandom::fill(key.as_mut_slice())?;
            key
        }
        KeyKind::Signing(alg) => {
            let (algorithm, sig) = match alg {
                JwtAlgorithm::RS256 => ("RS256", &rcgen::PKCS_RSA_SHA256),
                JwtAlgorithm::ES256 => ("ES256", &rcgen::PKCS_ECDSA_P256_SHA256),
            };
            let pair = rcgen::KeyPair::generate_for(sig)
                .map_err(|source| KeyGenError::Signing { algorithm, source })?;
            Zeroizing::new(pair.serialize_der())
        }
    };
    Ok(NewKey { id, material })
}
