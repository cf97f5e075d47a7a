//! What the operator saw of a bot's database connection, judged into the `DatabaseTLS`
//! condition. The operator connects as the bot server does (`verify-full` against the
//! CA the spec names, or the internal CA; the client certificate when configured),
//! reads the session's TLS version and cipher from `pg_stat_ssl`, and asks whether the
//! server would take a plaintext connection: with a made-up role and no password, so no
//! credential ever crosses the network in clear. Pure; the probing is
//! [`crate::controller`]'s.

/// The condition type.
pub const CONDITION: &str = "DatabaseTLS";

/// The encrypted session, as `pg_stat_ssl` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `TLSv1.3`, say.
    pub version: String,
    /// The cipher suite.
    pub cipher: String,
    /// Whether the server saw a client certificate.
    pub client_certificate: bool,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The spec turns TLS off for the database.
    TlsOff,
    /// A verified connection; and whether the server also takes plaintext ones.
    Verified {
        /// The session.
        session: Session,
        /// True when a plaintext connection got past `pg_hba.conf`.
        plaintext_accepted: bool,
    },
    /// Connected, but the session is not encrypted.
    NotEncrypted,
    /// The server's certificate did not verify (or TLS failed).
    CertificateRejected(String),
    /// The server could not be reached.
    Unreachable(String),
    /// The credentials are missing or refused.
    Credentials(String),
}

/// A judgement: the condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// `True` or `False`.
    pub status: &'static str,
    /// The reason.
    pub reason: &'static str,
    /// What was seen, and what to do.
    pub message: String,
}

impl Judgement {
    /// A judgement that is `True` when `ok`.
    pub fn new(ok: bool, reason: &'static str, message: String) -> Self {
        Self {
            status: if ok { "True" } else { "False" },
            reason,
            message,
        }
    }
}

/// Judges a probe of `endpoint` (`host:port`).
pub fn judge(probe: &Probe, endpoint: &str) -> Judgement {
    match probe {
        Probe::TlsOff => Judgement::new(
            false,
            "TLSDisabled",
            format!(
                "spec.services.postgres.tls.mode is Disabled: the bot reaches {endpoint} in clear; set it to VerifyFull"
            ),
        ),
        Probe::Verified {
            session,
            plaintext_accepted: false,
        } => Judgement::new(
            true,
            "Verified",
            format!(
                "{endpoint}: {} with {}, certificate verified{}; plaintext connections refused",
                session.version,
                session.cipher,
                if session.client_certificate {
                    ", client certificate presented"
                } else {
                    ""
                }
            ),
        ),
        Probe::Verified {
            session,
            plaintext_accepted: true,
        } => Judgement::new(
            false,
            "PlaintextAccepted",
            format!(
                "{endpoint}: the bot's session is {} with {}, but the server also accepts plaintext connections: allow only hostssl lines in pg_hba.conf",
                session.version, session.cipher
            ),
        ),
        Probe::NotEncrypted => Judgement::new(
            false,
            "NotEncrypted",
            format!("{endpoint}: pg_stat_ssl says the session is not encrypted"),
        ),
        Probe::CertificateRejected(why) => Judgement::new(
            false,
            "CertificateNotVerified",
            format!(
                "{endpoint}: TLS with full verification failed ({why}): check the CA in spec.services.postgres.tls.caSecret and the server's certificate names"
            ),
        ),
        Probe::Unreachable(why) => Judgement::new(
            false,
            "NotReachable",
            format!(
                "{endpoint}: not reachable from the operator ({why}); allow the operator's egress to it (see the README)"
            ),
        ),
        Probe::Credentials(why) => {
            Judgement::new(false, "CredentialsRefused", format!("{endpoint}: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            version: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            client_certificate: false,
        }
    }

    #[test]
    fn only_a_verified_session_that_refuses_plaintext_is_true() {
        let ok = judge(
            &Probe::Verified {
                session: session(),
                plaintext_accepted: false,
            },
            "db:5432",
        );
        assert_eq!((ok.status, ok.reason), ("True", "Verified"));
        assert!(ok.message.contains("TLSv1.3 with TLS_AES_256_GCM_SHA384"));
        let open = judge(
            &Probe::Verified {
                session: session(),
                plaintext_accepted: true,
            },
            "db:5432",
        );
        assert_eq!((open.status, open.reason), ("False", "PlaintextAccepted"));
        for (p, reason) in [
            (Probe::TlsOff, "TLSDisabled"),
            (Probe::NotEncrypted, "NotEncrypted"),
            (
                Probe::CertificateRejected("bad name".into()),
                "CertificateNotVerified",
            ),
            (Probe::Unreachable("refused".into()), "NotReachable"),
            (Probe::Credentials("no Secret".into()), "CredentialsRefused"),
        ] {
            let j = judge(&p, "db:5432");
            assert_eq!((j.status, j.reason), ("False", reason));
        }
    }
}
