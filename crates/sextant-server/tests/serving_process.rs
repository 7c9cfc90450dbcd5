//! The `process` runtime against a child that speaks the MLflow scoring protocol. The child
//! is this test binary itself, re-run as `scoring_stub_child` with `SEXTANT_STUB_MODEL` set:
//! it serves a model directory with the onnx runtime through the gateway's router, so the
//! tests need neither Python nor a network.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sextant_serving as serving;
use sextant_serving::{
    self, Gateway, GatewaySettings, Predictor, ProcessPredictor, ProcessSettings, VariantSpec,
};
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use support::eventually;
use tower::ServiceExt;

/// Not a test on its own: when `SEXTANT_STUB_MODEL` and `SEXTANT_STUB_PORT` are set, serves
/// that model on that port until killed.
#[tokio::test]
async fn scoring_stub_child() {
    let (Ok(model), Ok(port)) = (
        std::env::var("SEXTANT_STUB_MODEL"),
        std::env::var("SEXTANT_STUB_PORT"),
    ) else {
        return;
    };
    let predictor = serving::load_model(Path::new(&model)).unwrap();
    let gw = Gateway::new("stub", GatewaySettings::default(), None);
    gw.set_variants(
        vec![VariantSpec {
            name: "stub".into(),
            predictor,
            weight: 1.0,
            max_concurrency: 16,
            model_version: None,
        }],
        None,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    axum::serve(listener, serving::router(gw)).await.unwrap();
}

fn stub_settings(model: &Path) -> ProcessSettings {
    let exe = std::env::current_exe().unwrap();
    ProcessSettings {
        command: vec![
            "env".into(),
            format!("SEXTANT_STUB_MODEL={}", model.display()),
            "SEXTANT_STUB_PORT={port}".into(),
            exe.display().to_string(),
            "scoring_stub_child".into(),
            "--exact".into(),
            "--nocapture".into(),
        ],
        startup_timeout: Duration::from_secs(60),
        health_interval: Duration::from_millis(50),
        unhealthy_after: 2,
    }
}

fn linear_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("linear");
    let model = LinearModel {
        coefficients: vec![1.0, 2.0],
        intercept: 0.5,
    };
    let x = Matrix::from_rows(&[vec![1.0, 1.0]]).unwrap();
    sextant_train::mlflow_model::save_linear(&dir, &model, &["a".into(), "b".into()], &x).unwrap();
    dir
}

async fn invoke(app: &axum::Router, uri: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_child_process_serves_forwards_errors_and_is_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = linear_dir(tmp.path());
    let predictor = ProcessPredictor::start(&dir, stub_settings(&dir))
        .await
        .unwrap();
    assert!(predictor.ready());
    assert_eq!(predictor.info().runtime, "process");
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    gw.set_variants(
        vec![VariantSpec {
            name: "py".into(),
            predictor: predictor.clone(),
            weight: 1.0,
            max_concurrency: 8,
            model_version: None,
        }],
        None,
    )
    .unwrap();
    let app = serving::router(gw.clone());

    let (status, body) = invoke(&app, "/invocations", json!({"inputs": [[1.0, 2.0]]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"predictions": {"variable": [[5.5]]}}));
    // The child's 400 comes back as a client error, with its message.
    let (status, body) = invoke(&app, "/invocations", json!({"inputs": [[1.0]]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the model takes rows of 2 values"),
        "{body}"
    );
    // OIP requests are re-encoded for the child.
    let oip =
        json!({"inputs": [{"name": "X", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]});
    let (status, body) = invoke(&app, "/v2/models/churn/infer", oip).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outputs"][0]["name"], "variable");
    assert_eq!(body["outputs"][0]["data"], json!([5.5]));

    // Kill the child: the supervisor notices and starts a new one.
    let pid = predictor.pid();
    assert!(pid > 0);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually(
        Duration::from_secs(60),
        "the child to be restarted",
        || async { (predictor.restarts() > 0 && predictor.ready()).then_some(()) },
    )
    .await;
    assert_ne!(predictor.pid(), pid);
    let (status, body) = invoke(&app, "/invocations", json!({"inputs": [[1.0, 2.0]]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = gw.stats();
    let py = stats.variant("py").unwrap();
    assert_eq!((py.client_errors, py.errors), (1, 0));
    drop(app);
    drop(gw);
    let predictor = Arc::into_inner(predictor).expect("the gateway released the predictor");
    drop(predictor);
}

#[tokio::test]
async fn a_child_that_never_becomes_healthy_fails_to_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = linear_dir(tmp.path());
    let settings = ProcessSettings {
        command: vec!["false".into()],
        ..stub_settings(&dir)
    };
    let e = ProcessPredictor::start(&dir, settings).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("exited with exit status: 1 before answering /ping"),
        "{e}"
    );
    let settings = ProcessSettings {
        command: vec!["/nonexistent/mlflow".into()],
        ..stub_settings(&dir)
    };
    let e = ProcessPredictor::start(&dir, settings).await.unwrap_err();
    assert!(
        e.to_string().contains("running \"/nonexistent/mlflow\""),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_children_grows_under_load_and_shrinks_when_idle() {
    use serving::{PooledPredictor, ScalePolicy};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let tmp = tempfile::tempdir().unwrap();
    let dir = linear_dir(tmp.path());
    let settings = stub_settings(&dir);
    let factory: serving::pool::Factory = Arc::new(move || {
        let (dir, settings) = (dir.clone(), settings.clone());
        Box::pin(async move {
            let p: Arc<dyn Predictor> = ProcessPredictor::start(&dir, settings).await?;
            Ok(p)
        })
    });
    let policy = ScalePolicy {
        min: 1,
        max: 3,
        target_in_flight: 1.0,
        scale_in_after: Duration::from_millis(200),
        interval: Duration::from_millis(50),
    };
    let pool = PooledPredictor::start(policy, factory).await.unwrap();
    assert_eq!(pool.instances(), 1);
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    gw.set_variants(
        vec![VariantSpec {
            name: "py".into(),
            predictor: pool.clone(),
            weight: 1.0,
            max_concurrency: 64,
            model_version: None,
        }],
        None,
    )
    .unwrap();
    let app = serving::router(gw.clone());

    // Twelve clients keep more than one request in flight: the pool grows to its max.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let (app, stop, failed) = (app.clone(), stop.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let (status, body) =
                        invoke(&app, "/invocations", json!({"inputs": [[1.0, 2.0]]})).await;
                    if status != StatusCode::OK
                        || body != json!({"predictions": {"variable": [[5.5]]}})
                    {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(60), "the pool to grow to 3", || async {
        if pool.instances() >= 3 {
            Ok(())
        } else {
            Err(format!("scaled (out, in) {:?}", pool.scaled()))
        }
    })
    .await;
    assert_eq!(gw.instances(), vec![("py".to_string(), 3)]);
    let metrics = serving::metrics::render(&[&gw]);
    assert!(
        metrics.contains("sextant_serving_instances{endpoint=\"churn\",variant=\"py\"} 3"),
        "{metrics}"
    );
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed while the pool grew"
    );

    // Idle, it shrinks back to its min, one instance at a time, and still answers.
    eventually(
        Duration::from_secs(60),
        "the pool to shrink to 1",
        || async {
            if pool.instances() <= 1 {
                Ok(())
            } else {
                Err(format!("scaled (out, in) {:?}", pool.scaled()))
            }
        },
    )
    .await;
    assert_eq!(pool.scaled(), (2, 2));
    let (status, body) = invoke(&app, "/invocations", json!({"inputs": [[1.0, 2.0]]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
