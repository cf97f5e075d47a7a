//! `bot-server`: the GeneralBot bot server. Reads and validates its configuration
//! (refusing to start on an unsafe production setting), connects storage and cache,
//! follows key-ring files, and serves the API and the operations port.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use generalbot_bot_server::config::{Config, ProcessEnv};
use generalbot_bot_server::tls::ReloadingTls;
use generalbot_bot_server::{Listeners, build_state, serve, shutdown_signal};
use generalbot_crds::contract::env;

/// The GeneralBot bot server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Development mode: ephemeral keys, SQLite in memory, 127.0.0.1 only.
    #[arg(long)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Asks this container's own `/healthz` on the metrics port (the image's HEALTHCHECK:
    /// the image has no shell or curl). Exits 0 when it answers 200.
    Healthcheck,
    /// Applies the schema migrations as the owner role (DATABASE_OWNER_USER_FILE and
    /// DATABASE_OWNER_PASSWORD_FILE) and grants the server's role (DATABASE_USER_FILE)
    /// what it uses, then exits: the operator's migration init container.
    Migrate,
    /// Takes an encrypted backup of the database into the bucket (the server's settings),
    /// then deletes backups past the retention, never the newest. Prints what it did as
    /// JSON. The operator's CronJob runs it.
    Backup,
    /// Restores a backup into an empty database as the owner role
    /// (DATABASE_OWNER_USER_FILE, DATABASE_OWNER_PASSWORD_FILE), then migrates it.
    Restore {
        /// The backup's object key (`backups/…`), as `kubectl generalbot status` lists it.
        #[arg(long, required_unless_present = "latest", conflicts_with = "latest")]
        object: Option<String>,
        /// The newest backup.
        #[arg(long)]
        latest: bool,
    },
    /// Administration with the server's configuration, while the server runs or not.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(clap::Subcommand)]
