//! What the quickstart prints about monitor runs, and the summary at its end.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::story::Trained;
use super::{ENDPOINT, MODEL, text};

/// The monitor runs of the three windows the quickstart watches.
pub(super) struct Windows {
    /// Traffic like the training data, judged by v1's baseline.
    pub(super) clean: Value,
    /// Drifted traffic, judged by v1's baseline: the violation.
    pub(super) drifted: Value,
    /// Traffic after the promotion, judged by v2's baseline.
    pub(super) after: Value,
}

/// The versions, each with how it was made; `version` is the second as the
/// registry answers it, its tags linking it to what caused it.
pub(super) fn print_versions(first: &Trained, second: &Trained, version: &Value) {
    let (v1, v2) = (first.version, second.version);
    let (r2_v1, r2_v2) = (first.r2, second.r2);
    println!("  versions:");
    println!(
        "    v{v1}: first training, held-out r2 {r2_v1:.3}, pipeline run {}",
        text(&first.run["id"])
    );
    println!(
        "    v{v2}: retrained on the drifted window, held-out r2 {r2_v2:.3}, pipeline run {} (trigger event {}, monitor run {})",
        text(&second.run["id"]),
        version["tags"]["sextant.triggerEvent"]
            .as_str()
            .unwrap_or("?"),
        version["tags"]["sextant.monitorRun"]
            .as_str()
            .unwrap_or("?"),
    );
}

/// Each change of the endpoint's traffic split, in seconds from the first.
pub(super) fn print_traffic_history(endpoint: &Value) {
    println!("  endpoint '{ENDPOINT}' traffic split history:");
    let t0 = endpoint["traffic"][0]["time"].as_i64().unwrap_or(0);
    for change in endpoint["traffic"].as_array().into_iter().flatten() {
        let split: Vec<String> = change["split"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} {}%", v.as_f64().unwrap_or(0.0)))
            .collect();
        println!(
            "    +{:6.1}s  {:<32} {}",
            (change["time"].as_i64().unwrap_or(t0) - t0) as f64 / 1000.0,
            split.join(", "),
            text(&change["reason"])
        );
    }
}

/// What the monitor found in each window.
pub(super) fn print_findings(v1: i64, v2: i64, windows: &Windows) {
    let (clean, violated, after) = (&windows.clean, &windows.drifted, &windows.after);
    println!("  drift findings (top drifting features, baseline v{v1} vs drifted window):");
    for line in top_drift(violated, 5) {
        println!("    {line}");
    }
    if let Some(r2) = quality_r2(clean).zip(quality_r2(violated)) {
        println!(
            "  model quality of v{v1}: r2 {:.3} on clean traffic, {:.3} after the drift",
            r2.0, r2.1
        );
    }
    if let Some(r2) = quality_r2(after) {
        println!(
            "  model quality of v{v2} on traffic after its promotion: r2 {r2:.3} ({} violations)",
            after["summary"]["violations"]
                .as_array()
                .map_or(0, Vec::len)
        );
    }
}

/// The requests sent, and how long the loop took to close.
pub(super) fn print_totals(sent: u64, failed: u64, v2: i64, to_full: Duration) {
    println!("  requests: {sent} sent, {failed} failed");
    println!(
        "  time from drift onset to v{v2} serving 100 %: {:.1} s",
        to_full.as_secs_f64()
    );
}

/// The commands and files to look at next.
pub(super) fn print_where_to_look(data_dir: &Path, windows: &Windows) {
    println!("Where to look");
    println!(
        "  sextant server --data-dir {}    # then open the web UI at http://127.0.0.1:5000/",
        data_dir.display()
    );
    for (what, run) in [
        ("clean", &windows.clean),
        ("drifted", &windows.drifted),
        ("after promotion", &windows.after),
    ] {
        if let Some(p) = run["summary"]["files"]["report.html"].as_str() {
            println!(
                "  {what} window report: {}  (or {} once served)",
                data_dir.join("artifacts").join(p).display(),
                text(&run["report_url"])
            );
        }
    }
    println!(
        "  events: sextant events tail    models: sextant models show {MODEL}    endpoint: sextant endpoints show {ENDPOINT}"
    );
}

/// A monitor run in one line: status, rows, violations, drifted features, r2.
pub(super) fn describe_run(run: &Value) -> String {
    let s = &run["summary"];
    let violations = s["violations"].as_array().map_or(0, Vec::len);
    let mut text_out = format!(
        "{} over {} rows, {violations} violations",
        text(&run["status"]),
        s["rows"]
    );
    if let Some(d) = s["drift"]["drifted_features"].as_array() {
        let names: Vec<&str> = d.iter().map(text).collect();
        text_out.push_str(&format!(
            "; drifted features: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    if let Some(r2) = quality_r2(run) {
        text_out.push_str(&format!("; r2 {r2:.3}"));
    }
    if run["status"] == "Failed" {
        text_out.push_str(&format!(": {}", text(&run["error"])));
    }
    text_out
}

/// The r2 the monitor run measured, when it measured model quality.
fn quality_r2(run: &Value) -> Option<f64> {
    run["summary"]["model_quality"]["metrics"]["regression_metrics"]["r2"]["value"].as_f64()
}

/// The most drifted features of a monitor run, strongest first.
fn top_drift(run: &Value, n: usize) -> Vec<String> {
    let mut features: Vec<&Value> = run["summary"]["drift"]["features"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    features.sort_by(|a, b| {
        let s = |v: &Value| v["statistic"].as_f64().unwrap_or(0.0);
        s(b).total_cmp(&s(a))
    });
    features
        .into_iter()
        .take(n)
        .map(|f| {
            format!(
                "{:<14} {:<22} {:.3}  adjusted p {}{}",
                text(&f["name"]),
                text(&f["method"]),
                f["statistic"].as_f64().unwrap_or(f64::NAN),
                f["adjusted_p_value"]
                    .as_f64()
                    .map_or("-".into(), |p| format!("{p:.2e}")),
                if f["drifted"] == true {
                    "  DRIFTED"
                } else {
                    ""
                }
            )
        })
        .collect()
}
