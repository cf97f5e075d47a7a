//! Where settings come from: the process environment, or a map in tests; and the
//! groups of this process (for secret-file permission checks).

use std::collections::BTreeMap;

use generalbot_crds::contract;

/// Where settings come from: the environment in production, a map in tests.
pub trait Source {
    /// The value of `var`, if set and not empty.
    fn get(&self, var: &str) -> Option<String>;
    /// The groups the process belongs to (effective gid first).
    fn groups(&self) -> Vec<u32>;
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok().filter(|v| !v.is_empty())
    }
    fn groups(&self) -> Vec<u32> {
        process_groups()
    }
}

/// A fixed map of settings, for tests and tools.
#[derive(Debug, Default, Clone)]
pub struct MapSource {
    /// The settings.
    pub vars: BTreeMap<String, String>,
    /// The groups of the pretend process.
    pub groups: Vec<u32>,
}

impl Source for MapSource {
    fn get(&self, var: &str) -> Option<String> {
        self.vars.get(var).filter(|v| !v.is_empty()).cloned()
    }
    fn groups(&self) -> Vec<u32> {
        self.groups.clone()
    }
}

/// The effective gid and supplementary groups of this process, from `/proc/self/status`.
/// Kubernetes adds the pod's `fsGroup` as a supplementary group, which is why those
/// count as the process's own.
pub fn process_groups() -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return vec![u32::try_from(contract::RUN_AS_GROUP).unwrap_or(10001)];
    };
    let mut out = Vec::new();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Gid:") {
            if let Some(egid) = rest.split_whitespace().nth(1).and_then(|g| g.parse().ok()) {
                out.insert(0, egid);
            }
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            out.extend(
                rest.split_whitespace()
                    .filter_map(|g| g.parse::<u32>().ok()),
            );
        }
    }
    out
}
