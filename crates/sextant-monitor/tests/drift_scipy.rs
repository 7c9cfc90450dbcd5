//! Drift statistics and the special functions under them, on fixed data, against scipy.
//! The Python that produced each expected value is in the comment above it (scipy 1.x,
//! `from scipy import stats, special; from scipy.spatial.distance import jensenshannon`).
//! Tolerances are stated at each assertion: 1e-12 relative where the computation is the
//! same, looser where the method differs on purpose (KS p-values, see there).

use proptest::prelude::*;
use sextant_monitor::drift::{
    Cdf, DriftConfig, DriftDetail, DriftMethod, FeatureDrift, FeatureKind, NumericSample,
    categorical_drift, dataset_drift, jensen_shannon, linf_distance, numeric_drift, wasserstein,
};
use sextant_monitor::stats::{
    benjamini_hochberg, chi2_sf, kolmogorov_sf, ks_p_value, normal_cdf, normal_sf,
};

/// |got − want| ≤ rel·|want| (or ≤ rel when want is 0).
fn close(got: f64, want: f64, rel: f64) {
    let tol = if want == 0.0 { rel } else { rel * want.abs() };
    assert!(
        (got - want).abs() <= tol,
        "got {got:e}, want {want:e} (rel {rel:e})"
    );
}

fn cdf(x: &[f64]) -> Cdf {
    Cdf::from_weighted(x.iter().map(|v| (*v, 1.0)).collect())
}
fn std(x: &[f64]) -> f64 {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64).sqrt()
}
fn sample(x: &[f64]) -> (Cdf, u64, f64) {
    (cdf(x), x.len() as u64, std(x))
}
fn counts(names: &[&str], c: &[u64]) -> Vec<(String, u64)> {
    names
        .iter()
        .zip(c)
        .map(|(n, c)| (n.to_string(), *c))
        .collect()
}

// a = [(i*37 % 101)/10 for i in range(200)]; b = [(i*53 % 97)/10 + 0.8 for i in range(150)]
fn a1() -> Vec<f64> {
    (0..200).map(|i| ((i * 37) % 101) as f64 / 10.0).collect()
}
fn b1() -> Vec<f64> {
    (0..150)
        .map(|i| ((i * 53) % 97) as f64 / 10.0 + 0.8)
        .collect()
}
// a2 = [(i*7919 % 1000)/100 for i in range(2000)]; b2 = [(i*104729 % 997)/100 + 0.3 for i in range(3000)]
fn a2() -> Vec<f64> {
    (0..2000u64)
        .map(|i| ((i * 7919) % 1000) as f64 / 100.0)
        .collect()
}
fn b2() -> Vec<f64> {
    (0..3000u64)
        .map(|i| ((i * 104_729) % 997) as f64 / 100.0 + 0.3)
        .collect()
}
// a3 = [(i*31 % 1009)/1009 for i in range(5000)]; b3 = [((i*17 % 1013)/1013)**1.5 for i in range(4000)]
fn a3() -> Vec<f64> {
    (0..5000u64)
        .map(|i| ((i * 31) % 1009) as f64 / 1009.0)
        .collect()
}
fn b3() -> Vec<f64> {
    (0..4000u64)
        .map(|i| (((i * 17) % 1013) as f64 / 1013.0).powf(1.5))
        .collect()
}

