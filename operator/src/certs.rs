//! The certificate Secrets of one GeneralBot and the plan for one reconcile:
//!
//! - `<name>-ca-root`: the root CA, used only to sign intermediates (absent when the
//!   user brings their own intermediate through `spec.security.certificates.caSecret`);
//! - `<name>-ca`: the intermediate CA and the trust bundle;
//! - `<name>-tls`: the serving certificate with its chain, client certificates, and the
//!   trust bundle, mounted into the bot server.
//!
//! Each Secret records, in annotations, the serial of its certificate, the serial of the
//! issuer that signed it, its expiry and its renewal time. A reconcile reads only those
//! from the cache and plans nothing while they agree and nothing is due; otherwise it
//! reads the Secrets and converges them, lowest level last: a new root first joins the
//! bundle (step *add*), after the propagation delay it signs a new intermediate which
//! re-issues the leaves (step *activate*), and once every leaf chains to it and the
//! overlap has passed the old root leaves the bundle (step *retire*). The root's phase is
//! written with the root material in one update, and everything below it is derived, so
//! a crash anywhere converges on the next reconcile.

use std::collections::BTreeMap;

use generalbot_crds::GeneralBot;
use generalbot_crds::contract::tls_files;
use generalbot_crds::v1alpha1::CertificateStatus;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde::{Deserialize, Serialize};

use crate::builders::{BuildContext, declared_services};

#[cfg(test)]
mod tests;
use crate::pki::{
    self, CertInfo, Issued, PkiError, Signer, client_leaf, intermediate_ca, permitted_dns, root_ca,
    service_dns_names, serving_leaf,
};
use crate::rotation::triggers::{force_value, forced};

/// Annotation: serial of the certificate a Secret holds.
pub const SERIAL: &str = "generalbots.io/serial";
/// Annotation: serial of the certificate that signed it.
pub const ISSUER_SERIAL: &str = "generalbots.io/issuer-serial";
/// Annotation: when it expires.
pub const NOT_AFTER: &str = "generalbots.io/not-after";
/// Annotation: when the operator renews it.
pub const RENEW_AT: &str = "generalbots.io/renew-at";
/// Annotation on the root Secret: the root rotation's phase.
pub const ROOT_PHASE: &str = "generalbots.io/rotation.ca";
/// Annotation on the root Secret: the force value last honoured.
pub const ROOT_HONOURED: &str = "generalbots.io/rotate-honoured.ca";

/// Secret names.
pub fn root_secret_name(name: &str) -> String {
    format!("{name}-ca-root")
}
/// The intermediate's Secret.
pub fn ca_secret_name(name: &str) -> String {
    format!("{name}-ca")
}
/// The leaves' Secret.
pub fn tls_secret_name(name: &str) -> String {
    format!("{name}-tls")
}

/// Metadata of the certificate Secret `name`: the CA Secrets are kept as the keys'
/// deletion policy says (a lost CA breaks every trust that names it); the leaves'
/// Secret is owned, since it can always be issued again.
pub fn secret_meta(
    ctx: &crate::builders::BuildContext<'_>,
    name: String,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    if name == tls_secret_name(ctx.name) {
        crate::builders::object_meta(ctx, name)
    } else {
        crate::builders::kept_meta(ctx, name)
    }
}

/// Where a root rotation stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum RootPhase {
    /// No rotation under way.
    #[default]
    Idle,
    /// A next root is in the bundle, not yet signing.
    Added {
        /// When.
        since: Timestamp,
    },
    /// The new root signs; the previous one stays in the bundle.
    Activated {
        /// When.
        since: Timestamp,
    },
}

/// Lifetimes and timing.
#[derive(Clone, Debug)]
pub struct CertPolicy {
    /// Root lifetime.
    pub root: SignedDuration,
    /// Intermediate lifetime.
    pub intermediate: SignedDuration,
    /// Leaf lifetime.
    pub leaf: SignedDuration,
    /// Renew at this percentage of the lifetime.
    pub renew_percent: u32,
    /// Time for a changed Secret to reach every pod.
    pub propagation: SignedDuration,
}

