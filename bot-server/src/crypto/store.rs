//! The live key set: what every request reads its keys from, swapped atomically when the
//! key-ring files change on disk, so a rotation by the operator needs no restart.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use generalbot_crds::contract::key_files;

use crate::audit::{Audit, AuditKind};
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

    /// Polls the key directory every `every` and reloads when a ring file changed,
    /// recording the change in the audit log. A ring that fails to load is logged and
    /// the old keys stay in use.
    pub fn spawn_reload(
        &self,
        src: Arc<dyn Source + Send + Sync>,
        dev: bool,
        every: Duration,
        audit: Option<Arc<Audit>>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let dir = self.current().keys_dir.clone()?;
        let store = self.clone();
        // Taken now, not in the task, so a change made right after this call is seen.
        let mut last = fingerprint(&dir);
        Some(tokio::spawn(async move {
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
                        let detail = serde_json::json!({
                            "action": "key_rings_reloaded",
                            "field_active": keys.field.active_id(),
                            "data_active": keys.data.active_id(),
                            "hmac_active": keys.hmac.active_id(),
                        });
                        store.replace(keys);
                        last = now;
                        if let Some(a) = &audit {
                            a.record(AuditKind::ConfigChange, "system", "success", detail)
                                .await;
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use generalbot_crds::contract::{KeyEntry, KeyRingFile, env};

    fn ring(active: &str, keys: &[(&str, u8)]) -> String {
        serde_json::to_string(&KeyRingFile {
            version: 1,
            active: active.into(),
            algorithm: None,
            keys: keys
                .iter()
                .map(|(id, b)| KeyEntry {
                    id: (*id).into(),
                    created: "2026-01-01T00:00:00Z".into(),
                    material: base64::engine::general_purpose::STANDARD.encode([*b; 32]),
                })
                .collect(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn rings_reload_from_disk_without_restart() {
        let dir = std::env::temp_dir().join(format!("gb-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(key_files::FIELD), ring("f1", &[("f1", 1)])).unwrap();
        let mut src = config::MapSource::default();
        src.vars
            .insert(env::KEYS_DIR.into(), dir.to_str().unwrap().into());
        let keys = config::keys(&src, true).unwrap();
        assert_eq!(keys.field.active_id(), "f1");
        let store = KeyStore::new(keys);
        let task = store
            .spawn_reload(Arc::new(src), true, Duration::from_millis(20), None)
            .unwrap();
        std::fs::write(
            dir.join(key_files::FIELD),
            ring("f2", &[("f1", 1), ("f2", 2)]),
        )
        .unwrap();
        for _ in 0..200 {
            if store.current().field.active_id() == "f2" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.current().field.active_id(), "f2");
        assert!(store.current().field.get("f1").is_some());
        // A broken file keeps the previous keys.
        std::fs::write(dir.join(key_files::FIELD), "{not json").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(store.current().field.active_id(), "f2");
        task.abort();
    }
}
