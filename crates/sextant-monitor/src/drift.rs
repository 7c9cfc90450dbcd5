//! Drift between a baseline and a window, computed from sketches: the distribution of a
//! numeric feature is a [`Cdf`] (from a KLL sketch's sorted view), that of a categorical one
//! its category counts.

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
