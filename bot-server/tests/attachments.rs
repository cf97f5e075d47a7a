//! Attachments on real services: PostgreSQL (TLS), and the files in a private local
//! directory or in an S3 bucket (moto, TLS). A file is checked against its declared
//! type, sealed before it is stored (no plaintext on disk or in the bucket), served to
//! its owner only, limited in size, swept when it expires, counted against its data key
//! in the key-usage report, listed in the owner's export and erased with the account.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::os::unix::fs::PermissionsExt as _;

use generalbot_bot_server::auth::Role;
use generalbot_bot_server::objects::attachments;
use generalbot_crds::contract::env;

const PW: &str = "a long and secret passphrase";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89 the secret picture";

async fn sign_in(r: &support::Replica, email: &str) -> String {
    r.state
        .auth
        .register(email, PW, Role::User, false)
        .await
        .unwrap();
    let reply = support::call(
        r.api,
        "POST",
        "/api/auth/login",
        "10.0.0.1",
        None,
        Some(serde_json::json!({"email": email, "password": PW})),
    )
    .await;
    reply.body["access_token"].as_str().unwrap().to_owned()
}

async fn conversation(r: &support::Replica, token: &str) -> String {
    let c = support::call(
        r.api,
        "POST",
        "/api/conversations",
        "10.0.0.2",
        Some(token),
        None,
    )
    .await;
    c.body["id"].as_str().unwrap().to_owned()
}

/// Reads a stored file as it is at rest, wherever it lives.
type Raw = Box<dyn Fn(String) -> futures::future::BoxFuture<'static, Option<Vec<u8>>>>;

