//! The web chat page: one HTML page, its script and its style, compiled into the binary
//! (no CDN, nothing fetched elsewhere), served under the strict CSP of every response:
//! no inline script or style, so the page needs none.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

const INDEX: &str = include_str!("../../web/index.html");
const SCRIPT: &str = include_str!("../../web/chat.js");
const STYLE: &str = include_str!("../../web/chat.css");
const ICON: &str = include_str!("../../web/favicon.svg");

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(script))
        .routes(routes!(style))
        .routes(routes!(icon))
}

fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// The web chat page.
#[utoipa::path(get, path = "/", tag = "web chat",
    responses((status = 200, description = "the file", content_type = "text/html", body = String)))]
async fn index() -> impl IntoResponse {
    page("text/html; charset=utf-8", INDEX)
}

/// Its script.
#[utoipa::path(get, path = "/chat.js", tag = "web chat",
    responses((status = 200, description = "the file", content_type = "text/javascript", body = String)))]
async fn script() -> impl IntoResponse {
    page("text/javascript; charset=utf-8", SCRIPT)
}

/// Its style.
#[utoipa::path(get, path = "/chat.css", tag = "web chat",
    responses((status = 200, description = "the file", content_type = "text/css", body = String)))]
async fn style() -> impl IntoResponse {
    page("text/css; charset=utf-8", STYLE)
}

/// Its icon.
#[utoipa::path(get, path = "/favicon.svg", tag = "web chat",
    responses((status = 200, description = "the file", content_type = "image/svg+xml", body = String)))]
async fn icon() -> impl IntoResponse {
    page("image/svg+xml", ICON)
}
