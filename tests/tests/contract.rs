//! The contract between the operator and the bot server cannot drift. For the examples
//! and a GeneralBot with every option on, the pod the operator renders is fed to the bot
//! server's own configuration loader as the kubelet would feed it (every Secret volume
//! written as files with the operator's modes, paths as mounted), and:
//!
//! - every variable the operator sets is read by the bot server (the loader notes each
//!   read), and the server either accepts it or refuses to start naming a variable it
//!   cannot honour: never a setting silently ignored;
//! - the migration init container's variables are read by `bot-server migrate`;
//! - every variable of the contract is set by the operator for some GeneralBot, or is one
//!   of the bot server's own (named below, with why the operator never sets it);
//! - every variable the bot server reads is in the contract.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use generalbot_bot_server::config::{
    self, Config, ConfigError, MapSource, Recording, migration_settings,
};
use generalbot_crds::GeneralBot;
use generalbot_crds::contract::env;
use generalbot_operator::builders::{self, BuildContext};
use generalbot_testkit::{TestPki, temp_dir};
use generalbot_tests::root;
use k8s_openapi::api::core::v1::{Container, PodSpec};

/// The bot server's own variables: the operator never sets them, and why.
const SERVER_ONLY: [(&str, &str); 7] = [
    (
        env::JWT_SECRET,
        "the guide's single signing key; the operator mounts key rings",
    ),
    (
        env::ENCRYPTION_KEY,
        "the guide's single data key; the operator mounts key rings",
    ),
    (
        env::DATABASE_ENCRYPTION_KEY,
        "the guide's single field key; the operator mounts key rings",
    ),
    (
        env::DATABASE_URL,
        "a whole URL for a server run by hand; the operator sets DATABASE_HOST and friends",
    ),
    (
        env::ALLOW_PLAINTEXT,
        "plain HTTP behind a proxy; the operator always serves TLS",
    ),
    (
        env::FILES_DIR,
        "attachments on a local disk for a server run by hand; the operator's bots keep them in their bucket",
    ),
    (
        env::ENCRYPT_FIELDS,
        "field encryption is always on; only `true` is accepted, so the operator no longer sends it",
    ),
];

fn load(name: &str) -> GeneralBot {
    let path = root().join("examples").join(name);
    generalbot_operator::render::parse(&path, &std::fs::read_to_string(&path).unwrap(), None)
        .unwrap()
}

/// The full example with the options it leaves off turned on, vector search included.
fn everything_on() -> GeneralBot {
    let mut gb = load("full.yaml");
    gb.spec.server.settings.client_certificates =
        generalbot_crds::v1alpha1::ClientCertificates::Required;
    gb.spec.server.features.vectordb = true;
    gb.spec.services.vector_db = Some(
        serde_json::from_value(serde_json::json!({
            "host": "qdrant.vectors.svc",
            "port": 6334,
            "peer": {"podSelector": {"app": "qdrant"}},
            "credentialsSecret": {"name": "qdrant-api-key"}
        }))
        .unwrap(),
    );
    gb.spec
        .services
        .cache
        .as_mut()
        .unwrap()
        .tls
        .client_certificate = true;
    let directory = gb.spec.services.directory.as_mut().unwrap();
    directory.endpoint.tls.ca_secret = Some(generalbot_crds::v1alpha1::SecretRef {
        name: "directory-ca".to_owned(),
    });
    directory.api_audience = Some("sales-bot-api".to_owned());
    gb.spec
        .services
        .mail
        .as_mut()
        .unwrap()
        .endpoint
        .tls
        .ca_secret = Some(generalbot_crds::v1alpha1::SecretRef {
        name: "smtp-ca".to_owned(),
    });
    gb.spec.bots = vec![generalbot_crds::v1alpha1::ConfigMapRef {
        name: "support-bots".to_owned(),
    }];
    gb.spec.server.bootstrap_admin_secret = Some(generalbot_crds::v1alpha1::SecretRef {
        name: "first-admin".to_owned(),
    });
    gb
}

