//! Binary logistic regression with an L2 penalty, parameterized like scikit-learn's
//! `LogisticRegression` (`C`, default 1.0, intercept not penalized), fitted by Newton's
//! method (IRLS) with a backtracking line search.

use crate::data::Matrix;
use crate::linalg::{Standardizer, cholesky_solve};
use crate::linear::{check_shapes, check_width, dot};
use crate::{Result, TrainError};

/// Hyperparameters of [`fit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticParams {
    /// Inverse regularization strength: the loss is `½‖w‖² + C · Σ log-loss`, as in
    /// scikit-learn. `f64::INFINITY` fits without a penalty.
    pub c: f64,
    /// Newton iterations before giving up.
    pub max_iter: usize,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            c: 1.0,
            max_iter: 100,
        }
    }
}

/// A fitted binary classifier: `P(y = 1 | x) = sigmoid(x · coefficients + intercept)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    /// One coefficient per feature, on the raw (unstandardized) scale.
    pub coefficients: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
    /// Newton iterations the fit took.
    pub iterations: usize,
}

/// Fits on targets that are all 0 or 1, with both classes present.
pub fn fit(x: &Matrix, y: &[f64], params: &LogisticParams) -> Result<LogisticModel> {
    check_shapes(x, y)?;
    if params.c.is_nan() || params.c <= 0.0 {
        return Err(TrainError::InvalidParam(format!(
            "C must be > 0, got {}",
            params.c
        )));
    }
    if let Some((row, &value)) = y.iter().enumerate().find(|&(_, &v)| v != 0.0 && v != 1.0) {
        return Err(TrainError::NotBinary {
            row: row + 1,
            value,
        });
    }
    let positives = y.iter().filter(|&&v| v == 1.0).count();
    if positives == 0 || positives == y.len() {
        return Err(TrainError::EmptyData(
            "logistic regression needs both classes 0 and 1 in the target".into(),
        ));
    }

    let (n, f) = (x.rows(), x.cols());
    let std = Standardizer::fit(x);
    // Rows with a leading 1 for the intercept, standardized once up front.
    let mut z = vec![0.0; n * (f + 1)];
    for i in 0..n {
        let row = &mut z[i * (f + 1)..(i + 1) * (f + 1)];
        row[0] = 1.0;
        std.row_into(x, i, &mut row[1..]);
    }
    let rows = |i: usize| &z[i * (f + 1)..(i + 1) * (f + 1)];
    // Coordinates are standardized, so the penalty on raw coefficients w_raw = w / scale
    // becomes ½ Σ (w / scale)²; the intercept (index 0) is free.
    let inv_c = 1.0 / params.c;
    let penalty: Vec<f64> = std::iter::once(0.0)
        .chain(std.scale.iter().map(|s| inv_c / (s * s)))
        .collect();
    // The loss is scaled by 1/C (same minimizer) so that C = ∞ means "no penalty".
    let objective = |theta: &[f64]| -> f64 {
        let loss: f64 = (0..n)
            .map(|i| softplus(dot(rows(i), theta)) - y[i] * dot(rows(i), theta))
            .sum();
        let reg: f64 = theta.iter().zip(&penalty).map(|(t, p)| p * t * t).sum();
        loss + 0.5 * reg
    };

    let dim = f + 1;
    let mut theta = vec![0.0; dim];
    let mut current = objective(&theta);
    for iteration in 1..=params.max_iter {
        let mut grad: Vec<f64> = theta.iter().zip(&penalty).map(|(t, p)| p * t).collect();
        let mut hess = vec![0.0; dim * dim];
        for a in 0..dim {
            hess[a * dim + a] = penalty[a];
        }
        for (i, yi) in y.iter().enumerate() {
            let r = rows(i);
            let p = sigmoid(dot(r, &theta));
            let w = p * (1.0 - p);
            for a in 0..dim {
                grad[a] += (p - yi) * r[a];
                for b in 0..=a {
                    hess[a * dim + b] += w * r[a] * r[b];
                }
            }
        }
        for a in 0..dim {
            for b in 0..a {
                hess[b * dim + a] = hess[a * dim + b];
            }
        }
        let step = cholesky_solve(&hess, &grad).ok_or_else(not_converged_hint)?;
        // Newton decrement: half of it estimates the distance to the optimum's objective.
        let decrement = dot(&grad, &step);
        if decrement / 2.0 <= 1e-13 * current.abs().max(1.0) {
            return Ok(to_raw(&theta, &std, iteration));
        }
        let mut t = 1.0;
        loop {
            let candidate: Vec<f64> = theta.iter().zip(&step).map(|(a, s)| a - t * s).collect();
            let value = objective(&candidate);
            if value <= current - 1e-4 * t * decrement {
                theta = candidate;
                current = value;
                break;
            }
            t /= 2.0;
            if t < 1e-10 {
                // No further progress in floating point: the iterate is the optimum.
                return Ok(to_raw(&theta, &std, iteration));
            }
        }
    }
    Err(not_converged_hint())
}

