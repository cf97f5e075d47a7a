//! The bucket's security settings: what a GeneralBot asks for ([`Desired`]), what the
//! service reports ([`Observed`], read back with the S3 API), the difference
//! ([`drift`], pure) and the calls that set each one ([`apply`]). Lifecycle rules that
//! are not ours are kept as they are.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus,
    DefaultRetention, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};

use crate::layout::TEMPORARY;
use crate::{Client, StorageError, error_code};

/// Id of our lifecycle rule for temporary files.
pub const TEMPORARY_RULE: &str = "generalbot-temporary-files";
/// Id of our lifecycle rule that aborts uploads left incomplete.
pub const INCOMPLETE_RULE: &str = "generalbot-incomplete-uploads";

/// Default encryption of new objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// AES-256 with keys the service holds (`AES256`).
    SseS3,
    /// A KMS key (`aws:kms`).
    SseKms {
        /// Its id or ARN.
        key_id: String,
    },
}

impl std::fmt::Display for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SseS3 => f.write_str("SSE-S3 (AES256)"),
            Self::SseKms { key_id } => write!(f, "SSE-KMS (key {key_id})"),
        }
    }
}

/// Object lock retention mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Users with a special permission can still delete.
    Governance,
    /// Nobody can delete before the retention ends.
    Compliance,
}

/// Default object lock retention of new objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLock {
    /// The mode.
    pub mode: LockMode,
    /// Days each object is locked.
    pub days: u32,
}

/// What a GeneralBot asks of its bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Default encryption.
    pub encryption: Encryption,
    /// Versioning on (off leaves the bucket's versioning as it is: S3 cannot turn it off).
    pub versioning: bool,
    /// Days before `tmp/` objects expire.
    pub temporary_retention_days: u32,
    /// Object lock, where asked.
    pub object_lock: Option<ObjectLock>,
}

/// What the service reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Default encryption, if any.
    pub encryption: Option<Encryption>,
    /// Versioning is enabled.
    pub versioning: bool,
    /// Days of our temporary-files rule, if present and enabled on `tmp/`.
    pub temporary_rule_days: Option<u32>,
    /// Our incomplete-uploads rule is present.
    pub incomplete_rule: bool,
    /// Default object lock, if any.
    pub object_lock: Option<ObjectLock>,
    /// All four public access blocks are on.
    pub public_access_blocked: bool,
}

/// One setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setting {
    /// Default encryption.
    Encryption,
    /// Versioning.
    Versioning,
    /// Lifecycle rules.
    Lifecycle,
    /// Object lock.
    ObjectLock,
    /// Public access block.
    PublicAccessBlock,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Encryption => "default encryption",
            Self::Versioning => "versioning",
            Self::Lifecycle => "lifecycle",
            Self::ObjectLock => "object lock",
            Self::PublicAccessBlock => "public access block",
        })
    }
}

/// The settings that differ from what is asked.
pub fn drift(desired: &Desired, seen: &Observed) -> Vec<Setting> {
    let mut out = Vec::new();
    if seen.encryption.as_ref() != Some(&desired.encryption) {
        out.push(Setting::Encryption);
    }
    if desired.versioning && !seen.versioning {
        out.push(Setting::Versioning);
    }
    if seen.temporary_rule_days != Some(desired.temporary_retention_days) || !seen.incomplete_rule {
        out.push(Setting::Lifecycle);
    }
    if desired.object_lock.is_some() && seen.object_lock != desired.object_lock {
        out.push(Setting::ObjectLock);
    }
    if !seen.public_access_blocked {
        out.push(Setting::PublicAccessBlock);
    }
    out
}

/// One line that says what was verified.
pub fn describe(seen: &Observed) -> String {
    let mut parts = vec![match &seen.encryption {
        Some(e) => e.to_string(),
        None => "no default encryption".to_owned(),
    }];
    parts.push(
        if seen.versioning {
            "versioning on"
        } else {
            "versioning off"
        }
        .to_owned(),
    );
    parts.push(match seen.temporary_rule_days {
        Some(d) => format!("{TEMPORARY} expires after {d} d"),
        None => format!("no expiry of {TEMPORARY}"),
    });
    if let Some(l) = &seen.object_lock {
        parts.push(format!("object lock {:?} {} d", l.mode, l.days));
    }
    parts.push(
        if seen.public_access_blocked {
            "public access blocked"
        } else {
            "public access not blocked"
        }
        .to_owned(),
    );
    parts.join(", ")
}

