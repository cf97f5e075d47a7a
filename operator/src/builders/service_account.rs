//! The bot's ServiceAccount. The bot server never talks to the Kubernetes API, so it gets
//! no token at all.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::BuildContext;
use super::meta::object_meta;

/// The ServiceAccount, with token automount off.
pub fn service_account(ctx: &BuildContext<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: object_meta(ctx, ctx.name),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
