//! HMAC-SHA256 blind indexes: a deterministic keyed digest of a normalized value (an
//! email address), stored beside its ciphertext so equality lookups work without
//! decrypting and without revealing the value.

use super::keyring::{SymmetricRing, hmac32};

/// The purpose label of the email index of users.
pub const EMAIL: &str = "email";

fn index_with(key: &[u8; 32], purpose: &str, value: &str) -> String {
    let mut data = Vec::with_capacity(purpose.len() + 1 + value.len());
    data.extend_from_slice(purpose.as_bytes());
    data.push(0);
    data.extend_from_slice(value.as_bytes());
    let mac = hmac32(key, &data);
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// Normalizes an email address for lookups (trimmed, lower case).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The index of `value` under the active key (what is stored), with that key's id.
pub fn index(ring: &SymmetricRing, purpose: &str, value: &str) -> Option<(String, String)> {
    ring.active()
        .map(|(id, k)| (id.to_owned(), index_with(k, purpose, value)))
}

/// The index of `value` under every key, active first (what lookups try, so rows
/// indexed under an older key are still found).
pub fn candidates(ring: &SymmetricRing, purpose: &str, value: &str) -> Vec<String> {
    ring.all_active_first()
        .map(|(_, k)| index_with(k, purpose, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn deterministic_keyed_and_normalized() {
        let a = SymmetricRing::single(Zeroizing::new([3; 32]));
        let b = SymmetricRing::single(Zeroizing::new([4; 32]));
        let e = normalize_email(" Alice@Example.COM ");
        assert_eq!(
            index(&a, "email", &e),
            index(&a, "email", "alice@example.com")
        );
        assert_ne!(index(&a, "email", &e), index(&b, "email", &e));
        assert_ne!(index(&a, "email", &e), index(&a, "other", &e));
        let (key, idx) = index(&a, "email", &e).unwrap();
        assert_eq!(key, a.active_id());
        assert_eq!(idx.len(), 64);
        assert_eq!(candidates(&a, "email", &e), vec![idx]);
    }
}
