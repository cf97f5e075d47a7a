//! The web chat page: one HTML page, its script and its style, compiled into the binary
//! (no CDN, nothing fetched elsewhere), served under the strict CSP of every response:
//! no inline script or style, so the page needs none.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

const INDEX: &str = include_str!("../../web/index.html");
const SCRIPT: &str = include_str!("../../web/chat.js");
const STYLE: &str = include_str!("../../web/chat.css");
const ICON: &str = include_str!("../../web/favicon.svg");

/// The routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/chat.js",
            get(|| async { page("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/chat.css",
            get(|| async { page("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/favicon.svg",
            get(|| async { page("image/svg+xml", ICON) }),
        )
}

fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}
