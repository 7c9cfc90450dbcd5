//! `sextant monitors …`: write a baseline from a data set (locally, no
//! server), and on a server create, run, show and list monitors and read
//! their runs' reports.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use sextant_server::monitors::config::MonitorSpec;

use crate::client::{Client, ClientArgs, out, out_json, out_table, text};

#[derive(Subcommand)]
pub enum MonitorsCommand {
    /// Profile a data set and write statistics.json and suggested constraints.json (SageMaker Model Monitor's schema) into DIR; needs no server.
    Baseline {
        /// A CSV, JSON lines or Parquet file, or a directory of SageMaker capture files.
        #[arg(long)]
        data: std::path::PathBuf,
        /// The directory to write statistics.json and constraints.json into.
        #[arg(long)]
        out: std::path::PathBuf,
        /// A column to leave out, such as the label that requests do not carry; repeatable.
        #[arg(long)]
        exclude: Vec<String>,
    },
    /// Create or replace a monitor from a YAML (or JSON) definition.
    Apply {
        /// The definition; its `name:` names the monitor unless --name does.
        file: std::path::PathBuf,
        /// The monitor's name, instead of the file's `name:`.
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a monitor of an endpoint's captured traffic or of a data set.
    Create {
        /// The monitor's name.
        name: String,
        /// The endpoint whose captured traffic is checked.
        #[arg(long, conflicts_with = "data")]
        endpoint: Option<String>,
        /// A data set on the server's host.
        #[arg(long)]
        data: Option<String>,
        /// A directory with statistics.json and constraints.json, or models:/name/3 (its baseline/) [default: the baseline of the endpoint's model].
        #[arg(long)]
        baseline: Option<String>,
        /// Five-field cron, UTC; without it the monitor runs on demand.
        #[arg(long)]
        schedule: Option<String>,
        /// How far back a run looks, e.g. 10m or 1h.
        #[arg(long, default_value = "1h")]
        window: String,
        /// Judge predictions against uploaded ground truth: Regression, BinaryClassification or MulticlassClassification.
        #[arg(long)]
        problem_type: Option<String>,
    },
    /// Check a window now and print what was found; exits 0 whatever it found (see `status`).
    Run {
        /// The monitor's name.
        name: String,
        /// The window's length [default: the monitor's].
        #[arg(long)]
        window: Option<String>,
    },
    /// Show a monitor and its latest run.
    Show {
        /// The monitor's name.
        name: String,
    },
    /// List monitors.
    List,
    /// A monitor's runs, newest first, with their report paths.
    Reports {
        /// The monitor's name.
        name: String,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// Delete a monitor and its runs (the files stay).
    Delete {
        /// The monitor's name.
        name: String,
    },
}

pub fn run(args: ClientArgs, command: MonitorsCommand) -> anyhow::Result<()> {
    if let MonitorsCommand::Baseline {
        data,
        out: dir,
        exclude,
    } = &command
    {
        let exclude: Vec<&str> = exclude.iter().map(String::as_str).collect();
        return baseline(data, dir, &exclude, args.json);
    }
    let client = Client::new(&args.server)?;
    let url = |segments: &[&str], q: &[(&str, String)]| {
        let mut all = vec!["api", "v1", "monitors"];
        all.extend_from_slice(segments);
        client.url(&all, q)
    };
    let shown = match command {
        MonitorsCommand::Baseline { .. } => unreachable!("handled above"),
        MonitorsCommand::Apply { file, name } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let spec = MonitorSpec::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let name = name
                .or(spec.name.clone())
                .ok_or_else(|| anyhow::anyhow!("{} has no `name:`; pass --name", file.display()))?;
            client.put_yaml(url(&[&name], &[]), text)?
        }
        MonitorsCommand::Create {
            name,
            endpoint,
            data,
            baseline,
            schedule,
            window,
            problem_type,
        } => {
            let mut spec = json!({"window": window});
            for (key, value) in [
                ("endpoint", endpoint),
                ("data", data),
                ("baseline", baseline),
                ("schedule", schedule),
            ] {
                if let Some(v) = value {
                    spec[key] = json!(v);
                }
            }
            if let Some(p) = problem_type {
                spec["model_quality"] = json!({"problem_type": p});
            }
            let text = spec.to_string();
            MonitorSpec::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
            client.send(Method::PUT, url(&[&name], &[]), spec)?
        }
        MonitorsCommand::Run { name, window } => {
            let body = match window {
                Some(w) => json!({"window": w}),
                None => json!({}),
            };
            let run = client.send(Method::POST, url(&[&name, "runs"], &[]), body)?;
            if args.json {
                return out_json(&run);
            }
            return show_run(&run);
        }
        MonitorsCommand::Show { name } => {
            client.get(url(&[&name], &[]), std::time::Duration::ZERO)?
        }
        MonitorsCommand::List => {
            let all = client.get(url(&[], &[]), std::time::Duration::ZERO)?;
            if args.json {
                return out_json(&all);
            }
            let rows: Vec<Vec<String>> = all["monitors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let watches = match (&m["spec"]["endpoint"], &m["spec"]["data"]) {
                        (Value::String(e), _) => format!("endpoint {e}"),
                        (_, Value::String(d)) => d.clone(),
                        _ => "-".into(),
                    };
                    vec![
                        text(&m["name"]),
                        watches,
                        m["spec"]["schedule"]
                            .as_str()
                            .unwrap_or("on demand")
                            .to_string(),
                        m["last_run"]["status"].as_str().unwrap_or("-").to_string(),
                        m["last_run"]["ended_time_rfc3339"]
                            .as_str()
                            .unwrap_or("-")
                            .to_string(),
                    ]
                })
                .collect();
            return out_table(
                &["MONITOR", "WATCHES", "SCHEDULE", "LAST RUN", "ENDED"],
                &rows,
            );
        }
        MonitorsCommand::Reports { name, limit } => {
            let runs = client.get(
                url(&[&name, "runs"], &[("max_results", limit.to_string())]),
                std::time::Duration::ZERO,
            )?;
            if args.json {
                return out_json(&runs);
            }
            let rows: Vec<Vec<String>> = runs["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    vec![
                        text(&r["id"]),
                        text(&r["status"]),
                        text(&r["trigger"]),
                        format!(
                            "{} .. {}",
                            text(&r["window_start_rfc3339"]),
                            text(&r["window_end_rfc3339"])
                        ),
                        r["summary"]["violations"]
                            .as_array()
                            .map_or("-".into(), |v| v.len().to_string()),
                        r["summary"]["files"]["report.html"]
                            .as_str()
                            .unwrap_or("-")
                            .to_string(),
                    ]
                })
                .collect();
            return out_table(
                &["RUN", "STATUS", "TRIGGER", "WINDOW", "VIOLATIONS", "REPORT"],
                &rows,
            );
        }
        MonitorsCommand::Delete { name } => {
            client.send(Method::DELETE, url(&[&name], &[]), Value::Null)?;
            return out(&format!("monitor '{name}' deleted"));
        }
    };
    if args.json {
        return out_json(&shown);
    }
    out(&format!(
        "monitor {}: {}",
        text(&shown["name"]),
        serde_json::to_string(&shown["spec"]).unwrap_or_default()
    ))?;
    if !shown["last_run"].is_null() {
        show_run(&shown["last_run"])?;
    }
    Ok(())
}

