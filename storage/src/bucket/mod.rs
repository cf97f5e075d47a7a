//! The bucket's security settings: what a GeneralBot asks for ([`Desired`]), what the
//! service reports ([`Observed`], read back with the S3 API), the difference
//! ([`drift`], pure) and the calls that set each one ([`apply`]). Lifecycle rules that
//! are not ours are kept as they are.

mod calls;

pub use calls::{apply, read};

use crate::layout::TEMPORARY;
use crate::{Client, StorageError};

/// Id of our lifecycle rule for temporary files.
pub const TEMPORARY_RULE: &str = "generalbot-temporary-files";
/// Id of our lifecycle rule that aborts uploads left incomplete.
pub const INCOMPLETE_RULE: &str = "generalbot-incomplete-uploads";

/// Default encryption of new objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// AES-256 with keys the service holds (`AES256`).
    SseS3,
    /// A KMS key (`aws:kms`).
    SseKms {
        /// Its id or ARN.
        key_id: String,
    },
}

impl std::fmt::Display for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SseS3 => f.write_str("SSE-S3 (AES256)"),
            Self::SseKms { key_id } => write!(f, "SSE-KMS (key {key_id})"),
        }
    }
}

/// Object lock retention mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Users with a special permission can still delete.
    Governance,
    /// Nobody can delete before the retention ends.
    Compliance,
}

/// Default object lock retention of new objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLock {
    /// The mode.
    pub mode: LockMode,
    /// Days each object is locked.
    pub days: u32,
}

/// What a GeneralBot asks of its bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Default encryption.
    pub encryption: Encryption,
    /// Versioning on (off leaves the bucket's versioning as it is: S3 cannot turn it off).
    pub versioning: bool,
    /// Days before `tmp/` objects expire.
    pub temporary_retention_days: u32,
    /// Object lock, where asked.
    pub object_lock: Option<ObjectLock>,
}

/// What the service reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Default encryption, if any.
    pub encryption: Option<Encryption>,
    /// Versioning is enabled.
    pub versioning: bool,
    /// Days of our temporary-files rule, if present and enabled on `tmp/`.
    pub temporary_rule_days: Option<u32>,
    /// Our incomplete-uploads rule is present.
    pub incomplete_rule: bool,
    /// Default object lock, if any.
    pub object_lock: Option<ObjectLock>,
    /// All four public access blocks are on.
    pub public_access_blocked: bool,
}

/// One setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setting {
    /// Default encryption.
    Encryption,
    /// Versioning.
    Versioning,
    /// Lifecycle rules.
    Lifecycle,
    /// Object lock.
    ObjectLock,
    /// Public access block.
    PublicAccessBlock,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Encryption => "default encryption",
            Self::Versioning => "versioning",
            Self::Lifecycle => "lifecycle",
            Self::ObjectLock => "object lock",
            Self::PublicAccessBlock => "public access block",
        })
    }
}

/// The settings that differ from what is asked.
pub fn drift(desired: &Desired, seen: &Observed) -> Vec<Setting> {
    let mut out = Vec::new();
    if seen.encryption.as_ref() != Some(&desired.encryption) {
        out.push(Setting::Encryption);
    }
    if desired.versioning && !seen.versioning {
        out.push(Setting::Versioning);
    }
    if seen.temporary_rule_days != Some(desired.temporary_retention_days) || !seen.incomplete_rule {
        out.push(Setting::Lifecycle);
    }
    if desired.object_lock.is_some() && seen.object_lock != desired.object_lock {
        out.push(Setting::ObjectLock);
    }
    if !seen.public_access_blocked {
        out.push(Setting::PublicAccessBlock);
    }
    out
}

/// One line that says what was verified.
pub fn describe(seen: &Observed) -> String {
    let mut parts = vec![match &seen.encryption {
        Some(e) => e.to_string(),
        None => "no default encryption".to_owned(),
    }];
    parts.push(
        if seen.versioning {
            "versioning on"
        } else {
            "versioning off"
        }
        .to_owned(),
    );
    parts.push(match seen.temporary_rule_days {
        Some(d) => format!("{TEMPORARY} expires after {d} d"),
        None => format!("no expiry of {TEMPORARY}"),
    });
    if let Some(l) = &seen.object_lock {
        parts.push(format!("object lock {:?} {} d", l.mode, l.days));
    }
    parts.push(
        if seen.public_access_blocked {
            "public access blocked"
        } else {
            "public access not blocked"
        }
        .to_owned(),
    );
    parts.join(", ")
}

/// Reads the bucket, corrects what drifted, and reads it again: returns what was
/// corrected and what is now there (which the caller judges with [`drift`] again).
pub async fn reconcile(
    client: &Client,
    bucket: &str,
    desired: &Desired,
) -> Result<(Vec<Setting>, Observed), StorageError> {
    let before = read(client, bucket).await?;
    let fix = drift(desired, &before);
    if fix.is_empty() {
        return Ok((fix, before));
    }
    apply(client, bucket, desired, &fix).await?;
    Ok((fix, read(client, bucket).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> Desired {
        Desired {
            encryption: Encryption::SseS3,
            versioning: true,
            temporary_retention_days: 30,
            object_lock: None,
        }
    }

    #[test]
    fn a_bare_bucket_drifts_on_everything_asked() {
        assert_eq!(
            drift(&want(), &Observed::default()),
            [
                Setting::Encryption,
                Setting::Versioning,
                Setting::Lifecycle,
                Setting::PublicAccessBlock
            ]
        );
        let mut lock = want();
        lock.object_lock = Some(ObjectLock {
            mode: LockMode::Governance,
            days: 7,
        });
        assert!(drift(&lock, &Observed::default()).contains(&Setting::ObjectLock));
    }

    #[test]
    fn a_conforming_bucket_has_no_drift_and_says_what_it_saw() {
        let seen = Observed {
            encryption: Some(Encryption::SseS3),
            versioning: true,
            temporary_rule_days: Some(30),
            incomplete_rule: true,
            object_lock: None,
            public_access_blocked: true,
        };
        assert!(drift(&want(), &seen).is_empty());
        assert_eq!(
            describe(&seen),
            "SSE-S3 (AES256), versioning on, tmp/ expires after 30 d, public access blocked"
        );
        let mut kms = want();
        kms.encryption = Encryption::SseKms { key_id: "k".into() };
        assert_eq!(drift(&kms, &seen), [Setting::Encryption]);
        let mut shorter = want();
        shorter.temporary_retention_days = 7;
        assert_eq!(drift(&shorter, &seen), [Setting::Lifecycle]);
    }
}
