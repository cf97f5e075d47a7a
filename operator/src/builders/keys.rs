//! The key-ring Secret as first created: one ring per file of
//! [`generalbot_crds::contract::key_files`], each with one fresh key, and the ops token.
//! Created once; after that only rotation ([`crate::keyrings`]) changes it, so a
//! reconcile never replaces a key that data still needs.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use zeroize::Zeroize;

use super::BuildContext;
use super::meta::kept_meta;
use crate::Result;
use crate::keyrings::{DEFAULT_PROPAGATION, plan, ring_specs};

/// Name of the key-ring Secret of the GeneralBot called `name`.
pub fn key_secret_name(name: &str) -> String {
    format!("{name}-keys")
}

/// A generated Secret whose key material is wiped from memory when it is dropped.
pub struct GeneratedSecret(pub Secret);

impl Drop for GeneratedSecret {
    fn drop(&mut self) {
        for value in self.0.data.iter_mut().flat_map(|d| d.values_mut()) {
            value.0.zeroize();
        }
    }
}

impl std::fmt::Debug for GeneratedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedSecret")
            .field("name", &self.0.metadata.name)
            .field(
                "keys",
                &self.0.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()),
            )
            .finish()
    }
}

/// Builds the key-ring Secret with a fresh key in each ring, created at `now`.
pub fn key_secret(ctx: &BuildContext<'_>, now: Timestamp) -> Result<GeneratedSecret> {
    let mut secret = Secret {
        metadata: kept_meta(ctx, key_secret_name(ctx.name)),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    };
    let specs = ring_specs(ctx.gb, DEFAULT_PROPAGATION);
    let planned = plan(ctx.gb, &secret, &specs, now, true, None)?;
    if let Some(mut changes) = planned.write {
        secret.data = Some(std::mem::take(&mut changes.data));
        secret.metadata.annotations = Some(std::mem::take(&mut changes.annotations));
    }
    Ok(GeneratedSecret(secret))
}
