//! Identity: roles, password hashing, failed-login policy and tokens, and the
//! login, refresh and logout flows that tie them to storage and the audit log.

pub mod accounts;
pub mod directory;
mod failures;
pub mod hashing;
pub mod lockout;
pub mod password;
pub mod service;
pub mod tokens;
pub mod totp;

/// A user's role.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A chat user.
    User,
    /// Manages bots and content.
    Operator,
    /// Everything, including the audit log.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}
