//! A monitor run's human report: one self-contained HTML page (no scripts, fonts or
//! styles from elsewhere; plots are inline SVG drawn from the sketches, never from raw
//! rows), so it opens anywhere, leaks no data and stays small.

use std::fmt::Write;

use crate::drift::{Cdf, DatasetDrift};
use crate::quality::QualityMetrics;

/// One feature's distributions, baseline and window.
#[derive(Debug, Clone)]
pub enum Distribution {
    /// Step CDFs, drawn as two curves.
    Numeric { baseline: Cdf, window: Cdf },
    /// Category counts, drawn as paired bars of shares.
    Categorical {
        baseline: Vec<(String, u64)>,
        window: Vec<(String, u64)>,
    },
}

/// A violation as the report lists it (data-quality checks, drift, model quality).
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
    /// Rows in the window.
    pub rows: u64,
    /// Where the baseline came from, e.g. a data set or a model version.
    pub baseline: String,
    pub drift: Option<DatasetDrift>,
    /// One plot per entry, in this order.
    pub distributions: Vec<(String, Distribution)>,
    pub violations: Vec<ReportViolation>,
    pub quality: Option<QualityMetrics>,
}

/// Escapes text for HTML content and attribute values.
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
const H: f64 = 130.0;
/// Plot area inside the SVG: left, top, right and bottom margins.
const L: f64 = 28.0;
const T: f64 = 8.0;
const R: f64 = 8.0;
const B: f64 = 30.0;
const BASE: &str = "#4c72b0";
const WIN: &str = "#dd8452";
/// Points per drawn CDF: enough for a 300-pixel curve, and the page stays small.
const MAX_POINTS: usize = 200;
/// Categories drawn; the rest are counted in a note.
const MAX_BARS: usize = 12;

fn svg_open(label: &str) -> String {
    format!(
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    )
}

/// At most [`MAX_POINTS`] of the CDF's points, evenly by index, always keeping the last.
fn thinned(c: &Cdf) -> Vec<(f64, f64)> {
    let pts: Vec<(f64, f64)> = c
        .points()
        .iter()
        .copied()
        .filter(|p| p.0.is_finite())
        .collect();
    if pts.len() <= MAX_POINTS {
        return pts;
    }
    let step = pts.len().div_ceil(MAX_POINTS);
    let mut out: Vec<(f64, f64)> = pts.iter().copied().step_by(step).collect();
    if out.last() != pts.last() {
        out.extend(pts.last());
    }
    out
}

fn cdf_plot(name: &str, baseline: &Cdf, window: &Cdf) -> String {
    let (b, w) = (thinned(baseline), thinned(window));
    let (lo, hi) = b
        .iter()
        .chain(&w)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, z), p| {
            (a.min(p.0), z.max(p.0))
        });
    if !lo.is_finite() {
        return "<p>no values</p>".into();
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let sx = |x: f64| L + (W - L - R) * (x - lo) / span;
    let sy = |f: f64| H - B - (H - T - B) * f;
    // A step function: flat until the next value, then up to its fraction.
    let path = |pts: &[(f64, f64)]| {
        let mut d = format!("M{:.1},{:.1}", sx(lo), sy(0.0));
        let mut f = 0.0;
        for &(x, fx) in pts {
            let _ = write!(d, "H{:.1}V{:.1}", sx(x), sy(fx));
            f = fx;
        }
        let _ = write!(d, "H{:.1}V{:.1}", sx(hi), sy(f));
        d
    };
    let mut svg = svg_open(&format!("CDF of {name}: baseline and window"));
    let _ = write!(
        svg,
        "<rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#ccc\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"end\">1</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"end\">0</text>",
        W - L - R,
        H - T - B,
        L - 3.0,
        T + 8.0,
        L - 3.0,
        H - B,
    );
    for (pts, color) in [(&b, BASE), (&w, WIN)] {
        if !pts.is_empty() {
            let _ = write!(
                svg,
                "<path d=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"/>",
                path(pts)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{L}\" y=\"{}\" font-size=\"9\">{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"end\">{}</text></svg>",
        H - B + 12.0,
        escape(&num(lo)),
        W - R,
        H - B + 12.0,
        escape(&num(hi)),
    );
    svg
}

fn shares(c: &[(String, u64)]) -> Vec<(&str, f64)> {
    let total: u64 = c.iter().map(|(_, n)| n).sum();
    let mut out: Vec<(&str, f64)> = Vec::new();
    for (k, n) in c {
        let s = *n as f64 / total.max(1) as f64;
        match out.iter_mut().find(|(name, _)| name == k) {
            Some(e) => e.1 += s,
            None => out.push((k, s)),
        }
    }
    out
}

fn bars_plot(name: &str, baseline: &[(String, u64)], window: &[(String, u64)]) -> String {
    let (b, w) = (shares(baseline), shares(window));
    let share = |v: &[(&str, f64)], k: &str| v.iter().find(|e| e.0 == k).map_or(0.0, |e| e.1);
    // The categories that matter most on either side, in that order.
    let mut names: Vec<(&str, f64)> = b.iter().chain(&w).map(|e| (e.0, 0.0)).collect();
    names.sort_by(|x, y| x.0.cmp(y.0));
    names.dedup_by(|x, y| x.0 == y.0);
    for e in &mut names {
        e.1 = share(&b, e.0).max(share(&w, e.0));
    }
    names.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(y.0)));
    let hidden = names.len().saturating_sub(MAX_BARS);
    names.truncate(MAX_BARS);
    let top = names.first().map_or(1.0, |e| e.1).max(1e-12);
    let slot = (W - L - R) / names.len().max(1) as f64;
    let mut svg = svg_open(&format!("category shares of {name}: baseline and window"));
    for (i, (k, _)) in names.iter().enumerate() {
        let x = L + slot * i as f64;
        for (j, (v, color)) in [(&b, BASE), (&w, WIN)].into_iter().enumerate() {
            let s = share(v, k);
            let h = (H - T - B) * s / top;
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{color}\">\
                 <title>{}: {:.2} %</title></rect>",
                x + slot * (0.1 + 0.4 * j as f64),
                H - B - h,
                slot * 0.38,
                escape(k),
                s * 100.0
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
            x + slot / 2.0,
            H - B + 12.0,
            escape(&k.chars().take(8).collect::<String>())
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{L}\" y=\"{}\" font-size=\"9\">{}</text></svg>",
        H - 4.0,
        if hidden > 0 {
            format!("+{hidden} more categories")
        } else {
            String::new()
        }
    );
    svg
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        format!("{x}")
    } else if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), num)
}

