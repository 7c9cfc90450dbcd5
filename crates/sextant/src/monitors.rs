//! `sextant monitors …`: write a baseline from a data set (locally, no
//! server), and on a server create, run, show and list monitors and read
//! their runs' reports.

use clap::Subcommand;
use serde_json::{Value, json};
use sextant_client::Definition;
use sextant_control::monitors::config::MonitorSpec;

use crate::client::{Client, ClientArgs, out, out_json, out_table, text};

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
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
        /// A data set on the server's host (under its data directory, working directory or a --data-root).
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
        /// A window with fewer rows fails the run instead of judging noise [default: 1].
        #[arg(long)]
        min_rows: Option<u64>,
        /// Drift effect-size threshold (normed Wasserstein, Jensen-Shannon distance) [default: 0.1].
        #[arg(long)]
        drift_threshold: Option<f64>,
        /// Significance level of the drift tests after Benjamini-Hochberg [default: 0.05].
        #[arg(long)]
        drift_alpha: Option<f64>,
        /// Share of drifted features that makes the data set drift [default: 0.5].
        #[arg(long)]
        drift_share: Option<f64>,
        /// Judge predictions against uploaded ground truth: Regression, BinaryClassification or MulticlassClassification.
        #[arg(long, requires = "label")]
        problem_type: Option<String>,
        /// The label column (the name the window's rows for retraining give the ground truth).
        #[arg(long, requires = "problem_type")]
        label: Option<String>,
        /// A model-quality metric that fails the check when it falls below VALUE, e.g. r2=0.8; repeatable.
        #[arg(long, value_name = "METRIC=VALUE", requires = "problem_type")]
        fail_below: Vec<String>,
        /// A model-quality metric that fails the check when it rises above VALUE, e.g. mae=2.5; repeatable.
        #[arg(long, value_name = "METRIC=VALUE", requires = "problem_type")]
        fail_above: Vec<String>,
    },
    /// Check a window now and print what was found; exits 1 when the run failed, 0 whatever it found otherwise (see its status).
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
    let client = Client::new(&args)?;
    let shown = match command {
        MonitorsCommand::Baseline { .. } => unreachable!("handled above"),
        MonitorsCommand::Apply { file, name } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let spec = MonitorSpec::parse(&file.display().to_string(), &text)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let name = name
                .or(spec.name.clone())
                .ok_or_else(|| anyhow::anyhow!("{} has no `name:`; pass --name", file.display()))?;
            client
                .block(client.put_monitor(&name, Definition::Yaml(text)))?
                .body
        }
        MonitorsCommand::Create {
            name,
            endpoint,
            data,
            baseline,
            schedule,
            window,
            min_rows,
            drift_threshold,
            drift_alpha,
            drift_share,
            problem_type,
            label,
            fail_below,
            fail_above,
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
            if let Some(n) = min_rows {
                spec["min_rows"] = json!(n);
            }
            for (key, value) in [
                ("threshold", drift_threshold),
                ("alpha", drift_alpha),
                ("drift_share", drift_share),
            ] {
                if let Some(v) = value {
                    spec["drift"][key] = json!(v);
                }
            }
            if let (Some(p), Some(label)) = (problem_type, label) {
                let mut constraints = serde_json::Map::new();
                for (flag, operator, given) in [
                    ("--fail-below", "LessThanThreshold", &fail_below),
                    ("--fail-above", "GreaterThanThreshold", &fail_above),
                ] {
                    for g in given {
                        let (metric, value) = g
                            .split_once('=')
                            .and_then(|(m, v)| Some((m.trim(), v.trim().parse::<f64>().ok()?)))
                            .ok_or_else(|| {
                                anyhow::anyhow!("{flag} {g}: expected METRIC=NUMBER, e.g. r2=0.8")
                            })?;
                        constraints.insert(
                            metric.to_string(),
                            json!({"threshold": value, "comparison_operator": operator}),
                        );
                    }
                }
                spec["model_quality"] =
                    json!({"problem_type": p, "label": label, "constraints": constraints});
            }
            // Checked here too, so a mistake names the flag's value, not a line of JSON.
            let parsed: MonitorSpec = serde_json::from_value(spec.clone())
                .map_err(|e| anyhow::anyhow!("monitor '{name}': {e}"))?;
            if let Some((_, problem)) = parsed.problems().into_iter().next() {
                anyhow::bail!("monitor '{name}': {problem}");
            }
            client
                .block(client.put_monitor(&name, Definition::Json(spec)))?
                .body
        }
        MonitorsCommand::Run { name, window } => {
            let body = match window {
                Some(w) => json!({"window": w}),
                None => json!({}),
            };
            let run = client.block(client.run_monitor(&name, &body))?;
            if args.json {
                out_json(&run)?;
            } else {
                show_run(&run)?;
            }
            if run["status"] == "Failed" {
                anyhow::bail!(
                    "monitor '{name}': run {} failed: {}",
                    text(&run["id"]),
                    run["error"].as_str().unwrap_or("no reason given")
                );
            }
            return Ok(());
        }
        MonitorsCommand::Show { name } => client.block(client.get_monitor(&name))?,
        MonitorsCommand::List => {
            let all = client.block(client.list_monitors())?;
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
            let runs = client.block(client.monitor_runs(&name, limit))?;
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
            client.block(client.delete_monitor(&name))?;
            return out(&format!("monitor '{name}' deleted"));
        }
    };
    if args.json {
        return out_json(&shown);
    }
    show_monitor(&shown)?;
    if !shown["last_run"].is_null() {
        out("last run:")?;
        show_run(&shown["last_run"])?;
    }
    Ok(())
}

