//! The backup CronJob and its NetworkPolicy, when backups are on and the bot has object
//! storage: `bot-server backup` on the spec's schedule (UTC), one at a time, in a pod
//! hardened like the Deployment's, with labels of its own so the bot's Service, budget
//! and policies never select it, and a policy of its own: no ingress, egress only to
//! DNS, the database and the bucket.

use std::collections::BTreeMap;

use generalbot_crds::contract::labels;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::BuildContext;
use super::deployment::backup_pod;
use super::meta::object_meta;
use super::network_policy::backup_policy;

/// `app.kubernetes.io/name` of backup pods (not the bot's, so no selector of the bot
/// server's matches them).
pub const BACKUP_APP_NAME: &str = "generalbot-backup";
/// `app.kubernetes.io/component` of backup pods.
pub const BACKUP_COMPONENT: &str = "backup";

/// The CronJob's (and its policy's) name.
pub fn backup_name(name: &str) -> String {
    format!("{name}-backup")
}

/// The labels of backup objects and pods.
pub fn backup_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_owned(), BACKUP_APP_NAME.to_owned()),
        (labels::INSTANCE.to_owned(), name.to_owned()),
        (labels::COMPONENT.to_owned(), BACKUP_COMPONENT.to_owned()),
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
    ])
}

/// Whether this bot takes backups: asked for, and somewhere to put them.
pub fn backups_on(spec: &generalbot_crds::v1alpha1::GeneralBotSpec) -> bool {
    spec.backup.enabled && spec.services.object_storage.is_some()
}

/// The CronJob and its NetworkPolicy, or `None` when backups are off.
pub fn backup(ctx: &BuildContext<'_>) -> Option<(CronJob, NetworkPolicy)> {
    if !backups_on(&ctx.gb.spec) {
        return None;
    }
    let name = backup_name(ctx.name);
    let labels = backup_labels(ctx.name);
    let mut metadata = object_meta(ctx, name.clone());
    metadata.labels = Some(labels.clone());
    let cron = CronJob {
        metadata,
        spec: Some(CronJobSpec {
            schedule: ctx.gb.spec.backup.schedule.clone(),
            time_zone: Some("Etc/UTC".to_owned()),
            concurrency_policy: Some("Forbid".to_owned()),
            // A run missed by more than an hour (the controller was down) is skipped,
            // and the status reports the backup overdue.
            starting_deadline_seconds: Some(3600),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            suspend: Some(false),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    // Six hours at most: a backup never overlaps the next by much.
                    active_deadline_seconds: Some(6 * 3600),
                    template: backup_pod(ctx, labels.clone()),
                    ..JobSpec::default()
                }),
            },
        }),
        status: None,
    };
    Some((cron, backup_policy(ctx, name, labels)))
}
