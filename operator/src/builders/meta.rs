//! Names, labels, and owner references shared by every owned object.

use std::collections::BTreeMap;

use generalbot_crds::GeneralBot;
use generalbot_crds::contract::labels;
use generalbot_crds::v1alpha1::KeysDeletionPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use super::BuildContext;

/// The uid written into owner references when the GeneralBot has none yet (offline
/// `render`); the API server always sets a real one.
pub const OWNER_PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Labels that select this bot's pods. Stable for the life of the GeneralBot, since a
/// Deployment's selector cannot change.
pub fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_owned(), labels::APP_NAME.to_owned()),
        (labels::INSTANCE.to_owned(), name.to_owned()),
    ])
}

/// Labels on every owned object: the selector labels, the component and the manager.
pub fn object_labels(name: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(name);
    l.insert(
        labels::COMPONENT.to_owned(),
        labels::COMPONENT_SERVER.to_owned(),
    );
    l.insert(labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned());
    l
}

/// The controller owner reference to the GeneralBot, so that deleting it deletes
/// everything it owns.
pub fn owner_reference(gb: &GeneralBot) -> OwnerReference {
    OwnerReference {
        api_version: GeneralBot::api_version(&()).into_owned(),
        kind: GeneralBot::kind(&()).into_owned(),
        name: gb.metadata.name.clone().unwrap_or_default(),
        uid: gb
            .metadata
            .uid
            .clone()
            .unwrap_or_else(|| OWNER_PLACEHOLDER_UID.to_owned()),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The owner references of a Secret whose loss would lose data (key rings, CA): the
/// controller reference when the keys' deletion policy is `Delete`, none under `Retain`,
/// so the garbage collector keeps it when the GeneralBot goes.
pub fn kept_owner_references(gb: &GeneralBot) -> Vec<OwnerReference> {
    match gb.spec.security.keys.deletion_policy {
        KeysDeletionPolicy::Delete => vec![owner_reference(gb)],
        KeysDeletionPolicy::Retain => Vec::new(),
    }
}

/// Metadata of a Secret whose loss would lose data (key rings, CA): labelled like an
/// owned object, owned only as [`kept_owner_references`] says.
pub fn kept_meta(ctx: &BuildContext<'_>, name: impl Into<String>) -> ObjectMeta {
    let refs = kept_owner_references(ctx.gb);
    ObjectMeta {
        owner_references: (!refs.is_empty()).then_some(refs),
        ..object_meta(ctx, name)
    }
}

/// Metadata of an owned object called `name`.
pub fn object_meta(ctx: &BuildContext<'_>, name: impl Into<String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ctx.namespace.to_owned()),
        labels: Some(object_labels(ctx.name)),
        owner_references: Some(vec![owner_reference(ctx.gb)]),
        ..ObjectMeta::default()
    }
}
