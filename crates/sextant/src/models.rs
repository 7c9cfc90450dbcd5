//! `sextant models …`: the registry's models, versions, approvals and aliases.

use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs, ServerError, out, out_json, out_table, text};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// List registered models.
    List {
        /// An MLflow search filter, such as "name LIKE 'fraud%'".
        #[arg(long)]
        filter: Option<String>,
    },
    /// Show a model and all its versions with their approvals.
    Show {
        /// Registered model name.
        name: String,
    },
    /// Approve a model version.
    Approve(Decision),
    /// Reject a model version.
    Reject(Decision),
    /// Point an alias (such as `champion`) at a version.
    Alias {
        /// Registered model name.
        name: String,
        /// Alias to set.
        alias: String,
        /// Version the alias names.
        version: u64,
    },
}

/// An approval decision on one version.
#[derive(Args)]
pub struct Decision {
    /// Registered model name.
    name: String,
    /// Version number.
    version: u64,
    /// Why, recorded with the decision.
    #[arg(long)]
    comment: Option<String>,
    /// Who decides [default: $USER]. Recorded, not yet checked: authentication comes later.
    #[arg(long, env = "SEXTANT_ACTOR")]
    actor: Option<String>,
    /// Replace a decision already made; the earlier one stays in the events feed.
    #[arg(long)]
    force: bool,
}

/// Runs a `models` subcommand against the server.
pub fn run(args: ClientArgs, command: ModelsCommand) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    match command {
        ModelsCommand::List { filter } => list(&client, args.json, filter),
        ModelsCommand::Show { name } => {
            let model = client.get(
                client.url(&["api", "v1", "models", &name], &[]),
                Duration::ZERO,
            )?;
            if args.json {
                out_json(&model)
            } else {
                show(&model)
            }
        }
        ModelsCommand::Approve(d) => decide(&client, args.json, d, "approved"),
        ModelsCommand::Reject(d) => decide(&client, args.json, d, "rejected"),
        ModelsCommand::Alias {
            name,
            alias,
            version,
        } => {
            let url = client.url(&["api", "v1", "models", &name, "aliases", &alias], &[]);
            let answer = client.send(Method::PUT, url, json!({ "version": version }))?;
            if args.json {
                out_json(&answer)?;
            }
            eprintln!("{name}@{alias} now names version {version}");
            Ok(())
        }
    }
}

fn list(client: &Client, json: bool, filter: Option<String>) -> anyhow::Result<()> {
    let mut models = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![("max_results", "1000".to_string())];
        query.extend(filter.clone().map(|f| ("filter", f)));
        query.extend(token.map(|t| ("page_token", t)));
        let page = client.get(client.url(&["api", "v1", "models"], &query), Duration::ZERO)?;
        models.extend(page["models"].as_array().cloned().unwrap_or_default());
        token = page["next_page_token"].as_str().map(String::from);
        if token.is_none() {
            break;
        }
    }
    if json {
        return out_json(&Value::Array(models));
    }
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            let latest = m["latest_versions"]
                .as_array()
                .and_then(|v| v.iter().filter_map(|v| v["version"].as_i64()).max())
                .map_or("-".into(), |v| v.to_string());
            vec![
                text(&m["name"]),
                latest,
                aliases(&m["aliases"]),
                text(&m["last_updated_time_rfc3339"]),
                text(&m["description"]),
            ]
        })
        .collect();
    out_table(
        &["NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"],
        &rows,
    )
}

/// `champion=3, challenger=4`, or `-`.
fn aliases(map: &Value) -> String {
    let pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(a, v)| format!("{a}={v}"))
        .collect();
    if pairs.is_empty() {
        "-".into()
    } else {
        pairs.join(", ")
    }
}

fn show(model: &Value) -> anyhow::Result<()> {
    out(&format!("name:        {}", text(&model["name"])))?;
    out(&format!("description: {}", text(&model["description"])))?;
    out(&format!("aliases:     {}", aliases(&model["aliases"])))?;
    out(&format!(
        "updated:     {}",
        text(&model["last_updated_time_rfc3339"])
    ))?;
    out("")?;
    let rows: Vec<Vec<String>> = model["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let names: Vec<&str> = v["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            vec![
                text(&v["version"]),
                text(&v["approval"]["status"]),
                text(&v["approval"]["actor"]),
                text(&v["approval"]["time_rfc3339"]),
                text(&v["stage"]),
                if names.is_empty() {
                    "-".into()
                } else {
                    names.join(",")
                },
                text(&v["run_id"]),
                text(&v["approval"]["comment"]),
            ]
        })
        .collect();
    out_table(
        &[
            "VERSION", "APPROVAL", "BY", "DECIDED", "STAGE", "ALIASES", "RUN", "COMMENT",
        ],
        &rows,
    )
}

fn decide(client: &Client, json: bool, d: Decision, status: &str) -> anyhow::Result<()> {
    let actor = d
        .actor
        .or_else(|| std::env::var("USER").ok())
        .filter(|a| !a.trim().is_empty());
    let mut body = json!({ "status": status, "force": d.force });
    if let Some(comment) = d.comment {
        body["comment"] = json!(comment);
    }
    if let Some(actor) = actor {
        body["actor"] = json!(actor);
    }
    let version = d.version.to_string();
    let url = client.url(
        &[
            "api", "v1", "models", &d.name, "versions", &version, "approval",
        ],
        &[],
    );
    let answer = client
        .send(Method::POST, url, body)
        .map_err(|e| match e.downcast_ref::<ServerError>() {
            // The server's 409 names the decision in place; say how to replace it.
            Some(ServerError { status: 409, .. }) => anyhow::anyhow!(
                "{e}\nhint: pass --force to replace it (the earlier decision stays in `sextant events tail`)"
            ),
            _ => e,
        })?;
    if json {
        out_json(&answer)?;
    }
    eprintln!(
        "{} version {version}: {status} by {}",
        d.name,
        text(&answer["approval"]["actor"])
    );
    Ok(())
}
