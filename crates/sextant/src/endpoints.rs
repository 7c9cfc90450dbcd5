//! `sextant endpoints …`: serving endpoints on a server — apply a YAML
//! definition, create one from a model, roll a new model out, promote or
//! roll back, show, list, delete.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use sextant_server::endpoints::config::{EndpointSpec, parse_duration};

use crate::client::{Client, ClientArgs, out, out_json, out_table, text};

#[derive(Subcommand)]
pub enum EndpointsCommand {
    /// Create or update an endpoint from a YAML (or JSON) definition; a changed model is rolled out by its policy.
    Apply {
        /// The definition; its `name:` names the endpoint unless --name does.
        file: std::path::PathBuf,
        /// The endpoint's name, instead of the file's `name:`.
        #[arg(long)]
        name: Option<String>,
    },
    /// Create an endpoint serving one model.
    Create {
        /// The endpoint's name.
        name: String,
        /// `models:/name/3`, `models:/name@alias` or a local MLflow model directory.
        #[arg(long)]
        model: String,
        /// `onnx` (in process) or `process` (a child `mlflow models serve`).
        #[arg(long, default_value = "onnx")]
        runtime: String,
    },
    /// Roll a new model out to a variant (the first unless --variant).
    Update {
        /// The endpoint's name.
        name: String,
        /// The new model: `models:/name/3`, `models:/name@alias` or a local MLflow model directory.
        #[arg(long)]
        model: String,
        /// The variant to roll it out to [default: the first].
        #[arg(long)]
        variant: Option<String>,
        /// all_at_once, canary, linear or blue_green [default: the endpoint's].
        #[arg(long)]
        strategy: Option<String>,
        /// Canary share, or linear step, in percent.
        #[arg(long)]
        percent: Option<f64>,
        /// Canary or blue/green bake time, e.g. 5m.
        #[arg(long)]
        bake: Option<String>,
        /// Linear step interval, e.g. 1m.
        #[arg(long)]
        interval: Option<String>,
    },
    /// Show an endpoint: deployed models, rollout, traffic history, counters.
    Show {
        /// The endpoint's name.
        name: String,
    },
    /// List endpoints.
    List,
    /// Delete an endpoint.
    Delete {
        /// The endpoint's name.
        name: String,
    },
    /// Give the rollout's new model all of its traffic now.
    Promote {
        /// The endpoint's name.
        name: String,
    },
    /// Return the rollout's traffic to the stable model now.
    Rollback {
        /// The endpoint's name.
        name: String,
    },
    /// Upload labels for captured predictions: a JSON lines file of {"inference_id": …, "label": …}.
    GroundTruth {
        /// The endpoint's name.
        name: String,
        /// The JSON lines file of labels.
        file: std::path::PathBuf,
    },
}

