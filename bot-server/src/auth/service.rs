//! The login, refresh, logout and authentication flows: they combine storage, keys,
//! shared state (sessions, failed logins per client address), the failed-login policy,
//! metrics and the audit log. Every failure a client
//! sees is the same generic error, so responses never tell whether an account exists.

use std::net::IpAddr;
use std::sync::Arc;

use super::hashing::{HashError, Hasher, MAX_PASSWORD_BYTES};
use super::lockout::FailurePolicy;
use super::tokens::{self, Claims, TokenError};
use super::{Role, password, totp};
use crate::audit::{Audit, AuditKind};
use crate::config::{PasswordLogin, Policy};
use crate::crypto::blind_index;
use crate::crypto::field::{self, FieldContext, FieldError};
use crate::crypto::store::KeyStore;
use crate::http::ratelimit::client_key;
use crate::metrics::Metrics;
use crate::shared::{Shared, SharedError};
use crate::store::{Store, StoreError};

/// What failed in an identity flow.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong email, password or code, locked account: deliberately one error.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The password was right but a TOTP code is needed.
    #[error("a TOTP code is required")]
    MfaRequired,
    /// A token is missing, invalid, expired, revoked or reused.
    #[error("invalid or expired token")]
    InvalidToken,
    /// The role does not allow this.
    #[error("forbidden")]
    Forbidden,
    /// No account has this id.
    #[error("no such user")]
    NoSuchUser,
    /// An administrator tried to change or delete their own account.
    #[error(
        "an administrator cannot change their own role or delete their own account; ask another administrator"
    )]
    SelfChange,
    /// A TOTP code was sent with no enrolment started.
    #[error("no TOTP enrolment is pending: start one first")]
    NoEnrolment,
    /// The directory service failed or refused the sign-in.
    #[error(transparent)]
    Directory(#[from] crate::oidc::OidcError),
    /// A directory sign-in that policy refuses (its reason is audited).
    #[error("sign-in refused: {0}")]
    SignInRefused(&'static str),
    /// A password is too weak to store.
    #[error("password must be at least 12 characters")]
    WeakPassword,
    /// The email is taken (only admins see this).
    #[error("a user with this email already exists")]
    EmailTaken,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared state (cache or database) failed.
    #[error(transparent)]
    Shared(#[from] SharedError),
    /// Crypto failed.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// Token machinery failed.
    #[error("token: {0}")]
    Token(TokenError),
    /// A password was not hashed or checked: too long, the server busy, or a failure.
    #[error(transparent)]
    Hashing(#[from] HashError),
}

/// An access and refresh token pair.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// RS256 access token.
    pub access_token: String,
    /// Single-use refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPair(<redacted>)")
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// Role.
    pub role: Role,
    /// Session id.
    pub session_id: String,
}

/// The identity service.
#[derive(Debug)]
pub struct AuthService {
    /// Storage.
    pub store: Store,
    /// Keys.
    pub keys: KeyStore,
    /// Sessions and counters every replica shares.
    pub shared: Shared,
    /// Audit log.
    pub audit: Arc<Audit>,
    /// The directory service, when sign-in goes through one.
    pub directory: Option<Arc<crate::oidc::Directory>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Tells users and administrators by mail, when mail is set up.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    pub(super) policy: Policy,
    pub(super) hasher: Hasher,
    dummy_hash: String,
}

pub(super) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The shared counter of failed logins from a client address (an IPv6 client by /64).
pub(super) fn ip_failures_key(ip: IpAddr) -> String {
    format!("login-failures:{}", client_key(ip))
}

impl AuthService {
    /// Builds the service.
    pub fn new(
        store: Store,
        keys: KeyStore,
        shared: Shared,
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
        policy: Policy,
    ) -> Self {
        Self {
            store,
            keys,
            shared,
            audit,
            metrics,
            policy,
            hasher: Hasher::default(),
            dummy_hash: password::dummy_hash(),
            directory: None,
            notifier: None,
        }
    }

    /// Telling users and administrators through `notifier`.
    pub fn with_notifier(mut self, notifier: Option<Arc<crate::notify::Notifier>>) -> Self {
        self.notifier = notifier;
        self
    }

    /// With sign-in through `directory`.
    pub fn with_directory(mut self, directory: Option<Arc<crate::oidc::Directory>>) -> Self {
        self.directory = directory;
        self
    }

    pub(super) fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy {
            alert_at: self.policy.login_alert_threshold,
            lock_at: self.policy.max_login_attempts,
            lock_for: self.policy.lockout_duration,
        }
    }

    /// Logs in; every failure is [`AuthError::InvalidCredentials`] (or
    /// [`AuthError::MfaRequired`] once the password is right).
    pub async fn login(
        &self,
        email: &str,
        pw: &str,
        code: Option<&str>,
        ip: IpAddr,
    ) -> Result<TokenPair, AuthError> {
        let policy = self.failure_policy();
        let keys = self.keys.current();
        let email = blind_index::normalize_email(email);
        let user = self
            .store
            .user_by_email_index(&blind_index::candidates(
                &keys.hmac,
                blind_index::EMAIL,
                &email,
            ))
            .await?;
        if pw.len() > MAX_PASSWORD_BYTES {
            return Err(HashError::TooLong.into());
        }
        let ip_locked = self.shared.count(&ip_failures_key(ip)).await? >= u64::from(policy.lock_at);
        // The attempt is counted on the account before its password is checked, so a
        // burst of parallel guesses gets no more checks than the lockout count.
        let attempt = match &user {
            Some(u) if !ip_locked => self.store.reserve_login_attempt(&u.id, now()).await?,
            _ => None,
        }
        .map(|n| u64::try_from(n).unwrap_or(u64::MAX));
        let allowed = attempt.is_some_and(|n| n <= u64::from(policy.lock_at));
        // The same Argon2 work whether or not the account exists or is locked.
        // An account of the directory has no password: the dummy's work, no match.
        let hash = match (&user, allowed) {
            (Some(u), true) if u.password_hash != super::directory::NO_PASSWORD => {
                u.password_hash.as_str()
            }
            _ => self.dummy_hash.as_str(),
        };
        let password_ok = match self.hasher.verify(pw, hash).await {
            Ok(ok) => ok && allowed,
            Err(e) => {
                if let (Some(u), Some(_)) = (&user, attempt) {
                    self.store.refund_login_attempt(&u.id).await?;
                }
                return Err(e.into());
            }
        };
        let Some(user) = user else {
            self.fail(None, ip, "unknown_account").await;
            return Err(AuthError::InvalidCredentials);
        };
        if !allowed {
            self.audit
                .record(
                    AuditKind::AuthAttempt,
                    &user.id,
                    "failure",
                    serde_json::json!({"reason": "locked", "ip": ip.to_string()}),
                )
                .await;
            self.metrics.failed_logins.inc();
            return Err(AuthError::InvalidCredentials);
        }
        let counted = attempt.map(|n| (user.id.as_str(), n));
        if !password_ok {
            self.fail(counted, ip, "bad_password").await;
            return Err(AuthError::InvalidCredentials);
        }
        if user.totp_enc.is_some() || self.policy.require_mfa {
            let secret = match &user.totp_enc {
                Some(enc) => Some(field::decrypt(
                    &keys.field,
                    &FieldContext {
                        table: "users",
                        column: "totp",
                        row: &user.id,
                    },
                    enc,
                )?),
                None => None,
            };
            match (secret, code) {
                (_, None) => return Err(AuthError::MfaRequired),
                // Each time step is accepted once: a code seen cannot be replayed.
                (Some(s), Some(c))
                    if match totp::matching_step(&s, c) {
                        Some(step) => {
                            self.store
                                .use_totp_step(&user.id, i64::try_from(step).unwrap_or(i64::MAX))
                                .await?
                        }
                        None => false,
                    } => {}
                _ => {
                    self.fail(counted, ip, "bad_totp").await;
                    return Err(AuthError::InvalidCredentials);
                }
            }
        }
        let role = Role::parse(&user.role).ok_or(AuthError::InvalidCredentials)?;
        let permitted = match self.policy.password_login {
            PasswordLogin::All => true,
            PasswordLogin::Admins => role == Role::Admin,
            PasswordLogin::Off => false,
        };
        if !permitted {
            self.audit
                .record(
                    AuditKind::AuthAttempt,
                    &user.id,
                    "failure",
                    serde_json::json!({"reason": "password_login_not_allowed", "ip": ip.to_string()}),
                )
                .await;
            return Err(AuthError::InvalidCredentials);
        }
        // The account's count restarts; the client address's does not (an attacker who
        // owns one account must not reset the budget they spray others with).
        self.store.reset_failed_logins(&user.id, now()).await?;
        let sid = self
            .shared
            .create_session(&user.id, self.policy.session_timeout)
            .await?;
        let pair = self.issue(&user.id, role, &sid, None).await?;
        self.audit
            .record(
                AuditKind::AuthAttempt,
                &user.id,
                "success",
                serde_json::json!({"ip": ip.to_string()}),
            )
            .await;
        self.tell_signed_in(&user.id, ip);
        Ok(pair)
    }

    /// A token pair for a session; the refresh token ends at `family_ends` (unix
    /// seconds) when the session already has one, else after the refresh lifetime.
    pub(super) async fn issue(
        &self,
        user_id: &str,
        role: Role,
        sid: &str,
        family_ends: Option<i64>,
    ) -> Result<TokenPair, AuthError> {
        let keys = self.keys.current();
        let iat = now();
        let ttl = self.policy.access_token_ttl.as_secs();
        let claims = Claims {
            sub: user_id.to_owned(),
            role: role.as_str().to_owned(),
            sid: sid.to_owned(),
            iss: tokens::ISSUER.to_owned(),
            aud: Some(tokens::AUDIENCE.to_owned()),
            iat,
            exp: iat + i64::try_from(ttl).unwrap_or(900),
        };
        let access_token = tokens::sign(&keys.jwt, &claims).map_err(AuthError::Token)?;
        let refresh = tokens::new_refresh_token().map_err(AuthError::Token)?;
        let (hmac_key, hmac) = tokens::refresh_hmac(&keys.hmac, &refresh)
            .ok_or(AuthError::Field(FieldError::NoActiveKey))?;
        let expires = family_ends.unwrap_or(
            iat + i64::try_from(self.policy.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX / 2),
        );
        // The family id is the session id: logout ends both.
        self.store
            .insert_refresh(&hmac, &hmac_key, sid, user_id, expires)
            .await?;
        Ok(TokenPair {
            access_token,
            refresh_token: refresh.to_string(),
            token_type: "Bearer",
            expires_in: ttl,
        })
    }

    /// Exchanges a refresh token for a new pair. A token used twice revokes its family
    /// and its session.
    pub async fn refresh(&self, token: &str, ip: IpAddr) -> Result<TokenPair, AuthError> {
        let keys = self.keys.current();
        let mut found = None;
        for h in tokens::refresh_hmac_candidates(&keys.hmac, token) {
            if let Some(row) = self.store.use_refresh(&h).await? {
                found = Some(row);
                break;
            }
        }
        let Some(row) = found else {
            self.audit
                .record(
                    AuditKind::AuthAttempt,
                    "anonymous",
                    "failure",
                    serde_json::json!({"reason": "unknown_refresh_token", "ip": ip.to_string()}),
                )
                .await;
            return Err(AuthError::InvalidToken);
        };
        if row.used || row.revoked {
            let revoked = self.store.revoke_family(&row.family_id).await?;
            self.shared.end_session(&row.family_id).await?;
            self.metrics.refresh_reuse.inc();
            self.audit
                .record(
                    AuditKind::SecurityViolation,
                    &row.user_id,
                    "refresh_token_reuse",
                    serde_json::json!({"family": row.family_id, "revoked_tokens": revoked, "ip": ip.to_string()}),
                )
                .await;
            return Err(AuthError::InvalidToken);
        }
        if row.expires_at <= now() {
            return Err(AuthError::InvalidToken);
        }
        let Some(user_id) = self
            .shared
            .touch_session(&row.family_id, self.policy.session_timeout)
            .await?
        else {
            return Err(AuthError::InvalidToken);
        };
        let user = self
            .store
            .user_by_id(&user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let role = Role::parse(&user.role).ok_or(AuthError::InvalidToken)?;
        // The new refresh token ends when the family does: refreshing never extends a
        // login beyond the refresh lifetime (an absolute session lifetime).
        let pair = self
            .issue(&user.id, role, &row.family_id, Some(row.expires_at))
            .await?;
        self.audit
            .record(
                AuditKind::AuthAttempt,
                &user.id,
                "success",
                serde_json::json!({"action": "refresh", "ip": ip.to_string()}),
            )
            .await;
        Ok(pair)
    }

    /// Checks a bearer token and its session.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let keys = self.keys.current();
        let claims = match tokens::verify(&keys.jwt, bearer) {
            Ok(claims) => claims,
            Err(_) => return self.directory_principal(bearer).await,
        };
        let user = self
            .shared
            .touch_session(&claims.sid, self.policy.session_timeout)
            .await?;
        if user.as_deref() != Some(claims.sub.as_str()) {
            return Err(AuthError::InvalidToken);
        }
        // The role as stored now, not as the token says: a role change or a deletion
        // takes effect on the next request, not when the token expires.
        let role = match self.store.role_of(&claims.sub).await? {
            Some(role) => role,
            None => {
                self.shared.end_session(&claims.sid).await?;
                return Err(AuthError::InvalidToken);
            }
        };
        Ok(Principal {
            user_id: claims.sub,
            role: Role::parse(&role).ok_or(AuthError::InvalidToken)?,
            session_id: claims.sid,
        })
    }

    /// Ends a session and revokes its refresh tokens.
    pub async fn logout(&self, p: &Principal) -> Result<(), AuthError> {
        self.shared.end_session(&p.session_id).await?;
        self.store.revoke_family(&p.session_id).await?;
        self.audit
            .record(
                AuditKind::AuthAttempt,
                &p.user_id,
                "logout",
                serde_json::json!({"session": p.session_id}),
            )
            .await;
        Ok(())
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
pub(crate) mod tests;