/// Everything but where the files live: upload, checks, owner only, export, erasure.
async fn exercise(r: &support::Replica, raw: Raw) {
    let alice = sign_in(r, "alice@example.com").await;
    let bob = sign_in(r, "bob@example.com").await;
    let conv = conversation(r, &alice).await;
    let up = |token: String, path: String, ct: &'static str, body: Vec<u8>| {
        let api = r.api;
        async move { support::call_bytes(api, "POST", &path, &token, ct, &body).await }
    };
    let path = format!("/api/conversations/{conv}/attachments?name=holiday%20photo.png");
    let (status, _, body) = up(alice.clone(), path.clone(), "image/png", PNG.to_vec()).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = info["id"].as_str().unwrap().to_owned();
    assert_eq!(info["contentType"], "image/png");
    assert_eq!(info["name"], "holiday photo.png");
    assert_eq!(info["size"], PNG.len());
    let days = (info["expiresAt"].as_i64().unwrap() - info["createdAt"].as_i64().unwrap()) / 86_400;
    assert_eq!(days, 30);

    // Stored sealed, under its id: neither the bytes nor the name appear.
    let stored = raw(attachments::temporary_key(&id))
        .await
        .expect("stored under its id");
    assert!(stored.starts_with(b"GBS1"));
    assert!(!stored.windows(10).any(|w| w == b"the secret"));
    assert!(!String::from_utf8_lossy(&stored).contains("holiday"));

    // Its owner reads it back, as a download of its own type; nobody else sees it.
    let (status, head, got) = support::call_bytes(
        r.api,
        "GET",
        &format!("/api/attachments/{id}"),
        &alice,
        "text/plain",
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got, PNG);
    assert!(
        head.contains("content-type: image/png")
            && head.contains("content-disposition: attachment"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let (status, _, _) = support::call_bytes(
        r.api,
        "GET",
        &format!("/api/attachments/{id}"),
        &bob,
        "text/plain",
        b"",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = up(bob.clone(), path.clone(), "image/png", PNG.to_vec()).await;
    assert_eq!(status, 404, "bob may not attach to alice's conversation");

    // Types: declared and true, or refused with what to send.
    let (status, _, body) = up(alice.clone(), path.clone(), "image/jpeg", PNG.to_vec()).await;
    assert_eq!(status, 415);
    assert!(String::from_utf8_lossy(&body).contains("is not image/jpeg"));
    let (status, _, body) = up(
        alice.clone(),
        path.clone(),
        "text/html",
        b"<script>".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    assert!(String::from_utf8_lossy(&body).contains("not accepted"));
    let (status, _, _) = up(
        alice.clone(),
        path.clone(),
        "text/plain",
        "notes ✓".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 201);
    // Larger than the upload limit (set to 64 KiB for this test).
    let (status, _, _) = up(
        alice.clone(),
        path.clone(),
        "text/plain",
        vec![b'a'; 70 * 1024],
    )
    .await;
    assert_eq!(status, 413);
    // An id that tries to leave the directory is just an unknown id.
    let (status, _, _) = support::call_bytes(
        r.api,
        "GET",
        "/api/attachments/..%2F..%2Fetc%2Fpasswd",
        &alice,
        "text/plain",
        b"",
    )
    .await;
    assert_eq!(status, 404);

    // The data key that sealed them is counted in the key-usage report.
    let keys = r.state.keys.current();
    let usage =
        generalbot_bot_server::key_usage::report(&r.state.store, &r.state.files, &keys, false)
            .await
            .unwrap();
    assert_eq!(usage.rings["data"].get("d1"), Some(&2), "{usage:?}");

    // Export lists them (decrypted name); erasure removes rows and files.
    let export = support::call(
        r.api,
        "GET",
        "/api/me/export",
        "10.0.0.2",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(
        export.body["attachments"][0]["name"], "holiday photo.png",
        "{:?}",
        export.body
    );
    assert_eq!(export.body["attachments"].as_array().unwrap().len(), 2);
    let erased = support::call(
        r.api,
        "DELETE",
        "/api/me",
        "10.0.0.2",
        Some(&alice),
        Some(serde_json::json!({"confirm": "erase my account"})),
    )
    .await;
    assert_eq!(erased.status, 204);
    assert!(
        raw(attachments::temporary_key(&id)).await.is_none(),
        "the file outlived the account"
    );

    // Expiry: a file past the retention is swept, file and row.
    let bob_conv = conversation(r, &bob).await;
    let (status, _, body) = up(
        bob.clone(),
        format!("/api/conversations/{bob_conv}/attachments"),
        "application/json",
        br#"{"a": 1}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 201);
    let bob_file: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let bob_id = bob_file["id"].as_str().unwrap().to_owned();
    let later = bob_file["expiresAt"].as_i64().unwrap() + 1;
    assert_eq!(attachments::sweep(&r.state, later - 2).await.unwrap(), 0);
    assert_eq!(attachments::sweep(&r.state, later).await.unwrap(), 1);
    assert!(raw(attachments::temporary_key(&bob_id)).await.is_none());
    let (status, _, _) = support::call_bytes(
        r.api,
        "GET",
        &format!("/api/attachments/{bob_id}"),
        &bob,
        "text/plain",
        b"",
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn attachments_in_a_private_local_directory() {
    let pg = match support::Postgres::start() {
        Ok(pg) => pg,
        Err(why) => return support::skip("attachments, local", &why),
    };
    let dir = support::secrets(&pg);
    let files = support::temp_dir("gb-files").join("files");
    let r = support::replica(
        &dir,
        &pg,
        None,
        false,
        &[
            (env::FILES_DIR, files.to_str().unwrap().to_owned()),
            (env::MAX_UPLOAD_SIZE, (64 * 1024).to_string()),
        ],
    )
    .await;
    let root = files.clone();
    exercise(
        &r,
        Box::new(move |key| {
            let got = std::fs::read(root.join(key)).ok();
            Box::pin(async move { got })
        }),
    )
    .await;
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(files.join("tmp")), 0o700);
    assert_eq!(mode(files.join("tmp/attachments")), 0o700);
    // The one file left (alice's second was erased with her; bob's swept): none.
    let left: Vec<_> = std::fs::read_dir(files.join("tmp/attachments"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn attachments_in_a_bucket() {
    let pg = match support::Postgres::start() {
        Ok(pg) => pg,
        Err(why) => return support::skip("attachments, bucket", &why),
    };
    let moto = match support::Moto::start() {
        Ok(m) => m,
        Err(why) => return support::skip("attachments, bucket", &why),
    };
    let dir = support::secrets(&pg);
    let mut settings = support::storage_settings(&dir, &moto, "bot-files");
    settings.push((env::MAX_UPLOAD_SIZE, (64 * 1024).to_string()));
    let r = support::replica(&dir, &pg, None, false, &settings).await;
    let generalbot_bot_server::objects::files::Files::Bucket { client, bucket } =
        r.state.files.clone()
    else {
        panic!("object storage is configured: files go to the bucket")
    };
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    exercise(
        &r,
        Box::new(move |key| {
            let (client, bucket) = (client.clone(), bucket.clone());
            Box::pin(async move {
                let out = client
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .ok()?;
                Some(out.body.collect().await.ok()?.into_bytes().to_vec())
            })
        }),
    )
    .await;
}
