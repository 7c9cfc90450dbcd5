//! Quantile binning of raw feature values into `u8` bin codes.
//!
//! Bin `b` of a feature holds the values `v` with `thresholds[b - 1] < v <= thresholds[b]`, so the
//! binned decision `bin <= b` is exactly the raw decision `v <= thresholds[b]`. That equivalence
//! is what lets the exported trees compare raw values while training only ever saw bin codes.

use serde::{Deserialize, Serialize};

use crate::error::{GbdtError, invalid};

/// The most non-missing bins a feature can have; the code after them is [`MISSING_BIN`].
pub const MAX_BINS: usize = 255;
/// The bin code of a missing (`NaN`) value, whatever the feature's number of bins.
pub const MISSING_BIN: u8 = 255;

/// Training subsamples at most this many rows to find bin edges, as scikit-learn does: quantiles
/// of 200,000 values are close enough, and sorting every row of a large table is not free.
const BINNING_SUBSAMPLE: usize = 200_000;

/// Per-feature bin edges learned from training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binner {
    /// For each feature, ascending thresholds; a feature has `thresholds.len() + 1` bins.
    thresholds: Vec<Vec<f64>>,
}

/// Bin codes stored column by column (`n_samples` codes per feature).
#[derive(Debug, Clone)]
pub struct BinnedMatrix {
    n_samples: usize,
    codes: Vec<u8>,
}

impl BinnedMatrix {
    /// The number of rows.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// The bin codes of one feature, one per row.
    pub fn column(&self, feature: usize) -> &[u8] {
        &self.codes[feature * self.n_samples..(feature + 1) * self.n_samples]
    }
}

impl Binner {
    /// Learns at most `max_bins` bins per feature from row-major `x` with `n_features` columns.
    ///
    /// `NaN` is missing and gets its own bin; infinite values are refused because no finite
    /// threshold could separate them from the largest finite value in an exported model.
    pub fn fit(x: &[f64], n_features: usize, max_bins: usize) -> Result<Self, GbdtError> {
        if !(2..=MAX_BINS).contains(&max_bins) {
            return Err(invalid(format!(
                "max_bins must be in 2..={MAX_BINS}, got {max_bins}"
            )));
        }
        let n_samples = check_shape(x, n_features)?;
        let step = n_samples.div_ceil(BINNING_SUBSAMPLE).max(1);
        let mut thresholds = Vec::with_capacity(n_features);
        let mut values = Vec::with_capacity(n_samples.min(BINNING_SUBSAMPLE));
        for feature in 0..n_features {
            values.clear();
            for row in (0..n_samples).step_by(step) {
                let v = x[row * n_features + feature];
                if v.is_infinite() {
                    return Err(invalid(format!(
                        "feature {feature} is infinite in row {row}; use NaN for missing values"
                    )));
                }
                if !v.is_nan() {
                    values.push(v);
                }
            }
            values.sort_by(f64::total_cmp);
            thresholds.push(feature_thresholds(&values, max_bins));
        }
        Ok(Self { thresholds })
    }

    /// The number of features the binner was fitted on.
    pub fn n_features(&self) -> usize {
        self.thresholds.len()
    }

    /// The number of non-missing bins of `feature`.
    pub fn n_bins(&self, feature: usize) -> usize {
        self.thresholds[feature].len() + 1
    }

    /// The raw threshold `t` such that `v <= t` is exactly `bin_of(v) <= bin` for non-missing
    /// `v`; for the last bin it is `+inf` (every non-missing value is in or below it).
    pub fn threshold(&self, feature: usize, bin: u8) -> f64 {
        self.thresholds[feature]
            .get(usize::from(bin))
            .copied()
            .unwrap_or(f64::INFINITY)
    }

    /// The bin code of one raw value.
    pub fn bin_of(&self, feature: usize, v: f64) -> u8 {
        if v.is_nan() {
            return MISSING_BIN;
        }
        let bin = self.thresholds[feature].partition_point(|t| *t < v);
        // At most MAX_BINS - 1 thresholds, so the bin fits below MISSING_BIN.
        bin as u8
    }

    /// Bins row-major `x`, which must have the fitted number of columns.
    pub fn transform(&self, x: &[f64]) -> Result<BinnedMatrix, GbdtError> {
        let n_features = self.n_features();
        let n_samples = check_shape(x, n_features)?;
        let mut codes = vec![0u8; n_samples * n_features];
        for feature in 0..n_features {
            let column = &mut codes[feature * n_samples..(feature + 1) * n_samples];
            for (row, code) in column.iter_mut().enumerate() {
                *code = self.bin_of(feature, x[row * n_features + feature]);
            }
        }
        Ok(BinnedMatrix { n_samples, codes })
    }
}

