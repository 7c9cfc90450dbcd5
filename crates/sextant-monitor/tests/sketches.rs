//! The sketches behind profiles stay within their error bounds, and merging
//! is order-independent: hourly profiles merged into a day in any order give
//! the same exact parts (counts, types, moments, categories, distinct counts)
//! and quantiles within the same bound.

use std::collections::HashMap;

use proptest::prelude::*;
use sextant_monitor::kll::Kll;
use sextant_monitor::profile::{ColumnProfile, ProfileOptions};

/// KLL's normalized rank error at 99 % confidence is about 1.7 / k^0.97; the
/// tests allow 2.5 times that, far out in the error's (sub-Gaussian) tail, so
/// a failure means a broken sketch rather than bad luck.
fn rank_bound(k: u16) -> f64 {
    2.5 * 1.7 / f64::from(k).powf(0.97)
}

/// The largest error of `sketch`'s rank estimates over `values`, as a
/// fraction of their count, at every 1/20 quantile of the data.
fn worst_rank_error(sketch: &Kll, values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    (1..20)
        .map(|i| sorted[(sorted.len() * i / 20).min(sorted.len() - 1)])
        .map(|x| {
            let truth = sorted.partition_point(|v| *v <= x) as f64;
            (sketch.rank(x) - truth).abs() / n
        })
        .fold(0.0, f64::max)
}

fn sketch_of(values: &[f64], k: u16) -> Kll {
    let mut s = Kll::new(k);
    for &v in values {
        s.update(v);
    }
    s
}

fn column_of(cells: &[Option<String>]) -> ColumnProfile {
    let mut c = ColumnProfile::new("c", &ProfileOptions::default());
    for cell in cells {
        c.push_text(cell.as_deref());
    }
    c
}

