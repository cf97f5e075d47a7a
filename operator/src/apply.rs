//! The one way the operator writes an owned object: server-side apply of the whole
//! desired object under one field manager, and only when it is needed: the desired
//! object changed since the last apply (a hash of it is recorded on the object, so a
//! setting removed from the spec is removed from the object too), or the live object
//! drifted from it in a field we set ([`crate::drift`]).

use std::fmt::Debug;

use generalbot_crds::contract::labels;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::drift;
use crate::{Error, Result};

/// The server-side apply field manager for everything the operator writes.
pub const FIELD_MANAGER: &str = labels::MANAGER;

/// Annotation recording the hash of the desired object last applied.
pub const DESIRED_HASH: &str = "generalbots.io/desired-hash";

/// Whether an apply wrote anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The live object already held everything we want: no request was made.
    Unchanged,
    /// The object did not exist and was created.
    Created,
    /// The object existed and was changed back to what we want.
    Updated,
}

/// The live object of the same name and namespace as `desired`, from the cache.
pub fn cached<K>(store: &Store<K>, desired: &K) -> Option<std::sync::Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut key = ObjectRef::new(&desired.name_any());
    if let Some(ns) = desired.namespace() {
        key = key.within(&ns);
    }
    store.get(&key)
}

/// Applies `desired` unless the cached live object already holds all of it.
pub async fn apply_if_drifted<K>(api: &Api<K>, store: &Store<K>, desired: &K) -> Result<Outcome>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + 'static,
{
    let live = cached(store, desired);
    let want = to_json(desired)?;
    let hash = hash_of(&want);
    if let Some(live) = &live {
        let recorded = live.annotations().get(DESIRED_HASH) == Some(&hash);
        if recorded && drift::contains(&want, &to_json(live.as_ref())?) {
            return Ok(Outcome::Unchanged);
        }
    }
    let mut desired = desired.clone();
    desired
        .annotations_mut()
        .insert(DESIRED_HASH.to_owned(), hash);
    api.patch(
        &desired.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&desired),
    )
    .await
    .map_err(|source| Error::Apply {
        kind: K::kind(&()).into_owned(),
        namespace: desired.namespace().unwrap_or_default(),
        name: desired.name_any(),
        source: Box::new(source),
    })?;
    Ok(if live.is_some() {
        Outcome::Updated
    } else {
        Outcome::Created
    })
}

/// A short, stable hash of a desired object (serde_json keeps map keys sorted).
pub fn hash_of(desired: &serde_json::Value) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(desired.to_string().as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn to_json<T: Serialize>(obj: &T) -> Result<serde_json::Value> {
    serde_json::to_value(obj).map_err(|source| Error::Serialize {
        what: "object".to_owned(),
        source,
    })
}
