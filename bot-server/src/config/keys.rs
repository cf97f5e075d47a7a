//! The key material: rings from the key directory when present, else the single-key
//! variables; generated in `--dev`.

use std::path::PathBuf;

use generalbot_crds::contract::{self, env, key_files};

use super::{
    ConfigError, DATABASE_ENCRYPTION_KEY, ENCRYPTION_KEY, JWT_SECRET, Source, check_secret_file,
    parse_hex_key, read_secret_file, secret,
};
use crate::crypto::keyring::{SigningRing, SymmetricRing};

/// The key material the server starts with.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Data (files, attachments) encryption ring.
    pub data: SymmetricRing,
    /// Database field encryption ring.
    pub field: SymmetricRing,
    /// HMAC ring (blind indexes, refresh tokens).
    pub hmac: SymmetricRing,
    /// Token signing ring.
    pub jwt: SigningRing,
    /// Token of the operator for [`contract::KEY_USAGE_PATH`], if mounted.
    pub ops_token: Option<zeroize::Zeroizing<String>>,
    /// The key directory, when the rings came from it (then they are reloaded).
    pub keys_dir: Option<PathBuf>,
}

/// Reads the keys: rings from the key directory when present, else the single-key
/// variables; in `dev` mode missing keys are generated.
pub fn keys(src: &dyn Source, dev: bool) -> Result<Keys, ConfigError> {
    let check = !dev;
    let groups = src.groups();
    let dir = PathBuf::from(
        src.get(env::KEYS_DIR)
            .unwrap_or_else(|| contract::KEYS_DIR.to_owned()),
    );
    let ring_path = |name: &str| dir.join(name);
    let load_ring = |name: &str| -> Result<Option<SymmetricRing>, ConfigError> {
        let path = ring_path(name);
        if !path.exists() {
            return Ok(None);
        }
        if check {
            check_secret_file(env::KEYS_DIR, &path, &groups)?;
        }
        SymmetricRing::load(&path)
            .map(Some)
            .map_err(|source| ConfigError::KeyRing { path, source })
    };
    let data_ring = load_ring(key_files::DATA)?;
    let field_ring = load_ring(key_files::FIELD)?;
    let hmac_ring = load_ring(key_files::HMAC)?;
    let jwt_path = ring_path(key_files::JWT);
    let jwt_ring = if jwt_path.exists() {
        if check {
            check_secret_file(env::KEYS_DIR, &jwt_path, &groups)?;
        }
        Some(
            SigningRing::load(&jwt_path).map_err(|source| ConfigError::KeyRing {
                path: jwt_path.clone(),
                source,
            })?,
        )
    } else {
        None
    };
    let from_dir = data_ring.is_some() || field_ring.is_some() || jwt_ring.is_some();

    let data = match data_ring {
        Some(r) => r,
        None => single_key(src, ENCRYPTION_KEY, check, dev)?,
    };
    let field = match field_ring {
        Some(r) => r,
        None => single_key(src, DATABASE_ENCRYPTION_KEY, check, dev)?,
    };
    let hmac = match hmac_ring {
        Some(r) => r,
        None => field.derive("generalbot hmac v1"),
    };
    let jwt = match jwt_ring {
        Some(r) => r,
        None => match secret(src, JWT_SECRET, check)? {
            Some(pem) => SigningRing::from_rsa_pem(&pem)
                .map_err(|_| ConfigError::JwtKeyInvalid { var: JWT_SECRET })?,
            None if dev => {
                SigningRing::generate_es256().map_err(|e| ConfigError::Random(e.to_string()))?
            }
            None => {
                return Err(ConfigError::SecretMissing {
                    var: JWT_SECRET,
                    what: "a PEM PKCS#8 RSA private key",
                });
            }
        },
    };
    let ops_path = ring_path(key_files::OPS_TOKEN);
    let ops_token = if ops_path.exists() {
        let token = read_secret_file(env::KEYS_DIR, &ops_path, &groups, check)?;
        if token.len() < MIN_OPS_TOKEN_BYTES {
            return Err(ConfigError::OpsTokenShort {
                path: ops_path,
                len: token.len(),
            });
        }
        Some(token)
    } else {
        None
    };
    distinct(&[("data", &data), ("field", &field), ("hmac", &hmac)])?;
    Ok(Keys {
        data,
        field,
        hmac,
        jwt,
        ops_token,
        keys_dir: from_dir.then_some(dir),
    })
}

/// Shortest ops token accepted, in bytes (the operator's are 43: 32 random bytes in
/// base64url).
pub const MIN_OPS_TOKEN_BYTES: usize = 32;

/// Refuses key material shared between purposes: a data key reused as a field or HMAC
/// key would tie their rotations together and let one ring's leak read the other's data.
fn distinct(rings: &[(&'static str, &SymmetricRing)]) -> Result<(), ConfigError> {
    for (i, (first, a)) in rings.iter().enumerate() {
        for (second, b) in rings.iter().skip(i + 1) {
            for (id, key) in a.all_active_first() {
                if b.all_active_first()
                    .any(|(_, other)| other.as_slice() == key.as_slice())
                {
                    return Err(ConfigError::KeysNotDistinct {
                        first,
                        second,
                        id: id.to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
}

pub(super) fn single_key(
    src: &dyn Source,
    var: &'static str,
    check: bool,
    dev: bool,
) -> Result<SymmetricRing, ConfigError> {
    match secret(src, var, check)? {
        Some(hex) => Ok(SymmetricRing::single(parse_hex_key(var, &hex)?)),
        None if dev => {
            let mut key = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(key.as_mut()).map_err(|e| ConfigError::Random(e.to_string()))?;
            Ok(SymmetricRing::single(key))
        }
        None => Err(ConfigError::SecretMissing {
            var,
            what: "64 hex characters (`openssl rand -hex 32`)",
        }),
    }
}