impl CertPolicy {
    /// The policy a GeneralBot's spec sets.
    pub fn of(gb: &GeneralBot, propagation: SignedDuration) -> Self {
        let c = &gb.spec.security.certificates;
        let days = |d: u32| SignedDuration::from_hours(24 * i64::from(d));
        Self {
            root: days(c.root_days),
            intermediate: days(c.intermediate_days),
            leaf: days(c.leaf_days),
            renew_percent: c.renew_at_percent,
            propagation,
        }
    }
}

/// Certificate planning failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Issuing or reading a certificate failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The user's CA Secret lacks something.
    #[error("spec.security.certificates.caSecret: Secret {name:?} {problem}")]
    UserCa {
        /// The Secret.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The three Secrets as read (with data), any of them possibly absent, and the user's
/// CA Secret when one is configured.
#[derive(Clone, Debug, Default)]
pub struct CertSecrets {
    /// `<name>-ca-root`.
    pub root: Option<Secret>,
    /// `<name>-ca`.
    pub ca: Option<Secret>,
    /// `<name>-tls`.
    pub tls: Option<Secret>,
    /// The user's intermediate, when `caSecret` is set.
    pub user_ca: Option<Secret>,
}

/// One Secret to write whole: its data and annotations.
#[derive(Clone, PartialEq)]
pub struct SecretWrite {
    /// Name of the Secret.
    pub name: String,
    /// Every file.
    pub data: BTreeMap<String, ByteString>,
    /// Every annotation.
    pub annotations: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecretWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWrite")
            .field("name", &self.name)
            .field("files", &self.data.keys().collect::<Vec<_>>())
            .field("annotations", &self.annotations)
            .finish()
    }
}

/// The root that signs, when to look at it again, the bundle and the signer's serial.
struct RootOutcome {
    root: Issued,
    wake: Option<Timestamp>,
    bundle: String,
    serial: String,
}

/// What one reconcile should write.
#[derive(Debug, Default)]
pub struct CertPlan {
    /// Secrets to write, in order (root, then intermediate, then leaves), each whole:
    /// data, type and annotations.
    pub writes: Vec<SecretWrite>,
    /// What was done, for events.
    pub done: Vec<String>,
    /// When to look again.
    pub next: Option<Timestamp>,
}

fn file(s: &Option<Secret>, key: &str) -> Option<String> {
    s.as_ref()
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

fn annotation(s: &Option<Secret>, key: &str) -> Option<String> {
    s.as_ref()
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(key))
        .cloned()
}

fn recorded(info: &CertInfo, issuer_serial: &str, percent: u32) -> BTreeMap<String, String> {
    let jitter = info.serial.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    BTreeMap::from([
        (SERIAL.to_owned(), info.serial.clone()),
        (ISSUER_SERIAL.to_owned(), issuer_serial.to_owned()),
        (NOT_AFTER.to_owned(), info.not_after.to_string()),
        (
            RENEW_AT.to_owned(),
            info.renew_at(percent, jitter).to_string(),
        ),
    ])
}

fn pem_pair(cert: &str, key: &str) -> BTreeMap<String, ByteString> {
    BTreeMap::from([
        (
            tls_files::CERT.to_owned(),
            ByteString(cert.as_bytes().to_vec()),
        ),
        (
            tls_files::KEY.to_owned(),
            ByteString(key.as_bytes().to_vec()),
        ),
    ])
}

/// The Secret as it is, with its trust bundle replaced by `bundle`; `None` when it
/// already holds that bundle.
fn rebundle(secret: &Option<Secret>, name: &str, bundle: &str) -> Option<SecretWrite> {
    if file(secret, tls_files::CA).as_deref() == Some(bundle) {
        return None;
    }
    let mut data = secret
        .as_ref()
        .and_then(|s| s.data.clone())
        .unwrap_or_default();
    data.insert(
        tls_files::CA.to_owned(),
        ByteString(bundle.as_bytes().to_vec()),
    );
    Some(SecretWrite {
        name: name.to_owned(),
        data,
        annotations: secret
            .as_ref()
            .and_then(|s| s.metadata.annotations.clone())
            .unwrap_or_default(),
    })
}

fn due(s: &Option<Secret>, now: Timestamp) -> bool {
    annotation(s, RENEW_AT)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_none_or(|t| t <= now)
}

