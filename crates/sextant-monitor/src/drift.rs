//! Drift between a baseline and a window, computed from sketches: the distribution of a
//! numeric feature is a [`Cdf`] (from a KLL sketch's sorted view), that of a categorical one
//! its category counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A step CDF: points sorted by value, each with the fraction of the data `<=` it; the last
/// fraction is 1. Empty for a feature with no values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cdf {
    points: Vec<(f64, f64)>,
}

impl Cdf {
    /// A CDF from `(value, weight)` pairs in any order (NaN values are ignored).
    pub fn from_weighted(mut items: Vec<(f64, f64)>) -> Cdf {
        items.retain(|(v, w)| !v.is_nan() && *w > 0.0);
        items.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(items.len());
        let mut seen = 0.0;
        for (value, weight) in items {
            seen += weight;
            let fraction = (seen / total).min(1.0);
            match points.last_mut() {
                Some(last) if last.0 == value => last.1 = fraction,
                _ => points.push((value, fraction)),
            }
        }
        if let Some(last) = points.last_mut() {
            last.1 = 1.0;
        }
        Cdf { points }
    }

    /// The sorted `(value, fraction <= value)` points.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The fraction of the data `<= x`.
    pub fn at(&self, x: f64) -> f64 {
        match self.points.partition_point(|(v, _)| *v <= x) {
            0 => 0.0,
            i => self.points[i - 1].1,
        }
    }
}

/// SageMaker's (Deequ's) numeric distance: the largest absolute difference of the two CDFs,
/// evaluated at every point of either. 0 when either side is empty.
pub fn linf_distance(reference: &Cdf, current: &Cdf) -> f64 {
    if reference.is_empty() || current.is_empty() {
        return 0.0;
    }
    reference
        .points
        .iter()
        .chain(&current.points)
        .map(|(x, _)| (reference.at(*x) - current.at(*x)).abs())
        .fold(0.0, f64::max)
}

/// SageMaker's categorical L∞ distance: the largest absolute difference of the two
/// categories' proportions over the union of categories (repeated names summed). 0 when
/// either side is empty.
pub fn linf_categorical(reference: &[(String, u64)], current: &[(String, u64)]) -> f64 {
    let (r, c) = (tally(reference), tally(current));
    let (nr, nc): (f64, f64) = (r.values().sum(), c.values().sum());
    if nr == 0.0 || nc == 0.0 {
        return 0.0;
    }
    let share = |t: &BTreeMap<&str, f64>, k: &str, n: f64| t.get(k).map_or(0.0, |v| v / n);
    r.keys()
        .chain(c.keys())
        .map(|k| (share(&r, k, nr) - share(&c, k, nc)).abs())
        .fold(0.0, f64::max)
}

/// SageMaker's "Robust" comparison: the L∞ distance less the KS critical value
/// `c_alpha * sqrt((n + m) / (n m))` with Deequ's `c_alpha = 1.8`, floored at 0.
pub fn linf_robust(distance: f64, n: u64, m: u64) -> f64 {
    if n == 0 || m == 0 {
        return 0.0;
    }
    let (n, m) = (n as f64, m as f64);
    (distance - 1.8 * ((n + m) / (n * m)).sqrt()).max(0.0)
}

/// A numeric feature's side of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct NumericSample<'a> {
    pub cdf: &'a Cdf,
    /// Values summarized (not the sketch's retained items).
    pub n: u64,
    pub std_dev: f64,
}

impl NumericSample<'_> {
    fn is_empty(&self) -> bool {
        self.n == 0 || self.cdf.is_empty()
    }
}

/// Every statistic of a numeric comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericDrift {
    /// Two-sample Kolmogorov–Smirnov D.
    pub ks_statistic: f64,
    /// Its asymptotic p-value for the summarized sample sizes (1 when a side is empty).
    pub ks_p_value: f64,
    /// Wasserstein-1 distance, in the feature's units.
    pub wasserstein: f64,
    /// Divided by the reference's standard deviation (at least 0.001), as Evidently does.
    pub wasserstein_normed: f64,
    /// Population stability index over the reference's deciles.
    pub psi: f64,
    /// SageMaker's L∞ distance (the same number as D, kept under SageMaker's name).
    pub linf: f64,
    /// SageMaker's "Robust" distance: D less the KS critical value (c = 1.8).
    pub linf_robust: f64,
}

/// Every statistic of a categorical comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalDrift {
    /// Goodness of fit of the current counts to the reference's proportions.
    pub chi_square: f64,
    pub chi_square_df: f64,
    /// 1 when there is nothing to test (a side empty, or a single bucket).
    pub chi_square_p_value: f64,
    /// Jensen–Shannon distance (natural log; in [0, √ln 2]), scipy's `jensenshannon`.
    pub jensen_shannon: f64,
    pub psi: f64,
    /// Largest difference of category shares.
    pub linf: f64,
    /// Categories of the current data the reference never saw, sorted.
    pub unseen: Vec<String>,
}

