//! Sign-in through the directory service: a user the directory vouches for is found by
//! the issuer's subject (never by email alone) or created on first sign-in, with the
//! role their groups give (no privilege unless a group says so), kept in step at each
//! sign-in; `BOTSERVER_REQUIRE_MFA` is met only when the directory says a second factor
//! was used. Directory access tokens are accepted on the API the same way. Every
//! sign-in, link and refusal is audited.

use std::net::IpAddr;

use super::Role;
use super::service::{AuthError, AuthService, Principal, TokenPair};
use crate::audit::AuditKind;
use crate::oidc::{DirectoryUser, claims};
use crate::store::{NewUser, StoreError};

/// The password hash of an account that signs in only through the directory: not a PHC
/// string, so no password ever matches it.
pub const NO_PASSWORD: &str = "!directory";

impl AuthService {
    /// Signs in a user the directory vouched for (from the code flow), issuing this
    /// server's tokens.
    pub async fn sign_in_directory(
        &self,
        d: DirectoryUser,
        ip: IpAddr,
    ) -> Result<TokenPair, AuthError> {
        let (user_id, role) = self.directory_account(&d, ip).await?;
        let sid = self
            .shared
            .create_session(&user_id, self.policy.session_timeout)
            .await?;
        let pair = self.issue(&user_id, role, &sid, None).await?;
        self.audit
            .record(
                AuditKind::AuthAttempt,
                &user_id,
                "success",
                serde_json::json!({"method": "directory", "issuer": d.issuer, "ip": ip.to_string(), "second_factor": d.second_factor}),
            )
            .await;
        self.tell_signed_in(&user_id, ip);
        Ok(pair)
    }

    /// The caller of a directory access token, when the token is the directory's and
    /// passes every check.
    pub(super) async fn directory_principal(&self, bearer: &str) -> Result<Principal, AuthError> {
        let Some(directory) = &self.directory else {
            return Err(AuthError::InvalidToken);
        };
        let d = match directory.verify_access_token(bearer).await {
            Ok(Some(d)) => d,
            Ok(None) => return Err(AuthError::InvalidToken),
            Err(e) => {
                self.audit
                    .record(
                        AuditKind::AuthAttempt,
                        "anonymous",
                        "failure",
                        serde_json::json!({"method": "directory_token", "reason": e.to_string()}),
                    )
                    .await;
                return Err(AuthError::InvalidToken);
            }
        };
        let unspecified = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
        let (user_id, _) = self.directory_account(&d, unspecified).await?;
        // The role as stored now, as for this server's own tokens.
        let role = self
            .store
            .role_of(&user_id)
            .await?
            .and_then(|r| Role::parse(&r))
            .ok_or(AuthError::InvalidToken)?;
        Ok(Principal {
            user_id,
            role,
            session_id: format!("directory:{}", d.subject),
        })
    }

    /// The account of a directory user: checked against policy, found by identity or
    /// created, its role kept in step with the groups.
    async fn directory_account(
        &self,
        d: &DirectoryUser,
        ip: IpAddr,
    ) -> Result<(String, Role), AuthError> {
        let Some(directory) = &self.directory else {
            return Err(AuthError::InvalidToken);
        };
        if self.policy.require_mfa && !d.second_factor {
            return Err(self.refuse(d, ip, "second_factor_required").await);
        }
        let from_groups = d
            .groups
            .as_ref()
            .map(|g| claims::role_of(directory.config(), g));
        match self.store.user_by_identity(&d.issuer, &d.subject).await? {
            Some(id) => {
                let before = self.store.role_of(&id).await?;
                // Without the groups claim, the role stays as the last sign-in set it.
                let role = match (from_groups, before.as_deref().and_then(Role::parse)) {
                    (Some(role), _) => role,
                    (None, Some(stored)) => stored,
                    (None, None) => Role::User,
                };
                if before.as_deref() != Some(role.as_str()) {
                    self.store.set_role(&id, role.as_str()).await?;
                    self.audit
                        .record(
                            AuditKind::ConfigChange,
                            &id,
                            "success",
                            serde_json::json!({"action": "role_from_directory", "role": role.as_str(), "before": before}),
                        )
                        .await;
                }
                Ok((id, role))
            }
            None => {
                let role = from_groups.unwrap_or(Role::User);
                self.create_directory_user(d, role, ip)
                    .await
                    .map(|id| (id, role))
            }
        }
    }

    async fn create_directory_user(
        &self,
        d: &DirectoryUser,
        role: Role,
        ip: IpAddr,
    ) -> Result<String, AuthError> {
        let id = uuid::Uuid::new_v4().to_string();
        // Without a verified email, an address that names the identity and can never be
        // anyone's mailbox (`.invalid`).
        let email = d
            .email
            .clone()
            .unwrap_or_else(|| format!("{}@directory.invalid", d.subject));
        let Some(sealed) = self.seal_new_email(&id, &email).await? else {
            // Never linked by email: an administrator decides.
            return Err(self.refuse(d, ip, "email_belongs_to_another_account").await);
        };
        let created = self
            .store
            .insert_directory_user(
                NewUser {
                    id: &id,
                    email_enc: &sealed.enc,
                    email_index: &sealed.index,
                    email_index_key: &sealed.index_key,
                    password_hash: NO_PASSWORD,
                    role: role.as_str(),
                    totp_enc: None,
                },
                &d.issuer,
                &d.subject,
            )
            .await;
        match created {
            Err(StoreError::Conflict { .. }) => {
                return Err(self.refuse(d, ip, "email_belongs_to_another_account").await);
            }
            other => other?,
        }
        self.audit
            .record(
                AuditKind::DataWrite,
                &id,
                "success",
                serde_json::json!({"action": "user_created_from_directory", "issuer": d.issuer, "role": role.as_str()}),
            )
            .await;
        Ok(id)
    }

    /// Audits a refused directory sign-in (by the directory's subject, which its token
    /// proved) and returns its error.
    async fn refuse(&self, d: &DirectoryUser, ip: IpAddr, reason: &'static str) -> AuthError {
        self.metrics.failed_logins.inc();
        self.audit
            .record(
                AuditKind::AuthAttempt,
                &format!("directory:{}", d.subject),
                "failure",
                serde_json::json!({"method": "directory", "issuer": d.issuer, "reason": reason, "ip": ip.to_string()}),
            )
            .await;
        AuthError::SignInRefused(reason)
    }
}
