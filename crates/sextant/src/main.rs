//! The `sextant` binary: CLI, configuration and wiring.

mod audit;
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
mod tls;
mod users;
mod webhooks;
mod worker;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// Users of a server with --auth, managed directly in its store.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// The audit log of a server with --auth, read and verified directly in its store.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Webhooks' stored secrets, managed directly in the store.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
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

/// The command line as parsed: the derived one, built, with what the
/// derive cannot say.
fn command() -> clap::Command {
    // `--server` is global under `monitors` for every command that talks to
    // a server; `monitors baseline` works offline and must not offer it. A
    // subcommand's own argument of the same id is not overridden by the
    // global one, so a hidden local copy takes its place there.
    Cli::command().mut_subcommand("monitors", |m| {
        let server = m
            .get_arguments()
            .find(|a| a.get_id() == "server")
            .cloned()
            .expect("monitors has --server");
        m.mut_subcommand("baseline", |b| b.arg(server.global(false).hide(true)))
    })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
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
        .with_ansi(colour_stderr())
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

/// Colour only on a terminal, and never under `NO_COLOR` (no-color.org:
/// set and not empty): a log written to a file or a pipe stays plain text.
fn colour_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
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
        Command::Users { command } => users::run(command),
        Command::Audit { command } => audit::run(command),
        Command::Webhooks { command } => webhooks::run(command),
        Command::Db {
            command: DbCommand::Upgrade(args),
        } => {
            let uri = match &args.backend_store_uri {
                Some(uri) => uri.clone(),
                None => args.backend_store_uri(&args.resolve_data_dir()?)?,
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand under `cmd`, `cmd` included, with its path.
    fn all(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            all(sub, format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_argument_and_flag_has_help() {
        let mut commands = Vec::new();
        all(&command(), "sextant".into(), &mut commands);
        let mut missing = Vec::new();
        for (path, cmd) in &commands {
            if cmd.get_about().is_none() && path != "sextant" && !cmd.is_hide_set() {
                missing.push(format!("{path} (the command)"));
            }
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                    missing.push(format!("{path}: {}", arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
