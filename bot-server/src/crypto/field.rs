//! AES-256-GCM field encryption. A value is stored as a versioned text envelope,
//! `gb1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`, with a random 96-bit nonce; the
//! associated data binds it to its table, column and row id (and the key id), so a value
//! copied to another row or column does not decrypt.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use zeroize::Zeroizing;

use super::keyring::SymmetricRing;

/// Envelope format version prefix.
pub const ENVELOPE_PREFIX: &str = "gb1";

/// What went wrong encrypting or decrypting a field.
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    /// The ring has no active key.
    #[error("the key ring has no active key")]
    NoActiveKey,
    /// The value is not an envelope this server writes.
    #[error("stored value is not a gb1 envelope")]
    Malformed,
    /// The key id of the envelope is not in the ring.
    #[error(
        "stored value is under key {key_id:?}, which is not in the ring: add it back to the ring"
    )]
    UnknownKey {
        /// The key id.
        key_id: String,
    },
    /// Authentication failed: wrong row, column or key, or the value was altered.
    #[error("stored value failed authentication (altered, or moved from another row or column)")]
    Tampered,
    /// No randomness.
    #[error("no random nonce available")]
    Random,
}

/// Where a value lives: what its associated data binds it to.
#[derive(Debug, Clone, Copy)]
pub struct FieldContext<'a> {
    /// Table name.
    pub table: &'a str,
    /// Column name.
    pub column: &'a str,
    /// Row id.
    pub row: &'a str,
}

fn aad(ctx: &FieldContext<'_>, key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for part in [ENVELOPE_PREFIX, ctx.table, ctx.column, ctx.row, key_id] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Encrypts `plaintext` under the ring's active key.
pub fn encrypt(
    ring: &SymmetricRing,
    ctx: &FieldContext<'_>,
    plaintext: &[u8],
) -> Result<String, FieldError> {
    let (key_id, key) = ring.active().ok_or(FieldError::NoActiveKey)?;
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| FieldError::NoActiveKey)?;
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|_| FieldError::Random)?;
    let aad = aad(ctx, key_id);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| FieldError::Random)?;
    let mut body = Vec::with_capacity(12 + ct.len());
    body.extend_from_slice(&nonce);
    body.extend_from_slice(&ct);
    Ok(format!(
        "{ENVELOPE_PREFIX}.{key_id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body)
    ))
}

/// The key id an envelope was written under.
pub fn key_id_of(envelope: &str) -> Option<&str> {
    let mut parts = envelope.splitn(3, '.');
    (parts.next()? == ENVELOPE_PREFIX).then_some(())?;
    parts.next()
}

/// Decrypts an envelope written for `ctx`.
pub fn decrypt(
    ring: &SymmetricRing,
    ctx: &FieldContext<'_>,
    envelope: &str,
) -> Result<Zeroizing<Vec<u8>>, FieldError> {
    let mut parts = envelope.splitn(3, '.');
    let (Some(ENVELOPE_PREFIX), Some(key_id), Some(body)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(FieldError::Malformed);
    };
    let key = ring.get(key_id).ok_or_else(|| FieldError::UnknownKey {
        key_id: key_id.to_owned(),
    })?;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| FieldError::Malformed)?;
    if body.len() < 12 + 16 {
        return Err(FieldError::Malformed);
    }
    let (nonce, ct) = body.split_at(12);
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| FieldError::Malformed)?;
    let aad = aad(ctx, key_id);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
        .map(Zeroizing::new)
        .map_err(|_| FieldError::Tampered)
}

/// Decrypts to UTF-8 text.
pub fn decrypt_text(
    ring: &SymmetricRing,
    ctx: &FieldContext<'_>,
    envelope: &str,
) -> Result<Zeroizing<String>, FieldError> {
    let bytes = decrypt(ring, ctx, envelope)?;
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| FieldError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring(active: &str) -> SymmetricRing {
        SymmetricRing::from_keys(
            active,
            [
                ("old".to_string(), Zeroizing::new([1u8; 32])),
                ("new".to_string(), Zeroizing::new([2u8; 32])),
            ],
        )
        .unwrap()
    }

    const CTX: FieldContext<'static> = FieldContext {
        table: "messages",
        column: "body",
        row: "row-1",
    };

    #[test]
    fn value_copied_to_another_row_or_column_fails() {
        let r = ring("new");
        let env = encrypt(&r, &CTX, b"hello").unwrap();
        assert_eq!(key_id_of(&env), Some("new"));
        assert_eq!(&*decrypt(&r, &CTX, &env).unwrap(), b"hello");
        let other_row = FieldContext {
            row: "row-2",
            ..CTX
        };
        assert!(matches!(
            decrypt(&r, &other_row, &env),
            Err(FieldError::Tampered)
        ));
        let other_col = FieldContext {
            column: "title",
            ..CTX
        };
        assert!(matches!(
            decrypt(&r, &other_col, &env),
            Err(FieldError::Tampered)
        ));
        let other_table = FieldContext {
            table: "users",
            ..CTX
        };
        assert!(matches!(
            decrypt(&r, &other_table, &env),
            Err(FieldError::Tampered)
        ));
    }

    #[test]
    fn old_keys_still_decrypt_and_unknown_keys_are_named() {
        let env = encrypt(&ring("old"), &CTX, b"x").unwrap();
        assert_eq!(&*decrypt(&ring("new"), &CTX, &env).unwrap(), b"x");
        let only_new =
            SymmetricRing::from_keys("new", [("new".to_string(), Zeroizing::new([2u8; 32]))])
                .unwrap();
        assert!(
            matches!(decrypt(&only_new, &CTX, &env), Err(FieldError::UnknownKey { key_id }) if key_id == "old")
        );
        // Relabelling the key id does not help an attacker: the id is in the associated data.
        let relabelled = env.replacen("gb1.old.", "gb1.new.", 1);
        assert!(matches!(
            decrypt(&ring("new"), &CTX, &relabelled),
            Err(FieldError::Tampered)
        ));
    }

    #[test]
    fn nonces_are_fresh() {
        let r = ring("new");
        assert_ne!(
            encrypt(&r, &CTX, b"same").unwrap(),
            encrypt(&r, &CTX, b"same").unwrap()
        );
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(any::<u8>(), 0..512), row in "[a-z0-9-]{1,20}") {
            let r = ring("new");
            let ctx = FieldContext { row: &row, ..CTX };
            let env = encrypt(&r, &ctx, &data).unwrap();
            prop_assert_eq!(&*decrypt(&r, &ctx, &env).unwrap(), &data);
        }

        #[test]
        fn any_bit_flip_is_detected(data in proptest::collection::vec(any::<u8>(), 1..128), pos in any::<usize>(), bit in 0u8..8) {
            let r = ring("new");
            let env = encrypt(&r, &CTX, &data).unwrap();
            let (head, body) = env.rsplit_once('.').unwrap();
            let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap();
            let i = pos % raw.len();
            raw[i] ^= 1 << bit;
            let tampered = format!("{head}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
            prop_assert!(matches!(decrypt(&r, &CTX, &tampered), Err(FieldError::Tampered)));
        }
    }
}
