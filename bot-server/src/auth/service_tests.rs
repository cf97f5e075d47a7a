//! The identity flows on SQLite in memory: lockout, spraying, refresh, TOTP, audit.
use super::*;
use crate::config::{DatabaseConfig, Keys};
use crate::crypto::keyring::{SigningRing, SymmetricRing};

pub(crate) fn keys() -> Keys {
    let field = SymmetricRing::single(zeroize::Zeroizing::new([5; 32]));
    Keys {
        data: SymmetricRing::single(zeroize::Zeroizing::new([6; 32])),
        hmac: field.derive("generalbot hmac v1"),
        field,
        jwt: SigningRing::from_rsa_pem(crate::crypto::keyring::tests::TEST_RSA_PEM).unwrap(),
        ops_token: None,
        keys_dir: None,
    }
}

pub(crate) async fn service(policy: Policy) -> AuthService {
    let store = Store::connect(&DatabaseConfig::Url(zeroize::Zeroizing::new(
        "sqlite::memory:".into(),
    )))
    .await
    .unwrap();
    let keys = KeyStore::new(keys());
    let audit = Arc::new(Audit::new(
        store.clone(),
        keys.clone(),
        true,
        Some(Shared::memory()),
        Default::default(),
    ));
    AuthService::new(store, keys, Shared::memory(), audit, Arc::default(), policy)
}

const PW: &str = "correct horse battery";
fn ip() -> IpAddr {
    [10, 1, 2, 3].into()
}

