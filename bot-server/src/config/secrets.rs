//! Secrets from mounted files (permissions checked) or variables, hex keys, and the
//! parsing of plain settings, each failure naming its variable.

use std::path::Path;
use std::time::Duration;

use super::{ConfigError, Source};

/// Refuses a secret file readable by others, or by a group the process is not in.
pub fn check_secret_file(
    var: &'static str,
    path: &Path,
    groups: &[u32],
) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::FileUnreadable {
        var,
        path: path.to_owned(),
        source,
    })?;
    check_meta(var, path, &meta, groups)
}

/// The permission check of [`check_secret_file`], on metadata already read.
fn check_meta(
    var: &'static str,
    path: &Path,
    meta: &std::fs::Metadata,
    groups: &[u32],
) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(ConfigError::KeyFileReadableByOthers {
            var,
            path: path.to_owned(),
            mode,
        });
    }
    if mode & 0o070 != 0 && !groups.contains(&meta.gid()) {
        return Err(ConfigError::KeyFileReadableByGroup {
            var,
            path: path.to_owned(),
            gid: meta.gid(),
        });
    }
    Ok(())
}

/// Reads a secret file after checking its permissions (production only), through one
/// handle: the file whose permissions were checked is the file that is read.
pub(super) fn read_secret_file(
    var: &'static str,
    path: &Path,
    groups: &[u32],
    check: bool,
) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    use std::io::Read as _;
    let unreadable = |source| ConfigError::FileUnreadable {
        var,
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    if check {
        let meta = file.metadata().map_err(unreadable)?;
        check_meta(var, path, &meta, groups)?;
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(unreadable)?;
    Ok(zeroize::Zeroizing::new(text.trim().to_owned()))
}

/// The value of a secret from `VAR` or `VAR_FILE`.
pub(super) fn secret(
    src: &dyn Source,
    var: &'static str,
    check: bool,
) -> Result<Option<zeroize::Zeroizing<String>>, ConfigError> {
    let file_var = format!("{var}_FILE");
    match (src.get(var), src.get(&file_var)) {
        (Some(_), Some(_)) => Err(ConfigError::SecretSetTwice { var }),
        (Some(v), None) => Ok(Some(zeroize::Zeroizing::new(v))),
        (None, Some(p)) => read_secret_file(var, Path::new(&p), &src.groups(), check).map(Some),
        (None, None) => Ok(None),
    }
}

/// A file-only secret (`DATABASE_PASSWORD_FILE` and the like), named by its `_FILE` variable.
pub(super) fn secret_file(
    src: &dyn Source,
    file_var: &'static str,
    check: bool,
) -> Result<Option<zeroize::Zeroizing<String>>, ConfigError> {
    match src.get(file_var) {
        Some(p) => read_secret_file(file_var, Path::new(&p), &src.groups(), check).map(Some),
        None => Ok(None),
    }
}

/// Decodes a 64-hex-character key and refuses weak ones.
pub fn parse_hex_key(
    var: &'static str,
    hex: &str,
) -> Result<zeroize::Zeroizing<[u8; 32]>, ConfigError> {
    let hex = hex.trim();
    let malformed = || ConfigError::KeyMalformed {
        var,
        len: hex.len(),
    };
    if hex.len() != 64 {
        return Err(malformed());
    }
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    for (slot, pair) in key.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let hi = hex_digit(pair.first().copied()).ok_or_else(malformed)?;
        let lo = hex_digit(pair.get(1).copied()).ok_or_else(malformed)?;
        *slot = (hi << 4) | lo;
    }
    if key.iter().all(|b| *b == 0) {
        return Err(ConfigError::KeyAllZeros { var });
    }
    Ok(key)
}

pub(super) fn hex_digit(c: Option<u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(super) fn parse<T: std::str::FromStr>(
    src: &dyn Source,
    var: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match src.get(var) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
            var,
            value: v,
            expected,
        }),
    }
}

pub(super) fn parse_secs(
    src: &dyn Source,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let secs: u64 = parse(src, var, default.as_secs(), "a whole number of seconds")?;
    if secs == 0 {
        return Err(ConfigError::Invalid {
            var,
            value: "0".into(),
            expected: "a positive number of seconds",
        });
    }
    Ok(Duration::from_secs(secs))
}

pub(super) fn parse_positive(
    src: &dyn Source,
    var: &'static str,
    default: u32,
) -> Result<u32, ConfigError> {
    let n: u32 = parse(src, var, default, "a positive whole number")?;
    if n == 0 {
        return Err(ConfigError::Invalid {
            var,
            value: "0".into(),
            expected: "a positive whole number",
        });
    }
    Ok(n)
}

pub(super) fn list(src: &dyn Source, var: &str) -> Vec<String> {
    src.get(var)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
