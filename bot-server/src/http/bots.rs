//! `/api/bots`: every signed-in user lists bots and reads one; administrators create,
//! replace and delete them (YAML or JSON bodies) and import a knowledge base as CSV.
//! Every change is audited. Bots from the mounted directory change only there.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extractor::{AdminUser, AuthUser};
use crate::audit::AuditKind;
use crate::bots::{self, BotDefinition, faq};
use crate::store::{SOURCE_DIRECTORY, StoreError};

/// A bot as listed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BotSummary {
    /// Its slug.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// What it says first.
    pub welcome: String,
    /// FAQ entries.
    pub faq_entries: usize,
    /// Whether it has a flow.
    pub flow: bool,
    /// `api` or `directory`.
    pub source: String,
}

/// The routes.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, replace, remove))
        .routes(routes!(import_faq))
}

fn summary(d: &BotDefinition, source: String) -> BotSummary {
    BotSummary {
        slug: d.slug.clone(),
        name: d.name.clone().unwrap_or_else(|| d.slug.clone()),
        welcome: d.welcome.clone(),
        faq_entries: d.faq.len(),
        flow: d.flow.is_some(),
        source,
    }
}

fn stored(json: &str) -> Result<BotDefinition, ApiError> {
    serde_json::from_str(json).map_err(|_| ApiError::Invalid("a stored bot is unreadable".into()))
}

/// Every bot (any signed-in user).
#[utoipa::path(get, path = "/api/bots", operation_id = "list_bots", tag = "bots", security(("bearer" = [])),
    responses((status = 200, description = "success", body = Vec<BotSummary>)))]
async fn list(
    State(s): State<Arc<AppState>>,
    AuthUser(_): AuthUser,
) -> Result<Json<Vec<BotSummary>>, ApiError> {
    let rows = s.store.bots().await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(summary(&stored(&r.definition)?, r.source));
    }
    Ok(Json(out))
}

/// A bot's definition (administrators).
#[utoipa::path(get, path = "/api/bots/{slug}", operation_id = "read_bot", tag = "bots", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the bot")),
    responses((status = 200, description = "success", body = BotDefinition), (status = 404, description = "no such bot")))]
async fn read(
    State(s): State<Arc<AppState>>,
    AdminUser(_): AdminUser,
    Path(slug): Path<String>,
) -> Result<Json<BotDefinition>, ApiError> {
    let row = s.store.bot(&slug).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(stored(&row.definition)?))
}

/// Reads a body as a bot (JSON is YAML) and checks it on the blocking pool.
async fn checked(body: &str) -> Result<(BotDefinition, String), ApiError> {
    let def = bots::parse_definition(body).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let json = serde_json::to_string(&def).map_err(|e| ApiError::Invalid(e.to_string()))?;
    bots::registry::compile(def.clone())
        .await
        .map_err(|_| ApiError::BadRequest("checking the bot was cancelled"))?
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    Ok((def, json))
}

async fn audit_change(s: &AppState, admin: &str, action: &str, slug: &str) {
    s.auth
        .audit
        .record(
            AuditKind::AdminAction,
            admin,
            "success",
            serde_json::json!({"bot": slug, "action": action}),
        )
        .await;
}

/// Creates a bot from YAML or JSON (administrators; audited).
#[utoipa::path(post, path = "/api/bots", operation_id = "create_bot", tag = "bots", security(("bearer" = [])),
    request_body(content((BotDefinition = "application/yaml"), (BotDefinition = "application/json"))),
    responses((status = 201, description = "created", body = BotSummary), (status = 409, description = "the slug is taken"),
        (status = 422, description = "refused: the message names the field, the step or the line")))]
async fn create(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    body: String,
) -> Result<(StatusCode, Json<BotSummary>), ApiError> {
    let (def, json) = checked(&body).await?;
    match s.store.insert_bot(&def.slug, &json).await {
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::Conflict("a bot with this slug already exists"));
        }
        other => other?,
    }
    audit_change(&s, &p.user_id, "create", &def.slug).await;
    Ok((StatusCode::CREATED, Json(summary(&def, "api".into()))))
}

async fn directory_guard(s: &AppState, slug: &str) -> Result<(), ApiError> {
    match s.store.bot(slug).await? {
        None => Err(ApiError::NotFound),
        Some(r) if r.source == SOURCE_DIRECTORY => Err(ApiError::Conflict(
            "this bot comes from the mounted bot directory (spec.bots): change its ConfigMap",
        )),
        Some(_) => Ok(()),
    }
}

/// Replaces a bot (administrators; audited; not a bot from the mounted directory).
#[utoipa::path(put, path = "/api/bots/{slug}", operation_id = "replace_bot", tag = "bots", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the bot")),
    request_body(content((BotDefinition = "application/yaml"), (BotDefinition = "application/json"))),
    responses((status = 200, description = "success", body = BotSummary), (status = 404, description = "no such bot"),
        (status = 409, description = "a bot of the mounted directory"), (status = 422, description = "refused, naming what to fix")))]
async fn replace(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    Path(slug): Path<String>,
    body: String,
) -> Result<Json<BotSummary>, ApiError> {
    directory_guard(&s, &slug).await?;
    let (def, json) = checked(&body).await?;
    if def.slug != slug {
        return Err(ApiError::Invalid(format!(
            "the body's slug {:?} is not the URL's {slug:?}",
            def.slug
        )));
    }
    if !s.store.update_bot(&slug, &json).await? {
        return Err(ApiError::NotFound);
    }
    s.bots.forget(&slug).await;
    audit_change(&s, &p.user_id, "replace", &slug).await;
    Ok(Json(summary(&def, "api".into())))
}

/// Deletes a bot (administrators; audited; not a bot from the mounted directory).
#[utoipa::path(delete, path = "/api/bots/{slug}", operation_id = "delete_bot", tag = "bots", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the bot")),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such bot"),
        (status = 409, description = "a bot of the mounted directory")))]
async fn remove(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    directory_guard(&s, &slug).await?;
    if !s.store.delete_bot(&slug).await? {
        return Err(ApiError::NotFound);
    }
    s.bots.forget(&slug).await;
    audit_change(&s, &p.user_id, "delete", &slug).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a bot's knowledge base with a CSV (`question`, `answer`, optional
/// `keywords`), administrators; audited.
#[utoipa::path(put, path = "/api/bots/{slug}/faq", tag = "bots", security(("bearer" = [])),
    params(("slug" = String, Path, description = "the bot")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "success", body = BotSummary), (status = 422, description = "refused, naming the line")))]
async fn import_faq(
    State(s): State<Arc<AppState>>,
    AdminUser(p): AdminUser,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<BotSummary>, ApiError> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    if !csv {
        return Err(ApiError::BadRequest("send the knowledge base as text/csv"));
    }
    directory_guard(&s, &slug).await?;
    let row = s.store.bot(&slug).await?.ok_or(ApiError::NotFound)?;
    let mut def = stored(&row.definition)?;
    def.faq = faq::parse_csv(&body).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let (def, json) = checked(&serde_json::to_string(&def).unwrap_or_default()).await?;
    if !s.store.update_bot(&slug, &json).await? {
        return Err(ApiError::NotFound);
    }
    s.bots.forget(&slug).await;
    audit_change(&s, &p.user_id, "import_faq", &slug).await;
    Ok(Json(summary(&def, "api".into())))
}
