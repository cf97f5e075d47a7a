//! The bucket's settings against a real S3 server (moto over TLS): applied, read back,
//! drift corrected, other lifecycle rules kept; backups listed and pruned by name.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use generalbot_storage::bucket::{self, Desired, Encryption, LockMode, ObjectLock, Setting};
use generalbot_storage::{AccessKeys, Endpoint, client, layout};
use generalbot_testkit::Moto;

fn endpoint(moto: &Moto, ca: Option<Vec<u8>>) -> Endpoint {
    Endpoint {
        url: moto.endpoint(),
        region: "us-east-1".into(),
        keys: Some(AccessKeys {
            access_key_id: Moto::ACCESS_KEY.to_owned().into(),
            secret_access_key: Moto::SECRET_KEY.to_owned().into(),
        }),
        ca_pem: ca,
    }
}

fn want() -> Desired {
    Desired {
        encryption: Encryption::SseS3,
        versioning: true,
        temporary_retention_days: 30,
        object_lock: None,
    }
}

#[tokio::test]
async fn settings_are_applied_read_back_and_drift_is_corrected() {
    let moto = match Moto::start() {
        Ok(m) => m,
        Err(e) => return generalbot_testkit::skip("bucket settings", &e),
    };
    let s3 = client(&endpoint(&moto, Some(std::fs::read(&moto.ca).unwrap()))).unwrap();
    s3.create_bucket().bucket("bots").send().await.unwrap();
    // Someone else's lifecycle rule, which must survive ours.
    bucket::apply(&s3, "bots", &want(), &[Setting::Lifecycle])
        .await
        .unwrap();
    let before = bucket::read(&s3, "bots").await.unwrap();
    assert_eq!(
        bucket::drift(&want(), &before),
        [
            Setting::Encryption,
            Setting::Versioning,
            Setting::PublicAccessBlock
        ]
    );

    let (fixed, seen) = bucket::reconcile(&s3, "bots", &want()).await.unwrap();
    assert_eq!(
        fixed,
        [
            Setting::Encryption,
            Setting::Versioning,
            Setting::PublicAccessBlock
        ]
    );
    assert!(bucket::drift(&want(), &seen).is_empty(), "{seen:?}");
    assert_eq!(
        bucket::describe(&seen),
        "SSE-S3 (AES256), versioning on, tmp/ expires after 30 d, public access blocked"
    );

    // Drift by hand: another algorithm, the public access block removed, a shorter rule.
    let mut kms = want();
    kms.encryption = Encryption::SseKms {
        key_id: "arn:aws:kms:us-east-1:123456789012:key/test".into(),
    };
    bucket::apply(&s3, "bots", &kms, &[Setting::Encryption])
        .await
        .unwrap();
    s3.delete_public_access_block()
        .bucket("bots")
        .send()
        .await
        .unwrap();
    let mut short = want();
    short.temporary_retention_days = 2;
    bucket::apply(&s3, "bots", &short, &[Setting::Lifecycle])
        .await
        .unwrap();
    let drifted = bucket::read(&s3, "bots").await.unwrap();
    assert_eq!(drifted.encryption, Some(kms.encryption.clone()));
    assert_eq!(drifted.temporary_rule_days, Some(2));
    let (fixed, seen) = bucket::reconcile(&s3, "bots", &want()).await.unwrap();
    assert_eq!(
        fixed,
        [
            Setting::Encryption,
            Setting::Lifecycle,
            Setting::PublicAccessBlock
        ]
    );
    assert!(bucket::drift(&want(), &seen).is_empty(), "{seen:?}");

    // SSE-KMS with a key id, asked for, is applied and read back as such.
    let (_, seen) = bucket::reconcile(&s3, "bots", &kms).await.unwrap();
    assert_eq!(seen.encryption, Some(kms.encryption.clone()));
    assert!(bucket::describe(&seen).starts_with("SSE-KMS (key arn:aws:kms"));
}

#[tokio::test]
async fn object_lock_where_asked_and_a_wrong_ca_is_refused() {
    let moto = match Moto::start() {
        Ok(m) => m,
        Err(e) => return generalbot_testkit::skip("object lock", &e),
    };
    let s3 = client(&endpoint(&moto, Some(std::fs::read(&moto.ca).unwrap()))).unwrap();
    s3.create_bucket()
        .bucket("locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let mut want = want();
    want.object_lock = Some(ObjectLock {
        mode: LockMode::Governance,
        days: 7,
    });
    let (fixed, seen) = bucket::reconcile(&s3, "locked", &want).await.unwrap();
    assert!(fixed.contains(&Setting::ObjectLock), "{fixed:?}");
    assert_eq!(seen.object_lock, want.object_lock);
    assert!(bucket::describe(&seen).contains("object lock Governance 7 d"));

    // Another CA: the connection is refused, and the error names the call and bucket.
    let other = generalbot_testkit::TestPki::generate(&generalbot_testkit::temp_dir("gb-other-ca"));
    let wrong = client(&endpoint(&moto, Some(std::fs::read(&other.ca).unwrap()))).unwrap();
    let err = bucket::read(&wrong, "locked")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GetBucketEncryption") && err.contains("\"locked\""),
        "{err}"
    );
}

#[tokio::test]
async fn backups_are_listed_by_name_and_the_newest_is_never_pruned() {
    let moto = match Moto::start() {
        Ok(m) => m,
        Err(e) => return generalbot_testkit::skip("backup listing", &e),
    };
    let s3 = client(&endpoint(&moto, Some(std::fs::read(&moto.ca).unwrap()))).unwrap();
    s3.create_bucket()
        .bucket("backups-test")
        .send()
        .await
        .unwrap();
    for (key, body) in [
        (
            layout::backup_key("2020-01-01T00:00:00Z".parse().unwrap(), "k1"),
            "old",
        ),
        (
            layout::backup_key("2026-11-29T12:00:00Z".parse().unwrap(), "k2"),
            "newer",
        ),
        ("backups/readme.txt".to_owned(), "not a backup"),
    ] {
        s3.put_object()
            .bucket("backups-test")
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let all = layout::list_backups(&s3, "backups-test").await.unwrap();
    assert_eq!(
        all.iter()
            .map(|b| (b.key_id.as_str(), b.size))
            .collect::<Vec<_>>(),
        [("k1", 3), ("k2", 5)]
    );
    let now = "2026-11-30T00:00:00Z".parse().unwrap();
    let gone: Vec<_> = layout::expired(&all, now, 30)
        .into_iter()
        .map(|b| b.key.clone())
        .collect();
    assert_eq!(gone, ["backups/20200101T000000Z-k1.gbbak"]);
}
