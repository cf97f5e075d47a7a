//! When the next rotation is due, for the status and `kubectl get gb`: the earliest of
//! each certificate's renewal time and each key ring's activation plus its period.

use generalbot_crds::{GeneralBot, GeneralBotStatus};

/// The earliest due rotation: each certificate's renewal time, each key ring's activation
/// plus its period.
pub fn next_rotation(gb: &GeneralBot, status: &GeneralBotStatus) -> Option<String> {
    let keys = &gb.spec.security.keys;
    let period = |ring: &str| match ring {
        "jwt" => Some(keys.jwt_rotation_days),
        "data" => Some(keys.data_key_rotation_days),
        "field" => Some(keys.field_key_rotation_days),
        "hmac" => Some(keys.hmac_rotation_days),
        _ => None,
    };
    let rings = status.key_rings.iter().filter_map(|r| {
        let since: jiff::Timestamp = r.active_since.parse().ok()?;
        let days = i64::from(period(&r.name)?);
        since
            .checked_add(jiff::SignedDuration::from_hours(days * 24))
            .ok()
    });
    let certificates = status
        .certificates
        .iter()
        .filter_map(|c| c.renew_at.parse::<jiff::Timestamp>().ok());
    rings
        .chain(certificates)
        .min()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::mk_gb;
    use generalbot_crds::v1alpha1::{CertificateStatus, KeyRingStatus};

    #[test]
    fn the_next_rotation_is_the_earliest_due() {
        let gb = mk_gb("bot");
        let ring = |name: &str, since: &str| KeyRingStatus {
            name: name.to_owned(),
            active_key_id: format!("{name}-1"),
            active_since: since.to_owned(),
            keys: 1,
            rotation_phase: None,
        };
        let mut status = GeneralBotStatus {
            key_rings: vec![
                ring("jwt", "2026-11-01T00:00:00Z"),
                ring("hmac", "2026-10-01T00:00:00Z"),
            ],
            ..GeneralBotStatus::default()
        };
        let jwt_due = jiff::Timestamp::from_second(
            "2026-11-01T00:00:00Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_second()
                + i64::from(gb.spec.security.keys.jwt_rotation_days) * 86_400,
        )
        .unwrap();
        assert_eq!(
            next_rotation(&gb, &status).unwrap(),
            jwt_due.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        );
        status.certificates = vec![CertificateStatus {
            name: "serving".to_owned(),
            serial: "01".to_owned(),
            not_after: "2026-12-31T00:00:00Z".to_owned(),
            renew_at: "2026-11-15T12:00:00Z".to_owned(),
        }];
        assert_eq!(next_rotation(&gb, &status).unwrap(), "2026-11-15T12:00:00Z");
        assert_eq!(next_rotation(&gb, &GeneralBotStatus::default()), None);
    }
}
