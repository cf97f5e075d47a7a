//! What `kubectl generalbot` shows and sets, apart from I/O: the one-screen status of a
//! GeneralBot (conditions, certificates with days left, key rings with their active key
//! and age, rotation, backups, the audit chain head) as text or JSON, and the force
//! annotation `rotate` sets.

use generalbot_crds::GeneralBot;
use serde::Serialize;

use crate::rotation::triggers::FORCE_ANNOTATION;

/// The rings `rotate` accepts.
pub const RINGS: [&str; 6] = ["jwt", "data", "field", "hmac", "ca", "all"];

/// A certificate as shown.
#[derive(Debug, Serialize)]
pub struct CertificateView {
    /// Which.
    pub name: String,
    /// Serial.
    pub serial: String,
    /// Expiry.
    pub not_after: String,
    /// Whole days left (negative once expired).
    pub days_left: Option<i64>,
    /// When it renews.
    pub renew_at: String,
}

/// A key ring as shown.
#[derive(Debug, Serialize)]
pub struct RingView {
    /// Which.
    pub name: String,
    /// Its active key.
    pub active_key_id: String,
    /// Days since that key became active.
    pub age_days: Option<i64>,
    /// Keys held.
    pub keys: u32,
    /// Rotation phase, if one is under way.
    pub rotation_phase: Option<String>,
}

/// The one-screen status.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Replicas asked for.
    pub replicas: i32,
    /// Replicas available.
    pub available_replicas: Option<i32>,
    /// Where replicas share state.
    pub shared_state: Option<String>,
    /// The image.
    pub image: String,
    /// The conditions as `(type, status, reason, message)`.
    pub conditions: Vec<(String, String, String, String)>,
    /// Certificates.
    pub certificates: Vec<CertificateView>,
    /// Key rings.
    pub key_rings: Vec<RingView>,
    /// The next rotation due.
    pub next_rotation: Option<String>,
    /// A forced rotation asked for, if any.
    pub forced_rotation: Option<String>,
    /// The newest backup, as the status reports it.
    pub last_backup: Option<generalbot_crds::v1alpha1::BackupStatus>,
    /// The audit chain row the operator recorded: (sequence, hash, when).
    pub audit_chain: Option<(i64, String, String)>,
}

fn days_between(from: jiff::Timestamp, to: &str) -> Option<i64> {
    let to: jiff::Timestamp = to.parse().ok()?;
    Some(to.duration_since(from).as_secs().div_euclid(86_400))
}

/// The status of `gb` as seen at `now`.
pub fn view(gb: &GeneralBot, now: jiff::Timestamp) -> StatusView {
    let status = gb.status.clone().unwrap_or_default();
    StatusView {
        namespace: gb.metadata.namespace.clone().unwrap_or_default(),
        name: gb.metadata.name.clone().unwrap_or_default(),
        replicas: gb.spec.server.replicas,
        available_replicas: status.available_replicas,
        shared_state: status.shared_state.clone(),
        image: gb.spec.server.image.clone(),
        conditions: status
            .conditions
            .iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                )
            })
            .collect(),
        certificates: status
            .certificates
            .iter()
            .map(|c| CertificateView {
                name: c.name.clone(),
                serial: c.serial.clone(),
                not_after: c.not_after.clone(),
                days_left: days_between(now, &c.not_after),
                renew_at: c.renew_at.clone(),
            })
            .collect(),
        key_rings: status
            .key_rings
            .iter()
            .map(|r| RingView {
                name: r.name.clone(),
                active_key_id: r.active_key_id.clone(),
                age_days: r
                    .active_since
                    .parse::<jiff::Timestamp>()
                    .ok()
                    .and_then(|since| days_between(since, &now.to_string())),
                keys: r.keys,
                rotation_phase: r.rotation_phase.clone(),
            })
            .collect(),
        next_rotation: status.next_rotation.clone(),
        forced_rotation: gb
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(FORCE_ANNOTATION).cloned()),
        last_backup: status.last_backup.clone(),
        audit_chain: status.audit_chain.map(|a| (a.seq, a.hash, a.recorded_at)),
    }
}

fn or_dash(v: Option<&str>) -> &str {
    v.filter(|s| !s.is_empty()).unwrap_or("-")
}

