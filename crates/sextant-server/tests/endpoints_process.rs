//! Endpoints whose variants run the `process` runtime, against a stand-in for
//! `mlflow models serve`: this test binary re-run as `scoring_stub_child` under `sh`, so
//! the serving process is a grandchild of the server, as uvicorn is under
//! `mlflow models serve`. The stub serves its model directory with the onnx runtime; a
//! `HOLD` file in that directory holds its predictions and a `FAIL` file makes them 500s,
//! so overload and model failures are made on purpose, not by timing.
//!
//! - Replacing a variant's model or deleting the endpoint stops the old children (the
//!   whole process group) and nothing restarts them.
//! - Requests refused at a variant's concurrency limit are counted as rejected, not as
//!   errors: an identical canary under overload promotes, a failing one still rolls back,
//!   and `max_rejected_rate` rolls back on capacity when asked to.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_serving::controller::Endpoints;
use sextant_serving::{self as serving, Gateway, GatewaySettings, ProcessSettings, VariantSpec};
use sextant_store::MetaStore;
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use support::{call, eventually};

/// Not a test on its own: when `SEXTANT_STUB_MODEL` and `SEXTANT_STUB_PORT` are set,
/// serves that model on that port until killed, after writing `<port> <parent pid>` to
/// `$SEXTANT_STUB_PIDS/<pid>`.
#[tokio::test]
async fn scoring_stub_child() {
    let (Ok(model), Ok(port), Ok(pids)) = (
        std::env::var("SEXTANT_STUB_MODEL"),
        std::env::var("SEXTANT_STUB_PORT"),
        std::env::var("SEXTANT_STUB_PIDS"),
    ) else {
        return;
    };
    let model = PathBuf::from(model);
    let predictor = serving::load_model(&model).unwrap();
    let gw = Gateway::new("stub", GatewaySettings::default(), None);
    gw.set_variants(
        vec![VariantSpec {
            name: "stub".into(),
            predictor,
            weight: 1.0,
            max_concurrency: 64,
            model_version: None,
        }],
        None,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let me = std::process::id();
    let parent = std::os::unix::process::parent_id();
    std::fs::write(
        Path::new(&pids).join(me.to_string()),
        format!("{port} {parent}"),
    )
    .unwrap();
    let app = serving::router(gw).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let model = model.clone();
            async move {
                if req.uri().path() == "/invocations" {
                    // The stub's own behaviour on demand, polled: it is the child, not
                    // the test.
                    while model.join("HOLD").exists() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    if model.join("FAIL").exists() {
                        return axum::response::IntoResponse::into_response((
                            StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"error_code": "INTERNAL_ERROR", "message": "the model broke"})),
                        ));
                    }
                }
                next.run(req).await
            }
        },
    ));
    axum::serve(listener, app).await.unwrap();
}

