//! The key-usage report ([`contract::KEY_USAGE_PATH`]): how many stored records still
//! need each key of the `field`, `hmac` and `data` rings, so the operator retires a key
//! only when nothing needs it. Counting is pure ([`count`]); [`report`] reads the rows.
//!
//! - `field`: every field-encrypted value, by the key id in its envelope.
//! - `hmac`: every email blind index and every refresh token that can still be
//!   exchanged, by the HMAC key that made it. A row stored before key ids were recorded
//!   counts against every key of the ring (the key is unknown until re-indexing). The
//!   audit chain's last row counts against the key that signed it, until a row signed
//!   by the active key follows it.
//! - `data`: every attachment, by the key that sealed it (its row says), and every
//!   backup in the bucket, by the key in its name: a data key is retired only when no
//!   retained backup and no unexpired attachment needs it. A listing that fails fails
//!   the report, so nothing is ever reported free for want of looking.

use std::collections::BTreeMap;

use generalbot_crds::contract::KeyUsageReport;

use crate::config::Keys;
use crate::crypto::field;
use crate::objects::files::Files;
use crate::store::{Store, StoreError};

/// Rows by key id; `""` is a row whose key is unknown.
pub type Counts = BTreeMap<String, u64>;

/// Folds per-key counts of one ring, spreading unknown-key rows over every key of the
/// ring (`ring_ids`), so no key that might be needed is reported free.
pub fn count<'a>(ring_ids: &[&str], rows: impl IntoIterator<Item = (&'a str, u64)>) -> Counts {
    let mut out = Counts::new();
    for (key, n) in rows {
        if n == 0 {
            continue;
        }
        if key.is_empty() {
            for id in ring_ids {
                *out.entry((*id).to_owned()).or_default() += n;
            }
        } else {
            *out.entry(key.to_owned()).or_default() += n;
        }
    }
    out
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bucket or the files directory.
    #[error(transparent)]
    Files(#[from] crate::objects::files::FilesError),
}

/// The report for `keys` from what `store` and `files` hold.
pub async fn report(
    store: &Store,
    files: &Files,
    keys: &Keys,
    reencrypting: bool,
) -> Result<KeyUsageReport, UsageError> {
    let mut by_field_key = Counts::new();
    let mut pages = store.encrypted_pages();
    while let Some(page) = pages.next().await? {
        for v in page {
            if let Some(id) = field::key_id_of(&v.envelope) {
                *by_field_key.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    let field_ids: Vec<&str> = keys.field.ids().collect();
    let field = count(
        &field_ids,
        by_field_key.iter().map(|(k, n)| (k.as_str(), *n)),
    );
    let emails = store.email_indexes_by_key().await?;
    let refresh = store.live_refresh_by_key().await?;
    let audit_head = store
        .audit_head_row()
        .await?
        .filter(|r| !r.mac_key.is_empty())
        .map(|r| (r.mac_key, 1));
    let hmac_ids: Vec<&str> = keys.hmac.ids().collect();
    let hmac = count(
        &hmac_ids,
        emails
            .iter()
            .chain(refresh.iter())
            .chain(audit_head.iter())
            .map(|(k, n)| (k.as_str(), *n)),
    );
    let attachments = store.attachments_by_key().await?;
    let backups = files.backups_by_key().await?;
    let data_ids: Vec<&str> = keys.data.ids().collect();
    let data = count(
        &data_ids,
        attachments
            .iter()
            .chain(backups.iter())
            .map(|(k, n)| (k.as_str(), *n)),
    );
    Ok(KeyUsageReport {
        generated_at: jiff::Timestamp::now().to_string(),
        rings: BTreeMap::from([
            ("field".to_owned(), field),
            ("hmac".to_owned(), hmac),
            ("data".to_owned(), data),
        ]),
        reencrypting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_count_against_every_key() {
        let c = count(&["h1", "h2"], [("h2", 3), ("", 2), ("h1", 0)]);
        assert_eq!(c, Counts::from([("h1".into(), 2), ("h2".into(), 5)]));
        assert!(count(&["h1"], []).is_empty());
    }
}