/// A monitor's definition in a few lines.
fn show_monitor(m: &Value) -> anyhow::Result<()> {
    let spec = &m["spec"];
    out(&format!("monitor {}", text(&m["name"])))?;
    let watches = match (&spec["endpoint"], &spec["data"]) {
        (Value::String(e), _) => match spec["variants"].as_array() {
            Some(v) if !v.is_empty() => {
                let names: Vec<String> = v.iter().map(text).collect();
                format!("endpoint {e}, variants {}", names.join(", "))
            }
            _ => format!("endpoint {e} (every variant but the shadow)"),
        },
        (_, Value::String(d)) => format!("data set {d}"),
        _ => "-".into(),
    };
    out(&format!("  watches:   {watches}"))?;
    out(&format!(
        "  baseline:  {}",
        spec["baseline"]
            .as_str()
            .unwrap_or("the baseline/ of the model the endpoint serves")
    ))?;
    out(&format!(
        "  schedule:  {}",
        spec["schedule"]
            .as_str()
            .map_or("on demand".to_string(), |s| format!("{s} (UTC)"))
    ))?;
    out(&format!(
        "  window:    {}, at least {} rows",
        text(&spec["window"]),
        spec["min_rows"]
    ))?;
    let mut checks = Vec::new();
    if spec["data_quality"] == true {
        checks.push("data quality".to_string());
    }
    if spec["drift"]["enabled"] == true {
        let d = &spec["drift"];
        let or =
            |v: &Value, default: &str| v.as_f64().map_or(default.to_string(), |x| x.to_string());
        checks.push(format!(
            "drift (threshold {}, alpha {}, share {})",
            or(&d["threshold"], "0.1"),
            or(&d["alpha"], "0.05"),
            or(&d["drift_share"], "0.5")
        ));
    }
    if let Some(mq) = spec["model_quality"].as_object() {
        let mut limits: Vec<String> = mq
            .get("constraints")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(metric, c)| {
                let op = match c["comparison_operator"].as_str().unwrap_or_default() {
                    "LessThanThreshold" => "<",
                    "LessThanOrEqualToThreshold" => "<=",
                    "GreaterThanThreshold" => ">",
                    "GreaterThanOrEqualToThreshold" => ">=",
                    other => other,
                };
                format!("{metric} {op} {} fails", c["threshold"])
            })
            .collect();
        if limits.is_empty() {
            limits.push("no constraints".into());
        }
        checks.push(format!(
            "model quality ({}, label {}; {})",
            text(&mq["problem_type"]),
            text(&mq["label"]),
            limits.join(", ")
        ));
    }
    out(&format!("  checks:    {}", checks.join("; ")))
}

/// A run's outcome in a few lines.
fn show_run(r: &Value) -> anyhow::Result<()> {
    let rows = r["summary"]["rows"]
        .as_u64()
        .map_or(String::new(), |n| format!("{n} rows, "));
    out(&format!(
        "run {}: {} ({rows}window {} .. {})",
        text(&r["id"]),
        text(&r["status"]),
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
        let which = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        out(&format!(
            "  drift: {} of {} features{which}",
            names.len(),
            r["summary"]["drift"]["features"]
                .as_array()
                .map_or(0, Vec::len),
        ))?;
    }
    let quality = &r["summary"]["model_quality"];
    if let Some(groups) = quality["metrics"].as_object() {
        // {"regression_metrics": {"mae": {"value": …, "standard_deviation": …}, …}}
        let values: Vec<String> = groups
            .values()
            .filter_map(Value::as_object)
            .flatten()
            .filter_map(|(name, m)| m["value"].as_f64().map(|v| format!("{name} {v:.4}")))
            .collect();
        out(&format!(
            "  model quality ({} labelled predictions): {}",
            quality["joined"],
            values.join(", ")
        ))?;
    } else if let Some(m) = quality["message"].as_str() {
        out(&format!("  model quality: {m}"))?;
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
    let written = sextant_monitor::engine::write_baseline(data, dir, exclude)
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
