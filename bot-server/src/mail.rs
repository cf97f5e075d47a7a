//! Sending mail over SMTP with TLS (`lettre`): implicit TLS on port 465, STARTTLS
//! required on any other, the server's certificate verified against its CA file or the
//! public roots, credentials from the mounted files. Messages go through a bounded queue
//! to one sending task, so a slow or unreachable server never holds up a request; what
//! cannot be sent is logged (never its body) and counted.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::config::MailConfig;
use crate::metrics::Metrics;

/// Messages waiting to be sent before new ones are dropped (and counted).
const QUEUE: usize = 256;

/// What failed while setting up mail.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The CA file is unusable.
    #[error("SMTP_CA_FILE {path}: {reason}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The TLS or transport settings are unusable.
    #[error("mail transport: {0}")]
    Transport(String),
    /// An address does not parse.
    #[error("mail address {0:?} does not parse")]
    Address(String),
}

/// One message to send.
#[derive(Clone)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body (never a secret).
    pub body: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The sender: a queue in front of one sending task.
#[derive(Debug, Clone)]
pub struct Mailer {
    queue: tokio::sync::mpsc::Sender<Mail>,
    metrics: Arc<Metrics>,
}

impl Mailer {
    /// Sets up the transport and starts the sending task.
    pub fn start(cfg: &MailConfig, metrics: Arc<Metrics>) -> Result<Self, MailError> {
        let mut tls = TlsParameters::builder(cfg.host.clone());
        if let Some(path) = &cfg.ca_file {
            let ca_error = |reason: String| MailError::Ca {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| MailError::Transport(e.to_string()))?;
        let mut transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
                .port(cfg.port)
                .tls(if cfg.port == 465 {
                    Tls::Wrapper(tls)
                } else {
                    Tls::Required(tls)
                })
                .timeout(Some(Duration::from_secs(10)));
        if let (Some(user), Some(password)) = (&cfg.user, &cfg.password) {
            transport =
                transport.credentials(Credentials::new(user.to_string(), password.to_string()));
        }
        let transport = transport.build();
        let from: Mailbox = format!("GeneralBot <{}>", cfg.from)
            .parse()
            .map_err(|_| MailError::Address(cfg.from.clone()))?;
        let (queue, mut waiting) = tokio::sync::mpsc::channel::<Mail>(QUEUE);
        let sending = metrics.clone();
        tokio::spawn(async move {
            while let Some(mail) = waiting.recv().await {
                match send(&transport, &from, &mail).await {
                    Ok(()) => {
                        sending.mail_sent.inc();
                    }
                    Err(reason) => {
                        sending.mail_failures.inc();
                        tracing::warn!(subject = %mail.subject, %reason, "mail not sent");
                    }
                }
            }
        });
        Ok(Self { queue, metrics })
    }

    /// Queues a message; when the queue is full it is dropped, logged and counted.
    pub fn send(&self, mail: Mail) {
        if let Err(e) = self.queue.try_send(mail) {
            self.metrics.mail_failures.inc();
            tracing::warn!(error = %e, "mail queue full: a message was dropped");
        }
    }
}

async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    mail: &Mail,
) -> Result<(), String> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| "a recipient that does not parse".to_owned())?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .body(mail.body.clone())
        .map_err(|e| e.to_string())?;
    transport
        .send(message)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}
