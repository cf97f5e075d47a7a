//! Shared state in Redis: sessions as keys with a time to live, counters as `INCR` with
//! an expiry set once per window (one atomic `MULTI`). The password comes from its file
//! and never appears in an error; with a client certificate, TLS is mutual.

use std::time::Duration;

use ::redis::AsyncCommands as _;

use crate::config::CacheConfig;

/// Key prefix of sessions.
const SESSIONS: &str = "gb:session:";
/// Key prefix of counters.
const COUNTERS: &str = "gb:count:";

/// What failed in the cache.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Connecting failed.
    #[error("connecting to the cache: {0}")]
    Connect(#[source] ::redis::RedisError),
    /// The CA, client certificate or client key file cannot be read.
    #[error("reading the cache TLS file {path}: {source}")]
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
        source: ::redis::RedisError,
    },
}

fn command(operation: &'static str) -> impl FnOnce(::redis::RedisError) -> RedisError {
    move |source| RedisError::Command { operation, source }
}

#[derive(Clone)]
pub(super) struct Redis(::redis::aio::MultiplexedConnection);

impl Redis {
    pub(super) async fn connect(cfg: &CacheConfig) -> Result<Self, RedisError> {
        let mut info: ::redis::ConnectionInfo =
            ::redis::IntoConnectionInfo::into_connection_info(cfg.url.as_str())
                .map_err(RedisError::Connect)?;
        if let Some(pw) = &cfg.password {
            let settings = info.redis_settings().clone().set_password(pw.as_str());
            info = info.set_redis_settings(settings);
        }
        let read = |path: &std::path::PathBuf| {
            std::fs::read(path).map_err(|source| RedisError::Ca {
                path: path.clone(),
                source,
            })
        };
        let client_tls = match &cfg.client_cert {
            Some((cert, key)) => Some(::redis::ClientTlsConfig {
                client_cert: read(cert)?,
                client_key: read(key)?,
            }),
            None => None,
        };
        let client = match (&cfg.ca_file, client_tls) {
            (None, None) => ::redis::Client::open(info),
            (ca, client_tls) => ::redis::Client::build_with_tls(
                info,
                ::redis::TlsCertificates {
                    client_tls,
                    root_cert: ca.as_ref().map(read).transpose()?,
                },
            ),
        }
        .map_err(RedisError::Connect)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(RedisError::Connect)?;
        Ok(Self(conn))
    }

    pub(super) async fn create_session(
        &self,
        sid: &str,
        user_id: &str,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let mut c = self.0.clone();
        c.set_ex::<_, _, ()>(format!("{SESSIONS}{sid}"), user_id, ttl.as_secs())
            .await
            .map_err(command("creating a session"))
    }

    pub(super) async fn touch_session(
        &self,
        sid: &str,
        ttl: Duration,
    ) -> Result<Option<String>, RedisError> {
        let mut c = self.0.clone();
        c.get_ex(
            format!("{SESSIONS}{sid}"),
            ::redis::Expiry::EX(ttl.as_secs()),
        )
        .await
        .map_err(command("reading a session"))
    }

    pub(super) async fn end_session(&self, sid: &str) -> Result<(), RedisError> {
        let mut c = self.0.clone();
        c.del::<_, i64>(format!("{SESSIONS}{sid}"))
            .await
            .map(|_| ())
            .map_err(command("ending a session"))
    }

    pub(super) async fn hit(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<(u64, Duration), RedisError> {
        let mut c = self.0.clone();
        let key = format!("{COUNTERS}{key}");
        let window_ms = u64::try_from(window.as_millis())
            .unwrap_or(u64::MAX / 4)
            .max(1);
        let (count, ttl): (u64, i64) = ::redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(window_ms)
            .arg("NX")
            .ignore()
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut c)
            .await
            .map_err(command("counting"))?;
        Ok((
            count,
            Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        ))
    }

    pub(super) async fn count(&self, key: &str) -> Result<u64, RedisError> {
        let mut c = self.0.clone();
        let n: Option<u64> = c
            .get(format!("{COUNTERS}{key}"))
            .await
            .map_err(command("reading a counter"))?;
        Ok(n.unwrap_or(0))
    }

    pub(super) async fn ping(&self) -> Result<(), RedisError> {
        let mut c = self.0.clone();
        ::redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(command("ping"))
    }
}
