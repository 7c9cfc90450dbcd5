//! The remote worker protocol in-process, as `sextant worker` speaks it: a
//! claim hands out only work steps (the server runs control steps itself),
//! a worker whose lease expired and was re-claimed gets 409 for its
//! heartbeat and its outcome and changes nothing, the new holder's outcome
//! counts, and bad requests are 4xx naming what is wrong.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_control::pipelines;
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use support::{call, eventually};

struct Harness {
    app: Router,
    store: Arc<dyn MetaStore>,
    _dirs: Vec<tempfile::TempDir>,
    _orchestrator: tokio::task::JoinHandle<()>,
}

/// A server that runs no work steps itself: every one waits for a worker.
fn harness() -> Harness {
    let (data, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
    let artifacts = ArtifactStore::from_uri(art.path().to_str().unwrap()).unwrap();
    let state = AppState::new(
        store.clone(),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    );
    let orchestrator = controllers::spawn_pipelines(
        &state,
        pipelines::Settings {
            data_dir: data.path().to_path_buf(),
            tracking_uri: "http://127.0.0.1:9".into(),
            concurrency: 0,
            worker_id: "server".into(),
            lease: pipelines::DEFAULT_LEASE,
            tracking_token: None,
            tracking_insecure_tls: false,
        },
    );
    Harness {
        app: router(state),
        store,
        _dirs: vec![data, art],
        _orchestrator: orchestrator,
    }
}

const PIPELINE: &str = r#"
name: remote
params:
  threshold: {type: float, default: 0.5}
steps:
  work:
    run: "echo never runs here"
  gate:
    condition: "steps.work.metrics.score > params.threshold"
    then: [after]
    else: fail
  after:
    run: "echo after"
"#;

impl Harness {
    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        call(&self.app, "POST", uri, &body.to_string()).await
    }

    async fn claim(&self, worker: &str, lease_ms: i64, wait_ms: u64) -> Value {
        let (s, v) = self
            .post(
                "/api/v1/tasks/claim",
                json!({"worker": worker, "lease_ms": lease_ms, "wait_ms": wait_ms}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["task"].clone()
    }

    async fn start(&self) -> String {
        let (s, v) = call(&self.app, "PUT", "/api/v1/pipelines/remote", PIPELINE).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = self.post("/api/v1/pipelines/remote/runs", json!({})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn detail(&self, id: &str) -> Value {
        call(&self.app, "GET", &format!("/api/v1/pipeline-runs/{id}"), "")
            .await
            .1
    }
}

fn succeeded(metrics: Value) -> Value {
    json!({"status": "succeeded", "result": {"metrics": metrics}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_holder_is_refused_and_the_new_holders_outcome_counts() {
    let h = harness();
    let id = h.start().await;
    let first = h.claim("w1", 200, 10_000).await;
    assert_eq!(first["step"], "work", "{first}");
    assert_eq!(first["pipeline_run"], id.as_str());
    assert_eq!(first["fencing"], 1);
    assert!(first["spec"].as_str().unwrap().contains("name: remote"));
    assert_eq!(first["params"], json!({"threshold": 0.5}));
    let task = first["task_id"].as_i64().unwrap();

    // w1 stops renewing; once its 200 ms lease expired, w2 gets the task.
    let second = h.claim("w2", 30_000, 10_000).await;
    assert_eq!(second["task_id"], task, "{second}");
    assert_eq!(second["fencing"], 2);
    assert_ne!(second["step_run_id"], first["step_run_id"]);

    let (s, v) = h
        .post(
            &format!("/api/v1/tasks/{task}/heartbeat"),
            json!({"fencing": 1, "lease_ms": 30_000}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error_code"], "RESOURCE_CONFLICT");
    let (s, v) = h
        .post(
            &format!("/api/v1/tasks/{task}/outcome"),
            json!({"fencing": 1, "outcome": succeeded(json!({"score": 0.0}))}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("fencing token 1"),
        "{v}"
    );

    let (s, v) = h
        .post(
            &format!("/api/v1/tasks/{task}/heartbeat"),
            json!({"fencing": 2, "lease_ms": 30_000}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = h
        .post(
            &format!("/api/v1/tasks/{task}/outcome"),
            json!({"fencing": 2, "outcome": succeeded(json!({"score": 0.9}))}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A repeat of the stale outcome still changes nothing.
    let (s, _) = h
        .post(
            &format!("/api/v1/tasks/{task}/outcome"),
            json!({"fencing": 1, "outcome": succeeded(json!({"score": 0.0}))}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // The condition runs on the server under the claim; the worker's next
    // order is the step after it.
    let next = h.claim("w2", 30_000, 10_000).await;
    assert_eq!(next["step"], "after", "{next}");
    assert_eq!(next["metrics"]["work"]["score"], 0.9);
    let (s, v) = h
        .post(
            &format!("/api/v1/tasks/{}/outcome", next["task_id"]),
            json!({"fencing": next["fencing"], "outcome": succeeded(json!({}))}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let detail = eventually(Duration::from_secs(30), "the run to end", || async {
        let d = h.detail(&id).await;
        if d["status"] != "RUNNING" && d["status"] != "PENDING" {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    assert_eq!(detail["status"], "SUCCEEDED", "{detail}");
    let steps = detail["steps"].as_array().unwrap();
    let work = &steps[0];
    assert_eq!(work["fencing"], 2, "{work}");
    assert_eq!(work["worker"], "w2");
    assert_eq!(work["metrics"]["score"], 0.9);
    assert_eq!(work["tracking_run_id"], second["step_run_id"]);
    assert_eq!(steps[1]["branch"], "then");
    assert_eq!(steps[2]["worker"], "w2");
    // The metrics the worker reported landed in the step's tracking run.
    let run = h
        .store
        .get_run(second["step_run_id"].as_str().unwrap())
        .unwrap();
    assert!(
        run.data
            .metrics
            .iter()
            .any(|m| m.key == "score" && m.value == 0.9),
        "{:?}",
        run.data.metrics
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_outcome_fails_the_step_and_missing_outputs_are_refused() {
    let h = harness();
    let text = r#"
name: outs
steps:
  make:
    run: "true"
    outputs: [model]
"#;
    let (s, v) = call(&h.app, "PUT", "/api/v1/pipelines/outs", text).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = h.post("/api/v1/pipelines/outs/runs", json!({})).await;
    let id = v["id"].as_str().unwrap().to_string();
    let order = h.claim("w", 30_000, 10_000).await;
    // Claiming a result without publishing the declared output fails the attempt.
    let (s, v) = h
        .post(
            &format!("/api/v1/tasks/{}/outcome", order["task_id"]),
            json!({"fencing": order["fencing"], "outcome": {"status": "succeeded", "result": {"outputs": {
                "model": {"digest": format!("sha256:{}", "0".repeat(64)), "files": 1, "bytes": 1}
            }}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let detail = eventually(Duration::from_secs(30), "the run to fail", || async {
        let d = h.detail(&id).await;
        if d["status"] == "FAILED" {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    let err = detail["steps"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("output 'model'") && err.contains("not in the artifact store"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_worker_requests_are_4xx_naming_the_problem() {
    let h = harness();
    let cases = [
        (
            "/api/v1/tasks/claim",
            json!({"worker": "w", "lease_ms": 0}),
            "lease_ms",
        ),
        (
            "/api/v1/tasks/claim",
            json!({"worker": "", "lease_ms": 1000}),
            "worker",
        ),
        (
            "/api/v1/tasks/claim",
            json!({"worker": "w", "lease_ms": 1000, "extra": 1}),
            "extra",
        ),
        (
            "/api/v1/tasks/7/heartbeat",
            json!({"fencing": 1}),
            "lease_ms",
        ),
        (
            "/api/v1/tasks/7/outcome",
            json!({"fencing": 1, "outcome": {"status": "maybe"}}),
            "maybe",
        ),
    ];
    for (uri, body, named) in cases {
        let (s, v) = h.post(uri, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} {body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(named),
            "{uri} {body}: {v}"
        );
    }
    let (s, v) = h
        .post(
            "/api/v1/tasks/12345/outcome",
            json!({"fencing": 1, "outcome": {"status": "failed", "message": "x"}}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // A heartbeat for a task that does not exist is the worker's mistake too.
    let (s, v) = h
        .post(
            "/api/v1/tasks/12345/heartbeat",
            json!({"fencing": 1, "lease_ms": 1000}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error_code"], "RESOURCE_DOES_NOT_EXIST", "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("12345"), "{v}");
    let (s, v) = h
        .post(
            "/api/v1/tasks/abc/heartbeat",
            json!({"fencing": 1, "lease_ms": 1000}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // An idle queue answers "no task" once the wait is over.
    assert_eq!(h.claim("w", 1000, 0).await, Value::Null);
}
