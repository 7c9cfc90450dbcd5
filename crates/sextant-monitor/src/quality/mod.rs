//! Model quality from predictions joined with ground truth, with SageMaker's metric names
//! and file shapes (`regression_metrics`, `binary_classification_metrics`,
//! `multiclass_classification_metrics`; each metric `{value, standard_deviation}`), its
//! constraints (`{threshold, comparison_operator}` under `<problem>_constraints`) and
//! their violations.

mod constraints;
mod formulas;
mod metric;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use self::formulas::{binary, multiclass, regression};

pub use constraints::{
    ComparisonOperator, Constraint, QualityConstraints, QualityViolation, check, suggest,
};
pub use metric::{
    BinaryMetrics, MIN_FOR_STD, Metric, MulticlassMetrics, PrecisionRecallCurve, QualityMetrics,
    RegressionMetrics, RocCurve, metric_names,
};

/// SageMaker's problem types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProblemType {
    Regression,
    BinaryClassification,
    MulticlassClassification,
}

/// A prediction or a label: a number, or a class name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Observation {
    Number(f64),
    Label(String),
}

impl Observation {
    /// The class this observation names: numbers and numeric strings compare as numbers
    /// (`1`, `1.0` and `"1"` are one class), other strings trimmed.
    fn key(&self) -> ClassKey<'_> {
        let number = |x: f64| ClassKey::Number(if x == 0.0 { 0 } else { x.to_bits() });
        match self {
            Observation::Number(x) => number(*x),
            Observation::Label(s) => match s.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => number(x),
                _ => ClassKey::Text(s.trim()),
            },
        }
    }

    fn number(&self) -> Option<f64> {
        let x = match self {
            Observation::Number(x) => *x,
            Observation::Label(s) => s.trim().parse().ok()?,
        };
        x.is_finite().then_some(x)
    }

    fn text(&self) -> String {
        match self {
            Observation::Number(x) => format!("{x}"),
            Observation::Label(s) => s.clone(),
        }
    }
}

impl From<f64> for Observation {
    fn from(x: f64) -> Self {
        Observation::Number(x)
    }
}

impl From<&str> for Observation {
    fn from(s: &str) -> Self {
        Observation::Label(s.to_string())
    }
}

impl From<String> for Observation {
    fn from(s: String) -> Self {
        Observation::Label(s)
    }
}

/// A class without allocating: a number's bits (−0 folded into 0) or trimmed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ClassKey<'a> {
    Number(u64),
    Text(&'a str),
}

impl ClassKey<'_> {
    fn name(self) -> String {
        match self {
            ClassKey::Number(bits) => format!("{}", f64::from_bits(bits)),
            ClassKey::Text(s) => s.to_string(),
        }
    }
}

/// The distinct classes of the labels and predictions, sorted.
fn classes(pairs: &[Pair]) -> Vec<ClassKey<'_>> {
    let set: std::collections::BTreeSet<ClassKey<'_>> = pairs
        .iter()
        .flat_map(|p| [p.label.key(), p.prediction.key()])
        .collect();
    set.into_iter().collect()
}

/// One prediction joined with its ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub prediction: Observation,
    pub label: Observation,
    /// The positive class's probability (binary), when the model gave one.
    pub probability: Option<f64>,
}

/// What went wrong computing or checking model quality.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QualityError {
    #[error("no prediction/label pairs to compute model quality from")]
    Empty,
    #[error("pair {index}: {field} '{value}' is not a finite number (regression)")]
    NotANumber {
        index: usize,
        field: &'static str,
        value: String,
    },
    #[error("binary classification needs at most two classes, found {classes:?}")]
    NotBinary { classes: Vec<String> },
    #[error("the positive class '{positive}' is not one of the classes {classes:?}")]
    NoPositive {
        positive: String,
        classes: Vec<String>,
    },
    #[error("pair {index}: probability {value} is not in [0, 1]")]
    BadProbability { index: usize, value: f64 },
    #[error("model-quality constraint '{metric}': {reason}")]
    BadConstraint { metric: String, reason: String },
    #[error(
        "model-quality constraints are for {constraints:?} but the metrics are for {metrics:?}"
    )]
    ProblemMismatch {
        metrics: ProblemType,
        constraints: ProblemType,
    },
    #[error("model-quality constraints name no problem type (regression_constraints, …)")]
    NoProblemType,
    #[error("model-quality constraint on '{metric}': the metric was not computed ({why})")]
    Missing { metric: String, why: &'static str },
}

