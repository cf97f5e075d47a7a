//! Attachments: a file a user sends in their conversation. Its declared type must be
//! one of [`ACCEPTED`] and its bytes must be of that type (magic numbers for images and
//! PDF, UTF-8 for text, a parse for JSON); it is sealed with the data ring's active key
//! on the blocking pool, stored under its id ([`temporary_key`]), and expires after the
//! retention for temporary files. Its name, if given, is encrypted in the database and
//! never used on disk. [`sweep`] removes expired ones, file first.

use std::sync::Arc;

use generalbot_storage::layout;

use crate::crypto::field::{self, FieldContext};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::objects::sealed;
use crate::store::AttachmentRow;

/// The content types accepted.
pub const ACCEPTED: [&str; 8] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/json",
];
/// The longest name kept, in bytes.
pub const MAX_NAME: usize = 255;

/// The storage key of an attachment.
pub fn temporary_key(id: &str) -> String {
    layout::temporary_key("attachments", id)
}

/// What a sealed attachment is bound to.
pub fn seal_context(id: &str) -> String {
    format!("attachment:{id}")
}

/// The field context of an attachment's name.
pub fn name_context(id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "attachments",
        column: "name",
        row: id,
    }
}

/// The accepted type `declared` names, if `body` is of it; otherwise what is wrong.
pub fn checked_type(declared: &str, body: &[u8]) -> Result<&'static str, String> {
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some(accepted) = ACCEPTED.iter().find(|t| **t == essence) else {
        return Err(format!(
            "content type {essence:?} is not accepted: send one of {}",
            ACCEPTED.join(", ")
        ));
    };
    let matches = match *accepted {
        "text/plain" | "text/csv" => std::str::from_utf8(body).is_ok_and(|t| !t.contains('\0')),
        "application/json" => serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
        binary => infer::get(body).is_some_and(|k| k.mime_type() == binary),
    };
    if matches {
        Ok(accepted)
    } else {
        Err(format!(
            "the content is not {accepted}: send it with its own type"
        ))
    }
}

/// Seals and stores a file of `user_id` in their conversation `conversation`.
pub async fn store(
    s: &Arc<AppState>,
    user_id: &str,
    conversation: &str,
    declared: &str,
    name: Option<&str>,
    body: bytes::Bytes,
) -> Result<AttachmentRow, ApiError> {
    if s.store.conversation(user_id, conversation).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    if body.is_empty() {
        return Err(ApiError::BadRequest("the attachment is empty"));
    }
    let content_type = checked_type(declared, &body).map_err(ApiError::UnsupportedMedia)?;
    if name.is_some_and(|n| n.len() > MAX_NAME || n.chars().any(char::is_control)) {
        return Err(ApiError::BadRequest(
            "the name is at most 255 bytes, with no control characters",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let keys = s.keys.current();
    let ring = keys.data.clone();
    let context = seal_context(&id);
    let size = body.len();
    let (sealed, key_id) = s
        .cpu(move || sealed::seal(&ring, &context, &body))
        .await??;
    let name_enc = name
        .map(|n| field::encrypt(&keys.field, &name_context(&id), n.as_bytes()))
        .transpose()?;
    let key = temporary_key(&id);
    s.files.put(&key, sealed).await?;
    let now = jiff::Timestamp::now().as_second();
    let row = AttachmentRow {
        id: id.clone(),
        conversation_id: conversation.to_owned(),
        name_enc,
        content_type: content_type.to_owned(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        key_id,
        created_at: now,
        expires_at: now + 86_400 * i64::from(s.retention.temporary_days),
    };
    if let Err(e) = s.store.insert_attachment(user_id, &row).await {
        let _ = s.files.delete(&key).await;
        return Err(e.into());
    }
    Ok(row)
}

/// An attachment of `user_id` and its content, opened.
pub async fn open(
    s: &Arc<AppState>,
    user_id: &str,
    id: &str,
) -> Result<(AttachmentRow, Vec<u8>), ApiError> {
    let row = s
        .store
        .attachment(user_id, id, jiff::Timestamp::now().as_second())
        .await?
        .ok_or(ApiError::NotFound)?;
    let sealed = s
        .files
        .get(&temporary_key(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let ring = s.keys.current().data.clone();
    let context = seal_context(id);
    let plain = s
        .cpu(move || sealed::open(&ring, &context, &sealed))
        .await??;
    Ok((row, plain))
}

/// The name of an attachment, decrypted.
pub fn name_of(s: &AppState, row: &AttachmentRow) -> Result<Option<String>, ApiError> {
    let Some(sealed) = &row.name_enc else {
        return Ok(None);
    };
    let keys = s.keys.current();
    Ok(Some(
        field::decrypt_text(&keys.field, &name_context(&row.id), sealed)?
            .as_str()
            .to_owned(),
    ))
}

/// Removes an attachment of `user_id`: the row, then the file.
pub async fn remove(s: &AppState, user_id: &str, id: &str) -> Result<bool, ApiError> {
    if !s.store.delete_attachment(user_id, id).await? {
        return Ok(false);
    }
    s.files.delete(&temporary_key(id)).await?;
    Ok(true)
}

/// Removes the files of attachments whose rows are gone (a user's erasure).
pub async fn remove_files(s: &AppState, ids: &[String]) {
    for id in ids {
        if let Err(e) = s.files.delete(&temporary_key(id)).await {
            // The bucket's lifecycle rule (or the next sweep of the directory) removes it.
            tracing::warn!(error = %e, attachment = %id, "removing an attachment's file failed");
        }
    }
}

/// Removes the attachments expired at `now` (files first, then rows); returns how many.
pub async fn sweep(s: &AppState, now: i64) -> Result<usize, ApiError> {
    let mut removed = 0;
    loop {
        let expired = s.store.expired_attachments(now, 200).await?;
        if expired.is_empty() {
            return Ok(removed);
        }
        for id in &expired {
            s.files.delete(&temporary_key(id)).await?;
            s.store.forget_attachment(id).await?;
            removed += 1;
        }
    }
}

/// Sweeps every `every`, for as long as the server runs.
pub fn spawn_sweep(s: Arc<AppState>, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match sweep(&s, jiff::Timestamp::now().as_second()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired attachments removed"),
                Err(e) => tracing::warn!(error = %e, "sweeping expired attachments failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_must_be_accepted_and_true() {
        let png =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
        assert_eq!(checked_type("image/png", png), Ok("image/png"));
        assert_eq!(checked_type("IMAGE/PNG; x=y", png), Ok("image/png"));
        assert!(
            checked_type("image/jpeg", png)
                .unwrap_err()
                .contains("is not image/jpeg")
        );
        assert!(
            checked_type("text/html", b"<p>")
                .unwrap_err()
                .contains("not accepted")
        );
        assert_eq!(
            checked_type("text/plain; charset=utf-8", "héllo".as_bytes()),
            Ok("text/plain")
        );
        assert!(checked_type("text/plain", b"\xff\xfe").is_err());
        assert!(checked_type("application/json", b"{\"a\":").is_err());
        assert_eq!(
            checked_type("application/pdf", b"%PDF-1.7\n"),
            Ok("application/pdf")
        );
        assert!(checked_type("application/pdf", b"MZ\x90\0").is_err());
    }
}
