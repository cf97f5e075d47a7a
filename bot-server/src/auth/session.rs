//! Sessions: UUIDv4 ids in the cache, mapped to their user, expiring after the idle
//! timeout (each use extends them). Redis when `CACHE_URL` is set, memory otherwise.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;

use crate::config::CacheConfig;

/// Key prefix of sessions in Redis.
const PREFIX: &str = "gb:session:";

/// What failed in the cache.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Connecting failed.
    #[error("connecting to the cache: {0}")]
    Connect(#[source] redis::RedisError),
    /// The CA file cannot be read.
    #[error("reading the cache CA {path}: {source}")]
    Ca {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A command failed.
    #[error("cache {operation}: {source}")]
    Command {
        /// What was being done.
        operation: &'static str,
        /// The error.
        #[source]
        source: redis::RedisError,
    },
}

/// Where sessions live.
#[derive(Clone)]
pub enum Sessions {
    /// In this process.
    Memory(std::sync::Arc<Mutex<HashMap<String, (String, Instant)>>>),
    /// In Redis.
    Redis(redis::aio::MultiplexedConnection),
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "Sessions::Memory",
            Self::Redis(_) => "Sessions::Redis",
        })
    }
}

impl Sessions {
    /// In-memory sessions.
    pub fn memory() -> Self {
        Self::Memory(Default::default())
    }

    /// Connects to Redis.
    pub async fn redis(cfg: &CacheConfig) -> Result<Self, SessionError> {
        let mut info: redis::ConnectionInfo =
            redis::IntoConnectionInfo::into_connection_info(cfg.url.as_str())
                .map_err(SessionError::Connect)?;
        if let Some(pw) = &cfg.password {
            let settings = info.redis_settings().clone().set_password(pw.as_str());
            info = info.set_redis_settings(settings);
        }
        let client = match &cfg.ca_file {
            Some(path) => {
                let ca = std::fs::read(path).map_err(|source| SessionError::Ca {
                    path: path.clone(),
                    source,
                })?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(ca),
                    },
                )
            }
            None => redis::Client::open(info),
        }
        .map_err(SessionError::Connect)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(SessionError::Connect)?;
        Ok(Self::Redis(conn))
    }

    /// Creates a session of `user_id`; returns its id.
    pub async fn create(&self, user_id: &str, ttl: Duration) -> Result<String, SessionError> {
        let sid = uuid::Uuid::new_v4().to_string();
        match self {
            Self::Memory(m) => {
                if let Ok(mut m) = m.lock() {
                    let now = Instant::now();
                    m.retain(|_, (_, exp)| *exp > now);
                    m.insert(sid.clone(), (user_id.to_owned(), now + ttl));
                }
            }
            Self::Redis(c) => {
                let mut c = c.clone();
                let _: () = c
                    .set_ex(format!("{PREFIX}{sid}"), user_id, ttl.as_secs())
                    .await
                    .map_err(|source| SessionError::Command {
                        operation: "creating a session",
                        source,
                    })?;
            }
        }
        Ok(sid)
    }

    /// The user of a live session, extending it by `ttl`; `None` when expired or revoked.
    pub async fn touch(&self, sid: &str, ttl: Duration) -> Result<Option<String>, SessionError> {
        match self {
            Self::Memory(m) => {
                let Ok(mut m) = m.lock() else { return Ok(None) };
                let now = Instant::now();
                match m.get_mut(sid) {
                    Some((user, exp)) if *exp > now => {
                        *exp = now + ttl;
                        Ok(Some(user.clone()))
                    }
                    _ => Ok(None),
                }
            }
            Self::Redis(c) => {
                let mut c = c.clone();
                c.get_ex(format!("{PREFIX}{sid}"), redis::Expiry::EX(ttl.as_secs()))
                    .await
                    .map_err(|source| SessionError::Command {
                        operation: "reading a session",
                        source,
                    })
            }
        }
    }

    /// Ends a session.
    pub async fn revoke(&self, sid: &str) -> Result<(), SessionError> {
        match self {
            Self::Memory(m) => {
                if let Ok(mut m) = m.lock() {
                    m.remove(sid);
                }
                Ok(())
            }
            Self::Redis(c) => {
                let mut c = c.clone();
                let _: i64 = c.del(format!("{PREFIX}{sid}")).await.map_err(|source| {
                    SessionError::Command {
                        operation: "ending a session",
                        source,
                    }
                })?;
                Ok(())
            }
        }
    }

    /// Checks the cache answers.
    pub async fn ping(&self) -> Result<(), SessionError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(c) => {
                let mut c = c.clone();
                let _: String = redis::cmd("PING")
                    .query_async(&mut c)
                    .await
                    .map_err(|source| SessionError::Command {
                        operation: "ping",
                        source,
                    })?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_sessions_expire_and_revoke() {
        let s = Sessions::memory();
        let sid = s.create("u1", Duration::from_secs(60)).await.unwrap();
        assert_eq!(uuid::Uuid::parse_str(&sid).unwrap().get_version_num(), 4);
        assert_eq!(
            s.touch(&sid, Duration::from_secs(60))
                .await
                .unwrap()
                .as_deref(),
            Some("u1")
        );
        s.revoke(&sid).await.unwrap();
        assert!(
            s.touch(&sid, Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
        let short = s.create("u1", Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            s.touch(&short, Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
    }
}
