//! The configuration's tests: every refusal names its variable.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use generalbot_crds::contract::key_files;

use super::*;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY2: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn src(vars: &[(&str, &str)]) -> MapSource {
    MapSource {
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        groups: vec![4242],
    }
}

fn tmp() -> PathBuf {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let d = std::env::temp_dir().join(format!("gb-config-{}", u64::from_le_bytes(b)));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn file(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn production(extra: &[(&str, &str)]) -> MapSource {
    let dir = tmp();
    let pem = file(
        &dir,
        "jwt.pem",
        crate::crypto::keyring::tests::TEST_RSA_PEM,
        0o400,
    );
    let mut s = src(&[
        (env::KEYS_DIR, dir.join("nokeys").to_str().unwrap()),
        (ENCRYPTION_KEY, KEY),
        (DATABASE_ENCRYPTION_KEY, KEY2),
        (DATABASE_URL, "sqlite::memory:"),
        (env::ALLOW_PLAINTEXT, "true"),
    ]);
    s.vars
        .insert(format!("{JWT_SECRET}_FILE"), pem.to_str().unwrap().into());
    for (k, v) in extra {
        s.vars.insert(k.to_string(), v.to_string());
    }
    s
}

#[test]
fn production_with_all_keys_starts() {
    let c = Config::load(&production(&[]), false).unwrap();
    assert!(!c.dev);
    assert_eq!(c.policy, Policy::default());
    assert_eq!(c.listen.ip().to_string(), "0.0.0.0");
}

#[test]
fn refuses_unsafe_production_settings() {
    // Plain HTTP only when asked for (behind a TLS-terminating proxy).
    let mut s = production(&[]);
    s.vars.remove(env::ALLOW_PLAINTEXT);
    let e = Config::load(&s, false).unwrap_err();
    assert!(matches!(e, ConfigError::PlaintextRefused { .. }), "{e}");
    assert!(
        e.to_string().contains("BOTSERVER_ALLOW_PLAINTEXT=true"),
        "{e}"
    );
    // No silent SQLite fallback.
    let mut s = production(&[]);
    s.vars.remove(DATABASE_URL);
    let e = Config::load(&s, false).unwrap_err();
    assert!(e.to_string().contains("DATABASE_HOST"), "{e}");
    // The URL's scheme is parsed, not matched as a prefix.
    for bad in [
        "postgresx://db/gb?sslmode=verify-full",
        "mysql://db/gb",
        "postgres://db/gb?xsslmode=verify-full",
        "postgres://db/gb?sslmode=verify-fullish",
    ] {
        let e = Config::load(&production(&[(DATABASE_URL, bad)]), false).unwrap_err();
        assert!(e.to_string().contains(DATABASE_URL), "{bad}: {e}");
        assert!(
            !e.to_string().contains("db/gb"),
            "the URL is not echoed: {e}"
        );
    }
    Config::load(
        &production(&[(DATABASE_URL, "postgresql://db/gb?sslmode=verify-full")]),
        false,
    )
    .unwrap();
    // An ops token that can be guessed.
    let dir = tmp();
    file(&dir, key_files::OPS_TOKEN, "short-token", 0o400);
    let e = Config::load(
        &production(&[(env::KEYS_DIR, dir.to_str().unwrap())]),
        false,
    )
    .unwrap_err();
    assert!(
        matches!(e, ConfigError::OpsTokenShort { len: 11, .. }),
        "{e}"
    );
    // One key, one purpose.
    let e = Config::load(&production(&[(DATABASE_ENCRYPTION_KEY, KEY)]), false).unwrap_err();
    assert!(matches!(e, ConfigError::KeysNotDistinct { .. }), "{e}");
}

#[test]
fn refuses_each_missing_key() {
    for var in [ENCRYPTION_KEY, DATABASE_ENCRYPTION_KEY] {
        let mut s = production(&[]);
        s.vars.remove(var);
        let e = Config::load(&s, false).unwrap_err();
        assert!(
            matches!(e, ConfigError::SecretMissing { var: v, .. } if v == var),
            "{e}"
        );
        assert!(e.to_string().contains(var));
    }
    let mut s = production(&[]);
    s.vars.remove(&format!("{JWT_SECRET}_FILE"));
    let e = Config::load(&s, false).unwrap_err();
    assert!(e.to_string().contains(JWT_SECRET), "{e}");
}

#[test]
fn refuses_short_malformed_and_zero_keys() {
    for bad in ["abcd", &KEY[..63], &format!("{}zz", &KEY[..62])] {
        let e = Config::load(&production(&[(ENCRYPTION_KEY, bad)]), false).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::KeyMalformed {
                    var: ENCRYPTION_KEY,
                    ..
                }
            ),
            "{e}"
        );
    }
    let zeros = "0".repeat(64);
    let e = Config::load(&production(&[(DATABASE_ENCRYPTION_KEY, &zeros)]), false).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::KeyAllZeros {
                var: DATABASE_ENCRYPTION_KEY
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("openssl rand -hex 32"));
}

