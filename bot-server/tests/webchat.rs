//! The web chat page end to end in a real browser: Debian's headless Chromium, driven
//! over the DevTools protocol by `playwright-core` (`tests/webchat/chat.mjs`), against a
//! bot server on loopback with the real PostgreSQL. A person signs in with the keyboard,
//! picks the example bot, talks to it over the WebSocket, sees suggestions when the bot
//! is unsure and follows one with the keyboard; no console error and no CSP violation.
//! The screenshot is saved under the target directory.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::PathBuf;
use std::process::Command;

use generalbot_bot_server::auth::Role;
use support::{replica, secrets};

const PW: &str = "a long and secret passphrase";

fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/webchat")
}

/// Node, the driver and Chromium, or why not.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let node = support::which("node").ok_or("node not found (apt-get install nodejs)")?;
    let chromium =
        support::which("chromium").ok_or("chromium not found (apt-get install chromium)")?;
    if !script_dir().join("node_modules/playwright-core").exists() {
        return Err(
            "playwright-core is not installed: npm ci --prefix bot-server/tests/webchat".into(),
        );
    }
    Ok((node, chromium))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_chats_with_a_bot_in_chromium() {
    const TEST: &str = "a_person_chats_with_a_bot_in_chromium";
    let Ok((node, chromium)) = browser().map_err(|why| support::skip(TEST, &why)) else {
        return;
    };
    let Ok(pg) = support::Postgres::start().map_err(|why| support::skip(TEST, &why)) else {
        return;
    };
    let dir = secrets(&pg);
    let r = replica(&dir, &pg, None, false, &[]).await;
    r.state
        .auth
        .register("ana@example.com", PW, Role::User, false)
        .await
        .unwrap();
    let example =
        generalbot_bot_server::bots::parse_definition(generalbot_bot_server::bots::EXAMPLE)
            .unwrap();
    r.state
        .store
        .insert_bot("support", &serde_json::to_string(&example).unwrap())
        .await
        .unwrap();

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("webchat.png");
    let _ = std::fs::remove_file(&screenshot);
    let out = tokio::task::spawn_blocking({
        let (base, screenshot) = (format!("http://{}/", r.api), screenshot.clone());
        move || {
            Command::new(node)
                .arg(script_dir().join("chat.mjs"))
                .env("BASE_URL", base)
                .env("EMAIL", "ana@example.com")
                .env("PASSWORD", PW)
                .env("BOT", "support")
                .env("SCREENSHOT", &screenshot)
                .env("CHROMIUM", chromium)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| {
            panic!(
                "the driver said: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        out.status.success() && seen["errors"] == serde_json::json!([]),
        "{seen}"
    );
    assert_eq!(
        seen["unlabelled"],
        serde_json::json!([]),
        "every control has a label"
    );
    assert_eq!(
        seen["startFocused"], "start",
        "Tab from the bot list reaches Start"
    );
    assert_eq!(
        seen["welcome"],
        "What can I help you with: account, orders or something else?"
    );
    assert_eq!(seen["afterChoice"], "Ask me your question.");
    assert_eq!(seen["answer"], "Anything else? Just ask.");
    assert_eq!(
        seen["unsure"],
        "Sorry, I do not know that yet. A person will follow up."
    );
    let suggestions = seen["suggestions"].as_array().unwrap();
    assert!(
        suggestions.iter().any(|s| s == "How do I export my data?"),
        "{seen}"
    );
    assert!(
        seen["suggestionAnswer"]
            .as_str()
            .unwrap()
            .contains("Export my data"),
        "{seen}"
    );
    assert_eq!(seen["csp"], 0, "no inline script or style");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1_000);
    eprintln!("web chat: screenshot saved at {}", screenshot.display());
}