fn days(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn ours(rule: &LifecycleRule) -> bool {
    matches!(rule.id(), Some(TEMPORARY_RULE | INCOMPLETE_RULE))
}

/// Reads every setting back.
pub async fn read(client: &Client, bucket: &str) -> Result<Observed, StorageError> {
    let mut seen = Observed::default();
    match client.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => {
            let rule = out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default());
            seen.encryption = rule.and_then(|d| match d.sse_algorithm() {
                ServerSideEncryption::Aes256 => Some(Encryption::SseS3),
                ServerSideEncryption::AwsKms => Some(Encryption::SseKms {
                    key_id: d.kms_master_key_id().unwrap_or_default().to_owned(),
                }),
                _ => None,
            });
        }
        Err(e) if error_code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => {}
        Err(e) => return Err(StorageError::call("GetBucketEncryption", bucket, e)),
    }
    let v = client
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| StorageError::call("GetBucketVersioning", bucket, e))?;
    seen.versioning = v.status() == Some(&BucketVersioningStatus::Enabled);
    let rules = lifecycle_rules(client, bucket).await?;
    for r in &rules {
        if r.status() != &ExpirationStatus::Enabled {
            continue;
        }
        let prefix = r.filter().and_then(|f| f.prefix());
        match r.id() {
            Some(TEMPORARY_RULE) if prefix == Some(TEMPORARY) => {
                seen.temporary_rule_days = r
                    .expiration()
                    .and_then(|x| x.days())
                    .and_then(|d| u32::try_from(d).ok());
            }
            Some(INCOMPLETE_RULE) => {
                seen.incomplete_rule = r.abort_incomplete_multipart_upload().is_some();
            }
            _ => {}
        }
    }
    match client
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => {
            seen.object_lock = out
                .object_lock_configuration()
                .and_then(|c| c.rule())
                .and_then(|r| r.default_retention())
                .and_then(|d| {
                    let mode = match d.mode()? {
                        ObjectLockRetentionMode::Governance => LockMode::Governance,
                        ObjectLockRetentionMode::Compliance => LockMode::Compliance,
                        _ => return None,
                    };
                    Some(ObjectLock {
                        mode,
                        days: u32::try_from(d.days()?).ok()?,
                    })
                });
        }
        Err(e) if error_code(&e) == Some("ObjectLockConfigurationNotFoundError") => {}
        Err(e) => return Err(StorageError::call("GetObjectLockConfiguration", bucket, e)),
    }
    match client.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => {
            seen.public_access_blocked = out.public_access_block_configuration().is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            });
        }
        Err(e) if error_code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => {}
        Err(e) => return Err(StorageError::call("GetPublicAccessBlock", bucket, e)),
    }
    Ok(seen)
}

async fn lifecycle_rules(
    client: &Client,
    bucket: &str,
) -> Result<Vec<LifecycleRule>, StorageError> {
    match client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(out.rules().to_vec()),
        Err(e) if error_code(&e) == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
        Err(e) => Err(StorageError::call(
            "GetBucketLifecycleConfiguration",
            bucket,
            e,
        )),
    }
}

fn build_err(
    what: &'static str,
    bucket: &str,
) -> impl Fn(aws_sdk_s3::error::BuildError) -> StorageError {
    let bucket = bucket.to_owned();
    move |e| StorageError::Call {
        call: what,
        bucket: bucket.clone(),
        message: e.to_string(),
    }
}

