//! `sextant users`: manage the users of a server with `--auth` directly in
//! its store, like `sextant db upgrade` (the first admin is made this way,
//! before any server can be logged into).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sextant_core::auth::{validate_password, validate_username};
use sextant_server::auth::secrets::hash_password;

use crate::server::{DEFAULT_ARTIFACT_ROOT, StoreArgs};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; its password comes from SEXTANT_PASSWORD or, asked for, from standard input.
    Create(CreateArgs),
    /// List the users.
    List(StoreArgs),
    /// Set a user's password (from SEXTANT_PASSWORD or standard input).
    SetPassword(NameArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The user name.
    name: String,
    /// Make the user an admin (may do everything, including managing users).
    #[arg(long)]
    admin: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct NameArgs {
    /// The user name.
    name: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// The migrated store of `args` (users live in the metadata store).
fn open(args: &StoreArgs) -> anyhow::Result<Box<dyn sextant_store::MetaStore>> {
    let uri = match &args.backend_store_uri {
        Some(uri) => uri.clone(),
        None => args.backend_store_uri(&args.resolve_data_dir()?)?,
    };
    sextant_store::upgrade(&uri, DEFAULT_ARTIFACT_ROOT)
        .with_context(|| format!("migrating {}", crate::server::redact(&uri)))?;
    sextant_store::open(&uri, DEFAULT_ARTIFACT_ROOT)
        .with_context(|| format!("opening {}", crate::server::redact(&uri)))
}

/// The new password: `SEXTANT_PASSWORD`, else one line of standard input
/// (never an argument: it would sit in the shell history and `ps`).
fn password(name: &str) -> anyhow::Result<String> {
    let password = match std::env::var("SEXTANT_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprint!("password for {name}: ");
                std::io::stderr().flush()?;
            }
            let mut line = String::new();
            stdin.lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        bail!("no password given: set SEXTANT_PASSWORD or write it to standard input");
    }
    validate_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(password)
}

pub fn run(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create(args) => {
            validate_username(&args.name).map_err(|e| anyhow::anyhow!("{e}"))?;
            let store = open(&args.store)?;
            let hash = hash_password(&password(&args.name)?);
            let user = store.auth().create_user(&args.name, &hash, args.admin)?;
            eprintln!(
                "created {}user {} (id {})",
                if user.is_admin { "admin " } else { "" },
                user.username,
                user.id
            );
        }
        UsersCommand::List(args) => {
            let store = open(&args)?;
            for u in store.auth().list_users()? {
                println!(
                    "{}\t{}",
                    u.username,
                    if u.is_admin { "admin" } else { "user" }
                );
            }
        }
        UsersCommand::SetPassword(args) => {
            let store = open(&args.store)?;
            let hash = hash_password(&password(&args.name)?);
            store.auth().set_password_hash(&args.name, &hash)?;
            eprintln!("password of {} changed", args.name);
        }
    }
    Ok(())
}
