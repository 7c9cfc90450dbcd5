//! Model quality from predictions joined with ground truth, with SageMaker's
//! metric names and file shapes (`regression_metrics`,
//! `binary_classification_metrics`, `multiclass_classification_metrics`;
//! each metric `{value, standard_deviation}`), its constraints
//! (`{threshold, comparison_operator}`) and their violations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// SageMaker's problem types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProblemType {
    Regression,
    BinaryClassification,
    MulticlassClassification,
}

/// One joined prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The prediction: a number (regression) or a class label.
    pub prediction: String,
    pub label: String,
    /// The positive class's probability, when the model gave one.
    pub probability: Option<f64>,
}

/// Below this many pairs no standard deviation is given (SageMaker's rule).
const MIN_FOR_STD: usize = 200;

fn number(s: &str) -> Option<f64> {
    s.trim().parse().ok()
}

/// The metrics of `pairs`: `{"<problem>_metrics": {name: {value, standard_deviation}}}`.
/// Pairs whose numbers do not parse (regression) are skipped and counted in `skipped`.
pub fn metrics(problem: ProblemType, pairs: &[Pair], positive: &str) -> Value {
    let all = compute(problem, pairs, positive);
    // Standard deviation: the metric on 5 seeded 80 % subsamples.
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    if pairs.len() >= MIN_FOR_STD {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5 {
            let subset: Vec<Pair> = pairs
                .iter()
                .filter(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state % 10 < 8
                })
                .cloned()
                .collect();
            for (k, v) in compute(problem, &subset, positive).scalars {
                samples.entry(k).or_default().push(v);
            }
        }
    }
    let mut out = Map::new();
    for (k, v) in &all.scalars {
        let sd = samples.get(k).filter(|s| s.len() == 5).map(|s| {
            let m = s.iter().sum::<f64>() / 5.0;
            (s.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 4.0).sqrt()
        });
        out.insert(
            k.clone(),
            json!({"value": finite(*v), "standard_deviation": sd.map(finite)}),
        );
    }
    for (k, v) in all.other {
        out.insert(k, v);
    }
    let key = match problem {
        ProblemType::Regression => "regression_metrics",
        ProblemType::BinaryClassification => "binary_classification_metrics",
        ProblemType::MulticlassClassification => "multiclass_classification_metrics",
    };
    json!({ key: out, "count": all.count, "skipped": all.skipped })
}

fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

struct Computed {
    scalars: Vec<(String, f64)>,
    other: Vec<(String, Value)>,
    count: usize,
    skipped: usize,
}

fn compute(problem: ProblemType, pairs: &[Pair], positive: &str) -> Computed {
    match problem {
        ProblemType::Regression => regression(pairs),
        ProblemType::BinaryClassification => binary(pairs, positive),
        ProblemType::MulticlassClassification => multiclass(pairs),
    }
}

fn regression(pairs: &[Pair]) -> Computed {
    let xy: Vec<(f64, f64)> = pairs
        .iter()
        .filter_map(|p| Some((number(&p.prediction)?, number(&p.label)?)))
        .collect();
    let n = xy.len() as f64;
    let mean_y = xy.iter().map(|(_, y)| y).sum::<f64>() / n;
    let mae = xy.iter().map(|(p, y)| (p - y).abs()).sum::<f64>() / n;
    let mse = xy.iter().map(|(p, y)| (p - y) * (p - y)).sum::<f64>() / n;
    let ss_tot = xy
        .iter()
        .map(|(_, y)| (y - mean_y) * (y - mean_y))
        .sum::<f64>();
    let r2 = if ss_tot > 0.0 {
        1.0 - mse * n / ss_tot
    } else {
        f64::NAN
    };
    Computed {
        scalars: vec![
            ("mae".into(), mae),
            ("mse".into(), mse),
            ("rmse".into(), mse.sqrt()),
            ("r2".into(), r2),
        ],
        other: vec![],
        count: xy.len(),
        skipped: pairs.len() - xy.len(),
    }
}

