//! `sextant events tail`: prints the lifecycle events feed, and follows it.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;
use sextant_client::EventsQuery;

use crate::client::{Client, ClientArgs, out, text};

/// How long each request of `--follow` waits for new events on the server.
const FOLLOW_WAIT_SECS: u64 = 30;

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Print events, oldest first; with --follow, keep printing new ones. With --json, one JSON event per line (a stream, not one document).
    Tail(TailArgs),
}

#[derive(Args)]
pub struct TailArgs {
    /// Comma-separated kinds; `model_version.*` matches a prefix [default: all].
    #[arg(long)]
    kinds: Option<String>,
    /// Start after this event id; `latest` prints only events yet to come.
    #[arg(long, default_value = "0")]
    after: String,
    /// Wait for new events instead of stopping at the newest.
    #[arg(long, short)]
    follow: bool,
}

/// Runs an `events` subcommand against the server.
pub fn run(args: ClientArgs, command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::Tail(tail) = command;
    let client = Client::new(&args)?;
    let wait = if tail.follow { FOLLOW_WAIT_SECS } else { 0 };
    let mut after = tail.after;
    loop {
        let page = client.block(client.events(&EventsQuery {
            after: Some(after.clone()),
            limit: 1000,
            wait: Duration::from_secs(wait),
            kinds: tail.kinds.clone(),
        }))?;
        for event in &page.events {
            if args.json {
                out(&event.to_string())?;
            } else {
                out(&line(event))?;
            }
        }
        after = page.cursor.to_string();
        if !tail.follow && !page.has_more {
            return Ok(());
        }
    }
}

/// `id  time  kind  subject  actor  payload` on one line.
fn line(e: &Value) -> String {
    format!(
        "{}  {}  {}  {}  {}  {}",
        text(&e["id"]),
        text(&e["time_rfc3339"]),
        text(&e["kind"]),
        text(&e["subject"]),
        text(&e["actor"]),
        e["payload"]
    )
}
