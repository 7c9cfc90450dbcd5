//! A small blocking client of a running server's native API, shared by the
//! commands that talk to one (`models`, `events`).

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

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
}

/// An error the server answered, as its body and status say.
#[derive(Debug)]
pub struct ServerError {
    pub message: String,
    pub code: String,
    pub status: u16,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, HTTP {})", self.message, self.code, self.status)
    }
}

impl std::error::Error for ServerError {}

/// Answers within this time, except long-polls which get their wait on top.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A request body.
enum Body {
    Json(Value),
    Yaml(String),
}

/// A connection to one server. Calls block on a current-thread runtime.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client of the server at `server` (`http://host:port`, maybe with a path prefix).
    pub fn new(server: &str) -> anyhow::Result<Client> {
        let base = server_url(server)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("sextant-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the client runtime")?;
        Ok(Client {
            http,
            base,
            runtime,
        })
    }

    /// The URL of `segments` under the server's base, each segment escaped.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the base URL has a path")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// `GET` a JSON document; `wait` extends the timeout for long-polls.
    pub fn get(&self, url: Url, wait: Duration) -> anyhow::Result<Value> {
        self.call(Method::GET, url, None, wait)
    }

    /// Sends `body` with `method` and returns the JSON answer (`null` for 204).
    pub fn send(&self, method: Method, url: Url, body: Value) -> anyhow::Result<Value> {
        self.call(method, url, Some(Body::Json(body)), Duration::ZERO)
    }

    /// [`Client::send`] for a request the server may take `wait` longer than usual to
    /// answer (a child process starting).
    pub fn send_waiting(
        &self,
        method: Method,
        url: Url,
        body: Value,
        wait: Duration,
    ) -> anyhow::Result<Value> {
        self.call(method, url, Some(Body::Json(body)), wait)
    }

    /// `PUT`s `text` as YAML and returns the JSON answer.
    pub fn put_yaml(&self, url: Url, text: String) -> anyhow::Result<Value> {
        self.call(Method::PUT, url, Some(Body::Yaml(text)), Duration::ZERO)
    }

    fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Body>,
        wait: Duration,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .timeout(TIMEOUT + wait);
        match body {
            Some(Body::Json(v)) => req = req.json(&v),
            Some(Body::Yaml(text)) => {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                    .body(text);
            }
            None => {}
        }
        self.runtime.block_on(async {
            let resp = req.send().await.map_err(|e| self.unreachable(e))?;
            let status = resp.status();
            let bytes = resp
                .bytes()
                .await
                .with_context(|| format!("reading the answer to {method} {url}"))?;
            if status == StatusCode::NO_CONTENT {
                return Ok(Value::Null);
            }
            let json = serde_json::from_slice::<Value>(&bytes);
            match json {
                Ok(v) if status.is_success() => Ok(v),
                Ok(v) if v["message"].is_string() => Err(ServerError {
                    message: v["message"].as_str().unwrap_or_default().to_string(),
                    code: v["error_code"].as_str().unwrap_or("UNKNOWN").to_string(),
                    status: status.as_u16(),
                }
                .into()),
                Ok(_) | Err(_) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let text = text.trim();
                    let text = text.get(..200).unwrap_or(text);
                    Err(anyhow!(
                        "unexpected answer to {method} {url}: HTTP {} {text}\n\
                         hint: is {} a Sextant server?",
                        status.as_u16(),
                        self.base
                    ))
                }
            }
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        // reqwest's own message is generic; the innermost cause says what
        // happened ("Connection refused", a DNS failure, a TLS error).
        let mut root: &dyn std::error::Error = &e;
        while let Some(next) = root.source() {
            root = next;
        }
        let cause = format!(": {root}");
        if e.is_timeout() {
            anyhow!(
                "the Sextant server at {} did not answer in time{cause}",
                self.base
            )
        } else {
            anyhow!(
                "cannot reach the Sextant server at {}{cause}\n\
                 hint: start one with `sextant server`, or point --server (or SEXTANT_SERVER) at a running one",
                self.base
            )
        }
    }
}

/// The URL of a server as given to `--server`: `host:port` without a scheme
/// means `http://host:port`.
pub fn server_url(server: &str) -> anyhow::Result<Url> {
    let full = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    let base = Url::parse(&full).with_context(|| format!("invalid --server URL '{server}'"))?;
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        bail!("invalid --server URL '{server}': it must be http:// or https://");
    }
    Ok(base)
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