#[test]
fn refuses_a_secret_set_twice() {
    let dir = tmp();
    let f = file(&dir, "k", KEY, 0o400);
    let e = Config::load(
        &production(&[(&format!("{ENCRYPTION_KEY}_FILE"), f.to_str().unwrap())]),
        false,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::SecretSetTwice {
                var: ENCRYPTION_KEY
            }
        ),
        "{e}"
    );
}

#[test]
fn refuses_key_file_readable_by_others_and_foreign_group() {
    let dir = tmp();
    let f = file(&dir, "k", KEY, 0o404);
    let mut s = production(&[]);
    s.vars.remove(ENCRYPTION_KEY);
    s.vars
        .insert(format!("{ENCRYPTION_KEY}_FILE"), f.to_str().unwrap().into());
    let e = Config::load(&s, false).unwrap_err();
    assert!(
        matches!(e, ConfigError::KeyFileReadableByOthers { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("chmod o-rwx"));

    // 0440 with a group the process is not in: refused.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o440)).unwrap();
    let e = Config::load(&s, false).unwrap_err();
    assert!(
        matches!(e, ConfigError::KeyFileReadableByGroup { .. }),
        "{e}"
    );

    // 0440 with the process's own group (Kubernetes fsGroup): accepted.
    use std::os::unix::fs::MetadataExt;
    s.groups = vec![std::fs::metadata(&f).unwrap().gid()];
    let c = Config::load(&s, false).unwrap();
    assert!(!c.dev);
    // Dev mode does not check permissions.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o444)).unwrap();
    assert!(Config::load(&s, true).is_ok());
}

#[test]
fn refuses_a_ring_file_readable_by_others_and_prefers_rings() {
    use base64::Engine as _;
    let dir = tmp();
    let ring = generalbot_crds::contract::KeyRingFile {
        version: 1,
        active: "f1".into(),
        algorithm: None,
        keys: vec![generalbot_crds::contract::KeyEntry {
            id: "f1".into(),
            created: "2026-01-01T00:00:00Z".into(),
            material: base64::engine::general_purpose::STANDARD.encode([3u8; 32]),
        }],
    };
    let f = file(
        &dir,
        key_files::FIELD,
        &serde_json::to_string(&ring).unwrap(),
        0o444,
    );
    let s = production(&[(env::KEYS_DIR, dir.to_str().unwrap())]);
    let e = Config::load(&s, false).unwrap_err();
    assert!(
        matches!(e, ConfigError::KeyFileReadableByOthers { .. }),
        "{e}"
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o400)).unwrap();
    // The ring wins, and the single key it replaces is not silently ignored.
    let unread = Config::load(&s, false).unwrap_err().to_string();
    assert!(
        unread.contains("DATABASE_ENCRYPTION_KEY set but not used"),
        "{unread}"
    );
    let mut s = s;
    s.vars.remove(DATABASE_ENCRYPTION_KEY);
    let c = Config::load(&s, false).unwrap();
    assert_eq!(c.keys.field.active_id(), "f1");
    assert_eq!(c.keys.keys_dir.as_deref(), Some(dir.as_path()));
}

#[test]
fn refuses_a_bad_jwt_key() {
    let dir = tmp();
    let f = file(
        &dir,
        "jwt",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        0o400,
    );
    let e = Config::load(
        &production(&[(&format!("{JWT_SECRET}_FILE"), f.to_str().unwrap())]),
        false,
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::JwtKeyInvalid { .. }), "{e}");
}