#[test]
fn ks_wasserstein_against_scipy() {
    // (data, ks_2samp(a, b, method='asymp') statistic & pvalue, wasserstein_distance(a, b),
    //  special.kolmogorov((√ne + 0.12 + 0.11/√ne)·D) = the Stephens form we compute,
    //  relative tolerance of our p against scipy's)
    //
    // scipy's asymptotic mode uses kstwo.sf(D, round(ne)) (the exact one-sample law at the
    // effective size); Kolmogorov's limit with Stephens' correction is what a sketch-sized
    // monitor can afford at any n. The two differ by 2.3 % at ne = 86, 0.44 % at ne = 1200
    // and 6.4 % on a p-value of 1e-43 (ne = 2222); the Stephens value itself is matched to
    // 1e-9.
    type Case = (Vec<f64>, Vec<f64>, f64, f64, f64, f64, f64);
    let cases: [Case; 3] = [
        (
            a1(),
            b1(),
            0.08666666666666666,
            0.5103633130679794,
            0.5115000000000002,
            0.5218503754200139,
            0.03,
        ),
        (
            a2(),
            b2(),
            0.03066666666666667,
            0.20484641704037687,
            0.2753400000000001,
            0.20575026466794466,
            0.006,
        ),
        (
            a3(),
            b3(),
            0.1493,
            1.0603131606033094e-43,
            0.09986499727026801,
            1.1281854340603323e-43,
            0.08,
        ),
    ];
    for (a, b, d_want, p_scipy, w_want, p_stephens, p_rel) in cases {
        let ((ca, na, sa), (cb, nb, sb)) = (sample(&a), sample(&b));
        let d = numeric_drift(
            NumericSample {
                cdf: &ca,
                n: na,
                std_dev: sa,
            },
            NumericSample {
                cdf: &cb,
                n: nb,
                std_dev: sb,
            },
        );
        close(d.ks_statistic, d_want, 1e-12);
        assert_eq!(d.linf, d.ks_statistic);
        close(d.ks_p_value, p_stephens, 1e-9);
        close(d.ks_p_value, p_scipy, p_rel);
        close(d.wasserstein, w_want, 1e-9);
        close(wasserstein(&cb, &ca), d.wasserstein, 1e-12);
        // np.std(a) (population) is the divisor, floored at 0.001.
        close(d.wasserstein_normed, w_want / sa, 1e-9);
    }
    // ks_2samp(a, a, method='asymp') -> 0.0, 1.0
    let a = a1();
    let c = cdf(&a);
    let s = NumericSample {
        cdf: &c,
        n: 200,
        std_dev: std(&a),
    };
    let same = numeric_drift(s, s);
    assert_eq!(
        (
            same.ks_statistic,
            same.ks_p_value,
            same.wasserstein,
            same.psi
        ),
        (0.0, 1.0, 0.0, 0.0)
    );
}

#[test]
fn kolmogorov_normal_chi2_against_scipy() {
    // special.kolmogorov(lam)
    for (lam, want) in [
        (0.1, 1.0),
        (0.2, 0.999999999999495),
        (0.3, 0.9999906941986655),
        (0.5, 0.9639452436648751),
        (0.8, 0.5441424115741981),
        (1.0, 0.26999967167735456),
        (1.5, 0.022217962616525127),
        (2.0, 0.0006709252557796953),
        (3.0, 3.045995948942526e-08),
        (5.0, 3.8574996959278356e-22),
    ] {
        close(kolmogorov_sf(lam), want, 1e-12);
    }
    assert_eq!(kolmogorov_sf(0.0), 1.0);
    assert_eq!(ks_p_value(0.5, 0, 10), 1.0);
    // stats.norm.sf(z), stats.norm.cdf(z); relative 1e-9 down to 1e-300.
    for (z, sf, cdf) in [
        (0.0, 0.5, 0.5),
        (1.0, 0.15865525393145707, 0.8413447460685429),
        (-1.0, 0.8413447460685429, 0.15865525393145707),
        (1.959963984540054, 0.025, 0.975),
        (3.0, 0.0013498980316300933, 0.9986501019683699),
        (6.0, 9.865876450376946e-10, 0.9999999990134123),
        (10.0, 7.61985302416047e-24, 1.0),
        (20.0, 2.7536241186061556e-89, 1.0),
        (37.0, 5.7255712225239266e-300, 1.0),
        (-8.0, 0.9999999999999993, 6.22096057427174e-16),
    ] {
        close(normal_sf(z), sf, 1e-9);
        close(normal_cdf(z), cdf, 1e-9);
    }
    // stats.chi2.sf(x, df): large df and statistics, tiny and huge tails; relative 1e-8
    // (1e-6 at df = 1e6, where ln Γ's rounding is amplified by the size of its argument).
    for (x, df, want, rel) in [
        (1e5, 1e5, 0.4994052918952067, 1e-8),
        (1.01e5, 1e5, 0.012868840377233648, 1e-8),
        (1.02e5, 1e5, 4.41193925512029e-06, 1e-8),
        (1.01e6, 1e6, 9.068528823262108e-13, 1e-6),
        (0.99e6, 1e6, 0.99999999999935, 1e-12),
        (1e-8, 1.0, 0.9999202115440526, 1e-10),
        (1400.0, 2.0, 9.85967654375939e-305, 1e-8),
        (50.0, 0.5, 3.329834727649937e-13, 1e-8),
        (5000.0, 500.0, 0.0, 0.0),
        (1e4, 3.0, 0.0, 0.0),
        (3.84145882, 1.0, 0.0500000000206984, 1e-9),
        (700.0, 4.0, 3.4852862290889247e-150, 1e-9),
        (2000.0, 1000.0, 4.1436785914539184e-69, 1e-8),
        (900.0, 1000.0, 0.9892827619087102, 1e-10),
    ] {
        close(chi2_sf(x, df), want, rel);
    }
    assert_eq!(chi2_sf(f64::INFINITY, 3.0), 0.0);
    assert_eq!(chi2_sf(0.0, 3.0), 1.0);
}

