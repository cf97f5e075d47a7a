//! Bots end to end on two replicas over the real PostgreSQL and Redis: administrators
//! create bots (YAML), import knowledge bases (CSV) and are refused with messages that
//! point at the step or the line; users talk to bots over HTTP and over the WebSocket
//! (authenticated by its first message, Origin checked, invalid frames and rate abuse
//! disconnected and audited); state and messages are stored encrypted; an edit on one
//! replica reaches the other; bots from a mounted directory are loaded, written only
//! when they change, and cannot be changed through the API.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use generalbot_bot_server::auth::Role;
use support::{Replica, call, call_raw, replica, secrets};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const PW: &str = "a long and secret passphrase";

const ORDERS: &str = r#"
slug: orders
name: Orders
welcome: Welcome to orders.
fallback: I cannot help with that.
faq:
  - question: How long does delivery take?
    answer: Three working days.
    keywords: [delivery, shipping]
flow:
  steps:
    - id: kind
      ask: Billing or tracking?
      expect: choice
      choices: [billing, tracking]
      save_as: kind
    - id: route
      branch:
        - when: { var: kind, equals: billing }
          goto: mail
      otherwise: number
    - id: mail
      ask: Your email?
      expect: email
      save_as: email
    - id: billed
      say: We will write to {email}.
      next: done
    - id: number
      ask: Your order number?
      expect: number
      save_as: order
    - id: tracked
      say: Order {order} ships tomorrow.
    - id: done
      end: Bye.
"#;

