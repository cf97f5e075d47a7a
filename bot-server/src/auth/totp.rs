//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of skew).
//! [`matching_step`] says which time step a code belongs to, so the caller can accept
//! each step once (no replay within the window).

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

/// Seconds in one step.
const STEP: u64 = 30;

/// The time step (`unix time / 30`) within one step of `now` whose code is `code`, if any.
pub fn matching_step_at(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let t = totp(secret)?;
    let code = code.trim();
    let step = now / STEP;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|s| t.generate(s * STEP) == code)
}

/// The time step `code` belongs to now, if it is valid.
pub fn matching_step(secret: &[u8], code: &str) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    matching_step_at(secret, code, now)
}

/// Whether `code` is valid now for `secret`.
pub fn check(secret: &[u8], code: &str) -> bool {
    matching_step(secret, code).is_some()
}

/// The secret in base32, as authenticator apps take it (RFC 4648, no padding).
pub fn base32(secret: &[u8]) -> String {
    match totp_rs::Secret::Raw(secret.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(s) => s,
        totp_rs::Secret::Raw(_) => String::new(),
    }
}

/// The code of the time step that holds `unix` seconds.
pub fn code_at(secret: &[u8], unix: u64) -> Option<String> {
    Some(totp(secret)?.generate(unix))
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
        let t = super::totp(&s).unwrap();
        let at = 1_800_000_000;
        let code = t.generate(at);
        assert_eq!(super::matching_step_at(&s, &code, at), Some(at / 30));
        assert_eq!(
            super::matching_step_at(&s, &code, at + 30),
            Some(at / 30),
            "one step of skew"
        );
        assert_eq!(super::matching_step_at(&s, &code, at + 90), None, "too old");
    }
}
