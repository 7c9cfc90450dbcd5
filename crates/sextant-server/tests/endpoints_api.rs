//! Serving endpoints through the native API and `/endpoints/{name}/…`:
//! a canary under continuous load promotes after its bake with no failed
//! request, a failing canary is rolled back by its alarm, manual promote and
//! rollback, a rollout continues after a restart, an endpoint following a
//! registered model deploys each approved version, and bad definitions are
//! 4xx naming the problem.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use prost::Message;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_core::clock::{ManualClock, SharedClock};
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;
use support::{call, eventually};

struct Harness {
    app: Router,
    /// Where the controller reads the time.
    clock: SharedClock,
    store: Arc<dyn MetaStore>,
    artifacts: Arc<ArtifactStore>,
    data: PathBuf,
    models: PathBuf,
    controller: tokio::task::JoinHandle<()>,
    _orchestrator: Option<tokio::task::JoinHandle<()>>,
    _dirs: Vec<tempfile::TempDir>,
}

fn state(
    store: Arc<dyn MetaStore>,
    artifacts: Arc<ArtifactStore>,
    data: &Path,
    clock: &SharedClock,
) -> AppState {
    AppState::new(store, artifacts, SecurityConfig::loopback())
        .with_data_dir(data.to_path_buf())
        .with_clock(clock.clone())
}

impl Harness {
    fn new() -> Harness {
        Self::build(false, sextant_core::clock::system())
    }

    /// With the pipeline orchestrator running too.
    fn with_pipelines() -> Harness {
        Self::build(true, sextant_core::clock::system())
    }

    /// With the controller reading time from `clock`.
    fn with_clock(clock: SharedClock) -> Harness {
        Self::build(false, clock)
    }

    fn build(pipelines: bool, clock: SharedClock) -> Harness {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let store: Arc<dyn MetaStore> =
            Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
        let artifacts =
            Arc::new(ArtifactStore::from_uri(dirs[1].path().to_str().unwrap()).unwrap());
        let st = state(store.clone(), artifacts.clone(), dirs[0].path(), &clock);
        let controller = controllers::spawn_endpoints(&st);
        let orchestrator = pipelines.then(|| {
            sextant_server::controllers::spawn_pipelines(
                &st,
                sextant_control::pipelines::Settings {
                    data_dir: dirs[0].path().to_path_buf(),
                    tracking_uri: "http://127.0.0.1:9".into(),
                    concurrency: 1,
                    worker_id: "test".into(),
                    lease: sextant_control::pipelines::DEFAULT_LEASE,
                    tracking_token: None,
                    tracking_insecure_tls: false,
                },
            )
        });
        Harness {
            clock,
            _orchestrator: orchestrator,
            app: router(st),
            store,
            artifacts,
            data: dirs[0].path().to_path_buf(),
            models: dirs[2].path().to_path_buf(),
            controller,
            _dirs: dirs,
        }
    }

    /// The same stores served by a new process's state and controller.
    fn restart(&mut self) {
        self.controller.abort();
        let st = state(
            self.store.clone(),
            self.artifacts.clone(),
            &self.data,
            &self.clock,
        );
        self.controller = controllers::spawn_endpoints(&st);
        self.app = router(st);
    }

    /// `y = a + b + c + intercept`: the intercept tells which model answered.
    fn model(&self, name: &str, intercept: f64) -> String {
        let dir = self.models.join(name);
        let model = LinearModel {
            coefficients: vec![1.0, 1.0, 1.0],
            intercept,
        };
        let names = ["a", "b", "c"].map(String::from).to_vec();
        let example = Matrix::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
        mlflow_model::save_linear(&dir, &model, &names, &example).unwrap();
        dir.display().to_string()
    }

