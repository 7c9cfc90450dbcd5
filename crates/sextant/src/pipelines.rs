//! `sextant pipelines validate|apply|run|list|show|logs|cancel|retry|explain-cache`:
//! check a pipeline file locally (each problem as `file:line:col: message`),
//! store it on a server, start, list, follow, cancel and resume runs, and
//! explain the step cache.

mod logs;
mod progress;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use sextant_client::{OffsetPage, RunRequest};

use crate::client::{Client, ClientArgs, out, out_json, out_table, text};

/// How often `run --wait` asks the server about the run.
const POLL: Duration = Duration::from_millis(250);

#[derive(Subcommand)]
pub enum PipelinesCommand {
    /// Check a pipeline file: unknown keys, types, references, cycles.
    Validate(ValidateArgs),
    /// Store a pipeline file on the server under the name it declares.
    Apply(ApplyArgs),
    /// Start a run of a pipeline file (applied first) or a stored pipeline.
    Run(RunArgs),
    /// List pipeline runs, newest first (or, with --pipelines, the stored pipelines).
    List(ListArgs),
    /// Show a pipeline run and each of its steps.
    Show(ShowArgs),
    /// Print the captured stdout and stderr of a run's steps.
    Logs(logs::LogsArgs),
    /// Cancel a run: queued steps never start, running ones are killed.
    Cancel(ShowArgs),
    /// Resume a failed or cancelled run in place: failed steps run again.
    Retry(RetryArgs),
    /// Explain why a step of a run was or was not reused from the cache.
    ExplainCache(ExplainCacheArgs),
}

