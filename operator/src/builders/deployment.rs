//! The bot server Deployment, hardened past the Pod Security Standard *restricted*:
//! non-root with a fixed UID and GID, read-only root filesystem, no capabilities, no
//! privilege escalation, seccomp `RuntimeDefault`, optional user namespaces, requests and
//! limits, three probes, and every secret mounted as a read-only file.

use std::collections::BTreeMap;

use generalbot_crds::contract::{self, env, tls_files};
use generalbot_crds::v1alpha1::{ServerSettings, TlsMode};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, HTTPGetAction, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::BuildContext;
use super::meta::{object_meta, selector_labels};
use super::pod_volumes::{OWNER_VOLUME, TLS_VOLUME, TMP_VOLUME, mount, volumes};
use super::services::{DeclaredService, ServiceKind, declared_services};

const CONTAINER: &str = "bot-server";
const MIGRATE_CONTAINER: &str = "migrate";

/// The Deployment of the bot server.
pub fn deployment(ctx: &BuildContext<'_>) -> Deployment {
    let spec = &ctx.gb.spec;
    let selector = selector_labels(ctx.name);
    let mut pod_labels = spec.server.pod_labels.clone();
    // Ours win: a user label must never take a pod out of its own selector or policies.
    pod_labels.extend(super::meta::object_labels(ctx.name));

    let services = declared_services(spec);
    let (volumes, mounts) = volumes(ctx, &services);

    Deployment {
        metadata: object_meta(ctx, ctx.name),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.server.replicas),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                // Surge first, never drop below the desired count: no downtime on rollout.
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    topology_spread_constraints: Some(spread(&selector)),
                    init_containers: migrate_container(ctx, &services, &mounts).map(|c| vec![c]),
                    ..pod_spec(ctx, container(ctx, &services, mounts), volumes)
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The backup Job's pod: the server's image, settings, mounts and hardening (no ports,
/// no probes, no migration), running `bot-server backup` once.
pub(super) fn backup_pod(
    ctx: &BuildContext<'_>,
    labels: BTreeMap<String, String>,
) -> PodTemplateSpec {
    let services = declared_services(&ctx.gb.spec);
    let (volumes, mounts) = volumes(ctx, &services);
    let mut c = container(ctx, &services, mounts);
    c.name = "backup".to_owned();
    c.args = Some(vec!["backup".to_owned()]);
    c.ports = None;
    c.startup_probe = None;
    c.liveness_probe = None;
    c.readiness_probe = None;
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            restart_policy: Some("Never".to_owned()),
            ..pod_spec(ctx, c, volumes)
        }),
    }
}

/// What every bot server pod has: its identity with no API token, no service links,
/// user namespaces when asked, the hardened security context, one container.
fn pod_spec(ctx: &BuildContext<'_>, container: Container, volumes: Vec<Volume>) -> PodSpec {
    PodSpec {
        service_account_name: Some(ctx.name.to_owned()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        host_users: ctx.gb.spec.server.user_namespaces.then_some(false),
        security_context: Some(pod_security_context()),
        termination_grace_period_seconds: Some(30),
        containers: vec![container],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(contract::RUN_AS_USER),
        run_as_group: Some(contract::RUN_AS_GROUP),
        fs_group: Some(contract::RUN_AS_GROUP),
        fs_group_change_policy: Some("OnRootMismatch".to_owned()),
        seccomp_profile: Some(runtime_default()),
        ..PodSecurityContext::default()
    }
}

fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(contract::RUN_AS_USER),
        run_as_group: Some(contract::RUN_AS_GROUP),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        localhost_profile: None,
    }
}

/// Spread across nodes and zones, preferring but not demanding it, so a one-node cluster
/// still runs every replica.
fn spread(selector: &BTreeMap<String, String>) -> Vec<TopologySpreadConstraint> {
    ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.to_owned(),
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
            label_selector: Some(LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            }),
            ..TopologySpreadConstraint::default()
        })
        .collect()
}

