//! Model-quality constraints in SageMaker's `constraints.json` shape, the
//! ones suggested from a baseline, and checking metrics against them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::metric::{QualityMetrics, metric_names};
use super::{ProblemType, QualityError};

/// SageMaker's comparison operators: a metric *meeting* the comparison is a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    LessThanThreshold,
    GreaterThanThreshold,
    LessThanOrEqualToThreshold,
    GreaterThanOrEqualToThreshold,
}

impl ComparisonOperator {
    /// Whether `value` breaks a constraint with this operator and `threshold`.
    pub fn violated(self, value: f64, threshold: f64) -> bool {
        match self {
            ComparisonOperator::LessThanThreshold => value < threshold,
            ComparisonOperator::GreaterThanThreshold => value > threshold,
            ComparisonOperator::LessThanOrEqualToThreshold => value <= threshold,
            ComparisonOperator::GreaterThanOrEqualToThreshold => value >= threshold,
        }
    }

    /// SageMaker's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ComparisonOperator::LessThanThreshold => "LessThanThreshold",
            ComparisonOperator::GreaterThanThreshold => "GreaterThanThreshold",
            ComparisonOperator::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
            ComparisonOperator::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
        }
    }
}

/// One model-quality constraint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub threshold: f64,
    pub comparison_operator: ComparisonOperator,
}

/// SageMaker's model-quality `constraints.json`: `{"version": 0.0,
/// "<problem>_constraints": {metric: {threshold, comparison_operator}}}`, exactly one
/// problem key set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityConstraints {
    #[serde(default)]
    pub version: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression_constraints: Option<BTreeMap<String, Constraint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_classification_constraints: Option<BTreeMap<String, Constraint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiclass_classification_constraints: Option<BTreeMap<String, Constraint>>,
}

const PROBLEM_KEYS: [(&str, ProblemType); 3] = [
    ("regression_constraints", ProblemType::Regression),
    (
        "binary_classification_constraints",
        ProblemType::BinaryClassification,
    ),
    (
        "multiclass_classification_constraints",
        ProblemType::MulticlassClassification,
    ),
];

impl QualityConstraints {
    /// Constraints of one problem type.
    pub fn new(problem: ProblemType, constraints: BTreeMap<String, Constraint>) -> Self {
        let mut out = QualityConstraints::default();
        *out.slot(problem) = Some(constraints);
        out
    }

    fn slot(&mut self, problem: ProblemType) -> &mut Option<BTreeMap<String, Constraint>> {
        match problem {
            ProblemType::Regression => &mut self.regression_constraints,
            ProblemType::BinaryClassification => &mut self.binary_classification_constraints,
            ProblemType::MulticlassClassification => {
                &mut self.multiclass_classification_constraints
            }
        }
    }

    /// Reads a plain map `{"mae": {"threshold": 1.0, "comparison_operator":
    /// "GreaterThanThreshold"}}` for `problem`, or SageMaker's whole file; every metric
    /// name must be one of the problem type's.
    pub fn from_map(
        problem: ProblemType,
        map: &Map<String, Value>,
    ) -> Result<QualityConstraints, QualityError> {
        let inner = PROBLEM_KEYS
            .iter()
            .find_map(|(k, _)| map.get(*k).map(|v| (*k, v)));
        let inner = match inner {
            Some((key, v)) => {
                let found = PROBLEM_KEYS.iter().find(|(k, _)| *k == key).map(|p| p.1);
                if found != Some(problem) {
                    return Err(QualityError::ProblemMismatch {
                        metrics: problem,
                        constraints: found.unwrap_or(problem),
                    });
                }
                v.as_object().ok_or_else(|| QualityError::BadConstraint {
                    metric: key.to_string(),
                    reason: "is not an object".into(),
                })?
            }
            None => map,
        };
        let names = metric_names(problem);
        let mut constraints = BTreeMap::new();
        for (name, v) in inner {
            if name == "version" {
                continue;
            }
            if !names.contains(&name.as_str()) {
                return Err(QualityError::BadConstraint {
                    metric: name.clone(),
                    reason: format!("not a {problem:?} metric (one of {})", names.join(", ")),
                });
            }
            let c: Constraint =
                serde_json::from_value(v.clone()).map_err(|e| QualityError::BadConstraint {
                    metric: name.clone(),
                    reason: e.to_string(),
                })?;
            if !c.threshold.is_finite() {
                return Err(QualityError::BadConstraint {
                    metric: name.clone(),
                    reason: "threshold is not a finite number".into(),
                });
            }
            constraints.insert(name.clone(), c);
        }
        Ok(QualityConstraints::new(problem, constraints))
    }