#[derive(Args)]
pub struct ExplainCacheArgs {
    /// The pipeline run id.
    run: String,
    /// The step.
    step: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only runs of this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    /// Only runs in this status: pending, running, succeeded, failed or cancelled.
    #[arg(long)]
    status: Option<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 50)]
    limit: u64,
    /// List the stored pipelines instead of runs.
    #[arg(long, conflicts_with_all = ["pipeline", "status"])]
    pipelines: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct RetryArgs {
    /// The pipeline run id.
    run: String,
    /// Wait for the run to end, showing step progress on stderr; fail unless it succeeds.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// The pipeline YAML file.
    file: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct RunArgs {
    /// A pipeline YAML file, or the name of a stored pipeline.
    target: String,
    /// A parameter value, `name=value`; repeatable.
    #[arg(long = "param", value_name = "K=V")]
    params: Vec<String>,
    /// Wait for the run to end, showing step progress on stderr; fail unless it succeeds.
    #[arg(long)]
    wait: bool,
    /// Run every step, reusing no cached result (the results still enter the cache).
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The pipeline run id.
    run: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The pipeline YAML file.
    file: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs a `pipelines` subcommand.
pub fn run(command: PipelinesCommand) -> anyhow::Result<()> {
    match command {
        PipelinesCommand::Validate(args) => validate(args),
        PipelinesCommand::Apply(args) => {
            let client = Client::new(&args.client)?;
            let (name, result) = apply(&client, &args.file)?;
            if args.client.json {
                out(&json!({"name": name, "result": result}).to_string())
            } else {
                out(&format!("{name}: {result}"))
            }
        }
        PipelinesCommand::Run(args) => start(args),
        PipelinesCommand::ExplainCache(args) => {
            let client = Client::new(&args.client)?;
            let e = client.block(client.explain_cache(&args.run, &args.step))?;
            if args.client.json {
                out_json(&e)
            } else {
                explain(&e)
            }
        }
        PipelinesCommand::List(args) if args.pipelines => list_pipelines(args),
        PipelinesCommand::List(args) => list_runs(args),
        PipelinesCommand::Logs(args) => logs::run(args),
        PipelinesCommand::Cancel(args) => {
            let client = Client::new(&args.client)?;
            let run = client.block(client.cancel_run(&args.run))?;
            if args.client.json {
                out_json(&run)
            } else {
                out(&format!("{}: {}", text(&run["id"]), text(&run["status"])))
            }
        }
        PipelinesCommand::Retry(args) => retry(args),
        PipelinesCommand::Show(args) => {
            let client = Client::new(&args.client)?;
            let run = client.block(client.get_pipeline_run(&args.run))?;
            if args.client.json {
                out_json(&run)
            } else {
                show(&run)
            }
        }
    }
}

/// Validates `file` locally, then stores it; returns its name and what storing did.
fn apply(client: &Client, file: &Path) -> anyhow::Result<(String, String)> {
    let label = file.display().to_string();
    let yaml = std::fs::read_to_string(file).with_context(|| format!("reading {label}"))?;
    let name = match sextant_pipelines::load(&label, &yaml) {
        Ok(v) => v.pipeline.name.value,
        Err(sextant_pipelines::Error::Invalid { file, diagnostics }) => {
            for d in &diagnostics {
                eprintln!("{file}:{d}");
            }
            bail!("{file}: {} error(s)", diagnostics.len())
        }
    };
    let answer = client.block(client.put_pipeline(&name, yaml))?;
    Ok((name, text(&answer["result"])))
}

/// `pipelines run`.
fn start(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let path = Path::new(&args.target);
    let name = if path.is_file() {
        let (name, result) = apply(&client, path)?;
        eprintln!("applied pipeline '{name}' ({result})");
        name
    } else {
        args.target.clone()
    };
    let mut params = Map::new();
    for p in &args.params {
        let Some((k, v)) = p.split_once('=') else {
            bail!("invalid --param '{p}': expected name=value");
        };
        params.insert(k.to_string(), Value::String(v.to_string()));
    }
    let request = RunRequest {
        params,
        no_cache: args.no_cache,
    };
    let run = client.block(client.start_run(&name, &request))?;
    let id = run["id"]
        .as_str()
        .context("the server's answer has no run id")?
        .to_string();
    if !args.wait {
        return if args.client.json {
            out_json(&run)
        } else {
            out(&id)
        };
    }
    eprintln!("started run {id} of pipeline '{name}'");
    wait_for(&client, &id, args.client.json)
}

/// `pipelines retry`.
fn retry(args: RetryArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let run = client.block(client.retry_run(&args.run))?;
    if !args.wait {
        return if args.client.json {
            out_json(&run)
        } else {
            out(&format!("{}: {}", text(&run["id"]), text(&run["status"])))
        };
    }
    eprintln!(
        "resumed run {} of pipeline '{}'",
        args.run,
        text(&run["pipeline"])
    );
    wait_for(&client, &args.run, args.client.json)
}

/// Follows run `id` until it ends, printing each step's changes on stderr,
/// then prints the run (its id, or JSON); fails unless it succeeded.
fn wait_for(client: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut progress = progress::Progress::new();
    let run = loop {
        let run = client.block(client.get_pipeline_run(id))?;
        progress.update(client, id, &run);
        for step in run["steps"].as_array().into_iter().flatten() {
            let (step_name, status) = (text(&step["name"]), text(&step["status"]));
            if seen.get(&step_name) != Some(&status) && status != "waiting" {
                let attempt = step["attempts"].as_i64().unwrap_or(0);
                match step["error"].as_str() {
                    Some(e) if status == "failed" || status == "queued" && attempt > 0 => {
                        eprintln!("  {step_name}: {status} (attempt {attempt}: {e})")
                    }
                    _ => match cache_note(step) {
                        Some(note) if status == "succeeded" => {
                            eprintln!("  {step_name}: {status} ({note})")
                        }
                        _ => eprintln!("  {step_name}: {status}"),
                    },
                }
                seen.insert(step_name, status);
            }
        }
        match run["status"].as_str() {
            Some("SUCCEEDED" | "FAILED" | "CANCELLED") => break run,
            _ => std::thread::sleep(POLL),
        }
    };
    let status = text(&run["status"]);
    if json {
        out_json(&run)?;
    } else {
        out(id)?;
    }
    if status != "SUCCEEDED" {
        bail!("pipeline run {id} {}", status.to_lowercase());
    }
    eprintln!("pipeline run {id} succeeded");
    Ok(())
}

/// "cache hit from run R" / "cache miss: why" for a step with a cache decision.
fn cache_note(step: &Value) -> Option<String> {
    let c = step.get("cache").filter(|c| c.is_object())?;
    Some(if c["hit"].as_bool() == Some(true) {
        format!(
            "cache hit: reused run {}",
            text(&c["source"]["pipeline_run"])
        )
    } else {
        format!("cache miss: {}", text(&c["reason"]))
    })
}

/// Prints a cache explanation: the summary, the key, and each change.
fn explain(e: &Value) -> anyhow::Result<()> {
    out(&format!("{}: {}", text(&e["step"]), text(&e["summary"])))?;
    if let Some(key) = e["decision"]["key"].as_str() {
        out(&format!("key: {key}"))?;
    }
    if let Some(p) = e["previous"].as_object() {
        out(&format!(
            "previous execution: run {} (key {})",
            text(&p["pipeline_run"]),
            text(&p["key"])
        ))?;
        let changes = e["changes"].as_array().cloned().unwrap_or_default();
        if changes.is_empty() {
            out("changes: none")?;
        }
        for c in changes {
            out(&format!("  {}", text(&c)))?;
        }
    }
    Ok(())
}

/// `pipelines list`: runs, newest first.
fn list_runs(args: ListArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let mut filter = Vec::new();
    filter.extend(args.pipeline.map(|p| ("pipeline", p)));
    filter.extend(args.status.map(|s| ("status", s)));
    let runs = paged(args.limit, |max, offset| {
        client.block(client.list_pipeline_runs(&filter, max, offset))
    })?;
    if args.client.json {
        return out_json(&Value::Array(runs));
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let ended = matches!(
                r["status"].as_str(),
                Some("SUCCEEDED" | "FAILED" | "CANCELLED")
            );
            vec![
                text(&r["id"]),
                text(&r["pipeline"]),
                text(&r["status"]),
                text(&r["trigger"]),
                text(&r["created_time_rfc3339"]),
                if ended {
                    text(&r["updated_time_rfc3339"])
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    out_table(
        &["RUN", "PIPELINE", "STATUS", "TRIGGER", "STARTED", "ENDED"],
        &rows,
    )
}

/// `pipelines list --pipelines`: the stored pipelines by name.
fn list_pipelines(args: ListArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let pipelines = paged(args.limit, |max, offset| {
        client.block(client.list_pipelines(max, offset))
    })?;
    if args.client.json {
        return out_json(&Value::Array(pipelines));
    }
    let rows: Vec<Vec<String>> = pipelines
        .iter()
        .map(|p| {
            let count = |key: &str| {
                p[key]
                    .as_array()
                    .map_or("-".into(), |a| a.len().to_string())
            };
            vec![
                text(&p["name"]),
                count("steps"),
                p["schedule"].as_str().unwrap_or("-").to_string(),
                count("triggers"),
                text(&p["updated_time_rfc3339"]),
            ]
        })
        .collect();
    out_table(&["NAME", "STEPS", "SCHEDULE", "TRIGGERS", "UPDATED"], &rows)
}

/// Up to `limit` items of an offset-paged native listing, read a page of at
/// most 1000 at a time by `page(max_results, offset)`.
fn paged(
    limit: u64,
    page: impl Fn(u64, u64) -> anyhow::Result<OffsetPage>,
) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut offset = Some(0);
    while let Some(at) = offset {
        let want = limit.saturating_sub(items.len() as u64).min(1000);
        if want == 0 {
            break;
        }
        let page = page(want, at)?;
        items.extend(page.items);
        offset = page.next_offset;
    }
    Ok(items)
}

/// Prints a run and its steps as a table.
fn show(run: &Value) -> anyhow::Result<()> {
    out(&format!(
        "run {} of pipeline '{}': {}",
        text(&run["id"]),
        text(&run["pipeline"]),
        text(&run["status"])
    ))?;
    let rows: Vec<Vec<String>> = run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let metrics = s["metrics"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", number(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            vec![
                text(&s["name"]),
                text(&s["status"]),
                text(&s["attempts"]),
                text(&s["worker"]),
                text(&s["tracking_run_id"]),
                match (metrics.is_empty(), cache_note(s)) {
                    (true, None) => text(&s["error"]),
                    (true, Some(note)) => format!("({note})"),
                    (false, None) => metrics,
                    (false, Some(note)) => format!("{metrics} ({note})"),
                },
            ]
        })
        .collect();
    out_table(
        &[
            "STEP",
            "STATUS",
            "ATTEMPTS",
            "WORKER",
            "RUN",
            "METRICS / ERROR",
        ],
        &rows,
    )
}

/// A metric as people write it: `1` rather than JSON's `1.0` (a registered
/// version is a metric, and version 1 is not 1.0), `0.25` as is.
fn number(v: &Value) -> String {
    v.as_f64().map_or_else(|| v.to_string(), |f| f.to_string())
}

/// `pipelines validate`.
fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let label = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {label}"))?;
    match sextant_pipelines::load(&label, &text) {
        Ok(v) => {
            let (name, steps) = (&v.pipeline.name.value, v.pipeline.steps.len());
            if args.json {
                out(
                    &json!({"ok": true, "file": label, "pipeline": name, "steps": steps})
                        .to_string(),
                )?;
            } else {
                out(&format!("ok: pipeline '{name}', {steps} steps"))?;
            }
            Ok(())
        }
        Err(sextant_pipelines::Error::Invalid { file, diagnostics }) => {
            if args.json {
                let errors: Vec<_> = diagnostics
                    .iter()
                    .map(|d| json!({"line": d.pos.line, "col": d.pos.col, "message": d.message}))
                    .collect();
                out(&json!({"ok": false, "file": file, "errors": errors}).to_string())?;
            } else {
                for d in &diagnostics {
                    eprintln!("{file}:{d}");
                }
            }
            anyhow::bail!("{file}: {} error(s)", diagnostics.len())
        }
    }
}