enum Admin {
    /// Creates a user (the first administrator, say) and records it in the audit log.
    CreateUser {
        /// Email address to sign in with.
        #[arg(long)]
        email: String,
        /// `user`, `operator` or `admin`.
        #[arg(long, default_value = "user")]
        role: String,
        /// A file holding the password (at least 12 characters; a trailing newline is
        /// ignored). Never a command-line value, which other users could read.
        #[arg(long)]
        password_file: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The guide: INFO in production, DEBUG in development.
    let dev = cli.dev || std::env::var(env::MODE).is_ok_and(|m| m == "dev");
    let level = std::env::var(env::LOG_LEVEL)
        .unwrap_or_else(|_| if dev { "debug,sqlx=warn" } else { "info" }.into());
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .init();
    if let Some(Command::Migrate) = cli.command {
        return migrate(dev).await;
    }
    match cli.command {
        Some(Command::Backup) => {
            return report(
                generalbot_bot_server::backup::command::backup(&ProcessEnv, cli.dev).await,
            );
        }
        Some(Command::Restore { object, .. }) => {
            return report(
                generalbot_bot_server::backup::command::restore(&ProcessEnv, cli.dev, object).await,
            );
        }
        _ => {}
    }
    if let Some(Command::Healthcheck) = cli.command {
        let port = std::env::var(env::METRICS_LISTEN)
            .ok()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .map_or(9090, |a| a.port());
        return generalbot_bot_server::ops::healthcheck(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            port,
        )))
        .await;
    }
    let config = match Config::load(&ProcessEnv, cli.dev) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "refusing to start: fix the configuration");
            return ExitCode::FAILURE;
        }
    };
    if config.dev {
        tracing::warn!(
            "DEV MODE: EPHEMERAL KEYS (data is unreadable after a restart), in-memory database, 127.0.0.1 only. NEVER USE IN PRODUCTION"
        );
    }
    let state = match build_state(&config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Admin(admin)) = cli.command {
        return run_admin(&state, admin).await;
    }
    if let Some((email, password)) = &config.bootstrap_admin
        && let Err(e) =
            generalbot_bot_server::bootstrap::bootstrap_admin(&state, email, password).await
    {
        tracing::error!(error = %e, "refusing to start: fix the bootstrap administrator's Secret");
        return ExitCode::FAILURE;
    }
    if let Some(dir) = &config.bots_dir
        && let Err(e) = generalbot_bot_server::bootstrap::load_bot_dir(&state, dir).await
    {
        tracing::error!(error = %e, "refusing to start: fix the bot directory");
        return ExitCode::FAILURE;
    }
    let _bots_reload = config.bots_dir.clone().map(|dir| {
        generalbot_bot_server::bootstrap::spawn_bot_dir_reload(
            state.clone(),
            dir,
            Duration::from_secs(30),
        )
    });
    let dev_login = match generalbot_bot_server::bootstrap::seed_dev(&state, config.dev).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let _reload = state.keys.spawn_reload(
        Arc::new(ProcessEnv),
        config.dev,
        Duration::from_secs(5),
        Some(state.auth.audit.clone()),
    );
    let _sweep = state.auth.shared.spawn_sweep(Duration::from_secs(60));
    let _attachments = generalbot_bot_server::objects::attachments::spawn_sweep(
        state.clone(),
        Duration::from_secs(600),
    );
    let _reencrypt =
        generalbot_bot_server::reencrypt::spawn(state.clone(), Duration::from_secs(60));
    let listeners = match Listeners::bind(config.listen, config.metrics_listen).await {
        Ok(l) => match &config.tls {
            Some((cert, key)) => match ReloadingTls::load(cert, key, config.client_ca()) {
                Ok(tls) => {
                    drop(tls.spawn_reload(Duration::from_secs(5)));
                    l.with_tls(tls)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start");
                    return ExitCode::FAILURE;
                }
            },
            None => {
                tracing::warn!(
                    "no TLS certificate configured: the API is plain HTTP (behind a TLS-terminating proxy only)"
                );
                l
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    if let Some(login) = dev_login {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        println!(
            "\nGeneralBot dev server\n  web chat:  {scheme}://{}/\n  sign in:   {} (administrator) or {} (user)\n  password:  {} (this run only)\n",
            config.listen,
            login.admin_email,
            login.user_email,
            login.password.as_str()
        );
    }
    match serve(listeners, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            ExitCode::FAILURE
        }
    }
}

/// Prints a command's result as one JSON line, or logs its error.
fn report<T: serde::Serialize, E: std::fmt::Display>(result: Result<T, E>) -> ExitCode {
    match result {
        Ok(done) => {
            println!("{}", serde_json::to_string(&done).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "failed");
            ExitCode::FAILURE
        }
    }
}

/// `bot-server migrate`: only the database settings are read.
async fn migrate(dev: bool) -> ExitCode {
    let settings = generalbot_bot_server::config::migration_settings(&ProcessEnv, dev);
    let (runtime, owner) = match settings {
        Ok((runtime, Some(owner))) => (runtime, owner),
        Ok((_, None)) => {
            tracing::error!(
                "migrate needs the owner role: set DATABASE_OWNER_USER_FILE and DATABASE_OWNER_PASSWORD_FILE"
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            tracing::error!(error = %e, "refusing to migrate: fix the configuration");
            return ExitCode::from(2);
        }
    };
    match generalbot_bot_server::store::migrate_as_owner(&owner, &runtime).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "migration failed");
            ExitCode::FAILURE
        }
    }
}

async fn run_admin(state: &generalbot_bot_server::http::AppState, admin: Admin) -> ExitCode {
    use generalbot_bot_server::audit::AuditKind;
    use generalbot_bot_server::auth::Role;
    match admin {
        Admin::CreateUser {
            email,
            role,
            password_file,
        } => {
            let Some(role) = Role::parse(&role) else {
                eprintln!("error: --role must be user, operator or admin, not {role:?}");
                return ExitCode::from(2);
            };
            let password = match std::fs::read_to_string(&password_file) {
                Ok(p) => zeroize::Zeroizing::new(p.trim_end_matches(['\r', '\n']).to_owned()),
                Err(e) => {
                    eprintln!(
                        "error: reading --password-file {}: {e}",
                        password_file.display()
                    );
                    return ExitCode::from(2);
                }
            };
            match state.auth.register(&email, &password, role, false).await {
                Ok((id, _)) => {
                    state
                        .auth
                        .audit
                        .record(
                            AuditKind::AdminAction,
                            "bot-server admin",
                            "success",
                            serde_json::json!({"created_user": id, "role": role.as_str()}),
                        )
                        .await;
                    println!("created {} user {id}", role.as_str());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: creating the user: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
