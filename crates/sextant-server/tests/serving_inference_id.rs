//! Every prediction answer carries an inference id in `x-inference-id`: the one the
//! caller sent (`x-inference-id` or SageMaker's `X-Amzn-SageMaker-Inference-Id`) or a
//! generated UUID, and capture records carry the same id, so ground truth can always be
//! joined to a prediction. Error answers carry it too; an unusable id is a 400 naming
//! the header.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_serving as serving;
use sextant_serving::{
    self, CaptureConfig, CaptureMode, CaptureSettings, CaptureSink, Gateway, GatewaySettings,
    VariantSpec,
};
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use tower::ServiceExt;

fn linear_dir(root: &Path) -> PathBuf {
    let dir = root.join("linear");
    let model = LinearModel {
        coefficients: vec![1.0, 2.0],
        intercept: 0.5,
    };
    let x = Matrix::from_rows(&[vec![1.0, 1.0]]).unwrap();
    sextant_train::mlflow_model::save_linear(&dir, &model, &["a".into(), "b".into()], &x).unwrap();
    dir
}

async fn send(
    app: &Router,
    uri: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap) {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    (resp.status(), resp.headers().clone())
}

fn id_of(headers: &HeaderMap) -> String {
    headers
        .get("x-inference-id")
        .expect("an x-inference-id header")
        .to_str()
        .unwrap()
        .to_string()
}

fn captured_ids(root: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                for line in std::fs::read_to_string(&p).unwrap().lines() {
                    let v: Value = serde_json::from_str(line).unwrap();
                    ids.push(
                        v["eventMetadata"]["inferenceId"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
            }
        }
    }
    ids.sort();
    ids
}

#[tokio::test]
async fn every_answer_carries_an_inference_id_that_capture_records_too() {
    let tmp = tempfile::tempdir().unwrap();
    let model = linear_dir(tmp.path());
    let captured = tmp.path().join("artifacts");
    std::fs::create_dir_all(&captured).unwrap();
    let store = Arc::new(ArtifactStore::from_uri(captured.to_str().unwrap()).unwrap());
    let sink = CaptureSink::start(store, CaptureSettings::default());
    let settings = GatewaySettings {
        capture: Some(CaptureConfig {
            sampling_percent: 100.0,
            mode: CaptureMode::InputAndOutput,
        }),
        ..GatewaySettings::default()
    };
    let gw = Gateway::new("churn", settings, Some(sink.clone()));
    gw.set_variants(
        vec![VariantSpec {
            name: "blue".into(),
            predictor: serving::load_model(&model).unwrap(),
            weight: 1.0,
            max_concurrency: 4,
            model_version: Some("1".into()),
        }],
        None,
    )
    .unwrap();
    let app = serving::router(gw);
    let good = json!({"inputs": [[1.0, 2.0]]}).to_string();

    // No id sent: one is made up, a UUID, different for each request.
    let (status, headers) = send(&app, "/invocations", &good, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let generated = id_of(&headers);
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let (_, headers) = send(&app, "/invocations", &good, &[]).await;
    assert_ne!(id_of(&headers), generated);
    let second = id_of(&headers);

    // The caller's id, by either header, comes back as sent.
    let (status, headers) = send(
        &app,
        "/invocations",
        &good,
        &[("X-Amzn-SageMaker-Inference-Id", "sm-1")],
    )
    .await;
    assert_eq!((status, id_of(&headers)), (StatusCode::OK, "sm-1".into()));
    let oip =
        json!({"inputs": [{"name": "X", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]})
            .to_string();
    let (status, headers) = send(
        &app,
        "/v2/models/churn/infer",
        &oip,
        &[("x-inference-id", "oip-1")],
    )
    .await;
    assert_eq!((status, id_of(&headers)), (StatusCode::OK, "oip-1".into()));

    // Error answers carry it too.
    let (status, headers) = send(
        &app,
        "/invocations",
        r#"{"inputs": [[1.0]]}"#,
        &[("x-inference-id", "bad-1")],
    )
    .await;
    assert_eq!(
        (status, id_of(&headers)),
        (StatusCode::BAD_REQUEST, "bad-1".into())
    );
    let (status, headers) = send(&app, "/v2/models/ghost/infer", &oip, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(uuid::Uuid::parse_str(&id_of(&headers)).is_ok());

    // An id too long to join on is refused, naming the header.
    let long = "x".repeat(257);
    let req = Request::builder()
        .method("POST")
        .uri("/invocations")
        .header("content-type", "application/json")
        .header("x-inference-id", long.as_str())
        .body(Body::from(good.clone()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("x-inference-id"),
        "{body}"
    );

    // Capture has the answered requests under the ids their answers carried.
    sink.flush().await;
    let mut want = vec![generated, second, "sm-1".to_string(), "oip-1".to_string()];
    want.sort();
    assert_eq!(captured_ids(&captured), want);
}
