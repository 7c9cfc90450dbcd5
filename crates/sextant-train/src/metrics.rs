//! Evaluation metrics for `builtin/evaluate`: regression (rmse, mae, r2) and binary
//! classification (accuracy, f1, roc_auc), with scikit-learn's definitions.

use crate::{Result, TrainError};

/// Root mean squared error.
pub fn rmse(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check(y_true, y_pred)?;
    let mse = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .sum::<f64>()
        / y_true.len() as f64;
    Ok(mse.sqrt())
}

/// Mean absolute error.
pub fn mae(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check(y_true, y_pred)?;
    Ok(y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p).abs())
        .sum::<f64>()
        / y_true.len() as f64)
}

/// Coefficient of determination, `1 − SS_res / SS_tot`. Like scikit-learn, a constant
/// target gives 1 for a perfect prediction and 0 otherwise.
pub fn r2(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check(y_true, y_pred)?;
    let mean = y_true.iter().sum::<f64>() / y_true.len() as f64;
    let ss_res: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .sum();
    let ss_tot: f64 = y_true.iter().map(|t| (t - mean) * (t - mean)).sum();
    if ss_tot == 0.0 {
        return Ok(if ss_res == 0.0 { 1.0 } else { 0.0 });
    }
    Ok(1.0 - ss_res / ss_tot)
}

/// Fraction of labels predicted exactly.
pub fn accuracy(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check(y_true, y_pred)?;
    let hits = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / y_true.len() as f64)
}

/// F1 score of the positive class 1: `2·TP / (2·TP + FP + FN)`; 0 when there are neither
/// positive labels nor positive predictions (scikit-learn's `zero_division=0`).
pub fn f1(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check(y_true, y_pred)?;
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (&t, &p) in y_true.iter().zip(y_pred) {
        match (t == 1.0, p == 1.0) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            (false, false) => {}
        }
    }
    let denominator = 2 * tp + fp + fneg;
    Ok(if denominator == 0 {
        0.0
    } else {
        2.0 * tp as f64 / denominator as f64
    })
}

/// Area under the ROC curve of scores for the positive class 1: the probability that a
/// random positive scores above a random negative, ties counting half.
pub fn roc_auc(y_true: &[f64], scores: &[f64]) -> Result<f64> {
    check(y_true, scores)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann–Whitney U: sum the (tie-averaged, 1-based) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && scores[order[end + 1]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + end) as f64 / 2.0 + 1.0;
        rank_sum += order[start..=end]
            .iter()
            .filter(|&&i| y_true[i] == 1.0)
            .count() as f64
            * average_rank;
        start = end + 1;
    }
    let positives = y_true.iter().filter(|&&t| t == 1.0).count() as f64;
    let negatives = y_true.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Err(TrainError::UndefinedMetric {
            metric: "roc_auc",
            reason: "the labels hold only one class",
        });
    }
    Ok((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

fn check(y_true: &[f64], y_pred: &[f64]) -> Result<()> {
    if y_true.len() != y_pred.len() {
        return Err(TrainError::LengthMismatch {
            what: "labels vs predictions",
            left: y_true.len(),
            right: y_pred.len(),
        });
    }
    if y_true.is_empty() {
        return Err(TrainError::EmptyData("no rows to evaluate".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn regression_metrics_match_hand_computation() {
        let t = [3.0, -0.5, 2.0, 7.0];
        let p = [2.5, 0.0, 2.0, 8.0];
        // Errors 0.5, -0.5, 0, -1: squares sum to 1.5, absolutes to 2.
        close(rmse(&t, &p).unwrap(), (1.5f64 / 4.0).sqrt());
        close(mae(&t, &p).unwrap(), 0.5);
        // Mean 2.875; SS_tot = 0.015625 + 11.390625 + 0.765625 + 17.015625 = 29.1875.
        close(r2(&t, &p).unwrap(), 1.0 - 1.5 / 29.1875);
        close(r2(&[1.0, 1.0], &[1.0, 1.0]).unwrap(), 1.0);
    }

    #[test]
    fn classification_metrics_match_hand_computation() {
        let t = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let p = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        close(accuracy(&t, &p).unwrap(), 4.0 / 6.0);
        // TP 2, FP 1, FN 1.
        close(f1(&t, &p).unwrap(), 4.0 / 6.0);
        close(f1(&[0.0], &[0.0]).unwrap(), 0.0);
    }

    #[test]
    fn roc_auc_counts_ties_half() {
        // Pairs (pos, neg): (0.8, 0.1) (0.8, 0.4) (0.8, 0.35)→ 3 wins; (0.35, 0.1) win,
        // (0.35, 0.4) loss, (0.35, 0.35) tie → 4.5 of 6.
        let t = [0.0, 0.0, 1.0, 1.0, 0.0];
        let s = [0.1, 0.4, 0.35, 0.8, 0.35];
        close(roc_auc(&t, &s).unwrap(), 4.5 / 6.0);
        assert!(roc_auc(&[1.0, 1.0], &[0.2, 0.3]).is_err());
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        assert!(rmse(&[1.0], &[1.0, 2.0]).is_err());
        assert!(accuracy(&[], &[]).is_err());
    }
}