#[test]
fn categorical_statistics_match_scipy() {
    let names = ["a", "b", "c", "d", "e"];
    let reference = counts(&names, &[400, 300, 150, 100, 50]);
    let current = counts(&names, &[200, 200, 200, 200, 200]);
    let d = categorical_drift(&reference, &current);
    // exp = np.array(ref)/sum(ref)*sum(cur); stats.chisquare(cur, exp) -> 700.0, 3.4852862290889247e-150
    close(d.chi_square, 700.0, 1e-12);
    assert_eq!(d.chi_square_df, 4.0);
    close(d.chi_square_p_value, 3.4852862290889247e-150, 1e-9);
    // jensenshannon(ref/sum(ref), cur/sum(cur)) -> 0.2374945616432288
    close(d.jensen_shannon, 0.2374945616432288, 1e-12);
    close(d.linf, 0.2, 1e-12);
    // sum((a - e) * log(a / e)) over the shares (no zero cells here)
    let (e, a): ([f64; 5], [f64; 5]) = ([0.4, 0.3, 0.15, 0.1, 0.05], [0.2; 5]);
    let psi: f64 = e.iter().zip(a).map(|(e, a)| (a - e) * (a / e).ln()).sum();
    close(d.psi, psi, 1e-12);

    // ref3 = [500, 480, 20]; cur3 = [260, 250, 10]; exp3 = ref3/sum(ref3)*sum(cur3)
    // stats.chisquare(cur3, exp3) -> 0.01602564102564107, 0.9920191965607057
    let d = categorical_drift(
        &counts(&["x", "y", "z"], &[500, 480, 20]),
        &counts(&["x", "y", "z"], &[260, 250, 10]),
    );
    close(d.chi_square, 0.01602564102564107, 1e-9);
    close(d.chi_square_p_value, 0.9920191965607057, 1e-9);

    // A category present in one side only: jensenshannon([10,20,30,0,40]/100, [12,18,35,5,30]/100)
    // -> 0.15031067225675332. Zero counts and duplicate names are tallied, not double-counted.
    let r = counts(&["a", "b", "c", "d", "e", "c"], &[10, 20, 20, 0, 40, 10]);
    let c = counts(&["a", "b", "c", "d", "e"], &[12, 18, 35, 5, 30]);
    let d = categorical_drift(&r, &c);
    close(d.jensen_shannon, 0.15031067225675332, 1e-12);
    assert_eq!(d.unseen, ["d"]);
    assert_eq!(
        d.chi_square_df, 4.0,
        "four reference categories and the unseen bucket"
    );
    close(
        jensen_shannon(&[0.1, 0.2, 0.3, 0.0, 0.4], &[0.12, 0.18, 0.35, 0.05, 0.3]),
        0.15031067225675332,
        1e-12,
    );
}