fn is_positive(s: &str, positive: &str) -> bool {
    let s = s.trim();
    s == positive
        || number(s).zip(number(positive)).is_some_and(|(a, b)| a == b)
        || (positive == "1" && s.eq_ignore_ascii_case("true"))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

fn f_beta(precision: f64, recall: f64, beta: f64) -> f64 {
    let b2 = beta * beta;
    ratio((1.0 + b2) * precision * recall, b2 * precision + recall)
}

/// ROC AUC by the rank statistic (ties count half), from probabilities.
fn auc(scored: &[(f64, bool)]) -> f64 {
    let mut v = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (pos, neg) = (
        v.iter().filter(|x| x.1).count() as f64,
        v.iter().filter(|x| !x.1).count() as f64,
    );
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
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
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn binary(pairs: &[Pair], positive: &str) -> Computed {
    let (mut tp, mut fp, mut tn, mut fneg) = (0.0, 0.0, 0.0, 0.0);
    let mut scored = Vec::new();
    for p in pairs {
        let (pred, actual) = (
            is_positive(&p.prediction, positive),
            is_positive(&p.label, positive),
        );
        match (pred, actual) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, false) => tn += 1.0,
            (false, true) => fneg += 1.0,
        }
        if let Some(prob) = p.probability {
            scored.push((prob, actual));
        }
    }
    let n = tp + fp + tn + fneg;
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    // The best constant classifier predicts the majority class.
    let positives = tp + fneg;
    let const_positive = positives >= n - positives;
    let (bc_precision, bc_recall) = if const_positive {
        (ratio(positives, n), 1.0)
    } else {
        (0.0, 0.0)
    };
    let bc_accuracy = ratio(positives.max(n - positives), n);
    let mut scalars = vec![
        ("accuracy".into(), ratio(tp + tn, n)),
        ("precision".into(), precision),
        ("recall".into(), recall),
        ("f0_5".into(), f_beta(precision, recall, 0.5)),
        ("f1".into(), f_beta(precision, recall, 1.0)),
        ("f2".into(), f_beta(precision, recall, 2.0)),
        ("true_positive_rate".into(), recall),
        ("true_negative_rate".into(), ratio(tn, tn + fp)),
        ("false_positive_rate".into(), ratio(fp, tn + fp)),
        ("false_negative_rate".into(), ratio(fneg, tp + fneg)),
        ("accuracy_best_constant_classifier".into(), bc_accuracy),
        ("precision_best_constant_classifier".into(), bc_precision),
        ("recall_best_constant_classifier".into(), bc_recall),
        (
            "f1_best_constant_classifier".into(),
            f_beta(bc_precision, bc_recall, 1.0),
        ),
    ];
    let mut other = vec![(
        "confusion_matrix".to_string(),
        json!({"1": {"1": tp, "0": fneg}, "0": {"1": fp, "0": tn}}),
    )];
    if scored.len() == pairs.len() && !scored.is_empty() {
        scalars.push(("auc".into(), auc(&scored)));
        // ROC points at 101 thresholds.
        let (fprs, tprs): (Vec<f64>, Vec<f64>) = (0..=100)
            .map(|i| {
                let t = 1.0 - i as f64 / 100.0;
                let (mut tp, mut fp) = (0.0, 0.0);
                for (s, a) in &scored {
                    if *s >= t {
                        if *a { tp += 1.0 } else { fp += 1.0 }
                    }
                }
                (ratio(fp, n - positives), ratio(tp, positives))
            })
            .unzip();
        other.push((
            "receiver_operating_characteristic_curve".into(),
            json!({"false_positive_rates": fprs, "true_positive_rates": tprs}),
        ));
    }
    Computed {
        scalars,
        other,
        count: pairs.len(),
        skipped: 0,
    }
}

