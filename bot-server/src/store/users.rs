//! Users: accounts, their encrypted email found by blind index, failed-login counts
//! and locks.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now, q};

/// A user as stored.
#[derive(Clone)]
pub struct UserRow {
    /// Id (UUIDv4).
    pub id: String,
    /// Encrypted email.
    pub email_enc: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role name.
    pub role: String,
    /// Encrypted TOTP secret.
    pub totp_enc: Option<String>,
    /// Consecutive failed logins.
    pub failed_logins: i64,
    /// Locked until (unix seconds).
    pub locked_until: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// A user to insert, its secrets already encrypted or hashed.
#[derive(Clone, Copy)]
pub struct NewUser<'a> {
    /// Id (UUIDv4).
    pub id: &'a str,
    /// Encrypted email.
    pub email_enc: &'a str,
    /// Blind index of the email.
    pub email_index: &'a str,
    /// Id of the HMAC key that made the index.
    pub email_index_key: &'a str,
    /// Argon2id PHC string.
    pub password_hash: &'a str,
    /// Role name.
    pub role: &'a str,
    /// Encrypted TOTP secret.
    pub totp_enc: Option<&'a str>,
}

impl Store {
    /// Inserts a user.
    pub async fn insert_user(&self, u: NewUser<'_>) -> Result<(), StoreError> {
        let NewUser {
            id,
            email_enc,
            email_index,
            email_index_key,
            password_hash,
            role,
            totp_enc,
        } = u;
        let r = sqlx::query(
            "INSERT INTO users (id, email_enc, email_index, email_index_key, password_hash, role, totp_enc, failed_logins, locked_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8)",
        )
        .bind(id)
        .bind(email_enc)
        .bind(email_index)
        .bind(email_index_key)
        .bind(password_hash)
        .bind(role)
        .bind(totp_enc)
        .bind(now())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict {
                what: "a user with this email",
            }),
            Err(source) => Err(StoreError::Query {
                operation: "inserting a user",
                source,
            }),
        }
    }

    fn user_of(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
        Ok(UserRow {
            id: row.try_get("id")?,
            email_enc: row.try_get("email_enc")?,
            password_hash: row.try_get("password_hash")?,
            role: row.try_get("role")?,
            totp_enc: row.try_get("totp_enc")?,
            failed_logins: row.try_get("failed_logins")?,
            locked_until: row.try_get("locked_until")?,
        })
    }

    /// Finds a user by any of the email's blind indexes.
    pub async fn user_by_email_index(
        &self,
        candidates: &[String],
    ) -> Result<Option<UserRow>, StoreError> {
        for index in candidates {
            let row = sqlx::query(
                "SELECT id, email_enc, password_hash, role, totp_enc, failed_logins, locked_until FROM users WHERE email_index = $1",
            )
            .bind(index)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("finding a user"))?;
            if let Some(row) = row {
                return Self::user_of(&row).map(Some).map_err(q("reading a user"));
            }
        }
        Ok(None)
    }

    /// A user by id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email_enc, password_hash, role, totp_enc, failed_logins, locked_until FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("reading a user"))?;
        row.map(|r| Self::user_of(&r))
            .transpose()
            .map_err(q("reading a user"))
    }

    /// Counts a login attempt on an account that is not locked at `now` (unix seconds),
    /// before its password is checked, and returns the new count; `None` when the account
    /// is locked. One atomic statement, so a burst of parallel guesses gets no more
    /// checks than the lockout count allows.
    pub async fn reserve_login_attempt(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 AND locked_until <= $2 RETURNING failed_logins",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("counting a login attempt"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(q("counting a login attempt"))
    }

    /// Accepts TOTP time step `step` for a user if it is later than every step accepted
    /// before (one atomic statement); `false` means the code was already used.
    pub async fn use_totp_step(&self, id: &str, step: i64) -> Result<bool, StoreError> {
        sqlx::query("UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2")
            .bind(id)
            .bind(step)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(q("recording a TOTP code"))
    }

    /// Gives back an attempt that was never checked (the server was too busy).
    pub async fn refund_login_attempt(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = failed_logins - 1 WHERE id = $1 AND failed_logins > 0")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(q("giving back a login attempt"))
    }

    /// Locks an account until `until` (unix seconds) and restarts its count.
    pub async fn lock_user(&self, id: &str, until: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2")
            .bind(until)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(q("locking an account"))
    }

    /// Clears the failed-login count after a success, unless the account was locked
    /// meanwhile (a correct password never lifts a lock).
    pub async fn reset_failed_logins(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = 0 WHERE id = $1 AND locked_until <= $2")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(q("clearing failed logins"))
    }
}
