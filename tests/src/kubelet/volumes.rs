//! The pod's Secret and projected ConfigMap volumes, written with the kubelet's atomic
//! layout and kept in step with their sources.

// Test support only: a helper that cannot do its job fails the test that called it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

/// Where a volume's files come from.
#[derive(Clone, Debug)]
pub(super) enum Source {
    /// One Secret.
    Secret(String),
    /// Every key of each ConfigMap (a projected volume).
    ConfigMaps(Vec<String>),
}

/// One Secret or projected ConfigMap volume of the pod and where it is mounted locally.
#[derive(Clone, Debug)]
pub(super) struct SecretVolume {
    pub(super) source: Source,
    /// Key in the Secret to path in the volume; all keys when empty.
    pub(super) items: Vec<(String, String)>,
    pub(super) mode: u32,
    pub(super) dir: PathBuf,
}

/// The pod's Secret volumes, kept in step with their Secrets.
#[derive(Clone)]
pub struct Volumes {
    pub(super) api: Api<Secret>,
    pub(super) config_maps: Api<ConfigMap>,
    pub(super) volumes: Vec<SecretVolume>,
    /// Secret name to the resourceVersion last written.
    pub(super) written: Arc<std::sync::Mutex<BTreeMap<String, String>>>,
    pub(super) generation: Arc<AtomicU64>,
}

impl Volumes {
    /// Writes every volume whose Secret changed since the last sync; returns how many.
    pub async fn sync(&self) -> usize {
        let mut changed = 0;
        for v in &self.volumes {
            let Some((version, data)) = self.read(&v.source).await else {
                continue;
            };
            let key = v.dir.display().to_string();
            if self.written.lock().unwrap().get(&key) == Some(&version) {
                continue;
            }
            let files: BTreeMap<String, Vec<u8>> = if v.items.is_empty() {
                data
            } else {
                v.items
                    .iter()
                    .filter_map(|(key, path)| data.get(key).map(|b| (path.clone(), b.clone())))
                    .collect()
            };
            let generation = self.generation.fetch_add(1, Ordering::Relaxed);
            write_atomically(&v.dir, &files, v.mode, generation);
            self.written.lock().unwrap().insert(key, version);
            changed += 1;
        }
        changed
    }

    /// A volume's source as (version, key to bytes), if it exists.
    async fn read(&self, source: &Source) -> Option<(String, BTreeMap<String, Vec<u8>>)> {
        match source {
            Source::Secret(name) => {
                let secret = self.api.get_opt(name).await.ok()??;
                let version = format!(
                    "{name}@{}",
                    secret.metadata.resource_version.unwrap_or_default()
                );
                let data = secret.data.unwrap_or_default();
                Some((version, data.into_iter().map(|(k, b)| (k, b.0)).collect()))
            }
            Source::ConfigMaps(names) => {
                let mut version = String::new();
                let mut data = BTreeMap::new();
                for name in names {
                    let cm = self.config_maps.get_opt(name).await.ok()??;
                    version.push_str(&format!(
                        "{name}@{};",
                        cm.metadata.resource_version.unwrap_or_default()
                    ));
                    for (k, v) in cm.data.unwrap_or_default() {
                        data.insert(k, v.into_bytes());
                    }
                }
                Some((version, data))
            }
        }
    }

    /// Syncs every `every` until the returned flag is set.
    pub fn keep_syncing(&self, every: Duration) -> Arc<AtomicBool> {
        let stop = Arc::new(AtomicBool::new(false));
        let (me, flag) = (self.clone(), stop.clone());
        tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                me.sync().await;
                tokio::time::sleep(every).await;
            }
        });
        stop
    }
}

/// The kubelet's atomic update of a volume: a new timestamped directory, `..data`
/// swapped to it by rename, the user-visible names as links through `..data`, and the
/// old directory and stale links removed.
pub fn write_atomically(dir: &Path, files: &BTreeMap<String, Vec<u8>>, mode: u32, generation: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let stamp = format!(
        "..{}_{generation}",
        jiff::Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S.%f")
    );
    let data_dir = dir.join(&stamp);
    std::fs::create_dir(&data_dir).unwrap();
    for (path, bytes) in files {
        let file = data_dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&file, bytes).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for path in files.keys() {
        let top = path.split('/').next().unwrap_or(path);
        let link = dir.join(top);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(top), &link).unwrap();
        }
    }
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale_dir = name.starts_with("..") && name != "..data" && name != stamp;
        let stale_link =
            !name.starts_with("..") && !files.keys().any(|p| p.split('/').next() == Some(&name));
        if stale_dir {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if stale_link {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
