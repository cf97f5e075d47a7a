//! Checks each bot's bucket at most once per [`Context::storage_every`]: connects as the
//! bot server does (its credentials, TLS with the spec's CA or the internal one),
//! applies and reads back the encryption settings ([`crate::storage_settings`] judges
//! `StorageEncryption`), and lists the backups ([`crate::backups`] judges
//! `BackupsReady`; the newest is `status.lastBackup`). A corrected drift and a failing
//! check are Events when they first appear. Between checks the status keeps what the
//! last check said.

use generalbot_crds::contract::labels;
use generalbot_crds::v1alpha1::TlsMode;
use generalbot_crds::{GeneralBot, GeneralBotStatus};
use generalbot_storage::bucket;
use generalbot_storage::layout::{self, BackupObject};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::events::EventType;

use super::Context;
use super::keys::{secret_value, service_ca};
use crate::database_tls::Judgement;
use crate::storage_settings::{self, Checked};

/// What a check found, to put into the status.
#[derive(Debug)]
pub struct Found {
    storage: Judgement,
    backups: Option<(Judgement, Option<generalbot_crds::v1alpha1::BackupStatus>)>,
}

/// A check's findings, or `None` when none was due; and when the next one is.
pub async fn check(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    now: Timestamp,
) -> (Option<Found>, Option<Timestamp>) {
    let Some(o) = &gb.spec.services.object_storage else {
        return (None, None);
    };
    if ctx.storage_every.is_zero() {
        return (None, None);
    }
    let next = match super::due(&ctx.storage_checked, gb, ctx.storage_every, now) {
        Ok(next) => next,
        Err(next) => return (None, Some(next)),
    };
    let want = storage_settings::desired(&gb.spec);
    let (checked, listed) = match client(ctx, gb, namespace).await {
        Ok(s3) => {
            let checked = match bucket::reconcile(&s3, &o.bucket, &want).await {
                Ok((corrected, seen)) => Checked::Read { corrected, seen },
                Err(e) => Checked::Failed(e.to_string()),
            };
            let listed = layout::list_backups(&s3, &o.bucket)
                .await
                .map_err(|e| e.to_string());
            (checked, listed)
        }
        Err(why) => (Checked::NotConfigured(why.clone()), Err(why)),
    };
    let storage = storage_settings::judge(&checked, &want, &o.bucket);
    if let Checked::Read { corrected, .. } = &checked
        && !corrected.is_empty()
    {
        ctx.publish(
            gb,
            EventType::Warning,
            "StorageDriftCorrected",
            storage.message.clone(),
        )
        .await;
    }
    announce(ctx, gb, storage_settings::CONDITION, &storage).await;
    let backups = if crate::builders::backups_on(&gb.spec) {
        let failed = failed_job(ctx, namespace, &gb.name_any()).await;
        Some(backups(gb, listed, failed, now))
    } else {
        None
    };
    if let Some((j, _)) = &backups {
        announce(ctx, gb, crate::backups::CONDITION, j).await;
    }
    (Some(Found { storage, backups }), Some(next))
}

/// A Warning Event when a condition turns False or changes reason while False.
async fn announce(ctx: &Context, gb: &GeneralBot, type_: &str, j: &Judgement) {
    let was = gb
        .status
        .as_ref()
        .and_then(|s| crate::status::find(s, type_))
        .map(|c| (c.status.clone(), c.reason.clone()));
    let changed = was.as_ref().map(|(s, r)| (s.as_str(), r.as_str())) != Some((j.status, j.reason));
    if j.status == "False" && changed {
        tracing::warn!(condition = type_, reason = j.reason, message = %j.message, "storage");
        ctx.publish(gb, EventType::Warning, j.reason, j.message.clone())
            .await;
    }
}

