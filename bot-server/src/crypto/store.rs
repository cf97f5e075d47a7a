//! The live key set: what every request reads its keys from, swapped atomically when the
//! key-ring files change on disk, so a rotation by the operator needs no restart.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use generalbot_crds::contract::key_files;

use crate::config::{self, Keys, Source};

/// The current keys, replaced as a whole on reload.
#[derive(Debug, Clone)]
pub struct KeyStore {
    inner: Arc<RwLock<Arc<Keys>>>,
}

impl KeyStore {
    /// Starts with `keys`.
    pub fn new(keys: Keys) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(keys))),
        }
    }

    /// The keys now.
    pub fn current(&self) -> Arc<Keys> {
        match self.inner.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the keys.
    pub fn replace(&self, keys: Keys) {
        let new = Arc::new(keys);
        match self.inner.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Polls the key directory every `every` and reloads when a ring file changed.
    /// A ring that fails to load is logged and the old keys stay in use.
    pub fn spawn_reload(
        &self,
        src: Arc<dyn Source + Send + Sync>,
        dev: bool,
        every: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let dir = self.current().keys_dir.clone()?;
        let store = self.clone();
        Some(tokio::spawn(async move {
            let mut last = fingerprint(&dir);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = fingerprint(&dir);
                if now == last {
                    continue;
                }
                match config::keys(src.as_ref(), dev) {
                    Ok(keys) => {
                        tracing::info!(
                            field_key = keys.field.active_id(),
                            data_key = keys.data.active_id(),
                            "key rings reloaded"
                        );
                        store.replace(keys);
                        last = now;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "key rings changed but cannot be loaded; keeping the previous keys")
                    }
                }
            }
        }))
    }
}

/// A digest of every ring file's bytes (Kubernetes swaps a symlink, so mtimes alone can
/// miss an update; the files are small).
fn fingerprint(dir: &Path) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for name in key_files::ALL
        .iter()
        .chain([&key_files::JWT, &key_files::OPS_TOKEN])
    {
        ctx.update(name.as_bytes());
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            let bytes = zeroize::Zeroizing::new(bytes);
            ctx.update(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
