//! Mail (the `email` module): the SMTP server (`host:port`; port 465 is implicit TLS,
//! any other STARTTLS, required either way), the credentials (files), the CA of its
//! certificate (public roots when none) and the sender address. Asked for by
//! `BOTSERVER_FEATURES=email`; settings without it, or it without settings, are refused.

use std::path::PathBuf;

use generalbot_crds::contract::env;

use super::{ConfigError, Source, secret_file};

/// The SMTP server and sender.
#[derive(Clone)]
pub struct MailConfig {
    /// Host name or address.
    pub host: String,
    /// Port (465: implicit TLS; otherwise STARTTLS).
    pub port: u16,
    /// User name, from a file.
    pub user: Option<zeroize::Zeroizing<String>>,
    /// Password, from a file.
    pub password: Option<zeroize::Zeroizing<String>>,
    /// The CA of the server's certificate; public roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// The sender address.
    pub from: String,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.user.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("from", &self.from)
            .finish()
    }
}

/// Reads the mail settings; `asked` says whether `BOTSERVER_FEATURES` asks for email.
pub fn mail(src: &dyn Source, dev: bool, asked: bool) -> Result<Option<MailConfig>, ConfigError> {
    let check = !dev;
    let addr = src.get(env::SMTP_ADDR);
    let user = secret_file(src, env::SMTP_USER_FILE, check)?;
    let password = secret_file(src, env::SMTP_PASSWORD_FILE, check)?;
    let ca_file = src.get(env::SMTP_CA_FILE).map(PathBuf::from);
    let from = src.get(env::SMTP_FROM);
    let Some(addr) = addr else {
        if asked {
            return Err(ConfigError::Required {
                var: env::SMTP_ADDR,
                what: "BOTSERVER_FEATURES asks for email: declare spec.services.mail",
            });
        }
        if user.is_some() || from.is_some() || ca_file.is_some() {
            return Err(ConfigError::Required {
                var: env::SMTP_ADDR,
                what: "mail settings are given without the server",
            });
        }
        return Ok(None);
    };
    if !asked {
        return Err(ConfigError::Invalid {
            var: env::SMTP_ADDR,
            value: addr,
            expected: "unset, or BOTSERVER_FEATURES including email (spec.server.features.email)",
        });
    }
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| ConfigError::Invalid {
            var: env::SMTP_ADDR,
            value: addr.clone(),
            expected: "host:port",
        })?;
    if user.is_some() != password.is_some() {
        return Err(ConfigError::Invalid {
            var: env::SMTP_USER_FILE,
            value: "<one of two>".into(),
            expected: "both SMTP_USER_FILE and SMTP_PASSWORD_FILE, or neither",
        });
    }
    let from = from.ok_or(ConfigError::Required {
        var: env::SMTP_FROM,
        what: "the sender address (spec.services.mail.from)",
    })?;
    if !from.contains('@') || from.contains(['\r', '\n', '<', '>']) {
        return Err(ConfigError::Invalid {
            var: env::SMTP_FROM,
            value: from,
            expected: "an email address such as bot@example.com",
        });
    }
    Ok(Some(MailConfig {
        host,
        port,
        user,
        password,
        ca_file,
        from,
    }))
}
