//! Sealed objects: a byte stream encrypted with AES-256-GCM in 64 KiB chunks (the STREAM
//! construction of the `aead` crate: a per-object random nonce prefix, a chunk counter
//! and a last-chunk flag in each nonce), so a file of any size is encrypted and checked
//! without being held whole in memory, and a truncated, reordered or altered object is
//! refused.
//!
//! Layout: `GBS1`, the key id's length (one byte) and the key id, the 7-byte nonce
//! prefix, then the chunks. Each chunk authenticates the header and the object's
//! context (what it is and its name, say `attachment:<id>`), so an object copied under
//! another name or kind does not open.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::{KeyInit, Payload};

use crate::crypto::keyring::{Key32, SymmetricRing, valid_key_id};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 4] = b"GBS1";
const PREFIX: usize = 7;

/// Why a sealed object cannot be made or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not a sealed object, or its header is cut short.
    #[error("not a sealed GeneralBot object (bad or missing header)")]
    Header,
    /// The key it was sealed with is not in the ring.
    #[error(
        "sealed with key {0:?}, which the data key ring no longer holds: restore that key to the ring (kubectl generalbot status shows the ring)"
    )]
    UnknownKey(String),
    /// A chunk does not authenticate: altered, reordered, under another name, or cut.
    #[error(
        "the object is damaged or was altered at byte {offset}: its chunk does not authenticate (nothing from it was used)"
    )]
    Tampered {
        /// Where the chunk starts in the sealed object.
        offset: u64,
    },
    /// The object ends before its last chunk.
    #[error(
        "the object is truncated: it ends at byte {offset} without its final chunk (nothing from it was used)"
    )]
    Truncated {
        /// Its length.
        offset: u64,
    },
    /// The ring has no active key.
    #[error("the data key ring has no active key")]
    NoKey,
    /// The random source failed.
    #[error("generating a nonce failed")]
    Random,
}

fn aad(header: &[u8], context: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(header.len() + context.len());
    v.extend_from_slice(header);
    v.extend_from_slice(context.as_bytes());
    v
}

/// Encrypts a stream: feed plaintext with [`Sealer::update`], then [`Sealer::finish`];
/// each call returns the sealed bytes ready to store (the header comes with the first).
pub struct Sealer {
    enc: EncryptorBE32<Aes256Gcm>,
    aad: Vec<u8>,
    pending: Vec<u8>,
    header: Option<Vec<u8>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

impl Sealer {
    /// Seals under the ring's active key, bound to `context`.
    pub fn new(ring: &SymmetricRing, context: &str) -> Result<(Self, String), SealError> {
        let (id, key) = ring.active().ok_or(SealError::NoKey)?;
        Ok((Self::with_key(id, key, context)?, id.to_owned()))
    }

    fn with_key(id: &str, key: &Key32, context: &str) -> Result<Self, SealError> {
        let id_len = u8::try_from(id.len()).map_err(|_| SealError::Header)?;
        let mut prefix = [0u8; PREFIX];
        getrandom::fill(&mut prefix).map_err(|_| SealError::Random)?;
        let mut header = Vec::with_capacity(MAGIC.len() + 1 + id.len() + PREFIX);
        header.extend_from_slice(MAGIC);
        header.push(id_len);
        header.extend_from_slice(id.as_bytes());
        header.extend_from_slice(&prefix);
        let cipher = Aes256Gcm::new(GenericArray::from_slice(key.as_ref()));
        Ok(Self {
            enc: EncryptorBE32::from_aead(cipher, GenericArray::from_slice(&prefix)),
            aad: aad(&header, context),
            pending: Vec::with_capacity(CHUNK * 2),
            header: Some(header),
        })
    }

    fn start(&mut self) -> Vec<u8> {
        self.header.take().unwrap_or_default()
    }