/// A run's outcome in a few lines.
fn show_run(r: &Value) -> anyhow::Result<()> {
    out(&format!(
        "run {}: {} ({} rows, window {} .. {})",
        text(&r["id"]),
        text(&r["status"]),
        r["summary"]["rows"],
        text(&r["window_start_rfc3339"]),
        text(&r["window_end_rfc3339"])
    ))?;
    if let Some(e) = r["error"].as_str() {
        out(&format!("  error: {e}"))?;
    }
    for v in r["summary"]["violations"].as_array().into_iter().flatten() {
        out(&format!(
            "  {} {}: {}",
            text(&v["constraint_check_type"]),
            text(&v["feature_name"]),
            text(&v["description"])
        ))?;
    }
    if let Some(d) = r["summary"]["drift"]["drifted_features"].as_array() {
        let names: Vec<String> = d.iter().map(text).collect();
        out(&format!(
            "  drift: {} of {} features ({})",
            names.len(),
            r["summary"]["drift"]["features"]
                .as_array()
                .map_or(0, Vec::len),
            names.join(", ")
        ))?;
    }
    if let Some(f) = r["summary"]["files"]["report.html"].as_str() {
        out(&format!("  report: {f} ({})", text(&r["report_url"])))?;
    }
    Ok(())
}

/// `sextant monitors baseline`.
fn baseline(
    data: &std::path::Path,
    dir: &std::path::Path,
    exclude: &[&str],
    json: bool,
) -> anyhow::Result<()> {
    let written = sextant_server::monitors::engine::write_baseline(data, dir, exclude)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        return out_json(&written);
    }
    out(&format!(
        "baseline of {} ({} rows, {} features) written to {}",
        data.display(),
        written["rows"],
        written["features"],
        dir.display()
    ))
}