/// Sets the settings in `which` to what `desired` asks.
pub async fn apply(
    client: &Client,
    bucket: &str,
    desired: &Desired,
    which: &[Setting],
) -> Result<(), StorageError> {
    for setting in which {
        match setting {
            Setting::Encryption => {
                let (alg, key) = match &desired.encryption {
                    Encryption::SseS3 => (ServerSideEncryption::Aes256, None),
                    Encryption::SseKms { key_id } => {
                        (ServerSideEncryption::AwsKms, Some(key_id.clone()))
                    }
                };
                let by_default = ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(alg)
                    .set_kms_master_key_id(key)
                    .build()
                    .map_err(build_err("PutBucketEncryption", bucket))?;
                let conf = ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(by_default)
                            .bucket_key_enabled(matches!(
                                desired.encryption,
                                Encryption::SseKms { .. }
                            ))
                            .build(),
                    )
                    .build()
                    .map_err(build_err("PutBucketEncryption", bucket))?;
                client
                    .put_bucket_encryption()
                    .bucket(bucket)
                    .server_side_encryption_configuration(conf)
                    .send()
                    .await
                    .map_err(|e| StorageError::call("PutBucketEncryption", bucket, e))?;
            }
            Setting::Versioning => {
                client
                    .put_bucket_versioning()
                    .bucket(bucket)
                    .versioning_configuration(
                        VersioningConfiguration::builder()
                            .status(BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| StorageError::call("PutBucketVersioning", bucket, e))?;
            }
            Setting::Lifecycle => {
                let mut rules: Vec<LifecycleRule> = lifecycle_rules(client, bucket)
                    .await?
                    .into_iter()
                    .filter(|r| !ours(r))
                    .collect();
                let d = days(desired.temporary_retention_days);
                rules.push(
                    LifecycleRule::builder()
                        .id(TEMPORARY_RULE)
                        .filter(LifecycleRuleFilter::builder().prefix(TEMPORARY).build())
                        .status(ExpirationStatus::Enabled)
                        .expiration(LifecycleExpiration::builder().days(d).build())
                        .noncurrent_version_expiration(
                            NoncurrentVersionExpiration::builder()
                                .noncurrent_days(d)
                                .build(),
                        )
                        .build()
                        .map_err(build_err("PutBucketLifecycleConfiguration", bucket))?,
                );
                rules.push(
                    LifecycleRule::builder()
                        .id(INCOMPLETE_RULE)
                        .filter(LifecycleRuleFilter::builder().prefix("").build())
                        .status(ExpirationStatus::Enabled)
                        .abort_incomplete_multipart_upload(
                            AbortIncompleteMultipartUpload::builder()
                                .days_after_initiation(1)
                                .build(),
                        )
                        .build()
                        .map_err(build_err("PutBucketLifecycleConfiguration", bucket))?,
                );
                client
                    .put_bucket_lifecycle_configuration()
                    .bucket(bucket)
                    .lifecycle_configuration(
                        BucketLifecycleConfiguration::builder()
                            .set_rules(Some(rules))
                            .build()
                            .map_err(build_err("PutBucketLifecycleConfiguration", bucket))?,
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        StorageError::call("PutBucketLifecycleConfiguration", bucket, e)
                    })?;
            }
            Setting::ObjectLock => {
                let Some(lock) = &desired.object_lock else {
                    continue;
                };
                let mode = match lock.mode {
                    LockMode::Governance => ObjectLockRetentionMode::Governance,
                    LockMode::Compliance => ObjectLockRetentionMode::Compliance,
                };
                client
                    .put_object_lock_configuration()
                    .bucket(bucket)
                    .object_lock_configuration(
                        ObjectLockConfiguration::builder()
                            .object_lock_enabled(ObjectLockEnabled::Enabled)
                            .rule(
                                ObjectLockRule::builder()
                                    .default_retention(
                                        DefaultRetention::builder()
                                            .mode(mode)
                                            .days(days(lock.days))
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| StorageError::call("PutObjectLockConfiguration", bucket, e))?;
            }
            Setting::PublicAccessBlock => {
                client
                    .put_public_access_block()
                    .bucket(bucket)
                    .public_access_block_configuration(
                        PublicAccessBlockConfiguration::builder()
                            .block_public_acls(true)
                            .ignore_public_acls(true)
                            .block_public_policy(true)
                            .restrict_public_buckets(true)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| StorageError::call("PutPublicAccessBlock", bucket, e))?;
            }
        }
    }
    Ok(())
}

/// Reads the bucket, corrects what drifted, and reads it again: returns what was
/// corrected and what is now there (which the caller judges with [`drift`] again).
pub async fn reconcile(
    client: &Client,
    bucket: &str,
    desired: &Desired,
) -> Result<(Vec<Setting>, Observed), StorageError> {
    let before = read(client, bucket).await?;
    let fix = drift(desired, &before);
    if fix.is_empty() {
        return Ok((fix, before));
    }
    apply(client, bucket, desired, &fix).await?;
    Ok((fix, read(client, bucket).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> Desired {
        Desired {
            encryption: Encryption::SseS3,
            versioning: true,
            temporary_retention_days: 30,
            object_lock: None,
        }
    }

    #[test]
    fn a_bare_bucket_drifts_on_everything_asked() {
        assert_eq!(
            drift(&want(), &Observed::default()),
            [
                Setting::Encryption,
                Setting::Versioning,
                Setting::Lifecycle,
                Setting::PublicAccessBlock
            ]
        );
        let mut lock = want();
        lock.object_lock = Some(ObjectLock {
            mode: LockMode::Governance,
            days: 7,
        });
        assert!(drift(&lock, &Observed::default()).contains(&Setting::ObjectLock));
    }

    #[test]
    fn a_conforming_bucket_has_no_drift_and_says_what_it_saw() {
        let seen = Observed {
            encryption: Some(Encryption::SseS3),
            versioning: true,
            temporary_rule_days: Some(30),
            incomplete_rule: true,
            object_lock: None,
            public_access_blocked: true,
        };
        assert!(drift(&want(), &seen).is_empty());
        assert_eq!(
            describe(&seen),
            "SSE-S3 (AES256), versioning on, tmp/ expires after 30 d, public access blocked"
        );
        let mut kms = want();
        kms.encryption = Encryption::SseKms { key_id: "k".into() };
        assert_eq!(drift(&kms, &seen), [Setting::Encryption]);
        let mut shorter = want();
        shorter.temporary_retention_days = 7;
        assert_eq!(drift(&shorter, &seen), [Setting::Lifecycle]);
    }
}