#[test]
fn unseen_and_empty_categories_are_finite() {
    let names = ["a", "b", "c", "d", "e"];
    let reference = counts(&names, &[400, 300, 150, 100, 50]);
    let mut current = counts(&names, &[200, 200, 200, 200, 200]);
    current.push(("zzz".into(), 100));
    let d = categorical_drift(&reference, &current);
    assert_eq!(d.unseen, ["zzz"]);
    assert!(d.chi_square.is_finite() && d.chi_square > 700.0);
    assert!(d.chi_square_p_value >= 0.0 && d.chi_square_p_value < 1e-100);
    assert_eq!(d.chi_square_df, 5.0);
    // Only unseen categories in the window: still finite, certainly drifted.
    let d = categorical_drift(&counts(&["a"], &[10]), &counts(&["b"], &[10]));
    assert!(
        d.chi_square.is_finite() && d.chi_square_p_value < 1e-3,
        "{d:?}"
    );
    close(d.jensen_shannon, std::f64::consts::LN_2.sqrt(), 1e-12);
    // Nothing to compare: zeros and p = 1, and the feature has no p-value.
    let d = categorical_drift(&[], &counts(&["a"], &[3]));
    assert_eq!(
        (d.chi_square, d.chi_square_p_value, d.jensen_shannon),
        (0.0, 1.0, 0.0)
    );
    let f = FeatureDrift::categorical(
        "c",
        &counts(&["a"], &[0]),
        &counts(&["a"], &[3]),
        &DriftConfig::default(),
    );
    assert_eq!((f.p_value, f.drifted), (None, false));
    // A single category on both sides: one bucket, no test.
    let d = categorical_drift(&counts(&["a"], &[5]), &counts(&["a"], &[7]));
    assert_eq!(
        (
            d.chi_square,
            d.chi_square_df,
            d.chi_square_p_value,
            d.jensen_shannon
        ),
        (0.0, 0.0, 1.0, 0.0)
    );
}

#[test]
fn psi_uses_reference_deciles() {
    // Reference 0..999: deciles at 99, 199, …; the window is the top half, so five bins
    // hold 20 % each and five are empty (smoothed to 1e-4).
    let r: Vec<f64> = (0..1000).map(f64::from).collect();
    let c: Vec<f64> = (500..1000).map(f64::from).collect();
    let ((cr, nr, sr), (cc, nc, sc)) = (sample(&r), sample(&c));
    let d = numeric_drift(
        NumericSample {
            cdf: &cr,
            n: nr,
            std_dev: sr,
        },
        NumericSample {
            cdf: &cc,
            n: nc,
            std_dev: sc,
        },
    );
    let want = 5.0 * (0.2 - 0.1) * (0.2f64 / 0.1).ln() + 5.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln();
    close(d.psi, want, 1e-9);
    // An empty side compares as nothing: zeros, p = 1, no p-value on the feature.
    let empty = Cdf::default();
    let e = NumericSample {
        cdf: &empty,
        n: 0,
        std_dev: 0.0,
    };
    let r = NumericSample {
        cdf: &cr,
        n: nr,
        std_dev: sr,
    };
    let d = numeric_drift(r, e);
    assert_eq!(
        (d.ks_statistic, d.ks_p_value, d.wasserstein, d.psi),
        (0.0, 1.0, 0.0, 0.0)
    );
    let f = FeatureDrift::numeric("x", r, e, &DriftConfig::default());
    assert_eq!(
        (f.p_value, f.drifted, f.kind),
        (None, false, FeatureKind::Numeric)
    );
}