/// The pairs, checked and reduced to what each problem type computes on.
enum Prepared {
    Regression(Vec<(f64, f64)>),
    /// (predicted positive, actually positive, probability).
    Binary(Vec<(bool, bool, Option<f64>)>),
    /// (label class, predicted class) as indices into the sorted class names.
    Multiclass(Vec<(usize, usize)>, Vec<String>),
}

/// The metrics of `pairs`. `positive` names the positive class of a binary problem
/// (`Observation::Number(1.0)` matches `1`, `1.0` and `"1"`); it is ignored otherwise.
pub fn metrics(
    problem: ProblemType,
    pairs: &[Pair],
    positive: &Observation,
) -> Result<QualityMetrics, QualityError> {
    if pairs.is_empty() {
        return Err(QualityError::Empty);
    }
    let prepared = prepare(problem, pairs, positive)?;
    let mut all = compute(&prepared, &(0..pairs.len()).collect::<Vec<_>>());
    if pairs.len() >= MIN_FOR_STD {
        let mut samples: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
        for seed in 0..5 {
            let subset = subsample(pairs.len(), seed);
            for (k, m) in compute(&prepared, &subset).scalars() {
                samples.entry(k).or_default().push(m.value);
            }
        }
        all.for_each_mut(|k, m| {
            if let Some(s) = samples.get(k).filter(|s| s.len() == 5) {
                m.standard_deviation = Some(sample_std(s));
            }
        });
    }
    Ok(all)
}

/// The metrics' SageMaker default positive class, `1`.
pub fn default_positive() -> Observation {
    Observation::Number(1.0)
}

fn prepare(
    problem: ProblemType,
    pairs: &[Pair],
    positive: &Observation,
) -> Result<Prepared, QualityError> {
    match problem {
        ProblemType::Regression => pairs
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let num = |o: &Observation, field| {
                    o.number().ok_or_else(|| QualityError::NotANumber {
                        index,
                        field,
                        value: o.text(),
                    })
                };
                Ok((num(&p.prediction, "prediction")?, num(&p.label, "label")?))
            })
            .collect::<Result<_, _>>()
            .map(Prepared::Regression),
        ProblemType::BinaryClassification => {
            let classes = classes(pairs);
            let names = || classes.iter().map(|k| k.name()).collect::<Vec<_>>();
            if classes.len() > 2 {
                return Err(QualityError::NotBinary { classes: names() });
            }
            let key = positive.key();
            if classes.len() == 2 && !classes.contains(&key) {
                return Err(QualityError::NoPositive {
                    positive: key.name(),
                    classes: names(),
                });
            }
            pairs
                .iter()
                .enumerate()
                .map(|(index, p)| {
                    if let Some(value) = p.probability
                        && !(0.0..=1.0).contains(&value)
                    {
                        return Err(QualityError::BadProbability { index, value });
                    }
                    Ok((
                        p.prediction.key() == key,
                        p.label.key() == key,
                        p.probability,
                    ))
                })
                .collect::<Result<_, _>>()
                .map(Prepared::Binary)
        }
        ProblemType::MulticlassClassification => {
            let classes = classes(pairs);
            let at = |o: &Observation| classes.binary_search(&o.key()).unwrap_or(0);
            let v = pairs
                .iter()
                .map(|p| (at(&p.label), at(&p.prediction)))
                .collect();
            let classes = classes.into_iter().map(ClassKey::name).collect();
            Ok(Prepared::Multiclass(v, classes))
        }
    }
}

/// `floor(0.8 n)` distinct indices, from a seeded partial Fisher–Yates shuffle
/// (splitmix64), so reruns give the same standard deviations.
fn subsample(n: usize, seed: u64) -> Vec<usize> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(seed + 1);
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut idx: Vec<usize> = (0..n).collect();
    let k = n * 4 / 5;
    for i in 0..k {
        let j = i + (next() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

fn sample_std(s: &[f64]) -> f64 {
    let n = s.len() as f64;
    let m = s.iter().sum::<f64>() / n;
    (s.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
}

fn compute(prepared: &Prepared, subset: &[usize]) -> QualityMetrics {
    match prepared {
        Prepared::Regression(xy) => {
            QualityMetrics::Regression(regression(subset.iter().map(|&i| xy[i])))
        }
        Prepared::Binary(v) => QualityMetrics::BinaryClassification(binary(
            &subset.iter().map(|&i| v[i]).collect::<Vec<_>>(),
        )),
        Prepared::Multiclass(v, classes) => QualityMetrics::MulticlassClassification(multiclass(
            &subset.iter().map(|&i| v[i]).collect::<Vec<_>>(),
            classes,
        )),
    }
}
