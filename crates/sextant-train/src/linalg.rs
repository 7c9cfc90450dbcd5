//! The little dense linear algebra the trainers need: column standardization and a
//! Cholesky solve of a small symmetric positive definite system (features × features).

use crate::data::Matrix;

/// Per-column mean and scale; the trainers solve in standardized coordinates for
/// conditioning and map the coefficients back to raw features afterwards.
pub(crate) struct Standardizer {
    pub mean: Vec<f64>,
    /// Population standard deviation, or 1 for a constant column so it maps to zeros.
    pub scale: Vec<f64>,
}

impl Standardizer {
    pub fn fit(x: &Matrix) -> Self {
        let (n, f) = (x.rows() as f64, x.cols());
        let mut mean = vec![0.0; f];
        for i in 0..x.rows() {
            for (m, v) in mean.iter_mut().zip(x.row(i)) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; f];
        for i in 0..x.rows() {
            for ((s, v), m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        let scale = var
            .into_iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd > 1e-12 { sd } else { 1.0 }
            })
            .collect();
        Self { mean, scale }
    }

    /// Row `i` of `x`, standardized, into `out`.
    pub fn row_into(&self, x: &Matrix, i: usize, out: &mut [f64]) {
        for (j, v) in x.row(i).iter().enumerate() {
            out[j] = (v - self.mean[j]) / self.scale[j];
        }
    }
}

/// Solves `a · x = b` for a symmetric positive definite `a` (row-major, `n × n`) by
/// Cholesky factorization. `None` when `a` is not numerically positive definite.
pub(crate) fn cholesky_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    debug_assert_eq!(a.len(), n * n);
    // The diagonal of a is ≥ this relative threshold unless a is (nearly) singular.
    let max_diag = (0..n).map(|i| a[i * n + i]).fold(0.0_f64, f64::max);
    let tiny = max_diag * 1e-12;
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= tiny || !sum.is_finite() {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    // Forward substitution L·z = b, then back substitution Lᵀ·x = z.
    let mut z = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * z[k]).sum();
        z[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (z[i] - s) / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_spd_system() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let x = [1.0, -2.0, 0.5];
        let b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum())
            .collect();
        let got = cholesky_solve(&a, &b).unwrap();
        for (g, e) in got.iter().zip(x) {
            assert!((g - e).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn cholesky_refuses_singular_matrix() {
        assert!(cholesky_solve(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0]).is_none());
    }
}
