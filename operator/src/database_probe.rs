//! Probing a database as the bot server reaches it: a `verify-full` connection (with the
//! client certificate when given) whose TLS `pg_stat_ssl` describes, then a plaintext
//! attempt with a made-up role and no password, so no credential crosses the network in
//! clear. What it finds is judged by [`crate::database_tls`].

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions as _, Connection as _, Row as _};

use crate::database_tls::{Probe, Session};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The role of the plaintext probe: none such exists, and no password is sent.
const PROBE_ROLE: &str = "generalbot_plaintext_probe";

/// Where and how to reach a database.
pub struct Target {
    /// Host (and the name its certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// The bot's role.
    pub user: String,
    /// Its password.
    pub password: zeroize::Zeroizing<String>,
    /// The CA certificates to verify the server with (PEM).
    pub ca_pem: Vec<u8>,
    /// A client certificate and key (PEM), when the bot presents one.
    pub client: Option<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// Probes `t`.
pub async fn probe_target(t: &Target) -> Probe {
    let mut opts = PgConnectOptions::new()
        .host(&t.host)
        .port(t.port)
        .database(&t.database)
        .username(&t.user)
        .password(&t.password)
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert_from_pem(t.ca_pem.clone())
        .application_name("generalbot-operator")
        .disable_statement_logging();
    if let Some((cert, key)) = &t.client {
        opts = opts
            .ssl_client_cert_from_pem(cert)
            .ssl_client_key_from_pem(key.as_slice());
    }
    let session = match tokio::time::timeout(CONNECT_TIMEOUT, session(&opts)).await {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => return Probe::NotEncrypted,
        Ok(Err(e)) => return classify(&e),
        Err(_) => return Probe::Unreachable("no answer within 10 s".into()),
    };
    let plain = PgConnectOptions::new()
        .host(&t.host)
        .port(t.port)
        .database(&t.database)
        .username(PROBE_ROLE)
        .ssl_mode(PgSslMode::Disable)
        .application_name("generalbot-operator-plaintext-probe");
    let plaintext_accepted = match tokio::time::timeout(CONNECT_TIMEOUT, plain.connect()).await {
        // pg_hba.conf turned the plaintext connection away before any authentication.
        Ok(Err(sqlx::Error::Database(d))) if d.code().as_deref() == Some("28000") => false,
        Err(_) => false,
        Ok(Err(sqlx::Error::Io(_))) => false,
        // It got as far as authentication (or in): plaintext is accepted.
        _ => true,
    };
    Probe::Verified {
        session,
        plaintext_accepted,
    }
}

/// The session's TLS as `pg_stat_ssl` reports it; `None` when not encrypted.
async fn session(opts: &PgConnectOptions) -> Result<Option<Session>, sqlx::Error> {
    let mut conn = opts.connect().await?;
    let row = sqlx::query(
        "SELECT ssl, version, cipher, client_dn IS NOT NULL AS client FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await?;
    let ssl: bool = row.try_get("ssl")?;
    let out = ssl.then(|| {
        Ok::<_, sqlx::Error>(Session {
            version: row
                .try_get::<Option<String>, _>("version")?
                .unwrap_or_default(),
            cipher: row
                .try_get::<Option<String>, _>("cipher")?
                .unwrap_or_default(),
            client_certificate: row.try_get::<Option<bool>, _>("client")?.unwrap_or(false),
        })
    });
    let _ = conn.close().await;
    out.transpose()
}

fn classify(e: &sqlx::Error) -> Probe {
    match e {
        sqlx::Error::Tls(t) => Probe::CertificateRejected(t.to_string()),
        // rustls reports a certificate that does not verify through the I/O error.
        sqlx::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
        {
            Probe::CertificateRejected(io.to_string())
        }
        sqlx::Error::Io(io) => Probe::Unreachable(io.to_string()),
        sqlx::Error::Database(d) => Probe::Credentials(format!(
            "the database refused the bot's credentials ({})",
            d.code().unwrap_or_default()
        )),
        other => Probe::Unreachable(other.to_string()),
    }
}