#[test]
fn verdicts_need_effect_size_and_significance() {
    // The same small shift at large n is significant but below the effect threshold.
    let base: Vec<f64> = (0..10_000)
        .map(|i| (i as f64 / 10_000.0 - 0.5) * 3.46)
        .collect();
    let tiny: Vec<f64> = base.iter().map(|x| x + 0.05).collect();
    let big: Vec<f64> = base.iter().map(|x| x + 0.5).collect();
    let (cb, ct, cg) = (cdf(&base), cdf(&tiny), cdf(&big));
    let at = |c: &'static Cdf| NumericSample {
        cdf: c,
        n: 1_000_000,
        std_dev: 1.0,
    };
    let (cb, ct, cg): (&'static Cdf, &'static Cdf, &'static Cdf) = (
        Box::leak(Box::new(cb)),
        Box::leak(Box::new(ct)),
        Box::leak(Box::new(cg)),
    );
    let config = DriftConfig::default();
    let r = counts(&["a", "b"], &[500, 500]);
    let features = vec![
        FeatureDrift::numeric("tiny", at(cb), at(ct), &config),
        FeatureDrift::numeric("big", at(cb), at(cg), &config),
        FeatureDrift::numeric("same", at(cb), at(cb), &config),
        // A large categorical shift on few rows: JS ≈ 0.32, below "big"'s normed
        // Wasserstein of 0.5, so listed after it.
        FeatureDrift::categorical("cat", &r, &counts(&["a", "b"], &[90, 10]), &config),
        FeatureDrift::categorical("empty", &r, &[], &config),
    ];
    assert_eq!(features[3].method, DriftMethod::JensenShannon);
    assert_eq!(features[1].method, DriftMethod::WassersteinNormed);
    let d = dataset_drift(features, &config);
    let by = |n: &str| d.features.iter().find(|f| f.name == n).unwrap();
    assert!(by("tiny").adjusted_p_value.unwrap() < 1e-10 && !by("tiny").drifted);
    assert!(by("big").drifted && by("cat").drifted && !by("same").drifted);
    assert_eq!(
        (
            by("empty").p_value,
            by("empty").adjusted_p_value,
            by("empty").drifted
        ),
        (None, None, false)
    );
    assert_eq!(d.drifted_features, ["big", "cat"], "largest effect first");
    assert_eq!(d.drifted_count, 2);
    close(d.share, 0.4, 1e-12);
    assert!(!d.drifted, "2 of 5 is under the 0.5 share");
    let DriftDetail::Categorical(c) = &by("cat").detail else {
        panic!("categorical detail")
    };
    assert!(c.chi_square_p_value < 0.05);
    // The report JSON round-trips.
    let json = serde_json::to_string(&d).unwrap();
    assert!(
        json.contains("\"kind\":\"categorical\"")
            && json.contains("\"method\":\"wasserstein_normed\"")
    );
    assert_eq!(
        serde_json::from_str::<sextant_monitor::drift::DatasetDrift>(&json).unwrap(),
        d
    );
}

#[test]
fn adjustment_can_overturn_a_marginal_verdict() {
    // Alone, p = 0.03 < 0.05 drifts; next to four features with p = 0.9 its BH-adjusted
    // p is 0.15 and it does not.
    let config = DriftConfig {
        threshold: 0.0,
        ..DriftConfig::default()
    };
    let r = counts(&["a", "b"], &[100, 100]);
    let mut f = FeatureDrift::categorical("m", &r, &counts(&["a", "b"], &[100, 100]), &config);
    f.p_value = Some(0.03);
    f.statistic = 0.2;
    let mut others = vec![f.clone()];
    for i in 0..4 {
        let mut o = f.clone();
        o.name = format!("o{i}");
        o.p_value = Some(0.9);
        others.push(o);
    }
    assert!(dataset_drift(vec![f], &config).features[0].drifted);
    let d = dataset_drift(others, &config);
    close(d.features[0].adjusted_p_value.unwrap(), 0.15, 1e-12);
    assert!(!d.features[0].drifted && d.drifted_count == 0);
}

#[test]
fn bh_matches_scipy() {
    // stats.false_discovery_control([0.01, 0.04, 0.03, 0.2, 0.5])
    let got = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.2, 0.5]);
    for (g, w) in got
        .iter()
        .zip([0.05, 0.06666666666666667, 0.06666666666666667, 0.25, 0.5])
    {
        close(*g, w, 1e-12);
    }
    // p2 = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216, 0.222,
    //       0.251, 0.269, 0.275, 0.34, 0.341, 0.384, 0.569, 0.594, 0.696, 0.762, 0.94,
    //       0.942, 0.975, 0.986, 0.04, 0.04]; stats.false_discovery_control(p2)
    let p2 = [
        0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216, 0.222, 0.251, 0.269,
        0.275, 0.34, 0.341, 0.384, 0.569, 0.594, 0.696, 0.762, 0.94, 0.942, 0.975, 0.986, 0.04,
        0.04,
    ];
    let want = [
        0.027,
        0.108,
        0.162,
        0.162,
        0.162,
        0.20249999999999999,
        0.22199999999999998,
        0.4610769230769231,
        0.4610769230769231,
        0.4610769230769231,
        0.4610769230769231,
        0.46406250000000004,
        0.46406250000000004,
        0.46406250000000004,
        0.5115000000000001,
        0.5115000000000001,
        0.5456842105263158,
        0.7637142857142858,
        0.7637142857142858,
        0.8541818181818182,
        0.8945217391304349,
        0.986,
        0.986,
        0.986,
        0.986,
        0.162,
        0.162,
    ];
    for (g, w) in benjamini_hochberg(&p2).iter().zip(want) {
        close(*g, w, 1e-12);
    }
    assert!(benjamini_hochberg(&[]).is_empty());
}

