//! The three kinds of check a monitor runs, each turning what it finds into
//! SageMaker-shaped violations (`feature_name`, `constraint_check_type`,
//! `description`).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Baseline, QualityCheck};
use crate::drift::{DatasetDrift, DriftConfig, FeatureDrift, NumericSample, dataset_drift};
use crate::profile::DatasetProfile;
use crate::quality::{
    Observation, Pair, ProblemType, QualityConstraints, QualityError, QualityMetrics,
    check as quality_check, default_positive, metrics,
};
use crate::read::{CapturedExchange, Prediction};
use crate::report::Distribution;
use crate::sagemaker::{Statistics, check};

fn violation(feature: &str, check: &str, description: String) -> Value {
    json!({"feature_name": feature, "constraint_check_type": check, "description": description})
}

/// SageMaker's data-quality checks of the window's profile.
pub(super) fn data_quality(baseline: &Baseline, profile: &DatasetProfile) -> Vec<Value> {
    check(&baseline.statistics, &baseline.constraints, profile)
        .violations
        .into_iter()
        .map(|v| violation(&v.feature_name, &v.constraint_check_type, v.description))
        .collect()
}

/// Drift of every feature the baseline and the window share (numbers with
/// numbers, categories with categories), and the distributions the report draws.
pub(super) fn drift(
    base: &Statistics,
    current: &Statistics,
    config: &DriftConfig,
) -> (DatasetDrift, Vec<(String, Distribution)>) {
    let mut features = Vec::new();
    let mut distributions = Vec::new();
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
                config,
            ));
            let d = Distribution::Numeric {
                baseline: bc,
                window: cc,
            };
            distributions.push((b.name.clone(), d));
        } else if !b.is_numeric() && !c.is_numeric() {
            let (bc, cc) = (b.categories(), c.categories());
            features.push(FeatureDrift::categorical(&b.name, &bc, &cc, config));
            let d = Distribution::Categorical {
                baseline: bc,
                window: cc,
            };
            distributions.push((b.name.clone(), d));
        }
    }
    (dataset_drift(features, config), distributions)
}

/// The violation of a dataset that drifted, naming the features that did.
pub(super) fn dataset_drift_violation(d: &DatasetDrift, config: &DriftConfig) -> Option<Value> {
    d.drifted.then(|| {
        violation(
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
        )
    })
}

/// The drift part of a run's summary.
pub(super) fn drift_summary(d: &DatasetDrift) -> Value {
    json!({
        "drifted": d.drifted,
        "share": d.share,
        "drifted_features": d.drifted_features,
        "features": d.features.iter().map(|f| json!({
            "name": f.name, "method": f.method.as_str(), "statistic": f.statistic,
            "p_value": f.p_value, "adjusted_p_value": f.adjusted_p_value, "drifted": f.drifted,
        })).collect::<Vec<_>>(),
    })
}

/// What model quality found: metrics of the joined pairs and the
/// constraints they break.
pub(super) struct Judged {
    pub joined: usize,
    pub metrics: QualityMetrics,
    pub violations: Vec<Value>,
}

/// Predictions joined with labels on the inference id, their metrics, and
/// the model-quality constraints they break; `None` while no captured
/// prediction has a label.
pub(super) fn model_quality(
    mq: &QualityCheck,
    exchanges: &[CapturedExchange],
    labels: &HashMap<String, String>,
) -> Result<Option<Judged>, QualityError> {
    let problem = mq.problem_type;
    let positive = mq
        .positive_label
        .as_deref()
        .map_or_else(default_positive, parse_label);
    let pairs = join(problem, exchanges, labels);
    if pairs.is_empty() {
        return Ok(None);
    }
    let m = metrics(problem, &pairs, &positive)?;
    let mut violations = Vec::new();
    if !mq.constraints.is_empty() {
        let c = QualityConstraints::from_map(problem, &mq.constraints)?;
        for v in quality_check(&m, &c)? {
            violations.push(violation(
                &v.metric_name,
                "model_quality_check",
                v.description,
            ));
        }
    }
    Ok(Some(Judged {
        joined: pairs.len(),
        metrics: m,
        violations,
    }))
}

/// The (prediction, label) pairs of the exchanges of one row that have a label.
fn join(
    problem: ProblemType,
    exchanges: &[CapturedExchange],
    labels: &HashMap<String, String>,
) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for ex in exchanges {
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
    pairs
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
