//! Monitors through the native API on an endpoint's captured traffic: a clean
//! window passes; drifted inputs with worse predictions (joined with uploaded
//! ground truth on the inference id) end the run with SageMaker's violations,
//! a `monitor.violation` event and the window's labelled rows for retraining;
//! bad definitions and uploads are 4xx naming the problem.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;
use support::call;

struct Harness {
    app: Router,
    store: Arc<dyn MetaStore>,
    model: String,
    _controller: tokio::task::JoinHandle<()>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Deterministic, well-mixed values in [0, 1) (splitmix64 of `i`).
fn unit(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / 2f64.powi(64)
}

impl Harness {
    /// A `y = a + b + c` model carrying a baseline of a, b, c uniform on [0, 1).
    fn new() -> Harness {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let store: Arc<dyn MetaStore> =
            Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
        let artifacts =
            Arc::new(ArtifactStore::from_uri(dirs[1].path().to_str().unwrap()).unwrap());
        let st = AppState::new(store.clone(), artifacts, SecurityConfig::loopback())
            .with_data_dir(dirs[0].path().to_path_buf());
        let dir = dirs[2].path().join("model");
        let model = LinearModel {
            coefficients: vec![1.0, 1.0, 1.0],
            intercept: 0.0,
        };
        let names = ["a", "b", "c"].map(String::from).to_vec();
        mlflow_model::save_linear(
            &dir,
            &model,
            &names,
            &Matrix::from_rows(&[vec![0.5, 0.5, 0.5]]).unwrap(),
        )
        .unwrap();
        let mut csv = String::from("a,b,c\n");
        for i in 0..3000 {
            csv.push_str(&format!(
                "{},{},{}\n",
                unit(3 * i),
                unit(3 * i + 1),
                unit(3 * i + 2)
            ));
        }
        let data = dirs[2].path().join("train.csv");
        std::fs::write(&data, csv).unwrap();
        sextant_monitor::sagemaker::write_baseline(&data, &dir.join("baseline"), &[]).unwrap();
        Harness {
            _controller: controllers::spawn_endpoints(&st),
            app: router(st),
            store,
            model: dir.display().to_string(),
            _dirs: dirs,
        }
    }

    async fn invoke(&self, id: &str, row: [f64; 3]) -> StatusCode {
        let body = json!({"dataframe_split": {"columns": ["a", "b", "c"], "data": [row]}});
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/endpoints/churn/invocations")
            .header("host", "127.0.0.1:5000")
            .header("content-type", "application/json")
            .header("x-inference-id", id)
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        tower::ServiceExt::oneshot(self.app.clone(), req)
            .await
            .unwrap()
            .status()
    }

    /// Sends `n` rows (shifted by `shift` in `a`) and uploads labels `a + b + c + bias`.
    async fn traffic(&self, from: u64, n: u64, shift: f64, bias: f64) {
        let mut labels = Vec::new();
        for i in from..from + n {
            let row = [unit(3 * i + 7) + shift, unit(3 * i + 8), unit(3 * i + 9)];
            assert_eq!(self.invoke(&format!("id-{i}"), row).await, StatusCode::OK);
            labels.push(
                json!({"inference_id": format!("id-{i}"), "label": row.iter().sum::<f64>() + bias}),
            );
        }
        let (s, v) = call(
            &self.app,
            "POST",
            "/api/v1/endpoints/churn/ground-truth",
            &json!({"records": labels}).to_string(),
        )
        .await;
        assert_eq!((s, v["stored"].as_u64()), (StatusCode::OK, Some(n)), "{v}");
    }

