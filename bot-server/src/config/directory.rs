//! Sign-in through a directory service (OpenID Connect): the issuer, the client's
//! credentials (files), the CA of the directory (public roots when none), the callback
//! URL, how groups map to roles, the audience of access tokens accepted on the API, and
//! who may still sign in with a local password.

use std::path::PathBuf;

use generalbot_crds::contract::env;

use super::{ConfigError, Source, secret_file};

/// Who may sign in with a local password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordLogin {
    /// Every local account (the default without a directory).
    All,
    /// Administrators only: break-glass accounts (the default with a directory).
    Admins,
    /// Nobody.
    Off,
}

/// The directory service.
#[derive(Clone)]
pub struct DirectoryConfig {
    /// The issuer (`https://…`), as its tokens name it.
    pub issuer: String,
    /// The client id.
    pub client_id: zeroize::Zeroizing<String>,
    /// The client secret.
    pub client_secret: zeroize::Zeroizing<String>,
    /// The CA of the directory's certificate; the public roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// This server's callback URL.
    pub redirect_url: String,
    /// The claim listing the user's groups.
    pub roles_claim: String,
    /// Groups whose members are administrators.
    pub admin_groups: Vec<String>,
    /// Groups whose members are operators.
    pub operator_groups: Vec<String>,
    /// The audience a directory access token must carry on the API.
    pub audience: String,
    /// `acr` values that mean a second factor was used (asked for at sign-in).
    pub mfa_acr_values: Vec<String>,
}

impl std::fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("issuer", &self.issuer)
            .field("client", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .field("redirect_url", &self.redirect_url)
            .field("roles_claim", &self.roles_claim)
            .field("admin_groups", &self.admin_groups)
            .field("operator_groups", &self.operator_groups)
            .field("audience", &self.audience)
            .field("mfa_acr_values", &self.mfa_acr_values)
            .finish()
    }
}

fn list(src: &dyn Source, var: &str) -> Vec<String> {
    src.get(var)
        .unwrap_or_default()
        .split(',')
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect()
}

/// Reads the directory settings (`None` without `OIDC_ISSUER`) and who may sign in with
/// a password. `plaintext` allows an `http://` callback (a server behind a proxy that
/// terminates TLS, or `--dev`).
pub fn directory(
    src: &dyn Source,
    dev: bool,
    plaintext: bool,
) -> Result<(Option<DirectoryConfig>, PasswordLogin), ConfigError> {
    let check = !dev;
    let issuer = src.get(env::OIDC_ISSUER);
    let client_id = secret_file(src, env::OIDC_CLIENT_ID_FILE, check)?;
    let client_secret = secret_file(src, env::OIDC_CLIENT_SECRET_FILE, check)?;
    let ca_file = src.get(env::OIDC_CA_FILE).map(PathBuf::from);
    let redirect_url = src.get(env::OIDC_REDIRECT_URL);
    let roles_claim = src
        .get(env::OIDC_ROLES_CLAIM)
        .unwrap_or_else(|| "groups".into());
    let admin_groups = list(src, env::OIDC_ADMIN_GROUPS);
    let operator_groups = list(src, env::OIDC_OPERATOR_GROUPS);
    let audience = src.get(env::OIDC_AUDIENCE);
    let mfa_acr_values = list(src, env::OIDC_MFA_ACR_VALUES);
    let password_login = match src.get(env::PASSWORD_LOGIN).as_deref() {
        None => None,
        Some("all") => Some(PasswordLogin::All),
        Some("admins") => Some(PasswordLogin::Admins),
        Some("off") => Some(PasswordLogin::Off),
        Some(other) => {
            return Err(ConfigError::Invalid {
                var: env::PASSWORD_LOGIN,
                value: other.to_owned(),
                expected: "all, admins or off",
            });
        }
    };
    let Some(issuer) = issuer else {
        if client_id.is_some() || redirect_url.is_some() {
            return Err(ConfigError::Required {
                var: env::OIDC_ISSUER,
                what: "directory settings are given without the issuer",
            });
        }
        if password_login == Some(PasswordLogin::Off) {
            return Err(ConfigError::Invalid {
                var: env::PASSWORD_LOGIN,
                value: "off".into(),
                expected: "all or admins: without a directory, nobody could sign in",
            });
        }
        return Ok((None, password_login.unwrap_or(PasswordLogin::All)));
    };
    if !issuer.starts_with("https://") {
        return Err(ConfigError::Invalid {
            var: env::OIDC_ISSUER,
            value: issuer,
            expected: "an https:// issuer URL",
        });
    }
    let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
        return Err(ConfigError::Required {
            var: env::OIDC_CLIENT_ID_FILE,
            what: "the client id and secret files (OIDC_CLIENT_ID_FILE, OIDC_CLIENT_SECRET_FILE)",
        });
    };
    let redirect_url = redirect_url.ok_or(ConfigError::Required {
        var: env::OIDC_REDIRECT_URL,
        what: "this server's callback URL, as registered with the directory",
    })?;
    let allowed = redirect_url.starts_with("https://")
        || ((dev || plaintext) && redirect_url.starts_with("http://"));
    if !allowed {
        return Err(ConfigError::Invalid {
            var: env::OIDC_REDIRECT_URL,
            value: redirect_url,
            expected: "an https:// URL ending in /api/auth/oidc/callback",
        });
    }
    let audience = audience.unwrap_or_else(|| client_id.to_string());
    Ok((
        Some(DirectoryConfig {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: zeroize::Zeroizing::new(client_id.trim().to_owned()),
            client_secret: zeroize::Zeroizing::new(client_secret.trim().to_owned()),
            ca_file,
            redirect_url,
            roles_claim,
            admin_groups,
            operator_groups,
            audience,
            mfa_acr_values,
        }),
        password_login.unwrap_or(PasswordLogin::Admins),
    ))
}
