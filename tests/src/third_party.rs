//! The real CRDs of the projects whose kinds the operator writes for a GeneralBot: the
//! Prometheus Operator's `PrometheusRule` and `ServiceMonitor` and the Gateway API's
//! `HTTPRoute`, read from their Go modules (downloaded once through the module proxy,
//! pinned), so the end-to-end suite has the API server check our objects against the
//! upstream schemas.

// Test support only: a helper that cannot do its job fails the test that called it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::e2e::{MANAGER, established};

/// Each module, its pinned version and the CRD files taken from it.
const SOURCES: [(&str, &str, &[&str]); 2] = [
    (
        "github.com/prometheus-operator/prometheus-operator",
        "v0.81.0",
        &[
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        ],
    ),
    (
        "sigs.k8s.io/gateway-api",
        "v1.4.1",
        &["config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"],
    ),
];

/// Where `go mod download` put a module, or why it could not.
fn module_dir(module: &str, version: &str) -> Result<PathBuf, String> {
    let out = Command::new("go")
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .env("GOFLAGS", "-mod=mod")
        .output()
        .map_err(|e| format!("running go: {e}"))?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("go mod download {module}@{version}: {e}"))?;
    doc["Dir"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| format!("go mod download {module}@{version}: {}", doc["Error"]))
}

/// The CRDs, parsed.
pub fn crds() -> Result<Vec<CustomResourceDefinition>, String> {
    let mut out = Vec::new();
    for (module, version, files) in SOURCES {
        let dir = module_dir(module, version)?;
        for file in files {
            let text = std::fs::read_to_string(dir.join(file))
                .map_err(|e| format!("reading {file} of {module}: {e}"))?;
            out.push(serde_saphyr::from_str(&text).map_err(|e| format!("{file}: {e}"))?);
        }
    }
    Ok(out)
}

/// Installs those the cluster lacks and waits until they are served; returns the names
/// it installed (to remove after the run).
pub async fn install(client: &Client) -> Result<Vec<String>, String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut installed = Vec::new();
    for crd in crds()? {
        let name = crd.metadata.name.clone().unwrap_or_default();
        if api
            .get_opt(&name)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            continue;
        }
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(|e| format!("installing {name}: {e}"))?;
        installed.push(name);
    }
    for name in &installed {
        established(&api, name).await;
    }
    Ok(installed)
}
