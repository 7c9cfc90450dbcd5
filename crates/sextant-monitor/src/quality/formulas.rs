//! The arithmetic of each problem type's metrics on prepared pairs, matching
//! scikit-learn's values; no checks (the pairs were checked when prepared).

use std::collections::BTreeMap;

use super::metric::{
    BinaryMetrics, Metric, MulticlassMetrics, PrecisionRecallCurve, RegressionMetrics, RocCurve,
};

/// 0 when the denominator is (sklearn's `zero_division=0`).
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

fn f_beta(precision: f64, recall: f64, beta: f64) -> f64 {
    let b2 = beta * beta;
    ratio((1.0 + b2) * precision * recall, b2 * precision + recall)
}

pub(super) fn regression(xy: impl Iterator<Item = (f64, f64)>) -> RegressionMetrics {
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

pub(super) fn binary(v: &[(bool, bool, Option<f64>)]) -> BinaryMetrics {
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

pub(super) fn multiclass(v: &[(usize, usize)], classes: &[String]) -> MulticlassMetrics {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_is_the_rank_statistic_with_ties_counting_half() {
        assert_eq!(auc(&[(0.1, false), (0.9, true)]), Some(1.0));
        assert_eq!(auc(&[(0.5, false), (0.5, true)]), Some(0.5));
        assert_eq!(auc(&[(0.9, false), (0.1, true)]), Some(0.0));
        assert_eq!(auc(&[(0.3, true)]), None);
    }

    #[test]
    fn curves_step_at_each_score_from_threshold_one_down() {
        // Point i is the threshold (100 - i) / 100.
        let (roc, pr) = curves(&[(0.25, false), (0.75, true)]);
        assert_eq!(roc.true_positive_rates.len(), 101);
        assert_eq!(pr.precisions[0], 1.0, "nothing positive at 1.00");
        assert_eq!(roc.true_positive_rates[24], 0.0);
        assert_eq!(roc.true_positive_rates[25], 1.0);
        assert_eq!(roc.false_positive_rates[74], 0.0);
        assert_eq!(roc.false_positive_rates[75], 1.0);
        assert_eq!(pr.precisions[75], 0.5);
        assert_eq!(pr.recalls[100], 1.0);
    }

    #[test]
    fn constant_labels_give_r2_one_only_for_a_perfect_fit() {
        let r2 = |xy: &[(f64, f64)]| regression(xy.iter().copied()).r2.value;
        assert_eq!(r2(&[(2.0, 2.0), (2.0, 2.0)]), 1.0);
        assert_eq!(r2(&[(1.0, 2.0), (3.0, 2.0)]), 0.0);
    }
}
