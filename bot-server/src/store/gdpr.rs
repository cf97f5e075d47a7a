//! What a user's data export reads that no other call does: their profile and their
//! directory identities, read as that user under row-level security.

use sqlx::Row as _;

use super::{Store, StoreError, q};

/// A user's own account, as stored.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Encrypted email.
    pub email_enc: String,
    /// Role name.
    pub role: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Whether a TOTP second factor is set (the secret itself is never exported).
    pub totp: bool,
}

/// A directory identity linked to an account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Identity {
    /// The directory's issuer.
    pub issuer: String,
    /// The subject there.
    pub subject: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl Store {
    /// A user's own profile.
    pub async fn profile(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        let row = self
            .scoped_optional(
                user_id,
                sqlx::query(
                    "SELECT email_enc, role, created_at, totp_enc FROM users WHERE id = $1",
                )
                .bind(user_id),
            )
            .await
            .map_err(q("reading a profile"))?;
        row.map(|r| {
            Ok(Profile {
                email_enc: r.try_get("email_enc")?,
                role: r.try_get("role")?,
                created_at: r.try_get("created_at")?,
                totp: r.try_get::<Option<String>, _>("totp_enc")?.is_some(),
            })
        })
        .transpose()
        .map_err(q("reading a profile"))
    }

    /// A user's directory identities.
    pub async fn identities(&self, user_id: &str) -> Result<Vec<Identity>, StoreError> {
        let rows = self
            .scoped_all(
                user_id,
                sqlx::query("SELECT issuer, subject, created_at FROM identities WHERE user_id = $1 ORDER BY created_at")
                    .bind(user_id),
            )
            .await
            .map_err(q("reading identities"))?;
        rows.iter()
            .map(|r| {
                Ok(Identity {
                    issuer: r.try_get("issuer")?,
                    subject: r.try_get("subject")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("reading identities"))
    }
}
