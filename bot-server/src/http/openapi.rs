//! The OpenAPI description of the whole API, generated from the handlers' `#[utoipa::path]`
//! attributes and the types' `ToSchema`, through the very router that serves them (so a
//! route cannot be served without being described), at `/openapi.json`.

use std::sync::{Arc, OnceLock};

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

/// The description's header.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "GeneralBot bot server",
        description = "Chat bots with the General Bots security guide wired in: sign-in, bots, chat over HTTP and WebSocket, GDPR, administration. Every response carries the security headers; rate limits apply per address and per user.",
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Local sign-in, tokens, TOTP"),
        (name = "directory", description = "Sign-in through the directory service (OpenID Connect)"),
        (name = "bots", description = "Bots, their knowledge bases and flows"),
        (name = "chat", description = "Conversations over HTTP and the WebSocket"),
        (name = "gdpr", description = "A user's export and erasure"),
        (name = "admin", description = "Administrators only"),
        (name = "operator", description = "For the operator, with its token"),
        (name = "web chat", description = "The page"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ops_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route of the API with its description.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(super::auth::router())
        .merge(super::oidc::router())
        .merge(super::messages::router())
        .merge(super::attachments::router())
        .merge(super::bots::router())
        .merge(super::me::router())
        .merge(super::ws::router())
        .merge(super::web::router())
        .merge(super::admin::router())
        .routes(routes!(crate::ops::key_usage))
        .routes(routes!(crate::ops::audit_head))
        .routes(routes!(openapi_json))
}

/// The description as JSON, built once.
pub fn description() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let (_, api) = routes().split_for_parts();
        api.to_json().unwrap_or_default()
    })
}

/// This description.
#[utoipa::path(get, path = "/openapi.json", tag = "auth",
    responses((status = 200, description = "the OpenAPI 3.1 description of this API", body = serde_json::Value)))]
async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], description())
}
