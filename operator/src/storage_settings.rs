//! What the operator asks of a bot's bucket ([`desired`], from the spec) and what it
//! saw there, judged into the `StorageEncryption` condition. The operator applies the
//! settings and reads them back ([`generalbot_storage::bucket::reconcile`]); drift is
//! corrected and said. Pure; the calls are [`crate::controller`]'s.

use generalbot_crds::v1alpha1::{BucketEncryptionMode, GeneralBotSpec, ObjectLockMode};
use generalbot_storage::bucket::{
    self, Desired, Encryption, LockMode, ObjectLock, Observed, Setting,
};

use crate::database_tls::Judgement;

/// The condition type.
pub const CONDITION: &str = "StorageEncryption";

/// The bucket settings the spec asks for.
pub fn desired(spec: &GeneralBotSpec) -> Desired {
    let e = &spec.encryption;
    Desired {
        encryption: match e.bucket.mode {
            BucketEncryptionMode::SseS3 => Encryption::SseS3,
            BucketEncryptionMode::SseKms => Encryption::SseKms {
                key_id: e.bucket.kms_key_id.clone().unwrap_or_default(),
            },
        },
        versioning: e.versioning,
        temporary_retention_days: e.temporary_file_retention_days,
        object_lock: e.object_lock.as_ref().map(|l| ObjectLock {
            mode: match l.mode {
                ObjectLockMode::Governance => LockMode::Governance,
                ObjectLockMode::Compliance => LockMode::Compliance,
            },
            days: l.days,
        }),
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Read back after correcting `corrected`.
    Read {
        /// The settings that had drifted and were applied.
        corrected: Vec<Setting>,
        /// What the bucket reports now.
        seen: Observed,
    },
    /// The credentials or the CA are missing.
    NotConfigured(String),
    /// The service refused or could not be reached.
    Failed(String),
}

fn list(settings: &[Setting]) -> String {
    settings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judges a check of `bucket` against `want`.
pub fn judge(checked: &Checked, want: &Desired, bucket: &str) -> Judgement {
    match checked {
        Checked::Read { corrected, seen } => {
            let left = bucket::drift(want, seen);
            if !left.is_empty() {
                return Judgement::new(
                    false,
                    "NotApplied",
                    format!(
                        "bucket {bucket} still differs after applying {}: it reports {}; give the bot's storage credentials the right to set bucket configuration (encryption, versioning, lifecycle, object lock, public access block)",
                        list(&left),
                        bucket::describe(seen)
                    ),
                );
            }
            let mut message = format!("bucket {bucket}: {}", bucket::describe(seen));
            if !corrected.is_empty() {
                message.push_str(&format!("; corrected: {}", list(corrected)));
            }
            Judgement::new(true, "Verified", message)
        }
        Checked::NotConfigured(why) => Judgement::new(false, "NotConfigured", why.clone()),
        Checked::Failed(why) => Judgement::new(false, "Unreachable", why.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_corrected_and_refused() {
        let spec: GeneralBotSpec = serde_json::from_value(serde_json::json!({
            "services": {"postgres": {"host": "db", "peer": {"cidrs": ["10.0.0.0/8"]}}},
            "encryption": {"bucket": {"mode": "SSE-KMS", "kmsKeyId": "k1"}, "objectLock": {"mode": "Compliance", "days": 7}}
        }))
        .unwrap();
        let want = desired(&spec);
        assert_eq!(
            want.encryption,
            Encryption::SseKms {
                key_id: "k1".into()
            }
        );
        assert_eq!(
            want.object_lock,
            Some(ObjectLock {
                mode: LockMode::Compliance,
                days: 7
            })
        );
        assert_eq!(want.temporary_retention_days, 30);
        let good = Observed {
            encryption: Some(want.encryption.clone()),
            versioning: true,
            temporary_rule_days: Some(30),
            incomplete_rule: true,
            object_lock: want.object_lock.clone(),
            public_access_blocked: true,
        };
        let j = judge(
            &Checked::Read {
                corrected: vec![Setting::Versioning],
                seen: good.clone(),
            },
            &want,
            "b",
        );
        assert_eq!((j.status, j.reason), ("True", "Verified"));
        assert!(
            j.message.ends_with("; corrected: versioning"),
            "{}",
            j.message
        );
        let mut open = good;
        open.public_access_blocked = false;
        let j = judge(
            &Checked::Read {
                corrected: vec![],
                seen: open,
            },
            &want,
            "b",
        );
        assert_eq!((j.status, j.reason), ("False", "NotApplied"));
        assert!(j.message.contains("public access block"), "{}", j.message);
        let j = judge(&Checked::Failed("down".into()), &want, "b");
        assert_eq!((j.status, j.reason), ("False", "Unreachable"));
    }
}
