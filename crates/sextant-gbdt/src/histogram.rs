//! Gradient histograms of a node's samples and the best split they allow.

use crate::binning::{BinnedMatrix, MISSING_BIN};

/// Bins per feature in a histogram: every possible `u8` code, the missing bin last.
const HIST_BINS: usize = 256;

/// Sums of gradients and hessians, and the sample count, of a set of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stats {
    pub g: f64,
    pub h: f64,
    pub n: usize,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.g += other.g;
        self.h += other.h;
        self.n += other.n;
    }

    fn minus(&self, other: &Stats) -> Stats {
        Stats {
            g: self.g - other.g,
            h: self.h - other.h,
            n: self.n - other.n,
        }
    }

    /// The loss reduction of a leaf holding these samples, up to a constant factor.
    fn score(&self, l2: f64) -> f64 {
        self.g * self.g / (self.h + l2)
    }
}

/// Per-feature, per-bin [`Stats`] of one node.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    bins: Vec<Stats>,
}

impl Histogram {
    /// Accumulates the gradients of the samples in `indices` into every feature's bins.
    pub fn build(
        binned: &BinnedMatrix,
        n_features: usize,
        indices: &[u32],
        grad: &[f64],
        hess: &[f64],
    ) -> Self {
        // Gather the node's gradients once (LightGBM's "ordered gradients"): every feature then
        // reads them sequentially instead of at scattered row indices.
        let ordered: Vec<(f64, f64)> = indices
            .iter()
            .map(|&i| (grad[i as usize], hess[i as usize]))
            .collect();
        let mut bins = vec![Stats::default(); n_features * HIST_BINS];
        for (feature, hist) in bins.chunks_exact_mut(HIST_BINS).enumerate() {
            let column = binned.column(feature);
            let hist: &mut [Stats; HIST_BINS] = hist.try_into().expect("chunk of HIST_BINS");
            for (&i, &(g, h)) in indices.iter().zip(&ordered) {
                let bin = &mut hist[usize::from(column[i as usize])];
                bin.g += g;
                bin.h += h;
                bin.n += 1;
            }
        }
        Self { bins }
    }

    /// Turns a parent's histogram into its other child's, given one child's: every sample of the
    /// parent is in exactly one child, so scanning the larger child is never needed.
    pub fn subtract(&mut self, child: &Histogram) {
        for (bin, c) in self.bins.iter_mut().zip(&child.bins) {
            *bin = bin.minus(c);
        }
    }

    fn feature(&self, feature: usize) -> &[Stats] {
        &self.bins[feature * HIST_BINS..(feature + 1) * HIST_BINS]
    }
}

/// Constraints a split must meet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SplitRules {
    pub min_samples_leaf: usize,
    pub min_hessian_leaf: f64,
    pub l2: f64,
}

/// The best split found for a node: samples with `bin <= bin` go left, missing ones follow
/// `missing_left`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split {
    pub feature: usize,
    pub bin: u8,
    pub missing_left: bool,
    pub gain: f64,
    pub left: Stats,
    pub right: Stats,
}

impl Split {
    /// Whether a sample with this bin code goes to the left child.
    pub fn goes_left(&self, code: u8) -> bool {
        if code == MISSING_BIN {
            self.missing_left
        } else {
            code <= self.bin
        }
    }
}

/// Scans every feature's bins left to right, trying missing values on both sides, and returns
/// the split with the largest positive gain that meets `rules`.
pub(crate) fn best_split(
    hist: &Histogram,
    n_bins: &[usize],
    total: Stats,
    rules: &SplitRules,
) -> Option<Split> {
    let parent_score = total.score(rules.l2);
    let mut best: Option<Split> = None;
    let mut consider = |feature: usize, bin: usize, left: Stats, missing_left: bool| {
        let right = total.minus(&left);
        if left.n < rules.min_samples_leaf
            || right.n < rules.min_samples_leaf
            || left.h < rules.min_hessian_leaf
            || right.h < rules.min_hessian_leaf
        {
            return;
        }
        let gain = left.score(rules.l2) + right.score(rules.l2) - parent_score;
        if gain > 0.0 && best.is_none_or(|b| gain > b.gain) {
            best = Some(Split {
                feature,
                bin: bin as u8,
                missing_left,
                gain,
                left,
                right,
            });
        }
    };
    for (feature, &n_bins) in n_bins.iter().enumerate() {
        let bins = hist.feature(feature);
        let missing = bins[usize::from(MISSING_BIN)];
        let mut cumulative = Stats::default();
        for (bin, stats) in bins[..n_bins].iter().enumerate() {
            cumulative.add(stats);
            let last = bin + 1 == n_bins;
            if missing.n == 0 {
                if last {
                    break;
                }
                // Without missing values here, a missing value at prediction time follows the
                // larger child, as in scikit-learn.
                let right_n = total.n - cumulative.n;
                consider(feature, bin, cumulative, cumulative.n >= right_n);
                continue;
            }
            // The last bin with missing values to the right is the split "missing or not".
            consider(feature, bin, cumulative, false);
            if !last {
                let mut with_missing = cumulative;
                with_missing.add(&missing);
                consider(feature, bin, with_missing, true);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binning::Binner;

    fn rules() -> SplitRules {
        SplitRules {
            min_samples_leaf: 1,
            min_hessian_leaf: 1e-3,
            l2: 0.0,
        }
    }

    #[test]
    fn subtraction_gives_the_sibling_histogram() {
        let x: Vec<f64> = (0..100).map(|i| f64::from(i % 17)).collect();
        let grad: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.5 - 3.0).collect();
        let hess = vec![1.0; 100];
        let binned = Binner::fit(&x, 1, 255).unwrap().transform(&x).unwrap();
        let all: Vec<u32> = (0..100).collect();
        let mut parent = Histogram::build(&binned, 1, &all, &grad, &hess);
        let left = Histogram::build(&binned, 1, &all[..40], &grad, &hess);
        let right = Histogram::build(&binned, 1, &all[40..], &grad, &hess);
        parent.subtract(&left);
        assert_eq!(parent.bins, right.bins);
    }

    #[test]
    fn missing_values_go_where_they_reduce_the_loss() {
        // Gradients: low values -1, high values +1, missing +1: the missing ones belong right.
        let x = [1.0, 2.0, 3.0, 4.0, f64::NAN, f64::NAN];
        let grad = [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0];
        let hess = [1.0; 6];
        let binner = Binner::fit(&x, 1, 255).unwrap();
        let binned = binner.transform(&x).unwrap();
        let all: Vec<u32> = (0..6).collect();
        let hist = Histogram::build(&binned, 1, &all, &grad, &hess);
        let total = Stats {
            g: 2.0,
            h: 6.0,
            n: 6,
        };
        let split = best_split(&hist, &[binner.n_bins(0)], total, &rules()).unwrap();
        assert_eq!((split.bin, split.missing_left), (1, false));
        assert_eq!(split.left.n, 2);
    }
}