#[test]
fn refuses_bad_numbers_origins_and_cidrs() {
    for (var, value) in [
        (env::MAX_LOGIN_ATTEMPTS, "ten"),
        (env::MAX_LOGIN_ATTEMPTS, "0"),
        (env::SESSION_TIMEOUT, "-1"),
        (env::RATE_LIMIT_PER_IP, "0"),
        (env::ALLOWED_ORIGINS, "*"),
        (env::TRUSTED_PROXIES, "10.0.0.0/99"),
        (env::REQUIRE_MFA, "yes please"),
    ] {
        let e = Config::load(&production(&[(var, value)]), false).unwrap_err();
        assert!(e.to_string().contains(var), "{var}: {e}");
    }
}

#[test]
fn refuses_plaintext_cache_and_database_in_production() {
    let e = Config::load(
        &production(&[(env::CACHE_URL, "redis://cache:6379")]),
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains(env::CACHE_URL));
    let e = Config::load(
        &production(&[(DATABASE_URL, "postgres://u:secretpw@db/x")]),
        false,
    )
    .unwrap_err();
    assert!(!e.to_string().contains("secretpw"), "{e}");
    let e = Config::load(
        &production(&[
            (env::DATABASE_HOST, "db"),
            (env::DATABASE_SSLMODE, "disable"),
        ]),
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains(env::DATABASE_SSLMODE));
}

#[test]
fn reads_policies() {
    let c = Config::load(
        &production(&[
            (env::MAX_LOGIN_ATTEMPTS, "3"),
            (env::LOCKOUT_DURATION, "60"),
            (env::ALLOWED_ORIGINS, "https://a.example, https://b.example"),
            (env::TRUSTED_PROXIES, "10.0.0.0/8,192.168.1.1"),
            (env::REQUIRE_MFA, "true"),
        ]),
        false,
    )
    .unwrap();
    assert_eq!(c.policy.max_login_attempts, 3);
    assert_eq!(c.policy.lockout_duration, Duration::from_secs(60));
    assert_eq!(
        c.policy.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(c.policy.trusted_proxies.len(), 2);
    assert!(c.policy.require_mfa);
}

#[test]
fn dev_mode_generates_keys_and_binds_loopback() {
    let c = Config::load(&src(&[(env::KEYS_DIR, "/nonexistent")]), true).unwrap();
    assert!(c.dev);
    assert!(c.listen.ip().is_loopback() && c.metrics_listen.ip().is_loopback());
    assert_eq!(
        c.database,
        DatabaseConfig::Url(zeroize::Zeroizing::new("sqlite::memory:".into()))
    );
}

#[test]
fn debug_output_has_no_secrets() {
    let c = Config::load(
        &production(&[(DATABASE_URL, "sqlite:/tmp/x?pw=hunter2")]),
        false,
    )
    .unwrap();
    let d = format!("{c:?}");
    assert!(
        !d.contains("hunter2") && !d.contains(KEY) && !d.contains("PRIVATE"),
        "{d}"
    );
}

#[test]
fn a_directory_needs_its_client_and_callback_and_keeps_passwords_for_admins() {
    let dir = tmp();
    let id = file(&dir, "client-id", "bot", 0o400);
    let secret = file(&dir, "client-secret", "a-secret", 0o400);
    let base = [
        (env::OIDC_ISSUER, "https://id.example.com/"),
        (env::OIDC_CLIENT_ID_FILE, id.to_str().unwrap()),
        (env::OIDC_CLIENT_SECRET_FILE, secret.to_str().unwrap()),
    ];
    let e = Config::load(&production(&base), false).unwrap_err();
    assert!(e.to_string().contains("OIDC_REDIRECT_URL"), "{e}");
    let mut with_callback = base.to_vec();
    with_callback.push((
        env::OIDC_REDIRECT_URL,
        "https://bot.example.com/api/auth/oidc/callback",
    ));
    let c = Config::load(&production(&with_callback), false).unwrap();
    let d = c.directory.unwrap();
    assert_eq!(d.issuer, "https://id.example.com");
    assert_eq!(d.audience, "bot", "the client id by default");
    assert_eq!(d.roles_claim, "groups");
    assert_eq!(c.policy.password_login, PasswordLogin::Admins);
    assert!(!format!("{d:?}").contains("a-secret"));
    let mut http_issuer = with_callback.clone();
    http_issuer[0] = (env::OIDC_ISSUER, "http://id.example.com");
    assert!(Config::load(&production(&http_issuer), false).is_err());
    // Without a directory, password sign-in cannot be switched off.
    let e = Config::load(&production(&[(env::PASSWORD_LOGIN, "off")]), false).unwrap_err();
    assert!(e.to_string().contains("nobody could sign in"), "{e}");
}
