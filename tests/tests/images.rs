//! The container images: both Dockerfiles pass checkov's Dockerfile checks with none
//! skipped; each builds the image the product refers to (the operator's default bot
//! server image, the chart's operator image); each final stage is distroless (no shell)
//! and runs as the fixed numeric user the pods use; and the HEALTHCHECK each declares
//! works (the binaries answer `healthcheck`).

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Stdio};
use std::time::Duration;

use generalbot_crds::contract;
use generalbot_crds::v1alpha1::DEFAULT_IMAGE;
use generalbot_testkit::{free_port, skip, which};
use generalbot_tests::{bot_server_bin, operator_bin, root};

fn dockerfile(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// The image a Dockerfile says it builds (`docker build … -t REF .` in its header).
fn built_ref(text: &str) -> String {
    text.lines()
        .find_map(|l| l.split(" -t ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

#[test]
fn each_dockerfile_builds_the_image_the_product_names_hardened() {
    let bot = dockerfile("bot-server/Dockerfile");
    assert_eq!(
        built_ref(&bot),
        DEFAULT_IMAGE,
        "the operator's default image"
    );
    let values: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("charts/generalbot-operator/values.yaml")).unwrap(),
    )
    .unwrap();
    let chart_image = format!(
        "{}:{}",
        values["image"]["repository"].as_str().unwrap(),
        values["image"]["tag"].as_str().unwrap()
    );
    let operator = dockerfile("operator/Dockerfile");
    assert_eq!(
        built_ref(&operator),
        chart_image,
        "the chart's operator image"
    );
    for (text, user) in [
        (
            &bot,
            format!("{}:{}", contract::RUN_AS_USER, contract::RUN_AS_GROUP),
        ),
        (&operator, "10002:10002".to_owned()),
    ] {
        let last_from = text.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
        assert!(last_from.contains("distroless"), "no shell: {last_from}");
        assert!(
            text.contains(&format!("\nUSER {user}\n")),
            "numeric user {user}"
        );
        assert!(text.contains("HEALTHCHECK"), "a HEALTHCHECK");
    }
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for entry in ["target/", "**/node_modules/", ".git/"] {
        assert!(
            ignore.lines().any(|l| l == entry),
            ".dockerignore lacks {entry}"
        );
    }
}

#[test]
fn both_dockerfiles_pass_checkov() {
    let Some(checkov) = which("checkov") else {
        return skip("images", "checkov is not installed (pip install checkov)");
    };
    for file in ["bot-server/Dockerfile", "operator/Dockerfile"] {
        let out = Command::new(&checkov)
            .arg("-f")
            .arg(root().join(file))
            .args([
                "--framework",
                "dockerfile",
                "--skip-download",
                "--compact",
                "--quiet",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && text.contains("Failed checks: 0")
                && text.contains("Skipped checks: 0"),
            "{file}: {text}"
        );
    }
}

#[test]
fn the_healthchecks_answer_for_a_running_binary_and_fail_without_one() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let check = |bin: &std::path::Path, args: &[&str]| {
        Command::new(bin)
            .args(args)
            .env("BOTSERVER_METRICS_LISTEN", &listen)
            .status()
            .unwrap()
            .success()
    };
    assert!(
        !check(&bot_server_bin(), &["healthcheck"]),
        "nothing listens yet"
    );
    let mut server = Command::new(bot_server_bin())
        .arg("--dev")
        .env("BOTSERVER_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("BOTSERVER_METRICS_LISTEN", &listen)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if check(&bot_server_bin(), &["healthcheck"]) {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The operator's probe speaks the same protocol to the same path.
    let operator_ok = check(&operator_bin(), &["healthcheck", "--addr", &listen]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(healthy, "the bot server's healthcheck");
    assert!(operator_ok, "the operator's healthcheck");
}