/// The page.
pub fn render(r: &ReportInput) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}\
         td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}}.bad{{color:#b00}}\
         .grid{{display:flex;flex-wrap:wrap;gap:16px}}.card{{border:1px solid #eee;padding:8px}}\
         </style></head><body><h1>{t}</h1><p>Window {w} · {rows} rows · baseline {b}</p>",
        t = escape(&r.title),
        w = escape(&r.window),
        rows = r.rows,
        b = escape(&r.baseline),
    );
    if let Some(d) = &r.drift {
        let _ = write!(
            h,
            "<h2>Drift</h2><p class=\"{}\">{} of {} features drifted ({:.0} %, threshold {:.0} %): \
             the data set {}. A feature drifts when its effect size is at least {} and its \
             Benjamini–Hochberg-adjusted p-value is below {}.</p>\
             <table><tr><th>feature</th><th>kind</th><th>method</th><th>statistic</th><th>p</th>\
             <th>adjusted p</th><th>drifted</th></tr>",
            if d.drifted { "bad" } else { "" },
            d.drifted_count,
            d.features.len(),
            d.share * 100.0,
            d.config.drift_share * 100.0,
            if d.drifted {
                "drifted"
            } else {
                "did not drift"
            },
            num(d.config.threshold),
            num(d.config.alpha),
        );
        for f in &d.features {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&f.name),
                match f.kind {
                    crate::drift::FeatureKind::Numeric => "numeric",
                    crate::drift::FeatureKind::Categorical => "categorical",
                },
                f.method.as_str(),
                num(f.statistic),
                opt(f.p_value),
                opt(f.adjusted_p_value),
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
    if let Some(q) = &r.quality {
        let _ = write!(
            h,
            "<h2>Model quality ({:?})</h2><table><tr><th>metric</th><th>value</th><th>standard deviation</th></tr>",
            q.problem()
        );
        for (k, m) in q.scalars() {
            let _ = write!(
                h,
                "<tr><td>{k}</td><td>{}</td><td>{}</td></tr>",
                num(m.value),
                opt(m.standard_deviation)
            );
        }
        h.push_str("</table>");
    }
    if !r.distributions.is_empty() {
        let _ = write!(
            h,
            "<h2>Distributions</h2><p><span style=\"color:{BASE}\">■ baseline</span> \
             <span style=\"color:{WIN}\">■ window</span></p><div class=\"grid\">"
        );
        for (name, d) in &r.distributions {
            let plot = match d {
                Distribution::Numeric { baseline, window } => cdf_plot(name, baseline, window),
                Distribution::Categorical { baseline, window } => bars_plot(name, baseline, window),
            };
            let _ = write!(
                h,
                "<div class=\"card plot\"><b>{}</b><br>{plot}</div>",
                escape(name)
            );
        }
        h.push_str("</div>");
    }
    h.push_str("</body></html>\n");
    h
}
