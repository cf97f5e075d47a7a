//! A stand-in kubelet for one pod of a Deployment. No container runs behind the
//! simulated node, so the end-to-end suite runs the pod's program as a local process,
//! fed the way the kubelet feeds a container:
//!
//! - the environment resolved from the pod template (plain values; Secret and ConfigMap
//!   references read through the API);
//! - each Secret volume written under a local root with the kubelet's atomic layout: a
//!   timestamped directory of files, a `..data` symlink to it swapped by `rename`, and
//!   each key a symlink into `..data`, so a reader never sees half an update; re-synced
//!   whenever the Secret changes; projected ConfigMap volumes the same way, every key of
//!   each ConfigMap in one directory; emptyDir volumes as empty directories;
//! - paths under a mount mapped to the local root, listen addresses to free loopback
//!   ports, and the hosts of declared services to the loopback addresses the test gives.

// Test support only: a helper that cannot do its job fails the test that called it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

use std::time::Duration;

use generalbot_crds::contract::env;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret};
use kube::{Api, Client};

use crate::TempDir;

mod volumes;

use volumes::{SecretVolume, Source};
pub use volumes::{Volumes, write_atomically};

/// One pod of a Deployment, run as a local process.
pub struct LocalPod {
    root: TempDir,
    bin: PathBuf,
    env: BTreeMap<String, String>,
    /// The init containers' arguments and environments, in order.
    init: Vec<(Vec<String>, BTreeMap<String, String>)>,
    /// Where the pod's API listens.
    pub api: SocketAddr,
    /// Where its metrics, health and key-usage port listens.
    pub metrics: SocketAddr,
    /// Its Secret volumes.
    pub volumes: Volumes,
    child: Option<Child>,
}

