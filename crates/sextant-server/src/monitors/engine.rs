//! One monitor check without IO but reading local files: the window's profile,
//! SageMaker's constraint checks, drift per feature, model quality, and the
//! files a run stores.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use sextant_monitor::drift::{DriftConfig, FeatureDrift, NumericSample, dataset_drift};
use sextant_monitor::profile::ProfileOptions;
use sextant_monitor::quality::{
    Observation, Pair, ProblemType, QualityConstraints, check as quality_check, default_positive,
    metrics,
};
use sextant_monitor::read::{Prediction, profile_capture, profile_path};
use sextant_monitor::report::{Distribution, ReportInput, ReportViolation, render};
use sextant_monitor::sagemaker::{Constraints, Statistics, check};

use super::config::MonitorSpec;

/// A baseline as read from its directory.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Where it came from, for the summary.
    pub source: String,
    /// `statistics.json`.
    pub statistics: Vec<u8>,
    /// `constraints.json`, when there is one (else suggested from the statistics).
    pub constraints: Option<Vec<u8>>,
}

impl Baseline {
    /// Reads `dir/statistics.json` and `dir/constraints.json`.
    pub fn read(dir: &Path, source: &str) -> Result<Baseline, String> {
        let statistics = std::fs::read(dir.join("statistics.json")).map_err(|e| {
            format!(
                "baseline {source}: cannot read {}: {e} (write one with `sextant monitors baseline` or `uses: builtin/baseline`)",
                dir.join("statistics.json").display()
            )
        })?;
        let constraints = match std::fs::read(dir.join("constraints.json")) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("baseline {source}: constraints.json: {e}")),
        };
        Ok(Baseline {
            source: source.to_string(),
            statistics,
            constraints,
        })
    }
}

/// The window's data.
#[derive(Debug)]
pub enum Input {
    /// Capture lines of the window and the uploaded labels by inference id.
    Capture {
        lines: Vec<String>,
        labels: HashMap<String, String>,
    },
    /// A data set on this host.
    File(PathBuf),
}

/// What a check found and the files to store.
#[derive(Debug, Default)]
pub struct Output {
    pub rows: u64,
    pub baseline_source: String,
    /// SageMaker-shaped violations (`feature_name`, `constraint_check_type`, `description`).
    pub violations: Vec<Value>,
    /// Drift summary: `drifted`, `share`, `drifted_features` (top first), per feature.
    pub drift: Value,
    pub quality: Option<Value>,
    /// File name → bytes.
    pub files: Vec<(&'static str, Vec<u8>)>,
}

fn violation(feature: &str, check: &str, description: String) -> Value {
    serde_json::json!({"feature_name": feature, "constraint_check_type": check, "description": description})
}

fn parse_label(text: &str) -> Observation {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Observation::Number(x),
        _ => Observation::Label(text.trim().to_string()),
    }
}

fn prediction(p: &Prediction, problem: ProblemType) -> Option<Observation> {
    match problem {
        ProblemType::Regression => p.value.map(Observation::Number),
        _ => p
            .label
            .as_deref()
            .map(parse_label)
            .or(p.value.map(Observation::Number)),
    }
}

