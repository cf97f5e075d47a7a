//! Checks each bot's audit chain ([`crate::audit_chain`]) at most once per
//! [`Context::audit_every`]: asks the bot server for its head and for the row recorded
//! in the status, judges, and sets `AuditChainIntact` and `status.auditChain`. A chain
//! found truncated, rewritten or unsigned is a Warning Event. Between checks the status
//! keeps what the last check said, so a steady bot costs no write.

use generalbot_crds::GeneralBot;
use generalbot_crds::GeneralBotStatus;
use generalbot_crds::contract::{AUDIT_HEAD_PATH, AuditHead};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;

use super::Context;
use crate::audit_chain::{self, ACCEPT_AUDIT_HEAD, CONDITION, Judgement};
use crate::bot_api::{BotApi, get_json};
use crate::builders::key_secret_name;

/// A check's judgement, or `None` when no check was due; and when the next one is.
pub async fn check(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    now: Timestamp,
) -> (Option<Judgement>, Timestamp) {
    let next = match super::due(&ctx.audit_checked, gb, ctx.audit_every, now) {
        Ok(next) => next,
        Err(next) => return (None, next),
    };
    let recorded = gb.status.as_ref().and_then(|s| s.audit_chain.as_ref());
    let head = fetch(ctx, gb, namespace, recorded.map(|r| r.seq)).await;
    let judgement = audit_chain::judge(
        recorded,
        head.as_ref(),
        gb.annotations().get(ACCEPT_AUDIT_HEAD).map(String::as_str),
        now,
    );
    let was_finding = gb
        .status
        .as_ref()
        .and_then(|s| crate::status::find(s, CONDITION))
        .is_some_and(|c| c.status == "False");
    if judgement.is_finding() && !was_finding {
        tracing::warn!(reason = judgement.reason, message = %judgement.message, "audit chain");
        ctx.publish(
            gb,
            EventType::Warning,
            judgement.reason,
            judgement.message.clone(),
        )
        .await;
    }
    (Some(judgement), next)
}

async fn fetch(
    ctx: &Context,
    gb: &GeneralBot,
    namespace: &str,
    at: Option<i64>,
) -> Option<AuditHead> {
    let name = gb.name_any();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let keys = secrets.get_opt(&key_secret_name(&name)).await.ok()??;
    let token = super::keys::ops_token(&keys)?;
    let trust = super::keys::trust_bundle(&secrets, &name).await;
    let path = match at {
        Some(seq) => format!("{AUDIT_HEAD_PATH}?at={seq}"),
        None => AUDIT_HEAD_PATH.to_owned(),
    };
    get_json(
        BotApi {
            name: &name,
            namespace,
            token: &token,
            trust_pem: &trust,
            connect_to: &ctx.connect_to,
        },
        &path,
    )
    .await
}

/// Puts a judgement into the status.
pub fn apply(status: &mut GeneralBotStatus, j: Judgement, generation: Option<i64>, now: &Time) {
    super::set_checked_condition(
        status,
        CONDITION,
        (j.status, j.reason, j.message),
        generation,
        now,
    );
    if let Some(r) = j.record {
        status.audit_chain = Some(r);
    }
}
