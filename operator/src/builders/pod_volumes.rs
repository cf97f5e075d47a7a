//! The volumes of the bot server's pod and where each container mounts them: a bounded
//! scratch directory, the key rings, the serving and client certificates, each service's
//! credentials and CA (every secret read-only with owner-only file modes), and the bots'
//! ConfigMaps.

use generalbot_crds::contract::{self, tls_files};
use generalbot_crds::v1alpha1::TlsMode;
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, EmptyDirVolumeSource, KeyToPath, ProjectedVolumeSource,
    SecretVolumeSource, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::services::DeclaredService;
use super::{BuildContext, key_secret_name};

pub(super) const TMP_VOLUME: &str = "tmp";
pub(super) const KEYS_VOLUME: &str = "keys";
pub(super) const TLS_VOLUME: &str = "tls";
/// The database owner's credentials: the migration init container's only.
pub(super) const OWNER_VOLUME: &str = "postgres-owner";
/// The first administrator's Secret.
pub(super) const BOOTSTRAP_ADMIN_VOLUME: &str = "bootstrap-admin";
/// The ConfigMaps of `spec.bots`, projected into one read-only directory.
pub(super) const BOTS_VOLUME: &str = "bots";

fn secret_volume(name: &str, secret: &str, items: Vec<KeyToPath>) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            default_mode: Some(contract::SECRET_FILE_MODE),
            items: Some(items),
            optional: Some(false),
        }),
        ..Volume::default()
    }
}

fn item(key: &str) -> KeyToPath {
    KeyToPath {
        key: key.to_owned(),
        path: key.to_owned(),
        mode: Some(contract::SECRET_FILE_MODE),
    }
}

pub(super) fn mount(name: &str, path: String) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path,
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// The scratch directory, the key rings, and each service's credentials and CA.
pub(super) fn volumes(
    ctx: &BuildContext<'_>,
    services: &[DeclaredService<'_>],
) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = vec![
        Volume {
            name: TMP_VOLUME.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(Quantity("64Mi".to_owned())),
            }),
            ..Volume::default()
        },
        secret_volume(
            KEYS_VOLUME,
            &key_secret_name(ctx.name),
            contract::key_files::ALL
                .iter()
                .chain([&contract::key_files::JWT, &contract::key_files::OPS_TOKEN])
                .map(|f| item(f))
                .collect(),
        ),
    ];
    let mut mounts = vec![
        VolumeMount {
            name: TMP_VOLUME.to_owned(),
            mount_path: contract::TMP_DIR.to_owned(),
            read_only: Some(false),
            ..VolumeMount::default()
        },
        mount(KEYS_VOLUME, contract::KEYS_DIR.to_owned()),
    ];
    let mut tls_items = vec![
        item(tls_files::CERT),
        item(tls_files::KEY),
        item(tls_files::CA),
    ];
    for service in services
        .iter()
        .filter(|s| s.endpoint.tls.client_certificate)
    {
        tls_items.push(item(&tls_files::client_cert(service.kind.id())));
        tls_items.push(item(&tls_files::client_key(service.kind.id())));
    }
    volumes.push(secret_volume(
        TLS_VOLUME,
        &crate::certs::tls_secret_name(ctx.name),
        tls_items,
    ));
    mounts.push(mount(TLS_VOLUME, contract::TLS_DIR.to_owned()));
    for service in services {
        let id = service.kind.id();
        let e = service.endpoint;
        if let Some(secret) = &e.credentials_secret {
            let volume = format!("{id}-credentials");
            let items = service
                .kind
                .credential_keys()
                .iter()
                .map(|k| item(k.key))
                .collect();
            volumes.push(secret_volume(&volume, &secret.name, items));
            mounts.push(mount(&volume, contract::service_secret_dir(id)));
        }
        if let (Some(ca), TlsMode::VerifyFull) = (&e.tls.ca_secret, e.tls.mode) {
            let volume = format!("{id}-ca");
            volumes.push(secret_volume(&volume, &ca.name, vec![item("ca.crt")]));
            mounts.push(mount(&volume, contract::service_ca_dir(id)));
        }
    }
    if let Some(secret) = &ctx.gb.spec.server.bootstrap_admin_secret {
        volumes.push(secret_volume(
            BOOTSTRAP_ADMIN_VOLUME,
            &secret.name,
            vec![item("email"), item("password")],
        ));
        mounts.push(mount(
            BOOTSTRAP_ADMIN_VOLUME,
            contract::BOOTSTRAP_ADMIN_DIR.to_owned(),
        ));
    }
    if !ctx.gb.spec.bots.is_empty() {
        volumes.push(Volume {
            name: BOTS_VOLUME.to_owned(),
            projected: Some(ProjectedVolumeSource {
                // Bot definitions are not secrets; nobody but the server writes anyway.
                default_mode: Some(0o444),
                sources: Some(
                    ctx.gb
                        .spec
                        .bots
                        .iter()
                        .map(|c| VolumeProjection {
                            config_map: Some(ConfigMapProjection {
                                name: c.name.clone(),
                                optional: Some(false),
                                items: None,
                            }),
                            ..VolumeProjection::default()
                        })
                        .collect(),
                ),
            }),
            ..Volume::default()
        });
        mounts.push(mount(BOTS_VOLUME, contract::BOTS_DIR.to_owned()));
    }
    // Mounted by the migration init container only.
    if let Some(owner) = &ctx.gb.spec.services.postgres.owner_credentials_secret {
        volumes.push(secret_volume(
            OWNER_VOLUME,
            &owner.name,
            vec![item("username"), item("password")],
        ));
    }
    (volumes, mounts)
}