fn csv_cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Runs the checks of `spec` on `input` against `baseline`.
pub fn evaluate(spec: &MonitorSpec, baseline: &Baseline, input: Input) -> Result<Output, String> {
    let opts = ProfileOptions::default();
    let base: Statistics = serde_json::from_slice(&baseline.statistics)
        .map_err(|e| format!("baseline {}: statistics.json: {e}", baseline.source))?;
    let constraints: Constraints = match &baseline.constraints {
        Some(b) => serde_json::from_slice(b)
            .map_err(|e| format!("baseline {}: constraints.json: {e}", baseline.source))?,
        None => Constraints::suggest(&base),
    };
    let columns: Vec<String> = base.features.iter().map(|f| f.name.clone()).collect();
    let (profile, exchanges, labels) = match input {
        Input::Capture { lines, labels } => {
            let (p, ex) = profile_capture(lines.iter().map(String::as_str), Some(&columns), opts)
                .map_err(|e| e.to_string())?;
            (p, ex, labels)
        }
        Input::File(path) => (
            profile_path(&path, opts).map_err(|e| e.to_string())?,
            Vec::new(),
            HashMap::new(),
        ),
    };
    let current = Statistics::from_profile(&profile);
    let mut violations: Vec<Value> = Vec::new();
    let mut report_violations = Vec::new();
    if spec.data_quality && profile.item_count > 0 {
        for v in check(&base, &constraints, &profile).violations {
            violations.push(violation(
                &v.feature_name,
                &v.constraint_check_type,
                v.description,
            ));
        }
    }
    // Drift per feature the baseline and the window share.
    let config = DriftConfig {
        threshold: spec.drift.threshold.unwrap_or(0.1),
        alpha: spec.drift.alpha.unwrap_or(0.05),
        drift_share: spec.drift.drift_share.unwrap_or(0.5),
    };
    let mut distributions = Vec::new();
    let drift = if spec.drift.enabled && profile.item_count > 0 {
        let mut features = Vec::new();
        for b in &base.features {
            let Some(c) = current.feature(&b.name) else {
                continue;
            };
            if b.is_numeric() && c.is_numeric() {
                let (bc, cc) = (b.cdf(), c.cdf());
                features.push(FeatureDrift::numeric(
                    &b.name,
                    NumericSample {
                        cdf: &bc,
                        n: b.common().num_present,
                        std_dev: b.std_dev(),
                    },
                    NumericSample {
                        cdf: &cc,
                        n: c.common().num_present,
                        std_dev: c.std_dev(),
                    },
                    &config,
                ));
                distributions.push((
                    b.name.clone(),
                    Distribution::Numeric {
                        baseline: bc,
                        window: cc,
                    },
                ));
            } else if !b.is_numeric() && !c.is_numeric() {
                let (bc, cc) = (b.categories(), c.categories());
                features.push(FeatureDrift::categorical(&b.name, &bc, &cc, &config));
                distributions.push((
                    b.name.clone(),
                    Distribution::Categorical {
                        baseline: bc,
                        window: cc,
                    },
                ));
            }
        }
        let d = dataset_drift(features, &config);
        if d.drifted {
            violations.push(violation(
                "",
                "dataset_drift_check",
                format!(
                    "{} of {} features drifted ({:.0} %, threshold {:.0} %): {}",
                    d.drifted_count,
                    d.features.len(),
                    d.share * 100.0,
                    config.drift_share * 100.0,
                    d.drifted_features.join(", ")
                ),
            ));
        }
        Some(d)
    } else {
        None
    };
    // Model quality: predictions joined with labels on the inference id.
    let mut quality = None;
    let mut quality_metrics = None;
    if let Some(mq) = &spec.model_quality {
        let problem = mq.problem_type;
        let positive = mq
            .positive_label
            .as_deref()
            .map_or_else(default_positive, parse_label);
        let mut pairs = Vec::new();
        for ex in &exchanges {
            let (Some(id), [p]) = (&ex.inference_id, ex.predictions.as_slice()) else {
                continue;
            };
            let (Some(label), Some(pred)) = (labels.get(id), prediction(p, problem)) else {
                continue;
            };
            pairs.push(Pair {
                prediction: pred,
                label: parse_label(label),
                probability: p.probability,
            });
        }
        if pairs.is_empty() {
            quality = Some(
                serde_json::json!({"joined": 0, "message": "no captured prediction has an uploaded label yet"}),
            );
        } else {
            let m = metrics(problem, &pairs, &positive).map_err(|e| e.to_string())?;
            if !mq.constraints.is_empty() {
                let c = QualityConstraints::from_map(problem, &mq.constraints)
                    .map_err(|e| e.to_string())?;
                for v in quality_check(&m, &c).map_err(|e| e.to_string())? {
                    violations.push(violation(
                        &v.metric_name,
                        "model_quality_check",
                        v.description,
                    ));
                }
            }
            quality = Some(serde_json::json!({"joined": pairs.len(), "metrics": m}));
            quality_metrics = Some(m);
        }
    }
    for v in &violations {
        report_violations.push(ReportViolation {
            feature: v["feature_name"].as_str().unwrap_or_default().to_string(),
            check: v["constraint_check_type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            description: v["description"].as_str().unwrap_or_default().to_string(),
        });
    }
    let drift_json = serde_json::to_value(&drift).expect("drift serializes");
    let mut files: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "statistics.json",
            serde_json::to_vec_pretty(&current).expect("statistics serialize"),
        ),
        (
            "constraint_violations.json",
            serde_json::to_vec_pretty(&serde_json::json!({"violations": violations}))
                .expect("JSON"),
        ),
        (
            "drift.json",
            serde_json::to_vec_pretty(&drift_json).expect("JSON"),
        ),
    ];
    if let Some(q) = &quality {
        files.push((
            "model_quality.json",
            serde_json::to_vec_pretty(q).expect("JSON"),
        ));
    }
    // The window's rows (and labels) as CSV, for retraining on what the endpoint saw.
    if !exchanges.is_empty() {
        let label_column = spec.model_quality.as_ref().map(|m| m.label.clone());
        let mut csv = columns.join(",");
        if let Some(l) = &label_column {
            csv.push(',');
            csv.push_str(l);
        }
        csv.push('\n');
        for ex in &exchanges {
            let label = ex.inference_id.as_ref().and_then(|id| labels.get(id));
            if label_column.is_some() && (label.is_none() || ex.rows.len() != 1) {
                continue; // a training row needs its label
            }
            for row in &ex.rows {
                let cells: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        row.iter()
                            .find(|(k, _)| k == c)
                            .map_or(String::new(), |(_, v)| csv_cell(v))
                    })
                    .collect();
                csv.push_str(&cells.join(","));
                if let Some(l) = label {
                    csv.push(',');
                    csv.push_str(&csv_cell(&Value::String(l.clone())));
                }
                csv.push('\n');
            }
        }
        files.push(("window.csv", csv.into_bytes()));
    }
    let report = render(&ReportInput {
        title: format!("Monitor {}", spec.name.as_deref().unwrap_or("")),
        window: spec.endpoint.as_deref().map_or_else(
            || spec.data.clone().unwrap_or_default(),
            |e| format!("endpoint {e}"),
        ),
        rows: profile.item_count,
        baseline: baseline.source.clone(),
        drift: drift.clone(),
        distributions,
        violations: report_violations,
        quality: quality_metrics,
    });
    files.push(("report.html", report.into_bytes()));
    let drift_summary = match &drift {
        Some(d) => serde_json::json!({
            "drifted": d.drifted,
            "share": d.share,
            "drifted_features": d.drifted_features,
            "features": d.features.iter().map(|f| serde_json::json!({
                "name": f.name, "method": f.method.as_str(), "statistic": f.statistic,
                "p_value": f.p_value, "adjusted_p_value": f.adjusted_p_value, "drifted": f.drifted,
            })).collect::<Vec<_>>(),
        }),
        None => Value::Null,
    };
    Ok(Output {
        rows: profile.item_count,
        baseline_source: baseline.source.clone(),
        violations,
        drift: drift_summary,
        quality,
        files,
    })
}

/// Profiles a data set and writes `statistics.json` and suggested
/// `constraints.json` into `dir`, leaving out the `exclude`d columns (a label
/// that requests do not carry); returns `{rows, features, files}`.
pub fn write_baseline(data: &Path, dir: &Path, exclude: &[&str]) -> Result<Value, String> {
    sextant_monitor::sagemaker::write_baseline(data, dir, exclude)
}
