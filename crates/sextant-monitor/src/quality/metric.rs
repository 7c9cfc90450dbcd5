//! The metrics' shapes as SageMaker writes them: one [`Metric`] per name,
//! grouped by problem type, the names listed once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ProblemType;

/// One metric: its value on all pairs, and the standard deviation over five seeded 80 %
/// subsamples when there are at least [`MIN_FOR_STD`] pairs (SageMaker's rule).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub value: f64,
    pub standard_deviation: Option<f64>,
}

impl Metric {
    pub(super) fn of(value: f64) -> Metric {
        Metric {
            value,
            standard_deviation: None,
        }
    }
}

/// Below this many pairs no standard deviation is given.
pub const MIN_FOR_STD: usize = 200;

/// A struct of [`Metric`] fields plus other fields, with the metric names listed once.
macro_rules! metrics_struct {
    ($(#[$doc:meta])* $name:ident { $($field:ident),* $(,)? } $($(#[$xm:meta])* $xf:ident: $xt:ty),* $(,)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $(pub $field: Metric,)*
            $($(#[$xm])* pub $xf: $xt,)*
        }

        impl $name {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            fn fixed(&self) -> Vec<(&'static str, &Metric)> {
                vec![$((stringify!($field), &self.$field)),*]
            }

            fn fixed_mut(&mut self) -> Vec<(&'static str, &mut Metric)> {
                vec![$((stringify!($field), &mut self.$field)),*]
            }
        }
    };
}

metrics_struct! {
    /// SageMaker's regression metrics.
    RegressionMetrics { mae, mse, rmse, r2 }
}

metrics_struct! {
    /// SageMaker's binary-classification metrics. The best constant classifier of each
    /// metric is the better of "always positive" and "always negative" for that metric.
    BinaryMetrics {
        recall, precision, accuracy,
        recall_best_constant_classifier, precision_best_constant_classifier,
        accuracy_best_constant_classifier,
        true_positive_rate, true_negative_rate, false_positive_rate, false_negative_rate,
        f0_5, f1, f2,
        f0_5_best_constant_classifier, f1_best_constant_classifier, f2_best_constant_classifier,
    }
    /// Actual class → predicted class → count, with classes `"1"` (positive) and `"0"`.
    confusion_matrix: BTreeMap<String, BTreeMap<String, u64>>,
    /// From the probabilities, when every pair has one and both classes occur.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auc: Option<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receiver_operating_characteristic_curve: Option<RocCurve>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    precision_recall_curve: Option<PrecisionRecallCurve>,
}

metrics_struct! {
    /// SageMaker's multiclass metrics (weights: each class's share of the labels). The
    /// best constant classifier predicts the most frequent label.
    MulticlassMetrics {
        accuracy, weighted_recall, weighted_precision, weighted_f0_5, weighted_f1, weighted_f2,
        accuracy_best_constant_classifier, weighted_recall_best_constant_classifier,
        weighted_precision_best_constant_classifier, weighted_f0_5_best_constant_classifier,
        weighted_f1_best_constant_classifier, weighted_f2_best_constant_classifier,
    }
    /// Actual class → predicted class → count.
    confusion_matrix: BTreeMap<String, BTreeMap<String, u64>>,
}

/// ROC points at the probability thresholds 1.00, 0.99, …, 0.00 (positive when ≥).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    pub false_positive_rates: Vec<f64>,
    pub true_positive_rates: Vec<f64>,
}

/// Precision and recall at the same thresholds (precision 1 where nothing is positive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecallCurve {
    pub precisions: Vec<f64>,
    pub recalls: Vec<f64>,
}

/// A model-quality report in SageMaker's shape: `{"regression_metrics": {...}}` etc.
// One value per monitor run, never held in bulk: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QualityMetrics {
    #[serde(rename = "regression_metrics")]
    Regression(RegressionMetrics),
    #[serde(rename = "binary_classification_metrics")]
    BinaryClassification(BinaryMetrics),
    #[serde(rename = "multiclass_classification_metrics")]
    MulticlassClassification(MulticlassMetrics),
}

impl QualityMetrics {
    /// The problem type these metrics are for.
    pub fn problem(&self) -> ProblemType {
        match self {
            QualityMetrics::Regression(_) => ProblemType::Regression,
            QualityMetrics::BinaryClassification(_) => ProblemType::BinaryClassification,
            QualityMetrics::MulticlassClassification(_) => ProblemType::MulticlassClassification,
        }
    }

    /// Every scalar metric by name, in SageMaker's order.
    pub fn scalars(&self) -> Vec<(&'static str, Metric)> {
        let mut out: Vec<(&'static str, Metric)> = match self {
            QualityMetrics::Regression(m) => m.fixed().into_iter().map(|(k, v)| (k, *v)).collect(),
            QualityMetrics::BinaryClassification(m) => {
                m.fixed().into_iter().map(|(k, v)| (k, *v)).collect()
            }
            QualityMetrics::MulticlassClassification(m) => {
                m.fixed().into_iter().map(|(k, v)| (k, *v)).collect()
            }
        };
        if let QualityMetrics::BinaryClassification(BinaryMetrics { auc: Some(a), .. }) = self {
            out.push(("auc", *a));
        }
        out
    }

    /// One scalar metric.
    pub fn get(&self, name: &str) -> Option<Metric> {
        self.scalars()
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, m)| m)
    }

    pub(super) fn for_each_mut(&mut self, mut f: impl FnMut(&'static str, &mut Metric)) {
        match self {
            QualityMetrics::Regression(m) => m.fixed_mut().into_iter().for_each(|(k, v)| f(k, v)),
            QualityMetrics::BinaryClassification(m) => {
                m.fixed_mut().into_iter().for_each(|(k, v)| f(k, v));
                if let Some(a) = m.auc.as_mut() {
                    f("auc", a);
                }
            }
            QualityMetrics::MulticlassClassification(m) => {
                m.fixed_mut().into_iter().for_each(|(k, v)| f(k, v))
            }
        }
    }
}

/// The scalar metric names a problem type has.
pub fn metric_names(problem: ProblemType) -> Vec<&'static str> {
    match problem {
        ProblemType::Regression => RegressionMetrics::NAMES.to_vec(),
        ProblemType::BinaryClassification => {
            let mut v = BinaryMetrics::NAMES.to_vec();
            v.push("auc");
            v
        }
        ProblemType::MulticlassClassification => MulticlassMetrics::NAMES.to_vec(),
    }
}
