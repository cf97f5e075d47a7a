//! Helpers for the cross-crate checks: where the repository and the operator binary
//! are, how to find an external tool, and how a test says that it skipped.
//!
//! Layout of `tests/tests/`:
//! - `crd.rs`: the committed CRD is current; the examples fit its schema and CEL rules;
//!   every GeneralBot of the invalid corpus (`tests/invalid/`, [`corpus`]) is refused by
//!   `render` naming its field; mutated examples get the same verdict from `render` and
//!   from the schema and CEL rules.
//! - `e2e_invalid.rs`: the API server (or the operator) refuses the same corpus, naming
//!   the same field.
//! - `manifests.rs`: rendered objects pass the Kubernetes schemas and checkov.
//! - `helm.rs`: the chart lints, renders to valid objects and passes checkov.
//! - `e2e_operator.rs`: the end-to-end suite against the cluster `KUBECONFIG` names.
//! - `e2e_rotation.rs`: the bot server run as the kubelet would run its pod, while
//!   every key and the CA rotate under traffic.
//!
//! Modules: [`e2e`] (a run of the operator in a namespace of its own), [`kubelet`] (a
//! pod of a Deployment run as a local process, its Secrets mounted as the kubelet does).

// Test support only: a helper that cannot do its job fails the test that called it.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod corpus;
pub mod e2e;
pub mod https;
pub mod kubelet;
pub mod third_party;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Says, past the test harness's output capture, that a test skipped and why.
pub fn skip(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Says something past the output capture (figures a test measured, for example).
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The path of an executable called `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The `generalbot-operator` binary of this build, built first if it is missing.
pub fn operator_bin() -> PathBuf {
    workspace_bin("generalbot-operator", "generalbot-operator")
}

/// The `kubectl-generalbot` plugin of this build, built first if it is missing.
pub fn plugin_bin() -> PathBuf {
    workspace_bin("generalbot-operator", "kubectl-generalbot")
}

/// The `bot-server` binary of this build, built first if it is missing.
pub fn bot_server_bin() -> PathBuf {
    workspace_bin("generalbot-bot-server", "bot-server")
}

fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = profile_dir.join(bin);
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let release = profile_dir.ends_with("release");
        let status = Command::new(cargo)
            .args(["build", "-p", package, "--bin", bin])
            .args(release.then_some("--release"))
            .current_dir(root())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "building {bin} failed");
    }
    path
}

/// Runs the operator binary with `args` and returns its output.
pub fn operator(args: &[&str]) -> Output {
    Command::new(operator_bin())
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running generalbot-operator {args:?}: {e}"))
}

/// Renders an example into a fresh file under `dir` and returns its path.
pub fn render_example(example: &str, dir: &Path) -> PathBuf {
    let path = root().join("examples").join(example);
    let out = operator(&["render", "-f", path.to_str().unwrap_or_default()]);
    assert!(
        out.status.success(),
        "render {example} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.join(example);
    std::fs::write(&file, &out.stdout).unwrap_or_else(|e| panic!("writing {file:?}: {e}"));
    file
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates one whose name starts with `prefix`.
    pub fn new(prefix: &str) -> Self {
        let mut bytes = [0u8; 6];
        let _ = getrandom_fill(&mut bytes);
        let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("{prefix}-{suffix}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {dir:?}: {e}"));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn getrandom_fill(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// Runs a command and returns (success, stdout + stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, format!("could not run {cmd:?}: {e}")),
    }
}