    /// The problem type and its constraints.
    pub fn problem(&self) -> Result<(ProblemType, &BTreeMap<String, Constraint>), QualityError> {
        let set: Vec<(ProblemType, &BTreeMap<String, Constraint>)> = [
            (ProblemType::Regression, &self.regression_constraints),
            (
                ProblemType::BinaryClassification,
                &self.binary_classification_constraints,
            ),
            (
                ProblemType::MulticlassClassification,
                &self.multiclass_classification_constraints,
            ),
        ]
        .into_iter()
        .filter_map(|(p, c)| c.as_ref().map(|c| (p, c)))
        .collect();
        match set.as_slice() {
            [one] => Ok(*one),
            _ => Err(QualityError::NoProblemType),
        }
    }
}

/// Errors grow downward: a window is worse when these exceed the baseline.
const LOWER_IS_BETTER: &[&str] = &[
    "mae",
    "mse",
    "rmse",
    "false_positive_rate",
    "false_negative_rate",
];

/// Constraints suggested from a baseline's metrics, as SageMaker suggests them: every
/// metric but the best-constant baselines, the threshold at the baseline's value, a
/// violation when the window is worse (errors above it, scores below it). Loosen the
/// thresholds by hand when the window's noise (see `standard_deviation`) matters.
pub fn suggest(metrics: &QualityMetrics) -> QualityConstraints {
    let constraints = metrics
        .scalars()
        .into_iter()
        .filter(|(k, _)| !k.ends_with("_best_constant_classifier"))
        .map(|(k, m)| {
            let comparison_operator = if LOWER_IS_BETTER.contains(&k) {
                ComparisonOperator::GreaterThanThreshold
            } else {
                ComparisonOperator::LessThanThreshold
            };
            let c = Constraint {
                threshold: m.value,
                comparison_operator,
            };
            (k.to_string(), c)
        })
        .collect();
    QualityConstraints::new(metrics.problem(), constraints)
}

/// A broken model-quality constraint, as in SageMaker's `constraint_violations.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityViolation {
    pub metric_name: String,
    pub constraint_check_type: ComparisonOperator,
    pub description: String,
}

/// The constraints `metrics` break. Constraints for another problem type, or on a metric
/// that could not be computed (AUC without probabilities), are errors rather than silent
/// passes.
pub fn check(
    metrics: &QualityMetrics,
    constraints: &QualityConstraints,
) -> Result<Vec<QualityViolation>, QualityError> {
    let (problem, constraints) = constraints.problem()?;
    if problem != metrics.problem() {
        return Err(QualityError::ProblemMismatch {
            metrics: metrics.problem(),
            constraints: problem,
        });
    }
    let mut out = Vec::new();
    for (name, c) in constraints {
        let Some(m) = metrics.get(name) else {
            return Err(QualityError::Missing {
                metric: name.clone(),
                why: if name == "auc" {
                    "AUC needs a probability on every pair and both classes"
                } else {
                    "not a metric of this problem type"
                },
            });
        };
        if c.comparison_operator.violated(m.value, c.threshold) {
            let sd = m
                .standard_deviation
                .map_or(String::new(), |sd| format!(" +/- {sd}"));
            out.push(QualityViolation {
                metric_name: name.clone(),
                constraint_check_type: c.comparison_operator,
                description: format!(
                    "Metric {name} with {}{sd} was {} '{}'",
                    m.value,
                    c.comparison_operator.as_str(),
                    c.threshold
                ),
            });
        }
    }
    Ok(out)
}
