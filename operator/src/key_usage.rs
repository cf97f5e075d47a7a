//! Asks a bot server how many stored records are still under each key id (the
//! contract's [`KEY_USAGE_PATH`]), so the operator retires a data, field or HMAC key only
//! when nothing needs it. Any failure is "unknown", which keeps the key.

use generalbot_crds::contract::{KEY_USAGE_PATH, KeyUsageReport};

use crate::bot_api::{BotApi, get_json};
use crate::tls_client::ConnectTo;

/// The report of the bot `name` in `namespace` ([`crate::bot_api`]); `None` when there is
/// none.
pub async fn fetch(
    name: &str,
    namespace: &str,
    token: &str,
    trust_pem: &[u8],
    connect_to: &ConnectTo,
) -> Option<KeyUsageReport> {
    get_json(
        BotApi {
            name,
            namespace,
            token,
            trust_pem,
            connect_to,
        },
        KEY_USAGE_PATH,
    )
    .await
}
