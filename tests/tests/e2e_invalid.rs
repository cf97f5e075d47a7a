//! The invalid corpus (`tests/invalid/`) against a real API server: each GeneralBot that
//! `render` refuses is refused by the API server too, on a server-side dry run and on a
//! real apply, naming the same field; what the API server cannot check (label keys, whose
//! CEL would exceed its cost budget) it accepts, and the operator refuses at reconcile
//! with `Ready=False`, reason `InvalidSpec`, naming the field and applying nothing.
//! Runs against the cluster `KUBECONFIG` names, in a namespace of its own.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use generalbot_crds::GeneralBot;
use generalbot_tests::corpus::{self, Case};
use generalbot_tests::e2e::{cluster_or_skip, condition, eventually, start};
use generalbot_tests::note;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};

const MANAGER: &str = "e2e-invalid";

/// The case as the object a user would apply, in `ns`, renamed when `rename` says so.
fn object(case: &Case, ns: &str, rename: Option<&str>) -> (String, DynamicObject) {
    let mut doc: serde_json::Value = serde_saphyr::from_str(&case.text).unwrap();
    doc["metadata"]["namespace"] = ns.into();
    if let Some(name) = rename {
        doc["metadata"]["name"] = name.into();
    }
    let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
    (name, serde_json::from_value(doc).unwrap())
}

/// Applies `obj` (server-side, strict field validation), on a dry run or for real;
/// returns the API server's refusal, if any.
async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    obj: &DynamicObject,
    dry: bool,
) -> Option<String> {
    let mut params = PatchParams::apply(MANAGER).validation_strict();
    if dry {
        params = params.dry_run();
    }
    match api.patch(name, &params, &Patch::Apply(obj)).await {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => Some(status.message),
        Err(other) => panic!("applying {name}: {other}"),
    }
}

async fn refused_by_the_api_server(api: &Api<DynamicObject>, case: &Case, ns: &str) {
    let (name, obj) = object(case, ns, None);
    for dry in [true, false] {
        let refusal = apply(api, &name, &obj, dry).await.unwrap_or_else(|| {
            panic!(
                "{:?} was accepted by the API server (dry run: {dry})",
                case.path
            )
        });
        assert!(
            refusal.contains(&case.field),
            "{:?}: the API server's refusal does not name {}: {refusal}",
            case.path,
            case.field
        );
    }
}

async fn refused_by_the_operator(
    client: &Client,
    api: &Api<DynamicObject>,
    case: &Case,
    ns: &str,
    i: usize,
) {
    let rename = format!("invalid-{i}");
    let (name, obj) = object(case, ns, Some(&rename));
    assert_eq!(
        apply(api, &name, &obj, true).await,
        None,
        "{:?}: the API server cannot check this one; if it now does, mark the case refused-by api-server",
        case.path
    );
    assert_eq!(apply(api, &name, &obj, false).await, None);
    let bots: Api<GeneralBot> = Api::namespaced(client.clone(), ns);
    let (_, _, message) = eventually(&format!("InvalidSpec for {name}"), || {
        let bots = bots.clone();
        let name = name.clone();
        async move {
            let gb = bots.get(&name).await.ok()?;
            condition(&gb, "Ready").filter(|(s, r, _)| s == "False" && r == "InvalidSpec")
        }
    })
    .await;
    assert!(
        message.contains(&case.field),
        "{:?}: the operator's refusal does not name {}: {message}",
        case.path,
        case.field
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    assert!(
        deployments.get_opt(&name).await.unwrap().is_none(),
        "{name}: nothing half-applied"
    );
}

#[tokio::test]
async fn e2e_invalid_generalbots_are_refused_naming_the_field_render_names() {
    let Some(client) = cluster_or_skip().await else {
        return;
    };
    let run = start(client.clone(), 3, &[]).await;
    let ns = run.ns.clone();
    note(&format!("e2e invalid: namespace {ns}"));
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("generalbots.io", "v1alpha1", "GeneralBot"),
        "generalbots",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let cases = corpus::cases();
    let (mut by_api, mut by_operator) = (0, 0);
    for (i, case) in cases.iter().enumerate() {
        if case.api_server_refuses {
            refused_by_the_api_server(&api, case, &ns).await;
            by_api += 1;
        } else {
            refused_by_the_operator(&client, &api, case, &ns, i).await;
            by_operator += 1;
        }
    }
    note(&format!(
        "e2e invalid: of {} invalid GeneralBots, the API server refused {by_api} (dry run and apply) and the operator {by_operator} at reconcile, each naming the field render names",
        cases.len()
    ));
    drop(run);
}