struct Harness {
    app: Router,
    st: AppState,
    models: PathBuf,
    pids: PathBuf,
    _controller: tokio::task::JoinHandle<()>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Harness {
    fn new() -> Harness {
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let store: Arc<dyn MetaStore> =
            Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
        let artifacts =
            Arc::new(ArtifactStore::from_uri(dirs[1].path().to_str().unwrap()).unwrap());
        let pids = dirs[3].path().to_path_buf();
        let mut st = AppState::new(store, artifacts, SecurityConfig::loopback())
            .with_data_dir(dirs[0].path().to_path_buf());
        let exe = std::env::current_exe().unwrap();
        let mut eps = Endpoints::default();
        // `sh` leads the process group and runs the stub as its child, as
        // `mlflow models serve` runs uvicorn.
        eps.process = ProcessSettings {
            command: vec![
                "sh".into(),
                "-c".into(),
                r#""$@" & wait"#.into(),
                "sh".into(),
                "env".into(),
                "SEXTANT_STUB_MODEL={model}".into(),
                "SEXTANT_STUB_PORT={port}".into(),
                format!("SEXTANT_STUB_PIDS={}", pids.display()),
                exe.display().to_string(),
                "scoring_stub_child".into(),
                "--exact".into(),
                "--nocapture".into(),
            ],
            startup_timeout: Duration::from_secs(60),
            health_interval: Duration::from_millis(50),
            unhealthy_after: 2,
        };
        st.endpoints = Arc::new(eps);
        let controller = controllers::spawn_endpoints(&st);
        Harness {
            app: router(st.clone()),
            st,
            models: dirs[2].path().to_path_buf(),
            pids,
            _controller: controller,
            _dirs: dirs,
        }
    }

    /// `y = a + b + c + intercept`.
    fn model(&self, name: &str, intercept: f64) -> PathBuf {
        let dir = self.models.join(name);
        let model = LinearModel {
            coefficients: vec![1.0, 1.0, 1.0],
            intercept,
        };
        let names = ["a", "b", "c"].map(String::from).to_vec();
        let example = Matrix::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
        sextant_train::mlflow_model::save_linear(&dir, &model, &names, &example).unwrap();
        dir
    }

    async fn put(&self, name: &str, spec: Value) -> Value {
        let (s, v) = call(
            &self.app,
            "PUT",
            &format!("/api/v1/endpoints/{name}"),
            &spec.to_string(),
        )
        .await;
        assert!(s.is_success(), "{s}: {v}");
        v
    }

    async fn get(&self, name: &str) -> Value {
        let (s, v) = call(&self.app, "GET", &format!("/api/v1/endpoints/{name}"), "").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Polls the endpoint until `done` holds (60 s at most).
    async fn until(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        eventually(
            Duration::from_secs(60),
            "the endpoint to get there",
            || async {
                let v = self.get(name).await;
                if done(&v) { Ok(v) } else { Err(v) }
            },
        )
        .await
    }

    /// One prediction of row (1, 2, 3), optionally pinned to a gateway variant.
    async fn invoke(&self, name: &str, variant: Option<&str>) -> (StatusCode, Value) {
        let mut req = axum::http::Request::builder()
            .method("POST")
            .uri(format!("/endpoints/{name}/invocations"))
            .header("host", "127.0.0.1:5000")
            .header("content-type", "application/json");
        if let Some(v) = variant {
            req = req.header("x-amzn-sagemaker-target-variant", v);
        }
        let req = req
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

    /// Stub children started so far: (pid, parent pid, port) by pid.
    fn children(&self) -> Vec<(u32, u32, u16)> {
        let mut out: Vec<(u32, u32, u16)> = std::fs::read_dir(&self.pids)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let pid = e.file_name().to_str().unwrap().parse().unwrap();
                let text = std::fs::read_to_string(e.path()).unwrap();
                let (port, parent) = text.split_once(' ').unwrap();
                (pid, parent.parse().unwrap(), port.parse().unwrap())
            })
            .collect();
        out.sort();
        out
    }

    /// The one stub child serving on a port that `known` did not list.
    fn new_child(&self, known: &[(u32, u32, u16)]) -> (u32, u32, u16) {
        let fresh: Vec<_> = self
            .children()
            .into_iter()
            .filter(|c| !known.contains(c))
            .collect();
        assert_eq!(fresh.len(), 1, "{fresh:?} besides {known:?}");
        fresh[0]
    }
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `pid (comm) S …`: the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Waits until the child, its `sh` parent and its port are all gone.
async fn until_stopped(child: (u32, u32, u16)) {
    let (pid, parent, port) = child;
    let what = format!("child {pid} (parent {parent}, port {port}) to stop");
    eventually(Duration::from_secs(30), &what, || async {
        let answering = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if exited(pid) && exited(parent) && !answering {
            Ok(())
        } else {
            Err(format!(
                "exited {} / {}, answering {answering}",
                exited(pid),
                exited(parent)
            ))
        }
    })
    .await
}

fn process_variant(model: &Path, extra: Value) -> Value {
    let mut v = json!({"model": model.display().to_string(), "runtime": "process"});
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_process_variant_or_deleting_its_endpoint_stops_its_children() {
    let h = Harness::new();
    let (v1, v2, v3) = (
        h.model("v1", 10.0),
        h.model("v2", 20.0),
        h.model("v3", 30.0),
    );
    h.put(
        "churn",
        json!({"variants": [process_variant(&v1, json!({}))]}),
    )
    .await;
    let first = h.new_child(&[]);
    assert!(!exited(first.0) && !exited(first.1), "{first:?}");
    let (s, r) = h.invoke("churn", None).await;
    assert_eq!(
        (s, r["predictions"]["variable"][0][0].as_f64()),
        (StatusCode::OK, Some(16.0)),
        "{r}"
    );

    // A new model (all at once): the old children stop, the new ones serve.
    h.put(
        "churn",
        json!({"variants": [process_variant(&v2, json!({}))]}),
    )
    .await;
    let second = h.new_child(&[first]);
    until_stopped(first).await;
    let (s, r) = h.invoke("churn", None).await;
    assert_eq!(
        (s, r["predictions"]["variable"][0][0].as_f64()),
        (StatusCode::OK, Some(26.0)),
        "{r}"
    );

    // Deleting the endpoint stops its children.
    let (s, v) = call(&h.app, "DELETE", "/api/v1/endpoints/churn", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    until_stopped(second).await;

    // Nothing watches the stopped children any more: had a supervisor survived, it would
    // have restarted one (every 100 ms here) while another endpoint's child starts.
    h.put(
        "other",
        json!({"variants": [process_variant(&v3, json!({}))]}),
    )
    .await;
    let third = h.new_child(&[first, second]);
    let (s, _) = h.invoke("other", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h.children(), {
        let mut all = vec![first, second, third];
        all.sort();
        all
    });
}

/// Rolls `v2` out as a 50 % canary of `v1` (both `process`, one request at a time) with
/// `alarms`, and overloads the canary on purpose: one request held in it, then 30 more
/// refused at its limit (fewer if a capacity alarm ends the rollout first); then up to 10
/// answered ones (while the canary is still there).
/// Returns the endpoint once the rollout ended.
async fn overload_a_canary(h: &Harness, v2: &Path, alarms: Value) -> Value {
    let v1 = h.model("v1", 10.0);
    let one = |model: &Path| {
        json!({"variants": [process_variant(model, json!({"max_concurrency": 1}))],
            "rollout": {"strategy": "canary", "percent": 50, "bake": "2s", "alarms": alarms}})
    };
    h.put("churn", one(&v1)).await;
    std::fs::write(v2.join("HOLD"), "").unwrap();
    let v = h.put("churn", one(v2)).await;
    assert_eq!(v["status"], "updating", "{v}");

    let held = tokio::spawn({
        let app = h.app.clone();
        async move {
            let req = axum::http::Request::builder()
                .method("POST")
                .uri("/endpoints/churn/invocations")
                .header("host", "127.0.0.1:5000")
                .header("content-type", "application/json")
                .header("x-amzn-sagemaker-target-variant", "primary-canary")
                .body(axum::body::Body::from(r#"{"inputs": [[1.0, 2.0, 3.0]]}"#))
                .unwrap();
            tower::ServiceExt::oneshot(app, req).await.unwrap().status()
        }
    });
    h.until("churn", |v| {
        v["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["variant"] == "primary-canary" && s["in_flight"] == 1)
    })
    .await;
    // The capacity alarm, when set, may end the rollout at any controller tick once enough
    // requests were refused: the canary is then gone, and asking for it is a client error.
    let capacity_alarm = alarms.get("max_rejected_rate").is_some();
    let min_requests = alarms["min_requests"].as_u64().unwrap_or(1);
    for refused in 0..30 {
        let (s, r) = h.invoke("churn", Some("primary-canary")).await;
        if capacity_alarm && s == StatusCode::BAD_REQUEST {
            assert!(
                refused + 1 >= min_requests,
                "rolled back after {refused} refusals: {r}"
            );
            assert_eq!(
                r["message"], "the endpoint has no variant \"primary-canary\"",
                "{r}"
            );
            break;
        }
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    }
    // While it runs, the rollout shows its live counters (unless an alarm already ended
    // it: the capacity alarm may have); the held request counts once it is answered.
    let v = h.get("churn").await;
    if !v["rollout"].is_null() {
        let live = &v["rollout"]["counters"]["new"];
        assert_eq!(
            (
                live["requests"].as_u64(),
                live["rejected"].as_u64(),
                live["errors"].as_u64()
            ),
            (Some(30), Some(30), Some(0)),
            "{v}"
        );
        assert!(
            v["rollout"]["time_left_ms"].as_i64().unwrap() <= 2000,
            "{v}"
        );
    }
    std::fs::remove_file(v2.join("HOLD")).unwrap();
    let held = held.await.unwrap();
    for _ in 0..10 {
        h.invoke("churn", Some("primary-canary")).await;
    }
    let done = h.until("churn", |v| v["rollout"].is_null()).await;
    assert_eq!(
        held,
        if v2.join("FAIL").exists() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    );
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_canary_under_overload_promotes() {
    let h = Harness::new();
    let copy = h.model("v1-copy", 10.0);
    let done = overload_a_canary(
        &h,
        &copy,
        json!({"max_error_rate": 0.01, "min_requests": 5}),
    )
    .await;
    let r = &done["past_rollouts"][0];
    assert_eq!(r["status"], "succeeded", "{done}");
    assert_eq!(
        done["deployed"]["primary"]["resolved"],
        copy.display().to_string()
    );
    // The rollout keeps its counters: rejections apart from errors.
    let new = &r["counters"]["new"];
    assert_eq!(
        (new["errors"].as_u64(), new["rejected"].as_u64()),
        (Some(0), Some(30)),
        "{r}"
    );
    assert!(new["requests"].as_u64().unwrap() >= 31, "{r}");
    // The promoted canary's counters are the rollout's now, not a variant's.
    let shown: Vec<&str> = done["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["variant"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["primary"], "{done}");
    let metrics = h.st.endpoints.gateways.render_metrics();
    assert!(
        metrics.contains(
            "sextant_serving_rejected_requests_total{endpoint=\"churn\",variant=\"primary-canary\",shadow=\"false\"} 30"
        ) && metrics.contains(
            "sextant_serving_errors_total{endpoint=\"churn\",variant=\"primary-canary\",shadow=\"false\"} 0"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_under_overload_still_rolls_back() {
    let h = Harness::new();
    let broken = h.model("v1-broken", 10.0);
    std::fs::write(broken.join("FAIL"), "").unwrap();
    let done = overload_a_canary(
        &h,
        &broken,
        json!({"max_error_rate": 0.01, "min_requests": 5}),
    )
    .await;
    let r = &done["past_rollouts"][0];
    assert_eq!(r["status"], "rolled_back", "{done}");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("error rate 100.0%"), "{reason}");
    assert!(r["counters"]["new"]["errors"].as_u64().unwrap() >= 5, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rejected_rate_rolls_an_overloaded_canary_back() {
    let h = Harness::new();
    let copy = h.model("v1-copy", 10.0);
    let done = overload_a_canary(
        &h,
        &copy,
        json!({"max_error_rate": 0.01, "max_rejected_rate": 0.5, "min_requests": 5}),
    )
    .await;
    let r = &done["past_rollouts"][0];
    assert_eq!(r["status"], "rolled_back", "{done}");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("rejected rate"), "{reason}");
    assert_eq!(r["counters"]["new"]["errors"], 0, "{r}");
}
