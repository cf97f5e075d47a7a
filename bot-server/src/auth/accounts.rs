//! Accounts: creating users, changing their role, deleting them with their data, and
//! enrolling a TOTP second factor (the secret shown once, kept pending until a first
//! code confirms it). Every change is audited; role changes and deletions take effect on
//! the next request, since every request reads the role as stored.

use super::service::{AuthError, AuthService, Principal};
use super::{Role, totp};
use crate::audit::AuditKind;
use crate::crypto::blind_index;
use crate::crypto::field::{self, FieldContext, FieldError};
use crate::store::{NewUser, StoreError};

/// A TOTP secret to enrol, shown once.
pub struct Enrolment {
    /// The secret, base32 (what authenticator apps accept typed in).
    pub secret_base32: String,
    /// The `otpauth://` URI (what a QR code holds).
    pub uri: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

impl Drop for Enrolment {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.secret_base32.zeroize();
        self.uri.zeroize();
    }
}

fn totp_context(id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "users",
        column: "totp",
        row: id,
    }
}

/// An email as a new account stores it: its blind index under the active HMAC key (with
/// that key's id) and its ciphertext bound to the account's row.
pub(super) struct SealedEmail {
    pub(super) index_key: String,
    pub(super) index: String,
    pub(super) enc: String,
}

impl AuthService {
    /// The email of the new account `id`, normalized and sealed; `None` when an account
    /// already has it. The unique index only sees indexes under one key, so an account
    /// indexed under an older key (not yet re-indexed) is looked for under every key.
    pub(super) async fn seal_new_email(
        &self,
        id: &str,
        email: &str,
    ) -> Result<Option<SealedEmail>, AuthError> {
        let keys = self.keys.current();
        let email = blind_index::normalize_email(email);
        let (index_key, index) = blind_index::index(&keys.hmac, blind_index::EMAIL, &email)
            .ok_or(AuthError::Field(FieldError::NoActiveKey))?;
        let candidates = blind_index::candidates(&keys.hmac, blind_index::EMAIL, &email);
        if self.store.user_by_email_index(&candidates).await?.is_some() {
            return Ok(None);
        }
        let enc = field::encrypt(
            &keys.field,
            &FieldContext {
                table: "users",
                column: "email",
                row: id,
            },
            email.as_bytes(),
        )?;
        Ok(Some(SealedEmail {
            index_key,
            index,
            enc,
        }))
    }

    /// Creates a user; returns its id and, when `with_totp`, the TOTP secret to enrol.
    pub async fn register(
        &self,
        email: &str,
        pw: &str,
        role: Role,
        with_totp: bool,
    ) -> Result<(String, Option<zeroize::Zeroizing<Vec<u8>>>), AuthError> {
        if pw.chars().count() < 12 {
            return Err(AuthError::WeakPassword);
        }
        let keys = self.keys.current();
        let id = uuid::Uuid::new_v4().to_string();
        let Some(sealed) = self.seal_new_email(&id, email).await? else {
            return Err(AuthError::EmailTaken);
        };
        let secret = if with_totp { totp::new_secret() } else { None };
        let totp_enc = match &secret {
            Some(s) => Some(field::encrypt(&keys.field, &totp_context(&id), s)?),
            None => None,
        };
        let hash = self.hasher.hash(pw).await?;
        match self
            .store
            .insert_user(NewUser {
                id: &id,
                email_enc: &sealed.enc,
                email_index: &sealed.index,
                email_index_key: &sealed.index_key,
                password_hash: &hash,
                role: role.as_str(),
                totp_enc: totp_enc.as_deref(),
            })
            .await
        {
            Err(StoreError::Conflict { .. }) => return Err(AuthError::EmailTaken),
            other => other?,
        }
        self.audit
            .record(
                AuditKind::DataWrite,
                &id,
                "success",
                serde_json::json!({"action": "user_created", "role": role.as_str()}),
            )
            .await;
        Ok((id, secret))
    }

    /// Sets another user's role (an administrator's act, audited). An administrator
    /// cannot change their own role, so the last one cannot lock everyone out.
    pub async fn set_role(&self, by: &Principal, id: &str, role: Role) -> Result<(), AuthError> {
        if by.user_id == id {
            return Err(AuthError::SelfChange);
        }
        if !self.store.set_role(id, role.as_str()).await? {
            return Err(AuthError::NoSuchUser);
        }
        self.audit
            .record(
                AuditKind::AdminAction,
                &by.user_id,
                "success",
                serde_json::json!({"action": "change_role", "user": id, "role": role.as_str()}),
            )
            .await;
        Ok(())
    }

    /// Deletes another user with their tokens, conversations and messages (an
    /// administrator's act). The audit record names the account by id only.
    pub async fn delete_user(&self, by: &Principal, id: &str) -> Result<(), AuthError> {
        if by.user_id == id {
            return Err(AuthError::SelfChange);
        }
        if !self.store.delete_user(id).await? {
            return Err(AuthError::NoSuchUser);
        }
        self.audit
            .record(
                AuditKind::AdminAction,
                &by.user_id,
                "success",
                serde_json::json!({"action": "delete_user", "user": id}),
            )
            .await;
        Ok(())
    }

    /// Starts TOTP enrolment for the caller: a new secret, stored encrypted as pending
    /// (the current one, if any, stays in force until a code confirms the new one).
    pub async fn enrol_totp(&self, p: &Principal) -> Result<Enrolment, AuthError> {
        let secret = totp::new_secret().ok_or(AuthError::Field(FieldError::Random))?;
        let keys = self.keys.current();
        let enc = field::encrypt(&keys.field, &totp_context(&p.user_id), &secret)?;
        if !self.store.set_pending_totp(&p.user_id, &enc).await? {
            return Err(AuthError::InvalidToken);
        }
        let secret_base32 = totp::base32(&secret);
        let uri = format!(
            "otpauth://totp/GeneralBot:{id}?secret={secret_base32}&issuer=GeneralBot&algorithm=SHA1&digits=6&period=30",
            id = p.user_id
        );
        self.audit
            .record(
                AuditKind::ConfigChange,
                &p.user_id,
                "success",
                serde_json::json!({"action": "totp_enrolment_started"}),
            )
            .await;
        Ok(Enrolment { secret_base32, uri })
    }

    /// Confirms TOTP enrolment with a first code from the new secret; from then on the
    /// account needs a code at every login, and this code cannot be used again.
    pub async fn confirm_totp(&self, p: &Principal, code: &str) -> Result<(), AuthError> {
        let pending = self
            .store
            .pending_totp(&p.user_id)
            .await?
            .ok_or(AuthError::NoEnrolment)?;
        let keys = self.keys.current();
        let secret = field::decrypt(&keys.field, &totp_context(&p.user_id), &pending)?;
        let confirmed = match totp::matching_step(&secret, code) {
            Some(step) => {
                self.store
                    .confirm_totp(
                        &p.user_id,
                        &pending,
                        i64::try_from(step).unwrap_or(i64::MAX),
                    )
                    .await?
            }
            None => false,
        };
        self.audit
            .record(
                AuditKind::ConfigChange,
                &p.user_id,
                if confirmed { "success" } else { "failure" },
                serde_json::json!({"action": "totp_enrolment_confirmed"}),
            )
            .await;
        if confirmed {
            Ok(())
        } else {
            Err(AuthError::InvalidCredentials)
        }
    }
}
