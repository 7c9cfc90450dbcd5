//! The `sextant` binary: CLI, configuration and wiring.

mod client;
mod endpoints;
mod events;
mod gateway;
mod import;
mod models;
mod monitors;
mod pipelines;
mod quickstart;
mod server;
mod worker;

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
    /// Run the whole loop on synthetic data: train, serve, monitor, drift, retrain, roll out.
    Quickstart(quickstart::QuickstartArgs),
    /// Run the tracking server (MLflow-compatible API).
    Server(server::ServerArgs),
    /// Manage the metadata database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Registered models: list, show, approve, reject, alias.
    Models {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// The lifecycle events feed.
    Events {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// Pipelines: validate, apply, run and show.
    Pipelines {
        #[command(subcommand)]
        command: pipelines::PipelinesCommand,
    },
    /// Serving endpoints: apply, create, update (roll out), promote, rollback, show, list, delete.
    Endpoints {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: endpoints::EndpointsCommand,
    },
    /// Monitors: baselines, data-quality, drift and model-quality checks of endpoints' traffic.
    Monitors {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: monitors::MonitorsCommand,
    },
    /// Serve one endpoint as its own process, following its definition on a server.
    Gateway(gateway::GatewayArgs),
    /// Run pipeline steps on this host for a server (a remote worker).
    Worker(worker::WorkerArgs),
    /// Import history from another tracking server, keeping its ids.
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply pending schema migrations.
    Upgrade(server::StoreArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The quickstart prints its own progress; the server's log would bury it.
    let level = match cli.command {
        Command::Quickstart(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEXTANT_LOG")
                .unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // One line with its causes (and any `hint:` lines), never a backtrace:
        // these errors are for the person at the terminal.
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Quickstart(args) => quickstart::run(args),
        Command::Server(args) => server::run(args),
        Command::Models { client, command } => models::run(client, command),
        Command::Events { client, command } => events::run(client, command),
        Command::Import { command } => import::run(command),
        Command::Pipelines { command } => pipelines::run(command),
        Command::Worker(args) => worker::run(args),
        Command::Gateway(args) => gateway::run(args),
        Command::Endpoints { client, command } => endpoints::run(client, command),
        Command::Monitors { client, command } => monitors::run(client, command),
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