/// The status as text for one screen.
pub fn text(v: &StatusView) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let ready = v.conditions.iter().find(|c| c.0 == "Ready");
    let _ = writeln!(
        out,
        "GeneralBot {}/{}: Ready {} ({})",
        v.namespace,
        v.name,
        or_dash(ready.map(|c| c.1.as_str())),
        or_dash(ready.map(|c| c.2.as_str()))
    );
    let _ = writeln!(
        out,
        "Replicas {}/{} available   shared state: {}   image: {}",
        v.available_replicas.unwrap_or(0),
        v.replicas,
        or_dash(v.shared_state.as_deref()),
        v.image
    );
    let _ = writeln!(out, "\nConditions");
    for (t, s, r, m) in &v.conditions {
        let _ = writeln!(out, "  {t:<20} {s:<6} {r:<24} {m}");
    }
    let _ = writeln!(out, "\nCertificates");
    if v.certificates.is_empty() {
        let _ = writeln!(out, "  none reported yet");
    }
    for c in &v.certificates {
        let days = c
            .days_left
            .map_or("-".to_owned(), |d| format!("{d} days left"));
        let _ = writeln!(
            out,
            "  {:<14} {:<14} not after {}  ({days}; renews at {})",
            c.name, c.serial, c.not_after, c.renew_at
        );
    }
    let _ = writeln!(out, "\nKey rings");
    if v.key_rings.is_empty() {
        let _ = writeln!(out, "  none reported yet");
    }
    for r in &v.key_rings {
        let age = r.age_days.map_or("-".to_owned(), |d| format!("{d} days"));
        let _ = writeln!(
            out,
            "  {:<6} active {:<40} age {age:<9} keys {}  {}",
            r.name,
            r.active_key_id,
            r.keys,
            r.rotation_phase
                .as_deref()
                .map(|p| format!("rotation: {p}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "\nRotation");
    let _ = writeln!(out, "  next due: {}", or_dash(v.next_rotation.as_deref()));
    if let Some(f) = &v.forced_rotation {
        let _ = writeln!(out, "  forced:   {f}");
    }
    let _ = writeln!(out, "\nBackups");
    let _ = match &v.last_backup {
        Some(b) => writeln!(
            out,
            "  last backup: {} ({} bytes, key {}, {} kept)\n  object: {}",
            b.time, b.size_bytes, b.key_id, b.count, b.object
        ),
        None => writeln!(out, "  last backup: none reported"),
    };
    let _ = writeln!(out, "\nAudit chain");
    match &v.audit_chain {
        Some((seq, hash, at)) => {
            let short: String = hash.chars().take(16).collect();
            let _ = writeln!(out, "  row {seq} ({short}…) recorded at {at}");
        }
        None => {
            let _ = writeln!(out, "  not checked yet");
        }
    }
    out
}

/// The value `rotate` sets: the rings and a tag that makes it a new request.
pub fn force_value(ring: &str, now: jiff::Timestamp) -> Option<String> {
    RINGS
        .contains(&ring)
        .then(|| format!("{ring}@{}", now.strftime("%Y%m%dT%H%M%SZ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::mk_gb;
    use generalbot_crds::GeneralBotStatus;
    use generalbot_crds::v1alpha1::{AuditChainStatus, CertificateStatus, KeyRingStatus};

    #[test]
    fn the_status_fits_one_screen_with_days_left_and_ages() {
        let mut gb = mk_gb("support-bot");
        gb.status = Some(GeneralBotStatus {
            certificates: vec![CertificateStatus {
                name: "serving".into(),
                serial: "0a1b".into(),
                not_after: "2026-12-30T00:00:00Z".into(),
                renew_at: "2026-12-20T00:00:00Z".into(),
            }],
            key_rings: vec![KeyRingStatus {
                name: "jwt".into(),
                active_key_id: "jwt-1".into(),
                active_since: "2026-11-20T00:00:00Z".into(),
                keys: 2,
                rotation_phase: Some("Activated".into()),
            }],
            audit_chain: Some(AuditChainStatus {
                seq: 42,
                hash: "0123456789abcdef0123".into(),
                recorded_at: "2026-11-30T00:00:00Z".into(),
            }),
            next_rotation: Some("2026-12-20T00:00:00Z".into()),
            ..GeneralBotStatus::default()
        });
        let now: jiff::Timestamp = "2026-11-30T00:00:00Z".parse().unwrap();
        let v = view(&gb, now);
        assert_eq!(v.certificates[0].days_left, Some(30));
        assert_eq!(v.key_rings[0].age_days, Some(10));
        let t = text(&v);
        assert!(t.contains("30 days left"), "{t}");
        assert!(t.contains("rotation: Activated"), "{t}");
        assert!(t.contains("row 42 (0123456789abcdef…)"), "{t}");
        assert!(t.contains("next due: 2026-12-20T00:00:00Z"), "{t}");
        assert!(t.lines().count() < 40, "one screen");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["key_rings"][0]["age_days"], 10);
    }

    #[test]
    fn rotate_accepts_the_rings_only() {
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        assert_eq!(force_value("all", now).unwrap(), "all@20261130T120000Z");
        assert_eq!(force_value("jwt", now).unwrap(), "jwt@20261130T120000Z");
        assert!(force_value("everything", now).is_none());
    }
}