fn check_shape(x: &[f64], n_features: usize) -> Result<usize, GbdtError> {
    if n_features == 0 {
        return Err(invalid("at least one feature is needed"));
    }
    if !x.len().is_multiple_of(n_features) {
        return Err(invalid(format!(
            "{} values do not make rows of {n_features} features",
            x.len()
        )));
    }
    Ok(x.len() / n_features)
}

/// Thresholds for one feature from its sorted non-missing values: midpoints between distinct
/// values when there are few enough of them, else between the values at evenly spaced quantiles
/// and their next distinct neighbour.
fn feature_thresholds(sorted: &[f64], max_bins: usize) -> Vec<f64> {
    let mut distinct = sorted.to_vec();
    distinct.dedup();
    if distinct.len() <= max_bins {
        return distinct.windows(2).map(|w| between(w[0], w[1])).collect();
    }
    let n = sorted.len();
    let mut thresholds: Vec<f64> = Vec::with_capacity(max_bins - 1);
    for i in 1..max_bins {
        let position = (i as f64 / max_bins as f64 * (n - 1) as f64).round() as usize;
        let v = sorted[position];
        let j = distinct.partition_point(|d| *d <= v);
        if j < distinct.len() {
            let t = between(distinct[j - 1], distinct[j]);
            if thresholds.last().is_none_or(|last| *last < t) {
                thresholds.push(t);
            }
        }
    }
    thresholds
}

/// A threshold `t` with `a <= t < b`, preferring one that is exactly representable as `f32`:
/// ONNX runtimes compare in single precision, and an `f32` threshold keeps the decision exact for
/// inputs that are themselves `f32` values.
fn between(a: f64, b: f64) -> f64 {
    let mid = a + (b - a) / 2.0;
    for candidate in [f64::from(mid as f32), f64::from(a as f32)] {
        if a <= candidate && candidate < b {
            return candidate;
        }
    }
    mid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let x = [3.0, 1.0, 2.0, 2.0, 1.0, f64::NAN];
        let binner = Binner::fit(&x, 1, 255).unwrap();
        assert_eq!(binner.n_bins(0), 3);
        let codes: Vec<u8> = x.iter().map(|v| binner.bin_of(0, *v)).collect();
        assert_eq!(codes, [2, 0, 1, 1, 0, MISSING_BIN]);
    }

    #[test]
    fn many_values_are_cut_at_quantiles_within_the_bin_limit() {
        let x: Vec<f64> = (0..10_000).map(|i| f64::from(i).sqrt()).collect();
        let binner = Binner::fit(&x, 1, 16).unwrap();
        assert_eq!(binner.n_bins(0), 16);
        let binned = binner.transform(&x).unwrap();
        let mut counts = [0usize; 16];
        for code in binned.column(0) {
            counts[usize::from(*code)] += 1;
        }
        // Equal-frequency bins: each within a few rows of 10_000 / 16.
        for count in counts {
            assert!((600..=650).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn threshold_reproduces_the_binned_decision_on_raw_values() {
        let x: Vec<f64> = (0..5_000)
            .map(|i| (f64::from(i) * 0.37).sin() * 1e3)
            .collect();
        let binner = Binner::fit(&x, 1, 64).unwrap();
        for bin in 0..binner.n_bins(0) as u8 {
            let t = binner.threshold(0, bin);
            for v in &x {
                assert_eq!(binner.bin_of(0, *v) <= bin, *v <= t, "bin {bin} value {v}");
            }
        }
    }

    #[test]
    fn thresholds_are_f32_values_when_the_data_is() {
        let x: Vec<f64> = (0..1_000).map(|i| f64::from(i as f32 * 0.1f32)).collect();
        let binner = Binner::fit(&x, 1, 255).unwrap();
        for bin in 0..binner.n_bins(0) as u8 - 1 {
            let t = binner.threshold(0, bin);
            assert_eq!(f64::from(t as f32), t);
        }
    }

    #[test]
    fn bad_shapes_and_infinities_are_refused() {
        assert!(Binner::fit(&[1.0, 2.0, 3.0], 2, 255).is_err());
        assert!(Binner::fit(&[1.0, f64::INFINITY], 1, 255).is_err());
        assert!(Binner::fit(&[1.0], 1, 256).is_err());
    }
}
