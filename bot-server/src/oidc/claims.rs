//! What a directory's token says, read as policy (pure): the role a user's groups give
//! (no privilege unless a group says so), whether the sign-in used a second factor (the
//! `amr` claim, RFC 8176, or an `acr` the configuration names), and the sign-in state
//! carried through the directory.

use crate::auth::Role;
use crate::config::DirectoryConfig;

/// The role the groups give: administrator, then operator, else a plain user.
pub fn role_of(cfg: &DirectoryConfig, groups: &[String]) -> Role {
    let member = |of: &[String]| groups.iter().any(|g| of.contains(g));
    if member(&cfg.admin_groups) {
        Role::Admin
    } else if member(&cfg.operator_groups) {
        Role::Operator
    } else {
        Role::User
    }
}

/// Authentication methods (RFC 8176) that are a factor beyond a password.
const SECOND_FACTORS: [&str; 10] = [
    "mfa", "otp", "hwk", "swk", "sms", "tel", "fpt", "face", "iris", "sc",
];

/// Whether the directory says a second factor was used: an `amr` method beyond a
/// password, or an `acr` the configuration names as one.
pub fn used_second_factor(cfg: &DirectoryConfig, amr: &[String], acr: Option<&str>) -> bool {
    amr.iter().any(|m| SECOND_FACTORS.contains(&m.as_str()))
        || acr.is_some_and(|a| cfg.mfa_acr_values.iter().any(|v| v == a))
}

/// The groups a claim lists (a list of strings, or one string); `None` when the token
/// does not carry the claim at all (an access token often does not: the role then
/// stays as the last sign-in set it).
pub fn groups_in(payload: &serde_json::Value, claim: &str) -> Option<Vec<String>> {
    match payload.get(claim)? {
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
        ),
        serde_json::Value::String(g) => Some(vec![g.clone()]),
        _ => Some(Vec::new()),
    }
}

/// What a sign-in carries through the directory, encrypted into `state` and bound to a
/// cookie of the browser that started it: the PKCE verifier, the nonce and when it ends.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SignInState {
    /// The PKCE code verifier.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// Unix seconds after which it is refused.
    pub expires: i64,
}

impl Drop for SignInState {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.verifier.zeroize();
        self.nonce.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DirectoryConfig {
        DirectoryConfig {
            issuer: "https://id.example.com".into(),
            client_id: zeroize::Zeroizing::new("c".into()),
            client_secret: zeroize::Zeroizing::new("s".into()),
            ca_file: None,
            redirect_url: "https://bot/cb".into(),
            roles_claim: "groups".into(),
            admin_groups: vec!["admins".into()],
            operator_groups: vec!["ops".into()],
            audience: "c".into(),
            mfa_acr_values: vec!["phrh".into()],
        }
    }

    #[test]
    fn groups_map_to_roles_with_no_privilege_by_default() {
        let g = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(role_of(&cfg(), &g(&["ops", "admins"])), Role::Admin);
        assert_eq!(role_of(&cfg(), &g(&["ops"])), Role::Operator);
        assert_eq!(role_of(&cfg(), &g(&["Admins", "everyone"])), Role::User);
        assert_eq!(role_of(&cfg(), &[]), Role::User);
    }

    #[test]
    fn a_second_factor_is_read_from_amr_or_a_named_acr() {
        let a = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let c = cfg();
        assert!(used_second_factor(&c, &a(&["pwd", "otp"]), None));
        assert!(used_second_factor(&c, &a(&["mfa"]), None));
        assert!(!used_second_factor(&c, &a(&["pwd"]), None));
        assert!(!used_second_factor(&c, &[], None));
        assert!(used_second_factor(&c, &a(&["pwd"]), Some("phrh")));
        assert!(!used_second_factor(&c, &a(&["pwd"]), Some("phr")));
        assert!(!used_second_factor(&c, &[], Some("")));
    }

    #[test]
    fn groups_are_read_from_the_configured_claim() {
        let p = serde_json::json!({"groups": ["a", "b"], "role": "x", "n": 3});
        assert_eq!(groups_in(&p, "groups").unwrap(), ["a", "b"]);
        assert_eq!(groups_in(&p, "role").unwrap(), ["x"]);
        assert!(groups_in(&p, "n").unwrap().is_empty());
        assert_eq!(groups_in(&p, "missing"), None);
    }
}