fn not_converged_hint() -> TrainError {
    TrainError::Singular(
        "logistic regression did not converge: the classes may be perfectly separable or \
         the features collinear; use a finite C"
            .into(),
    )
}

fn to_raw(theta: &[f64], std: &Standardizer, iterations: usize) -> LogisticModel {
    let coefficients: Vec<f64> = theta[1..]
        .iter()
        .zip(&std.scale)
        .map(|(w, s)| w / s)
        .collect();
    let intercept = theta[0] - dot(&coefficients, &std.mean);
    LogisticModel {
        coefficients,
        intercept,
        iterations,
    }
}

impl LogisticModel {
    /// `P(y = 1)` for each row of `x`.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>> {
        check_width(x, self.coefficients.len())?;
        Ok((0..x.rows())
            .map(|i| sigmoid(dot(x.row(i), &self.coefficients) + self.intercept))
            .collect())
    }

    /// The predicted label of each row: 1 when `P(y = 1) > 0.5`, else 0 (ties go to 0,
    /// like the exported ONNX graph's `ArgMax`).
    pub fn predict(&self, x: &Matrix) -> Result<Vec<i64>> {
        Ok(self
            .predict_proba(x)?
            .into_iter()
            .map(|p| i64::from(p > 0.5))
            .collect())
    }
}

/// `1 / (1 + e^-t)` without overflow for large |t|.
pub(crate) fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^t)` without overflow for large t.
fn softplus(t: f64) -> f64 {
    if t > 0.0 {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two overlapping clouds: class 1 where 2·x0 − x1 + noise > 1.
    fn clouds(n: usize) -> (Matrix, Vec<f64>) {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let t = i as f64;
            let x0 = (t * 0.71).sin() * 3.0;
            let x1 = (t * 1.93).cos() * 2.0 + 100.0;
            let noise = (t * 12.9898).sin() * 1.5;
            rows.push(vec![x0, x1]);
            y.push(f64::from(2.0 * x0 - (x1 - 100.0) + noise > 1.0));
        }
        (Matrix::from_rows(&rows).unwrap(), y)
    }

    fn gradient_norm(model: &LogisticModel, x: &Matrix, y: &[f64], c: f64) -> f64 {
        let p = model.predict_proba(x).unwrap();
        let mut g = vec![0.0; x.cols() + 1];
        for i in 0..x.rows() {
            g[0] += c * (p[i] - y[i]);
            for (j, v) in x.row(i).iter().enumerate() {
                g[j + 1] += c * (p[i] - y[i]) * v;
            }
        }
        for (j, w) in model.coefficients.iter().enumerate() {
            g[j + 1] += w;
        }
        g.iter().map(|v| v.abs()).fold(0.0, f64::max)
    }

    #[test]
    fn fits_separable_ish_data_to_the_optimum() {
        let (x, y) = clouds(200);
        let model = fit(&x, &y, &LogisticParams::default()).unwrap();
        // The sklearn objective's gradient vanishes at the returned raw coefficients.
        assert!(gradient_norm(&model, &x, &y, 1.0) < 1e-6, "{model:?}");
        assert!(model.coefficients[0] > 0.0 && model.coefficients[1] < 0.0);
        let labels = model.predict(&x).unwrap();
        let correct = labels
            .iter()
            .zip(&y)
            .filter(|(l, t)| **l as f64 == **t)
            .count();
        assert!(correct as f64 / y.len() as f64 > 0.85, "{correct}/200");
    }

    #[test]
    fn stronger_penalty_shrinks_coefficients() {
        let (x, y) = clouds(200);
        let loose = fit(&x, &y, &LogisticParams::default()).unwrap();
        let tight = fit(
            &x,
            &y,
            &LogisticParams {
                c: 0.01,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(tight.coefficients[0].abs() < loose.coefficients[0].abs());
        assert!(gradient_norm(&tight, &x, &y, 0.01) < 1e-6);
    }

    #[test]
    fn unpenalized_fit_reaches_zero_gradient() {
        let (x, y) = clouds(200);
        let params = LogisticParams {
            c: f64::INFINITY,
            ..Default::default()
        };
        let model = fit(&x, &y, &params).unwrap();
        let p = model.predict_proba(&x).unwrap();
        let g0: f64 = p.iter().zip(&y).map(|(p, y)| p - y).sum();
        assert!(g0.abs() < 1e-8, "{g0}");
    }

    #[test]
    fn refuses_non_binary_target() {
        let x = Matrix::from_rows(&[vec![0.0], vec![1.0]]).unwrap();
        let err = fit(&x, &[0.0, 2.0], &LogisticParams::default()).unwrap_err();
        assert!(err.to_string().contains("row 2"), "{err}");
    }
}
