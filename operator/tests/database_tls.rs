//! The operator's database check against a real PostgreSQL (the test kit's, TLS 1.3,
//! `hostssl` only): a verified session reports its TLS version and cipher with plaintext
//! refused; the same server with a `pg_hba.conf` that also takes plaintext is reported;
//! a CA that did not sign the server's certificate is reported; wrong credentials and a
//! port nothing listens on are reported, each with its reason.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use generalbot_operator::database_probe::{Target, probe_target};
use generalbot_operator::database_tls::{Probe, judge};
use generalbot_testkit::{Postgres, TestPki, skip, temp_dir};

fn target(pg: &Postgres, ca_pem: Vec<u8>, password: &str) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: pg.port,
        database: pg.database.clone(),
        user: pg.user.clone(),
        password: zeroize::Zeroizing::new(password.to_owned()),
        ca_pem,
        client: None,
    }
}

#[tokio::test]
async fn the_database_check_reports_what_it_sees() {
    const TEST: &str = "the_database_check_reports_what_it_sees";
    let Ok(pg) = Postgres::start().map_err(|why| skip(TEST, &why)) else {
        return;
    };
    let ca = std::fs::read(&pg.ca).unwrap();

    let started = std::time::Instant::now();
    let verified = probe_target(&target(&pg, ca.clone(), &pg.password)).await;
    let probe_time = started.elapsed();
    // The reference: one verify-full connection alone, as the bot server opens it.
    let started = std::time::Instant::now();
    let opts = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(pg.port)
        .database(&pg.database)
        .username(&pg.user)
        .password(&pg.password)
        .ssl_mode(sqlx::postgres::PgSslMode::VerifyFull)
        .ssl_root_cert_from_pem(ca.clone());
    let conn = sqlx::ConnectOptions::connect(&opts).await.unwrap();
    let connect_time = started.elapsed();
    sqlx::Connection::close(conn).await.unwrap();
    eprintln!(
        "database check: {:.1} ms (verified session, pg_stat_ssl, plaintext attempt) vs one verify-full connection {:.1} ms ({:.2}x)",
        probe_time.as_secs_f64() * 1e3,
        connect_time.as_secs_f64() * 1e3,
        probe_time.as_secs_f64() / connect_time.as_secs_f64()
    );
    let Probe::Verified {
        session,
        plaintext_accepted,
    } = &verified
    else {
        panic!("not verified: {verified:?}");
    };
    assert_eq!(session.version, "TLSv1.3");
    assert!(!session.cipher.is_empty());
    assert!(
        !plaintext_accepted,
        "the test kit's server refuses plaintext"
    );
    let j = judge(&verified, "db:5432");
    assert_eq!((j.status, j.reason), ("True", "Verified"), "{}", j.message);

    // A CA that did not sign the server's certificate.
    let other = TestPki::generate(&temp_dir("gb-other-ca"));
    let rejected = probe_target(&target(
        &pg,
        std::fs::read(&other.ca).unwrap(),
        &pg.password,
    ))
    .await;
    assert!(
        matches!(rejected, Probe::CertificateRejected(_)),
        "{rejected:?}"
    );
    assert_eq!(judge(&rejected, "db:5432").reason, "CertificateNotVerified");

    // Wrong credentials, and a port nothing listens on.
    let refused = probe_target(&target(&pg, ca.clone(), "not the password")).await;
    assert_eq!(
        judge(&refused, "db:5432").reason,
        "CredentialsRefused",
        "{refused:?}"
    );
    let mut nowhere = target(&pg, ca.clone(), &pg.password);
    nowhere.port = generalbot_testkit::free_port();
    let unreachable = probe_target(&nowhere).await;
    assert_eq!(
        judge(&unreachable, "db:5432").reason,
        "NotReachable",
        "{unreachable:?}"
    );

    // The same server, now also taking plaintext connections: reported.
    std::fs::write(
        pg.dir.join("data/pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    pg.psql(&pg.database, "SELECT pg_reload_conf()");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let open = probe_target(&target(&pg, ca, &pg.password)).await;
    assert!(
        matches!(
            open,
            Probe::Verified {
                plaintext_accepted: true,
                ..
            }
        ),
        "{open:?}"
    );
    let j = judge(&open, "db:5432");
    assert_eq!(
        (j.status, j.reason),
        ("False", "PlaintextAccepted"),
        "{}",
        j.message
    );
}
