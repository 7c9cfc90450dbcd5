//! Losses: their baseline score, per-sample gradients and hessians, and the link to predictions.

use serde::{Deserialize, Serialize};

use crate::error::{GbdtError, invalid};

/// Probabilities are clipped away from 0 and 1 so log-odds and log-losses stay finite.
const EPS: f64 = 1e-15;
/// Hessians are kept above this so a confident leaf's `-G / H` stays finite.
const MIN_HESSIAN: f64 = 1e-16;

/// What the model predicts, and the loss it minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Objective {
    /// Squared error; predictions are the raw score.
    Regression,
    /// Log-loss on labels 0 and 1; the raw score is the log-odds of class 1.
    Binary,
    /// Softmax cross-entropy on labels `0..n_classes`; one tree per class per iteration.
    Multiclass { n_classes: usize },
}

impl Objective {
    /// Raw scores per row: one, or one per class for multiclass.
    pub fn n_outputs(&self) -> usize {
        match self {
            Objective::Regression | Objective::Binary => 1,
            Objective::Multiclass { n_classes } => *n_classes,
        }
    }

    /// Checks labels: finite for regression, integers in range for classification.
    pub(crate) fn check_labels(&self, y: &[f64]) -> Result<(), GbdtError> {
        let n_classes = match self {
            Objective::Regression => {
                return match y.iter().position(|v| !v.is_finite()) {
                    Some(row) => Err(invalid(format!("target of row {row} is not finite"))),
                    None => Ok(()),
                };
            }
            Objective::Binary => 2,
            Objective::Multiclass { n_classes } if *n_classes < 3 => {
                return Err(invalid(format!(
                    "multiclass needs at least 3 classes, got {n_classes}; use binary for 2"
                )));
            }
            Objective::Multiclass { n_classes } => *n_classes,
        };
        for (row, v) in y.iter().enumerate() {
            if v.fract() != 0.0 || *v < 0.0 || *v >= n_classes as f64 {
                return Err(invalid(format!(
                    "label {v} of row {row} is not a class index below {n_classes}"
                )));
            }
        }
        Ok(())
    }

    /// The constant raw scores that minimize the loss: the mean, the log-odds of the positive
    /// rate, or the log of each class's prior.
    pub(crate) fn baseline(&self, y: &[f64]) -> Vec<f64> {
        let n = y.len().max(1) as f64;
        match self {
            Objective::Regression => vec![y.iter().sum::<f64>() / n],
            Objective::Binary => {
                let p = (y.iter().sum::<f64>() / n).clamp(EPS, 1.0 - EPS);
                vec![(p / (1.0 - p)).ln()]
            }
            Objective::Multiclass { n_classes } => {
                let mut counts = vec![0.0; *n_classes];
                for v in y {
                    counts[*v as usize] += 1.0;
                }
                counts
                    .iter()
                    .map(|c| (c / n).clamp(EPS, 1.0).ln())
                    .collect()
            }
        }
    }

    /// Fills `grad` and `hess` (class-major: `n_samples` values per output) for the samples in
    /// `indices` from row-major raw scores.
    pub(crate) fn gradients(
        &self,
        y: &[f64],
        raw: &[f64],
        indices: &[u32],
        grad: &mut [f64],
        hess: &mut [f64],
    ) {
        let n = y.len();
        match self {
            Objective::Regression => {
                for &i in indices {
                    let i = i as usize;
                    grad[i] = raw[i] - y[i];
                    hess[i] = 1.0;
                }
            }
            Objective::Binary => {
                for &i in indices {
                    let i = i as usize;
                    let p = sigmoid(raw[i]);
                    grad[i] = p - y[i];
                    hess[i] = (p * (1.0 - p)).max(MIN_HESSIAN);
                }
            }
            Objective::Multiclass { n_classes } => {
                let k = *n_classes;
                let mut p = vec![0.0; k];
                for &i in indices {
                    let i = i as usize;
                    p.copy_from_slice(&raw[i * k..(i + 1) * k]);
                    softmax(&mut p);
                    for (c, pc) in p.iter().enumerate() {
                        let target = if y[i] as usize == c { 1.0 } else { 0.0 };
                        grad[c * n + i] = pc - target;
                        hess[c * n + i] = (pc * (1.0 - pc)).max(MIN_HESSIAN);
                    }
                }
            }
        }
    }

    /// The mean loss of the samples in `indices`; early stopping watches it on held-out rows.
    pub(crate) fn loss(&self, y: &[f64], raw: &[f64], indices: &[u32]) -> f64 {
        let k = self.n_outputs();
        let mut p = vec![0.0; k];
        let total: f64 = indices
            .iter()
            .map(|&i| {
                let i = i as usize;
                p.clear();
                p.extend_from_slice(&raw[i * k..(i + 1) * k]);
                self.transform(&mut p);
                match self {
                    Objective::Regression => (p[0] - y[i]).powi(2) / 2.0,
                    Objective::Binary => {
                        let q = if y[i] == 1.0 { p[1] } else { p[0] };
                        -q.clamp(EPS, 1.0).ln()
                    }
                    Objective::Multiclass { .. } => -p[y[i] as usize].clamp(EPS, 1.0).ln(),
                }
            })
            .sum();
        total / indices.len().max(1) as f64
    }

    /// Turns one row's raw scores into predictions in place: unchanged for regression, class
    /// probabilities otherwise. For binary, `out` must have room for two values.
    pub(crate) fn transform(&self, out: &mut Vec<f64>) {
        match self {
            Objective::Regression => {}
            Objective::Binary => {
                let p = sigmoid(out[0]);
                out.clear();
                out.extend([1.0 - p, p]);
            }
            Objective::Multiclass { .. } => softmax(out),
        }
    }
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

pub(crate) fn softmax(scores: &mut [f64]) {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}
