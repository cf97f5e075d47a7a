//! Where sealed files live: the bucket, when the server has object storage, or a local
//! directory (the embedded default, for a server run by hand). Files are named by keys
//! this server makes from ids ([`generalbot_storage::layout`]), never by anything a user
//! sent, and a key is checked before it becomes a path, so no path can leave the
//! directory. Locally, directories are 0700 and files 0600, written whole to a
//! temporary file then renamed, and overwritten with zeros before they are unlinked.

use std::path::{Path, PathBuf};

use generalbot_storage::{Client, StorageError};

/// Why a file could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A key that is not one this server makes.
    #[error("not a file key: {0:?}")]
    BadKey(String),
    /// The local directory.
    #[error(
        "the files directory {dir}: {source} (set BOTSERVER_FILES_DIR to a writable directory, or give the server object storage)"
    )]
    Local {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bucket.
    #[error(transparent)]
    Bucket(#[from] StorageError),
}

/// A store of sealed files.
#[derive(Debug, Clone)]
pub enum Files {
    /// A local directory.
    Local(PathBuf),
    /// A bucket.
    Bucket {
        /// The client.
        client: Client,
        /// The bucket.
        bucket: String,
    },
}

/// Whether `key` is one this server makes: lower-case letters, digits, `-`, `_` and `.`
/// in `/`-separated parts, none empty or a dot name.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        })
}

fn checked(key: &str) -> Result<&str, FilesError> {
    if valid_key(key) {
        Ok(key)
    } else {
        Err(FilesError::BadKey(key.to_owned()))
    }
}

impl Files {
    fn path(dir: &Path, key: &str) -> Result<PathBuf, FilesError> {
        Ok(dir.join(checked(key)?))
    }

    fn local(dir: &Path) -> impl Fn(std::io::Error) -> FilesError + '_ {
        move |source| FilesError::Local {
            dir: dir.to_owned(),
            source,
        }
    }

    /// Stores `sealed` under `key`, replacing any file there.
    pub async fn put(&self, key: &str, sealed: Vec<u8>) -> Result<(), FilesError> {
        match self {
            Self::Local(dir) => {
                let path = Self::path(dir, key)?;
                let root = dir.clone();
                tokio::task::spawn_blocking(move || write_private(&root, &path, &sealed))
                    .await
                    .map_err(|e| Self::local(dir)(std::io::Error::other(e)))?
            }
            Self::Bucket { client, bucket } => {
                let key = checked(key)?;
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(sealed.into())
                    .send()
                    .await
                    .map_err(|e| StorageError::call("PutObject", bucket, e))?;
                Ok(())
            }
        }
    }

    /// The sealed bytes under `key`, or `None` when there is no such file.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, FilesError> {
        match self {
            Self::Local(dir) => {
                let path = Self::path(dir, key)?;
                match tokio::fs::read(&path).await {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Self::local(dir)(e)),
                }
            }
            Self::Bucket { client, bucket } => {
                let key = checked(key)?;
                match client.get_object().bucket(bucket).key(key).send().await {
                    Ok(out) => {
                        let body = out.body.collect().await.map_err(|e| StorageError::Call {
                            call: "GetObject",
                            bucket: bucket.clone(),
                            message: e.to_string(),
                        })?;
                        Ok(Some(body.into_bytes().to_vec()))
                    }
                    Err(e) if generalbot_storage::error_code(&e) == Some("NoSuchKey") => Ok(None),
                    Err(e) => Err(StorageError::call("GetObject", bucket, e).into()),
                }
            }
        }
    }

    /// Removes the file under `key` (overwritten first, locally); nothing there is fine.
    pub async fn delete(&self, key: &str) -> Result<(), FilesError> {
        match self {
            Self::Local(dir) => {
                let path = Self::path(dir, key)?;
                tokio::task::spawn_blocking(move || shred(&path))
                    .await
                    .map_err(|e| Self::local(dir)(std::io::Error::other(e)))?
                    .map_err(Self::local(dir))
            }
            Self::Bucket { client, bucket } => {
                let key = checked(key)?;
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| StorageError::call("DeleteObject", bucket, e))?;
                Ok(())
            }
        }
    }

    /// The backups in the bucket by the data key that sealed them (none locally).
    pub async fn backups_by_key(&self) -> Result<Vec<(String, u64)>, FilesError> {
        let Self::Bucket { client, bucket } = self else {
            return Ok(Vec::new());
        };
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for b in generalbot_storage::layout::list_backups(client, bucket).await? {
            *counts.entry(b.key_id).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }
}

/// Writes `body` to `path` under `root`: directories 0700, the file 0600, written to a
/// temporary name and renamed, so a reader never sees half a file.
fn write_private(root: &Path, path: &Path, body: &[u8]) -> Result<(), FilesError> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let err = Files::local(root);
    let parent = path.parent().unwrap_or(root);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(&err)?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let tmp = path.with_extension(format!("part-{}", u64::from_le_bytes(nonce)));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = shred(&tmp);
    }
    written.map_err(err)
}

/// Overwrites a file with zeros, then unlinks it (the guide's secure deletion of
/// temporary files; on copy-on-write or flash storage the old blocks may survive, which
/// is why every file is sealed before it is written).
fn shred(path: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
            f.write_all(zeros.get(..n).unwrap_or_default())?;
            left -= n as u64;
        }
        f.sync_all()?;
    }
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn keys_cannot_name_a_path_outside() {
        for good in [
            "tmp/attachments/0f1e-2d",
            "backups/20261130t000000z-d1.gbbak",
        ] {
            assert!(valid_key(good), "{good}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "tmp/../../x",
            "/abs",
            "tmp//x",
            "tmp/./x",
            "Tmp/X",
            "tmp/a b",
            "tmp/x\0",
        ] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn local_files_are_private_and_shredded() {
        let root = std::env::temp_dir().join(format!("gb-files-{}", std::process::id()));
        let files = Files::Local(root.clone());
        files
            .put("tmp/attachments/abc", b"sealed bytes".to_vec())
            .await
            .unwrap();
        let path = root.join("tmp/attachments/abc");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.join("tmp/attachments")), 0o700);
        assert_eq!(mode(&root.join("tmp")), 0o700);
        assert_eq!(
            files.get("tmp/attachments/abc").await.unwrap().unwrap(),
            b"sealed bytes"
        );
        assert!(files.get("tmp/attachments/none").await.unwrap().is_none());
        assert!(matches!(
            files.get("../x").await,
            Err(FilesError::BadKey(_))
        ));
        files.delete("tmp/attachments/abc").await.unwrap();
        assert!(!path.exists());
        files.delete("tmp/attachments/abc").await.unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }
}
