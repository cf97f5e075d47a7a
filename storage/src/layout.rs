//! The bucket's layout, one place for every name in it:
//!
//! - `tmp/`: temporary files (attachments in transit, data exports), expired by the
//!   bucket's lifecycle rule after the retention, and by the bot server's own sweep;
//! - `backups/<UTC time>-<key id>.gbbak`: encrypted database backups. The name carries
//!   the time and the data key that sealed it, so the retention and the key-usage report
//!   need only a listing.

use jiff::Timestamp;

use crate::{Client, StorageError};

/// Prefix of temporary files.
pub const TEMPORARY: &str = "tmp/";
/// Prefix of backups.
pub const BACKUPS: &str = "backups/";
const SUFFIX: &str = ".gbbak";
const TIME: &str = "%Y%m%dT%H%M%SZ";

/// The object key of a temporary file: `tmp/<kind>/<id>` (ids, never user names).
pub fn temporary_key(kind: &str, id: &str) -> String {
    format!("{TEMPORARY}{kind}/{id}")
}

/// The object key of a backup taken at `at` under data key `key_id`.
pub fn backup_key(at: Timestamp, key_id: &str) -> String {
    let t = at.strftime(TIME);
    format!("{BACKUPS}{t}-{key_id}{SUFFIX}")
}

/// The time and key id of a backup's object key; `None` for anything else (which is
/// never pruned or counted).
pub fn parse_backup_key(key: &str) -> Option<(Timestamp, String)> {
    let name = key.strip_prefix(BACKUPS)?.strip_suffix(SUFFIX)?;
    let (time, key_id) = name.split_once('-')?;
    let at = jiff::fmt::strtime::parse(TIME, time)
        .ok()?
        .to_datetime()
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    (!key_id.is_empty()).then(|| (at, key_id.to_owned()))
}

/// One backup in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupObject {
    /// Its object key.
    pub key: String,
    /// When it was taken.
    pub at: Timestamp,
    /// The data key that sealed it.
    pub key_id: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Every backup in `bucket`, oldest first.
pub async fn list_backups(
    client: &Client,
    bucket: &str,
) -> Result<Vec<BackupObject>, StorageError> {
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(BACKUPS)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| StorageError::call("ListObjectsV2", bucket, e))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if let Some((at, key_id)) = parse_backup_key(key) {
                out.push(BackupObject {
                    key: key.to_owned(),
                    at,
                    key_id,
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                });
            }
        }
    }
    out.sort_by_key(|b| b.at);
    Ok(out)
}

/// The backups past the retention at `now`: older than `retention_days`, never the
/// newest one (a bot whose backups keep failing still keeps its last good backup).
pub fn expired(
    backups: &[BackupObject],
    now: Timestamp,
    retention_days: u32,
) -> Vec<&BackupObject> {
    let horizon = now - jiff::SignedDuration::from_hours(24 * i64::from(retention_days));
    let newest = backups.iter().map(|b| b.at).max();
    backups
        .iter()
        .filter(|b| b.at < horizon && Some(b.at) != newest)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn backup_keys_round_trip_and_foreign_names_are_ignored() {
        let at: Timestamp = "2026-11-30T12:00:05Z".parse().unwrap();
        let k = backup_key(at, "d-2");
        assert_eq!(k, "backups/20261130T120005Z-d-2.gbbak");
        assert_eq!(parse_backup_key(&k), Some((at, "d-2".to_owned())));
        for other in [
            "backups/notes.txt",
            "tmp/x",
            "backups/2026-k.gbbak",
            "backups/20261130T120005Z-.gbbak",
        ] {
            assert_eq!(parse_backup_key(other), None, "{other}");
        }
        assert_eq!(temporary_key("attachments", "abc"), "tmp/attachments/abc");
    }

    #[test]
    fn retention_keeps_the_newest_backup_however_old() {
        let b = |day: i64| BackupObject {
            key: format!("k{day}"),
            at: Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(24 * day),
            key_id: "k".into(),
            size: 1,
        };
        let all = vec![b(0), b(10), b(40), b(45)];
        let now = Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(24 * 50);
        let gone: Vec<_> = expired(&all, now, 30)
            .iter()
            .map(|b| b.key.clone())
            .collect();
        assert_eq!(gone, ["k0", "k10"]);
        let late = Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(24 * 500);
        let gone: Vec<_> = expired(&all, late, 30)
            .iter()
            .map(|b| b.key.clone())
            .collect();
        assert_eq!(gone, ["k0", "k10", "k40"]);
    }
}
