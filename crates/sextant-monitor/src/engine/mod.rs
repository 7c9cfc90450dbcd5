//! One monitor check, without IO: a window's profile (and, for an endpoint,
//! its decoded exchanges and uploaded labels) judged against a baseline —
//! SageMaker's constraint checks, drift per feature, model quality — and the
//! files a run stores. The caller reads the baseline and the window; this
//! module only computes.

mod checks;
mod window;

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::drift::DriftConfig;
use crate::profile::DatasetProfile;
use crate::quality::{ProblemType, QualityError};
use crate::read::{CapturedExchange, ReadError};
use crate::report::{ReportInput, ReportViolation, render};
use crate::sagemaker::{Constraints, Statistics};

pub use self::window::CaptureWindow;
pub use crate::sagemaker::write_baseline;

/// Why a check could not run; each names what it could not read or compute.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A baseline file is not what its name says.
    #[error("baseline {baseline}: {file}: {error}")]
    Baseline {
        baseline: String,
        file: &'static str,
        error: serde_json::Error,
    },
    /// The window's data did not read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Model quality could not be computed or checked.
    #[error(transparent)]
    Quality(#[from] QualityError),
}

/// A baseline's files as read from its directory.
#[derive(Debug, Clone)]
pub struct BaselineFiles {
    /// Where it came from, for the summary.
    pub source: String,
    /// `statistics.json`.
    pub statistics: Vec<u8>,
    /// `constraints.json`, when there is one (else suggested from the statistics).
    pub constraints: Option<Vec<u8>>,
}

/// A baseline read: its statistics and the constraints to check.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub source: String,
    pub statistics: Statistics,
    pub constraints: Constraints,
}

impl BaselineFiles {
    /// Reads the files' JSON; constraints are suggested from the statistics when absent.
    pub fn parse(&self) -> Result<Baseline, EngineError> {
        let bad = |file, error| EngineError::Baseline {
            baseline: self.source.clone(),
            file,
            error,
        };
        let statistics: Statistics =
            serde_json::from_slice(&self.statistics).map_err(|e| bad("statistics.json", e))?;
        let constraints = match &self.constraints {
            Some(b) => serde_json::from_slice(b).map_err(|e| bad("constraints.json", e))?,
            None => Constraints::suggest(&statistics),
        };
        Ok(Baseline {
            source: self.source.clone(),
            statistics,
            constraints,
        })
    }
}

impl Baseline {
    /// The baseline's feature names, in its order: the window's columns.
    pub fn columns(&self) -> Vec<String> {
        self.statistics
            .features
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }
}

/// Which checks to run, and how the report names the monitor and its window.
#[derive(Debug, Clone)]
pub struct Checks {
    /// The report's title.
    pub title: String,
    /// What the window watches, for the report (`endpoint churn`, a data path).
    pub watches: String,
    /// SageMaker's data-quality checks.
    pub data_quality: bool,
    /// Drift per feature and for the dataset, when on.
    pub drift: Option<DriftConfig>,
    /// Model quality against uploaded labels, when on.
    pub model_quality: Option<QualityCheck>,
}

/// How predictions are judged against ground truth.
#[derive(Debug, Clone)]
pub struct QualityCheck {
    pub problem_type: ProblemType,
    /// The label column of `window.csv`.
    pub label: String,
    /// SageMaker model-quality constraints by metric.
    pub constraints: serde_json::Map<String, Value>,
    /// The positive class of a binary classifier (default `1`).
    pub positive_label: Option<String>,
}

/// The window's data: its profile and, for an endpoint's capture, the
/// decoded exchanges and the uploaded labels by inference id.
#[derive(Debug)]
pub struct Window {
    pub profile: DatasetProfile,
    pub exchanges: Vec<CapturedExchange>,
    pub labels: HashMap<String, String>,
}

impl Window {
    /// A data set's window: a profile without exchanges.
    pub fn data_set(profile: DatasetProfile) -> Window {
        Window {
            profile,
            exchanges: Vec::new(),
            labels: HashMap::new(),
        }
    }
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

/// Runs `checks` on `window` against `baseline`.
pub fn evaluate(
    checks: &Checks,
    baseline: &Baseline,
    window: &Window,
) -> Result<Output, EngineError> {
    let profile = &window.profile;
    let current = Statistics::from_profile(profile);
    let mut violations = Vec::new();
    if checks.data_quality && profile.item_count > 0 {
        violations.extend(checks::data_quality(baseline, profile));
    }
    let (drift, distributions) = match &checks.drift {
        Some(config) if profile.item_count > 0 => {
            let (d, distributions) = checks::drift(&baseline.statistics, &current, config);
            violations.extend(checks::dataset_drift_violation(&d, config));
            (Some(d), distributions)
        }
        _ => (None, Vec::new()),
    };
    let mut quality = None;
    let mut quality_metrics = None;
    if let Some(mq) = &checks.model_quality {
        match checks::model_quality(mq, &window.exchanges, &window.labels)? {
            None => {
                quality = Some(
                    json!({"joined": 0, "message": "no captured prediction has an uploaded label yet"}),
                );
            }
            Some(checks::Judged {
                joined,
                metrics,
                violations: broken,
            }) => {
                violations.extend(broken);
                quality = Some(json!({"joined": joined, "metrics": metrics}));
                quality_metrics = Some(metrics);
            }
        }
    }
    let mut files: Vec<(&'static str, Vec<u8>)> = vec![
        ("statistics.json", pretty(&current)),
        (
            "constraint_violations.json",
            pretty(&json!({ "violations": violations })),
        ),
        (
            "drift.json",
            pretty(&serde_json::to_value(&drift).expect("drift serializes")),
        ),
    ];
    if let Some(q) = &quality {
        files.push(("model_quality.json", pretty(q)));
    }
    // The window's rows (and labels) as CSV, for retraining on what the endpoint saw.
    if !window.exchanges.is_empty() {
        let label = checks.model_quality.as_ref().map(|m| m.label.as_str());
        let csv = window::window_csv(&baseline.columns(), label, window);
        files.push(("window.csv", csv.into_bytes()));
    }
    let report = render(&ReportInput {
        title: checks.title.clone(),
        window: checks.watches.clone(),
        rows: profile.item_count,
        baseline: baseline.source.clone(),
        drift: drift.clone(),
        distributions,
        violations: violations.iter().map(report_violation).collect(),
        quality: quality_metrics,
    });
    files.push(("report.html", report.into_bytes()));
    Ok(Output {
        rows: profile.item_count,
        baseline_source: baseline.source.clone(),
        drift: drift.as_ref().map_or(Value::Null, checks::drift_summary),
        violations,
        quality,
        files,
    })
}

fn pretty<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("JSON values serialize")
}

/// A violation as the report lists it.
fn report_violation(v: &Value) -> ReportViolation {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    ReportViolation {
        feature: text("feature_name"),
        check: text("constraint_check_type"),
        description: text("description"),
    }
}

#[cfg(test)]
mod tests;
