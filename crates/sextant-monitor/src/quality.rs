//! Model quality from predictions joined with ground truth, with SageMaker's metric names
//! and file shapes (`regression_metrics`, `binary_classification_metrics`,
//! `multiclass_classification_metrics`; each metric `{value, standard_deviation}`), its
//! constraints (`{threshold, comparison_operator}` under `<problem>_constraints`) and
//! their violations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

/// One metric: its value on all pairs, and the standard deviation over five seeded 80 %
/// subsamples when there are at least [`MIN_FOR_STD`] pairs (SageMaker's rule).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub value: f64,
    pub standard_deviation: Option<f64>,
}

impl Metric {
    fn of(value: f64) -> Metric {
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

    fn for_each_mut(&mut self, mut f: impl FnMut(&'static str, &mut Metric)) {
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

/// 0 when the denominator is (sklearn's `zero_division=0`).
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

fn f_beta(precision: f64, recall: f64, beta: f64) -> f64 {
    let b2 = beta * beta;
    ratio((1.0 + b2) * precision * recall, b2 * precision + recall)
}

fn regression(xy: impl Iterator<Item = (f64, f64)>) -> RegressionMetrics {
    let xy: Vec<(f64, f64)> = xy.collect();
    let n = xy.len() as f64;
    let mean_y = xy.iter().map(|(_, y)| y).sum::<f64>() / n;
    let mae = xy.iter().map(|(p, y)| (p - y).abs()).sum::<f64>() / n;
    let mse = xy.iter().map(|(p, y)| (p - y) * (p - y)).sum::<f64>() / n;
    let ss_tot: f64 = xy.iter().map(|(_, y)| (y - mean_y) * (y - mean_y)).sum();
    // Constant labels: sklearn's `force_finite` — 1 for a perfect fit, else 0.
    let r2 = if ss_tot > 0.0 {
        1.0 - mse * n / ss_tot
    } else if mse == 0.0 {
        1.0
    } else {
        0.0
    };
    RegressionMetrics {
        mae: Metric::of(mae),
        mse: Metric::of(mse),
        rmse: Metric::of(mse.sqrt()),
        r2: Metric::of(r2),
    }
}

/// ROC AUC as the Mann–Whitney rank statistic (ties count half), sklearn's value.
fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let mut v = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += avg_rank * v[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// ROC and precision–recall points at thresholds 1.00, 0.99, …, 0.00 in one pass.
fn curves(scored: &[(f64, bool)]) -> (RocCurve, PrecisionRecallCurve) {
    // counts[k]: pairs whose score is ≥ k/100 but not ≥ (k+1)/100.
    let mut counts = [[0.0f64; 2]; 101];
    for &(s, actual) in scored {
        let mut k = ((s * 100.0).floor() as usize).min(100);
        while k < 100 && s >= (k + 1) as f64 / 100.0 {
            k += 1;
        }
        while k > 0 && s < k as f64 / 100.0 {
            k -= 1;
        }
        counts[k][usize::from(actual)] += 1.0;
    }
    let positives: f64 = counts.iter().map(|c| c[1]).sum();
    let negatives: f64 = counts.iter().map(|c| c[0]).sum();
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut roc, mut pr) = (
        RocCurve {
            false_positive_rates: Vec::with_capacity(101),
            true_positive_rates: Vec::with_capacity(101),
        },
        PrecisionRecallCurve {
            precisions: Vec::with_capacity(101),
            recalls: Vec::with_capacity(101),
        },
    );
    for c in counts.iter().rev() {
        fp += c[0];
        tp += c[1];
        roc.false_positive_rates.push(ratio(fp, negatives));
        roc.true_positive_rates.push(ratio(tp, positives));
        pr.precisions
            .push(if tp + fp == 0.0 { 1.0 } else { tp / (tp + fp) });
        pr.recalls.push(ratio(tp, positives));
    }
    (roc, pr)
}

fn binary(v: &[(bool, bool, Option<f64>)]) -> BinaryMetrics {
    let (mut tp, mut fp, mut tn, mut fneg) = (0u64, 0u64, 0u64, 0u64);
    for &(pred, actual, _) in v {
        match (pred, actual) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fneg += 1,
        }
    }
    let (tpf, fpf, tnf, fnf) = (tp as f64, fp as f64, tn as f64, fneg as f64);
    let n = tpf + fpf + tnf + fnf;
    let precision = ratio(tpf, tpf + fpf);
    let recall = ratio(tpf, tpf + fnf);
    // Always positive: precision = positive share, recall = 1; always negative scores 0
    // on both, so "always positive" is the best constant for them and for every F.
    let share = ratio(tpf + fnf, n);
    let bc_recall = if tpf + fnf > 0.0 { 1.0 } else { 0.0 };
    let scored: Option<Vec<(f64, bool)>> =
        v.iter().map(|&(_, actual, p)| Some((p?, actual))).collect();
    let auc_value = scored.as_deref().and_then(auc);
    let curves = scored
        .as_deref()
        .filter(|_| auc_value.is_some())
        .map(curves);
    let m = Metric::of;
    let matrix = |a: u64, b: u64| BTreeMap::from([("1".to_string(), a), ("0".to_string(), b)]);
    BinaryMetrics {
        recall: m(recall),
        precision: m(precision),
        accuracy: m(ratio(tpf + tnf, n)),
        recall_best_constant_classifier: m(bc_recall),
        precision_best_constant_classifier: m(share),
        accuracy_best_constant_classifier: m(share.max(1.0 - share)),
        true_positive_rate: m(recall),
        true_negative_rate: m(ratio(tnf, tnf + fpf)),
        false_positive_rate: m(ratio(fpf, tnf + fpf)),
        false_negative_rate: m(ratio(fnf, tpf + fnf)),
        f0_5: m(f_beta(precision, recall, 0.5)),
        f1: m(f_beta(precision, recall, 1.0)),
        f2: m(f_beta(precision, recall, 2.0)),
        f0_5_best_constant_classifier: m(f_beta(share, bc_recall, 0.5)),
        f1_best_constant_classifier: m(f_beta(share, bc_recall, 1.0)),
        f2_best_constant_classifier: m(f_beta(share, bc_recall, 2.0)),
        confusion_matrix: BTreeMap::from([
            ("1".to_string(), matrix(tp, fneg)),
            ("0".to_string(), matrix(fp, tn)),
        ]),
        auc: auc_value.map(m),
        receiver_operating_characteristic_curve: curves.as_ref().map(|c| c.0.clone()),
        precision_recall_curve: curves.map(|c| c.1),
    }
}

fn multiclass(v: &[(usize, usize)], classes: &[String]) -> MulticlassMetrics {
    let k = classes.len();
    let mut matrix = vec![vec![0u64; k]; k];
    for &(label, pred) in v {
        matrix[label][pred] += 1;
    }
    let n = v.len() as f64;
    let support: Vec<f64> = (0..k)
        .map(|c| matrix[c].iter().sum::<u64>() as f64)
        .collect();
    let predicted: Vec<f64> = (0..k)
        .map(|c| matrix.iter().map(|row| row[c]).sum::<u64>() as f64)
        .collect();
    let weighted = |f: &dyn Fn(f64, f64) -> f64| -> f64 {
        (0..k)
            .map(|c| {
                let tp = matrix[c][c] as f64;
                ratio(support[c], n) * f(ratio(tp, predicted[c]), ratio(tp, support[c]))
            })
            .sum()
    };
    let correct: f64 = (0..k).map(|c| matrix[c][c] as f64).sum();
    // Always predicting the most frequent label c (share s): its precision is s and its
    // recall 1, every other class scores 0.
    let s = ratio(support.iter().copied().fold(0.0, f64::max), n);
    let m = Metric::of;
    MulticlassMetrics {
        accuracy: m(ratio(correct, n)),
        weighted_recall: m(weighted(&|_, r| r)),
        weighted_precision: m(weighted(&|p, _| p)),
        weighted_f0_5: m(weighted(&|p, r| f_beta(p, r, 0.5))),
        weighted_f1: m(weighted(&|p, r| f_beta(p, r, 1.0))),
        weighted_f2: m(weighted(&|p, r| f_beta(p, r, 2.0))),
        accuracy_best_constant_classifier: m(s),
        weighted_recall_best_constant_classifier: m(s),
        weighted_precision_best_constant_classifier: m(s * s),
        weighted_f0_5_best_constant_classifier: m(s * f_beta(s, 1.0, 0.5)),
        weighted_f1_best_constant_classifier: m(s * f_beta(s, 1.0, 1.0)),
        weighted_f2_best_constant_classifier: m(s * f_beta(s, 1.0, 2.0)),
        confusion_matrix: (0..k)
            .filter(|&a| support[a] > 0.0)
            .map(|a| {
                let row = (0..k)
                    .filter(|&b| matrix[a][b] > 0)
                    .map(|b| (classes[b].clone(), matrix[a][b]))
                    .collect();
                (classes[a].clone(), row)
            })
            .collect(),
    }
}

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