/// Every option this build honours: everything on, but the vector database (the one
/// capability not built yet, refused by name).
fn everything_but_vector_search() -> GeneralBot {
    let mut gb = everything_on();
    gb.spec.services.vector_db = None;
    gb.spec.server.features.vectordb = false;
    gb
}

/// A rendered pod, fed as the kubelet would: each Secret volume's items written under a
/// local root with the volume's mode, and each container's variables with mount paths
/// mapped under that root.
struct Pod {
    _root: PathBuf,
    containers: Vec<(Container, BTreeMap<String, String>)>,
}

fn pod(gb: &GeneralBot) -> Pod {
    let desired = builders::desired(gb).unwrap();
    // The backup CronJob's pod mounts the same volumes as the server's and reads the
    // same settings (`bot-server backup`): its container is fed too.
    let backup: Vec<Container> = desired
        .backup
        .clone()
        .and_then(|(cron, _)| cron.spec?.job_template.spec?.template.spec)
        .map(|p| p.containers)
        .unwrap_or_default();
    let spec: PodSpec = desired.deployment.spec.unwrap().template.spec.unwrap();
    let root = temp_dir("gb-contract");
    let pki = TestPki::generate(&root);
    let ctx = BuildContext::new(gb).unwrap();
    let keys = builders::key_secret(&ctx, jiff::Timestamp::now()).unwrap();
    let key_data = keys.0.data.clone().unwrap();
    let containers: Vec<Container> = spec
        .init_containers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .chain(spec.containers.clone())
        .chain(backup)
        .collect();
    let mounts: BTreeMap<String, String> = containers
        .iter()
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    let local = |p: &str| root.join(p.trim_start_matches('/'));
    for v in spec.volumes.iter().flatten() {
        let (Some(secret), Some(mount)) = (&v.secret, mounts.get(&v.name)) else {
            continue;
        };
        let dir = local(mount);
        std::fs::create_dir_all(&dir).unwrap();
        for item in secret.items.iter().flatten() {
            let body: Vec<u8> = match (v.name.as_str(), item.key.as_str()) {
                ("keys", k) => key_data[k].0.clone(),
                (_, k) if k.ends_with(".crt") => std::fs::read(&pki.ca).unwrap(),
                (_, k) if k.ends_with(".key") => std::fs::read(&pki.key).unwrap(),
                (volume, k) => format!("{volume}-{k}-for-the-contract-test").into_bytes(),
            };
            let path = dir.join(&item.path);
            std::fs::write(&path, body).unwrap();
            let mode = item.mode.or(secret.default_mode).unwrap() as u32;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    let containers = containers
        .into_iter()
        .map(|c| {
            let vars = c
                .env
                .iter()
                .flatten()
                .map(|e| {
                    let value = e.value.clone().expect("no variable comes from a reference");
                    let mapped = match mounts.values().find(|m| value.starts_with(m.as_str())) {
                        Some(_) => local(&value).display().to_string(),
                        None => value,
                    };
                    (e.name.clone(), mapped)
                })
                .collect();
            (c, vars)
        })
        .collect();
    Pod {
        _root: root,
        containers,
    }
}

/// What the server did with the settings: every name it asked for, and its verdict.
fn feed(
    vars: &BTreeMap<String, String>,
    migrate: bool,
) -> (BTreeSet<String>, Result<(), ConfigError>) {
    let src = MapSource {
        vars: vars.clone(),
        groups: config::process_groups(),
    };
    let rec = Recording::new(&src);
    let verdict = if migrate {
        migration_settings(&rec, false).map(drop)
    } else {
        Config::load(&rec, false).map(drop)
    };
    (rec.read(), verdict)
}

#[test]
fn every_setting_the_operator_renders_is_honoured_or_refused_by_name() {
    let mut rendered: BTreeSet<String> = BTreeSet::new();
    let mut read_any: BTreeSet<String> = BTreeSet::new();
    let mut covered = 0;
    for (label, gb) in [
        ("minimal", load("minimal.yaml")),
        ("full", load("full.yaml")),
        ("everything on", everything_on()),
        (
            "everything but vector search",
            everything_but_vector_search(),
        ),
    ] {
        let pod = pod(&gb);
        for (container, vars) in &pod.containers {
            let migrate = container.args.as_deref() == Some(&["migrate".to_owned()][..]);
            let (read, verdict) = feed(vars, migrate);
            let unread: Vec<&String> = vars.keys().filter(|v| !read.contains(*v)).collect();
            assert!(
                unread.is_empty(),
                "{label}, container {}: the bot server does not read {unread:?}",
                container.name
            );
            match &verdict {
                Ok(()) => {}
                Err(ConfigError::NotAvailable { var, .. }) => assert!(
                    vars.contains_key(*var),
                    "{label}: refused naming {var}, which the operator did not set"
                ),
                Err(e) => panic!("{label}, container {}: refused: {e}", container.name),
            }
            println!(
                "contract: {label}, container {}: {} variables, all read; {}",
                container.name,
                vars.len(),
                match verdict {
                    Ok(()) => "accepted".to_owned(),
                    Err(e) => format!("refused by name: {e}"),
                }
            );
            covered += vars.len();
            rendered.extend(vars.keys().cloned());
            read_any.extend(read);
        }
    }
    // The minimal example runs as it is, and so does every option but vector search.
    for (label, gb) in [
        ("minimal", load("minimal.yaml")),
        (
            "everything but vector search",
            everything_but_vector_search(),
        ),
    ] {
        for (c, vars) in &pod(&gb).containers {
            let migrate = c.args.as_deref() == Some(&["migrate".to_owned()][..]);
            if let Err(e) = feed(vars, migrate).1 {
                panic!("{label}, {}: {e}", c.name);
            }
        }
    }

    // Every variable of the contract is the operator's or the server's own.
    let server_only: BTreeSet<&str> = SERVER_ONLY.iter().map(|(v, _)| *v).collect();
    for var in env::ALL {
        assert!(
            rendered.contains(var) ^ server_only.contains(var),
            "{var}: rendered by the operator: {}, listed as the server's own: {}",
            rendered.contains(var),
            server_only.contains(var)
        );
    }
    // Every variable the server reads is in the contract (a secret's value and `_FILE`
    // forms count as one).
    let contract: BTreeSet<String> = env::ALL
        .iter()
        .flat_map(|v| {
            [
                (*v).to_owned(),
                format!("{v}_FILE"),
                v.trim_end_matches("_FILE").to_owned(),
            ]
        })
        .collect();
    let outside: Vec<&String> = read_any.difference(&contract).collect();
    assert!(
        outside.is_empty(),
        "the bot server reads variables the contract does not name: {outside:?}"
    );
    println!(
        "contract: {} variables in the contract, {} rendered by the operator ({covered} settings over 4 GeneralBots and their containers), {} the server's own",
        env::ALL.len(),
        rendered.len(),
        server_only.len()
    );
}

#[test]
fn a_setting_of_ours_that_nothing_reads_is_refused() {
    let pod = pod(&load("minimal.yaml"));
    let (_, vars) = pod
        .containers
        .iter()
        .find(|(c, _)| c.name == "bot-server")
        .unwrap();
    let mut vars = vars.clone();
    vars.insert("BOTSERVER_SOMETHING_NEW".into(), "1".into());
    let err = feed(&vars, false).1.unwrap_err().to_string();
    assert!(
        err.contains("BOTSERVER_SOMETHING_NEW") && err.contains("not used"),
        "{err}"
    );
    // A capability this build lacks is refused by name.
    vars.remove("BOTSERVER_SOMETHING_NEW");
    vars.insert(env::FEATURES.into(), "email".into());
    let err = feed(&vars, false).1.unwrap_err().to_string();
    assert!(
        err.contains("BOTSERVER_FEATURES") && err.contains("email"),
        "{err}"
    );
}