/// Wasserstein-1 between two step CDFs: ∫|F − G| over the merged points. 0 when either
/// side is empty.
pub fn wasserstein(a: &Cdf, b: &Cdf) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut xs: Vec<f64> = a.points.iter().chain(&b.points).map(|(x, _)| *x).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    // Both CDFs are constant between consecutive merged points; walk them in step.
    let (mut i, mut j) = (0usize, 0usize);
    let (mut fa, mut fb) = (0.0, 0.0);
    let mut total = 0.0;
    for w in xs.windows(2) {
        while i < a.points.len() && a.points[i].0 <= w[0] {
            fa = a.points[i].1;
            i += 1;
        }
        while j < b.points.len() && b.points[j].0 <= w[0] {
            fb = b.points[j].1;
            j += 1;
        }
        total += (fa - fb).abs() * (w[1] - w[0]);
    }
    total
}

/// Zero shares are replaced by this before logarithms (Evidently's 1e-4, §2.4).
const EPS: f64 = 1e-4;

/// PSI = Σ (a − e)·ln(a/e) with zero shares smoothed to [`EPS`].
fn psi_of(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(EPS), a.max(EPS));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// The shares of the reference's decile bins (−∞, q₁], (q₁, q₂], …, (q₉, ∞) in `cdf`;
/// repeated deciles (discrete data) collapse into one edge.
fn decile_shares(reference: &Cdf, cdf: &Cdf) -> Vec<f64> {
    let mut edges: Vec<f64> = Vec::with_capacity(9);
    let pts = reference.points();
    for q in 1..10 {
        let q = f64::from(q) / 10.0;
        let k = pts.partition_point(|(_, f)| *f < q);
        if let Some(&(x, _)) = pts.get(k)
            && edges.last() != Some(&x)
        {
            edges.push(x);
        }
    }
    let mut out = Vec::with_capacity(edges.len() + 1);
    let mut below = 0.0;
    for &e in &edges {
        let f = cdf.at(e);
        out.push(f - below);
        below = f;
    }
    out.push(1.0 - below);
    out
}

/// Compares a numeric feature's window with its reference. A side without values gives
/// distances of 0 and a p-value of 1 (nothing to compare).
pub fn numeric_drift(reference: NumericSample<'_>, current: NumericSample<'_>) -> NumericDrift {
    if reference.is_empty() || current.is_empty() {
        return NumericDrift {
            ks_statistic: 0.0,
            ks_p_value: 1.0,
            wasserstein: 0.0,
            wasserstein_normed: 0.0,
            psi: 0.0,
            linf: 0.0,
            linf_robust: 0.0,
        };
    }
    let d = linf_distance(reference.cdf, current.cdf);
    let w = wasserstein(reference.cdf, current.cdf);
    let psi = psi_of(
        &decile_shares(reference.cdf, reference.cdf),
        &decile_shares(reference.cdf, current.cdf),
    );
    NumericDrift {
        ks_statistic: d,
        ks_p_value: crate::stats::ks_p_value(d, reference.n, current.n),
        wasserstein: w,
        // `f64::max` ignores NaN, so an unknown deviation also falls back to the floor.
        wasserstein_normed: w / reference.std_dev.max(0.001),
        psi,
        linf: d,
        linf_robust: linf_robust(d, reference.n, current.n),
    }
}

/// Counts by category, duplicates summed, zero counts dropped, sorted by name.
fn tally(counts: &[(String, u64)]) -> BTreeMap<&str, f64> {
    let mut out: BTreeMap<&str, f64> = BTreeMap::new();
    for (k, n) in counts.iter().filter(|(_, n)| *n > 0) {
        *out.entry(k.as_str()).or_default() += *n as f64;
    }
    out
}

