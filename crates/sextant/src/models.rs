//! `sextant models …`: the registry's models, versions, approvals and aliases.

use clap::{Args, Subcommand};
use serde_json::Value;
use sextant_client::{Approval, ApprovalSettingsUpdate, Decision as Request};

use crate::client::{Client, ClientArgs, ClientError, out, out_json, out_table, text};

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
    /// Show a model's approval settings, or change the ones given (MANAGE on the model).
    ApprovalSettings {
        /// Registered model name.
        name: String,
        /// Four-eyes: nobody approves a version they created.
        #[arg(long, value_name = "true|false")]
        require_distinct_approver: Option<bool>,
        /// A pipeline's `register_model: {approval: …}` may decide.
        #[arg(long, value_name = "true|false")]
        allow_pipeline_approval: Option<bool>,
    },
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
    let client = Client::new(&args)?;
    match command {
        ModelsCommand::List { filter } => list(&client, args.json, filter),
        ModelsCommand::Show { name } => {
            let model = client.block(client.get_model(&name))?;
            if args.json {
                out_json(&model)
            } else {
                show(&model)
            }
        }
        ModelsCommand::Approve(d) => decide(&client, args.json, d, Approval::Approved),
        ModelsCommand::Reject(d) => decide(&client, args.json, d, Approval::Rejected),
        ModelsCommand::ApprovalSettings {
            name,
            require_distinct_approver,
            allow_pipeline_approval,
        } => {
            let update = ApprovalSettingsUpdate {
                require_distinct_approver,
                allow_pipeline_approval,
            };
            approval_settings(&client, args.json, &name, update)
        }
        ModelsCommand::Alias {
            name,
            alias,
            version,
        } => {
            let answer = client.block(client.set_alias(&name, &alias, version))?;
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
        let page = client.block(client.list_models(filter.as_deref(), 1000, token.as_deref()))?;
        models.extend(page.models);
        token = page.next_page_token;
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

fn decide(client: &Client, json: bool, d: Decision, status: Approval) -> anyhow::Result<()> {
    let actor = d
        .actor
        .or_else(|| std::env::var("USER").ok())
        .filter(|a| !a.trim().is_empty());
    let request = Request {
        status,
        force: d.force,
        comment: d.comment,
        actor,
    };
    let answer = client
        .block(client.decide(&d.name, d.version, &request))
        .map_err(|e| match e.downcast_ref::<ClientError>() {
            // The server's 409 names the decision in place; say how to replace it.
            Some(ClientError::Server { status: 409, .. }) => anyhow::anyhow!(
                "{e}\nhint: pass --force to replace it (the earlier decision stays in `sextant events tail`)"
            ),
            _ => e,
        })?;
    if json {
        out_json(&answer)?;
    }
    eprintln!(
        "{} version {}: {} by {}",
        d.name,
        d.version,
        status.as_str(),
        text(&answer["approval"]["actor"])
    );
    Ok(())
}

/// Prints a model's approval settings, after changing those `update`
/// names (without any, only reads them).
fn approval_settings(
    client: &Client,
    json: bool,
    name: &str,
    update: ApprovalSettingsUpdate,
) -> anyhow::Result<()> {
    let changing = update != ApprovalSettingsUpdate::default();
    let settings = if changing {
        client.block(client.set_approval_settings(name, &update))?
    } else {
        client.block(client.approval_settings(name))?
    };
    if json {
        return out_json(&serde_json::to_value(settings)?);
    }
    out(&format!(
        "require_distinct_approver: {}",
        settings.require_distinct_approver
    ))?;
    out(&format!(
        "allow_pipeline_approval:   {}",
        settings.allow_pipeline_approval
    ))?;
    if changing {
        eprintln!("{name}: approval settings changed");
    }
    Ok(())
}
