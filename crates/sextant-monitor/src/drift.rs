//! Drift between a baseline and a window, computed from sketches: the distribution of a
//! numeric feature is a [`Cdf`] (from a KLL sketch's sorted view), that of a categorical one
//! its category counts.

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
/// categories' proportions over the union of categories. 0 when either side is empty.
pub fn linf_categorical(reference: &[(String, u64)], current: &[(String, u64)]) -> f64 {
    let total = |c: &[(String, u64)]| c.iter().map(|(_, n)| *n).sum::<u64>() as f64;
    let (nr, nc) = (total(reference), total(current));
    if nr == 0.0 || nc == 0.0 {
        return 0.0;
    }
    let share = |c: &[(String, u64)], name: &str, n: f64| {
        c.iter()
            .find(|(k, _)| k == name)
            .map_or(0.0, |(_, v)| *v as f64 / n)
    };
    reference
        .iter()
        .chain(current)
        .map(|(name, _)| (share(reference, name, nr) - share(current, name, nc)).abs())
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

/// Every statistic of a numeric comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericDrift {
    /// Two-sample Kolmogorov–Smirnov D (= SageMaker's L∞ distance).
    pub ks_statistic: f64,
    /// Its asymptotic p-value for the summarized sample sizes.
    pub ks_p_value: f64,
    /// Wasserstein-1 distance, in the feature's units.
    pub wasserstein: f64,
    /// Divided by the reference's standard deviation (at least 0.001), as Evidently does.
    pub wasserstein_normed: f64,
    /// Population stability index over the reference's deciles.
    pub psi: f64,
    /// SageMaker's "Robust" distance: D less the KS critical value (c = 1.8).
    pub linf_robust: f64,
}

/// Every statistic of a categorical comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalDrift {
    /// Goodness of fit of the current counts to the reference's proportions.
    pub chi_square: f64,
    pub chi_square_df: f64,
    pub chi_square_p_value: f64,
    /// Jensen–Shannon distance (natural log; in [0, √ln 2]), scipy's `jensenshannon`.
    pub jensen_shannon: f64,
    pub psi: f64,
    /// Largest difference of category shares.
    pub linf: f64,
    /// Categories of the current data the reference never saw.
    pub unseen: Vec<String>,
}

/// Wasserstein-1 between two step CDFs: ∫|F − G| over the merged points.
pub fn wasserstein(a: &Cdf, b: &Cdf) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut xs: Vec<f64> = a.points.iter().chain(&b.points).map(|(x, _)| *x).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
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

/// Zero shares are replaced by this before logarithms (Evidently's 1e-4).
const EPS: f64 = 1e-4;

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

/// Compares a numeric feature's window with its reference.
pub fn numeric_drift(reference: NumericSample<'_>, current: NumericSample<'_>) -> NumericDrift {
    let d = linf_distance(reference.cdf, current.cdf);
    let w = wasserstein(reference.cdf, current.cdf);
    // Deciles of the reference as bin edges (deduplicated for discrete data).
    let mut edges: Vec<f64> = Vec::new();
    let pts = reference.cdf.points();
    for q in 1..10 {
        let q = q as f64 / 10.0;
        let k = pts.partition_point(|(_, f)| *f < q);
        if let Some(&(x, _)) = pts.get(k)
            && edges.last() != Some(&x)
        {
            edges.push(x);
        }
    }
    let shares = |cdf: &Cdf| -> Vec<f64> {
        let mut out = Vec::with_capacity(edges.len() + 1);
        let mut below = 0.0;
        for &e in &edges {
            let f = cdf.at(e);
            out.push(f - below);
            below = f;
        }
        out.push(1.0 - below);
        out
    };
    let psi = if reference.cdf.is_empty() || current.cdf.is_empty() {
        0.0
    } else {
        psi_of(&shares(reference.cdf), &shares(current.cdf))
    };
    NumericDrift {
        ks_statistic: d,
        ks_p_value: crate::stats::ks_p_value(d, reference.n, current.n),
        wasserstein: w,
        wasserstein_normed: w / reference.std_dev.max(0.001),
        psi,
        linf_robust: linf_robust(d, reference.n, current.n),
    }
}

