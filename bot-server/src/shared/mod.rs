//! State every replica of the bot server shares: sessions (the idle timeout, logout) and
//! fixed-window counters (rate limits, failed logins per client address). In Redis when
//! `CACHE_URL` is set; otherwise in the database, so any number of replicas accept each
//! other's sessions and enforce one budget; in process memory only in `--dev`.
//!
//! Every operation is one atomic round trip to where the state lives ([`Shared::round_trips`]
//! counts them). Session ids are random UUIDv4s; the database keeps only their SHA-256.

mod memory;
mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::CacheConfig;
use crate::store::{Store, StoreError};

pub use self::redis::RedisError;

/// What failed where the shared state lives.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The cache failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One counted hit: the count in the current window and the time left in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Hits in the window, this one included.
    pub count: u64,
    /// Until the window ends.
    pub resets_in: Duration,
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<memory::Memory>),
    Database(Store),
    Redis(self::redis::Redis),
}

/// Where the shared state lives, and the operations on it.
#[derive(Clone)]
pub struct Shared {
    backend: Backend,
    round_trips: Arc<AtomicU64>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared({})", self.kind())
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The SHA-256 of a session id, as stored in the database.
fn id_hash(sid: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(sid.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Shared {
    fn new(backend: Backend) -> Self {
        Self {
            backend,
            round_trips: Arc::default(),
        }
    }

    /// In this process only (`--dev`: one replica).
    pub fn memory() -> Self {
        Self::new(Backend::Memory(Arc::default()))
    }

    /// In the database every replica uses.
    pub fn database(store: Store) -> Self {
        Self::new(Backend::Database(store))
    }

    /// In Redis.
    pub async fn redis(cfg: &CacheConfig) -> Result<Self, SharedError> {
        Ok(Self::new(Backend::Redis(
            self::redis::Redis::connect(cfg).await?,
        )))
    }

    /// Where the state lives: `memory`, `database` or `cache`.
    pub fn kind(&self) -> &'static str {
        use generalbot_crds::contract::shared_state;
        match self.backend {
            Backend::Memory(_) => shared_state::MEMORY,
            Backend::Database(_) => shared_state::DATABASE,
            Backend::Redis(_) => shared_state::CACHE,
        }
    }

    /// Round trips made to the database or the cache so far (0 in memory).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn trip(&self) {
        if !matches!(self.backend, Backend::Memory(_)) {
            self.round_trips.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Creates a session of `user_id` that ends after `ttl` without use; returns its id.
    pub async fn create_session(
        &self,
        user_id: &str,
        ttl: Duration,
    ) -> Result<String, SharedError> {
        let sid = uuid::Uuid::new_v4().to_string();
        self.trip();
        match &self.backend {
            Backend::Memory(m) => m.create_session(&sid, user_id, ttl),
            Backend::Database(s) => {
                s.insert_session(&id_hash(&sid), user_id, now_ms().saturating_add(ms(ttl)))
                    .await?
            }
            Backend::Redis(r) => r.create_session(&sid, user_id, ttl).await?,
        }
        Ok(sid)
    }

    /// The user of a live session, which is extended by `ttl`; `None` when it expired or
    /// was ended.
    pub async fn touch_session(
        &self,
        sid: &str,
        ttl: Duration,
    ) -> Result<Option<String>, SharedError> {
        self.trip();
        Ok(match &self.backend {
            Backend::Memory(m) => m.touch_session(sid, ttl),
            Backend::Database(s) => {
                let now = now_ms();
                s.touch_session(&id_hash(sid), now.saturating_add(ms(ttl)), now)
                    .await?
            }
            Backend::Redis(r) => r.touch_session(sid, ttl).await?,
        })
    }

    /// Ends a session.
    pub async fn end_session(&self, sid: &str) -> Result<(), SharedError> {
        self.trip();
        match &self.backend {
            Backend::Memory(m) => m.end_session(sid),
            Backend::Database(s) => s.delete_session(&id_hash(sid)).await?,
            Backend::Redis(r) => r.end_session(sid).await?,
        }
        Ok(())
    }

    /// Counts one hit of `key` in a fixed window of `window`.
    pub async fn hit(&self, key: &str, window: Duration) -> Result<Hit, SharedError> {
        self.trip();
        let (count, resets_in) = match &self.backend {
            Backend::Memory(m) => m.hit(key, window),
            Backend::Database(s) => {
                let now = now_ms();
                let (count, end) = s.hit_counter(key, ms(window), now).await?;
                (
                    u64::try_from(count).unwrap_or(0),
                    Duration::from_millis(u64::try_from(end.saturating_sub(now)).unwrap_or(0)),
                )
            }
            Backend::Redis(r) => r.hit(key, window).await?,
        };
        Ok(Hit { count, resets_in })
    }

    /// The count of `key` in its current window, without counting.
    pub async fn count(&self, key: &str) -> Result<u64, SharedError> {
        self.trip();
        Ok(match &self.backend {
            Backend::Memory(m) => m.count(key),
            Backend::Database(s) => {
                u64::try_from(s.read_counter(key, now_ms()).await?).unwrap_or(0)
            }
            Backend::Redis(r) => r.count(key).await?,
        })
    }

    /// Checks the state's home answers.
    pub async fn ping(&self) -> Result<(), SharedError> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Database(s) => Ok(s.ping().await?),
            Backend::Redis(r) => Ok(r.ping().await?),
        }
    }

    /// In the database, removes expired rows every `every`, in small batches, off the
    /// request path (Redis and memory expire their own).
    pub fn spawn_sweep(&self, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        let Backend::Database(store) = &self.backend else {
            return None;
        };
        let store = store.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                loop {
                    match store.sweep_shared(now_ms()).await {
                        Ok(n) if n >= Store::sweep_batch() => tokio::task::yield_now().await,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "sweeping expired sessions and counters");
                            break;
                        }
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn backends() -> Vec<Shared> {
        let store = Store::connect(&crate::config::DatabaseConfig::Url(
            zeroize::Zeroizing::new("sqlite::memory:".into()),
        ))
        .await
        .unwrap();
        vec![Shared::memory(), Shared::database(store)]
    }

    #[tokio::test]
    async fn sessions_live_extend_and_end() {
        for s in backends().await {
            let sid = s
                .create_session("u1", Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(uuid::Uuid::parse_str(&sid).unwrap().get_version_num(), 4);
            let touch = s
                .touch_session(&sid, Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(touch.as_deref(), Some("u1"), "{s:?}");
            s.end_session(&sid).await.unwrap();
            assert!(
                s.touch_session(&sid, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .is_none()
            );
            let short = s
                .create_session("u1", Duration::from_millis(1))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(
                s.touch_session(&short, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .is_none(),
                "{s:?}: expired"
            );
        }
    }

    #[tokio::test]
    async fn counters_count_in_windows() {
        for s in backends().await {
            for n in 1..=3 {
                let hit = s.hit("k", Duration::from_secs(60)).await.unwrap();
                assert_eq!(hit.count, n, "{s:?}");
                assert!(
                    hit.resets_in <= Duration::from_secs(60)
                        && hit.resets_in > Duration::from_secs(58)
                );
            }
            assert_eq!(s.count("k").await.unwrap(), 3);
            assert_eq!(s.count("other").await.unwrap(), 0);
            s.hit("short", Duration::from_millis(1)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(s.count("short").await.unwrap(), 0, "{s:?}: window over");
            assert_eq!(
                s.hit("short", Duration::from_secs(1)).await.unwrap().count,
                1,
                "a new window"
            );
        }
    }
}
