//! The one way the operator writes an owned object: server-side apply under one field
//! manager, and only when the live object has drifted from what we want.

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
    if let Some(live) = &live {
        let want = to_json(desired)?;
        let have = to_json(live.as_ref())?;
        if drift::contains(&want, &have) {
            return Ok(Outcome::Unchanged);
        }
    }
    api.patch(
        &desired.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
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

fn to_json<T: Serialize>(obj: &T) -> Result<serde_json::Value> {
    serde_json::to_value(obj).map_err(|source| Error::Serialize {
        what: "object".to_owned(),
        source,
    })
}
