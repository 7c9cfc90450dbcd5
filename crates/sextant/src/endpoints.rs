//! `sextant endpoints …`: serving endpoints on a server — apply a YAML
//! definition, create one from a model, roll a new model out, promote or
//! roll back, show, list, delete.

use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};
use sextant_client::Definition;
use sextant_serving::endpoints::config::{EndpointSpec, Runtime, parse_duration};

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
    let client = Client::new(&args)?;
    let shown = match command {
        EndpointsCommand::Apply { file, name } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let spec = EndpointSpec::parse(&file.display().to_string(), &text)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let name = name
                .or(spec.name.clone())
                .ok_or_else(|| anyhow::anyhow!("{} has no `name:`; pass --name", file.display()))?;
            let processes: Vec<(&str, &str)> = spec
                .variants
                .iter()
                .filter(|v| v.runtime == Runtime::Process)
                .map(|v| (v.name.as_str(), v.model.as_str()))
                .chain(
                    spec.shadow
                        .iter()
                        .filter(|s| s.runtime == Runtime::Process)
                        .map(|s| (s.name.as_str(), s.model.as_str())),
                )
                .collect();
            put(&client, &name, Definition::Yaml(text), &processes)?
        }
        EndpointsCommand::Create {
            name,
            model,
            runtime,
        } => {
            let exists = client.block(client.get_endpoint(&name)).is_ok();
            if exists {
                anyhow::bail!("endpoint '{name}' exists; use `sextant endpoints update`");
            }
            let spec = json!({"variants": [{"model": model, "runtime": runtime}]});
            let processes: &[(&str, &str)] = if runtime == "process" {
                &[("primary", model.as_str())]
            } else {
                &[]
            };
            put(&client, &name, Definition::Json(spec), processes)?
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
            let current = client.block(client.get_endpoint(&name))?;
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
            let process = target["runtime"] == "process";
            let target_name = text(&target["name"]);
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
            let processes: &[(&str, &str)] = if process {
                &[(target_name.as_str(), model.as_str())]
            } else {
                &[]
            };
            put(&client, &name, Definition::Json(spec), processes)?
        }
        EndpointsCommand::Show { name } => client.block(client.get_endpoint(&name))?,
        EndpointsCommand::List => {
            let all = client.block(client.list_endpoints())?;
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
            client.block(client.delete_endpoint(&name))?;
            return out(&format!("endpoint '{name}' deleted"));
        }
        EndpointsCommand::Promote { name } => client.block(client.promote(&name))?,
        EndpointsCommand::Rollback { name } => client.block(client.rollback(&name))?,
        EndpointsCommand::GroundTruth { name, file } => {
            let stored = ground_truth(&client, &name, &file)?;
            return out(&format!("{stored} labels stored for endpoint '{name}'"));
        }
    };
    // A version rolled out without approval, and the like: said on stderr, kept out of
    // the data.
    for w in shown["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
    if args.json {
        return out_json(&shown);
    }
    show(&shown)
}

/// Creates or updates endpoint `name`. The server answers only once each
/// process-runtime variant in `processes` (name, model) answers `/ping`, so
/// the wait is longer then, and said on stderr.
fn put(
    client: &Client,
    name: &str,
    definition: Definition,
    processes: &[(&str, &str)],
) -> anyhow::Result<Value> {
    if processes.is_empty() {
        return client
            .block(client.put_endpoint(name, definition, Duration::ZERO))
            .map(|applied| applied.body);
    }
    // The server answers once the children answer /ping: up to their
    // startup timeout (2 min), which may take a while to say.
    let what: Vec<String> = processes
        .iter()
        .map(|(variant, model)| format!("variant '{variant}' (mlflow models serve of {model})"))
        .collect();
    let verb = if what.len() == 1 {
        "answer"
    } else {
        "each answer"
    };
    let what = format!("{} to {verb} /ping", what.join(", "));
    waiting_for(&what, || {
        client
            .block(client.put_endpoint(name, definition, PROCESS_START))
            .map(|applied| applied.body)
    })
}

/// How much longer than usual a request starting a process runtime may take: the
/// server's startup timeout for a child (120 s) with a margin.
const PROCESS_START: Duration = Duration::from_secs(90);

/// Runs `work`, saying on stderr what it waits for while it takes over a second: a
/// line rewritten each second on a terminal, else a line every ten seconds.
fn waiting_for<T: Send>(what: &str, work: impl FnOnce() -> T + Send) -> T {
    use std::io::{IsTerminal, Write};
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Instant;
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let started = Instant::now();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let result = work();
            // The receiver only goes when this scope ends.
            let _ = done.send(());
            result
        });
        let mut wait = Duration::from_secs(1);
        let mut said = false;
        while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(wait) {
            let line = format!("waiting for {what} … {} s", started.elapsed().as_secs());
            let mut err = std::io::stderr().lock();
            let _ = if terminal {
                write!(err, "\r\x1b[2K{line}")
            } else {
                writeln!(err, "{line}")
            };
            let _ = err.flush();
            said = true;
            wait = every;
        }
        if said && terminal {
            eprintln!();
        }
        worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
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
        percent(&r["traffic_percent"])
    )
}

