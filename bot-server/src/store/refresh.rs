//! Refresh tokens: only their HMAC is stored, with the HMAC key id that made it;
//! single use, and a family revoked at once on reuse.

use sqlx::Row as _;

use super::{AUTH, MAINTENANCE, Store, StoreError, now, q};

/// A refresh token as stored (only its HMAC).
#[derive(Debug, Clone)]
pub struct RefreshRow {
    /// Family (one login's chain of rotations).
    pub family_id: String,
    /// Owner.
    pub user_id: String,
    /// Already exchanged.
    pub used: bool,
    /// Revoked.
    pub revoked: bool,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

impl Store {
    /// Stores a refresh token's HMAC, made with the HMAC key `hmac_key`.
    pub async fn insert_refresh(
        &self,
        token_hmac: &str,
        hmac_key: &str,
        family_id: &str,
        user_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let statement = sqlx::query(
            "INSERT INTO refresh_tokens (token_hmac, hmac_key, family_id, user_id, used, revoked, expires_at, created_at) VALUES ($1, $2, $3, $4, 0, 0, $5, $6)",
        )
        .bind(token_hmac)
        .bind(hmac_key)
        .bind(family_id)
        .bind(user_id)
        .bind(expires_at)
        .bind(now());
        self.scoped_execute(AUTH, statement)
            .await
            .map(drop)
            .map_err(q("storing a refresh token"))
    }

    /// Marks a refresh token used, atomically. Returns the row as it was before, or
    /// `None` when no such token exists; a row with `used` true means reuse.
    pub async fn use_refresh(&self, token_hmac: &str) -> Result<Option<RefreshRow>, StoreError> {
        let row = self
            .scoped_optional(
                AUTH,
                sqlx::query("SELECT family_id, user_id, used, revoked, expires_at FROM refresh_tokens WHERE token_hmac = $1")
                    .bind(token_hmac),
            )
            .await
            .map_err(q("reading a refresh token"))?;
        let Some(row) = row else { return Ok(None) };
        let mut found = RefreshRow {
            family_id: row
                .try_get("family_id")
                .map_err(q("reading a refresh token"))?,
            user_id: row
                .try_get("user_id")
                .map_err(q("reading a refresh token"))?,
            used: row
                .try_get::<i64, _>("used")
                .map_err(q("reading a refresh token"))?
                != 0,
            revoked: row
                .try_get::<i64, _>("revoked")
                .map_err(q("reading a refresh token"))?
                != 0,
            expires_at: row
                .try_get("expires_at")
                .map_err(q("reading a refresh token"))?,
        };
        if !found.used {
            // Only one concurrent exchange wins; the loser sees a reuse.
            let done = self
                .scoped_execute(
                    AUTH,
                    sqlx::query(
                        "UPDATE refresh_tokens SET used = 1 WHERE token_hmac = $1 AND used = 0",
                    )
                    .bind(token_hmac),
                )
                .await
                .map_err(q("using a refresh token"))?;
            if done == 0 {
                found.used = true;
            }
        }
        Ok(Some(found))
    }

    /// Revokes every token of a family.
    pub async fn revoke_family(&self, family_id: &str) -> Result<u64, StoreError> {
        self.scoped_execute(
            AUTH,
            sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1")
                .bind(family_id),
        )
        .await
        .map_err(q("revoking a token family"))
    }

    /// Refresh tokens that can still be exchanged, counted by the HMAC key that made
    /// them (`""` for tokens stored before key ids were recorded). Such a token can only
    /// be found under its own key, so the key stays until the token expires or is used.
    pub async fn live_refresh_by_key(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .scoped_all(
                MAINTENANCE,
                sqlx::query(
                    "SELECT hmac_key, COUNT(*) AS n FROM refresh_tokens WHERE used = 0 AND revoked = 0 AND expires_at > $1 GROUP BY hmac_key",
                )
                .bind(now()),
            )
            .await
            .map_err(q("counting refresh tokens"))?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                Ok((r.try_get("hmac_key")?, u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("counting refresh tokens"))
    }
}
