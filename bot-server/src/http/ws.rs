//! `/api/ws`: chat over a WebSocket. The upgrade is refused when the browser's `Origin`
//! is neither the page's own nor in the allow-list. Nothing is served before the first
//! message authenticates (`{"type":"auth","token":…}`, never a token in the URL), within
//! [`AUTH_WITHIN`]. Messages are capped at 10 MiB; the server pings every 30 s, checks
//! the session is still live at each ping, and drops a peer silent for two intervals;
//! each connection may send [`RATE`] messages per second (burst [`BURST`]). Repeated
//! invalid frames or rate abuse close the connection, counted and audited.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::{AppState, PeerAddr, chat};
use crate::audit::AuditKind;
use crate::auth::service::Principal;

/// The largest message, as the guide says.
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// Time allowed for the first (authenticating) message.
pub const AUTH_WITHIN: Duration = Duration::from_secs(10);
/// Ping interval; a peer silent for two is dropped.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// Messages per second per connection.
pub const RATE: f64 = 5.0;
/// Burst above the rate.
pub const BURST: f64 = 10.0;
/// Invalid frames tolerated before the connection is closed.
pub const MAX_INVALID: u32 = 5;
/// Messages over the rate tolerated before the connection is closed.
pub const MAX_OVER_RATE: u32 = 10;

/// Close code: the first message did not authenticate (like HTTP 401).
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// Close code: the connection behaved suspiciously.
pub const CLOSE_POLICY: u16 = 1008;

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

/// What a client sends.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ClientMessage {
    Auth { token: zeroize::Zeroizing<String> },
    Start { bot: String },
    Say { conversation: String, text: String },
    History { conversation: String },
}

/// Whether a browser's `Origin` may open a socket: the page's own host, or the
/// allow-list. A client that sends no `Origin` is not a browser (no cross-site risk).
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return !headers.contains_key(header::ORIGIN);
    };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

/// Chat over a WebSocket: the first message authenticates (`{"type":"auth","token":…}`),
/// then `start`, `say` and `history` messages; see the README.
#[utoipa::path(get, path = "/api/ws", tag = "chat",
    responses((status = 101, description = "switched to the WebSocket protocol"),
        (status = 403, description = "the browser's Origin is not allowed")))]
async fn upgrade(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !origin_allowed(&headers, &s.policy.allowed_origins) {
        s.auth
            .audit
            .record(
                AuditKind::SecurityViolation,
                &peer.0.ip().to_string(),
                "denied",
                serde_json::json!({"websocket": "origin not allowed"}),
            )
            .await;
        return Err(ApiError::Auth(crate::auth::service::AuthError::Forbidden));
    }
    let ip = peer.0.ip();
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            Connection::new(s, socket, ip).run().await;
        }))
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * RATE;
        self.tokens = (self.tokens + refill).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Connection {
    s: Arc<AppState>,
    socket: WebSocket,
    ip: IpAddr,
    invalid: u32,
    over_rate: u32,
    bucket: Bucket,
}

