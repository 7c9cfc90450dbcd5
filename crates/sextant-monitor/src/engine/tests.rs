use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::profile::ProfileOptions;
use crate::quality::ProblemType;

/// Deterministic values in [0, 1).
fn unit(i: u64) -> f64 {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / (1u64 << 53) as f64
}

/// A baseline of `x` uniform on [0, 1).
fn baseline() -> Baseline {
    let mut p = DatasetProfile::new(ProfileOptions::default());
    for i in 0..2000 {
        p.push_json_row([("x", &json!(unit(i)))]);
    }
    let statistics = serde_json::to_vec(&Statistics::from_profile(&p)).unwrap();
    BaselineFiles {
        source: "test".into(),
        statistics,
        constraints: None,
    }
    .parse()
    .unwrap()
}

/// A capture line of one row `x` answered with `prediction`.
fn line(id: &str, time: &str, x: f64, prediction: f64) -> String {
    let input = json!({"dataframe_split": {"columns": ["x"], "data": [[x]]}}).to_string();
    let output = json!({"predictions": {"variable": [[prediction]]}}).to_string();
    json!({
        "captureData": {
            "endpointInput": {"mode": "INPUT", "data": input, "encoding": "JSON"},
            "endpointOutput": {"mode": "OUTPUT", "data": output, "encoding": "JSON"}
        },
        "eventMetadata": {"eventId": id, "inferenceId": id, "inferenceTime": time},
        "eventVersion": "0"
    })
    .to_string()
}

fn checks(model_quality: Option<QualityCheck>) -> Checks {
    Checks {
        title: "Monitor m".into(),
        watches: "endpoint e".into(),
        data_quality: true,
        drift: Some(DriftConfig {
            threshold: 0.1,
            alpha: 0.05,
            drift_share: 0.5,
        }),
        model_quality,
    }
}

/// A window of `n` rows of `x = shift + unit(i)`, each labelled with its `x`.
fn window(n: u64, shift: f64, labelled: bool) -> Window {
    let b = baseline();
    let mut w = CaptureWindow::new(b.columns(), ProfileOptions::default());
    let mut labels = HashMap::new();
    for i in 0..n {
        let x = shift + unit(i + 7919);
        let id = format!("r{i}");
        w.push_line(&line(&id, "2026-01-01T00:00:00Z", x, x), |_| true)
            .unwrap();
        if labelled {
            labels.insert(id, x.to_string());
        }
    }
    w.finish(labels)
}

#[test]
fn capture_lines_outside_the_window_are_left_out_and_a_bad_one_is_named() {
    let mut w = CaptureWindow::new(vec!["x".into()], ProfileOptions::default());
    let inside = |t: &str| t.starts_with("2026-01-01T00");
    w.push_line(&line("a", "2026-01-01T00:10:00Z", 1.0, 1.0), inside)
        .unwrap();
    w.push_line("  ", inside).unwrap();
    w.push_line(&line("b", "2026-01-01T01:10:00Z", 2.0, 2.0), inside)
        .unwrap();
    // A record whose time is not there is kept (its file's hour is in the window).
    let e = w.push_line("{\"captureData\": {}}", inside).unwrap_err();
    assert_eq!(e.to_string(), "capture: line 2: no eventMetadata");
    let e = w.push_line("{nope", inside).unwrap_err();
    assert!(
        e.to_string().starts_with("capture: line 3: not JSON: "),
        "{e}"
    );
    let w = w.finish(HashMap::new());
    assert_eq!(w.profile.item_count, 1);
    assert_eq!(w.exchanges[0].inference_id.as_deref(), Some("a"));
}

#[test]
fn a_window_like_its_baseline_breaks_nothing_and_stores_every_file() {
    let out = evaluate(&checks(None), &baseline(), &window(500, 0.0, false)).unwrap();
    assert_eq!(out.rows, 500);
    assert_eq!(out.violations, Vec::<Value>::new());
    assert_eq!(out.drift["drifted"], json!(false));
    let names: Vec<&str> = out.files.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "statistics.json",
            "constraint_violations.json",
            "drift.json",
            "window.csv",
            "report.html"
        ]
    );
    let csv = String::from_utf8(out.files[3].1.clone()).unwrap();
    assert_eq!(csv.lines().count(), 501);
    assert_eq!(csv.lines().next(), Some("x"));
}

#[test]
fn a_shifted_window_drifts_and_says_which_feature() {
    let out = evaluate(&checks(None), &baseline(), &window(500, 0.5, false)).unwrap();
    assert_eq!(out.drift["drifted_features"], json!(["x"]));
    let drift: Vec<&Value> = out
        .violations
        .iter()
        .filter(|v| v["constraint_check_type"] == "dataset_drift_check")
        .collect();
    assert_eq!(drift.len(), 1);
    assert!(
        drift[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("1 of 1 features drifted (100 %, threshold 50 %): x"),
        "{drift:?}"
    );
}

#[test]
fn model_quality_joins_labels_and_checks_constraints() {
    let mq = QualityCheck {
        problem_type: ProblemType::Regression,
        label: "y".into(),
        constraints:
            json!({"mae": {"threshold": -1.0, "comparison_operator": "GreaterThanThreshold"}})
                .as_object()
                .unwrap()
                .clone(),
        positive_label: None,
    };
    let unlabelled = evaluate(
        &checks(Some(mq.clone())),
        &baseline(),
        &window(50, 0.0, false),
    );
    let q = unlabelled.unwrap().quality.unwrap();
    assert_eq!(q["joined"], json!(0));
    let out = evaluate(&checks(Some(mq)), &baseline(), &window(50, 0.0, true)).unwrap();
    let q = out.quality.unwrap();
    assert_eq!(q["joined"], json!(50));
    assert!(
        out.violations
            .iter()
            .any(|v| v["constraint_check_type"] == "model_quality_check"
                && v["feature_name"] == "mae"),
        "{:?}",
        out.violations
    );
    let csv = &out
        .files
        .iter()
        .find(|(n, _)| *n == "window.csv")
        .unwrap()
        .1;
    assert!(String::from_utf8_lossy(csv).starts_with("x,y\n"));
}

#[test]
fn a_baseline_that_is_not_json_names_its_file() {
    let e = BaselineFiles {
        source: "models:/m/1".into(),
        statistics: b"{".to_vec(),
        constraints: None,
    }
    .parse()
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("baseline models:/m/1: statistics.json: "),
        "{e}"
    );
}