    /// A model that loads but fails on every request: its weights do not
    /// fit its input.
    fn broken(&self) -> String {
        let dir = self.model("broken", 0.0);
        let path = Path::new(&dir).join("model.onnx");
        let mut m =
            sextant_train::onnx::pb::ModelProto::decode(&*std::fs::read(&path).unwrap()).unwrap();
        let graph = m.graph.as_mut().unwrap();
        let w = graph
            .initializer
            .iter_mut()
            .find(|t| t.name == "coefficients")
            .unwrap();
        w.dims = vec![4, 1];
        w.float_data = vec![1.0; 4];
        w.raw_data.clear();
        std::fs::write(&path, m.encode_to_vec()).unwrap();
        dir
    }

    async fn put(&self, name: &str, spec: Value) -> (StatusCode, Value) {
        call(
            &self.app,
            "PUT",
            &format!("/api/v1/endpoints/{name}"),
            &spec.to_string(),
        )
        .await
    }

    async fn get(&self, name: &str) -> Value {
        let (s, v) = call(&self.app, "GET", &format!("/api/v1/endpoints/{name}"), "").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Polls the endpoint until `done` holds (30 s at most).
    async fn until(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        eventually(
            Duration::from_secs(30),
            "the endpoint to get there",
            || async {
                let v = self.get(name).await;
                if done(&v) { Ok(v) } else { Err(v) }
            },
        )
        .await
    }

    /// One prediction of row (1, 2, 3): 6 + the answering model's intercept.
    async fn invoke(&self, name: &str) -> (StatusCode, Value) {
        let req = axum::http::Request::builder()
            .method("POST")
            .uri(format!("/endpoints/{name}/invocations"))
            .header("host", "127.0.0.1:5000")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(r#"{"inputs": [[1.0, 2.0, 3.0]]}"#))
            .unwrap();
        let resp = tower::ServiceExt::oneshot(self.app.clone(), req)
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn answer(v: &Value) -> f64 {
    let p = &v["predictions"]["variable"][0];
    p.as_f64()
        .or_else(|| p[0].as_f64())
        .unwrap_or_else(|| panic!("no prediction in {v}"))
}

fn one(model: &str, rollout: Value) -> Value {
    json!({"variants": [{"model": model}], "rollout": rollout})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_under_load_promotes_after_its_bake_without_a_failed_request() {
    // The bake ends when the test moves the clock, not after waiting for it.
    let clock = ManualClock::now();
    let h = Arc::new(Harness::with_clock(clock.clone()));
    let (v1, v2) = (h.model("v1", 10.0), h.model("v2", 20.0));
    let rollout =
        json!({"strategy": "canary", "percent": 50, "bake": "1h", "alarms": {"min_requests": 5}});
    let (s, v) = h.put("churn", one(&v1, rollout.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "in_service");
    let (s, r) = h.invoke("churn").await;
    assert_eq!((s, answer(&r)), (StatusCode::OK, 16.0), "{r}");

    // Continuous load from two tasks through the whole rollout.
    let stop = Arc::new(AtomicBool::new(false));
    let (failed, seen_old, seen_new) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut load = Vec::new();
    for _ in 0..2 {
        let (h, stop, failed, old, new) = (
            h.clone(),
            stop.clone(),
            failed.clone(),
            seen_old.clone(),
            seen_new.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (s, r) = h.invoke("churn").await;
                if s != StatusCode::OK {
                    failed.fetch_add(1, Ordering::SeqCst);
                } else if answer(&r) == 16.0 {
                    old.fetch_add(1, Ordering::SeqCst);
                } else if answer(&r) == 26.0 {
                    new.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let (s, v) = h.put("churn", one(&v2, rollout)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "updating", "{v}");
    assert_eq!(v["rollout"]["traffic_percent"], 50.0);
    assert_eq!(v["rollout"]["time_left_ms"], 3_600_000, "{v}");
    // Both models answer while the canary bakes, and the controller holds its split.
    eventually(Duration::from_secs(30), "both models to answer", || async {
        let (new, old) = (
            seen_new.load(Ordering::SeqCst),
            seen_old.load(Ordering::SeqCst),
        );
        if new > 0 && old >= 2 {
            Ok(())
        } else {
            Err(format!("canary {new}, primary {old}"))
        }
    })
    .await;
    let v = h.get("churn").await;
    assert_eq!(v["status"], "updating", "{v}");
    clock.advance(Duration::from_secs(3600));
    let done = h
        .until("churn", |v| {
            v["past_rollouts"].as_array().is_some_and(|p| !p.is_empty())
        })
        .await;
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed requests during the rollout"
    );
    assert!(seen_old.load(Ordering::SeqCst) > 0 && seen_new.load(Ordering::SeqCst) > 0);
    let r = &done["past_rollouts"][0];
    assert_eq!(r["status"], "succeeded", "{done}");
    assert_eq!(done["status"], "in_service");
    assert!(done["rollout"].is_null());
    assert_eq!(done["deployed"]["primary"]["resolved"], v2.as_str());
    let splits: Vec<&Value> = done["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["split"])
        .collect();
    assert_eq!(
        splits,
        [
            &json!({"primary": 100.0}),
            &json!({"primary": 50.0, "primary-canary": 50.0}),
            &json!({"primary": 100.0}),
        ]
    );
    for _ in 0..10 {
        let (s, r) = h.invoke("churn").await;
        assert_eq!((s, answer(&r)), (StatusCode::OK, 26.0));
    }
    // The events feed shows each hop.
    let (_, events) = call(&h.app, "GET", "/api/v1/events?kind=endpoint.*", "").await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "endpoint.created",
            "endpoint.updated",
            "endpoint.rollout_succeeded"
        ],
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_is_rolled_back_by_its_alarm() {
    let h = Harness::new();
    let (v1, broken) = (h.model("v1", 10.0), h.broken());
    let rollout = json!({"strategy": "canary", "percent": 50, "bake": "1h",
        "alarms": {"min_requests": 5, "max_error_rate": 0.1}});
    let (s, v) = h.put("churn", one(&v1, rollout.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = h.put("churn", one(&broken, rollout)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Traffic until the controller has seen enough failures to act.
    let done = eventually(Duration::from_secs(30), "a rollback", || async {
        h.invoke("churn").await;
        let v = h.get("churn").await;
        if v["rollout"].is_null() {
            Ok(v)
        } else {
            Err(v)
        }
    })
    .await;
    let r = &done["past_rollouts"][0];
    assert_eq!(r["status"], "rolled_back", "{done}");
    assert!(r["reason"].as_str().unwrap().contains("error rate"), "{r}");
    assert_eq!(done["deployed"]["primary"]["resolved"], v1.as_str());
    for _ in 0..10 {
        let (s, r) = h.invoke("churn").await;
        assert_eq!((s, answer(&r)), (StatusCode::OK, 16.0), "{r}");
    }
    // The canary's counters stay with its rollout, not among the variants served now.
    let counters = &r["counters"];
    assert!(counters["new"]["errors"].as_u64().unwrap() >= 5, "{r}");
    assert_eq!(counters["new"]["rejected"], 0, "{r}");
    let stats = done["stats"].as_array().unwrap();
    assert!(
        stats.iter().all(|s| s["variant"] != "primary-canary"),
        "{done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_promote_and_rollback_and_a_rollout_survives_a_restart() {
    let mut h = Harness::new();
    let (v1, v2) = (h.model("v1", 10.0), h.model("v2", 20.0));
    let linear = json!({"strategy": "linear", "percent": 25, "interval": "1h"});
    h.put("churn", one(&v1, linear.clone())).await;
    let (s, v) = call(&h.app, "POST", "/api/v1/endpoints/churn/promote", "").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    let (_, v) = h.put("churn", one(&v2, linear.clone())).await;
    assert_eq!(v["rollout"]["traffic_percent"], 25.0, "{v}");
    // Another model change waits for this rollout to end.
    let (s, v) = h.put("churn", one(&v1, linear.clone())).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // The stored rollout goes on in a new process, at the same traffic, once
    // the new process's controller has restored the endpoint.
    h.restart();
    eventually(Duration::from_secs(30), "the restored endpoint", || async {
        let (s, r) = h.invoke("churn").await;
        if s == StatusCode::OK { Ok(()) } else { Err(r) }
    })
    .await;
    let v = h.get("churn").await;
    assert_eq!(v["rollout"]["traffic_percent"], 25.0, "{v}");
    let mut answers = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let (s, r) = h.invoke("churn").await;
        assert_eq!(s, StatusCode::OK, "{r}");
        answers.insert(answer(&r) as i64);
    }
    assert_eq!(
        answers,
        [16, 26].into(),
        "both models serve during the rollout"
    );
    let (s, v) = call(&h.app, "POST", "/api/v1/endpoints/churn/promote", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["past_rollouts"][0]["status"], "succeeded");
    assert_eq!(v["deployed"]["primary"]["resolved"], v2.as_str());

    let (_, v) = h.put("churn", one(&v1, linear)).await;
    assert_eq!(v["status"], "updating");
    let (s, v) = call(&h.app, "POST", "/api/v1/endpoints/churn/rollback", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["past_rollouts"][1]["status"], "aborted");
    assert_eq!(v["deployed"]["primary"]["resolved"], v2.as_str());
    let (s, r) = h.invoke("churn").await;
    assert_eq!((s, answer(&r)), (StatusCode::OK, 26.0));

    let (s, _) = call(&h.app, "DELETE", "/api/v1/endpoints/churn", "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h.invoke("churn").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Registers a model version whose files are `dir`, through the MLflow API.
async fn register(h: &Harness, name: &str, dir: &str) -> i64 {
    let (_, run) = call(
        &h.app,
        "POST",
        "/api/2.0/mlflow/runs/create",
        &json!({"experiment_id": "0"}).to_string(),
    )
    .await;
    let root = run["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let rel = root.strip_prefix("mlflow-artifacts:/").unwrap().to_string();
    for f in ["MLmodel", "model.onnx"] {
        let bytes = std::fs::read(Path::new(dir).join(f)).unwrap();
        let req = axum::http::Request::builder()
            .method("PUT")
            .uri(format!(
                "/api/2.0/mlflow-artifacts/artifacts/{rel}/model/{f}"
            ))
            .header("host", "127.0.0.1:5000")
            .body(axum::body::Body::from(bytes))
            .unwrap();
        let resp = tower::ServiceExt::oneshot(h.app.clone(), req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    call(
        &h.app,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        &json!({"name": name}).to_string(),
    )
    .await;
    let (s, v) = call(
        &h.app,
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        &json!({"name": name, "source": format!("{root}/model"),
            "run_id": run["run"]["info"]["run_id"]})
        .to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["model_version"]["version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_following_a_model_deploys_each_approved_version() {
    let h = Harness::new();
    let first = register(&h, "churn", &h.model("v1", 10.0)).await;
    let (s, v) = h
        .put(
            "churn",
            json!({"variants": [{"model": format!("models:/churn/{first}")}],
                "follow": {"model": "churn", "approved": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["deployed"]["primary"]["version"], 1);
    let (s, r) = h.invoke("churn").await;
    assert_eq!((s, answer(&r)), (StatusCode::OK, 16.0), "{r}");

    let second = register(&h, "churn", &h.model("v2", 20.0)).await;
    let (s, v) = call(
        &h.app,
        "POST",
        &format!("/api/v1/models/churn/versions/{second}/approval"),
        r#"{"status": "approved"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v = h
        .until("churn", |v| v["deployed"]["primary"]["version"] == second)
        .await;
    assert_eq!(v["spec"]["variants"][0]["model"], "models:/churn/2");
    let (s, r) = h.invoke("churn").await;
    assert_eq!((s, answer(&r)), (StatusCode::OK, 26.0), "{r}");
    // The registry version's files were copied under the data directory.
    assert!(h.data.join("serving/models/churn/2/MLmodel").is_file());
}

#[tokio::test]
async fn bad_definitions_are_4xx_naming_the_problem() {
    let h = Harness::new();
    let good = h.model("v1", 10.0);
    let cases = [
        (json!({}), "variants"),
        (json!({"variants": []}), "at least one variant"),
        (
            json!({"variants": [{"model": good, "colour": 1}]}),
            "colour",
        ),
        (json!({"variants": [{"model": "/nowhere"}]}), "MLmodel"),
        (json!({"variants": [{"model": "models:/ghost/1"}]}), "ghost"),
        (
            json!({"variants": [{"model": good, "weight": -1}]}),
            "weight",
        ),
        (
            json!({"variants": [{"model": good}, {"model": good}]}),
            "used twice",
        ),
        (
            json!({"variants": [{"model": good}], "rollout": {"bake": "soon"}}),
            "soon",
        ),
        (
            json!({"variants": [{"model": good}], "rollout": {"strategy": "yolo"}}),
            "yolo",
        ),
        (
            json!({"variants": [{"model": good}], "capture": {"sampling_percent": 101}}),
            "sampling_percent",
        ),
        (
            json!({"variants": [{"model": good}], "rollout": {"alarms": {"max_rejected_rate": 2}}}),
            "max_rejected_rate must be between 0 and 1",
        ),
        (
            json!({"variants": [{"model": good, "instances": {"max": 4}}]}),
            "instances autoscale the process runtime",
        ),
        (
            json!({"variants": [{"model": good, "runtime": "process", "instances": {"min": 3, "max": 2}}]}),
            "min <= max",
        ),
        (
            json!({"variants": [{"model": good, "runtime": "process", "instances": {"max": 2, "target_in_flight": 0}}]}),
            "target_in_flight",
        ),
    ];
    for (spec, named) in cases {
        let (s, v) = h.put("churn", spec.clone()).await;
        assert!(s.is_client_error(), "{spec}: {s} {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(named),
            "{spec}: {v}"
        );
    }
    let (s, v) = h.put("bad_name", one(&good, json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = call(&h.app, "GET", "/api/v1/endpoints/churn", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing was stored");
    let (s, _) = h.invoke("churn").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gateway_reports_are_4xx_naming_the_problem() {
    let h = Harness::new();
    let good = h.model("v1", 10.0);
    let (s, v) = h.put("churn", one(&good, json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let variant = |counts: usize| {
        json!({"name": "primary", "shadow": false, "requests": 3, "errors": 0, "client_errors": 0,
               "rejected": 0, "in_flight": 0, "latency": {"counts": vec![0; counts], "sum_seconds": 0.01}})
    };
    let path = "/api/v1/endpoints/churn/gateway-stats";
    let (s, v) = call(
        &h.app,
        "POST",
        path,
        &json!({"gateway": "g1", "variants": [variant(19)]}).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    for (body, named) in [
        (
            json!({"gateway": "g1", "variants": [variant(3)]}),
            "bucket counts",
        ),
        (json!({"gateway": "", "variants": []}), "'gateway'"),
        (json!({"variants": []}), "gateway"),
        (
            json!({"gateway": "g1", "variants": [], "extra": 1}),
            "extra",
        ),
        (
            json!({"gateway": "g1", "variants": [{"name": "primary"}]}),
            "shadow",
        ),
    ] {
        let (s, v) = call(&h.app, "POST", path, &body.to_string()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(named),
            "{body}: {v}"
        );
    }
    let (s, _) = call(
        &h.app,
        "POST",
        "/api/v1/endpoints/ghost/gateway-stats",
        &json!({"gateway": "g1", "variants": []}).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_step_creates_the_endpoint_then_rolls_out_and_waits() {
    let h = Harness::with_pipelines();
    let app = h.app.clone();
    let text = r#"
name: ship
params:
  model: {type: string}
steps:
  deploy:
    deploy: {endpoint: churn, model: "${params.model}", strategy: canary, percent: 50, bake: 200ms, wait: true}
"#;
    let (s, v) = call(&app, "PUT", "/api/v1/pipelines/ship", text).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (model, answer_is) in [(h.model("v1", 10.0), 16.0), (h.model("v2", 20.0), 26.0)] {
        let (s, v) = call(
            &app,
            "POST",
            "/api/v1/pipelines/ship/runs",
            &json!({"params": {"model": model}}).to_string(),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let uri = format!("/api/v1/pipeline-runs/{id}");
        let run = eventually(Duration::from_secs(60), "the run to end", || async {
            let (_, run) = call(&app, "GET", &uri, "").await;
            if run["status"] != "RUNNING" && run["status"] != "PENDING" {
                return Ok(run);
            }
            // Traffic for the canary's window while the step waits.
            h.invoke("churn").await;
            Err(run)
        })
        .await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        let v = h.get("churn").await;
        assert_eq!(v["deployed"]["primary"]["resolved"], model.as_str(), "{v}");
        let (s, r) = h.invoke("churn").await;
        assert_eq!((s, answer(&r)), (StatusCode::OK, answer_is));
    }
    let v = h.get("churn").await;
    assert_eq!(v["past_rollouts"][0]["status"], "succeeded", "{v}");
    assert_eq!(v["past_rollouts"][0]["policy"]["strategy"], "canary");

    let bad = text.replace("strategy: canary", "strategy: yolo");
    let Err(sextant_pipelines::Error::Invalid { diagnostics, .. }) =
        sextant_pipelines::load("ship.yaml", &bad)
    else {
        panic!("a bad strategy validates");
    };
    let err: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    let err = err.join("; ");
    assert!(err.contains("unknown strategy 'yolo'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_gateways_rejections_reach_the_capacity_alarm_not_the_error_alarm() {
    let h = Harness::new();
    let (v1, v2) = (h.model("v1", 10.0), h.model("v2", 10.0));
    let rollout = |max_rejected_rate: Value| {
        json!({"strategy": "canary", "percent": 50, "bake": "1h",
            "alarms": {"min_requests": 5, "max_error_rate": 0.01, "max_rejected_rate": max_rejected_rate}})
    };
    let (s, v) = h.put("churn", one(&v1, rollout(json!(0.5)))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = h.put("churn", one(&v2, rollout(json!(0.5)))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // What a `sextant gateway` under overload reports: most of the canary's requests
    // refused at its limit, none failed.
    let report = |gateway: &str, requests: u64, rejected: u64| {
        let mut counts = vec![0u64; 19];
        counts[0] = requests - rejected;
        json!({"gateway": gateway, "variants": [{"name": "primary-canary", "shadow": false,
            "requests": requests, "errors": 0, "client_errors": 0, "rejected": rejected, "in_flight": 0,
            "latency": {"counts": counts, "sum_seconds": 0.001}}]})
        .to_string()
    };
    let path = "/api/v1/endpoints/churn/gateway-stats";
    let (s, v) = call(&h.app, "POST", path, &report("g1", 100, 40)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    // 40 % rejected is under the capacity limit and no error at all: it keeps baking.
    let v = h
        .until("churn", |v| {
            v["rollout"]["counters"]["new"]["rejected"] == 40
        })
        .await;
    assert_eq!(v["rollout"]["counters"]["new"]["errors"], 0, "{v}");
    assert_eq!(v["rollout"]["status"], "in_progress", "{v}");
    // Past the limit, the capacity alarm rolls it back, naming the rejected rate.
    let (s, v) = call(&h.app, "POST", path, &report("g1", 200, 140)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let done = h.until("churn", |v| v["rollout"].is_null()).await;
    let r = &done["past_rollouts"][0];
    assert_eq!(r["status"], "rolled_back", "{done}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("rejected rate 70.0%"),
        "{r}"
    );
    assert_eq!(r["counters"]["new"]["rejected"], 140, "{r}");
}

/// One request to `app` with `headers`; the status and response headers.
async fn with_headers(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, axum::http::HeaderMap) {
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:5000");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(axum::body::Body::from(body.to_string())).unwrap();
    let resp = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    (resp.status(), resp.headers().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_routes_answer_cors_for_the_endpoints_allowed_origins_only() {
    let h = Harness::new();
    let model = h.model("v1", 10.0);
    let app_origin = "https://app.example.com";
    let spec = json!({"variants": [{"model": model}], "allowed_origins": [app_origin]});
    let (s, v) = h.put("churn", spec).await;
    assert!(s.is_success(), "{v}");
    let header = |h: &axum::http::HeaderMap, name: &str| {
        h.get(name).map(|v| v.to_str().unwrap().to_string())
    };

    // A listed origin's preflight is answered.
    let (s, got) = with_headers(
        &h.app,
        "OPTIONS",
        "/endpoints/churn/invocations",
        &[
            ("origin", app_origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, x-inference-id",
            ),
        ],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{got:?}");
    assert_eq!(
        header(&got, "access-control-allow-origin").as_deref(),
        Some(app_origin)
    );
    assert!(
        header(&got, "access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    let allowed = header(&got, "access-control-allow-headers").unwrap();
    for name in [
        "content-type",
        "x-inference-id",
        "x-amzn-sagemaker-inference-id",
        "x-amzn-sagemaker-target-variant",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert_eq!(header(&got, "vary").as_deref(), Some("Origin"));

    // Its requests are served with headers it may read.
    let predict = |origin: &'static str| {
        let app = h.app.clone();
        async move {
            with_headers(
                &app,
                "POST",
                "/endpoints/churn/invocations",
                &[("origin", origin), ("content-type", "application/json")],
                r#"{"inputs": [[1.0, 2.0, 3.0]]}"#,
            )
            .await
        }
    };
    let (s, got) = predict("https://app.example.com").await;
    assert_eq!(s, StatusCode::OK, "{got:?}");
    assert_eq!(
        header(&got, "access-control-allow-origin").as_deref(),
        Some(app_origin)
    );
    let exposed = header(&got, "access-control-expose-headers").unwrap();
    assert!(exposed.contains("x-inference-id"), "{exposed}");
    assert!(
        exposed.contains("x-amzn-invoked-production-variant"),
        "{exposed}"
    );

    // Another origin is served too, but its page may not read the answer.
    let (s, got) = predict("https://evil.example.com").await;
    assert_eq!(s, StatusCode::OK, "{got:?}");
    assert_eq!(header(&got, "access-control-allow-origin"), None);
    let (_, got) = with_headers(
        &h.app,
        "OPTIONS",
        "/endpoints/churn/invocations",
        &[
            ("origin", "https://evil.example.com"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(header(&got, "access-control-allow-origin"), None);

    // A changed definition is followed: the origin is no longer listed.
    let (s, v) = h
        .put("churn", json!({"variants": [{"model": model}]}))
        .await;
    assert!(s.is_success(), "{v}");
    let (s, got) = predict("https://app.example.com").await;
    assert_eq!(s, StatusCode::OK, "{got:?}");
    assert_eq!(header(&got, "access-control-allow-origin"), None);

    // An entry that is not an origin is a 400 at its line and column.
    let yaml = format!(
        "variants:\n  - model: {model}\nallowed_origins:\n  - {app_origin}\n  - app.example.com/path\n"
    );
    let (s, v) = call(&h.app, "PUT", "/api/v1/endpoints/churn", &yaml).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("churn.yaml:5:5: invalid allowed origin 'app.example.com/path'"),
        "{message}"
    );
}