/// The newest backup Job of `bot`, when it failed.
async fn failed_job(
    ctx: &Context,
    namespace: &str,
    bot: &str,
) -> Option<crate::backups::FailedJob> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!(
        "{}={bot},{}={}",
        labels::INSTANCE,
        labels::COMPONENT,
        crate::builders::BACKUP_COMPONENT
    );
    let list = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .ok()?;
    let newest = list
        .items
        .into_iter()
        .max_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0))?;
    let status = newest.status.as_ref()?;
    let failed = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True")?;
    Some(crate::backups::FailedJob {
        name: newest.name_any(),
        started: status
            .start_time
            .as_ref()
            .or(newest.metadata.creation_timestamp.as_ref())
            .map(|t| t.0)?,
        why: format!(
            "{}: {}",
            failed.reason.as_deref().unwrap_or("Failed"),
            failed.message.as_deref().unwrap_or("no message")
        ),
    })
}

fn backups(
    gb: &GeneralBot,
    listed: Result<Vec<BackupObject>, String>,
    failed: Option<crate::backups::FailedJob>,
    now: Timestamp,
) -> (Judgement, Option<generalbot_crds::v1alpha1::BackupStatus>) {
    let all = match listed {
        Ok(all) => all,
        Err(why) => {
            return (
                Judgement::new(
                    false,
                    "BucketUnreachable",
                    format!("the backups cannot be listed: {why}"),
                ),
                gb.status.as_ref().and_then(|s| s.last_backup.clone()),
            );
        }
    };
    let newest = all.last();
    let since = gb.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let j = crate::backups::judge(
        &gb.spec.backup.schedule,
        &crate::backups::Seen {
            newest: newest.map(|b| b.at),
            since,
            failed,
        },
        now,
    );
    let last = newest.map(|b| generalbot_crds::v1alpha1::BackupStatus {
        time: b.at.to_string(),
        object: b.key.clone(),
        size_bytes: i64::try_from(b.size).unwrap_or(i64::MAX),
        key_id: b.key_id.clone(),
        count: i32::try_from(all.len()).unwrap_or(i32::MAX),
    });
    (j, last)
}

/// An S3 client for the bot's bucket, as the bot server builds it; `Err` says what is
/// missing.
async fn client(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
) -> Result<generalbot_storage::Client, String> {
    let Some(o) = &gb.spec.services.object_storage else {
        return Err("no object storage".into());
    };
    let e = &o.endpoint;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let keys = match &e.credentials_secret {
        None => None,
        Some(r) => {
            let s = secrets
                .get_opt(&r.name)
                .await
                .ok()
                .flatten()
                .ok_or_else(|| format!("the Secret {} cannot be read", r.name))?;
            let (Some(id), Some(secret)) = (
                secret_value(&s, "accessKeyId"),
                secret_value(&s, "secretAccessKey"),
            ) else {
                return Err(format!(
                    "the Secret {} needs the keys accessKeyId and secretAccessKey",
                    r.name
                ));
            };
            Some(generalbot_storage::AccessKeys {
                access_key_id: zeroize::Zeroizing::new(
                    String::from_utf8_lossy(&id).trim().to_owned(),
                ),
                secret_access_key: zeroize::Zeroizing::new(
                    String::from_utf8_lossy(&zeroize::Zeroizing::new(secret))
                        .trim()
                        .to_owned(),
                ),
            })
        }
    };
    let secure = e.tls.mode == TlsMode::VerifyFull;
    let ca_pem = if secure {
        Some(
            service_ca(&secrets, &gb.name_any(), &e.tls)
                .await
                .ok_or("no CA certificate to verify the object storage with")?,
        )
    } else {
        None
    };
    let port = u16::try_from(e.port.unwrap_or(443)).unwrap_or(443);
    let target = ctx.connect_to.resolve(&e.host, port);
    let scheme = if secure { "https" } else { "http" };
    generalbot_storage::client(&generalbot_storage::Endpoint {
        url: format!("{scheme}://{target}"),
        region: o.region.clone(),
        keys,
        ca_pem,
    })
    .map_err(|e| e.to_string())
}

/// Puts the findings into the status.
pub fn apply(status: &mut GeneralBotStatus, found: Found, generation: Option<i64>, now: &Time) {
    let j = found.storage;
    super::set_checked_condition(
        status,
        storage_settings::CONDITION,
        (j.status, j.reason, j.message),
        generation,
        now,
    );
    if let Some((j, last)) = found.backups {
        super::set_checked_condition(
            status,
            crate::backups::CONDITION,
            (j.status, j.reason, j.message),
            generation,
            now,
        );
        status.last_backup = last;
    }
}