fn container(
    ctx: &BuildContext<'_>,
    services: &[DeclaredService<'_>],
    volume_mounts: Vec<VolumeMount>,
) -> Container {
    let server = &ctx.gb.spec.server;
    Container {
        name: CONTAINER.to_owned(),
        image: Some(server.image.clone()),
        image_pull_policy: Some(server.image_pull_policy.as_str().to_owned()),
        ports: Some(vec![
            ContainerPort {
                name: Some(contract::API_PORT_NAME.to_owned()),
                container_port: contract::API_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some(contract::METRICS_PORT_NAME.to_owned()),
                container_port: contract::METRICS_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
        ]),
        env: Some(environment(ctx, services)),
        resources: Some(resources(ctx)),
        security_context: Some(container_security_context()),
        startup_probe: Some(probe(contract::HEALTH_PATH, 2, 30)),
        liveness_probe: Some(probe(contract::HEALTH_PATH, 10, 3)),
        readiness_probe: Some(probe(contract::READY_PATH, 5, 3)),
        volume_mounts: Some(volume_mounts),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

/// The spec's requests and limits (the server's and the migration's).
fn resources(ctx: &BuildContext<'_>) -> ResourceRequirements {
    let r = &ctx.gb.spec.server.resources;
    let quantities = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])
    };
    ResourceRequirements {
        requests: Some(quantities(&r.requests_cpu, &r.requests_memory)),
        limits: Some(quantities(&r.limits_cpu, &r.limits_memory)),
        ..ResourceRequirements::default()
    }
}

/// With `spec.services.postgres.ownerCredentialsSecret`: the init container that runs the
/// migrations as the owner role (`bot-server migrate`) and grants the server's role.
/// Hardened like the server; it sees the database settings, its TLS files and the
/// owner's credentials, which no other container mounts; no key ring.
fn migrate_container(
    ctx: &BuildContext<'_>,
    services: &[DeclaredService<'_>],
    server_mounts: &[VolumeMount],
) -> Option<Container> {
    ctx.gb
        .spec
        .services
        .postgres
        .owner_credentials_secret
        .as_ref()?;
    let postgres = services.iter().find(|s| s.kind == ServiceKind::Postgres)?;
    let dir = contract::database_owner_dir();
    let mut env = vec![
        var(env::MODE, "production"),
        var(
            env::LOG_LEVEL,
            ctx.gb.spec.server.settings.log_level.as_str(),
        ),
        var(env::DATABASE_OWNER_USER_FILE, format!("{dir}/username")),
        var(env::DATABASE_OWNER_PASSWORD_FILE, format!("{dir}/password")),
    ];
    env.extend(service_environment(ctx, postgres));
    let database_volumes = [
        TMP_VOLUME.to_owned(),
        TLS_VOLUME.to_owned(),
        format!("{}-credentials", postgres.kind.id()),
        format!("{}-ca", postgres.kind.id()),
    ];
    let mut mounts: Vec<VolumeMount> = server_mounts
        .iter()
        .filter(|m| database_volumes.contains(&m.name))
        .cloned()
        .collect();
    mounts.push(mount(OWNER_VOLUME, dir));
    Some(Container {
        name: MIGRATE_CONTAINER.to_owned(),
        image: Some(ctx.gb.spec.server.image.clone()),
        image_pull_policy: Some(ctx.gb.spec.server.image_pull_policy.as_str().to_owned()),
        args: Some(vec!["migrate".to_owned()]),
        env: Some(env),
        resources: Some(resources(ctx)),
        security_context: Some(container_security_context()),
        volume_mounts: Some(mounts),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    })
}

fn probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(contract::METRICS_PORT_NAME.to_owned()),
            scheme: Some("HTTP".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn var(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// Settings as plain variables, secrets as `_FILE` paths: no secret value is ever an
/// environment value.
fn environment(ctx: &BuildContext<'_>, services: &[DeclaredService<'_>]) -> Vec<EnvVar> {
    let spec = &ctx.gb.spec;
    let s: &ServerSettings = &spec.server.settings;
    let mut features = Vec::new();
    if spec.server.features.vectordb {
        features.push("vectordb");
    }
    if spec.server.features.email {
        features.push("email");
    }
    let mut vars = vec![
        var(env::MODE, "production"),
        var(env::LOG_LEVEL, s.log_level.as_str()),
        var(env::LISTEN, format!("0.0.0.0:{}", contract::API_PORT)),
        var(
            env::METRICS_LISTEN,
            format!("0.0.0.0:{}", contract::METRICS_PORT),
        ),
        var(env::KEYS_DIR, contract::KEYS_DIR),
        var(env::TLS_CERT_FILE, tls_path(tls_files::CERT)),
        var(env::TLS_KEY_FILE, tls_path(tls_files::KEY)),
        var(env::TLS_CA_FILE, tls_path(tls_files::CA)),
        var(env::RATE_LIMIT_PER_IP, s.rate_limit_per_ip.to_string()),
        var(env::RATE_LIMIT_PER_USER, s.rate_limit_per_user.to_string()),
        var(env::ALLOWED_ORIGINS, s.allowed_origins.join(",")),
        var(env::TRUSTED_PROXIES, s.trusted_proxies.join(",")),
        var(env::SESSION_TIMEOUT, s.session_timeout_seconds.to_string()),
        var(
            env::ACCESS_TOKEN_TTL,
            s.access_token_ttl_seconds.to_string(),
        ),
        var(
            env::REFRESH_TOKEN_TTL,
            s.refresh_token_ttl_seconds.to_string(),
        ),
        var(env::MAX_LOGIN_ATTEMPTS, s.max_login_attempts.to_string()),
        var(
            env::LOGIN_ALERT_THRESHOLD,
            s.login_alert_threshold.to_string(),
        ),
        var(
            env::LOCKOUT_DURATION,
            s.lockout_duration_seconds.to_string(),
        ),
        var(env::MAX_UPLOAD_SIZE, s.max_upload_size_bytes.to_string()),
        var(env::REQUIRE_MFA, s.require_mfa.to_string()),
        var(env::ENABLE_AUDIT, s.audit.to_string()),
        var(env::CLIENT_CERTIFICATES, s.client_certificates.as_env()),
        var(env::FEATURES, features.join(",")),
        var(
            env::TEMP_FILE_RETENTION_DAYS,
            spec.encryption.temporary_file_retention_days.to_string(),
        ),
        var(
            env::BACKUP_RETENTION_DAYS,
            spec.backup.retention_days.to_string(),
        ),
    ];
    if !spec.bots.is_empty() {
        vars.push(var(env::BOTS_DIR, contract::BOTS_DIR.to_owned()));
    }
    if spec.server.bootstrap_admin_secret.is_some() {
        let dir = contract::BOOTSTRAP_ADMIN_DIR;
        vars.push(var(env::BOOTSTRAP_ADMIN_EMAIL_FILE, format!("{dir}/email")));
        vars.push(var(
            env::BOOTSTRAP_ADMIN_PASSWORD_FILE,
            format!("{dir}/password"),
        ));
    }
    for service in services {
        vars.extend(service_environment(ctx, service));
    }
    vars
}

fn service_environment(ctx: &BuildContext<'_>, service: &DeclaredService<'_>) -> Vec<EnvVar> {
    let e = service.endpoint;
    let host_port = format!("{}:{}", e.host, service.port());
    let secure = service.tls();
    let mut vars = match service.kind {
        ServiceKind::Postgres => vec![
            var(env::DATABASE_HOST, e.host.clone()),
            var(env::DATABASE_PORT, service.port().to_string()),
            var(
                env::DATABASE_NAME,
                ctx.gb.spec.services.postgres.database.clone(),
            ),
            var(
                env::DATABASE_SSLMODE,
                if secure { "verify-full" } else { "disable" },
            ),
        ],
        ServiceKind::Cache => {
            let scheme = if secure { "rediss" } else { "redis" };
            vec![var(env::CACHE_URL, format!("{scheme}://{host_port}"))]
        }
        ServiceKind::ObjectStorage => {
            let scheme = if secure { "https" } else { "http" };
            let mut v = vec![var(
                env::STORAGE_ENDPOINT,
                format!("{scheme}://{host_port}"),
            )];
            if let Some(o) = &ctx.gb.spec.services.object_storage {
                v.push(var(env::STORAGE_BUCKET, o.bucket.clone()));
                v.push(var(env::STORAGE_REGION, o.region.clone()));
            }
            v
        }
        ServiceKind::VectorDb => {
            let scheme = if secure { "https" } else { "http" };
            vec![var(env::VECTORDB_URL, format!("{scheme}://{host_port}"))]
        }
        ServiceKind::Directory => ctx
            .gb
            .spec
            .services
            .directory
            .as_ref()
            .map(|d| {
                let mut v = vec![
                    var(env::OIDC_ISSUER, d.issuer_url.clone()),
                    var(env::OIDC_REDIRECT_URL, d.redirect_url.clone()),
                    var(env::OIDC_ROLES_CLAIM, d.roles_claim.clone()),
                    var(env::OIDC_ADMIN_GROUPS, d.admin_groups.join(",")),
                    var(env::OIDC_OPERATOR_GROUPS, d.operator_groups.join(",")),
                    var(env::PASSWORD_LOGIN, d.password_login.as_env()),
                ];
                if let Some(aud) = &d.api_audience {
                    v.push(var(env::OIDC_AUDIENCE, aud.clone()));
                }
                if !d.mfa_acr_values.is_empty() {
                    v.push(var(env::OIDC_MFA_ACR_VALUES, d.mfa_acr_values.join(",")));
                }
                v
            })
            .unwrap_or_default(),
        ServiceKind::Mail => {
            let mut v = vec![var(env::SMTP_ADDR, host_port)];
            if let Some(m) = &ctx.gb.spec.services.mail {
                v.push(var(env::SMTP_FROM, m.from.clone()));
            }
            v
        }
    };
    if e.credentials_secret.is_some() {
        let dir = contract::service_secret_dir(service.kind.id());
        for key in service.kind.credential_keys() {
            vars.push(var(key.env, format!("{dir}/{}", key.key)));
        }
    }
    match (service.kind.ca_env(), &e.tls.ca_secret, e.tls.mode) {
        (Some(ca_env), Some(_), TlsMode::VerifyFull) => vars.push(var(
            ca_env,
            format!("{}/ca.crt", contract::service_ca_dir(service.kind.id())),
        )),
        // No CA of its own: the operator's trust bundle; a directory service or a mail
        // server is often public, so it is verified against the public roots instead.
        (Some(ca_env), None, TlsMode::VerifyFull)
            if !matches!(service.kind, ServiceKind::Directory | ServiceKind::Mail) =>
        {
            vars.push(var(ca_env, tls_path(tls_files::CA)))
        }
        _ => {}
    }
    if e.tls.client_certificate {
        let id = service.kind.id();
        let pair = match service.kind {
            ServiceKind::Postgres => Some((
                env::DATABASE_CLIENT_CERT_FILE,
                env::DATABASE_CLIENT_KEY_FILE,
            )),
            ServiceKind::Cache => Some((env::CACHE_CLIENT_CERT_FILE, env::CACHE_CLIENT_KEY_FILE)),
            _ => None,
        };
        if let Some((cert, key)) = pair {
            vars.push(var(cert, tls_path(&tls_files::client_cert(id))));
            vars.push(var(key, tls_path(&tls_files::client_key(id))));
        }
    }
    vars
}

fn tls_path(file: &str) -> String {
    format!("{}/{file}", contract::TLS_DIR)
}
