//! The S3 calls behind [`super::read`] and [`super::apply`]: each setting read back
//! (a missing configuration reads as unset) and each one put; lifecycle rules that are
//! not ours are kept as they are.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus,
    DefaultRetention, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};

use super::{
    Desired, Encryption, INCOMPLETE_RULE, LockMode, ObjectLock, Observed, Setting, TEMPORARY_RULE,
};
use crate::layout::TEMPORARY;
use crate::{Client, StorageError, error_code};

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
