//! The HTML report stands alone, escapes every text it shows and draws one plot per feature.

use sextant_monitor::drift::{Cdf, DriftConfig, FeatureDrift, NumericSample, dataset_drift};
use sextant_monitor::quality::{Observation, Pair, ProblemType, default_positive, metrics};
use sextant_monitor::report::{Distribution, ReportInput, ReportViolation, escape, render};

const EVIL: &str = "<script>alert('x')</script>\"&";

fn counts(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn input() -> ReportInput {
    let base: Vec<f64> = (0..5000).map(|i| f64::from(i) / 100.0).collect();
    let cb = Cdf::from_weighted(base.iter().map(|x| (*x, 1.0)).collect());
    let cw = Cdf::from_weighted(base.iter().map(|x| (x + 10.0, 1.0)).collect());
    let config = DriftConfig::default();
    let s = |c| NumericSample {
        cdf: c,
        n: 5000,
        std_dev: 14.4,
    };
    let rb = counts(&[("red", 50), ("green", 30), ("blue", 20)]);
    let rw = counts(&[("red", 10), ("green", 30), (EVIL, 60)]);
    let drift = dataset_drift(
        vec![
            FeatureDrift::numeric(EVIL, s(&cb), s(&cw), &config),
            FeatureDrift::categorical("colour", &rb, &rw, &config),
            FeatureDrift::categorical("empty", &rb, &[], &config),
        ],
        &config,
    );
    let many: Vec<(String, u64)> = (0..30).map(|i| (format!("c{i}"), 30 - i)).collect();
    let pairs: Vec<Pair> = (0..10)
        .map(|i| Pair {
            prediction: Observation::Number(f64::from(i)),
            label: Observation::Number(f64::from(i) + 0.5),
            probability: None,
        })
        .collect();
    ReportInput {
        title: format!("drift of {EVIL}"),
        window: "2026-12-04T01:00:00Z .. 2026-12-04T02:00:00Z".into(),
        rows: 5000,
        baseline: "models:/churn/3".into(),
        drift: Some(drift),
        distributions: vec![
            (
                EVIL.into(),
                Distribution::Numeric {
                    baseline: cb,
                    window: cw,
                },
            ),
            (
                "colour".into(),
                Distribution::Categorical {
                    baseline: rb.clone(),
                    window: rw,
                },
            ),
            (
                "many".into(),
                Distribution::Categorical {
                    baseline: many.clone(),
                    window: many,
                },
            ),
            (
                "empty".into(),
                Distribution::Numeric {
                    baseline: Cdf::default(),
                    window: Cdf::default(),
                },
            ),
        ],
        violations: vec![ReportViolation {
            feature: EVIL.into(),
            check: "baseline_drift_check".into(),
            description: "distance 0.2 > 0.1 & <rising>".into(),
        }],
        quality: Some(metrics(ProblemType::Regression, &pairs, &default_positive()).unwrap()),
    }
}

#[test]
fn the_page_stands_alone() {
    let page = render(&input());
    assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>\n"));
    for external in [
        "http:", "https:", "src=", "href=", "@import", "url(", "<script", "<link", "xmlns",
    ] {
        assert!(!page.contains(external), "{external} in the page");
    }
    // Small: 5,000-value CDFs are thinned, not drawn point by point.
    assert!(page.len() < 40_000, "{} bytes", page.len());
}

#[test]
fn every_text_is_escaped() {
    let page = render(&input());
    let escaped = escape(EVIL);
    assert_eq!(
        escaped,
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"
    );
    assert!(!page.contains(EVIL) && !page.contains("<script") && !page.contains("alert('x')"));
    // Title, drift table, violation, plot heading, plot label and a bar's category.
    assert!(
        page.matches(&escaped).count() >= 5,
        "{}",
        page.matches(&escaped).count()
    );
    assert!(page.contains("distance 0.2 &gt; 0.1 &amp; &lt;rising&gt;"));
}

#[test]
fn one_plot_per_feature_and_the_verdicts() {
    let page = render(&input());
    assert_eq!(page.matches("class=\"card plot\"").count(), 4);
    assert_eq!(
        page.matches("<svg").count(),
        3,
        "the empty feature says so instead of a plot"
    );
    assert!(page.contains("<p>no values</p>"));
    assert!(
        page.contains("+18 more categories"),
        "30 categories, 12 drawn"
    );
    // Both curves of the numeric plot.
    assert!(page.contains("stroke=\"#4c72b0\"") && page.contains("stroke=\"#dd8452\""));
    assert!(page.contains("2 of 3 features drifted") && page.contains("the data set drifted"));
    assert!(page.contains("wasserstein_normed") && page.contains("jensen_shannon"));
    assert!(
        page.contains("<td>–</td>"),
        "no p-value for the empty feature"
    );
    assert!(
        page.contains("Model quality (Regression)") && page.contains("<td>mae</td><td>0.5000</td>")
    );
    assert!(page.contains("Violations (1)"));
}

#[test]
fn a_bare_report_renders() {
    let page = render(&ReportInput {
        title: "t".into(),
        window: "w".into(),
        rows: 0,
        baseline: "b".into(),
        drift: None,
        distributions: vec![],
        violations: vec![],
        quality: None,
    });
    assert!(page.contains("Violations (0)") && page.contains("None."));
    assert!(!page.contains("<svg") && !page.contains("Drift") && !page.contains("Model quality"));
}