proptest! {
    #[test]
    fn distances_are_symmetric_and_p_values_bounded(
        a in proptest::collection::vec(-100.0f64..100.0, 1..200),
        b in proptest::collection::vec(-100.0f64..100.0, 1..200),
        n in 1u64..10_000_000,
        m in 1u64..10_000_000,
    ) {
        let (ca, cb) = (cdf(&a), cdf(&b));
        prop_assert!((linf_distance(&ca, &cb) - linf_distance(&cb, &ca)).abs() < 1e-12);
        prop_assert!((wasserstein(&ca, &cb) - wasserstein(&cb, &ca)).abs() < 1e-9);
        let sa = NumericSample { cdf: &ca, n, std_dev: std(&a) };
        let sb = NumericSample { cdf: &cb, n: m, std_dev: std(&b) };
        let d = numeric_drift(sa, sb);
        let back = numeric_drift(sb, sa);
        prop_assert!((0.0..=1.0).contains(&d.ks_p_value));
        prop_assert!((0.0..=1.0).contains(&d.ks_statistic));
        prop_assert!((d.ks_p_value - back.ks_p_value).abs() < 1e-12);
        prop_assert!(d.psi >= 0.0 && d.psi.is_finite());
        prop_assert!(d.wasserstein_normed.is_finite() && d.linf_robust >= 0.0);
    }

    #[test]
    fn categorical_p_values_bounded_and_js_symmetric(
        r in proptest::collection::vec(0u64..1_000_000, 1..8),
        c in proptest::collection::vec(0u64..1_000_000, 1..8),
    ) {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let (r, c) = (counts(&names[..r.len()], &r), counts(&names[..c.len()], &c));
        let d = categorical_drift(&r, &c);
        let back = categorical_drift(&c, &r);
        prop_assert!((0.0..=1.0).contains(&d.chi_square_p_value), "{d:?}");
        prop_assert!(d.chi_square.is_finite() && d.chi_square >= 0.0);
        prop_assert!((d.jensen_shannon - back.jensen_shannon).abs() < 1e-12);
        prop_assert!(d.jensen_shannon <= std::f64::consts::LN_2.sqrt() + 1e-12);
        prop_assert!((d.psi - back.psi).abs() < 1e-9 && d.psi >= 0.0);
        prop_assert!((d.linf - back.linf).abs() < 1e-12);
    }

    #[test]
    fn special_functions_stay_in_range(x in 0.0f64..1e7, df in 0.1f64..1e6, lam in 0.0f64..20.0) {
        let p = chi2_sf(x, df);
        prop_assert!((0.0..=1.0).contains(&p), "chi2_sf({x}, {df}) = {p}");
        prop_assert!(chi2_sf(x * 1.1 + 1.0, df) <= p + 1e-12);
        let q = kolmogorov_sf(lam);
        prop_assert!((0.0..=1.0).contains(&q));
        prop_assert!(kolmogorov_sf(lam + 0.01) <= q + 1e-15);
    }

    #[test]
    fn bh_is_monotone_and_bounded(p in proptest::collection::vec(0.0f64..=1.0, 1..50)) {
        let adj = benjamini_hochberg(&p);
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
        for w in order.windows(2) {
            prop_assert!(adj[w[0]] <= adj[w[1]] + 1e-15);
        }
        for (a, q) in adj.iter().zip(&p) {
            prop_assert!(*a >= *q - 1e-15 && *a <= 1.0);
        }
    }
}
