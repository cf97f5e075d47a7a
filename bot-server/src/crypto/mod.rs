//! Cryptography of stored data: key rings, AES-256-GCM field encryption bound to its
//! row and column, HMAC blind indexes, and the live key store that follows key files.

pub mod blind_index;
pub mod field;
pub mod keyring;
pub mod store;
