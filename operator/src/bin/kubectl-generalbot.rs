//! `kubectl-generalbot`: the kubectl plugin (`kubectl generalbot …` once on PATH). With
//! the user's kubeconfig: `status NAME` shows a GeneralBot on one screen, `rotate NAME
//! RING` asks the operator for a forced rotation, `render -f FILE` shows what the
//! operator would create; `--output json` for scripts.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use generalbot_crds::GeneralBot;
use generalbot_operator::plugin;
use generalbot_operator::rotation::triggers::FORCE_ANNOTATION;
use kube::api::{Api, Patch, PatchParams};

/// Inspect and operate GeneralBots.
#[derive(Parser)]
#[command(
    name = "kubectl generalbot",
    version,
    about = "Inspect and operate GeneralBots: status on one screen, forced rotations, offline render"
)]
struct Cli {
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Conditions, certificates with days left, key rings with their active key and
    /// age, rotation, backups and the audit chain head, on one screen.
    Status {
        /// The GeneralBot.
        name: String,
    },
    /// Asks the operator to rotate now (sets generalbots.io/rotate with a fresh tag).
    Rotate {
        /// The GeneralBot.
        name: String,
        /// jwt, data, field, hmac, ca or all.
        ring: String,
    },
    /// What the operator would create for a GeneralBot file (secret values hidden).
    Render {
        /// The GeneralBot YAML file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Render { file } = &cli.command {
        return match generalbot_operator::render::render_file(file, cli.namespace.as_deref()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: no cluster to talk to ({e}): set KUBECONFIG or a kubectl context");
            return ExitCode::from(2);
        }
    };
    let namespace = cli
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let api: Api<GeneralBot> = Api::namespaced(client, &namespace);
    match cli.command {
        Command::Status { name } => match api.get_opt(&name).await {
            Ok(Some(gb)) => {
                let v = plugin::view(&gb, jiff::Timestamp::now());
                match cli.output {
                    Output::Text => print!("{}", plugin::text(&v)),
                    Output::Json => match serde_json::to_string_pretty(&v) {
                        Ok(j) => println!("{j}"),
                        Err(e) => {
                            eprintln!("error: {e}");
                            return ExitCode::FAILURE;
                        }
                    },
                }
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!("error: no GeneralBot {name} in namespace {namespace}");
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("error: reading GeneralBot {namespace}/{name}: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Rotate { name, ring } => {
            let Some(value) = plugin::force_value(&ring, jiff::Timestamp::now()) else {
                eprintln!(
                    "error: {ring:?} is not a ring: use one of {}",
                    plugin::RINGS.join(", ")
                );
                return ExitCode::from(2);
            };
            let patch = serde_json::json!({"metadata": {"annotations": {FORCE_ANNOTATION: value}}});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    match cli.output {
                        Output::Text => println!(
                            "asked the operator to rotate {ring} on {namespace}/{name} ({FORCE_ANNOTATION}={value}); follow it with: kubectl generalbot status {name}"
                        ),
                        Output::Json => println!(
                            "{}",
                            serde_json::json!({"namespace": namespace, "name": name, "annotation": FORCE_ANNOTATION, "value": value})
                        ),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: annotating GeneralBot {namespace}/{name}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Render { .. } => ExitCode::SUCCESS,
    }
}
