//! Where settings come from: the process environment, or a map in tests; the groups of
//! this process (for secret-file permission checks); and [`Recording`], which notes
//! every setting read, so a setting of ours that nothing read is refused, not ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use generalbot_crds::contract;

/// Where settings come from: the environment in production, a map in tests.
pub trait Source {
    /// The value of `var`, if set and not empty.
    fn get(&self, var: &str) -> Option<String>;
    /// The groups the process belongs to (effective gid first).
    fn groups(&self) -> Vec<u32>;
    /// The names of every variable set and not empty.
    fn names(&self) -> Vec<String>;
}

/// The prefixes of the variables that are ours: one of them set and never read is a
/// setting this server does not honour.
pub const OUR_PREFIXES: [&str; 7] = [
    "BOTSERVER_",
    "DATABASE_",
    "CACHE_",
    "STORAGE_",
    "VECTORDB_",
    "OIDC_",
    "SMTP_",
];

/// A source that notes every variable asked for.
pub struct Recording<'a> {
    inner: &'a dyn Source,
    read: Mutex<BTreeSet<String>>,
}

impl<'a> Recording<'a> {
    /// Records what is read from `inner`.
    pub fn new(inner: &'a dyn Source) -> Self {
        Self {
            inner,
            read: Mutex::new(BTreeSet::new()),
        }
    }

    /// Every variable asked for so far.
    pub fn read(&self) -> BTreeSet<String> {
        match self.read.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Our variables that are set but were never asked for, in order.
    pub fn unread(&self) -> Vec<String> {
        let read = self.read();
        let mut out: Vec<String> = self
            .inner
            .names()
            .into_iter()
            .filter(|n| OUR_PREFIXES.iter().any(|p| n.starts_with(p)) && !read.contains(n))
            .collect();
        out.sort();
        out
    }
}

impl Source for Recording<'_> {
    fn get(&self, var: &str) -> Option<String> {
        match self.read.lock() {
            Ok(mut r) => r.insert(var.to_owned()),
            Err(p) => p.into_inner().insert(var.to_owned()),
        };
        self.inner.get(var)
    }
    fn groups(&self) -> Vec<u32> {
        self.inner.groups()
    }
    fn names(&self) -> Vec<String> {
        self.inner.names()
    }
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
    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(k, _)| k.into_string().ok())
            .collect()
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
    fn names(&self) -> Vec<String> {
        self.vars
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
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