/// A cell: missing, an integer, a decimal, a boolean or a word; under 1,000
/// distinct values, so category counts stay exact.
fn cell() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => (-50i64..50).prop_map(|i| Some(i.to_string())),
        3 => (-200i64..200).prop_map(|x| Some(format!("{:.1}", x as f64 / 10.0))),
        1 => any::<bool>().prop_map(|b| Some(b.to_string())),
        2 => "[a-e]{1,2}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn kll_ranks_stay_within_the_error_bound(
        values in prop::collection::vec(-1e6f64..1e6, 1..20_000),
        k in prop::sample::select(vec![64u16, 200, 1024]),
    ) {
        let s = sketch_of(&values, k);
        prop_assert_eq!(s.n(), values.len() as u64);
        let err = worst_rank_error(&s, &values);
        if values.len() < usize::from(k) {
            // Nothing was compacted yet: ranks are exact.
            prop_assert_eq!(err, 0.0);
        }
        prop_assert!(err <= rank_bound(k), "rank error {err} > {} (n {}, k {k})", rank_bound(k), values.len());
    }

    #[test]
    fn kll_merged_in_any_order_keeps_the_bound(
        values in prop::collection::vec(-1e3f64..1e3, 3..15_000),
        cut in (0.0f64..1.0, 0.0f64..1.0),
    ) {
        let k = 200;
        let (a, b) = {
            let mut c = [(cut.0 * values.len() as f64) as usize, (cut.1 * values.len() as f64) as usize];
            c.sort_unstable();
            (c[0], c[1])
        };
        let parts = [&values[..a], &values[a..b], &values[b..]];
        let [p, q, r] = parts.map(|p| sketch_of(p, k));
        let mut forward = p.clone();
        forward.merge(&q);
        forward.merge(&r);
        let mut backward = r.clone();
        backward.merge(&p);
        backward.merge(&q);
        for merged in [&forward, &backward] {
            prop_assert_eq!(merged.n(), values.len() as u64);
            let err = worst_rank_error(merged, &values);
            prop_assert!(err <= rank_bound(k), "merged rank error {err} > {}", rank_bound(k));
        }
    }

    #[test]
    fn distinct_counts_are_exact_then_within_the_hll_bound(
        n in 1usize..30_000,
        repeats in 1usize..3,
    ) {
        let mut c = ColumnProfile::new("id", &ProfileOptions::default());
        for r in 0..repeats {
            for i in 0..n {
                // Repeats in another order change nothing.
                let i = if r % 2 == 0 { i } else { n - 1 - i };
                c.push_text(Some(&format!("user-{i}")));
            }
        }
        let estimate = c.distinct_count() as f64;
        if n <= ProfileOptions::default().exact_limit {
            prop_assert_eq!(estimate, n as f64);
        } else {
            // lg_k 12: relative standard error 1.04 / sqrt(4096) = 1.6 %; 4 sigma.
            let err = (estimate - n as f64).abs() / n as f64;
            prop_assert!(err <= 0.065, "distinct {estimate} for {n} (error {err})");
        }
    }

    #[test]
    fn column_profiles_merge_in_any_order_to_the_same_profile(
        cells in prop::collection::vec(cell(), 0..3_000),
        cut in (0.0f64..1.0, 0.0f64..1.0),
    ) {
        let (a, b) = {
            let mut c = [(cut.0 * cells.len() as f64) as usize, (cut.1 * cells.len() as f64) as usize];
            c.sort_unstable();
            (c[0], c[1])
        };
        let whole = column_of(&cells);
        let [p, q, r] = [&cells[..a], &cells[a..b], &cells[b..]].map(column_of);
        let mut forward = p.clone();
        forward.merge(&q);
        forward.merge(&r);
        let mut backward = r.clone();
        backward.merge(&q);
        backward.merge(&p);
        for merged in [&forward, &backward] {
            prop_assert_eq!(merged.count, whole.count);
            prop_assert_eq!(merged.missing, whole.missing);
            prop_assert_eq!(merged.types, whole.types);
            prop_assert_eq!(merged.inferred_type(), whole.inferred_type());
            prop_assert_eq!(merged.categories(), whole.categories());
            prop_assert_eq!(merged.distinct_count(), whole.distinct_count());
            let (m, w) = (merged.moments, whole.moments);
            prop_assert_eq!((m.n, m.min, m.max), (w.n, w.min, w.max));
            if m.n == 0 {
                continue;
            }
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()));
            prop_assert!(close(m.sum, w.sum) && close(m.mean, w.mean), "{m:?} vs {w:?}");
            prop_assert!(close(merged.std_dev(), whole.std_dev()), "{m:?} vs {w:?}");
            prop_assert_eq!(merged.kll.n(), whole.kll.n());
        }
    }

    #[test]
    fn frequent_items_stay_within_the_misra_gries_bound_merged_in_any_order(
        heavy in prop::collection::vec(0usize..5, 0..4_000),
        noise in prop::collection::vec("[b-z]{4}", 0..6_000),
        cut in 0.0f64..1.0,
    ) {
        // A few heavy hitters among thousands of rare words, past the exact limit
        // (four letters without an `a`: never a number such as `nan` or `inf`).
        let mut cells: Vec<String> = heavy.iter().map(|h| format!("HEAVY{h}")).collect();
        cells.extend(noise);
        let truth: HashMap<&str, u64> = cells.iter().fold(HashMap::new(), |mut m, c| {
            *m.entry(c.as_str()).or_default() += 1;
            m
        });
        let cells: Vec<Option<String>> = cells.iter().cloned().map(Some).collect();
        let at = (cut * cells.len() as f64) as usize;
        let (p, q) = (column_of(&cells[..at]), column_of(&cells[at..]));
        let mut forward = p.clone();
        forward.merge(&q);
        let mut backward = q.clone();
        backward.merge(&p);
        for merged in [&forward, &backward] {
            let c = &merged.categories;
            prop_assert_eq!(c.exact, truth.len() <= ProfileOptions::default().exact_limit);
            let estimates: HashMap<&str, u64> = c.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            for (item, &count) in &truth {
                let estimate = estimates.get(item).copied().unwrap_or(0);
                // Never over-counted, under-counted by at most `error`: every
                // item more frequent than `error` is kept.
                prop_assert!(estimate <= count && count - estimate <= c.error,
                    "{item}: estimate {estimate}, true {count}, error {}", c.error);
            }
        }
    }
}