/// `50` for 50.0, `12.5` for 12.5.
fn percent(p: &Value) -> String {
    match p.as_f64() {
        Some(p) if p.fract() == 0.0 => format!("{p:.0}"),
        Some(p) => p.to_string(),
        None => text(p),
    }
}

/// Past rollouts and traffic changes `show` prints (the newest); `--json` has them all.
const SHOWN_HISTORY: usize = 10;

fn show(e: &Value) -> anyhow::Result<()> {
    out(&format!(
        "endpoint {}: {} ({})",
        text(&e["name"]),
        text(&e["status"]),
        text(&e["url"])
    ))?;
    out(&format!("models: {}", models(e)))?;
    let r = &e["rollout"];
    let left = match (r["policy"]["strategy"].as_str(), r["time_left_ms"].as_i64()) {
        (Some("linear"), Some(ms)) => format!(", next step in {}", duration(ms)),
        (_, Some(ms)) => format!(", bake {} left", duration(ms)),
        _ => String::new(),
    };
    out(&format!("rollout: {}{left}", rollout_note(e)))?;
    if !r.is_null() {
        out(&format!(
            "  new model:    {}",
            window(&r["counters"]["new"])
        ))?;
        out(&format!(
            "  stable model: {}",
            window(&r["counters"]["stable"])
        ))?;
    }
    let past = e["past_rollouts"].as_array().map_or(&[][..], Vec::as_slice);
    if !past.is_empty() {
        out("")?;
        out(&format!("past rollouts{}:", earlier(past.len())))?;
        let rows: Vec<Vec<String>> = past[past.len().saturating_sub(SHOWN_HISTORY)..]
            .iter()
            .map(|p| {
                vec![
                    text(&p["status"]),
                    text(&p["from"]["resolved"]),
                    text(&p["to"]["resolved"]),
                    counts(&p["counters"]["new"]),
                    counts(&p["counters"]["stable"]),
                    text(&p["reason"]),
                ]
            })
            .collect();
        out_table(
            &[
                "STATUS",
                "FROM",
                "TO",
                "NEW REQ/ERR/REJ",
                "STABLE REQ/ERR/REJ",
                "REASON",
            ],
            &rows,
        )?;
    }
    let traffic = e["traffic"].as_array().map_or(&[][..], Vec::as_slice);
    if !traffic.is_empty() {
        out("")?;
        out(&format!("traffic history{}:", earlier(traffic.len())))?;
        let rows: Vec<Vec<String>> = traffic[traffic.len().saturating_sub(SHOWN_HISTORY)..]
            .iter()
            .map(|t| {
                let split = t["split"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(v, p)| format!("{v} {}%", percent(p)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                vec![text(&t["time_rfc3339"]), split, text(&t["reason"])]
            })
            .collect();
        out_table(&["TIME", "SPLIT", "REASON"], &rows)?;
    }
    out("")?;
    let rows: Vec<Vec<String>> = e["stats"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                text(&s["variant"]),
                text(&s["requests"]),
                text(&s["errors"]),
                text(&s["rejected"]),
                text(&s["client_errors"]),
                text(&s["p99_ms"]),
            ]
        })
        .collect();
    out_table(
        &["VARIANT", "REQUESTS", "ERRORS", "REJECTED", "4XX", "P99 MS"],
        &rows,
    )
}

/// ` (newest 10 of 14)` when some are left out.
fn earlier(total: usize) -> String {
    if total > SHOWN_HISTORY {
        format!(" (newest {SHOWN_HISTORY} of {total}; --json shows all)")
    } else {
        String::new()
    }
}

/// A rollout window in words.
fn window(w: &Value) -> String {
    let p99 = w["p99_ms"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |p| format!("{p} ms"));
    format!(
        "{} requests, {} errors, {} rejected, p99 {p99}",
        w["requests"].as_u64().unwrap_or(0),
        w["errors"].as_u64().unwrap_or(0),
        w["rejected"].as_u64().unwrap_or(0),
    )
}

/// `requests/errors/rejected` of a rollout window, `-` without one (rollouts stored
/// before counters were kept).
fn counts(w: &Value) -> String {
    if w.is_null() {
        return "-".into();
    }
    format!(
        "{}/{}/{}",
        w["requests"].as_u64().unwrap_or(0),
        w["errors"].as_u64().unwrap_or(0),
        w["rejected"].as_u64().unwrap_or(0)
    )
}

/// `4m 12s`, `850ms`, `1h 5m`.
fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// Labels sent per request.
const GROUND_TRUTH_BATCH: usize = 10_000;

/// Uploads the labels of a JSON lines file in batches; returns how many.
fn ground_truth(client: &Client, name: &str, file: &std::path::Path) -> anyhow::Result<usize> {
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
            client.block(client.upload_ground_truth(name, &records))?;
        }
    }
    if !batch.is_empty() {
        stored += batch.len();
        client.block(client.upload_ground_truth(name, &batch))?;
    }
    if stored == 0 {
        anyhow::bail!("{} holds no labels", file.display());
    }
    Ok(stored)
}
