//! Users: accounts, their encrypted email found by blind index, failed-login counts
//! and locks.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{AUTH, Store, StoreError, now, q};

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
        let mut tx = self.as_user(AUTH).await?;
        insert_user_in(&mut tx, u).await?;
        tx.commit().await.map_err(q("inserting a user"))
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
            .bind(index);
            let row = self
                .scoped_optional(AUTH, row)
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
        .bind(id);
        let row = self
            .scoped_optional(AUTH, row)
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
        .bind(now);
        let row = self
            .scoped_optional(AUTH, row)
            .await
            .map_err(q("counting a login attempt"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(q("counting a login attempt"))
    }

    /// Accepts TOTP time step `step` for a user if it is later than every step accepted
    /// before (one atomic statement); `false` means the code was already used.
    pub async fn use_totp_step(&self, id: &str, step: i64) -> Result<bool, StoreError> {
        self.auth_update(
            "recording a TOTP code",
            sqlx::query(
                "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
            )
            .bind(id)
            .bind(step),
        )
        .await
    }

    /// Gives back an attempt that was never checked (the server was too busy).
    pub async fn refund_login_attempt(&self, id: &str) -> Result<(), StoreError> {
        self.auth_update(
            "giving back a login attempt",
            sqlx::query("UPDATE users SET failed_logins = failed_logins - 1 WHERE id = $1 AND failed_logins > 0")
                .bind(id),
        )
        .await
        .map(drop)
    }

    /// Locks an account until `until` (unix seconds) and restarts its count.
    pub async fn lock_user(&self, id: &str, until: i64) -> Result<(), StoreError> {
        self.auth_update(
            "locking an account",
            sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2")
                .bind(until)
                .bind(id),
        )
        .await
        .map(drop)
    }

    /// Clears the failed-login count after a success, unless the account was locked
    /// meanwhile (a correct password never lifts a lock).
    pub async fn reset_failed_logins(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.auth_update(
            "clearing failed logins",
            sqlx::query("UPDATE users SET failed_logins = 0 WHERE id = $1 AND locked_until <= $2")
                .bind(id)
                .bind(now),
        )
        .await
        .map(drop)
    }

    /// A user's current role, `None` when the account no longer exists: read on every
    /// request, so a role change or a deletion takes effect on the next one.
    pub async fn role_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .scoped_optional(
                id,
                sqlx::query("SELECT role FROM users WHERE id = $1").bind(id),
            )
            .await
            .map_err(q("reading a role"))?;
        row.map(|r| r.try_get("role"))
            .transpose()
            .map_err(q("reading a role"))
    }

    /// Sets a user's role; `false` when there is no such user.
    pub async fn set_role(&self, id: &str, role: &str) -> Result<bool, StoreError> {
        self.auth_update(
            "changing a role",
            sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
                .bind(id)
                .bind(role),
        )
        .await
    }

    /// Deletes a user with their refresh tokens, conversations and messages, in one
    /// transaction; `false` when there is no such user.
    pub async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.as_user(id).await?;
        for sql in [
            "DELETE FROM attachments WHERE user_id = $1",
            "DELETE FROM messages WHERE user_id = $1",
            "DELETE FROM conversations WHERE user_id = $1",
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM identities WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(q("deleting a user's data"))?;
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(q("deleting a user"))?;
        tx.commit().await.map_err(q("deleting a user"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a TOTP secret being enrolled (encrypted), replacing any earlier one that
    /// was never confirmed; `false` when there is no such user.
    pub async fn set_pending_totp(&self, id: &str, totp_enc: &str) -> Result<bool, StoreError> {
        self.auth_update(
            "storing a TOTP secret to enrol",
            sqlx::query("UPDATE users SET totp_pending_enc = $2 WHERE id = $1")
                .bind(id)
                .bind(totp_enc),
        )
        .await
    }

    /// The TOTP secret being enrolled (encrypted), if any.
    pub async fn pending_totp(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .scoped_optional(
                AUTH,
                sqlx::query("SELECT totp_pending_enc FROM users WHERE id = $1").bind(id),
            )
            .await
            .map_err(q("reading a TOTP secret to enrol"))?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten()))
    }

    /// Makes the pending TOTP secret `pending` the account's, if it is still the pending
    /// one, and accepts time step `step` (so the confirming code cannot be replayed);
    /// `false` when a newer enrolment replaced it.
    pub async fn confirm_totp(
        &self,
        id: &str,
        pending: &str,
        step: i64,
    ) -> Result<bool, StoreError> {
        self.auth_update(
            "enrolling a TOTP secret",
            sqlx::query("UPDATE users SET totp_enc = totp_pending_enc, totp_pending_enc = NULL, totp_last_step = $3 WHERE id = $1 AND totp_pending_enc = $2")
                .bind(id)
                .bind(pending)
                .bind(step),
        )
        .await
    }

    /// The user linked to a directory identity, if any.
    pub async fn user_by_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = self
            .scoped_optional(
                AUTH,
                sqlx::query("SELECT user_id FROM identities WHERE issuer = $1 AND subject = $2")
                    .bind(issuer)
                    .bind(subject),
            )
            .await
            .map_err(q("finding a directory identity"))?;
        row.map(|r| r.try_get("user_id"))
            .transpose()
            .map_err(q("finding a directory identity"))
    }

    /// Creates a user and links it to a directory identity, in one transaction.
    pub async fn insert_directory_user(
        &self,
        u: NewUser<'_>,
        issuer: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.as_user(AUTH).await?;
        insert_user_in(&mut tx, u).await?;
        sqlx::query(
            "INSERT INTO identities (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(issuer)
        .bind(subject)
        .bind(u.id)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(q("linking a directory identity"))?;
        tx.commit().await.map_err(q("creating a directory user"))
    }

    /// Every administrator's id and encrypted email.
    pub async fn admins(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .scoped_all(
                AUTH,
                sqlx::query("SELECT id, email_enc FROM users WHERE role = 'admin' ORDER BY id"),
            )
            .await
            .map_err(q("listing administrators"))?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("email_enc")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("listing administrators"))
    }

    /// Runs one update in the identity service's scope; whether it changed a row.
    async fn auth_update(
        &self,
        operation: &'static str,
        statement: super::scope::Statement<'_>,
    ) -> Result<bool, StoreError> {
        self.scoped_execute(AUTH, statement)
            .await
            .map(|n| n >= 1)
            .map_err(q(operation))
    }
}

/// Inserts a user in `tx`; a taken email index is a [`StoreError::Conflict`].
async fn insert_user_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    u: NewUser<'_>,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO users (id, email_enc, email_index, email_index_key, password_hash, role, totp_enc, failed_logins, locked_until, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8)",
    )
    .bind(u.id)
    .bind(u.email_enc)
    .bind(u.email_index)
    .bind(u.email_index_key)
    .bind(u.password_hash)
    .bind(u.role)
    .bind(u.totp_enc)
    .bind(now())
    .execute(&mut **tx)
    .await;
    match inserted {
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
