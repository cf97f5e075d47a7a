//! Access tokens (JWT signed with the ring's active key, `kid` in the header, verified
//! against every key of the ring) and refresh tokens (256 random bits, stored only as an
//! HMAC).

use base64::Engine as _;

use crate::crypto::keyring::{SigningRing, SymmetricRing, hmac32};

/// Issuer of every token.
pub const ISSUER: &str = "generalbot";

/// Audience of every access token: this bot server's API. A token carrying another
/// audience is refused. (Tokens without one, issued by an older replica during an
/// upgrade, are accepted until they expire.)
pub const AUDIENCE: &str = "generalbot-api";

/// What failed with a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The ring has no active key.
    #[error("no active signing key")]
    NoActiveKey,
    /// Signing failed.
    #[error("signing an access token failed")]
    Sign,
    /// The token is invalid, expired, or under an unknown key (deliberately vague).
    #[error("invalid or expired token")]
    Invalid,
    /// No randomness.
    #[error("no random bytes available")]
    Random,
}

/// The claims of an access token.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Role.
    pub role: String,
    /// Session id (UUIDv4).
    pub sid: String,
    /// Issuer.
    pub iss: String,
    /// Audience ([`AUDIENCE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
}

/// Signs an access token.
pub fn sign(ring: &SigningRing, claims: &Claims) -> Result<String, TokenError> {
    let (kid, key) = ring.active().ok_or(TokenError::NoActiveKey)?;
    let mut header = jsonwebtoken::Header::new(ring.algorithm.jwt());
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|_| TokenError::Sign)
}

/// Verifies an access token against the key its `kid` names.
pub fn verify(ring: &SigningRing, token: &str) -> Result<Claims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
    if header.alg != ring.algorithm.jwt() {
        return Err(TokenError::Invalid);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|k| ring.get(k))
        .ok_or(TokenError::Invalid)?;
    let mut v = jsonwebtoken::Validation::new(ring.algorithm.jwt());
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.leeway = 5;
    v.set_required_spec_claims(&["exp", "iss", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &key.decoding, &v)
        .map(|d| d.claims)
        .map_err(|_| TokenError::Invalid)
}

/// A new refresh token: 32 random bytes, base64url.
pub fn new_refresh_token() -> Result<zeroize::Zeroizing<String>, TokenError> {
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(raw.as_mut()).map_err(|_| TokenError::Random)?;
    Ok(zeroize::Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()),
    ))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The HMAC of a refresh token under the active key (what is stored), with that key's
/// id.
pub fn refresh_hmac(ring: &SymmetricRing, token: &str) -> Option<(String, String)> {
    ring.active().map(|(id, k)| {
        (
            id.to_owned(),
            hex(hmac32(k.as_slice(), token.as_bytes()).as_slice()),
        )
    })
}

/// The HMACs under every key, active first (what lookups try).
pub fn refresh_hmac_candidates(ring: &SymmetricRing, token: &str) -> Vec<String> {
    ring.all_active_first()
        .map(|(_, k)| hex(hmac32(k.as_slice(), token.as_bytes()).as_slice()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyring::tests::{TEST_RSA_PEM, TEST_RSA_PEM_2};

    fn claims(exp_in: i64) -> Claims {
        let now = jiff::Timestamp::now().as_second();
        Claims {
            sub: "u".into(),
            role: "user".into(),
            sid: "s".into(),
            iss: ISSUER.into(),
            aud: Some(AUDIENCE.into()),
            iat: now,
            exp: now + exp_in,
        }
    }

    #[test]
    fn rs256_with_kid_round_trips_and_rejects_other_keys() {
        let ring = SigningRing::from_rsa_pem(TEST_RSA_PEM).unwrap();
        let t = sign(&ring, &claims(900)).unwrap();
        let h = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(h.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(h.kid.as_deref(), ring.active().map(|a| a.0));
        assert_eq!(verify(&ring, &t).unwrap().sub, "u");
        let other = SigningRing::from_rsa_pem(TEST_RSA_PEM_2).unwrap();
        assert!(verify(&other, &t).is_err());
        assert!(verify(&ring, &sign(&ring, &claims(-60)).unwrap()).is_err());
        let mut bad = t.clone();
        bad.push('x');
        assert!(verify(&ring, &bad).is_err());
        let mut elsewhere = claims(900);
        elsewhere.aud = Some("another-api".into());
        assert!(
            verify(&ring, &sign(&ring, &elsewhere).unwrap()).is_err(),
            "a token for another audience is refused"
        );
    }

    #[test]
    fn tokens_of_a_retiring_key_verify_until_it_leaves_the_ring() {
        use base64::Engine as _;
        let der = |pem: &str| {
            base64::engine::general_purpose::STANDARD.encode(
                crate::crypto::keyring::pkcs8_from_pem(pem)
                    .unwrap()
                    .as_slice(),
            )
        };
        let dir = std::env::temp_dir().join(format!("gb-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |active: &str, keys: &[(&str, &str)]| {
            let f = generalbot_crds::contract::KeyRingFile {
                version: 1,
                active: active.into(),
                algorithm: Some("RS256".into()),
                keys: keys
                    .iter()
                    .map(|(id, pem)| generalbot_crds::contract::KeyEntry {
                        id: (*id).into(),
                        created: "2026-01-01T00:00:00Z".into(),
                        material: der(pem),
                    })
                    .collect(),
            };
            let p = dir.join(format!("{active}-{}.json", keys.len()));
            std::fs::write(&p, serde_json::to_vec(&f).unwrap()).unwrap();
            SigningRing::load(&p).unwrap()
        };
        let old = write("j1", &[("j1", TEST_RSA_PEM)]);
        let token = sign(&old, &claims(900)).unwrap();
        let rotated = write("j2", &[("j1", TEST_RSA_PEM), ("j2", TEST_RSA_PEM_2)]);
        assert_eq!(verify(&rotated, &token).unwrap().sub, "u");
        let new_token = sign(&rotated, &claims(900)).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .unwrap()
                .kid
                .as_deref(),
            Some("j2")
        );
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
        let retired = write("j2", &[("j2", TEST_RSA_PEM_2)]);
        assert!(verify(&retired, &token).is_err());
        assert!(verify(&retired, &new_token).is_ok());
    }

    #[test]
    fn es256_dev_keys_work() {
        let ring = SigningRing::generate_es256().unwrap();
        let t = sign(&ring, &claims(60)).unwrap();
        assert_eq!(verify(&ring, &t).unwrap().role, "user");
        assert_eq!(ring.jwks()["keys"][0]["kty"], "EC");
    }

    #[test]
    fn refresh_tokens_are_256_bits_and_stored_as_hmac() {
        let t = new_refresh_token().unwrap();
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t.as_bytes())
                .unwrap()
                .len(),
            32
        );
        let ring = SymmetricRing::single(zeroize::Zeroizing::new([9; 32]));
        let (key, h) = refresh_hmac(&ring, &t).unwrap();
        assert_eq!(key, ring.active_id());
        assert_eq!(h.len(), 64);
        assert!(!h.contains(t.as_str()));
        assert_eq!(refresh_hmac_candidates(&ring, &t), vec![h]);
    }
}
