//! Backup and restore throughput and peak memory, against `pg_dump | gzip` and
//! `gunzip | psql` of the same database in the same run.
//!
//! A real PostgreSQL (TLS) holds `GENERALBOT_BENCH_BACKUP_MB` megabytes (default 1024)
//! of message rows; a real S3 server (moto, TLS) takes the backup. Each side runs as a
//! process under `/usr/bin/time`, which gives its wall time and peak resident memory:
//! `bot-server backup` (read in one snapshot, gzip, seal in 64 KiB chunks, multipart
//! upload) against `pg_dump | gzip > file`; `bot-server restore` into a fresh database
//! (one transaction, every count checked) against `gunzip | psql`. Throughput is the
//! database's size over the wall time.
//!
//! `cargo bench -p generalbot-bot-server --bench backup`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Command;

use generalbot_crds::contract::env;

/// Runs `cmd` under `/usr/bin/time`: (seconds, peak RSS in MiB, stdout).
fn timed(mut cmd: Command) -> (f64, f64, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let last = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("TIME "))
        .unwrap();
    let mut f = last.split_whitespace().skip(1);
    let secs: f64 = f.next().unwrap().parse().unwrap();
    let kib: f64 = f.next().unwrap().parse().unwrap();
    (
        secs,
        kib / 1024.0,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn time_cmd() -> Command {
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "TIME %e %M"]);
    c
}

fn bot_server(args: &[&str], vars: &BTreeMap<String, String>) -> Command {
    let mut c = time_cmd();
    c.arg(env!("CARGO_BIN_EXE_bot-server"))
        .args(args)
        .env_clear()
        .envs(vars);
    c
}

/// A shell pipeline run as the `postgres` user (as the test kit runs PostgreSQL's tools).
fn as_postgres(pipeline: &str) -> Command {
    let mut c = time_cmd();
    c.args(["runuser", "-u", "postgres", "--", "sh", "-c", pipeline]);
    c
}

#[tokio::main]
async fn main() {
    let mb: u64 = std::env::var("GENERALBOT_BENCH_BACKUP_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let pg = support::Postgres::start().expect("PostgreSQL");
    let moto = support::Moto::start().expect("moto");
    let dir = support::secrets(&pg);
    let storage = support::storage_settings(&dir, &moto, "bench-backups");
    let vars = support::replica_vars(&dir, &pg, None, &storage);
    {
        let cfg =
            generalbot_bot_server::config::Config::load(&support::source(vars.clone()), false)
                .unwrap();
        let state = generalbot_bot_server::build_state(&cfg).await.unwrap();
        let generalbot_bot_server::objects::files::Files::Bucket { client, bucket } =
            state.files.clone()
        else {
            panic!("bucket")
        };
        client.create_bucket().bucket(&bucket).send().await.unwrap();
    }
    // About 350 bytes per message row on disk, with its index.
    let rows = mb * 1024 * 1024 / 350;
    eprintln!("filling {mb} MB: {rows} message rows");
    pg.psql(&pg.database, "INSERT INTO conversations (id, user_id, created_at) SELECT 'c-' || g, 'u-' || (g % 97), g FROM generate_series(1, 1000) g");
    let step = 500_000u64;
    let mut from = 1u64;
    while from <= rows {
        let to = (from + step - 1).min(rows);
        pg.psql(
            &pg.database,
            &format!(
                "INSERT INTO messages (id, conversation_id, user_id, body_enc, created_at, sender) \
                 SELECT 'm-' || g, 'c-' || (1 + g % 1000), 'u-' || (g % 97), 'v1:d1:' || repeat(md5(g::text), 7), g, 'user' \
                 FROM generate_series({from}, {to}) g"
            ),
        );
        from = to + 1;
    }
    pg.psql(&pg.database, "VACUUM ANALYZE");
    let size: f64 = pg
        .psql(&pg.database, "SELECT pg_database_size(current_database())")
        .trim()
        .parse()
        .unwrap();
    let size_mb = size / 1e6;
    eprintln!("database: {size_mb:.0} MB");

    let (b_secs, b_mib, out) = timed(bot_server(&["backup"], &vars));
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let key = report["key"].as_str().unwrap().to_owned();
    let dump = pg.dir.join("bench.sql.gz");
    let pg_args = format!("-h {} -p {} -U postgres", pg.dir.display(), pg.port);
    let (d_secs, d_mib, _) = timed(as_postgres(&format!(
        "{}/pg_dump {pg_args} {} | gzip > {}",
        pg.bin.display(),
        pg.database,
        dump.display()
    )));
    let dump_bytes = std::fs::metadata(&dump).unwrap().len();

    pg.psql(
        "postgres",
        &format!("CREATE DATABASE restored OWNER {}", pg.owner),
    );
    let mut into = vars.clone();
    into.insert(env::DATABASE_NAME.into(), "restored".into());
    let (r_secs, r_mib, _) = timed(bot_server(&["restore", "--object", &key], &into));
    pg.psql("postgres", "CREATE DATABASE psql_restored");
    let (p_secs, p_mib, _) = timed(as_postgres(&format!(
        "gunzip -c {} | {}/psql -q -v ON_ERROR_STOP=1 {pg_args} -d psql_restored > /dev/null",
        dump.display(),
        pg.bin.display()
    )));
    let count = |db: &str| {
        pg.psql(db, "SELECT COUNT(*) FROM messages")
            .trim()
            .to_owned()
    };
    assert_eq!(count("restored"), count(&pg.database));
    assert_eq!(count("psql_restored"), count(&pg.database));

    let mbps = |s: f64| size_mb / s;
    println!("backup bench: database {size_mb:.0} MB, {rows} message rows");
    println!(
        "  backup   bot-server backup    {b_secs:7.1} s {:7.1} MB/s  peak {b_mib:6.1} MiB  object {:.0} MB",
        mbps(b_secs),
        report["bytes"].as_f64().unwrap() / 1e6
    );
    println!(
        "           pg_dump | gzip       {d_secs:7.1} s {:7.1} MB/s  peak {d_mib:6.1} MiB  file   {:.0} MB",
        mbps(d_secs),
        dump_bytes as f64 / 1e6
    );
    println!(
        "           ratio (ours / reference): time {:.2}x, peak memory {:.2}x",
        b_secs / d_secs,
        b_mib / d_mib
    );
    println!(
        "  restore  bot-server restore   {r_secs:7.1} s {:7.1} MB/s  peak {r_mib:6.1} MiB",
        mbps(r_secs)
    );
    println!(
        "           gunzip | psql        {p_secs:7.1} s {:7.1} MB/s  peak {p_mib:6.1} MiB",
        mbps(p_secs)
    );
    println!(
        "           ratio (ours / reference): time {:.2}x, peak memory {:.2}x",
        r_secs / p_secs,
        r_mib / p_mib
    );
}