/// Compares a categorical feature's window counts with its reference counts.
///
/// Chi-square is the goodness of fit of the window to the reference's proportions
/// (expected = reference share × window total, df = buckets − 1). Categories the
/// reference never saw would have an expected count of 0 and an infinite statistic, so
/// they are pooled into one extra bucket whose reference weight is half an observation
/// (`0.5` against the reference's `n`): the statistic then grows with how often they
/// appear, stays finite, and they are listed in `unseen`. Jensen–Shannon, PSI and L∞ use
/// the plain shares over the union of categories.
pub fn categorical_drift(
    reference: &[(String, u64)],
    current: &[(String, u64)],
) -> CategoricalDrift {
    let (r, c) = (tally(reference), tally(current));
    let n: f64 = r.values().sum();
    let m: f64 = c.values().sum();
    let unseen: Vec<String> = c
        .keys()
        .filter(|k| !r.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    if n == 0.0 || m == 0.0 {
        return CategoricalDrift {
            chi_square: 0.0,
            chi_square_df: 0.0,
            chi_square_p_value: 1.0,
            jensen_shannon: 0.0,
            psi: 0.0,
            linf: 0.0,
            unseen,
        };
    }
    let cur = |k: &str| c.get(k).copied().unwrap_or(0.0);
    let mut weights: Vec<f64> = r.values().copied().collect();
    let mut observed: Vec<f64> = r.keys().map(|k| cur(k)).collect();
    let unseen_count: f64 = unseen.iter().map(|k| cur(k)).sum();
    if unseen_count > 0.0 {
        weights.push(0.5);
        observed.push(unseen_count);
    }
    let weight_total: f64 = weights.iter().sum();
    let (chi_square, df, p) = if observed.len() < 2 {
        (0.0, 0.0, 1.0)
    } else {
        let chi: f64 = weights
            .iter()
            .zip(&observed)
            .map(|(w, o)| {
                let expected = w / weight_total * m;
                (o - expected) * (o - expected) / expected
            })
            .sum();
        let df = (observed.len() - 1) as f64;
        (chi, df, crate::stats::chi2_sf(chi, df))
    };
    // Shares over the union of categories (reference's, then the unseen ones).
    let names: Vec<&str> = r
        .keys()
        .copied()
        .chain(unseen.iter().map(String::as_str))
        .collect();
    let p_ref: Vec<f64> = names
        .iter()
        .map(|k| r.get(k).copied().unwrap_or(0.0) / n)
        .collect();
    let p_cur: Vec<f64> = names.iter().map(|k| cur(k) / m).collect();
    CategoricalDrift {
        chi_square,
        chi_square_df: df,
        chi_square_p_value: p,
        jensen_shannon: jensen_shannon(&p_ref, &p_cur),
        psi: psi_of(&p_ref, &p_cur),
        linf: linf_categorical(reference, current),
        unseen,
    }
}

/// The Jensen–Shannon distance √(½ KL(p‖m) + ½ KL(q‖m)), m = (p + q)/2, natural log,
/// of two share vectors over the same categories (no smoothing, as scipy).
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let kl_to_mid = |a: &[f64], b: &[f64]| -> f64 {
        a.iter()
            .zip(b)
            .filter(|(x, _)| **x > 0.0)
            .map(|(x, y)| x * (x / ((x + y) / 2.0)).ln())
            .sum()
    };
    (0.5 * kl_to_mid(p, q) + 0.5 * kl_to_mid(q, p))
        .max(0.0)
        .sqrt()
}

/// When a feature counts as drifted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftConfig {
    /// Effect size at or above which a feature may drift: normed Wasserstein
    /// for numbers, Jensen–Shannon distance for categories (Evidently's 0.1).
    pub threshold: f64,
    /// Significance of the Benjamini–Hochberg-adjusted p-value (KS, chi-square).
    pub alpha: f64,
    /// Share of drifted features at which the data set drifts (Evidently's 0.5).
    pub drift_share: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            threshold: 0.1,
            alpha: 0.05,
            drift_share: 0.5,
        }
    }
}

/// Whether a feature is compared as numbers or as categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    Categorical,
}

/// The effect size a feature's verdict thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftMethod {
    /// Wasserstein-1 over the reference's standard deviation.
    WassersteinNormed,
    /// Jensen–Shannon distance of the category shares.
    JensenShannon,
}

impl DriftMethod {
    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftMethod::WassersteinNormed => "wasserstein_normed",
            DriftMethod::JensenShannon => "jensen_shannon",
        }
    }
}

/// Numeric or categorical detail of one feature's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftDetail {
    Numeric(NumericDrift),
    Categorical(CategoricalDrift),
}

/// One feature's verdict: drifted when its effect size reaches the threshold *and* its
/// (adjusted) p-value is below alpha. A large sample makes every p-value tiny, so
/// significance alone would flag noise at n = 1M; effect size alone would flag a small
/// sample's chance differences. A feature without a p-value (a side had no values) never
/// drifts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub name: String,
    pub kind: FeatureKind,
    pub method: DriftMethod,
    /// The effect size the threshold applies to.
    pub statistic: f64,
    /// KS (numbers) or chi-square (categories); `None` when a side had no values.
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg across the data set's features (set by [`dataset_drift`];
    /// the constructors put the unadjusted value here, i.e. a data set of one).
    pub adjusted_p_value: Option<f64>,
    pub drifted: bool,
    pub detail: DriftDetail,
}

