//! The operator's bucket check against a real S3 server (moto over TLS): the settings a
//! GeneralBot asks for are applied, read back and reported as `StorageEncryption`; a
//! setting changed by hand is corrected on the next check and said; a CA that did not
//! sign the server's certificate is reported, not trusted. Backups are judged from the
//! listing (`BackupsReady`).

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use generalbot_crds::v1alpha1::GeneralBotSpec;
use generalbot_operator::storage_settings::{Checked, desired, judge};
use generalbot_storage::bucket::{self, Setting};
use generalbot_storage::{AccessKeys, Endpoint, client, layout};
use generalbot_testkit::{Moto, TestPki, skip, temp_dir};

fn endpoint(moto: &Moto, ca: Vec<u8>) -> Endpoint {
    Endpoint {
        url: moto.endpoint(),
        region: "us-east-1".into(),
        keys: Some(AccessKeys {
            access_key_id: Moto::ACCESS_KEY.to_owned().into(),
            secret_access_key: Moto::SECRET_KEY.to_owned().into(),
        }),
        ca_pem: Some(ca),
    }
}

async fn check(s3: &generalbot_storage::Client, spec: &GeneralBotSpec, name: &str) -> Checked {
    match bucket::reconcile(s3, name, &desired(spec)).await {
        Ok((corrected, seen)) => Checked::Read { corrected, seen },
        Err(e) => Checked::Failed(e.to_string()),
    }
}

#[tokio::test]
async fn the_bucket_check_applies_reads_back_and_corrects() {
    const TEST: &str = "the_bucket_check_applies_reads_back_and_corrects";
    let Ok(moto) = Moto::start().map_err(|why| skip(TEST, &why)) else {
        return;
    };
    let ca = std::fs::read(&moto.ca).unwrap();
    let s3 = client(&endpoint(&moto, ca.clone())).unwrap();
    s3.create_bucket().bucket("bot-files").send().await.unwrap();
    let spec: GeneralBotSpec = serde_json::from_value(serde_json::json!({
        "services": {"postgres": {"host": "db", "peer": {"cidrs": ["10.0.0.0/8"]}}},
        "encryption": {"bucket": {"mode": "SSE-KMS", "kmsKeyId": "alias/generalbot"}, "temporaryFileRetentionDays": 14}
    }))
    .unwrap();
    let want = desired(&spec);

    // First check on a bare bucket: everything applied, then verified.
    let started = std::time::Instant::now();
    let first = check(&s3, &spec, "bot-files").await;
    let check_time = started.elapsed();
    let j = judge(&first, &want, "bot-files");
    assert_eq!((j.status, j.reason), ("True", "Verified"), "{}", j.message);
    assert!(
        j.message.contains("SSE-KMS (key alias/generalbot)")
            && j.message.contains("tmp/ expires after 14 d")
            && j.message.contains(
                "corrected: default encryption, versioning, lifecycle, public access block"
            ),
        "{}",
        j.message
    );
    // A steady bucket: read only, nothing corrected.
    let started = std::time::Instant::now();
    let steady = check(&s3, &spec, "bot-files").await;
    let steady_time = started.elapsed();
    let Checked::Read { corrected, .. } = &steady else {
        panic!("{steady:?}")
    };
    assert!(corrected.is_empty());
    // The reference: one request, as the bot server's first call to its bucket.
    let started = std::time::Instant::now();
    s3.head_bucket().bucket("bot-files").send().await.unwrap();
    let one = started.elapsed();
    eprintln!(
        "bucket check: first {:.1} ms, steady {:.1} ms vs one HeadBucket {:.1} ms ({:.1}x)",
        check_time.as_secs_f64() * 1e3,
        steady_time.as_secs_f64() * 1e3,
        one.as_secs_f64() * 1e3,
        steady_time.as_secs_f64() / one.as_secs_f64()
    );

    // Drift by hand: versioning suspended, public access block removed.
    s3.put_bucket_versioning()
        .bucket("bot-files")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.delete_public_access_block()
        .bucket("bot-files")
        .send()
        .await
        .unwrap();
    let fixed = check(&s3, &spec, "bot-files").await;
    let Checked::Read { corrected, .. } = &fixed else {
        panic!("{fixed:?}")
    };
    assert_eq!(
        corrected,
        &[Setting::Versioning, Setting::PublicAccessBlock]
    );
    let j = judge(&fixed, &want, "bot-files");
    assert_eq!(j.status, "True");
    assert!(
        j.message
            .ends_with("corrected: versioning, public access block"),
        "{}",
        j.message
    );

    // A CA that did not sign the server's certificate: reported, nothing trusted.
    let other = TestPki::generate(&temp_dir("gb-other-ca"));
    let wrong = client(&endpoint(&moto, std::fs::read(&other.ca).unwrap())).unwrap();
    let j = judge(&check(&wrong, &spec, "bot-files").await, &want, "bot-files");
    assert_eq!((j.status, j.reason), ("False", "Unreachable"));
    assert!(j.message.contains("GetBucketEncryption"), "{}", j.message);

    // Backups: judged from the listing.
    s3.put_object()
        .bucket("bot-files")
        .key(layout::backup_key(
            "2026-11-30T12:00:00Z".parse().unwrap(),
            "d1",
        ))
        .body(b"sealed".to_vec().into())
        .send()
        .await
        .unwrap();
    let all = layout::list_backups(&s3, "bot-files").await.unwrap();
    let seen = generalbot_operator::backups::Seen {
        newest: all.last().map(|b| b.at),
        since: "2026-11-01T00:00:00Z".parse().unwrap(),
        failed: None,
    };
    let j = generalbot_operator::backups::judge(
        "0 */12 * * *",
        &seen,
        "2026-11-30T13:00:00Z".parse().unwrap(),
    );
    assert_eq!((j.status, j.reason), ("True", "Current"));
    let j = generalbot_operator::backups::judge(
        "0 */12 * * *",
        &seen,
        "2026-12-01T03:00:00Z".parse().unwrap(),
    );
    assert_eq!((j.status, j.reason), ("False", "Overdue"));
}