pub fn run(args: ClientArgs, command: EndpointsCommand) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let url = |segments: &[&str]| {
        let mut all = vec!["api", "v1", "endpoints"];
        all.extend_from_slice(segments);
        client.url(&all, &[])
    };
    let shown = match command {
        EndpointsCommand::Apply { file, name } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let spec = EndpointSpec::parse(&file.display().to_string(), &text)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let name = name
                .or(spec.name.clone())
                .ok_or_else(|| anyhow::anyhow!("{} has no `name:`; pass --name", file.display()))?;
            client.put_yaml(url(&[&name]), text)?
        }
        EndpointsCommand::Create {
            name,
            model,
            runtime,
        } => {
            let exists = client.get(url(&[&name]), std::time::Duration::ZERO).is_ok();
            if exists {
                anyhow::bail!("endpoint '{name}' exists; use `sextant endpoints update`");
            }
            let spec = json!({"variants": [{"model": model, "runtime": runtime}]});
            client.send(Method::PUT, url(&[&name]), spec)?
        }
        EndpointsCommand::Update {
            name,
            model,
            variant,
            strategy,
            percent,
            bake,
            interval,
        } => {
            let current = client.get(url(&[&name]), std::time::Duration::ZERO)?;
            let mut spec = current["spec"].clone();
            let variants = spec["variants"]
                .as_array_mut()
                .ok_or_else(|| anyhow::anyhow!("the server sent no variants for '{name}'"))?;
            let target = match &variant {
                Some(v) => variants
                    .iter_mut()
                    .find(|x| x["name"] == v.as_str())
                    .ok_or_else(|| anyhow::anyhow!("endpoint '{name}' has no variant '{v}'"))?,
                None => &mut variants[0],
            };
            target["model"] = json!(model);
            let rollout = &mut spec["rollout"];
            if let Some(s) = strategy {
                rollout["strategy"] = json!(s);
            }
            if let Some(p) = percent {
                rollout["percent"] = json!(p);
            }
            for (key, value) in [("bake", bake), ("interval", interval)] {
                if let Some(d) = value {
                    parse_duration(&d)
                        .ok_or_else(|| anyhow::anyhow!("--{key} {d}: use e.g. 30s, 5m or 1h"))?;
                    rollout[key] = json!(d);
                }
            }
            client.send(Method::PUT, url(&[&name]), spec)?
        }
        EndpointsCommand::Show { name } => client.get(url(&[&name]), std::time::Duration::ZERO)?,
        EndpointsCommand::List => {
            let all = client.get(url(&[]), std::time::Duration::ZERO)?;
            if args.json {
                return out_json(&all);
            }
            let rows: Vec<Vec<String>> = all["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    vec![
                        text(&e["name"]),
                        text(&e["status"]),
                        models(e),
                        rollout_note(e),
                    ]
                })
                .collect();
            return out_table(&["ENDPOINT", "STATUS", "MODELS", "ROLLOUT"], &rows);
        }
        EndpointsCommand::Delete { name } => {
            client.send(Method::DELETE, url(&[&name]), Value::Null)?;
            return out(&format!("endpoint '{name}' deleted"));
        }
        EndpointsCommand::Promote { name } => {
            client.send(Method::POST, url(&[&name, "promote"]), Value::Null)?
        }
        EndpointsCommand::Rollback { name } => {
            client.send(Method::POST, url(&[&name, "rollback"]), Value::Null)?
        }
        EndpointsCommand::GroundTruth { name, file } => {
            let stored = ground_truth(&client, url(&[&name, "ground-truth"]), &file)?;
            return out(&format!("{stored} labels stored for endpoint '{name}'"));
        }
    };
    if args.json {
        return out_json(&shown);
    }
    show(&shown)
}

/// `variant=model` of each stable variant.
fn models(e: &Value) -> String {
    e["deployed"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(v, d)| format!("{v}={}", text(&d["resolved"])))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn rollout_note(e: &Value) -> String {
    let r = &e["rollout"];
    if r.is_null() {
        return "-".into();
    }
    format!(
        "{} {} at {}%",
        text(&r["policy"]["strategy"]),
        text(&r["to"]["resolved"]),
        r["traffic_percent"]
    )
}

fn show(e: &Value) -> anyhow::Result<()> {
    out(&format!(
        "endpoint {}: {} ({})",
        text(&e["name"]),
        text(&e["status"]),
        text(&e["url"])
    ))?;
    out(&format!("models: {}", models(e)))?;
    out(&format!("rollout: {}", rollout_note(e)))?;
    if let Some(last) = e["past_rollouts"].as_array().and_then(|p| p.last()) {
        out(&format!(
            "last rollout: {} {} -> {}{}",
            text(&last["status"]),
            text(&last["from"]["resolved"]),
            text(&last["to"]["resolved"]),
            last["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ))?;
    }
    let rows: Vec<Vec<String>> = e["stats"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                text(&s["variant"]),
                text(&s["requests"]),
                text(&s["errors"]),
                text(&s["client_errors"]),
                text(&s["p99_ms"]),
            ]
        })
        .collect();
    out_table(&["VARIANT", "REQUESTS", "ERRORS", "4XX", "P99 MS"], &rows)
}

/// Labels sent per request.
const GROUND_TRUTH_BATCH: usize = 10_000;

/// Uploads the labels of a JSON lines file in batches; returns how many.
fn ground_truth(
    client: &Client,
    url: reqwest::Url,
    file: &std::path::Path,
) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let mut batch = Vec::new();
    let mut stored = 0;
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    for (i, line) in lines {
        let record: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{} line {}: {e}", file.display(), i + 1))?;
        if record.get("inference_id").is_none() || record.get("label").is_none() {
            anyhow::bail!(
                "{} line {}: expected {{\"inference_id\": …, \"label\": …}}",
                file.display(),
                i + 1
            );
        }
        batch.push(record);
        if batch.len() == GROUND_TRUTH_BATCH {
            let records = std::mem::take(&mut batch);
            stored += records.len();
            client.send(Method::POST, url.clone(), json!({ "records": records }))?;
        }
    }
    if !batch.is_empty() {
        stored += batch.len();
        client.send(Method::POST, url, json!({ "records": batch }))?;
    }
    if stored == 0 {
        anyhow::bail!("{} holds no labels", file.display());
    }
    Ok(stored)
}