fn multiclass(pairs: &[Pair]) -> Computed {
    let mut classes: Vec<String> = pairs
        .iter()
        .flat_map(|p| [p.label.clone(), p.prediction.clone()])
        .collect();
    classes.sort();
    classes.dedup();
    let mut matrix: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    for p in pairs {
        *matrix
            .entry(p.label.as_str())
            .or_default()
            .entry(p.prediction.as_str())
            .or_default() += 1.0;
    }
    let n = pairs.len() as f64;
    let correct = pairs.iter().filter(|p| p.label == p.prediction).count() as f64;
    let (mut wp, mut wr, mut wf1, mut wf05, mut wf2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for c in &classes {
        let support = pairs.iter().filter(|p| &p.label == c).count() as f64;
        let predicted = pairs.iter().filter(|p| &p.prediction == c).count() as f64;
        let tp = pairs
            .iter()
            .filter(|p| &p.label == c && &p.prediction == c)
            .count() as f64;
        let (pr, rc) = (ratio(tp, predicted), ratio(tp, support));
        let w = ratio(support, n);
        wp += w * pr;
        wr += w * rc;
        wf1 += w * f_beta(pr, rc, 1.0);
        wf05 += w * f_beta(pr, rc, 0.5);
        wf2 += w * f_beta(pr, rc, 2.0);
    }
    let majority = classes
        .iter()
        .map(|c| pairs.iter().filter(|p| &p.label == c).count() as f64)
        .fold(0.0, f64::max);
    Computed {
        scalars: vec![
            ("accuracy".into(), ratio(correct, n)),
            ("weighted_precision".into(), wp),
            ("weighted_recall".into(), wr),
            ("weighted_f0_5".into(), wf05),
            ("weighted_f1".into(), wf1),
            ("weighted_f2".into(), wf2),
            (
                "accuracy_best_constant_classifier".into(),
                ratio(majority, n),
            ),
        ],
        other: vec![("confusion_matrix".into(), json!(matrix))],
        count: pairs.len(),
        skipped: 0,
    }
}

/// Model-quality constraints: metric → `{threshold, comparison_operator}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityConstraints {
    pub metrics: BTreeMap<String, Threshold>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub threshold: f64,
    pub comparison_operator: String,
}

/// SageMaker's comparison operators; a metric *meeting* the comparison is a violation.
const OPERATORS: &[&str] = &[
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
];

impl QualityConstraints {
    /// Reads `{"mae": {"threshold": 1.0, "comparison_operator": "GreaterThanThreshold"}}`,
    /// or SageMaker's file with a `<problem>_constraints` key around it.
    pub fn from_json(v: &Map<String, Value>) -> Result<QualityConstraints, String> {
        let inner = [
            "regression_constraints",
            "binary_classification_constraints",
            "multiclass_classification_constraints",
        ]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_object))
        .unwrap_or(v);
        let mut metrics = BTreeMap::new();
        for (name, t) in inner {
            if name == "version" {
                continue;
            }
            let t: Threshold = serde_json::from_value(t.clone())
                .map_err(|e| format!("model-quality constraint '{name}': {e}"))?;
            if !OPERATORS.contains(&t.comparison_operator.as_str()) {
                return Err(format!(
                    "model-quality constraint '{name}': comparison_operator '{}' is not one of {}",
                    t.comparison_operator,
                    OPERATORS.join(", ")
                ));
            }
            metrics.insert(name.clone(), t);
        }
        Ok(QualityConstraints { metrics })
    }

    /// SageMaker's file shape.
    pub fn to_json(&self, problem: ProblemType) -> Value {
        let key = match problem {
            ProblemType::Regression => "regression_constraints",
            ProblemType::BinaryClassification => "binary_classification_constraints",
            ProblemType::MulticlassClassification => "multiclass_classification_constraints",
        };
        json!({"version": 0.0, key: self.metrics})
    }
}

/// A broken model-quality constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityViolation {
    pub metric_name: String,
    pub constraint_check_type: String,
    pub description: String,
}

