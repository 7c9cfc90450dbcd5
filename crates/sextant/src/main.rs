//! The `sextant` binary: CLI, configuration and wiring.

mod server;

use clap::{Parser, Subcommand};

/// Sextant: experiment tracking, registry, pipelines, serving and monitoring in one binary.
#[derive(Parser)]
#[command(name = "sextant", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the tracking server (MLflow-compatible API).
    Server(server::ServerArgs),
    /// Manage the metadata database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply pending schema migrations.
    Upgrade(server::StoreArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEXTANT_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server::run(args),
        Command::Db {
            command: DbCommand::Upgrade(args),
        } => {
            let uri = args.backend_store_uri();
            let applied = sextant_store::upgrade(&uri, server::DEFAULT_ARTIFACT_ROOT)?;
            if applied.is_empty() {
                eprintln!("database is up to date");
            } else {
                eprintln!("applied migrations: {applied:?}");
            }
            Ok(())
        }
    }
}
