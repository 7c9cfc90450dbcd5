//! Serving endpoints through the native API and `/endpoints/{name}/…`:
//! a canary under continuous load promotes after its bake with no failed
//! request, a failing canary is rolled back by its alarm, manual promote and
//! rollback, a rollout continues after a restart, an endpoint following a
//! registered model deploys each approved version, and bad definitions are
//! 4xx naming the problem. Through the typed client, as the CLI and a
//! separate gateway talk to a server; CORS headers on the wire.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use bytes::Bytes;
use prost::Message;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{
    Applied, Approval, Client, ClientError, Decision, Definition, EventsQuery, NewVersion,
    RunRequest,
};
use sextant_core::clock::{ManualClock, SharedClock};
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;
use support::{Served, call, eventually, refused, serve};

struct Harness {
    /// The router, for what only the wire shows (CORS headers, malformed
    /// reports).
    app: Router,
    served: Served,
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
    async fn new() -> Harness {
        Self::build(false, sextant_core::clock::system()).await
    }

    /// With the pipeline orchestrator running too.
    async fn with_pipelines() -> Harness {
        Self::build(true, sextant_core::clock::system()).await
    }

    /// With the controller reading time from `clock`.
    async fn with_clock(clock: SharedClock) -> Harness {
        Self::build(false, clock).await
    }

    async fn build(pipelines: bool, clock: SharedClock) -> Harness {
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
        let app = router(st);
        Harness {
            clock,
            _orchestrator: orchestrator,
            served: serve(app.clone()).await,
            app,
            store,
            artifacts,
            data: dirs[0].path().to_path_buf(),
            models: dirs[2].path().to_path_buf(),
            controller,
            _dirs: dirs,
        }
    }

    /// The same stores served by a new process's state and controller.
    async fn restart(&mut self) {
        self.controller.abort();
        let st = state(
            self.store.clone(),
            self.artifacts.clone(),
            &self.data,
            &self.clock,
        );
        self.controller = controllers::spawn_endpoints(&st);
        self.app = router(st);
        self.served = serve(self.app.clone()).await;
    }