/// A loopback address nothing listens on right now.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A container's environment as the kubelet resolves it (Secret and ConfigMap
/// references read through the API), with paths under a mount mapped under `root` and
/// the hosts of declared services mapped to `hosts`.
async fn environment(
    client: &Client,
    namespace: &str,
    container: &Container,
    mounts: &BTreeMap<String, String>,
    root: &Path,
    hosts: &BTreeMap<String, SocketAddr>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in container.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => {
                if let Some(r) = &from.secret_key_ref {
                    let s = Api::<Secret>::namespaced(client.clone(), namespace)
                        .get(&r.name)
                        .await
                        .unwrap();
                    String::from_utf8(s.data.unwrap()[&r.key].0.clone()).unwrap()
                } else if let Some(r) = &from.config_map_key_ref {
                    let c = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                        .get(&r.name)
                        .await
                        .unwrap();
                    c.data.unwrap()[&r.key].clone()
                } else {
                    panic!(
                        "env {} comes from a source this kubelet does not read",
                        e.name
                    )
                }
            }
            (None, None) => String::new(),
        };
        env.insert(e.name.clone(), value);
    }
    for value in env.values_mut() {
        // The longest mount that holds the path (`/a/b-c` is not under `/a/b`).
        let under = |m: &&String| {
            value.as_str() == m.as_str()
                || value
                    .strip_prefix(m.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if let Some(mount) = mounts.values().filter(under).max_by_key(|m| m.len()) {
            let rest = value
                .trim_start_matches(mount.as_str())
                .trim_start_matches('/');
            *value = root
                .join(mount.trim_start_matches('/'))
                .join(rest)
                .display()
                .to_string();
        }
    }
    let host_vars: Vec<String> = env
        .keys()
        .filter(|k| k.ends_with("_HOST"))
        .cloned()
        .collect();
    for var in host_vars {
        if let Some(addr) = hosts.get(&env[&var]) {
            let port_var = format!("{}_PORT", var.trim_end_matches("_HOST"));
            env.insert(var, addr.ip().to_string());
            env.insert(port_var, addr.port().to_string());
        }
    }
    // Object storage is a URL: its host and port, mapped the same way.
    let storage = "STORAGE_ENDPOINT";
    if let Some(url) = env.get(storage).cloned()
        && let Some((scheme, rest)) = url.split_once("://")
    {
        let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
        if let Some(addr) = hosts.get(host) {
            env.insert(storage.to_owned(), format!("{scheme}://{addr}"));
        }
    }
    env
}

impl LocalPod {
    /// The first container of `deployment`'s pod template, to be run from `bin`, with
    /// `hosts` mapping the DNS names of declared services to loopback addresses.
    pub async fn new(
        client: &Client,
        deployment: &Deployment,
        bin: PathBuf,
        hosts: &BTreeMap<String, SocketAddr>,
    ) -> Self {
        Self::new_at(client, deployment, bin, hosts, free_addr()).await
    }

    /// As [`LocalPod::new`], with the API listening on `api` (chosen before the pod
    /// exists, to tell the operator where to reach it).
    pub async fn new_at(
        client: &Client,
        deployment: &Deployment,
        bin: PathBuf,
        hosts: &BTreeMap<String, SocketAddr>,
        api: SocketAddr,
    ) -> Self {
        let namespace = deployment.metadata.namespace.clone().unwrap();
        let pod: PodSpec = deployment.spec.clone().unwrap().template.spec.unwrap();
        let container: Container = pod.containers.first().cloned().unwrap();
        let init_containers = pod.init_containers.clone().unwrap_or_default();
        let root = TempDir::new("gb-pod");
        let local = |mount: &str| root.0.join(mount.trim_start_matches('/'));

        // Volumes, by name, to where any container mounts them (ours mount a volume at
        // one path in every container).
        let mounts: BTreeMap<String, String> = init_containers
            .iter()
            .chain([&container])
            .flat_map(|c| c.volume_mounts.iter().flatten())
            .map(|m| (m.name.clone(), m.mount_path.clone()))
            .collect();
        let mut volumes = Vec::new();
        for v in pod.volumes.iter().flatten() {
            let Some(mount) = mounts.get(&v.name) else {
                continue;
            };
            let dir = local(mount);
            if let Some(p) = &v.projected {
                volumes.push(SecretVolume {
                    source: Source::ConfigMaps(
                        p.sources
                            .iter()
                            .flatten()
                            .map(|s| {
                                s.config_map
                                    .as_ref()
                                    .expect("only ConfigMaps are projected")
                                    .name
                                    .clone()
                            })
                            .collect(),
                    ),
                    items: Vec::new(),
                    mode: p.default_mode.map_or(0o644, |m| m as u32),
                    dir,
                });
            } else if let Some(s) = &v.secret {
                volumes.push(SecretVolume {
                    source: Source::Secret(s.secret_name.clone().unwrap()),
                    items: s
                        .items
                        .iter()
                        .flatten()
                        .map(|i| (i.key.clone(), i.path.clone()))
                        .collect(),
                    mode: s.default_mode.map_or(0o644, |m| m as u32),
                    dir,
                });
            } else if v.empty_dir.is_some() {
                std::fs::create_dir_all(&dir).unwrap();
            } else {
                panic!("volume {} is of a kind this kubelet does not mount", v.name);
            }
        }

        let metrics = free_addr();
        let mut resolved = Vec::new();
        for c in init_containers.into_iter().chain([container]) {
            let mut env = environment(client, &namespace, &c, &mounts, &root.0, hosts).await;
            // Listen addresses mapped to free loopback ports, in the containers that listen.
            if env.contains_key(env::LISTEN) {
                env.insert(env::LISTEN.to_owned(), api.to_string());
                env.insert(env::METRICS_LISTEN.to_owned(), metrics.to_string());
            }
            resolved.push((c.args.unwrap_or_default(), env));
        }
        let (_, env) = resolved.pop().unwrap();
        let init = resolved;
        let pod = Self {
            volumes: Volumes {
                api: Api::namespaced(client.clone(), &namespace),
                config_maps: Api::namespaced(client.clone(), &namespace),
                volumes,
                written: Arc::default(),
                generation: Arc::default(),
            },
            root,
            bin,
            env,
            init,
            api,
            metrics,
            child: None,
        };
        pod.volumes.sync().await;
        pod
    }

    /// The program with the pod's environment and nothing else.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear().envs(&self.env).current_dir(&self.root.0);
        cmd
    }

    /// Runs the init containers in order, as the kubelet does before the pod starts;
    /// panics with its output when one fails.
    pub fn run_init_containers(&self) -> usize {
        for (args, env) in &self.init {
            let out = Command::new(&self.bin)
                .env_clear()
                .envs(env)
                .current_dir(&self.root.0)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "init container {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.init.len()
    }

    /// Runs the program once with `args` (an administration command, say).
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// A file under the pod's local root (for a password file, say).
    pub fn file(&self, name: &str, body: &str) -> PathBuf {
        let path = self.root.0.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Starts the program; its output goes to `bot-server.log` under the local root.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = self
            .command()
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Stops the program as the kubelet does: SIGTERM, then SIGKILL after a grace.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..100 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Where the program's output goes.
    pub fn log_path(&self) -> PathBuf {
        self.root.0.join("bot-server.log")
    }

    /// The last lines of the program's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until `/readyz` answers 200, or fails with the program's output.
    pub async fn wait_ready(&mut self) {
        for _ in 0..240 {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("the bot server exited ({status}):\n{}", self.log_tail(40));
            }
            let ready =
                crate::e2e::plain_get(self.metrics, generalbot_crds::contract::READY_PATH, None);
            if ready.await.is_some_and(|(status, _)| status == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("the bot server never became ready:\n{}", self.log_tail(40));
    }
}

impl Drop for LocalPod {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_swap_data_atomically_and_drop_stale_files() {
        let dir = TempDir::new("gb-kubelet-layout");
        let v1 = BTreeMap::from([
            ("a".to_owned(), b"1".to_vec()),
            ("b".to_owned(), b"2".to_vec()),
        ]);
        write_atomically(&dir.0, &v1, 0o400, 0);
        assert_eq!(std::fs::read(dir.0.join("a")).unwrap(), b"1");
        let target = std::fs::read_link(dir.0.join("..data")).unwrap();
        assert!(target.to_string_lossy().starts_with(".."));
        let v2 = BTreeMap::from([("a".to_owned(), b"3".to_vec())]);
        write_atomically(&dir.0, &v2, 0o400, 1);
        assert_eq!(std::fs::read(dir.0.join("a")).unwrap(), b"3");
        assert!(
            dir.0.join("b").symlink_metadata().is_err(),
            "stale key removed"
        );
        let dirs = std::fs::read_dir(&dir.0)
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().unwrap().is_dir())
            .count();
        assert_eq!(dirs, 1, "the old timestamped directory is gone");
        let mode = std::fs::metadata(dir.0.join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
    }
}
