//! Monitors through the native API on an endpoint's captured traffic: a clean
//! window passes; drifted inputs with worse predictions (joined with uploaded
//! ground truth on the inference id) end the run with SageMaker's violations,
//! a `monitor.violation` event and the window's labelled rows for retraining;
//! bad definitions and uploads are 4xx naming the problem. Through the typed
//! client, as the CLI talks to a server; a run's files on the wire, with
//! their content types.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Applied, Client, ClientError, Definition};
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;
use support::{Served, call, refused, serve};

struct Harness {
    /// The router, for a run's files with their content types.
    app: Router,
    served: Served,
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
    async fn new() -> Harness {
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
        let controller = controllers::spawn_endpoints(&st);
        let app = router(st);
        Harness {
            _controller: controller,
            served: serve(app.clone()).await,
            app,
            store,
            model: dir.display().to_string(),
            _dirs: dirs,
        }
    }

    fn client(&self) -> &Client {
        &self.served.client
    }

    async fn invoke(&self, id: &str, row: [f64; 3]) -> Result<Value, ClientError> {
        let body = json!({"dataframe_split": {"columns": ["a", "b", "c"], "data": [row]}});
        self.client().invoke("churn", Some(id), &body).await
    }

    /// Creates or replaces endpoint `name` serving `model`, capturing its
    /// traffic when `capture`.
    async fn endpoint(&self, name: &str, model: &str, capture: bool) -> Applied {
        let mut spec = json!({"variants": [{"model": model}]});
        if capture {
            spec["capture"] = json!({"sampling_percent": 100});
        }
        self.client()
            .put_endpoint(name, Definition::Json(spec), Duration::ZERO)
            .await
            .unwrap()
    }

    /// Creates or replaces endpoint `churn` from a YAML definition.
    async fn endpoint_yaml(&self, yaml: &str) -> Result<Applied, ClientError> {
        self.client()
            .put_endpoint("churn", Definition::Yaml(yaml.into()), Duration::ZERO)
            .await
    }

    /// Creates or replaces monitor `name` from a YAML definition.
    async fn monitor(&self, name: &str, yaml: &str) -> Result<Applied, ClientError> {
        self.client()
            .put_monitor(name, Definition::Yaml(yaml.into()))
            .await
    }

    /// Sends `n` rows (shifted by `shift` in `a`) and uploads labels `a + b + c + bias`.
    async fn traffic(&self, from: u64, n: u64, shift: f64, bias: f64) {
        let mut labels = Vec::new();
        for i in from..from + n {
            let row = [unit(3 * i + 7) + shift, unit(3 * i + 8), unit(3 * i + 9)];
            self.invoke(&format!("id-{i}"), row).await.unwrap();
            labels.push(
                json!({"inference_id": format!("id-{i}"), "label": row.iter().sum::<f64>() + bias}),
            );
        }
        let v = self
            .client()
            .upload_ground_truth("churn", &labels)
            .await
            .unwrap();
        assert_eq!(v["stored"].as_u64(), Some(n), "{v}");
    }

    /// Runs `churn-watch` over its own window (`201 Created`: `serve` holds
    /// the status to the document's).
    async fn run(&self) -> Value {
        self.client()
            .run_monitor("churn-watch", &json!({}))
            .await
            .unwrap()
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
    let h = Harness::new().await;
    let v = h.endpoint("churn", &h.model, true).await;
    assert!(v.created, "{v:?}");
    let monitor = "endpoint: churn\nwindow: 1h\nmodel_quality:\n  problem_type: Regression\n  label: label\n  constraints: {mae: {threshold: 0.5, comparison_operator: GreaterThanThreshold}}\n";
    let v = h.monitor("churn-watch", monitor).await.unwrap();
    assert!(v.created, "{v:?}");

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
    let v = h
        .client()
        .monitor_runs("churn-watch", DEFAULT_RUNS)
        .await
        .unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["runs"][0]["id"], bad["id"]);
    let v = h.client().list_monitors().await.unwrap();
    assert_eq!(v["monitors"][0]["last_run"]["id"], bad["id"]);
}