    fn client(&self) -> &Client {
        &self.served.client
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

    async fn put(&self, name: &str, spec: Value) -> Result<Applied, ClientError> {
        self.client()
            .put_endpoint(name, Definition::Json(spec), Duration::ZERO)
            .await
    }

    async fn get(&self, name: &str) -> Value {
        self.client().get_endpoint(name).await.unwrap()
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
    async fn invoke(&self, name: &str) -> Result<Value, ClientError> {
        self.client()
            .invoke(name, None, &json!({"inputs": [[1.0, 2.0, 3.0]]}))
            .await
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
    let h = Arc::new(Harness::with_clock(clock.clone()).await);
    let (v1, v2) = (h.model("v1", 10.0), h.model("v2", 20.0));
    let rollout =
        json!({"strategy": "canary", "percent": 50, "bake": "1h", "alarms": {"min_requests": 5}});
    let v = h.put("churn", one(&v1, rollout.clone())).await.unwrap();
    assert!(v.created, "{v:?}");
    assert_eq!(v.body["status"], "in_service");
    assert_eq!(answer(&h.invoke("churn").await.unwrap()), 16.0);

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
                match h.invoke("churn").await {
                    Err(_) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) if answer(&r) == 16.0 => {
                        old.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) if answer(&r) == 26.0 => {
                        new.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                }
            }
        }));
    }
    let Applied { created, body: v } = h.put("churn", one(&v2, rollout)).await.unwrap();
    assert!(!created, "{v}");
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
        assert_eq!(answer(&h.invoke("churn").await.unwrap()), 26.0);
    }
    // The events feed shows each hop (and nothing else happened).
    let events = h
        .client()
        .events(&EventsQuery {
            limit: 100,
            ..EventsQuery::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events
        .events
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
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_is_rolled_back_by_its_alarm() {
    let h = Harness::new().await;
    let (v1, broken) = (h.model("v1", 10.0), h.broken());
    let rollout = json!({"strategy": "canary", "percent": 50, "bake": "1h",
        "alarms": {"min_requests": 5, "max_error_rate": 0.1}});
    let v = h.put("churn", one(&v1, rollout.clone())).await.unwrap();
    assert!(v.created, "{v:?}");
    let v = h.put("churn", one(&broken, rollout)).await.unwrap();
    assert!(!v.created, "{v:?}");
    // Traffic until the controller has seen enough failures to act.
    let done = eventually(Duration::from_secs(30), "a rollback", || async {
        // The broken canary's answers fail: any answer will do.
        let _ = h.invoke("churn").await;
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
        assert_eq!(answer(&h.invoke("churn").await.unwrap()), 16.0);
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
    let mut h = Harness::new().await;
    let (v1, v2) = (h.model("v1", 10.0), h.model("v2", 20.0));
    let linear = json!({"strategy": "linear", "percent": 25, "interval": "1h"});
    h.put("churn", one(&v1, linear.clone())).await.unwrap();
    let e = refused(h.client().promote("churn").await);
    assert_eq!(e.status, 409, "{e:?}");

    let v = h.put("churn", one(&v2, linear.clone())).await.unwrap().body;
    assert_eq!(v["rollout"]["traffic_percent"], 25.0, "{v}");
    // Another model change waits for this rollout to end.
    let e = refused(h.put("churn", one(&v1, linear.clone())).await);
    assert_eq!(e.status, 409, "{e:?}");

    // The stored rollout goes on in a new process, at the same traffic, once
    // the new process's controller has restored the endpoint.
    h.restart().await;
    eventually(Duration::from_secs(30), "the restored endpoint", || async {
        h.invoke("churn").await.map(drop)
    })
    .await;
    let v = h.get("churn").await;
    assert_eq!(v["rollout"]["traffic_percent"], 25.0, "{v}");
    let mut answers = std::collections::BTreeSet::new();
    for _ in 0..200 {
        answers.insert(answer(&h.invoke("churn").await.unwrap()) as i64);
    }
    assert_eq!(
        answers,
        [16, 26].into(),
        "both models serve during the rollout"
    );
    let v = h.client().promote("churn").await.unwrap();
    assert_eq!(v["past_rollouts"][0]["status"], "succeeded");
    assert_eq!(v["deployed"]["primary"]["resolved"], v2.as_str());

    let v = h.put("churn", one(&v1, linear)).await.unwrap().body;
    assert_eq!(v["status"], "updating");
    let v = h.client().rollback("churn").await.unwrap();
    assert_eq!(v["past_rollouts"][1]["status"], "aborted");
    assert_eq!(v["deployed"]["primary"]["resolved"], v2.as_str());
    assert_eq!(answer(&h.invoke("churn").await.unwrap()), 26.0);

    h.client().delete_endpoint("churn").await.unwrap();
    let e = h.invoke("churn").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
}

/// Registers a model version whose files are `dir`, through the MLflow API.
async fn register(h: &Harness, name: &str, dir: &str) -> i64 {
    let c = h.client();
    let run = c.create_run("0", None).await.unwrap();
    let root = run["info"]["artifact_uri"].as_str().unwrap().to_string();
    let rel = root.strip_prefix("mlflow-artifacts:/").unwrap().to_string();
    for f in ["MLmodel", "model.onnx"] {
        let bytes = std::fs::read(Path::new(dir).join(f)).unwrap();
        c.put_artifact(&format!("{rel}/model/{f}"), Bytes::from(bytes))
            .await
            .unwrap();
    }
    // The model exists from an earlier version, or is created now.
    if let Err(e) = c.create_registered_model(name, None).await {
        assert_eq!(e.error_code(), Some("RESOURCE_ALREADY_EXISTS"), "{e}");
    }
    let v = c
        .create_model_version(&NewVersion {
            name: name.into(),
            source: format!("{root}/model"),
            run_id: run["info"]["run_id"].as_str().map(str::to_string),
        })
        .await
        .unwrap();
    v["version"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_following_a_model_deploys_each_approved_version() {
    let h = Harness::new().await;
    let first = register(&h, "churn", &h.model("v1", 10.0)).await;
    let Applied { created, body: v } = h
        .put(
            "churn",
            json!({"variants": [{"model": format!("models:/churn/{first}")}],
                "follow": {"model": "churn", "approved": true}}),
        )
        .await
        .unwrap();
    assert!(created, "{v}");
    assert_eq!(v["deployed"]["primary"]["version"], 1);
    assert_eq!(answer(&h.invoke("churn").await.unwrap()), 16.0);

    let second = register(&h, "churn", &h.model("v2", 20.0)).await;
    let approve = Decision {
        status: Approval::Approved,
        force: false,
        comment: None,
        actor: None,
    };
    h.client()
        .decide("churn", second as u64, &approve)
        .await
        .unwrap();
    let v = h
        .until("churn", |v| v["deployed"]["primary"]["version"] == second)
        .await;
    assert_eq!(v["spec"]["variants"][0]["model"], "models:/churn/2");
    assert_eq!(answer(&h.invoke("churn").await.unwrap()), 26.0);
    // The registry version's files were copied under the data directory.
    assert!(h.data.join("serving/models/churn/2/MLmodel").is_file());
}

#[tokio::test]
async fn bad_definitions_are_4xx_naming_the_problem() {
    let h = Harness::new().await;
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
        let e = refused(h.put("churn", spec.clone()).await);
        assert!((400..500).contains(&e.status), "{spec}: {e:?}");
        assert!(e.message.contains(named), "{spec}: {e:?}");
    }
    let e = refused(h.put("bad_name", one(&good, json!({}))).await);
    assert_eq!(e.status, 400, "{e:?}");
    let e = refused(h.client().get_endpoint("churn").await);
    assert_eq!(e.status, 404, "nothing was stored: {e:?}");
    let e = h.invoke("churn").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gateway_reports_are_4xx_naming_the_problem() {
    let h = Harness::new().await;
    let c = h.client();
    let good = h.model("v1", 10.0);
    let v = h.put("churn", one(&good, json!({}))).await.unwrap();
    assert!(v.created, "{v:?}");
    let variant = |counts: usize| {
        json!({"name": "primary", "shadow": false, "requests": 3, "errors": 0, "client_errors": 0,
               "rejected": 0, "in_flight": 0, "latency": {"counts": vec![0; counts], "sum_seconds": 0.01}})
    };
    // 204 No Content: `serve` holds the status to the document's.
    c.report_gateway_stats("churn", "g1", &[variant(19)])
        .await
        .unwrap();
    for (gateway, variants, named) in [
        ("g1", json!([variant(3)]), "bucket counts"),
        ("", json!([]), "'gateway'"),
        ("g1", json!([{"name": "primary"}]), "shadow"),
    ] {
        let e = refused(c.report_gateway_stats("churn", gateway, &variants).await);
        assert_eq!(e.status, 400, "{gateway} {variants}: {e:?}");
        assert!(e.message.contains(named), "{gateway} {variants}: {e:?}");
    }
    // Reports a typed client cannot send: a field missing, one unknown.
    let path = "/api/v1/endpoints/churn/gateway-stats";
    for (body, named) in [
        (json!({"variants": []}), "gateway"),
        (
            json!({"gateway": "g1", "variants": [], "extra": 1}),
            "extra",
        ),
    ] {
        let (s, v) = call(&h.app, "POST", path, &body.to_string()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(named),
            "{body}: {v}"
        );
    }
    let e = refused(
        c.report_gateway_stats("ghost", "g1", &Vec::<Value>::new())
            .await,
    );
    assert_eq!(e.status, 404, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_step_creates_the_endpoint_then_rolls_out_and_waits() {
    let h = Harness::with_pipelines().await;
    let c = h.client();
    let text = r#"
name: ship
params:
  model: {type: string}
steps:
  deploy:
    deploy: {endpoint: churn, model: "${params.model}", strategy: canary, percent: 50, bake: 200ms, wait: true}
"#;
    c.put_pipeline("ship", text.into()).await.unwrap();
    for (model, answer_is) in [(h.model("v1", 10.0), 16.0), (h.model("v2", 20.0), 26.0)] {
        let mut params = serde_json::Map::new();
        params.insert("model".into(), json!(model));
        let v = c
            .start_run(
                "ship",
                &RunRequest {
                    params,
                    no_cache: false,
                },
            )
            .await
            .unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let run = eventually(Duration::from_secs(60), "the run to end", || async {
            let run = c.get_pipeline_run(&id).await.unwrap();
            if run["status"] != "RUNNING" && run["status"] != "PENDING" {
                return Ok(run);
            }
            // Traffic for the canary's window while the step waits (before
            // the first rollout there is no endpoint to answer).
            let _ = h.invoke("churn").await;
            Err(run)
        })
        .await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        let v = h.get("churn").await;
        assert_eq!(v["deployed"]["primary"]["resolved"], model.as_str(), "{v}");
        assert_eq!(answer(&h.invoke("churn").await.unwrap()), answer_is);
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
    let h = Harness::new().await;
    let c = h.client();
    let (v1, v2) = (h.model("v1", 10.0), h.model("v2", 10.0));
    let rollout = |max_rejected_rate: Value| {
        json!({"strategy": "canary", "percent": 50, "bake": "1h",
            "alarms": {"min_requests": 5, "max_error_rate": 0.01, "max_rejected_rate": max_rejected_rate}})
    };
    let v = h.put("churn", one(&v1, rollout(json!(0.5)))).await.unwrap();
    assert!(v.created, "{v:?}");
    let v = h.put("churn", one(&v2, rollout(json!(0.5)))).await.unwrap();
    assert!(!v.created, "{v:?}");
    // What a `sextant gateway` under overload reports: most of the canary's requests
    // refused at its limit, none failed.
    let variants = |requests: u64, rejected: u64| {
        let mut counts = vec![0u64; 19];
        counts[0] = requests - rejected;
        json!([{"name": "primary-canary", "shadow": false,
            "requests": requests, "errors": 0, "client_errors": 0, "rejected": rejected, "in_flight": 0,
            "latency": {"counts": counts, "sum_seconds": 0.001}}])
    };
    // 204 No Content: `serve` holds the status to the document's.
    c.report_gateway_stats("churn", "g1", &variants(100, 40))
        .await
        .unwrap();
    // 40 % rejected is under the capacity limit and no error at all: it keeps baking.
    let v = h
        .until("churn", |v| {
            v["rollout"]["counters"]["new"]["rejected"] == 40
        })
        .await;
    assert_eq!(v["rollout"]["counters"]["new"]["errors"], 0, "{v}");
    assert_eq!(v["rollout"]["status"], "in_progress", "{v}");
    // Past the limit, the capacity alarm rolls it back, naming the rejected rate.
    c.report_gateway_stats("churn", "g1", &variants(200, 140))
        .await
        .unwrap();
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
    let h = Harness::new().await;
    let model = h.model("v1", 10.0);
    let app_origin = "https://app.example.com";
    let spec = json!({"variants": [{"model": model}], "allowed_origins": [app_origin]});
    h.put("churn", spec).await.unwrap();
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
    h.put("churn", json!({"variants": [{"model": model}]}))
        .await
        .unwrap();
    let (s, got) = predict("https://app.example.com").await;
    assert_eq!(s, StatusCode::OK, "{got:?}");
    assert_eq!(header(&got, "access-control-allow-origin"), None);

    // An entry that is not an origin is a 400 at its line and column.
    let yaml = format!(
        "variants:\n  - model: {model}\nallowed_origins:\n  - {app_origin}\n  - app.example.com/path\n"
    );
    let e = refused(
        h.client()
            .put_endpoint("churn", Definition::Yaml(yaml), Duration::ZERO)
            .await,
    );
    assert_eq!(e.status, 400, "{e:?}");
    assert!(
        e.message
            .contains("churn.yaml:5:5: invalid allowed origin 'app.example.com/path'"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traffic_of_each_variant_is_kept_over_time_from_every_gateway() {
    let clock = ManualClock::at(1_700_000_000_000);
    let h = Harness::with_clock(clock.clone()).await;
    let c = h.client();
    h.put(
        "churn",
        one(&h.model("v1", 10.0), json!({"strategy": "all_at_once"})),
    )
    .await
    .unwrap();
    let traffic = |want: usize| async move {
        eventually(
            Duration::from_secs(30),
            "the controller's samples",
            || async {
                let t = c.endpoint_traffic("churn").await.unwrap();
                let points = t["variants"][0]["points"].as_array().map_or(0, Vec::len);
                if !t["since"].is_null() && points >= want {
                    Ok(t)
                } else {
                    Err(t)
                }
            },
        )
        .await
    };
    // A separate gateway's cumulative counters: `fast` answered under 50 µs, `slow` at 1 s.
    let report = |requests: u64, errors: u64, slow: u64| async move {
        let mut counts = vec![0u64; 19];
        counts[0] = requests - slow;
        counts[13] = slow;
        c.report_gateway_stats(
            "churn",
            "g1",
            &json!([{"name": "primary", "shadow": false, "requests": requests, "errors": errors,
                "client_errors": 0, "rejected": 0, "in_flight": 0,
                "latency": {"counts": counts, "sum_seconds": slow as f64}}]),
        )
        .await
        .unwrap();
    };
    // The first sample, taken before the clock moves.
    let first = traffic(0).await;
    assert_eq!(first["sample_every_ms"], 10_000, "{first}");
    assert_eq!(first["since"], 1_700_000_000_000i64, "{first}");
    // The gateway's first report: its totals so far are not the next interval's.
    report(50, 0, 0).await;
    clock.advance(Duration::from_secs(10));
    traffic(1).await;
    // 200 requests in the next 10 s, 10 of them failed; then 100 more, 20 of them slow.
    report(250, 10, 0).await;
    clock.advance(Duration::from_secs(10));
    let t = traffic(2).await;
    let p = &t["variants"][0]["points"][1];
    assert_eq!(t["variants"][0]["variant"], "primary", "{t}");
    assert_eq!(
        (p["requests"].as_u64(), p["errors"].as_u64()),
        (Some(200), Some(10)),
        "{p}"
    );
    assert_eq!(p["requests_per_s"], 20.0, "{p}");
    assert_eq!(p["error_rate"], 0.05, "{p}");
    assert_eq!(p["end_ms"], 1_700_000_020_000i64, "{p}");
    report(350, 10, 20).await;
    clock.advance(Duration::from_secs(10));
    let t = traffic(3).await;
    let p = &t["variants"][0]["points"][2];
    assert_eq!(
        (p["requests"].as_u64(), p["errors"].as_u64()),
        (Some(100), Some(0)),
        "{p}"
    );
    assert_eq!(p["p50_ms"], 0.05, "{p}");
    assert_eq!(p["p99_ms"], 1000.0, "{p}");
    let missing = c.endpoint_traffic("nope").await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing}");
}
