//! Mail, against a real SMTP server on loopback (aiosmtpd, `tests/smtp/server.py`) that
//! requires STARTTLS and credentials, and a real PostgreSQL: a user hears of a sign-in
//! from a new network and of their locked account; administrators get the guide's
//! security alerts (failed sign-ins, a lockout, a privilege-escalation attempt); no mail
//! holds a password; a server that offers no TLS gets nothing.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use generalbot_bot_server::auth::Role;
use generalbot_crds::contract::env;
use support::call;

const PW: &str = "a long and secret passphrase";
const SMTP_USER: &str = "bot-mailer";
const SMTP_PASSWORD: &str = "smtp-test-password-5e21";

/// The SMTP server; stops when dropped.
struct Smtp {
    port: u16,
    out: PathBuf,
    pki: support::TestPki,
    child: Child,
}

impl Smtp {
    fn start(plain: bool) -> Result<Self, String> {
        let python = support::which("python3").ok_or("python3 not found")?;
        let has = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .status()
            .map_err(|e| e.to_string())?;
        if !has.success() {
            return Err("aiosmtpd is not installed (pip install aiosmtpd)".into());
        }
        let dir = support::temp_dir("gb-smtp");
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let pki = support::TestPki::generate(&dir);
        let port = support::free_port();
        let log = std::fs::File::create(dir.join("smtp.log")).unwrap();
        let mut cmd = Command::new(python);
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py"))
            .env("PORT", port.to_string())
            .env("OUT", &out)
            .env("CERT", &pki.cert)
            .env("KEY", &pki.key)
            .env("SMTP_USER", SMTP_USER)
            .env("SMTP_PASSWORD", SMTP_PASSWORD)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        if plain {
            cmd.arg("--plain");
        }
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self {
                    port,
                    out,
                    pki,
                    child,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the SMTP server did not start: {}",
            std::fs::read_to_string(dir.join("smtp.log")).unwrap_or_default()
        ))
    }

    /// Every message received so far, as text.
    fn received(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }

    /// Waits until a message to `to` whose text holds `needle` arrived.
    async fn wait_for(&self, to: &str, needle: &str) -> String {
        for _ in 0..100 {
            if let Some(m) = self
                .received()
                .into_iter()
                .find(|m| m.starts_with(&format!("TO: {to}")) && m.contains(needle))
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no mail to {to} about {needle:?}; received: {:#?}",
            self.received()
        );
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mail_settings(dir: &Path, smtp: &Smtp) -> Vec<(&'static str, String)> {
    support::write(&dir.join("smtp-user"), SMTP_USER, 0o400);
    support::write(&dir.join("smtp-password"), SMTP_PASSWORD, 0o400);
    vec![
        (env::FEATURES, "email".into()),
        (env::SMTP_ADDR, format!("127.0.0.1:{}", smtp.port)),
        (
            env::SMTP_USER_FILE,
            dir.join("smtp-user").display().to_string(),
        ),
        (
            env::SMTP_PASSWORD_FILE,
            dir.join("smtp-password").display().to_string(),
        ),
        (env::SMTP_CA_FILE, smtp.pki.ca.display().to_string()),
        (env::SMTP_FROM, "bot@example.com".into()),
        (env::MAX_LOGIN_ATTEMPTS, "3".into()),
        (env::LOGIN_ALERT_THRESHOLD, "2".into()),
    ]
}

async fn login(api: std::net::SocketAddr, email: &str, pw: &str, from: &str) -> support::Reply {
    call(
        api,
        "POST",
        "/api/auth/login",
        from,
        None,
        Some(serde_json::json!({"email": email, "password": pw})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_administrators_are_told_by_mail_over_tls() {
    let smtp = match Smtp::start(false) {
        Ok(s) => s,
        Err(why) => return support::skip("mail", &why),
    };
    let pg = match support::Postgres::start() {
        Ok(pg) => pg,
        Err(why) => return support::skip("mail", &why),
    };
    let dir = support::secrets(&pg);
    let server = support::replica(&dir, &pg, None, false, &mail_settings(&dir, &smtp)).await;
    let api = server.api;
    let auth = &server.state.auth;
    auth.register("admin@example.com", PW, Role::Admin, false)
        .await
        .unwrap();
    auth.register("alice@example.com", PW, Role::User, false)
        .await
        .unwrap();
    auth.register("bob@example.com", PW, Role::User, false)
        .await
        .unwrap();

    // A first sign-in tells nobody; one from another network tells the user.
    assert_eq!(
        login(api, "alice@example.com", PW, "198.51.100.1")
            .await
            .status,
        200
    );
    assert_eq!(
        login(api, "alice@example.com", PW, "198.51.100.1")
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.received().is_empty(), "{:?}", smtp.received());
    assert_eq!(
        login(api, "alice@example.com", PW, "203.0.113.9")
            .await
            .status,
        200
    );
    let m = smtp
        .wait_for("alice@example.com", "Sign-in from a new network")
        .await;
    assert!(m.contains("203.0.113.9"), "{m}");

    // Failed sign-ins: an alert to the administrators at the threshold, the lock to the
    // user and to the administrators.
    for _ in 0..3 {
        login(api, "bob@example.com", "wrong password!", "198.51.100.2").await;
    }
    smtp.wait_for("bob@example.com", "Your account was locked")
        .await;
    smtp.wait_for("admin@example.com", "repeated failed sign-ins")
        .await;
    smtp.wait_for("admin@example.com", "an account locked")
        .await;

    // A plain user at an administrators' endpoint: a privilege-escalation alert.
    let alice = login(api, "alice@example.com", PW, "198.51.100.1").await;
    let token = alice.body["access_token"].as_str().unwrap().to_owned();
    let denied = call(
        api,
        "GET",
        "/api/admin/audit",
        "198.51.100.1",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(denied.status, 403);
    smtp.wait_for("admin@example.com", "privilege escalation")
        .await;
    // … held back for 10 minutes after the first.
    for _ in 0..3 {
        call(
            api,
            "GET",
            "/api/admin/audit",
            "198.51.100.1",
            Some(&token),
            None,
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let escalations = smtp
        .received()
        .iter()
        .filter(|m| m.contains("privilege escalation"))
        .count();
    assert_eq!(escalations, 1, "one alert per kind per 10 minutes");

    for m in smtp.received() {
        assert!(m.contains("From: GeneralBot <bot@example.com>"), "{m}");
        for secret in [PW, "wrong password!", SMTP_PASSWORD, token.as_str()] {
            assert!(!m.contains(secret), "a secret in a mail: {m}");
        }
    }
    eprintln!(
        "NOTE mail: {} messages received over STARTTLS with credentials",
        smtp.received().len()
    );

    // A server that offers no TLS gets nothing: the message is counted as not sent.
    let plain = Smtp::start(true).unwrap();
    let quiet = support::replica(&dir, &pg, None, false, &mail_settings(&dir, &plain)).await;
    let sent_before = quiet.state.metrics.mail_failures.get();
    assert_eq!(
        login(quiet.api, "alice@example.com", PW, "192.0.2.77")
            .await
            .status,
        200
    );
    for _ in 0..100 {
        if quiet.state.metrics.mail_failures.get() > sent_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        quiet.state.metrics.mail_failures.get() > sent_before,
        "a server without TLS must not get the mail"
    );
    assert!(plain.received().is_empty(), "{:?}", plain.received());
}