/// The earliest renewal time recorded on the cached Secrets, when nothing else is due:
/// the reconcile wakes then rather than on a fixed resync.
pub fn next_due(gb: &GeneralBot, cached: &CertSecrets) -> Option<Timestamp> {
    let byo = gb.spec.security.certificates.ca_secret.is_some();
    let root = if byo { None } else { Some(&cached.root) };
    [root, Some(&cached.ca), Some(&cached.tls)]
        .into_iter()
        .flatten()
        .filter_map(|s| annotation(s, RENEW_AT).and_then(|t| t.parse::<Timestamp>().ok()))
        .min()
}

/// Whether the Secrets need reading: something is missing, due, inconsistent, a root
/// rotation is under way, or a force value is new. Works on cached metadata alone.
pub fn needs_work(gb: &GeneralBot, cached: &CertSecrets, now: Timestamp) -> bool {
    let byo = gb.spec.security.certificates.ca_secret.is_some();
    let force = force_value(gb);
    let root_ok = byo
        || (cached.root.is_some()
            && !due(&cached.root, now)
            && annotation(&cached.root, ROOT_PHASE).is_none_or(|p| p.contains("idle"))
            && !forced(
                force,
                annotation(&cached.root, ROOT_HONOURED).as_deref(),
                "ca",
            ));
    let chain_ok = cached.ca.is_some()
        && cached.tls.is_some()
        && !due(&cached.ca, now)
        && !due(&cached.tls, now)
        && annotation(&cached.tls, ISSUER_SERIAL) == annotation(&cached.ca, SERIAL)
        && (byo || annotation(&cached.ca, ISSUER_SERIAL) == annotation(&cached.root, SERIAL));
    !(root_ok && chain_ok)
}