fn json(v: &serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

fn error_text(e: &ApiError) -> String {
    match e {
        ApiError::NotFound => "not found".into(),
        ApiError::BadRequest(m) | ApiError::Conflict(m) => (*m).into(),
        ApiError::Invalid(m) => m.clone(),
        ApiError::Auth(_) => "not allowed".into(),
        _ => "internal error".into(),
    }
}

impl Connection {
    fn new(s: Arc<AppState>, socket: WebSocket, ip: IpAddr) -> Self {
        Self {
            s,
            socket,
            ip,
            invalid: 0,
            over_rate: 0,
            bucket: Bucket {
                tokens: BURST,
                at: Instant::now(),
            },
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            })))
            .await;
    }

    /// The first message must authenticate.
    async fn authenticate(&mut self) -> Option<(Principal, zeroize::Zeroizing<String>)> {
        let first = tokio::time::timeout(AUTH_WITHIN, self.socket.recv()).await;
        let token = match first {
            Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<ClientMessage>(&t) {
                Ok(ClientMessage::Auth { token }) => Some(token),
                _ => None,
            },
            _ => None,
        };
        let principal = match &token {
            Some(t) => self.s.auth.authenticate(t).await.ok(),
            None => None,
        };
        match (principal, token) {
            (Some(p), Some(t)) => {
                let _ = self
                    .socket
                    .send(json(
                        &serde_json::json!({"type": "ready", "role": p.role.as_str()}),
                    ))
                    .await;
                Some((p, t))
            }
            _ => {
                self.s
                    .auth
                    .audit
                    .record(
                        AuditKind::AuthAttempt,
                        &self.ip.to_string(),
                        "failure",
                        serde_json::json!({"websocket": "first message did not authenticate"}),
                    )
                    .await;
                self.close(CLOSE_UNAUTHENTICATED, "authenticate first")
                    .await;
                None
            }
        }
    }

    async fn drop_suspicious(&mut self, user: &str, why: &'static str) {
        self.s.metrics.websocket_drops.inc();
        self.s
            .auth
            .audit
            .record(
                AuditKind::SecurityViolation,
                user,
                "disconnected",
                serde_json::json!({"websocket": why, "ip": self.ip.to_string()}),
            )
            .await;
        self.close(CLOSE_POLICY, why).await;
    }

    async fn run(mut self) {
        let Some((principal, token)) = self.authenticate().await else {
            return;
        };
        let user = principal.user_id;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if last_heard.elapsed() > PING_EVERY * 2 {
                        self.close(CLOSE_POLICY, "no answer to ping").await;
                        return;
                    }
                    if self.s.auth.authenticate(&token).await.is_err() {
                        let _ = self.socket.send(json(&serde_json::json!({"type": "error", "error": "session ended: sign in again"}))).await;
                        self.close(CLOSE_UNAUTHENTICATED, "session ended").await;
                        return;
                    }
                    if self.socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                msg = self.socket.recv() => {
                    let Some(Ok(msg)) = msg else { return };
                    last_heard = Instant::now();
                    match msg {
                        Message::Text(t) => {
                            if !self.bucket.take() {
                                self.over_rate += 1;
                                if self.over_rate > MAX_OVER_RATE {
                                    self.drop_suspicious(&user, "message rate abuse").await;
                                    return;
                                }
                                let _ = self.socket.send(json(&serde_json::json!({"type": "error", "error": "slow down"}))).await;
                                continue;
                            }
                            match serde_json::from_str::<ClientMessage>(&t) {
                                Ok(m) => {
                                    let reply = handle(&self.s, &user, m).await;
                                    if self.socket.send(json(&reply)).await.is_err() {
                                        return;
                                    }
                                }
                                Err(_) => {
                                    if !self.invalid_frame(&user).await {
                                        return;
                                    }
                                }
                            }
                        }
                        Message::Binary(_) => {
                            if !self.invalid_frame(&user).await {
                                return;
                            }
                        }
                        Message::Close(_) => return,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
            }
        }
    }

    /// Counts an invalid frame; false once the connection was closed for it.
    async fn invalid_frame(&mut self, user: &str) -> bool {
        self.invalid += 1;
        if self.invalid >= MAX_INVALID {
            self.drop_suspicious(user, "repeated invalid frames").await;
            return false;
        }
        let _ = self
            .socket
            .send(json(&serde_json::json!({"type": "error", "error": "invalid message: send JSON with a type of start, say or history"})))
            .await;
        true
    }
}

/// Answers one client message.
async fn handle(s: &AppState, user: &str, m: ClientMessage) -> serde_json::Value {
    let out = match m {
        ClientMessage::Auth { .. } => Err(ApiError::BadRequest("already authenticated")),
        ClientMessage::Start { bot } => chat::start(s, user, Some(&bot)).await.map(|(id, replies)| {
            serde_json::json!({"type": "started", "conversation": id, "replies": replies})
        }),
        ClientMessage::Say { conversation, text } => chat::say(s, user, &conversation, &text)
            .await
            .map(|(id, replies)| {
                serde_json::json!({"type": "replies", "conversation": conversation, "message": id, "replies": replies})
            }),
        ClientMessage::History { conversation } => {
            chat::history(s, user, &conversation).await.map(|messages| {
                serde_json::json!({"type": "history", "conversation": conversation, "messages": messages})
            })
        }
    };
    out.unwrap_or_else(|e| serde_json::json!({"type": "error", "error": error_text(&e)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn origins_are_checked() {
        let allowed = vec!["https://chat.example.org".to_owned()];
        assert!(origin_allowed(&headers(None, "bot:8080"), &allowed));
        assert!(origin_allowed(
            &headers(Some("https://chat.example.org"), "bot:8080"),
            &allowed
        ));
        assert!(origin_allowed(
            &headers(Some("http://bot:8080"), "bot:8080"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "bot:8080"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("null"), "bot:8080"),
            &allowed
        ));
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let mut b = Bucket {
            tokens: BURST,
            at: Instant::now(),
        };
        let burst = (0..100).take_while(|_| b.take()).count();
        assert_eq!(burst, BURST as usize);
    }
}