async fn login(at: SocketAddr, email: &str) -> String {
    let r = call(
        at,
        "POST",
        "/api/auth/login",
        "198.51.100.7",
        None,
        Some(serde_json::json!({"email": email, "password": PW})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

fn texts(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn say(at: SocketAddr, token: &str, conv: &str, text: &str) -> serde_json::Value {
    let r = call(
        at,
        "POST",
        &format!("/api/conversations/{conv}/messages"),
        "198.51.100.7",
        Some(token),
        Some(serde_json::json!({ "text": text })),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["id"].is_string());
    r.body["replies"].clone()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(
    at: SocketAddr,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{at}/api/ws").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
}

async fn send(s: &mut Ws, v: serde_json::Value) {
    s.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next text message (pings are answered by the client library).
async fn next(s: &mut Ws) -> Option<Result<serde_json::Value, (u16, String)>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), s.next())
            .await
            .ok()??
        {
            Ok(Message::Text(t)) => return Some(Ok(serde_json::from_str(&t).unwrap())),
            Ok(Message::Close(Some(f))) => return Some(Err((f.code.into(), f.reason.to_string()))),
            Ok(Message::Close(None)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads until the connection closes; its close code.
async fn closed(s: &mut Ws) -> Option<u16> {
    while let Some(m) = next(s).await {
        if let Err((code, _)) = m {
            return Some(code);
        }
    }
    None
}

async fn audit_has(r: &Replica, detail: &str) -> bool {
    let rows = r.state.store.audit_page(0, 100_000).await.unwrap();
    rows.iter().any(|row| row.detail.contains(detail))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_over_http_and_websocket_on_two_replicas() {
    const TEST: &str = "bots_over_http_and_websocket_on_two_replicas";
    let Ok(pg) = support::Postgres::start().map_err(|why| support::skip(TEST, &why)) else {
        return;
    };
    let Ok(redis) = support::Redis::start().map_err(|why| support::skip(TEST, &why)) else {
        return;
    };
    let dir = secrets(&pg);
    let settings = [(
        generalbot_crds::contract::env::ALLOWED_ORIGINS,
        "https://chat.example.org".to_owned(),
    )];
    let a = replica(&dir, &pg, Some(&redis), false, &settings).await;
    let b = replica(&dir, &pg, Some(&redis), false, &settings).await;
    a.state
        .auth
        .register("admin@example.com", PW, Role::Admin, false)
        .await
        .unwrap();
    a.state
        .auth
        .register("ana@example.com", PW, Role::User, false)
        .await
        .unwrap();
    a.state
        .auth
        .register("bo@example.com", PW, Role::User, false)
        .await
        .unwrap();
    let admin = login(a.api, "admin@example.com").await;
    let ana = login(b.api, "ana@example.com").await;
    let bo = login(a.api, "bo@example.com").await;

    // Administrators only; bad definitions refused with the step or the line.
    let r = call_raw(a.api, "POST", "/api/bots", &ana, "application/yaml", ORDERS).await;
    assert_eq!(r.status, 403);
    let broken = ORDERS.replace("otherwise: number", "otherwise: nowhere");
    let r = call_raw(
        a.api,
        "POST",
        "/api/bots",
        &admin,
        "application/yaml",
        &broken,
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["error"],
        "flow step 2 (\"route\"): otherwise names \"nowhere\", which is not a step"
    );
    let r = call_raw(
        a.api,
        "POST",
        "/api/bots",
        &admin,
        "application/yaml",
        ORDERS,
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = call_raw(
        a.api,
        "POST",
        "/api/bots",
        &admin,
        "application/yaml",
        ORDERS,
    )
    .await;
    assert_eq!(r.status, 409);
    let r = call_raw(
        a.api,
        "PUT",
        "/api/bots/orders/faq",
        &admin,
        "text/csv",
        "question,answer,keywords\nWhere is my parcel?,Track it in your account.,parcel;track\nRefund?\n",
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["error"],
        "FAQ CSV line 3: 1 fields where the header has 3"
    );
    let r = call_raw(
        a.api,
        "PUT",
        "/api/bots/orders/faq",
        &admin,
        "text/csv",
        "question,answer,keywords\nHow long does delivery take?,Three working days.,delivery;shipping\nWhere is my parcel?,Track it in your account.,parcel;track\n",
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["faq_entries"], 2);

    // Users see it on the other replica and talk to it over HTTP.
    let list = call(b.api, "GET", "/api/bots", "198.51.100.7", Some(&ana), None).await;
    assert_eq!(list.body[0]["slug"], "orders");
    let conv = call(
        b.api,
        "POST",
        "/api/conversations",
        "198.51.100.7",
        Some(&ana),
        Some(serde_json::json!({"bot": "orders"})),
    )
    .await;
    assert_eq!(conv.status, 200, "{:?}", conv.body);
    assert_eq!(
        texts(&conv.body["replies"]),
        ["Welcome to orders.", "Billing or tracking?"]
    );
    let id = conv.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        texts(&say(a.api, &ana, &id, "BILLING").await),
        ["Your email?"]
    );
    assert_eq!(
        texts(&say(b.api, &ana, &id, "not-an-email").await),
        ["That does not look like an email address. Your email?"]
    );
    assert_eq!(
        texts(&say(a.api, &ana, &id, "ana@example.org").await),
        ["We will write to ana@example.org.", "Bye."]
    );
    assert_eq!(
        texts(&say(b.api, &ana, &id, "where is my parcel").await),
        ["Track it in your account."]
    );
    let unsure = say(a.api, &ana, &id, "parcel of penguins for the moon").await;
    assert_eq!(unsure[0]["text"], "I cannot help with that.");
    assert_eq!(unsure[0]["suggestions"][0], "Where is my parcel?");

    // The history is the owner's only; the database holds no plaintext.
    let path = format!("/api/conversations/{id}/messages");
    let h = call(a.api, "GET", &path, "198.51.100.7", Some(&ana), None).await;
    assert_eq!(h.body.as_array().unwrap().len(), 13, "{:?}", h.body);
    assert_eq!(h.body[2]["sender"], "user");
    assert_eq!(h.body[3]["sender"], "bot");
    let other = call(a.api, "GET", &path, "198.51.100.7", Some(&bo), None).await;
    assert_eq!(other.status, 404);
    let stored = pg.psql(
        &pg.database,
        &format!("SELECT state_enc FROM conversations WHERE id = '{id}'; SELECT body_enc FROM messages WHERE conversation_id = '{id}'"),
    );
    assert!(
        !stored.contains("ana@example.org") && !stored.contains("parcel"),
        "{stored}"
    );
    assert!(
        stored
            .lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.trim().starts_with("gb1.")),
        "{stored}"
    );

    // An edit made through one replica reaches the other within a second or so.
    let edited = ORDERS.replace("Welcome to orders.", "Orders desk, hello.");
    let r = call_raw(
        a.api,
        "PUT",
        "/api/bots/orders",
        &admin,
        "application/yaml",
        &edited,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let conv = call(
        b.api,
        "POST",
        "/api/conversations",
        "198.51.100.7",
        Some(&ana),
        Some(serde_json::json!({"bot": "orders"})),
    )
    .await;
    assert_eq!(texts(&conv.body["replies"])[0], "Orders desk, hello.");

    // The WebSocket: a foreign Origin is refused before the upgrade.
    assert!(ws(b.api, Some("https://evil.example")).await.is_err());
    assert!(audit_has(&b, "origin not allowed").await);
    // The first message must authenticate.
    let mut s = ws(b.api, Some("https://chat.example.org")).await.unwrap();
    send(
        &mut s,
        serde_json::json!({"type": "start", "bot": "orders"}),
    )
    .await;
    assert_eq!(closed(&mut s).await, Some(4401));
    // Authenticated, it talks like HTTP does.
    let mut s = ws(b.api, Some("https://chat.example.org")).await.unwrap();
    send(&mut s, serde_json::json!({"type": "auth", "token": ana})).await;
    assert_eq!(next(&mut s).await.unwrap().unwrap()["type"], "ready");
    send(
        &mut s,
        serde_json::json!({"type": "start", "bot": "orders"}),
    )
    .await;
    let started = next(&mut s).await.unwrap().unwrap();
    assert_eq!(started["type"], "started");
    let wid = started["conversation"].as_str().unwrap().to_owned();
    send(
        &mut s,
        serde_json::json!({"type": "say", "conversation": wid, "text": "tracking"}),
    )
    .await;
    assert_eq!(
        texts(&next(&mut s).await.unwrap().unwrap()["replies"]),
        ["Your order number?"]
    );
    send(
        &mut s,
        serde_json::json!({"type": "say", "conversation": wid, "text": "4711"}),
    )
    .await;
    assert_eq!(
        texts(&next(&mut s).await.unwrap().unwrap()["replies"]),
        ["Order 4711 ships tomorrow.", "Bye."]
    );
    // The history of the conversation started over HTTP.
    send(
        &mut s,
        serde_json::json!({"type": "history", "conversation": id}),
    )
    .await;
    assert_eq!(next(&mut s).await.unwrap().unwrap()["type"], "history");
    // Repeated invalid frames: disconnected, counted and audited.
    for _ in 0..5 {
        s.send(Message::Text("{not json".into())).await.unwrap();
    }
    assert_eq!(closed(&mut s).await, Some(1008));
    assert!(audit_has(&b, "repeated invalid frames").await);
    // Rate abuse: disconnected.
    let mut s = ws(a.api, None).await.unwrap();
    send(&mut s, serde_json::json!({"type": "auth", "token": bo})).await;
    assert_eq!(next(&mut s).await.unwrap().unwrap()["type"], "ready");
    for _ in 0..40 {
        let _ = s
            .send(Message::Text(
                serde_json::json!({"type": "history", "conversation": "x"})
                    .to_string()
                    .into(),
            ))
            .await;
    }
    assert_eq!(closed(&mut s).await, Some(1008));
    assert!(audit_has(&a, "message rate abuse").await);
    let drops = a.state.metrics.render();
    assert!(
        drops.contains("botserver_websocket_drops_total 1"),
        "{drops}"
    );

    // Bots from a mounted directory: loaded, written only when changed, read-only here.
    let bots_dir = support::temp_dir("gb-bot-dir");
    std::fs::write(
        bots_dir.join("help.yaml"),
        "slug: help\nwelcome: Hi.\nfallback: No idea.\nfaq_csv: help.csv\n",
    )
    .unwrap();
    std::fs::write(
        bots_dir.join("help.csv"),
        "question,answer\nAre you open?,Always.\n",
    )
    .unwrap();
    let load = generalbot_bot_server::bootstrap::load_bot_dir;
    assert_eq!(load(&a.state, &bots_dir).await.unwrap(), (1, 0));
    assert_eq!(
        load(&b.state, &bots_dir).await.unwrap(),
        (0, 0),
        "an unchanged directory writes nothing"
    );
    let r = call_raw(
        a.api,
        "DELETE",
        "/api/bots/help",
        &admin,
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, 409);
    let conv = call(
        a.api,
        "POST",
        "/api/conversations",
        "198.51.100.7",
        Some(&bo),
        Some(serde_json::json!({"bot": "help"})),
    )
    .await;
    let hid = conv.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        texts(&say(a.api, &bo, &hid, "are you open").await),
        ["Always."]
    );
    std::fs::write(
        bots_dir.join("bad.yaml"),
        "slug: bad\nwelcome: Hi.\nfallback: No.\nflow:\n  steps:\n    - id: a\n      goto: b\n",
    )
    .unwrap();
    let e = load(&a.state, &bots_dir).await.unwrap_err().to_string();
    assert_eq!(
        e,
        "bot file bad.yaml: flow step 1 (\"a\"): goto names \"b\", which is not a step"
    );
    std::fs::remove_file(bots_dir.join("bad.yaml")).unwrap();
    std::fs::remove_file(bots_dir.join("help.yaml")).unwrap();
    assert_eq!(load(&a.state, &bots_dir).await.unwrap(), (0, 1));

    // GDPR: Ana exports everything held about her, decrypted for her, and nothing secret.
    let export = call(
        a.api,
        "GET",
        "/api/me/export",
        "198.51.100.7",
        Some(&ana),
        None,
    )
    .await;
    assert_eq!(export.status, 200, "{:?}", export.body);
    assert!(export.head.contains("content-disposition: attachment"));
    assert_eq!(export.body["account"]["email"], "ana@example.com");
    let convs = export.body["conversations"].as_array().unwrap();
    let first = convs.iter().find(|c| c["id"] == id.as_str()).unwrap();
    assert_eq!(first["state"]["vars"]["email"], "ana@example.org");
    assert_eq!(first["messages"].as_array().unwrap().len(), 13);
    let text = export.body.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("totp_enc") && !text.contains("gb1."),
        "{text}"
    );
    assert!(audit_has(&a, "gdpr_export").await);
    // She erases her account: everything of it goes, the audit record names no person.
    let wrong = call(
        a.api,
        "DELETE",
        "/api/me",
        "198.51.100.7",
        Some(&ana),
        Some(serde_json::json!({"confirm": "yes"})),
    )
    .await;
    assert_eq!(wrong.status, 400);
    let erased = call(
        a.api,
        "DELETE",
        "/api/me",
        "198.51.100.7",
        Some(&ana),
        Some(serde_json::json!({"confirm": "erase my account"})),
    )
    .await;
    assert_eq!(erased.status, 204, "{:?}", erased.body);
    let after = call(
        b.api,
        "GET",
        "/api/conversations",
        "198.51.100.7",
        Some(&ana),
        None,
    )
    .await;
    assert_eq!(after.status, 401);
    let left = pg.psql(&pg.database, "SELECT count(*) FROM conversations c JOIN users u ON u.id = c.user_id WHERE u.role = 'user'");
    let ana_rows = pg.psql(
        &pg.database,
        &format!("SELECT (SELECT count(*) FROM messages WHERE conversation_id = '{id}') + (SELECT count(*) FROM conversations WHERE id = '{id}')"),
    );
    assert_eq!(ana_rows.trim(), "0", "{left}");
    let rows = a.state.store.audit_page(0, 100_000).await.unwrap();
    let erasure = rows
        .iter()
        .find(|r| r.detail.contains("gdpr_erasure"))
        .unwrap();
    assert!(
        !erasure.detail.contains("ana") && !erasure.actor.contains("ana"),
        "{}",
        erasure.detail
    );

    // Deleting is audited; the bot is gone for new conversations.
    let r = call_raw(
        a.api,
        "DELETE",
        "/api/bots/orders",
        &admin,
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert!(audit_has(&a, "\"action\":\"delete\"").await);
    drop((a, b));
}