/// The server's page of monitor runs when none is asked for.
const DEFAULT_RUNS: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_definitions_uploads_and_names_are_4xx() {
    let h = Harness::new().await;
    let c = h.client();
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
        let e = refused(h.monitor("m", spec).await);
        assert_eq!(e.status, 400, "{spec}: {e:?}");
        assert!(e.message.contains(says), "{spec}: {e:?}");
    }
    let e = refused(h.monitor("bad_name", "endpoint: churn\n").await);
    assert_eq!(e.status, 400, "{e:?}");
    let e = refused(c.run_monitor("none", &json!({})).await);
    assert_eq!(e.status, 404, "{e:?}");
    let e = refused(
        c.upload_ground_truth("none", &[json!({"inference_id": "a", "label": 1})])
            .await,
    );
    assert_eq!(e.status, 404, "{e:?}");
    assert!(h.endpoint("churn", &h.model, false).await.created);
    let e = refused(c.upload_ground_truth("churn", &[json!({"label": 1})]).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(e.message.contains("records[0].inference_id"), "{e:?}");
    // Without capture a monitor could never see a row: refused.
    let e = refused(h.monitor("quiet", "endpoint: churn\n").await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(
        e.message
            .contains("endpoint 'churn' does not capture its traffic"),
        "{e:?}"
    );
    assert!(!h.endpoint("churn", &h.model, true).await.created);
    // A window with no captured rows fails the run, saying why (the run is
    // created all the same: `201`, which `serve` holds to the document).
    assert!(
        h.monitor("quiet", "endpoint: churn\n")
            .await
            .unwrap()
            .created
    );
    let run = c
        .run_monitor("quiet", &json!({"window": "5m"}))
        .await
        .unwrap();
    assert_eq!(run["status"].as_str(), Some("Failed"), "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("fewer than min_rows"),
        "{run}"
    );
    let e = refused(c.run_monitor("quiet", &json!({"window": "soon"})).await);
    assert_eq!(e.status, 400, "{e:?}");
    // The page size the document allows (1 to 10000), nothing silently clamped.
    for bad in [0, 10001] {
        let e = refused(c.monitor_runs("quiet", bad).await);
        assert_eq!(e.status, 400, "max_results={bad}: {e:?}");
        assert!(
            e.message.contains(&format!("invalid max_results {bad}")),
            "{e:?}"
        );
    }
    let v = c.monitor_runs("quiet", 1).await.unwrap();
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
    let h = Harness::new().await;
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
        let v = h.endpoint(endpoint, &model, true).await;
        assert!(v.created, "{v:?}");
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
        let e = refused(h.monitor("m", spec).await);
        assert_eq!(e.status, 400, "{spec}: {e:?}");
        assert!(e.message.contains(says), "{spec}: {e:?}");
    }
    let v = h.client().list_monitors().await.unwrap();
    assert_eq!(v["monitors"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mistake_of_a_definition_is_reported_with_its_line_and_column() {
    let h = Harness::new().await;
    let e = refused(
        h.monitor(
            "m",
            "endpoint: churn\nwindow: soon\nschedul: '* * * * *'\ndrift:\n  alpha: high\n",
        )
        .await,
    );
    assert_eq!(e.status, 400, "{e:?}");
    let lines: Vec<&str> = e.message.lines().collect();
    assert_eq!(
        lines,
        [
            "m.yaml:2:9: window: invalid window 'soon': use e.g. 10m, 1h or 1d",
            "m.yaml:3:1: unknown key 'schedul' in the monitor definition (did you mean 'schedule'?)",
            "m.yaml:5:10: drift.alpha: expected a number, found string \"high\"",
        ],
        "{e:?}"
    );
    let e = refused(h.monitor("m", "endpoint: [churn\n").await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(
        e.message
            .contains("the monitor definition is not valid YAML"),
        "{e:?}"
    );
    // Endpoints too.
    let e = refused(
        h.endpoint_yaml(
            "variants:\n  - model: a\n    wieght: 2\n  - model: b\n    weight: -1\nrollout: {strategy: canery}\n",
        )
        .await,
    );
    assert_eq!(e.status, 400, "{e:?}");
    let lines: Vec<&str> = e.message.lines().collect();
    assert_eq!(
        lines,
        [
            "churn.yaml:3:5: unknown key 'wieght' in variants[0] (did you mean 'weight'?)",
            "churn.yaml:6:21: rollout.strategy: unknown value 'canery': expected one of all_at_once, canary, linear, blue_green (did you mean 'canary'?)",
        ],
        "{e:?}"
    );
    // Structure right, rules broken: each at the field that breaks it.
    let e = refused(
        h.endpoint_yaml(
            "variants:\n  - model: a\n    weight: -1\n  - {name: x-canary, model: b}\ncapture: {sampling_percent: 200}\n",
        )
        .await,
    );
    assert_eq!(e.status, 400, "{e:?}");
    let lines: Vec<&str> = e.message.lines().collect();
    assert_eq!(
        lines,
        [
            "churn.yaml:3:13: variant 'primary': weight must be a number >= 0",
            "churn.yaml:4:12: variant name 'x-canary': names ending in -canary are kept for rollouts",
            "churn.yaml:5:29: capture.sampling_percent must be between 0 and 100, got 200",
        ],
        "{e:?}"
    );
}
