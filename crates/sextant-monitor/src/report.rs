//! A monitor run's human report: one self-contained HTML page (no scripts,
//! fonts or styles from elsewhere; plots are inline SVG drawn from the
//! sketches, never from raw rows), so it opens anywhere and stays small.

use std::fmt::Write;

use crate::drift::{Cdf, DatasetDrift};

/// One feature's distributions, baseline and window.
#[derive(Debug, Clone)]
pub enum Distribution {
    Numeric {
        baseline: Cdf,
        window: Cdf,
    },
    Categorical {
        baseline: Vec<(String, u64)>,
        window: Vec<(String, u64)>,
    },
}

/// A violation as the report lists it.
#[derive(Debug, Clone)]
pub struct ReportViolation {
    pub feature: String,
    pub check: String,
    pub description: String,
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct ReportInput {
    pub title: String,
    /// e.g. "2026-12-04T01:00:00Z .. 2026-12-04T02:00:00Z".
    pub window: String,
    pub rows: u64,
    pub baseline: String,
    pub drift: Option<DatasetDrift>,
    pub distributions: Vec<(String, Distribution)>,
    pub violations: Vec<ReportViolation>,
    /// Model-quality metrics: name → value.
    pub quality: Vec<(String, f64)>,
}

/// Escapes text for HTML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const W: f64 = 320.0;
const H: f64 = 120.0;
const BASE: &str = "#4c72b0";
const WIN: &str = "#dd8452";

fn cdf_plot(baseline: &Cdf, window: &Cdf) -> String {
    let all: Vec<f64> = baseline
        .points()
        .iter()
        .chain(window.points())
        .map(|p| p.0)
        .collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        });
    if !lo.is_finite() {
        return "<p>no values</p>".into();
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let path = |c: &Cdf| {
        let mut d = String::new();
        for i in 0..=80 {
            let x = lo + span * i as f64 / 80.0;
            let y = c.at(x);
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if i == 0 { "M" } else { "L" },
                10.0 + (W - 20.0) * i as f64 / 80.0,
                H - 15.0 - (H - 25.0) * y
            );
        }
        d
    };
    format!(
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\"><rect x=\"10\" y=\"10\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#ccc\"/>\
         <path d=\"{}\" fill=\"none\" stroke=\"{BASE}\" stroke-width=\"2\"/><path d=\"{}\" fill=\"none\" stroke=\"{WIN}\" stroke-width=\"2\"/>\
         <text x=\"10\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text></svg>",
        W - 20.0,
        H - 25.0,
        path(baseline),
        path(window),
        H - 3.0,
        escape(&format!("{lo:.4}")),
        W - 10.0,
        H - 3.0,
        escape(&format!("{hi:.4}"))
    )
}

fn bars_plot(baseline: &[(String, u64)], window: &[(String, u64)]) -> String {
    let mut names: Vec<&str> = baseline.iter().map(|(k, _)| k.as_str()).collect();
    for (k, _) in window {
        if !names.contains(&k.as_str()) {
            names.push(k);
        }
    }
    names.truncate(12);
    let share = |c: &[(String, u64)], k: &str| {
        let total: u64 = c.iter().map(|(_, n)| n).sum();
        c.iter()
            .find(|(n, _)| n == k)
            .map_or(0.0, |(_, v)| *v as f64 / total.max(1) as f64)
    };
    let slot = (W - 20.0) / names.len().max(1) as f64;
    let mut svg =
        format!("<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">");
    for (i, k) in names.iter().enumerate() {
        let x = 10.0 + slot * i as f64;
        for (j, (c, color)) in [(baseline, BASE), (window, WIN)].into_iter().enumerate() {
            let h = (H - 30.0) * share(c, k);
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{color}\"/>",
                x + slot * (0.1 + 0.4 * j as f64),
                H - 18.0 - h,
                slot * 0.38
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
            x + slot / 2.0,
            H - 5.0,
            escape(&k.chars().take(10).collect::<String>())
        );
    }
    svg.push_str("</svg>");
    svg
}

fn num(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

/// The page.
pub fn render(r: &ReportInput) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}\
         td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}}.bad{{color:#b00}}\
         .grid{{display:flex;flex-wrap:wrap;gap:16px}}.card{{border:1px solid #eee;padding:8px}}\
         </style></head><body><h1>{t}</h1><p>Window {w} · {rows} rows · baseline {b}</p>\
         <p><span style=\"color:{BASE}\">■ baseline</span> <span style=\"color:{WIN}\">■ window</span></p>",
        t = escape(&r.title),
        w = escape(&r.window),
        rows = r.rows,
        b = escape(&r.baseline),
    );
    if let Some(d) = &r.drift {
        let _ = write!(
            h,
            "<h2>Drift</h2><p class=\"{}\">{} of {} features drifted ({:.0} %): the data set {}.</p>\
             <table><tr><th>feature</th><th>method</th><th>statistic</th><th>p</th><th>adjusted p</th><th>drifted</th></tr>",
            if d.drifted { "bad" } else { "" },
            d.drifted_count,
            d.features.len(),
            d.share * 100.0,
            if d.drifted {
                "drifted"
            } else {
                "did not drift"
            }
        );
        for f in &d.features {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&f.name),
                f.method.as_str(),
                num(f.statistic),
                f.p_value.map_or("–".into(), num),
                f.adjusted_p_value.map_or("–".into(), num),
                if f.drifted { "bad" } else { "" },
                if f.drifted { "yes" } else { "no" }
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(h, "<h2>Violations ({})</h2>", r.violations.len());
    if r.violations.is_empty() {
        h.push_str("<p>None.</p>");
    } else {
        h.push_str("<table><tr><th>feature</th><th>check</th><th>description</th></tr>");
        for v in &r.violations {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"bad\">{}</td><td>{}</td></tr>",
                escape(&v.feature),
                escape(&v.check),
                escape(&v.description)
            );
        }
        h.push_str("</table>");
    }
    if !r.quality.is_empty() {
        h.push_str("<h2>Model quality</h2><table>");
        for (k, v) in &r.quality {
            let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", escape(k), num(*v));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Distributions</h2><div class=\"grid\">");
    for (name, d) in &r.distributions {
        let plot = match d {
            Distribution::Numeric { baseline, window } => cdf_plot(baseline, window),
            Distribution::Categorical { baseline, window } => bars_plot(baseline, window),
        };
        let _ = write!(
            h,
            "<div class=\"card plot\"><b>{}</b><br>{plot}</div>",
            escape(name)
        );
    }
    h.push_str("</div></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_stands_alone_and_escapes_names() {
        let c = Cdf::from_weighted(vec![(1.0, 1.0), (2.0, 1.0)]);
        let input = ReportInput {
            title: "drift of <churn>".into(),
            window: "a .. b".into(),
            rows: 10,
            baseline: "models:/m/1".into(),
            drift: None,
            distributions: vec![
                (
                    "<script>alert(1)</script>".into(),
                    Distribution::Numeric {
                        baseline: c.clone(),
                        window: c,
                    },
                ),
                (
                    "c".into(),
                    Distribution::Categorical {
                        baseline: vec![("a".into(), 3)],
                        window: vec![("b".into(), 1)],
                    },
                ),
            ],
            violations: vec![ReportViolation {
                feature: "x".into(),
                check: "completeness_check".into(),
                description: "1 < 2".into(),
            }],
            quality: vec![("mae".into(), 0.5)],
        };
        let page = render(&input);
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src="));
        assert_eq!(page.matches("class=\"card plot\"").count(), 2);
        assert!(page.contains("1 &lt; 2"));
    }
}
