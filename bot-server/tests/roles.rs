//! Least privilege in PostgreSQL, on a real server: migrations run as an owner role
//! (at start, or through `bot-server migrate` as the operator's init container does),
//! the server runs as a role that owns nothing, and row-level security covers every
//! table of user data. A production server refuses a role that could undo any of it.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use generalbot_bot_server::auth::Role;
use generalbot_bot_server::build_state;
use generalbot_bot_server::config::Config;
use generalbot_crds::contract::env;

const PW: &str = "a long and secret passphrase";

/// The last number psql printed (it prints command tags too).
fn count(out: &str) -> u64 {
    out.lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .unwrap()
}

#[tokio::test]
async fn the_server_runs_as_a_role_that_owns_nothing_under_row_level_security() {
    let pg = match support::Postgres::start() {
        Ok(pg) => pg,
        Err(why) => return support::skip("roles", &why),
    };
    let dir = support::secrets(&pg);
    let vars = support::replica_vars(&dir, &pg, None, &[]);
    let without = |names: &[&str]| {
        let mut v = vars.clone();
        for n in names {
            v.remove(*n);
        }
        v
    };
    let owner_vars = [
        env::DATABASE_OWNER_USER_FILE,
        env::DATABASE_OWNER_PASSWORD_FILE,
    ];
    let load = |v| Config::load(&support::source(v), false).unwrap();

    // Without the owner, a production server never migrates: it names the command.
    let refused = build_state(&load(without(&owner_vars)))
        .await
        .expect_err("an empty schema is refused")
        .to_string();
    assert!(
        refused.contains("schema is at version 0") && refused.contains("bot-server migrate"),
        "{refused}"
    );

    // `bot-server migrate`, as the operator's init container runs it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bot-server"))
        .arg("migrate")
        .env_clear()
        // What the operator's init container gets: the database settings and the owner's.
        .envs(
            vars.iter()
                .filter(|(k, _)| k.starts_with("DATABASE_") || k.as_str() == env::MODE),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Then the server starts without the owner's credentials.
    let state = build_state(&load(without(&owner_vars))).await.unwrap();
    let report = state.store.role_report().await.unwrap().unwrap();
    assert_eq!(report.role, pg.user);
    assert!(report.excess().is_empty(), "{:?}", report.excess());
    let (alice, _) = state
        .auth
        .register("alice@example.com", PW, Role::User, false)
        .await
        .unwrap();
    state
        .auth
        .register("bob@example.com", PW, Role::User, false)
        .await
        .unwrap();
    state
        .auth
        .login("alice@example.com", PW, None, "127.0.0.1".parse().unwrap())
        .await
        .unwrap();

    // What the runtime role cannot do, whoever asks it to.
    let as_runtime = |sql: &str| pg.try_psql(&pg.database, &format!("SET ROLE {}; {sql}", pg.user));
    for (sql, why) in [
        ("UPDATE audit_log SET outcome = 'x'", "permission denied"),
        ("DELETE FROM audit_log", "permission denied"),
        ("TRUNCATE audit_log", "permission denied"),
        (
            "DROP TRIGGER audit_log_no_change ON audit_log",
            "must be owner",
        ),
        (
            "ALTER TABLE users DISABLE ROW LEVEL SECURITY",
            "must be owner",
        ),
        ("DROP POLICY messages_owner ON messages", "must be owner"),
        ("CREATE TABLE stash (a text)", "permission denied"),
    ] {
        let err = as_runtime(sql).expect_err(sql);
        assert!(err.contains(why), "{sql}: {err}");
    }

    // The audit log's triggers refuse even a superuser.
    for sql in ["DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let err = pg.try_psql(&pg.database, sql).expect_err(sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }

    // Row-level security on users and refresh tokens: unscoped nothing, a user their own.
    let scoped = |scope: &str, table: &str| {
        count(
            &as_runtime(&format!(
                "BEGIN; SELECT set_config('app.user_id', '{scope}', true); SELECT count(*) FROM {table}; COMMIT;"
            ))
            .unwrap(),
        )
    };
    let unscoped =
        |table: &str| count(&as_runtime(&format!("SELECT count(*) FROM {table}")).unwrap());
    assert_eq!(unscoped("users"), 0, "no scope, no account");
    assert_eq!(unscoped("refresh_tokens"), 0, "no scope, no token");
    assert_eq!(scoped(&alice, "users"), 1, "a user sees their own account");
    assert_eq!(scoped(&alice, "refresh_tokens"), 1);
    assert_eq!(scoped("someone-else", "refresh_tokens"), 0);
    assert_eq!(
        scoped("__auth__", "users"),
        2,
        "the identity service sees all"
    );
    let stolen = as_runtime(&format!(
        "BEGIN; SELECT set_config('app.user_id', '{alice}', true); UPDATE users SET role = 'admin' WHERE id <> '{alice}'; COMMIT;"
    ))
    .unwrap();
    assert!(stolen.contains("UPDATE 0"), "{stolen}");

    // A production server refuses a role that owns the schema.
    support::write(&dir.join("db-user"), &pg.owner, 0o400);
    support::write(&dir.join("db-password"), &pg.owner_password, 0o400);
    let refused = build_state(&load(without(&owner_vars)))
        .await
        .expect_err("the owner as the runtime role is refused")
        .to_string();
    assert!(
        refused.contains(&format!("\"{}\" owns", pg.owner)),
        "{refused}"
    );
    // … and owner credentials that name the runtime role itself.
    let same = Config::load(&support::source(vars.clone()), false)
        .expect_err("the owner must differ from the runtime role")
        .to_string();
    assert!(same.contains("other than the server's own"), "{same}");
    // … and a superuser.
    pg.psql("postgres", &format!("ALTER ROLE {} SUPERUSER", pg.user));
    support::write(&dir.join("db-user"), &pg.user, 0o400);
    support::write(&dir.join("db-password"), &pg.password, 0o400);
    let refused = build_state(&load(without(&owner_vars)))
        .await
        .expect_err("a superuser is refused")
        .to_string();
    assert!(refused.contains("is a superuser"), "{refused}");
}