/// The plan for the Secrets as read at `now`.
pub fn plan(
    gb: &GeneralBot,
    secrets: &CertSecrets,
    policy: &CertPolicy,
    now: Timestamp,
    window_open: bool,
) -> Result<CertPlan, CertError> {
    let ctx = BuildContext::new(gb).map_err(|e| CertError::UserCa {
        name: String::new(),
        problem: e.to_string(),
    })?;
    let mut out = CertPlan::default();
    let mut next: Option<Timestamp> = None;
    let mut wake = |t: Timestamp| next = Some(next.map_or(t, |n| n.min(t)));

    // 1. The root (generated mode) and the bundle.
    let (issuer_of_intermediate, bundle, root_serial) =
        match &gb.spec.security.certificates.ca_secret {
            Some(user) => {
                let missing = |what: &str| CertError::UserCa {
                    name: user.name.clone(),
                    problem: format!("has no {what}: it must hold tls.crt, tls.key and ca.crt"),
                };
                let cert =
                    file(&secrets.user_ca, tls_files::CERT).ok_or_else(|| missing("tls.crt"))?;
                file(&secrets.user_ca, tls_files::KEY).ok_or_else(|| missing("tls.key"))?;
                let bundle =
                    file(&secrets.user_ca, tls_files::CA).ok_or_else(|| missing("ca.crt"))?;
                let info = pki::read_info(&cert, "user intermediate")?;
                (None, bundle, info.serial)
            }
            None => {
                let force = force_value(gb);
                let outcome = plan_root(
                    &ctx,
                    secrets,
                    policy,
                    now,
                    window_open,
                    force,
                    &mut out.writes,
                    &mut out.done,
                )?;
                if let Some(t) = outcome.wake {
                    wake(t);
                }
                (Some(outcome.root), outcome.bundle, outcome.serial)
            }
        };

    // 2. The intermediate: re-issued when missing, due, or signed by another root.
    let ca_name = crate::certs::ca_secret_name(ctx.name);
    let current_ca = (
        file(&secrets.ca, tls_files::CERT),
        file(&secrets.ca, tls_files::KEY),
    );
    let ca_ok = match (&gb.spec.security.certificates.ca_secret, &current_ca) {
        (Some(_), _) => true,
        (None, (Some(_), Some(_))) => {
            !due(&secrets.ca, now)
                && annotation(&secrets.ca, ISSUER_SERIAL).as_deref() == Some(root_serial.as_str())
        }
        _ => false,
    };
    let (inter_cert, inter_key, inter_serial) =
        match (&gb.spec.security.certificates.ca_secret, ca_ok) {
            (Some(_), _) => {
                let cert = file(&secrets.user_ca, tls_files::CERT).unwrap_or_default();
                let key = file(&secrets.user_ca, tls_files::KEY).unwrap_or_default();
                let serial = pki::read_info(&cert, "user intermediate")?.serial;
                (cert, key, serial)
            }
            (None, true) => {
                let cert = current_ca.0.unwrap_or_default();
                let key = current_ca.1.unwrap_or_default();
                let serial = annotation(&secrets.ca, SERIAL).unwrap_or_default();
                if let Some(w) = rebundle(&secrets.ca, &ca_name, &bundle) {
                    out.writes.push(w);
                    out.done
                        .push("updated the trust bundle of the intermediate CA".to_owned());
                }
                (cert, key, serial)
            }
            (None, false) => {
                let Some(root) = &issuer_of_intermediate else {
                    return Err(CertError::UserCa {
                        name: String::new(),
                        problem: "no root to sign an intermediate".to_owned(),
                    });
                };
                let issued = intermediate_ca(
                    &Signer::of(root)?,
                    &format!("{} intermediate CA", ctx.name),
                    &permitted_dns(ctx.namespace),
                    now,
                    policy.intermediate,
                )?;
                let mut data = pem_pair(&issued.cert_pem, &issued.key_pem);
                data.insert(
                    tls_files::CA.to_owned(),
                    ByteString(bundle.clone().into_bytes()),
                );
                out.writes.push(SecretWrite {
                    name: ca_name.clone(),
                    data,
                    annotations: recorded(&issued.info, &root_serial, policy.renew_percent),
                });
                out.done
                    .push(format!("issued intermediate CA {}", issued.info.serial));
                let serial = issued.info.serial.clone();
                (issued.cert_pem.clone(), issued.key_pem.to_string(), serial)
            }
        };
    if let Some(t) = renew_time(&out.writes, &ca_name)
        .or_else(|| annotation(&secrets.ca, RENEW_AT).and_then(|t| t.parse().ok()))
    {
        wake(t);
    }

    // 3. The leaves: re-issued when missing, due, or signed by another intermediate.
    let tls_name = tls_secret_name(ctx.name);
    let clients: Vec<(String, String)> = declared_services(&gb.spec)
        .iter()
        .filter(|s| s.endpoint.tls.client_certificate)
        .map(|s| {
            (
                s.kind.id().to_owned(),
                gb.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let leaves_ok = secrets.tls.is_some()
        && !due(&secrets.tls, now)
        && annotation(&secrets.tls, ISSUER_SERIAL).as_deref() == Some(inter_serial.as_str())
        && clients
            .iter()
            .all(|(id, _)| file(&secrets.tls, &tls_files::client_cert(id)).is_some());
    if leaves_ok {
        if let Some(w) = rebundle(&secrets.tls, &tls_name, &bundle) {
            out.writes.push(w);
            out.done
                .push("updated the trust bundle of the bot".to_owned());
        }
        if let Some(t) = annotation(&secrets.tls, RENEW_AT).and_then(|t| t.parse().ok()) {
            wake(t);
        }
    } else {
        let signer = Signer::load(&inter_cert, &inter_key)?;
        let serving = serving_leaf(
            &signer,
            &service_dns_names(ctx.name, ctx.namespace),
            now,
            policy.leaf,
        )?;
        let mut data = pem_pair(
            &format!("{}{}", serving.cert_pem, inter_cert),
            &serving.key_pem,
        );
        data.insert(
            tls_files::CA.to_owned(),
            ByteString(bundle.clone().into_bytes()),
        );
        for (id, user) in &clients {
            let c: Issued = client_leaf(&signer, user, now, policy.leaf)?;
            data.insert(
                tls_files::client_cert(id),
                ByteString(format!("{}{}", c.cert_pem, inter_cert).into_bytes()),
            );
            data.insert(
                tls_files::client_key(id),
                ByteString(c.key_pem.as_bytes().to_vec()),
            );
        }
        let ann = recorded(&serving.info, &inter_serial, policy.renew_percent);
        if let Some(t) = ann.get(RENEW_AT).and_then(|t| t.parse().ok()) {
            wake(t);
        }
        out.writes.push(SecretWrite {
            name: tls_name,
            data,
            annotations: ann,
        });
        out.done.push(format!(
            "issued serving certificate {}",
            serving.info.serial
        ));
    }
    out.next = next;
    Ok(out)
}

fn renew_time(writes: &[SecretWrite], name: &str) -> Option<Timestamp> {
    writes
        .iter()
        .rev()
        .find(|w| w.name == name)
        .and_then(|w| w.annotations.get(RENEW_AT))
        .and_then(|t| t.parse().ok())
}

type Writes = Vec<SecretWrite>;

/// Steps the root: returns the root that signs intermediates (and when to look again),
/// the trust bundle, and the signing root's serial.
#[allow(clippy::too_many_arguments)]
fn plan_root(
    ctx: &BuildContext<'_>,
    secrets: &CertSecrets,
    policy: &CertPolicy,
    now: Timestamp,
    window_open: bool,
    force: Option<&str>,
    writes: &mut Writes,
    done: &mut Vec<String>,
) -> Result<RootOutcome, CertError> {
    let name = root_secret_name(ctx.name);
    let read = |key: &str| file(&secrets.root, key);
    let later = |d: SignedDuration| now.checked_add(d).unwrap_or(Timestamp::MAX);
    let issue_root = || root_ca(&format!("{} root CA", ctx.name), now, policy.root);
    let mut data: BTreeMap<String, ByteString> = secrets
        .root
        .as_ref()
        .and_then(|s| s.data.clone())
        .unwrap_or_default();
    let mut ann: BTreeMap<String, String> = secrets
        .root
        .as_ref()
        .and_then(|s| s.metadata.annotations.clone())
        .unwrap_or_default();
    let mut changed = false;

    let (current_cert, current_key) = match (read(tls_files::CERT), read(tls_files::KEY)) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let root = issue_root()?;
            data = pem_pair(&root.cert_pem, &root.key_pem);
            ann = recorded(&root.info, &root.info.serial, policy.renew_percent);
            ann.insert(ROOT_PHASE.to_owned(), phase_json(&RootPhase::Idle));
            if let Some(v) = force.filter(|v| forced(Some(v), None, "ca")) {
                ann.insert(ROOT_HONOURED.to_owned(), v.to_owned());
            }
            changed = true;
            done.push(format!("issued root CA {}", root.info.serial));
            (root.cert_pem.clone(), root.key_pem.to_string())
        }
    };
    let mut current_cert = current_cert;
    let mut current_key = current_key;
    let phase: RootPhase = ann
        .get(ROOT_PHASE)
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let is_forced = forced(force, ann.get(ROOT_HONOURED).map(String::as_str), "ca");
    let mut wake = None;
    match phase {
        RootPhase::Idle => {
            let renew = ann
                .get(RENEW_AT)
                .and_then(|t| t.parse::<Timestamp>().ok())
                .unwrap_or(now);
            if is_forced || now >= renew {
                let next = issue_root()?;
                data.insert(
                    "next.crt".to_owned(),
                    ByteString(next.cert_pem.clone().into_bytes()),
                );
                data.insert(
                    "next.key".to_owned(),
                    ByteString(next.key_pem.as_bytes().to_vec()),
                );
                ann.insert(
                    ROOT_PHASE.to_owned(),
                    phase_json(&RootPhase::Added { since: now }),
                );
                if let (true, Some(v)) = (is_forced, force) {
                    ann.insert(ROOT_HONOURED.to_owned(), v.to_owned());
                }
                changed = true;
                done.push(format!(
                    "CA rotation: added root {} to the trust bundle",
                    next.info.serial
                ));
                wake = Some(later(policy.propagation));
            } else {
                wake = Some(renew);
            }
        }
        RootPhase::Added { since } => {
            let ready = since
                .checked_add(policy.propagation)
                .unwrap_or(Timestamp::MAX);
            match (read("next.crt"), read("next.key")) {
                (Some(next_cert), Some(next_key)) if now >= ready && window_open => {
                    let info = pki::read_info(&next_cert, "next root")?;
                    data.insert(
                        "previous.crt".to_owned(),
                        ByteString(current_cert.clone().into_bytes()),
                    );
                    data.insert(
                        tls_files::CERT.to_owned(),
                        ByteString(next_cert.clone().into_bytes()),
                    );
                    data.insert(
                        tls_files::KEY.to_owned(),
                        ByteString(next_key.clone().into_bytes()),
                    );
                    data.remove("next.crt");
                    data.remove("next.key");
                    ann.extend(recorded(&info, &info.serial, policy.renew_percent));
                    ann.insert(
                        ROOT_PHASE.to_owned(),
                        phase_json(&RootPhase::Activated { since: now }),
                    );
                    changed = true;
                    done.push(format!(
                        "CA rotation: root {} now signs; re-issuing below it",
                        info.serial
                    ));
                    current_cert = next_cert;
                    current_key = next_key;
                    wake = Some(later(policy.propagation));
                }
                (Some(_), Some(_)) => {
                    wake = Some(if now < ready {
                        ready
                    } else {
                        later(SignedDuration::from_secs(60))
                    });
                }
                _ => {
                    // The next root was lost (edited by hand): start the rotation again.
                    ann.insert(ROOT_PHASE.to_owned(), phase_json(&RootPhase::Idle));
                    changed = true;
                    wake = Some(now);
                }
            }
        }
        RootPhase::Activated { since } => {
            let overlap_over = since
                .checked_add(policy.propagation)
                .is_ok_and(|t| now >= t);
            let root_serial = ann.get(SERIAL).cloned().unwrap_or_default();
            let ca_on_new_root =
                annotation(&secrets.ca, ISSUER_SERIAL).as_deref() == Some(root_serial.as_str());
            let leaves_on_new = annotation(&secrets.tls, ISSUER_SERIAL)
                == annotation(&secrets.ca, SERIAL)
                && secrets.tls.is_some();
            if overlap_over && ca_on_new_root && leaves_on_new {
                data.remove("previous.crt");
                ann.insert(ROOT_PHASE.to_owned(), phase_json(&RootPhase::Idle));
                changed = true;
                done.push(
                    "CA rotation: retired the previous root from the trust bundle".to_owned(),
                );
            } else {
                wake = Some(later(if overlap_over {
                    SignedDuration::from_secs(30)
                } else {
                    policy.propagation
                }));
            }
        }
    }
    let bundle: String = [tls_files::CERT, "next.crt", "previous.crt"]
        .iter()
        .filter_map(|k| {
            data.get(*k)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        })
        .collect();
    let serial = pki::read_info(&current_cert, "root")?.serial;
    let root = Issued {
        info: pki::read_info(&current_cert, "root")?,
        cert_pem: current_cert,
        key_pem: zeroize::Zeroizing::new(current_key),
    };
    if changed {
        writes.push(SecretWrite {
            name,
            data,
            annotations: ann,
        });
    }
    Ok(RootOutcome {
        root,
        wake,
        bundle,
        serial,
    })
}

fn phase_json(p: &RootPhase) -> String {
    serde_json::to_string(p).unwrap_or_default()
}

/// The status of every certificate, from the Secrets' annotations.
pub fn status(gb: &GeneralBot, secrets: &CertSecrets) -> Vec<CertificateStatus> {
    let byo = gb.spec.security.certificates.ca_secret.is_some();
    let mut out = Vec::new();
    let entries: [(&str, &Option<Secret>, bool); 3] = [
        ("root", &secrets.root, !byo),
        ("intermediate", &secrets.ca, !byo),
        ("serving", &secrets.tls, true),
    ];
    for (name, secret, shown) in entries {
        if !shown {
            continue;
        }
        if let (Some(serial), Some(not_after), Some(renew_at)) = (
            annotation(secret, SERIAL),
            annotation(secret, NOT_AFTER),
            annotation(secret, RENEW_AT),
        ) {
            out.push(CertificateStatus {
                name: name.to_owned(),
                serial,
                not_after,
                renew_at,
            });
        }
    }
    out
}