#[tokio::test]
async fn lockout_happens_at_exactly_the_threshold() {
    let policy = Policy {
        max_login_attempts: 4,
        login_alert_threshold: 2,
        ..Policy::default()
    };
    let s = service(policy).await;
    s.register("a@example.com", PW, Role::User, false)
        .await
        .unwrap();
    // threshold - 1 failures: the right password still works.
    for _ in 0..3 {
        assert!(matches!(
            s.login("a@example.com", "wrong", None, ip()).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    s.login("A@Example.com", PW, None, ip()).await.unwrap();
    // threshold failures: locked, even with the right password, and the error is the same.
    // (From different addresses, so only the account counter reaches its threshold.)
    for i in 0..4 {
        assert!(
            s.login("a@example.com", "wrong", None, [10, 2, 0, i].into())
                .await
                .is_err()
        );
    }
    assert!(matches!(
        s.login("a@example.com", PW, None, [10, 9, 9, 9].into())
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(s.metrics.lockouts.get(), 1);
    let rows = s.audit.read_verified().await.unwrap();
    assert!(rows.iter().any(|r| r.outcome == "alert"));
    assert_eq!(
        rows.iter()
            .filter(|r| r.outcome == "account_locked")
            .count(),
        1
    );
    // Unknown accounts get the same error.
    assert!(matches!(
        s.login("nobody@example.com", PW, None, ip()).await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_parallel_guesses_gets_no_more_checks_than_the_count() {
    let policy = Policy {
        max_login_attempts: 4,
        login_alert_threshold: 2,
        ..Policy::default()
    };
    let s = Arc::new(service(policy).await);
    s.register("a@example.com", PW, Role::User, false)
        .await
        .unwrap();
    let mut burst = Vec::new();
    for i in 0..12u8 {
        let s = s.clone();
        burst.push(tokio::spawn(async move {
            s.login("a@example.com", "wrong guess", None, [10, 3, 0, i].into())
                .await
        }));
    }
    for t in burst {
        assert!(t.await.unwrap().is_err());
    }
    let rows = s.audit.read_verified().await.unwrap();
    let checked = rows
        .iter()
        .filter(|r| r.detail.contains("bad_password"))
        .count();
    assert_eq!(checked, 4, "only 4 of 12 parallel guesses were checked");
    assert!(
        matches!(
            s.login("a@example.com", PW, None, [10, 9, 9, 9].into())
                .await,
            Err(AuthError::InvalidCredentials)
        ),
        "locked; the right password does not lift it"
    );
    let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
    assert!(matches!(
        s.login("a@example.com", &long, None, ip()).await,
        Err(AuthError::Hashing(HashError::TooLong))
    ));
}

#[tokio::test]
async fn password_spraying_locks_the_address_at_the_threshold() {
    let policy = Policy {
        max_login_attempts: 3,
        login_alert_threshold: 2,
        ..Policy::default()
    };
    let s = service(policy).await;
    for u in ["p1", "p2", "p3", "p4"] {
        s.register(&format!("{u}@example.com"), PW, Role::User, false)
            .await
            .unwrap();
    }
    let sprayer: IpAddr = [192, 0, 2, 1].into();
    for u in ["p1", "p2"] {
        assert!(
            s.login(&format!("{u}@example.com"), "guess", None, sprayer)
                .await
                .is_err()
        );
    }
    // Two failures: the address still works.
    s.login("p4@example.com", PW, None, sprayer).await.unwrap();
    for u in ["p1", "p2", "p3"] {
        assert!(
            s.login(&format!("{u}@example.com"), "guess", None, sprayer)
                .await
                .is_err()
        );
    }
    // Three: locked, for every account, while other addresses are unaffected.
    assert!(matches!(
        s.login("p4@example.com", PW, None, sprayer).await,
        Err(AuthError::InvalidCredentials)
    ));
    s.login("p4@example.com", PW, None, [192, 0, 2, 2].into())
        .await
        .unwrap();
    let rows = s.audit.read_verified().await.unwrap();
    assert!(rows.iter().any(|r| r.outcome == "ip_alert"));
    assert_eq!(rows.iter().filter(|r| r.outcome == "ip_locked").count(), 1);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let s = service(Policy::default()).await;
    s.register("b@example.com", PW, Role::Admin, false)
        .await
        .unwrap();
    let first = s.login("b@example.com", PW, None, ip()).await.unwrap();
    let p = s.authenticate(&first.access_token).await.unwrap();
    assert_eq!(p.role, Role::Admin);
    let second = s.refresh(&first.refresh_token, ip()).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    // Reusing the first token: rejected, and the whole family with it.
    assert!(matches!(
        s.refresh(&first.refresh_token, ip()).await,
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        s.refresh(&second.refresh_token, ip()).await,
        Err(AuthError::InvalidToken)
    ));
    assert!(s.authenticate(&second.access_token).await.is_err());
    // Both presentations of a spent token count: the reuse and the revoked successor.
    assert_eq!(s.metrics.refresh_reuse.get(), 2);
}

#[tokio::test]
async fn an_anonymous_flood_writes_a_few_audit_rows_not_one_per_request() {
    let s = service(Policy {
        max_login_attempts: 100,
        ..Policy::default()
    })
    .await;
    for i in 0..20u8 {
        let _ = s
            .login("nobody@example.com", "guess", None, [10, 4, 0, i].into())
            .await;
    }
    let rows = s.audit.read_verified().await.unwrap();
    let anonymous: Vec<_> = rows.iter().filter(|r| r.actor == "anonymous").collect();
    assert_eq!(anonymous.len(), 5, "the 1st, 2nd, 4th, 8th and 16th");
    assert!(
        anonymous[4]
            .detail
            .contains("\"occurrences_this_minute\":16")
    );
}

#[tokio::test]
async fn refreshing_never_extends_a_login() {
    let s = service(Policy::default()).await;
    s.register("e@example.com", PW, Role::User, false)
        .await
        .unwrap();
    let first = s.login("e@example.com", PW, None, ip()).await.unwrap();
    let mut token = first.refresh_token;
    let mut ends = Vec::new();
    for _ in 0..3 {
        let keys = s.keys.current();
        let (_, hmac) = tokens::refresh_hmac(&keys.hmac, &token).unwrap();
        let row = sqlx::query("SELECT expires_at FROM refresh_tokens WHERE token_hmac = $1")
            .bind(&hmac)
            .fetch_one(s.store.pool())
            .await
            .unwrap();
        ends.push(sqlx::Row::try_get::<i64, _>(&row, 0).unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        token = s.refresh(&token, ip()).await.unwrap().refresh_token;
    }
    assert!(
        ends.windows(2).all(|w| w[0] == w[1]),
        "every refresh token of a login ends when the first one does: {ends:?}"
    );
}

#[tokio::test]
async fn logout_revokes_and_totp_is_enforced() {
    let s = service(Policy {
        require_mfa: true,
        ..Policy::default()
    })
    .await;
    let (_, secret) = s
        .register("c@example.com", PW, Role::User, true)
        .await
        .unwrap();
    let secret = secret.unwrap();
    assert!(matches!(
        s.login("c@example.com", PW, None, ip()).await,
        Err(AuthError::MfaRequired)
    ));
    assert!(matches!(
        s.login("c@example.com", PW, Some("12345x"), ip()).await,
        Err(AuthError::InvalidCredentials)
    ));
    let code = totp::current(&secret).unwrap();
    let pair = s
        .login("c@example.com", PW, Some(&code), ip())
        .await
        .unwrap();
    assert!(
        matches!(
            s.login("c@example.com", PW, Some(&code), ip()).await,
            Err(AuthError::InvalidCredentials)
        ),
        "a code is accepted once: no replay within its window"
    );
    let p = s.authenticate(&pair.access_token).await.unwrap();
    s.logout(&p).await.unwrap();
    assert!(s.authenticate(&pair.access_token).await.is_err());
    assert!(s.refresh(&pair.refresh_token, ip()).await.is_err());
    // MFA required but not enrolled: no login.
    s.register("d@example.com", PW, Role::User, false)
        .await
        .unwrap();
    assert!(
        s.login("d@example.com", PW, Some("000000"), ip())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn role_changes_and_deletions_take_effect_on_the_next_request() {
    let s = service(Policy::default()).await;
    let (admin, _) = s
        .register("admin@example.com", PW, Role::Admin, false)
        .await
        .unwrap();
    let (user, _) = s
        .register("e@example.com", PW, Role::User, false)
        .await
        .unwrap();
    let pair = s.login("e@example.com", PW, None, ip()).await.unwrap();
    assert_eq!(
        s.authenticate(&pair.access_token).await.unwrap().role,
        Role::User
    );
    let by = Principal {
        user_id: admin.clone(),
        role: Role::Admin,
        session_id: "s".into(),
    };
    s.set_role(&by, &user, Role::Operator).await.unwrap();
    assert_eq!(
        s.authenticate(&pair.access_token).await.unwrap().role,
        Role::Operator,
        "the same token carries the new role at once"
    );
    assert!(matches!(
        s.set_role(&by, &admin, Role::User).await,
        Err(AuthError::SelfChange)
    ));
    assert!(matches!(
        s.delete_user(&by, "no-such-id").await,
        Err(AuthError::NoSuchUser)
    ));
    s.delete_user(&by, &user).await.unwrap();
    assert!(matches!(
        s.authenticate(&pair.access_token).await,
        Err(AuthError::InvalidToken)
    ));
    assert!(s.refresh(&pair.refresh_token, ip()).await.is_err());
    assert!(s.login("e@example.com", PW, None, ip()).await.is_err());
}

#[tokio::test]
async fn totp_enrolment_is_confirmed_by_a_first_code_that_cannot_be_replayed() {
    let s = service(Policy::default()).await;
    s.register("f@example.com", PW, Role::User, false)
        .await
        .unwrap();
    let pair = s.login("f@example.com", PW, None, ip()).await.unwrap();
    let p = s.authenticate(&pair.access_token).await.unwrap();
    assert!(matches!(
        s.confirm_totp(&p, "123456").await,
        Err(AuthError::NoEnrolment)
    ));
    let e = s.enrol_totp(&p).await.unwrap();
    assert!(e.uri.starts_with("otpauth://totp/") && e.uri.contains(&e.secret_base32));
    assert!(
        !format!("{e:?}").contains(&e.secret_base32),
        "Debug hides the secret"
    );
    let secret = match totp_rs::Secret::Encoded(e.secret_base32.clone()).to_bytes() {
        Ok(b) => b,
        Err(e) => panic!("base32: {e:?}"),
    };
    // Pending, not yet in force: a login needs no code.
    s.login("f@example.com", PW, None, ip()).await.unwrap();
    assert!(
        matches!(
            s.confirm_totp(&p, "000000").await,
            Err(AuthError::InvalidCredentials)
        ) || totp::current(&secret).as_deref() == Some("000000")
    );
    let code = totp::current(&secret).unwrap();
    s.confirm_totp(&p, &code).await.unwrap();
    // In force now, and the confirming code cannot be replayed.
    assert!(matches!(
        s.login("f@example.com", PW, None, ip()).await,
        Err(AuthError::MfaRequired)
    ));
    assert!(matches!(
        s.login("f@example.com", PW, Some(&code), ip()).await,
        Err(AuthError::InvalidCredentials)
    ));
    let now = jiff::Timestamp::now().as_second().unsigned_abs();
    let next = totp::code_at(&secret, now + 30).unwrap();
    s.login("f@example.com", PW, Some(&next), ip())
        .await
        .unwrap();
    // The secret is stored encrypted, the pending slot emptied.
    assert_eq!(s.store.pending_totp(&p.user_id).await.unwrap(), None);
}