    async fn run(&self) -> Value {
        let (s, v) = call(&self.app, "POST", "/api/v1/monitors/churn-watch/runs", "").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    async fn file(&self, run: &str, file: &str) -> (StatusCode, String, String) {
        let req = axum::http::Request::builder()
            .uri(format!("/api/v1/monitor-runs/{run}/files/{file}"))
            .header("host", "127.0.0.1:5000")
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(self.app.clone(), req)
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, ct, String::from_utf8_lossy(&body).into_owned())
    }
}

fn checks(run: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = run["summary"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["feature_name"].as_str().unwrap().to_string(),
                v["constraint_check_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_window_with_worse_predictions_is_a_violation_and_an_event() {
    let h = Harness::new();
    let (s, v) = call(
        &h.app,
        "PUT",
        "/api/v1/endpoints/churn",
        &json!({"variants": [{"model": h.model}], "capture": {"sampling_percent": 100}})
            .to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let monitor = "endpoint: churn\nwindow: 1h\nmodel_quality:\n  problem_type: Regression\n  label: label\n  constraints: {mae: {threshold: 0.5, comparison_operator: GreaterThanThreshold}}\n";
    let (s, v) = call(&h.app, "PUT", "/api/v1/monitors/churn-watch", monitor).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Clean traffic, exact labels: nothing to report.
    h.traffic(0, 300, 0.0, 0.0).await;
    let clean = h.run().await;
    assert_eq!(clean["status"], "Completed", "{clean}");
    assert_eq!(clean["summary"]["rows"], 300);
    assert_eq!(checks(&clean), Vec::<(String, String)>::new());
    assert_eq!(clean["summary"]["drift"]["drifted_features"], json!([]));
    assert_eq!(clean["summary"]["model_quality"]["joined"], 300);
    let mae = &clean["summary"]["model_quality"]["metrics"]["regression_metrics"]["mae"]["value"];
    assert!(mae.as_f64().unwrap() < 1e-4, "{mae}");

    // Inputs shifted and labels biased: drift in `a` and a broken mae constraint.
    h.traffic(300, 300, 3.0, 5.0).await;
    let bad = h.run().await;
    assert_eq!(bad["status"], "CompletedWithViolations", "{bad}");
    let found = checks(&bad);
    // One feature of three drifted: under the dataset's drift share of 50 %.
    assert!(
        !found.iter().any(|(_, c)| c == "dataset_drift_check"),
        "{found:?}"
    );
    for want in [
        ("a", "baseline_drift_check"),
        ("mae", "model_quality_check"),
    ] {
        let want = (want.0.to_string(), want.1.to_string());
        assert!(found.contains(&want), "{want:?} not in {found:?}");
    }
    assert!(found.iter().all(|(f, _)| f != "b" && f != "c"), "{found:?}");
    assert_eq!(bad["summary"]["drift"]["drifted_features"][0], "a", "{bad}");

    // The event carries the window's labelled rows for a retraining pipeline.
    let events = h
        .store
        .events_after(0, &["monitor.violation".to_string()], 10)
        .unwrap();
    assert_eq!(events.len(), 1);
    let payload: Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(payload["monitor"], "churn-watch");
    assert_eq!(payload["run"], bad["id"]);
    let path = payload["window_path"].as_str().unwrap();
    let window = std::fs::read_to_string(path).unwrap();
    let mut lines = window.lines();
    assert_eq!(lines.next(), Some("a,b,c,label"));
    assert_eq!(lines.count(), 600);

    let id = bad["id"].as_str().unwrap();
    let (s, ct, html) = h.file(id, "report.html").await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(html.contains("baseline_drift_check") && html.contains("<svg"));
    let (s, _, violations) = h.file(id, "constraint_violations.json").await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_str(&violations).unwrap();
    assert!(v["violations"].as_array().unwrap().len() >= 2);
    let (s, _, stats) = h.file(id, "statistics.json").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        (s, stats["dataset"]["item_count"].as_u64()),
        (StatusCode::OK, Some(600))
    );
    let (s, v) = call(&h.app, "GET", "/api/v1/monitors/churn-watch/runs", "").await;
    assert_eq!(
        (s, v["runs"].as_array().unwrap().len()),
        (StatusCode::OK, 2)
    );
    assert_eq!(v["runs"][0]["id"], bad["id"]);
    let (s, v) = call(&h.app, "GET", "/api/v1/monitors", "").await;
    assert_eq!(
        (s, v["monitors"][0]["last_run"]["id"].clone()),
        (StatusCode::OK, bad["id"].clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_definitions_uploads_and_names_are_4xx() {
    let h = Harness::new();
    for (spec, says) in [
        ("endpoint: nope\n", "endpoint 'nope' not found"),
        (
            "endpoint: churn\nwindoww: 1h\n",
            "m.yaml:2:1: unknown key 'windoww' in the monitor definition (did you mean 'window'?)",
        ),
        ("data: x.csv\n", "needs a baseline"),
        (
            "endpoint: churn\nschedule: 'every minute'\n",
            "invalid cron",
        ),
    ] {
        let (s, v) = call(&h.app, "PUT", "/api/v1/monitors/m", spec).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{spec}: {v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{spec}: {v}");
    }
    let (s, _) = call(
        &h.app,
        "PUT",
        "/api/v1/monitors/bad_name",
        "endpoint: churn\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(&h.app, "POST", "/api/v1/monitors/none/runs", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &h.app,
        "POST",
        "/api/v1/endpoints/none/ground-truth",
        r#"{"records": [{"inference_id": "a", "label": 1}]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &h.app,
        "PUT",
        "/api/v1/endpoints/churn",
        &json!({"variants": [{"model": h.model}]}).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = call(
        &h.app,
        "POST",
        "/api/v1/endpoints/churn/ground-truth",
        r#"{"records": [{"label": 1}]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("records[0].inference_id"),
        "{v}"
    );
    // Without capture a monitor could never see a row: refused.
    let (s, v) = call(&h.app, "PUT", "/api/v1/monitors/quiet", "endpoint: churn\n").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("endpoint 'churn' does not capture its traffic"),
        "{v}"
    );
    let (s, _) = call(
        &h.app,
        "PUT",
        "/api/v1/endpoints/churn",
        &json!({"variants": [{"model": h.model}], "capture": {"sampling_percent": 100}})
            .to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // A window with no captured rows fails the run, saying why.
    let (s, _) = call(&h.app, "PUT", "/api/v1/monitors/quiet", "endpoint: churn\n").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, run) = call(
        &h.app,
        "POST",
        "/api/v1/monitors/quiet/runs",
        r#"{"window": "5m"}"#,
    )
    .await;
    assert_eq!(
        (s, run["status"].as_str()),
        (StatusCode::CREATED, Some("Failed")),
        "{run}"
    );
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("fewer than min_rows"),
        "{run}"
    );
    let (s, _) = call(
        &h.app,
        "POST",
        "/api/v1/monitors/quiet/runs",
        r#"{"window": "soon"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // The page size the document allows (1 to 10000), nothing silently clamped.
    for bad in ["0", "10001"] {
        let (s, v) = call(
            &h.app,
            "GET",
            &format!("/api/v1/monitors/quiet/runs?max_results={bad}"),
            "",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "max_results={bad}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains(&format!("invalid max_results {bad}")),
            "{v}"
        );
    }
    let (s, v) = call(
        &h.app,
        "GET",
        "/api/v1/monitors/quiet/runs?max_results=1",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["runs"].as_array().unwrap().len(), 1, "{v}");
    let (s, v) = call(
        &h.app,
        "GET",
        &format!(
            "/api/v1/monitor-runs/{}/files/secrets.txt",
            run["id"].as_str().unwrap()
        ),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_that_cannot_succeed_is_refused_with_the_reason() {
    let h = Harness::new();
    // A model without a baseline/ directory, behind an endpoint that captures.
    let bare = h._dirs[2].path().join("bare");
    mlflow_model::save_linear(
        &bare,
        &LinearModel {
            coefficients: vec![1.0, 1.0, 1.0],
            intercept: 0.0,
        },
        &["a", "b", "c"].map(String::from),
        &Matrix::from_rows(&[vec![0.5, 0.5, 0.5]]).unwrap(),
    )
    .unwrap();
    for (endpoint, model) in [
        ("churn", h.model.clone()),
        ("bare", bare.display().to_string()),
    ] {
        let (s, v) = call(
            &h.app,
            "PUT",
            &format!("/api/v1/endpoints/{endpoint}"),
            &json!({"variants": [{"model": model}], "capture": {"sampling_percent": 100}})
                .to_string(),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    for (spec, says) in [
        (
            "endpoint: bare\n",
            "monitor 'm': no baseline given, and the model endpoint 'bare' serves has none",
        ),
        // The label column is not guessed.
        (
            "endpoint: churn\nmodel_quality: {problem_type: Regression}\n",
            "m.yaml:2:16: missing key 'label' in model_quality",
        ),
        (
            "endpoint: churn\nmodel_quality: {problem_type: Regression, label: y, constraints: {accuracy: {threshold: 1, comparison_operator: LessThanThreshold}}}\n",
            "not a Regression metric",
        ),
    ] {
        let (s, v) = call(&h.app, "PUT", "/api/v1/monitors/m", spec).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{spec}: {v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{spec}: {v}");
    }
    let (s, v) = call(&h.app, "GET", "/api/v1/monitors", "").await;
    assert_eq!(
        (s, v["monitors"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mistake_of_a_definition_is_reported_with_its_line_and_column() {
    let h = Harness::new();
    let (s, v) = call(
        &h.app,
        "PUT",
        "/api/v1/monitors/m",
        "endpoint: churn\nwindow: soon\nschedul: '* * * * *'\ndrift:\n  alpha: high\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let lines: Vec<&str> = v["message"].as_str().unwrap().lines().collect();
    assert_eq!(
        lines,
        [
            "m.yaml:2:9: window: invalid window 'soon': use e.g. 10m, 1h or 1d",
            "m.yaml:3:1: unknown key 'schedul' in the monitor definition (did you mean 'schedule'?)",
            "m.yaml:5:10: drift.alpha: expected a number, found string \"high\"",
        ],
        "{v}"
    );
    let (s, v) = call(&h.app, "PUT", "/api/v1/monitors/m", "endpoint: [churn\n").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("the monitor definition is not valid YAML"),
        "{v}"
    );
    // Endpoints too.
    let (s, v) = call(
        &h.app,
        "PUT",
        "/api/v1/endpoints/churn",
        "variants:\n  - model: a\n    wieght: 2\n  - model: b\n    weight: -1\nrollout: {strategy: canery}\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let lines: Vec<&str> = v["message"].as_str().unwrap().lines().collect();
    assert_eq!(
        lines,
        [
            "churn.yaml:3:5: unknown key 'wieght' in variants[0] (did you mean 'weight'?)",
            "churn.yaml:6:21: rollout.strategy: unknown value 'canery': expected one of all_at_once, canary, linear, blue_green (did you mean 'canary'?)",
        ],
        "{v}"
    );
    // Structure right, rules broken: each at the field that breaks it.
    let (s, v) = call(
        &h.app,
        "PUT",
        "/api/v1/endpoints/churn",
        "variants:\n  - model: a\n    weight: -1\n  - {name: x-canary, model: b}\ncapture: {sampling_percent: 200}\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let lines: Vec<&str> = v["message"].as_str().unwrap().lines().collect();
    assert_eq!(
        lines,
        [
            "churn.yaml:3:13: variant 'primary': weight must be a number >= 0",
            "churn.yaml:4:12: variant name 'x-canary': names ending in -canary are kept for rollouts",
            "churn.yaml:5:29: capture.sampling_percent must be between 0 and 100, got 200",
        ],
        "{v}"
    );
}
