//! The remote worker protocol in-process, as `sextant worker` speaks it: a
//! claim hands out only work steps (the server runs control steps itself),
//! a worker whose lease expired and was re-claimed gets 409 for its
//! heartbeat and its outcome and changes nothing, the new holder's outcome
//! counts, and bad requests are 4xx naming what is wrong. Through the typed
//! client `sextant worker` uses; on the wire, requests it cannot send.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Claim, Client, Heartbeat, RunRequest};
use sextant_control::pipelines;
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use support::{Served, call, eventually, refused, serve};

struct Harness {
    /// The router, for requests a typed client cannot send.
    app: Router,
    served: Served,
    store: Arc<dyn MetaStore>,
    _dirs: Vec<tempfile::TempDir>,
    _orchestrator: tokio::task::JoinHandle<()>,
}

/// A server that runs no work steps itself: every one waits for a worker.
async fn harness() -> Harness {
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
    let app = router(state);
    Harness {
        served: serve(app.clone()).await,
        app,
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
    fn client(&self) -> &Client {
        &self.served.client
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        call(&self.app, "POST", uri, &body.to_string()).await
    }

    /// A work order, or `None` when none came within `wait_ms`.
    async fn claim(&self, worker: &str, lease_ms: i64, wait_ms: u64) -> Option<Value> {
        let claim = Claim {
            worker: worker.into(),
            lease_ms,
            wait_ms,
        };
        self.client().claim_task(&claim).await.unwrap()
    }

    /// Stores the pipeline and starts a run (`201 Created`: `serve` holds
    /// the status to the document's).
    async fn start(&self) -> String {
        let c = self.client();
        c.put_pipeline("remote", PIPELINE.into()).await.unwrap();
        let v = c.start_run("remote", &RunRequest::default()).await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    async fn detail(&self, id: &str) -> Value {
        self.client().get_pipeline_run(id).await.unwrap()
    }
}

/// A lease renewal under `fencing`.
fn beat(fencing: i64) -> Heartbeat {
    Heartbeat {
        fencing,
        lease_ms: 30_000,
    }
}

fn succeeded(metrics: Value) -> Value {
    json!({"status": "succeeded", "result": {"metrics": metrics}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_holder_is_refused_and_the_new_holders_outcome_counts() {
    let h = harness().await;
    let c = h.client();
    let id = h.start().await;
    let first = h.claim("w1", 200, 10_000).await.expect("a work order");
    assert_eq!(first["step"], "work", "{first}");
    assert_eq!(first["pipeline_run"], id.as_str());
    assert_eq!(first["fencing"], 1);
    assert!(first["spec"].as_str().unwrap().contains("name: remote"));
    assert_eq!(first["params"], json!({"threshold": 0.5}));
    let task = first["task_id"].as_i64().unwrap();

    // w1 stops renewing; once its 200 ms lease expired, w2 gets the task.
    let second = h.claim("w2", 30_000, 10_000).await.expect("a work order");
    assert_eq!(second["task_id"], task, "{second}");
    assert_eq!(second["fencing"], 2);
    assert_ne!(second["step_run_id"], first["step_run_id"]);

    let e = refused(c.heartbeat(task, &beat(1)).await);
    assert_eq!(e.status, 409, "{e:?}");
    assert_eq!(e.code, "RESOURCE_CONFLICT");
    let e = refused(
        c.report_outcome(task, 1, &succeeded(json!({"score": 0.0})))
            .await,
    );
    assert_eq!(e.status, 409, "{e:?}");
    assert!(e.message.contains("fencing token 1"), "{e:?}");

    c.heartbeat(task, &beat(2)).await.unwrap();
    c.report_outcome(task, 2, &succeeded(json!({"score": 0.9})))
        .await
        .unwrap();
    // A repeat of the stale outcome still changes nothing.
    let e = refused(
        c.report_outcome(task, 1, &succeeded(json!({"score": 0.0})))
            .await,
    );
    assert_eq!(e.status, 409, "{e:?}");

    // The condition runs on the server under the claim; the worker's next
    // order is the step after it.
    let next = h.claim("w2", 30_000, 10_000).await.expect("a work order");
    assert_eq!(next["step"], "after", "{next}");
    assert_eq!(next["metrics"]["work"]["score"], 0.9);
    c.report_outcome(
        next["task_id"].as_i64().unwrap(),
        next["fencing"].as_i64().unwrap(),
        &succeeded(json!({})),
    )
    .await
    .unwrap();

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
    let h = harness().await;
    let c = h.client();
    let text = r#"
name: outs
steps:
  make:
    run: "true"
    outputs: [model]
"#;
    c.put_pipeline("outs", text.into()).await.unwrap();
    let v = c.start_run("outs", &RunRequest::default()).await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let order = h.claim("w", 30_000, 10_000).await.expect("a work order");
    // Claiming a result without publishing the declared output fails the attempt.
    c.report_outcome(
        order["task_id"].as_i64().unwrap(),
        order["fencing"].as_i64().unwrap(),
        &json!({"status": "succeeded", "result": {"outputs": {
            "model": {"digest": format!("sha256:{}", "0".repeat(64)), "files": 1, "bytes": 1}
        }}}),
    )
    .await
    .unwrap();
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
    let h = harness().await;
    let c = h.client();
    for (claim, named) in [
        (
            Claim {
                worker: "w".into(),
                lease_ms: 0,
                wait_ms: 0,
            },
            "lease_ms",
        ),
        (
            Claim {
                worker: "".into(),
                lease_ms: 1000,
                wait_ms: 0,
            },
            "worker",
        ),
    ] {
        let e = refused(c.claim_task::<Value>(&claim).await);
        assert_eq!(e.status, 400, "{claim:?}: {e:?}");
        assert!(e.message.contains(named), "{claim:?}: {e:?}");
    }
    let e = refused(c.report_outcome(7, 1, &json!({"status": "maybe"})).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(e.message.contains("maybe"), "{e:?}");
    // Requests a typed client cannot send: an unknown field, one missing.
    let cases = [
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
    ];
    for (uri, body, named) in cases {
        let (s, v) = h.post(uri, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} {body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(named),
            "{uri} {body}: {v}"
        );
    }
    let e = refused(
        c.report_outcome(12345, 1, &json!({"status": "failed", "message": "x"}))
            .await,
    );
    assert_eq!(e.status, 404, "{e:?}");
    // A heartbeat for a task that does not exist is the worker's mistake too.
    let lease = Heartbeat {
        fencing: 1,
        lease_ms: 1000,
    };
    let e = refused(c.heartbeat(12345, &lease).await);
    assert_eq!(e.status, 404, "{e:?}");
    assert_eq!(e.code, "RESOURCE_DOES_NOT_EXIST", "{e:?}");
    assert!(e.message.contains("12345"), "{e:?}");
    // A task id that is not a number: only the wire can carry one.
    let (s, v) = h
        .post(
            "/api/v1/tasks/abc/heartbeat",
            json!({"fencing": 1, "lease_ms": 1000}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // An idle queue answers "no task" once the wait is over.
    assert_eq!(h.claim("w", 1000, 0).await, None);
}
