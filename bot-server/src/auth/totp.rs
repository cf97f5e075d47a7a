//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of skew).

use totp_rs::{Algorithm, TOTP};

/// A new random 160-bit TOTP secret.
pub fn new_secret() -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let mut s = zeroize::Zeroizing::new(vec![0u8; 20]);
    getrandom::fill(s.as_mut_slice()).ok()?;
    Some(s)
}

fn totp(secret: &[u8]) -> Option<TOTP> {
    TOTP::new(Algorithm::SHA1, 6, 1, 30, secret.to_vec()).ok()
}

/// Whether `code` is valid now for `secret`.
pub fn check(secret: &[u8], code: &str) -> bool {
    totp(secret).is_some_and(|t| t.check_current(code.trim()).unwrap_or(false))
}

/// The current code (for enrolment checks and tests).
pub fn current(secret: &[u8]) -> Option<String> {
    totp(secret)?.generate_current().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn current_code_checks() {
        let s = super::new_secret().unwrap();
        let code = super::current(&s).unwrap();
        assert!(super::check(&s, &code));
        assert!(!super::check(&s, "000000") || code == "000000");
        assert!(!super::check(&s, "abc"));
    }
}
