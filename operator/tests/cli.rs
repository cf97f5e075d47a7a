//! The command line: `crd` and `render` work with no cluster, and `run` explains what it
//! needs when there is none.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

fn operator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_generalbot-operator"))
}

#[test]
fn crd_prints_the_definition() {
    let out = operator().arg("crd").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition")
    );
    assert!(text.contains("shortNames:\n    - gb") || text.contains("- gb"));
}

#[test]
fn run_without_a_cluster_says_what_it_needs() {
    let out = operator()
        .args(["run", "--metrics-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.contains("KUBECONFIG"), "{logs}");
}
