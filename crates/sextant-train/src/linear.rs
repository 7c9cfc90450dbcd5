//! Linear regression by least squares with an optional L2 penalty (scikit-learn's
//! `LinearRegression` when `l2` is 0, `Ridge(alpha=l2)` otherwise).

use crate::data::Matrix;
use crate::linalg::{Standardizer, cholesky_solve};
use crate::{Result, TrainError};

/// Hyperparameters of [`fit`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinearParams {
    /// Weight of the L2 penalty on the raw-feature coefficients (the intercept is not
    /// penalized); 0 for ordinary least squares.
    pub l2: f64,
}

/// A fitted linear model: `y = x · coefficients + intercept`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// One coefficient per feature, on the raw (unstandardized) scale.
    pub coefficients: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
}

/// Fits by solving the normal equations with Cholesky. Features are standardized first so
/// the system stays well conditioned when columns differ by orders of magnitude; the
/// penalty is rescaled so that it still applies to the raw coefficients.
pub fn fit(x: &Matrix, y: &[f64], params: &LinearParams) -> Result<LinearModel> {
    check_shapes(x, y)?;
    if !params.l2.is_finite() || params.l2 < 0.0 {
        return Err(TrainError::InvalidParam(format!(
            "l2 must be a finite number ≥ 0, got {}",
            params.l2
        )));
    }
    let (n, f) = (x.rows(), x.cols());
    let std = Standardizer::fit(x);
    let y_mean = y.iter().sum::<f64>() / n as f64;

    let mut gram = vec![0.0; f * f];
    let mut rhs = vec![0.0; f];
    let mut z = vec![0.0; f];
    for (i, yi) in y.iter().enumerate() {
        std.row_into(x, i, &mut z);
        let yc = yi - y_mean;
        for a in 0..f {
            rhs[a] += z[a] * yc;
            for b in 0..=a {
                gram[a * f + b] += z[a] * z[b];
            }
        }
    }
    for a in 0..f {
        for b in 0..a {
            gram[b * f + a] = gram[a * f + b];
        }
        // w_raw = w_std / scale, so l2·‖w_raw‖² = Σ l2 / scale² · w_std².
        gram[a * f + a] += params.l2 / (std.scale[a] * std.scale[a]);
    }
    let w_std = cholesky_solve(&gram, &rhs).ok_or_else(|| {
        TrainError::Singular(
            "least squares has no unique solution: features are collinear or constant, or \
             there are fewer rows than features; set l2 > 0"
                .into(),
        )
    })?;
    let coefficients: Vec<f64> = w_std.iter().zip(&std.scale).map(|(w, s)| w / s).collect();
    let intercept = y_mean
        - coefficients
            .iter()
            .zip(&std.mean)
            .map(|(w, m)| w * m)
            .sum::<f64>();
    Ok(LinearModel {
        coefficients,
        intercept,
    })
}

impl LinearModel {
    /// Predictions for each row of `x`.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f64>> {
        check_width(x, self.coefficients.len())?;
        Ok((0..x.rows())
            .map(|i| dot(x.row(i), &self.coefficients) + self.intercept)
            .collect())
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn check_shapes(x: &Matrix, y: &[f64]) -> Result<()> {
    if x.rows() != y.len() {
        return Err(TrainError::LengthMismatch {
            what: "feature rows vs target values",
            left: x.rows(),
            right: y.len(),
        });
    }
    if x.rows() == 0 || x.cols() == 0 {
        return Err(TrainError::EmptyData(format!(
            "cannot train on {} rows × {} features",
            x.rows(),
            x.cols()
        )));
    }
    Ok(())
}

pub(crate) fn check_width(x: &Matrix, features: usize) -> Result<()> {
    if x.cols() != features {
        return Err(TrainError::LengthMismatch {
            what: "input columns vs model features",
            left: x.cols(),
            right: features,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Features of very different scales, so standardization matters.
    fn design(n: usize) -> Matrix {
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let t = i as f64;
                vec![
                    (t * 0.37).sin() * 1000.0,
                    (t * 1.3).cos() * 0.01,
                    t / n as f64,
                ]
            })
            .collect();
        Matrix::from_rows(&rows).unwrap()
    }

    #[test]
    fn recovers_known_coefficients_exactly() {
        let x = design(60);
        let truth = [0.002, 300.0, -4.0];
        let y: Vec<f64> = (0..x.rows()).map(|i| dot(x.row(i), &truth) + 7.5).collect();
        let model = fit(&x, &y, &LinearParams::default()).unwrap();
        for (got, want) in model.coefficients.iter().zip(truth) {
            assert!((got - want).abs() <= 1e-9 * want.abs(), "{model:?}");
        }
        assert!((model.intercept - 7.5).abs() < 1e-9, "{model:?}");
        let pred = model.predict(&x).unwrap();
        for (p, t) in pred.iter().zip(&y) {
            assert!((p - t).abs() < 1e-9);
        }
    }

    #[test]
    fn l2_matches_closed_form_ridge_on_one_feature() {
        // Ridge on one centred feature: w = Σxy / (Σx² + alpha).
        let x = Matrix::from_rows(&[vec![-1.0], vec![0.0], vec![1.0]]).unwrap();
        let y = [1.0, 2.0, 5.0];
        let model = fit(&x, &y, &LinearParams { l2: 1.0 }).unwrap();
        assert!(
            (model.coefficients[0] - 4.0 / 3.0).abs() < 1e-12,
            "{model:?}"
        );
        assert!((model.intercept - 8.0 / 3.0).abs() < 1e-12, "{model:?}");
    }

    #[test]
    fn collinear_features_need_l2() {
        let x = Matrix::from_rows(&[vec![1.0, 2.0], vec![2.0, 4.0], vec![3.0, 6.0]]).unwrap();
        let y = [1.0, 2.0, 3.0];
        let err = fit(&x, &y, &LinearParams::default()).unwrap_err();
        assert!(err.to_string().contains("set l2 > 0"), "{err}");
        assert!(fit(&x, &y, &LinearParams { l2: 0.1 }).is_ok());
    }
}