/// Compares a categorical feature's window counts with its reference counts.
///
/// Categories the reference never saw are pooled into one bucket whose
/// reference share is half an observation (`0.5 / n`): chi-square then grows
/// with how often they appear instead of being infinite.
pub fn categorical_drift(
    reference: &[(String, u64)],
    current: &[(String, u64)],
) -> CategoricalDrift {
    let n: f64 = reference.iter().map(|(_, c)| *c as f64).sum();
    let m: f64 = current.iter().map(|(_, c)| *c as f64).sum();
    let cur = |k: &str| {
        current
            .iter()
            .find(|(c, _)| c == k)
            .map_or(0.0, |(_, v)| *v as f64)
    };
    let refc = |k: &str| {
        reference
            .iter()
            .find(|(c, _)| c == k)
            .map_or(0.0, |(_, v)| *v as f64)
    };
    let unseen: Vec<String> = current
        .iter()
        .filter(|(k, c)| *c > 0 && refc(k) == 0.0)
        .map(|(k, _)| k.clone())
        .collect();
    let unseen_count: f64 = unseen.iter().map(|k| cur(k)).sum();
    // Buckets: reference categories, plus the pooled unseen ones.
    let mut expected_share: Vec<f64> = reference
        .iter()
        .map(|(_, c)| *c as f64 / n.max(1.0))
        .collect();
    let mut observed: Vec<f64> = reference.iter().map(|(k, _)| cur(k)).collect();
    if unseen_count > 0.0 {
        expected_share.push(0.5 / n.max(1.0));
        observed.push(unseen_count);
        let total: f64 = expected_share.iter().sum();
        expected_share.iter_mut().for_each(|e| *e /= total);
    }
    let (chi_square, df, p) = if n == 0.0 || m == 0.0 || observed.len() < 2 {
        (0.0, 0.0, 1.0)
    } else {
        let chi: f64 = expected_share
            .iter()
            .zip(&observed)
            .filter(|(e, _)| **e > 0.0)
            .map(|(e, o)| {
                let ex = e * m;
                (o - ex) * (o - ex) / ex
            })
            .sum();
        let df = (observed.len() - 1) as f64;
        (chi, df, crate::stats::chi2_sf(chi, df))
    };
    // Shares over the union of categories for JS, PSI and L∞.
    let mut names: Vec<&str> = reference.iter().map(|(k, _)| k.as_str()).collect();
    names.extend(unseen.iter().map(String::as_str));
    let p_ref: Vec<f64> = names.iter().map(|k| refc(k) / n.max(1.0)).collect();
    let p_cur: Vec<f64> = names.iter().map(|k| cur(k) / m.max(1.0)).collect();
    let kl = |p: &[f64], q: &[f64]| -> f64 {
        p.iter()
            .zip(q)
            .filter(|(a, _)| **a > 0.0)
            .map(|(a, b)| a * (a / b).ln())
            .sum()
    };
    let mid: Vec<f64> = p_ref
        .iter()
        .zip(&p_cur)
        .map(|(a, b)| (a + b) / 2.0)
        .collect();
    let jsd = 0.5 * kl(&p_ref, &mid) + 0.5 * kl(&p_cur, &mid);
    let empty = n == 0.0 || m == 0.0;
    CategoricalDrift {
        chi_square,
        chi_square_df: df,
        chi_square_p_value: p,
        jensen_shannon: if empty { 0.0 } else { jsd.max(0.0).sqrt() },
        psi: if empty { 0.0 } else { psi_of(&p_ref, &p_cur) },
        linf: linf_categorical(reference, current),
        unseen,
    }
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

/// Numeric or categorical detail of one feature's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftDetail {
    Numeric(NumericDrift),
    Categorical(CategoricalDrift),
}

/// One feature's verdict: drifted when its effect size reaches the
/// threshold *and* its adjusted p-value is below alpha — a large sample makes
/// every p-value tiny, so significance alone would flag noise, and effect
/// size alone would flag small samples' chance differences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub name: String,
    /// `wasserstein_normed` or `jensen_shannon`.
    pub method: String,
    /// The effect size the threshold applies to.
    pub statistic: f64,
    /// KS (numbers) or chi-square (categories).
    pub p_value: f64,
    /// Benjamini–Hochberg across the data set's features.
    pub adjusted_p_value: f64,
    pub drifted: bool,
    pub detail: DriftDetail,
}

impl FeatureDrift {
    /// A numeric feature's comparison (verdict set by [`dataset_drift`]).
    pub fn numeric(
        name: &str,
        reference: NumericSample<'_>,
        current: NumericSample<'_>,
    ) -> FeatureDrift {
        let d = numeric_drift(reference, current);
        FeatureDrift {
            name: name.to_string(),
            method: "wasserstein_normed".into(),
            statistic: d.wasserstein_normed,
            p_value: d.ks_p_value,
            adjusted_p_value: d.ks_p_value,
            drifted: false,
            detail: DriftDetail::Numeric(d),
        }
    }

    /// A categorical feature's comparison (verdict set by [`dataset_drift`]).
    pub fn categorical(
        name: &str,
        reference: &[(String, u64)],
        current: &[(String, u64)],
    ) -> FeatureDrift {
        let d = categorical_drift(reference, current);
        FeatureDrift {
            name: name.to_string(),
            method: "jensen_shannon".into(),
            statistic: d.jensen_shannon,
            p_value: d.chi_square_p_value,
            adjusted_p_value: d.chi_square_p_value,
            drifted: false,
            detail: DriftDetail::Categorical(d),
        }
    }
}

/// The data set's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    pub features: Vec<FeatureDrift>,
    pub drifted_count: usize,
    pub share: f64,
    pub drifted: bool,
    /// Drifted features, largest effect first.
    pub drifted_features: Vec<String>,
    pub config: DriftConfig,
}

/// Adjusts the features' p-values together and decides each verdict and the data set's.
pub fn dataset_drift(mut features: Vec<FeatureDrift>, config: &DriftConfig) -> DatasetDrift {
    let p: Vec<f64> = features.iter().map(|f| f.p_value).collect();
    let adjusted = crate::stats::benjamini_hochberg(&p);
    for (f, a) in features.iter_mut().zip(adjusted) {
        f.adjusted_p_value = if a.is_nan() { 1.0 } else { a };
        f.drifted = f.statistic >= config.threshold && f.adjusted_p_value < config.alpha;
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
