//! The commands' side of talking to a server: the `--server`/`--json`
//! arguments, a blocking handle on `sextant-client`, and how answers are
//! printed (data on stdout, aligned tables, JSON).

use std::io::Write;

use anyhow::{Context, anyhow};
use clap::Args;
use serde_json::Value;
pub use sextant_client::ClientError;

/// How to reach the server, and how to print what it answers.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// URL of the Sextant server; `host:port` means `http://host:port`.
    #[arg(
        long,
        env = "SEXTANT_SERVER",
        default_value = "http://127.0.0.1:5000",
        global = true
    )]
    pub server: String,
    /// Print one JSON document on stdout instead of tables, for scripts (`events tail` prints one event per line).
    #[arg(long, global = true)]
    pub json: bool,
    /// A PEM file of CA certificates to trust besides the system's, for a server whose certificate a private CA signed.
    #[arg(
        long,
        env = "MLFLOW_TRACKING_SERVER_CERT_PATH",
        global = true,
        value_name = "FILE"
    )]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// A connection to one server through `sextant-client`; calls block on a
/// current-thread runtime.
pub struct Client {
    api: sextant_client::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client of the server `args` name (`http://host:port`, maybe with a
    /// path prefix), trusting `--ca-cert` besides the system's roots.
    pub fn new(args: &ClientArgs) -> anyhow::Result<Client> {
        let settings = sextant_client::Settings {
            user_agent: Some(concat!("sextant-cli/", env!("CARGO_PKG_VERSION")).into()),
            ca_cert: args.ca_cert.clone(),
            ..Default::default()
        };
        let api = sextant_client::Client::with_settings(&args.server, settings).map_err(explain)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the client runtime")?;
        Ok(Client { api, runtime })
    }

    /// Waits for one call of the client, its error told for the terminal.
    pub fn block<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> anyhow::Result<T> {
        self.runtime.block_on(call).map_err(explain)
    }
}

impl std::ops::Deref for Client {
    type Target = sextant_client::Client;

    fn deref(&self) -> &sextant_client::Client {
        &self.api
    }
}

/// A client error with the hint a person at the terminal needs, if any.
/// The server's own refusals stay [`ClientError`]s, so callers can look at
/// their status.
fn explain(e: ClientError) -> anyhow::Error {
    match &e {
        ClientError::Unreachable { .. } => anyhow!(
            "{e}\n\
             hint: start one with `sextant server`, or point --server (or SEXTANT_SERVER) at a running one"
        ),
        ClientError::Unexpected { base, .. } => {
            anyhow!("{e}\nhint: is {base} a Sextant server?")
        }
        _ => e.into(),
    }
}

/// The URL of a server as given to `--server` (`host:port` means
/// `http://host:port`), for the commands that hand it on (`worker`, `gateway`).
pub fn server_url(server: &str) -> anyhow::Result<sextant_client::Url> {
    Ok(sextant_client::server_url(server)?)
}

/// Writes one line to stdout. A closed pipe (`… | head`) ends the command
/// quietly instead of panicking like `println!`.
pub fn out(line: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other.context("writing to stdout"),
    }
}

/// Prints a JSON value on stdout, pretty.
pub fn out_json(v: &Value) -> anyhow::Result<()> {
    out(&serde_json::to_string_pretty(v).context("encoding JSON")?)
}

/// Prints rows under headers in aligned columns (the last one unpadded).
pub fn out_table(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    out(&line(&mut headers.iter().copied()))?;
    for row in rows {
        out(&line(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

/// A JSON string field, or `-` when it is null or absent.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Null | Value::String(_) => "-".into(),
        other => other.to_string(),
    }
}