impl FeatureDrift {
    /// A numeric feature's comparison; its verdict is final once [`dataset_drift`] has
    /// adjusted the p-values of all features together.
    pub fn numeric(
        name: &str,
        reference: NumericSample<'_>,
        current: NumericSample<'_>,
        config: &DriftConfig,
    ) -> FeatureDrift {
        let empty = reference.is_empty() || current.is_empty();
        let d = numeric_drift(reference, current);
        let p_value = (!empty).then_some(d.ks_p_value);
        FeatureDrift {
            name: name.to_string(),
            kind: FeatureKind::Numeric,
            method: DriftMethod::WassersteinNormed,
            statistic: d.wasserstein_normed,
            p_value,
            adjusted_p_value: p_value,
            drifted: verdict(d.wasserstein_normed, p_value, config),
            detail: DriftDetail::Numeric(d),
        }
    }

    /// A categorical feature's comparison; its verdict is final once [`dataset_drift`]
    /// has adjusted the p-values of all features together.
    pub fn categorical(
        name: &str,
        reference: &[(String, u64)],
        current: &[(String, u64)],
        config: &DriftConfig,
    ) -> FeatureDrift {
        let empty = tally(reference).is_empty() || tally(current).is_empty();
        let d = categorical_drift(reference, current);
        let p_value = (!empty).then_some(d.chi_square_p_value);
        FeatureDrift {
            name: name.to_string(),
            kind: FeatureKind::Categorical,
            method: DriftMethod::JensenShannon,
            statistic: d.jensen_shannon,
            p_value,
            adjusted_p_value: p_value,
            drifted: verdict(d.jensen_shannon, p_value, config),
            detail: DriftDetail::Categorical(d),
        }
    }
}

fn verdict(statistic: f64, p: Option<f64>, config: &DriftConfig) -> bool {
    statistic >= config.threshold && p.is_some_and(|p| p < config.alpha)
}

/// The data set's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    pub features: Vec<FeatureDrift>,
    pub drifted_count: usize,
    /// Drifted features over all features (0 for none).
    pub share: f64,
    /// Whether `share` reached the configured drift share.
    pub drifted: bool,
    /// Drifted features, largest effect first.
    pub drifted_features: Vec<String>,
    pub config: DriftConfig,
}

/// Adjusts the features' p-values together (Benjamini–Hochberg over the features that
/// have one), decides each verdict and the data set's.
pub fn dataset_drift(mut features: Vec<FeatureDrift>, config: &DriftConfig) -> DatasetDrift {
    let tested: Vec<usize> = (0..features.len())
        .filter(|&i| features[i].p_value.is_some_and(|p| !p.is_nan()))
        .collect();
    let p: Vec<f64> = tested.iter().filter_map(|&i| features[i].p_value).collect();
    let adjusted = crate::stats::benjamini_hochberg(&p);
    for f in &mut features {
        f.adjusted_p_value = None;
    }
    for (&i, a) in tested.iter().zip(adjusted) {
        features[i].adjusted_p_value = Some(a);
    }
    for f in &mut features {
        f.drifted = verdict(f.statistic, f.adjusted_p_value, config);
    }
    let mut drifted: Vec<&FeatureDrift> = features.iter().filter(|f| f.drifted).collect();
    drifted.sort_by(|a, b| b.statistic.total_cmp(&a.statistic));
    let drifted_features: Vec<String> = drifted.iter().map(|f| f.name.clone()).collect();
    let share = if features.is_empty() {
        0.0
    } else {
        drifted_features.len() as f64 / features.len() as f64
    };
    DatasetDrift {
        drifted_count: drifted_features.len(),
        drifted: !features.is_empty() && share >= config.drift_share,
        share,
        drifted_features,
        features,
        config: *config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linf_of_shifted_steps() {
        let a = Cdf::from_weighted(vec![(1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (4.0, 1.0)]);
        let b = Cdf::from_weighted(vec![(3.0, 1.0), (4.0, 1.0), (5.0, 1.0), (6.0, 1.0)]);
        assert_eq!(a.at(0.5), 0.0);
        assert_eq!(a.at(2.5), 0.5);
        assert_eq!(linf_distance(&a, &b), 0.5);
        assert_eq!(linf_distance(&a, &a), 0.0);
        let counts = |v: &[(&str, u64)]| {
            v.iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect::<Vec<_>>()
        };
        let d = linf_categorical(
            &counts(&[("x", 3), ("y", 1)]),
            &counts(&[("x", 1), ("z", 1)]),
        );
        assert!((d - 0.5).abs() < 1e-12, "{d}");
        assert!(linf_robust(0.1, 100, 100) == 0.0 && linf_robust(0.5, 10_000, 10_000) > 0.45);
    }
}