    /// Takes more plaintext; returns the chunks it completed. One chunk is always held
    /// back, so the last can be sealed as last.
    pub fn update(&mut self, data: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut out = self.start();
        self.pending.extend_from_slice(data);
        while self.pending.len() > CHUNK {
            let rest = self.pending.split_off(CHUNK);
            let chunk = std::mem::replace(&mut self.pending, rest);
            let sealed = self
                .enc
                .encrypt_next(Payload {
                    msg: &chunk,
                    aad: &self.aad,
                })
                .map_err(|_| SealError::Tampered { offset: 0 })?;
            out.extend_from_slice(&sealed);
        }
        Ok(out)
    }

    /// Seals what is left as the last chunk.
    pub fn finish(mut self) -> Result<Vec<u8>, SealError> {
        let mut out = self.start();
        let sealed = self
            .enc
            .encrypt_last(Payload {
                msg: &self.pending,
                aad: &self.aad,
            })
            .map_err(|_| SealError::Tampered { offset: 0 })?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

/// Seals a whole buffer in one call.
pub fn seal(
    ring: &SymmetricRing,
    context: &str,
    data: &[u8],
) -> Result<(Vec<u8>, String), SealError> {
    let (mut s, id) = Sealer::new(ring, context)?;
    let mut out = s.update(data)?;
    out.extend_from_slice(&s.finish()?);
    Ok((out, id))
}

/// The key id a sealed object names, from its first bytes.
pub fn key_id_of(head: &[u8]) -> Option<&str> {
    let rest = head.strip_prefix(MAGIC.as_slice())?;
    let (&len, rest) = rest.split_first()?;
    let id = std::str::from_utf8(rest.get(..usize::from(len))?).ok()?;
    valid_key_id(id).then_some(id)
}

/// Decrypts a stream: feed sealed bytes with [`Opener::update`] (any split), then
/// [`Opener::finish`]; each call returns authenticated plaintext only.
pub struct Opener {
    ring: SymmetricRing,
    context: String,
    state: OpenState,
    buf: Vec<u8>,
    offset: u64,
}

enum OpenState {
    Header,
    Body {
        dec: Box<DecryptorBE32<Aes256Gcm>>,
        aad: Vec<u8>,
    },
    Done,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Opens an object sealed under any key of `ring`, bound to `context`.
    pub fn new(ring: &SymmetricRing, context: &str) -> Self {
        Self {
            ring: ring.clone(),
            context: context.to_owned(),
            state: OpenState::Header,
            buf: Vec::with_capacity(CHUNK * 2),
            offset: 0,
        }
    }

    fn read_header(&mut self) -> Result<bool, SealError> {
        let Some(rest) = self.buf.get(MAGIC.len()..) else {
            return Ok(false);
        };
        if self.buf.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(SealError::Header);
        }
        let Some((&len, _)) = rest.split_first() else {
            return Ok(false);
        };
        let end = MAGIC.len() + 1 + usize::from(len) + PREFIX;
        let Some(header) = self.buf.get(..end) else {
            return Ok(false);
        };
        let id = key_id_of(header).ok_or(SealError::Header)?;
        let key = self
            .ring
            .get(id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let prefix = header.get(end - PREFIX..).ok_or(SealError::Header)?;
        let cipher = Aes256Gcm::new(GenericArray::from_slice(key.as_ref()));
        let dec = DecryptorBE32::from_aead(cipher, GenericArray::from_slice(prefix));
        let aad = aad(header, &self.context);
        self.buf.drain(..end);
        self.offset = end as u64;
        self.state = OpenState::Body {
            dec: Box::new(dec),
            aad,
        };
        Ok(true)
    }

    /// Takes more sealed bytes; returns the plaintext of the chunks it authenticated.
    pub fn update(&mut self, data: &[u8]) -> Result<Vec<u8>, SealError> {
        self.buf.extend_from_slice(data);
        if matches!(self.state, OpenState::Header) && !self.read_header()? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        // A full chunk is "next" only when more bytes follow it.
        while self.buf.len() > CHUNK + TAG {
            let OpenState::Body { dec, aad } = &mut self.state else {
                return Err(SealError::Tampered {
                    offset: self.offset,
                });
            };
            let plain = dec
                .decrypt_next(Payload {
                    msg: self.buf.get(..CHUNK + TAG).unwrap_or_default(),
                    aad,
                })
                .map_err(|_| SealError::Tampered {
                    offset: self.offset,
                })?;
            self.buf.drain(..CHUNK + TAG);
            self.offset += (CHUNK + TAG) as u64;
            out.extend_from_slice(&plain);
        }
        Ok(out)
    }

    /// Authenticates the last chunk; an object cut at any point fails here.
    pub fn finish(mut self) -> Result<Vec<u8>, SealError> {
        let state = std::mem::replace(&mut self.state, OpenState::Done);
        let OpenState::Body { dec, aad } = state else {
            return Err(SealError::Truncated {
                offset: self.buf.len() as u64,
            });
        };
        if self.buf.len() < TAG {
            return Err(SealError::Truncated {
                offset: self.offset + self.buf.len() as u64,
            });
        }
        dec.decrypt_last(Payload {
            msg: &self.buf,
            aad: &aad,
        })
        .map_err(|_| SealError::Truncated {
            offset: self.offset + self.buf.len() as u64,
        })
    }
}

/// Opens a whole sealed buffer in one call.
pub fn open(ring: &SymmetricRing, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut o = Opener::new(ring, context);
    let mut out = o.update(sealed)?;
    out.extend_from_slice(&o.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use zeroize::Zeroizing;

    fn ring(id: &str, byte: u8) -> SymmetricRing {
        SymmetricRing::from_keys(id, [(id.to_owned(), Zeroizing::new([byte; 32]))]).unwrap()
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let r = ring("d1", 7);
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (sealed, id) = seal(&r, "attachment:x", &data).unwrap();
            assert_eq!(id, "d1");
            assert_eq!(key_id_of(&sealed), Some("d1"));
            assert_eq!(
                open(&r, "attachment:x", &sealed).unwrap(),
                data,
                "len {len}"
            );
        }
    }

    #[test]
    fn refuses_truncation_tampering_other_context_and_unknown_key() {
        let r = ring("d1", 7);
        let data = vec![42u8; 2 * CHUNK + 10];
        let (sealed, _) = seal(&r, "backup:a", &data).unwrap();
        // Cut exactly at a chunk boundary: every chunk that is left authenticates, but
        // none of them is the last.
        let header = 4 + 1 + 2 + PREFIX;
        let cut = &sealed[..header + 2 * (CHUNK + TAG)];
        assert!(matches!(
            open(&r, "backup:a", cut),
            Err(SealError::Truncated { .. })
        ));
        assert!(matches!(
            open(&r, "backup:a", &sealed[..sealed.len() - 1]),
            Err(SealError::Truncated { .. })
        ));
        let mut bad = sealed.clone();
        bad[header + 5] ^= 1;
        assert_eq!(
            open(&r, "backup:a", &bad),
            Err(SealError::Tampered {
                offset: header as u64
            })
        );
        assert!(open(&r, "backup:b", &sealed).is_err());
        assert_eq!(
            open(&ring("d2", 7), "backup:a", &sealed),
            Err(SealError::UnknownKey("d1".into()))
        );
        assert_eq!(
            open(&r, "backup:a", b"GBS0xxxxxxxxxxxx"),
            Err(SealError::Header)
        );
        let msg = open(&r, "backup:a", cut).unwrap_err().to_string();
        assert!(msg.contains("truncated"), "{msg}");
    }

    proptest! {
        #[test]
        fn any_split_of_input_and_output_round_trips(
            data in proptest::collection::vec(any::<u8>(), 0..(3 * CHUNK)),
            a in 1usize..(CHUNK * 2),
            b in 1usize..(CHUNK * 2),
        ) {
            let r = ring("k", 1);
            let (mut s, _) = Sealer::new(&r, "c").unwrap();
            let mut sealed = Vec::new();
            for piece in data.chunks(a) {
                sealed.extend(s.update(piece).unwrap());
            }
            sealed.extend(s.finish().unwrap());
            let mut o = Opener::new(&r, "c");
            let mut plain = Vec::new();
            for piece in sealed.chunks(b) {
                plain.extend(o.update(piece).unwrap());
            }
            plain.extend(o.finish().unwrap());
            prop_assert_eq!(plain, data);
        }
    }
}
