//! Password hashing with Argon2id at the guide's parameters (19456 KiB, 2 iterations,
//! parallelism 1, 32-byte random salt), and a verification that does the same work
//! whether or not the account exists.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19456;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;
/// Salt length in bytes.
pub const SALT_LEN: usize = 32;

/// What failed while hashing.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// No randomness for the salt.
    #[error("no random salt available")]
    Random,
    /// The hasher failed.
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// The hasher at the guide's parameters.
pub fn argon2id() -> Argon2<'static> {
    // These constants are within Argon2's limits, so `new` cannot fail; default is a
    // safe fallback that is never reached.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(32)).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password to a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2id()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A hash of a random password, verified against for unknown accounts so the response
/// time does not reveal whether an account exists.
pub fn dummy_hash() -> String {
    let mut pw = [0u8; 16];
    let _ = getrandom::fill(&mut pw);
    hash(&format!("{pw:?}")).unwrap_or_default()
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2id()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_at_the_guides_parameters() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let salt_b64 = h.split('$').nth(4).unwrap();
        assert_eq!(salt_b64.len(), 43); // 32 bytes, unpadded base64
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
        assert_ne!(hash("correct horse").unwrap(), h);
    }
}
