//! Test fixtures: GeneralBots and observed objects, built in one place.

use std::collections::BTreeMap;

use generalbot_crds::v1alpha1::*;
use generalbot_crds::{GeneralBot, GeneralBotSpec};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// A time `secs` seconds after the epoch.
pub fn t(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap())
}

/// A peer chosen by pod labels.
pub fn mk_peer(app: &str) -> NetworkPeer {
    NetworkPeer {
        pod_selector: Some(BTreeMap::from([("app".to_owned(), app.to_owned())])),
        ..NetworkPeer::default()
    }
}

/// An endpoint with credentials.
pub fn mk_endpoint(host: &str, secret: &str) -> ServiceEndpoint {
    ServiceEndpoint {
        host: host.to_owned(),
        port: None,
        target_port: None,
        peer: mk_peer(host),
        credentials_secret: Some(SecretRef {
            name: secret.to_owned(),
        }),
        tls: TlsSpec::default(),
    }
}

/// The smallest valid GeneralBot: PostgreSQL only, backups off.
pub fn mk_gb(name: &str) -> GeneralBot {
    let spec = GeneralBotSpec {
        server: ServerSpec::default(),
        services: ServicesSpec {
            postgres: PostgresSpec {
                endpoint: mk_endpoint("postgres", "pg-credentials"),
                database: "bot".to_owned(),
                owner_credentials_secret: None,
            },
            cache: None,
            object_storage: None,
            vector_db: None,
            directory: None,
            mail: None,
        },
        network: NetworkSpec::default(),
        security: SecuritySpec::default(),
        encryption: EncryptionSpec::default(),
        backup: BackupSpec {
            enabled: false,
            ..BackupSpec::default()
        },
        monitoring: MonitoringSpec::default(),
        bots: Vec::new(),
    };
    let mut gb = GeneralBot::new(name, spec);
    gb.metadata.namespace = Some("bots".to_owned());
    gb.metadata.uid = Some("11111111-2222-3333-4444-555555555555".to_owned());
    gb.metadata.generation = Some(1);
    gb
}

/// A GeneralBot using every service and feature.
pub fn mk_full_gb(name: &str) -> GeneralBot {
    let mut gb = mk_gb(name);
    let s = &mut gb.spec.services;
    s.cache = Some(mk_endpoint("redis", "redis-credentials"));
    s.object_storage = Some(ObjectStorageSpec {
        endpoint: mk_endpoint("s3", "s3-credentials"),
        bucket: "bot-files".to_owned(),
        region: "eu-west-1".to_owned(),
    });
    s.vector_db = Some(mk_endpoint("qdrant", "qdrant-credentials"));
    s.directory = Some(DirectorySpec {
        endpoint: mk_endpoint("zitadel", "oidc-client"),
        issuer_url: "https://id.example.com".to_owned(),
        redirect_url: "https://chat.example.com/api/auth/oidc/callback".to_owned(),
        roles_claim: "groups".to_owned(),
        admin_groups: vec!["bot-admins".to_owned()],
        operator_groups: vec![],
        api_audience: None,
        mfa_acr_values: vec!["phrh".to_owned()],
        password_login: generalbot_crds::v1alpha1::PasswordLogin::AdminsOnly,
    });
    s.mail = Some(generalbot_crds::v1alpha1::MailSpec {
        endpoint: mk_endpoint("smtp", "smtp-credentials"),
        from: "bot@example.com".to_owned(),
    });
    gb.spec.server.features = Features {
        vectordb: true,
        email: true,
    };
    gb.spec.network.ingress_from = vec![NetworkPeer {
        namespace_selector: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            "ingress-nginx".to_owned(),
        )])),
        ..NetworkPeer::default()
    }];
    gb.spec.network.metrics_from = vec![mk_peer("prometheus")];
    gb.spec.backup.enabled = true;
    gb.spec.bots = vec![generalbot_crds::v1alpha1::ConfigMapRef {
        name: "support-bots".into(),
    }];
    gb
}

/// The bot's Deployment as the API server would report it once every pod is available.
pub fn mk_available_deployment(gb: &GeneralBot) -> Deployment {
    let mut d = crate::builders::desired(gb).unwrap().deployment;
    d.metadata.generation = Some(1);
    d.status = Some(DeploymentStatus {
        observed_generation: Some(1),
        replicas: Some(gb.spec.server.replicas),
        updated_replicas: Some(gb.spec.server.replicas),
        ready_replicas: Some(gb.spec.server.replicas),
        available_replicas: Some(gb.spec.server.replicas),
        ..DeploymentStatus::default()
    });
    d
}
