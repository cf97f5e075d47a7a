//! Checks each bot's database connection at most once per [`Context::database_every`]
//! ([`crate::database_tls`] judges): connects as the bot server does, reads the
//! session's TLS from `pg_stat_ssl`, and asks whether the server would take plaintext
//! with a made-up role and no password. Sets `DatabaseTLS`; a finding is a Warning
//! Event when it first appears. Between checks the status keeps what the last check
//! said, so a steady bot costs no write.

use generalbot_crds::GeneralBot;
use generalbot_crds::contract::tls_files;
use generalbot_crds::v1alpha1::TlsMode;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;

use super::Context;
use super::keys::{secret_value, service_ca};
use crate::database_probe::{Target, probe_target};
use crate::database_tls::{self, CONDITION, Judgement, Probe};

/// A check's judgement, or `None` when no check was due; and when the next one is.
pub async fn check(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    now: Timestamp,
) -> (Option<Judgement>, Option<Timestamp>) {
    if ctx.database_every.is_zero() {
        return (None, None);
    }
    let next = match super::due(&ctx.database_checked, gb, ctx.database_every, now) {
        Ok(next) => next,
        Err(next) => return (None, Some(next)),
    };
    let e = &gb.spec.services.postgres.endpoint;
    let port = u16::try_from(e.port.unwrap_or(5432)).unwrap_or(5432);
    let probe = probe(ctx, gb, namespace, port).await;
    let judgement = database_tls::judge(&probe, &format!("{}:{port}", e.host));
    let was = gb
        .status
        .as_ref()
        .and_then(|s| crate::status::find(s, CONDITION))
        .map(|c| (c.status.clone(), c.reason.clone()));
    let changed = was.as_ref().map(|(s, r)| (s.as_str(), r.as_str()))
        != Some((judgement.status, judgement.reason));
    if judgement.status == "False" && changed {
        tracing::warn!(reason = judgement.reason, message = %judgement.message, "database TLS");
        ctx.publish(
            gb,
            EventType::Warning,
            judgement.reason,
            judgement.message.clone(),
        )
        .await;
    }
    (Some(judgement), Some(next))
}

async fn probe(ctx: &Context, gb: &GeneralBot, namespace: &str, port: u16) -> Probe {
    let pg = &gb.spec.services.postgres;
    let e = &pg.endpoint;
    if e.tls.mode != TlsMode::VerifyFull {
        return Probe::TlsOff;
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(credentials) = &e.credentials_secret else {
        return Probe::Credentials("spec.services.postgres.credentialsSecret is not set".into());
    };
    let Ok(Some(creds)) = secrets.get_opt(&credentials.name).await else {
        return Probe::Credentials(format!("the Secret {} cannot be read", credentials.name));
    };
    let (Some(user), Some(password)) = (
        secret_value(&creds, "username"),
        secret_value(&creds, "password"),
    ) else {
        return Probe::Credentials(format!(
            "the Secret {} needs the keys username and password",
            credentials.name
        ));
    };
    let password = zeroize::Zeroizing::new(password);
    let Some(ca) = service_ca(&secrets, &gb.name_any(), &e.tls).await else {
        return Probe::CertificateRejected("no CA certificate to verify the server with".into());
    };
    // Outside the cluster (tests, `--connect-to`), the mapped address is both where to
    // connect and the name the server's certificate must carry.
    let target = ctx.connect_to.resolve(&e.host, port);
    let (host, port) = target
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .unwrap_or((e.host.clone(), port));
    let mut client = None;
    if e.tls.client_certificate {
        let tls = secrets
            .get_opt(&crate::certs::tls_secret_name(&gb.name_any()))
            .await
            .ok()
            .flatten();
        let cert = tls
            .as_ref()
            .and_then(|s| secret_value(s, &tls_files::client_cert("postgres")));
        let client_key = tls
            .as_ref()
            .and_then(|s| secret_value(s, &tls_files::client_key("postgres")));
        if let (Some(cert), Some(client_key)) = (cert, client_key) {
            client = Some((cert, zeroize::Zeroizing::new(client_key)));
        }
    }
    probe_target(&Target {
        host,
        port,
        database: pg.database.clone(),
        user: String::from_utf8_lossy(&user).into_owned(),
        password: zeroize::Zeroizing::new(String::from_utf8_lossy(&password).into_owned()),
        ca_pem: ca,
        client,
    })
    .await
}

/// Puts a judgement into the status.
pub fn apply(
    status: &mut generalbot_crds::GeneralBotStatus,
    j: Judgement,
    generation: Option<i64>,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) {
    super::set_checked_condition(
        status,
        CONDITION,
        (j.status, j.reason, j.message),
        generation,
        now,
    );
}