/// The constraints `metrics` (as [`metrics`] returns them) break.
pub fn check(
    metrics: &Value,
    constraints: &QualityConstraints,
) -> Result<Vec<QualityViolation>, String> {
    let values = metrics
        .as_object()
        .and_then(|m| m.values().find_map(Value::as_object))
        .ok_or("no metrics")?;
    let mut out = Vec::new();
    for (name, t) in &constraints.metrics {
        let Some(value) = values
            .get(name)
            .and_then(|m| m.get("value"))
            .and_then(Value::as_f64)
        else {
            return Err(format!(
                "model-quality constraint on '{name}': no such metric for this problem type"
            ));
        };
        let broken = match t.comparison_operator.as_str() {
            "LessThanThreshold" => value < t.threshold,
            "LessThanOrEqualToThreshold" => value <= t.threshold,
            "GreaterThanThreshold" => value > t.threshold,
            _ => value >= t.threshold,
        };
        if broken {
            out.push(QualityViolation {
                metric_name: name.clone(),
                constraint_check_type: t.comparison_operator.clone(),
                description: format!(
                    "Metric {name} with {value:.6} {} threshold {}",
                    t.comparison_operator, t.threshold
                ),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(p: &str, l: &str, prob: Option<f64>) -> Pair {
        Pair {
            prediction: p.into(),
            label: l.into(),
            probability: prob,
        }
    }

    #[test]
    fn against_scikit_learn() {
        // sklearn: y=[1.0,2.0,3.0,4.0], p=[1.5,2.0,2.5,5.0]: mae 0.5, mse 0.375, r2 0.7
        let r = metrics(
            ProblemType::Regression,
            &[
                pair("1.5", "1", None),
                pair("2", "2", None),
                pair("2.5", "3", None),
                pair("5", "4", None),
            ],
            "1",
        );
        let m = &r["regression_metrics"];
        assert_eq!(m["mae"]["value"], 0.5);
        assert_eq!(m["mse"]["value"], 0.375);
        assert!((m["r2"]["value"].as_f64().unwrap() - 0.7).abs() < 1e-12);
        assert!(m["mae"]["standard_deviation"].is_null());
        // y=[1,0,1,1,0,0], pred=[1,0,0,1,1,0], prob=[.9,.2,.4,.8,.6,.1]:
        // f1_score 0.6666666666666666, roc_auc_score 0.8888888888888888
        let y = ["1", "0", "1", "1", "0", "0"];
        let p = ["1", "0", "0", "1", "1", "0"];
        let prob = [0.9, 0.2, 0.4, 0.8, 0.6, 0.1];
        let pairs: Vec<Pair> = (0..6).map(|i| pair(p[i], y[i], Some(prob[i]))).collect();
        let b = metrics(ProblemType::BinaryClassification, &pairs, "1");
        let m = &b["binary_classification_metrics"];
        assert!((m["f1"]["value"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m["auc"]["value"].as_f64().unwrap() - 8.0 / 9.0).abs() < 1e-12);
        assert_eq!(m["confusion_matrix"]["1"]["1"], 2.0);
        // y=[a,b,c,a,b,c], p=[a,b,b,a,c,c]: precision_score(average='weighted') 0.6666666666666666,
        // f1_score(average='weighted') 0.6666666666666666
        let y = ["a", "b", "c", "a", "b", "c"];
        let p = ["a", "b", "b", "a", "c", "c"];
        let pairs: Vec<Pair> = (0..6).map(|i| pair(p[i], y[i], None)).collect();
        let mc = metrics(ProblemType::MulticlassClassification, &pairs, "1");
        let m = &mc["multiclass_classification_metrics"];
        assert!(
            (m["weighted_precision"]["value"].as_f64().unwrap() - 0.6666666666666666).abs() < 1e-12
        );
        assert!((m["weighted_f1"]["value"].as_f64().unwrap() - 0.6666666666666666).abs() < 1e-12);
    }

    #[test]
    fn constraints_flag_broken_metrics() {
        let pairs: Vec<Pair> = (0..300)
            .map(|i| pair(&format!("{}", i as f64 + 2.0), &format!("{i}"), None))
            .collect();
        let m = metrics(ProblemType::Regression, &pairs, "1");
        assert!(m["regression_metrics"]["mae"]["standard_deviation"].is_number());
        let c: Map<String, Value> = serde_json::from_str(r#"{"mae": {"threshold": 1.0, "comparison_operator": "GreaterThanThreshold"}, "r2": {"threshold": 0.5, "comparison_operator": "LessThanThreshold"}}"#).unwrap();
        let c = QualityConstraints::from_json(&c).unwrap();
        let v = check(&m, &c).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].metric_name, "mae");
        let bad: Map<String, Value> =
            serde_json::from_str(r#"{"mae": {"threshold": 1.0, "comparison_operator": "Bigger"}}"#)
                .unwrap();
        assert!(
            QualityConstraints::from_json(&bad)
                .unwrap_err()
                .contains("Bigger")
        );
        let unknown: Map<String, Value> = serde_json::from_str(
            r#"{"auc": {"threshold": 1.0, "comparison_operator": "LessThanThreshold"}}"#,
        )
        .unwrap();
        assert!(
            check(&m, &QualityConstraints::from_json(&unknown).unwrap())
                .unwrap_err()
                .contains("auc")
        );
    }
}
