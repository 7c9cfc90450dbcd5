//! The serving data plane through its public surface: a gateway's router driven with
//! `oneshot`, models written by Sextant's own trainers (and a hand-written column
//! signature), and test predictors that block or fail on demand.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_serving as serving;
use sextant_serving::protocol::{ModelRequest, Prediction};
use sextant_serving::{
    self, BoxFuture, CaptureConfig, CaptureMode, CaptureSettings, CaptureSink, Gateway,
    GatewaySettings, InputError, ModelInfo, PredictError, Predictor, ShadowSpec, VariantSpec,
};
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;
use support::eventually;
use tower::ServiceExt;

/// `y = 2·a − b + 0.5·c + 3`.
const COEF: [f64; 3] = [2.0, -1.0, 0.5];
const INTERCEPT: f64 = 3.0;

fn expected(row: [f64; 3]) -> f64 {
    row.iter().zip(COEF).map(|(x, w)| x * w).sum::<f64>() + INTERCEPT
}

fn example() -> Matrix {
    Matrix::from_rows(&[vec![1.0, 2.0, 3.0], vec![0.5, 0.0, -1.0]]).unwrap()
}

fn names() -> Vec<String> {
    ["a", "b", "c"].map(String::from).to_vec()
}

/// A linear regressor's model directory as the built-in trainer writes it: a column
/// signature (a double; b and c long, their training values being integers).
fn linear_dir(root: &Path) -> PathBuf {
    let dir = root.join("linear");
    let model = LinearModel {
        coefficients: COEF.to_vec(),
        intercept: INTERCEPT,
    };
    mlflow_model::save_linear(&dir, &model, &names(), &example()).unwrap();
    dir
}

/// The same model with a column signature: a double, b long, c float.
fn column_dir(root: &Path) -> PathBuf {
    let src = linear_dir(root);
    let dir = root.join("columns");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("model.onnx"), dir.join("model.onnx")).unwrap();
    let inputs = r#"[{"type": "double", "name": "a", "required": true}, {"type": "long", "name": "b", "required": true}, {"type": "float", "name": "c", "required": true}]"#;
    std::fs::write(
        dir.join("MLmodel"),
        format!(
            "flavors:\n  onnx:\n    data: model.onnx\n  python_function:\n    loader_module: mlflow.onnx\nsignature:\n  inputs: '{inputs}'\n  outputs: null\n"
        ),
    )
    .unwrap();
    dir
}

/// The same model with a tensor signature `float32 (-1, 3)` and no column names, as an
/// imported skl2onnx model often has.
fn tensor_dir(root: &Path) -> PathBuf {
    let src = linear_dir(root);
    let dir = root.join("tensor");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("model.onnx"), dir.join("model.onnx")).unwrap();
    let inputs = r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]"#;
    std::fs::write(
        dir.join("MLmodel"),
        format!("flavors:\n  onnx:\n    data: model.onnx\nsignature:\n  inputs: '{inputs}'\n"),
    )
    .unwrap();
    dir
}

fn logistic_dir(root: &Path) -> PathBuf {
    let dir = root.join("logistic");
    let rows: Vec<Vec<f64>> = (0..40)
        .map(|i| vec![i as f64 / 10.0, (i % 3) as f64, 1.0])
        .collect();
    let x = Matrix::from_rows(&rows).unwrap();
    let y: Vec<f64> = (0..40)
        .map(|i| if i % 7 < 3 || i > 30 { 1.0 } else { 0.0 })
        .collect();
    let model = sextant_train::logistic::fit(&x, &y, &Default::default()).unwrap();
    mlflow_model::save_logistic(&dir, &model, &names(), &x).unwrap();
    dir
}

fn variant(name: &str, predictor: Arc<dyn Predictor>, weight: f64) -> VariantSpec {
    VariantSpec {
        name: name.into(),
        predictor,
        weight,
        max_concurrency: 64,
        model_version: None,
    }
}

fn gateway_with(dir: &Path) -> (Arc<Gateway>, Router) {
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    let predictor = serving::load_model(dir).unwrap();
    gw.set_variants(vec![variant("blue", predictor, 1.0)], None)
        .unwrap();
    let app = serving::router(gw.clone());
    (gw, app)
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    content_type: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn invoke(app: &Router, body: Value) -> Reply {
    send(
        app,
        "POST",
        "/invocations",
        "application/json",
        &body.to_string(),
        &[],
    )
    .await
}

fn close(got: &Value, want: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
}

/// The answer's shape follows MLflow's scoring server with the `onnx` flavor: a table that
/// reaches the model as a DataFrame (a column signature, or none) is answered one record per
/// row; a tensor input, or any input under a tensor signature, one value per output.
#[tokio::test]
async fn every_mlflow_format_gives_the_model_prediction_in_mlflows_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, app) = gateway_with(&linear_dir(tmp.path()));
    let rows = [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]];
    let want = [expected(rows[0]), expected(rows[1])];

    // Tensors are positional, in the signature's column order.
    for key in ["inputs", "instances"] {
        let r = invoke(&app, json!({ key: rows })).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = &r.json()["predictions"]["variable"];
        assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
        close(&v[0][0], want[0]);
        close(&v[1][0], want[1]);
    }
    // Tables are matched by name, in any order, and answer one record per row.
    let tables = [
        json!({"dataframe_split": {"columns": ["a", "b", "c"], "data": rows}, "params": {"x": 1}}),
        json!({"dataframe_split": {"columns": ["c", "b", "a"], "data": [[3.0, 2, 1.0], [-1, 0, 0.5]]}}),
        json!({"dataframe_records": [{"a": 1.0, "b": 2, "c": 3}, {"c": -1, "a": 0.5, "b": 0}]}),
        json!({"instances": [{"b": 2, "c": 3, "a": 1.0}, {"a": 0.5, "b": 0, "c": -1}]}),
        json!({"inputs": {"c": [3, -1], "a": [1.0, 0.5], "b": [2, 0]}}),
    ];
    for body in tables {
        let r = invoke(&app, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text);
        let p = r.json()["predictions"].clone();
        assert_eq!(p.as_array().map(Vec::len), Some(2), "{body}: {p}");
        close(&p[0]["variable"], want[0]);
        close(&p[1]["variable"], want[1]);
    }
    let r = send(
        &app,
        "POST",
        "/invocations",
        "text/csv",
        "c,a,b\n3,1,2\n-1,0.5,0\n",
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    close(&r.json()["predictions"][1]["variable"], want[1]);
}

#[tokio::test]
async fn records_and_split_answer_the_same_whatever_the_key_order() {
    // The regression of issue 15.2: records were put in alphabetical key order.
    let tmp = tempfile::tempdir().unwrap();
    for dir in [linear_dir(tmp.path()), tensor_dir(tmp.path())] {
        let (_, app) = gateway_with(&dir);
        let split = invoke(
            &app,
            json!({"dataframe_split": {"columns": ["c", "a", "b"], "data": [[3.0, 1.0, 2]]}}),
        )
        .await;
        let body = r#"{"dataframe_records": [{"c": 3.0, "a": 1.0, "b": 2}]}"#;
        let records = send(&app, "POST", "/invocations", "application/json", body, &[]).await;
        assert_eq!(split.status, StatusCode::OK, "{}", split.text);
        assert_eq!(records.json(), split.json(), "{}", dir.display());
    }
}

#[tokio::test]
async fn a_tensor_signature_takes_tables_by_position_and_answers_tensors() {
    // As MLflow: the DataFrame becomes the tensor column by column in the order sent.
    let tmp = tempfile::tempdir().unwrap();
    let (_, app) = gateway_with(&tensor_dir(tmp.path()));
    let shuffled = [3.0, 1.0, 2.0];
    for body in [
        json!({"dataframe_split": {"columns": ["c", "a", "b"], "data": [shuffled]}}).to_string(),
        // By hand: `json!` would sort the keys.
        r#"{"dataframe_records": [{"c": 3.0, "a": 1.0, "b": 2}]}"#.to_owned(),
        json!({"inputs": [shuffled]}).to_string(),
    ] {
        let r = send(&app, "POST", "/invocations", "application/json", &body, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text);
        let v = r.json();
        assert_eq!(
            v["predictions"]["variable"].as_array().unwrap().len(),
            1,
            "{v}"
        );
        close(&v["predictions"]["variable"][0][0], expected(shuffled));
    }
    let r = invoke(
        &app,
        json!({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2]]}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["message"],
        "Shape of input (1, 2) does not match expected shape (-1, 3)"
    );
}

#[tokio::test]
async fn a_classifier_answers_labels_and_probability_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, app) = gateway_with(&logistic_dir(tmp.path()));
    let r = invoke(&app, json!({"inputs": [[0.1, 1, 1], [3.9, 0, 1]]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = r.json()["predictions"].clone();
    let labels = p["label"].as_array().unwrap();
    assert_eq!(labels.len(), 2);
    // `probabilities` is ZipMap's output: one map per row from class to probability.
    for (label, probs) in labels.iter().zip(p["probabilities"].as_array().unwrap()) {
        let (p0, p1) = (probs["0"].as_f64().unwrap(), probs["1"].as_f64().unwrap());
        close(&json!(p0 + p1), 1.0);
        assert_eq!(label.as_i64().unwrap(), i64::from(p1 > p0), "{p}");
    }

    // The built-in classifier has a column signature: a table in any column order answers
    // one record per row, as `mlflow models serve` does for a ZipMap classifier.
    let r = invoke(
        &app,
        json!({"dataframe_split": {"columns": ["c", "a", "b"], "data": [[1, 0.1, 1], [1, 3.9, 0]]}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let records = r.json()["predictions"].clone();
    assert_eq!(records.as_array().unwrap().len(), 2, "{records}");
    for (i, record) in records.as_array().unwrap().iter().enumerate() {
        assert_eq!(record["label"], p["label"][i], "{records}");
        assert_eq!(record["probabilities"], p["probabilities"][i], "{records}");
    }
}

#[tokio::test]
async fn a_column_signature_orders_and_checks_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, app) = gateway_with(&column_dir(tmp.path()));
    let r = invoke(
        &app,
        json!({"dataframe_split": {"columns": ["c", "a", "b"], "data": [[3.0, 1.0, 2]]}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    close(
        &r.json()["predictions"][0]["variable"],
        expected([1.0, 2.0, 3.0]),
    );
    // TF-serving's columnar form is a table too.
    let r = invoke(&app, json!({"inputs": {"a": [1.0], "b": [2], "c": [3.0]}})).await;
    close(
        &r.json()["predictions"][0]["variable"],
        expected([1.0, 2.0, 3.0]),
    );
    // A column the signature does not name is ignored, as MLflow ignores it.
    let r = invoke(
        &app,
        json!({"dataframe_records": [{"d": 4, "a": 1.0, "b": 2, "c": 3.0}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    close(
        &r.json()["predictions"][0]["variable"],
        expected([1.0, 2.0, 3.0]),
    );

    let cases = [
        (
            json!({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2]]}}),
            "Model is missing inputs ['c']",
        ),
        (
            json!({"dataframe_split": {"data": [[1.0, 2, 3.0]]}}),
            "Model is missing inputs ['a', 'b', 'c']: the input's columns have no names",
        ),
        (
            json!({"dataframe_records": [{"a": 1.0, "b": 2.5, "c": 3.0}]}),
            "column \"b\", row 0: expected an integer (long), got the number 2.5",
        ),
        (
            json!({"dataframe_records": [{"a": "x", "b": 2, "c": 3.0}]}),
            "column \"a\", row 0: expected a number (double), got the string \"x\"",
        ),
        (
            json!({"inputs": {"a": [1.0], "zz": [2]}}),
            "Model is missing inputs ['b', 'c']. Note that there were extra inputs: ['zz']",
        ),
        (
            json!({"inputs": [[1.0, 2]]}),
            "the input has shape (1, 2); the model takes rows of 3 values, its columns ['a', 'b', 'c']",
        ),
    ];
    for (body, message) in cases {
        let r = invoke(&app, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        let err = r.json();
        assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE", "{err}");
        assert!(
            err["message"].as_str().unwrap().starts_with(message),
            "{body}: {err}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_a_4xx_that_names_the_problem_never_a_5xx() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, app) = gateway_with(&linear_dir(tmp.path()));
    let r = send(&app, "POST", "/invocations", "text/plain", "x", &[]).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        r.headers["content-type"], "text/plain",
        "MLflow answers 415 in plain text"
    );
    assert!(r.text.contains("Got 'text/plain'"), "{}", r.text);

    let r = invoke(&app, json!({"inputs": [[1.0, 2.0]]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("the input has shape (1, 2); the model takes rows of 3 values"),
        "{}",
        r.text
    );
    let r = send(
        &app,
        "POST",
        "/invocations",
        "text/csv",
        "a,b,c\n1,x,3\n",
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("column \"b\", row 0"),
        "{}",
        r.text
    );

    let garbage = [
        "",
        "null",
        "[]",
        "{}",
        "{\"inputs\": null}",
        "{\"inputs\": {}}",
        "{\"inputs\": [[[1]]]}",
        "{\"inputs\": [\"a\", \"b\", \"c\"]}",
        "{\"inputs\": 1e400}",
        "{\"instances\": [{}]}",
        "{\"dataframe_split\": {\"data\": []}}",
        "{\"dataframe_split\": {\"columns\": [1], \"data\": [[1]]}}",
        "{\"dataframe_records\": []}",
        "{\"inputs\": [[1, 2, 3]], \"params\": []}",
        "{\"inputs\": [[true, false, true]]}",
        "{\"inputs\": [[1, 2, 3]], \"instances\": [[1, 2, 3]]}",
    ];
    for body in garbage {
        let r = send(&app, "POST", "/invocations", "application/json", body, &[]).await;
        assert!(
            r.status.is_client_error() || r.status == StatusCode::OK,
            "{body}: {} {}",
            r.status,
            r.text
        );
        if r.status != StatusCode::OK {
            assert!(!r.json()["message"].as_str().unwrap().is_empty());
        }
    }
    let stats = gw.stats();
    let blue = stats.variant("blue").unwrap();
    assert_eq!(blue.errors, 0, "client mistakes are not variant errors");
    assert!(blue.client_errors >= 3);
}

#[tokio::test]
async fn version_answers_like_mlflows_scoring_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, app) = gateway_with(&linear_dir(tmp.path()));
    let r = send(&app, "GET", "/version", "", "", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.text, "3.17.2");
}

#[tokio::test]
async fn oip_metadata_readiness_and_infer() {
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    let app = serving::router(gw.clone());
    let r = send(&app, "GET", "/v2/health/ready", "", "", &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = send(&app, "GET", "/ping", "", "", &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);

    let mut v = variant(
        "blue",
        serving::load_model(&linear_dir(tmp.path())).unwrap(),
        1.0,
    );
    v.model_version = Some("3".into());
    gw.set_variants(vec![v], None).unwrap();
    assert_eq!(
        send(&app, "GET", "/ping", "", "", &[]).await.status,
        StatusCode::OK
    );
    let r = send(&app, "GET", "/v2/health/live", "", "", &[]).await;
    assert_eq!(r.json(), json!({"live": true}));
    let r = send(&app, "GET", "/v2/models/churn/ready", "", "", &[]).await;
    assert_eq!(r.json(), json!({"name": "churn", "ready": true}));

    let meta = send(&app, "GET", "/v2/models/churn", "", "", &[])
        .await
        .json();
    assert_eq!(meta["name"], "churn");
    assert_eq!(meta["platform"], "onnx_onnxv1");
    assert_eq!(meta["versions"], json!(["3"]));
    assert_eq!(meta["inputs"][0]["datatype"], "FP32");
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 3]));
    let input = meta["inputs"][0]["name"].as_str().unwrap().to_owned();

    let body = json!({"id": "r1", "inputs": [{"name": input, "shape": [2, 3], "datatype": "FP64", "data": [1, 2, 3, 0.5, 0, -1]}]});
    for uri in [
        "/v2/models/churn/infer",
        "/v2/models/churn/versions/3/infer",
    ] {
        let r = send(
            &app,
            "POST",
            uri,
            "application/json",
            &body.to_string(),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let a = r.json();
        assert_eq!(a["model_name"], "churn");
        assert_eq!(a["model_version"], "3");
        assert_eq!(a["id"], "r1");
        assert_eq!(a["outputs"][0]["shape"], json!([2, 1]));
        close(&a["outputs"][0]["data"][1], expected([0.5, 0.0, -1.0]));
    }
    let r = send(
        &app,
        "POST",
        "/v2/models/churn/versions/9/infer",
        "application/json",
        &body.to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].as_str().unwrap().contains("\"9\""));
    let r = send(&app, "GET", "/v2/models/other", "", "", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let bad = json!({"inputs": [{"name": "nope", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]});
    let r = send(
        &app,
        "POST",
        "/v2/models/churn/infer",
        "application/json",
        &bad.to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("column \"nope\" has shape (1, 3)"),
        "{}",
        r.text
    );
}

/// A predictor whose calls wait for a permit, answer a fixed value, or fail.
struct TestPredictor {
    info: ModelInfo,
    gate: Option<Arc<tokio::sync::Semaphore>>,
    answer: Result<Value, PredictError>,
    calls: AtomicU64,
}

impl TestPredictor {
    fn new(answer: Result<Value, PredictError>) -> Arc<TestPredictor> {
        Arc::new(TestPredictor {
            info: ModelInfo {
                runtime: "test",
                platform: "test".into(),
                signature: Default::default(),
                inputs: vec![],
                outputs: vec![],
                load_seconds: 0.25,
                model_uuid: None,
            },
            gate: None,
            answer,
            calls: AtomicU64::new(0),
        })
    }

    fn gated(answer: Value, gate: Arc<tokio::sync::Semaphore>) -> Arc<TestPredictor> {
        let mut p = Arc::into_inner(TestPredictor::new(Ok(answer))).unwrap();
        p.gate = Some(gate);
        Arc::new(p)
    }
}

impl Predictor for TestPredictor {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict(
        self: Arc<Self>,
        _request: ModelRequest,
    ) -> BoxFuture<Result<Prediction, PredictError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            self.answer.clone().map(Prediction::Json)
        })
    }
}

const BODY: &str = r#"{"inputs": [[1, 2, 3]]}"#;

async fn post(app: &Router, headers: &[(&str, &str)]) -> Reply {
    send(
        app,
        "POST",
        "/invocations",
        "application/json",
        BODY,
        headers,
    )
    .await
}

#[tokio::test]
async fn a_saturated_variant_answers_503_with_retry_after() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    let mut v = variant("blue", TestPredictor::gated(json!([1]), gate.clone()), 1.0);
    v.max_concurrency = 1;
    gw.set_variants(vec![v], None).unwrap();
    let app = serving::router(gw.clone());

    let first = tokio::spawn({
        let app = app.clone();
        async move { post(&app, &[]).await }
    });
    eventually(
        Duration::from_secs(10),
        "the first request to start",
        || async { (gw.stats().variant("blue").unwrap().in_flight > 0).then_some(()) },
    )
    .await;
    let r = post(&app, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.json()["error_code"], "TEMPORARILY_UNAVAILABLE");

    gate.add_permits(1);
    let r = first.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"predictions": [1]}));
    assert_eq!(r.headers["x-amzn-invoked-production-variant"], "blue");
    let s = gw.stats();
    let blue = s.variant("blue").unwrap();
    // A rejection is capacity, not an error of the variant.
    assert_eq!((blue.requests, blue.errors, blue.rejected), (2, 0, 1));
}

#[tokio::test]
async fn a_swap_keeps_in_flight_requests_on_their_model() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    let old = TestPredictor::gated(json!("old"), gate.clone());
    gw.set_variants(vec![variant("blue", old.clone(), 1.0)], None)
        .unwrap();
    let app = serving::router(gw.clone());
    let first = tokio::spawn({
        let app = app.clone();
        async move { post(&app, &[]).await }
    });
    eventually(
        Duration::from_secs(10),
        "the first request to start",
        || async { (old.calls.load(Ordering::SeqCst) > 0).then_some(()) },
    )
    .await;
    gw.set_variants(
        vec![variant("green", TestPredictor::new(Ok(json!("new"))), 1.0)],
        None,
    )
    .unwrap();
    assert_eq!(post(&app, &[]).await.json()["predictions"], "new");
    gate.add_permits(1);
    let r = first.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["predictions"], "old");
    assert_eq!(r.headers["x-amzn-invoked-production-variant"], "blue");
    drop(app);
    drop(gw);
    assert_eq!(
        Arc::strong_count(&old),
        1,
        "the old model is released once its last request ends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_under_continuous_load_fails_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let a = serving::load_model(&linear_dir(tmp.path())).unwrap();
    let b = serving::load_model(&column_dir(tmp.path())).unwrap();
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    gw.set_variants(vec![variant("blue", a.clone(), 1.0)], None)
        .unwrap();
    let app = serving::router(gw.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (app, stop) = (app.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 2, 3.0]]}});
                let r = invoke(&app, body).await;
                if r.status == StatusCode::OK {
                    close(&r.json()["predictions"][0]["variable"], expected([1.0, 2.0, 3.0]));
                    ok += 1;
                } else {
                    failed.push(format!("{} {}", r.status, r.text));
                }
            }
            (ok, failed)
        }));
    }
    for i in 0..200 {
        let variants = match i % 3 {
            0 => vec![variant("blue", b.clone(), 1.0)],
            1 => vec![
                variant("blue", a.clone(), 1.0),
                variant("green", b.clone(), 1.0),
            ],
            _ => vec![variant("green", a.clone(), 1.0)],
        };
        gw.set_variants(variants, None).unwrap();
        tokio::task::yield_now().await;
    }
    // Let the clients see the last set too before stopping them.
    let seen = gw.stats().variant("green").unwrap().requests;
    eventually(
        Duration::from_secs(30),
        "traffic after the last swap",
        || async {
            let requests = gw.stats().variant("green").unwrap().requests;
            if requests >= seen + 8 {
                Ok(())
            } else {
                Err(format!("{} requests since", requests - seen))
            }
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (ok, failed) = c.await.unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        total += ok;
    }
    assert!(total > 0);
    let s = gw.stats();
    assert_eq!(
        s.variants.iter().map(|v| v.requests).sum::<u64>(),
        total,
        "{s:?}"
    );
    assert!(
        s.variants
            .iter()
            .all(|v| v.errors == 0 && v.client_errors == 0)
    );
}

#[tokio::test]
async fn weights_and_target_variant_route_requests() {
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    gw.set_variants(
        vec![
            variant("blue", TestPredictor::new(Ok(json!("blue"))), 1.0),
            variant("idle", TestPredictor::new(Ok(json!("idle"))), 0.0),
        ],
        None,
    )
    .unwrap();
    let app = serving::router(gw.clone());
    for _ in 0..50 {
        assert_eq!(post(&app, &[]).await.json()["predictions"], "blue");
    }
    let pinned = [("x-amzn-sagemaker-target-variant", "idle")];
    assert_eq!(post(&app, &pinned).await.json()["predictions"], "idle");
    let r = post(&app, &[("x-amzn-sagemaker-target-variant", "nope")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["message"], "the endpoint has no variant \"nope\"");

    gw.set_variants(
        vec![
            variant("blue", TestPredictor::new(Ok(json!("blue"))), 1.0),
            variant("green", TestPredictor::new(Ok(json!("green"))), 1.0),
        ],
        None,
    )
    .unwrap();
    let mut green = 0;
    for _ in 0..400 {
        if post(&app, &[]).await.json()["predictions"] == "green" {
            green += 1;
        }
    }
    // An even split: the chance of falling outside 100..=300 of 400 is below 1e-20.
    assert!((100..=300).contains(&green), "{green}");

    let bad = gw.set_variants(
        vec![variant("a", TestPredictor::new(Ok(json!(1))), 0.0)],
        None,
    );
    assert_eq!(
        bad.unwrap_err().to_string(),
        "at least one variant needs a weight above 0"
    );
    let bad = gw.set_variants(
        vec![variant("../x", TestPredictor::new(Ok(json!(1))), 1.0)],
        None,
    );
    assert!(bad.is_err());
}

#[tokio::test]
async fn model_failures_count_as_errors_client_mistakes_do_not() {
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    gw.set_variants(
        vec![
            variant(
                "broken",
                TestPredictor::new(Err(PredictError::Model("boom".into()))),
                1.0,
            ),
            variant(
                "picky",
                TestPredictor::new(Err(PredictError::Input(InputError::schema("bad column")))),
                0.0,
            ),
        ],
        None,
    )
    .unwrap();
    let app = serving::router(gw.clone());
    let r = post(&app, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["message"], "the model failed on this input: boom");
    let r = post(&app, &[("x-amzn-sagemaker-target-variant", "picky")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let s = gw.stats();
    let broken = s.variant("broken").unwrap();
    let picky = s.variant("picky").unwrap();
    assert_eq!((broken.errors, broken.client_errors), (1, 0));
    assert_eq!((picky.errors, picky.client_errors), (0, 1));
    assert_eq!(broken.error_rate(), Some(1.0));
}

fn capture_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn records(files: &[PathBuf]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn capturing(percent: f64) -> GatewaySettings {
    GatewaySettings {
        capture: Some(CaptureConfig {
            sampling_percent: percent,
            mode: CaptureMode::InputAndOutput,
        }),
        ..GatewaySettings::default()
    }
}

#[tokio::test]
async fn capture_writes_sagemaker_records_per_variant_and_hour() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(ArtifactStore::from_uri(tmp.path().to_str().unwrap()).unwrap());
    let sink = CaptureSink::start(store, CaptureSettings::default());
    let gw = Gateway::new("churn", capturing(100.0), Some(sink.clone()));
    gw.set_variants(
        vec![variant("blue", TestPredictor::new(Ok(json!([7]))), 1.0)],
        None,
    )
    .unwrap();
    let app = serving::router(gw.clone());
    assert_eq!(
        post(&app, &[("x-amzn-sagemaker-inference-id", "inf-1")])
            .await
            .status,
        StatusCode::OK
    );
    let r = send(
        &app,
        "POST",
        "/invocations",
        "text/csv",
        "a,b,c\n1,2,3\n",
        &[("x-inference-id", "inf-2")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    sink.flush().await;

    let files = capture_files(tmp.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let rel = files[0].strip_prefix(tmp.path()).unwrap();
    let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap()).collect();
    assert_eq!(&parts[..3], ["datacapture", "churn", "blue"]);
    let hour = chrono::Utc::now();
    assert_eq!(parts[3], hour.format("%Y").to_string());
    assert_eq!(
        parts.len(),
        8,
        "prefix/endpoint/variant/yyyy/mm/dd/hh/file: {parts:?}"
    );

    let recs = records(&files);
    assert_eq!(recs.len(), 2);
    let first = &recs[0];
    assert_eq!(first["eventVersion"], "0");
    assert_eq!(first["eventMetadata"]["inferenceId"], "inf-1");
    assert!(first["eventMetadata"]["eventId"].as_str().unwrap().len() == 36);
    assert!(
        first["eventMetadata"]["inferenceTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let input = &first["captureData"]["endpointInput"];
    assert_eq!(
        (
            input["mode"].as_str(),
            input["encoding"].as_str(),
            input["data"].as_str()
        ),
        (Some("INPUT"), Some("JSON"), Some(BODY))
    );
    let output = &first["captureData"]["endpointOutput"];
    assert_eq!(output["data"], r#"{"predictions":[7]}"#);
    assert_eq!(output["mode"], "OUTPUT");
    assert_eq!(recs[1]["captureData"]["endpointInput"]["encoding"], "CSV");
    assert_eq!(recs[1]["eventMetadata"]["inferenceId"], "inf-2");
    assert_eq!(sink.totals().written, 2);
}

#[tokio::test]
async fn a_full_capture_buffer_drops_and_counts_never_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(ArtifactStore::from_uri(tmp.path().to_str().unwrap()).unwrap());
    let settings = CaptureSettings {
        buffer: 1,
        ..CaptureSettings::default()
    };
    // The writer is not running yet, so the buffer fills after one record.
    let (sink, writer) = CaptureSink::new(store, settings);
    let gw = Gateway::new("churn", capturing(100.0), Some(sink.clone()));
    gw.set_variants(
        vec![variant("blue", TestPredictor::new(Ok(json!([1]))), 1.0)],
        None,
    )
    .unwrap();
    let app = serving::router(gw.clone());
    for _ in 0..3 {
        assert_eq!(post(&app, &[]).await.status, StatusCode::OK);
    }
    assert_eq!(sink.totals().dropped, 2);
    assert_eq!(gw.stats().capture_dropped, 2);
    let metrics = send(&app, "GET", "/metrics", "", "", &[]).await.text;
    assert!(
        metrics.contains("sextant_serving_capture_dropped_records_total{endpoint=\"churn\"} 2"),
        "{metrics}"
    );
    tokio::spawn(writer.run());
    sink.flush().await;
    assert_eq!(records(&capture_files(tmp.path())).len(), 1);
}

#[tokio::test]
async fn zero_sampling_captures_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(ArtifactStore::from_uri(tmp.path().to_str().unwrap()).unwrap());
    let sink = CaptureSink::start(store, CaptureSettings::default());
    let gw = Gateway::new("churn", capturing(0.0), Some(sink.clone()));
    gw.set_variants(
        vec![variant("blue", TestPredictor::new(Ok(json!([1]))), 1.0)],
        None,
    )
    .unwrap();
    let app = serving::router(gw);
    for _ in 0..20 {
        post(&app, &[]).await;
    }
    sink.flush().await;
    assert!(capture_files(tmp.path()).is_empty());
}

#[tokio::test]
async fn the_shadow_gets_copies_whose_answers_are_captured_not_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(ArtifactStore::from_uri(tmp.path().to_str().unwrap()).unwrap());
    let sink = CaptureSink::start(store, CaptureSettings::default());
    let gw = Gateway::new("churn", capturing(100.0), Some(sink.clone()));
    let shadow = TestPredictor::new(Ok(json!("shadow")));
    gw.set_variants(
        vec![variant("blue", TestPredictor::new(Ok(json!("prod"))), 1.0)],
        Some(ShadowSpec {
            variant: variant("candidate", shadow.clone(), 0.0),
            sampling_percent: 100.0,
        }),
    )
    .unwrap();
    let app = serving::router(gw.clone());
    for _ in 0..5 {
        let r = post(&app, &[]).await;
        assert_eq!(r.json()["predictions"], "prod");
        assert_eq!(r.headers["x-amzn-invoked-production-variant"], "blue");
    }
    eventually(Duration::from_secs(10), "the shadow's copies", || async {
        let copies = gw.stats().variant("candidate").map_or(0, |c| c.requests);
        if copies >= 5 {
            Ok(())
        } else {
            Err(format!("{copies} of 5"))
        }
    })
    .await;
    sink.flush().await;
    let recs = records(&capture_files(tmp.path()));
    let shadow_answers = recs
        .iter()
        .filter(|r| r["captureData"]["endpointOutput"]["data"] == r#"{"predictions":"shadow"}"#)
        .count();
    assert_eq!(shadow_answers, 5);
    assert_eq!(recs.len(), 10);
    let s = gw.stats();
    assert!(s.variant("candidate").unwrap().shadow);
    assert_eq!(s.variant("blue").unwrap().requests, 5);
}

#[tokio::test]
async fn metrics_expose_requests_errors_latency_and_load_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, app) = gateway_with(&linear_dir(tmp.path()));
    invoke(&app, json!({"inputs": [[1, 2, 3]]})).await;
    invoke(&app, json!({"inputs": [[1, 2]]})).await;
    let r = send(&app, "GET", "/metrics", "", "", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let m = r.text;
    let labels = "endpoint=\"churn\",variant=\"blue\"";
    for line in [
        format!("sextant_serving_requests_total{{{labels},shadow=\"false\"}} 2"),
        format!("sextant_serving_errors_total{{{labels},shadow=\"false\"}} 0"),
        format!("sextant_serving_client_errors_total{{{labels},shadow=\"false\"}} 1"),
        format!("sextant_serving_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2"),
        format!("sextant_serving_request_duration_seconds_count{{{labels}}} 2"),
        "# TYPE sextant_serving_request_duration_seconds histogram".to_owned(),
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
    assert!(m.contains(&format!("sextant_serving_model_load_seconds{{{labels}}} ")));
}

#[tokio::test]
async fn hosted_gateways_are_reached_by_endpoint_name() {
    let gateways = serving::Gateways::new();
    for name in ["churn", "fraud"] {
        let gw = Gateway::new(name, GatewaySettings::default(), None);
        gw.set_variants(
            vec![variant("blue", TestPredictor::new(Ok(json!(name))), 1.0)],
            None,
        )
        .unwrap();
        gateways.insert(gw);
    }
    let app = serving::endpoints_router(gateways.clone());
    let r = send(
        &app,
        "POST",
        "/endpoints/fraud/invocations",
        "application/json",
        BODY,
        &[],
    )
    .await;
    assert_eq!(r.json()["predictions"], "fraud");
    let r = send(
        &app,
        "GET",
        "/endpoints/churn/v2/models/churn/ready",
        "",
        "",
        &[],
    )
    .await;
    assert_eq!(r.json(), json!({"name": "churn", "ready": true}));
    let r = send(
        &app,
        "POST",
        "/endpoints/nope/invocations",
        "application/json",
        BODY,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["message"], "endpoint \"nope\" does not exist");

    let m = send(&app, "GET", "/endpoints-metrics", "", "", &[])
        .await
        .text;
    assert_eq!(
        m.matches("# TYPE sextant_serving_requests_total counter")
            .count(),
        1,
        "one family header for all endpoints:\n{m}"
    );
    assert!(
        m.contains(
            "sextant_serving_requests_total{endpoint=\"fraud\",variant=\"blue\",shadow=\"false\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "sextant_serving_requests_total{endpoint=\"churn\",variant=\"blue\",shadow=\"false\"} 0"
        ),
        "{m}"
    );

    assert!(gateways.remove("fraud").is_some());
    let r = send(
        &app,
        "POST",
        "/endpoints/fraud/invocations",
        "application/json",
        BODY,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(gateways.names(), ["churn"]);
}

#[tokio::test]
async fn the_router_works_nested_under_a_parameterized_route() {
    let gw = Gateway::new("churn", GatewaySettings::default(), None);
    let mut v = variant("blue", TestPredictor::new(Ok(json!([1]))), 1.0);
    v.model_version = Some("2".into());
    gw.set_variants(vec![v], None).unwrap();
    let app = Router::new().nest("/endpoints/{name}", serving::router(gw));
    let r = send(
        &app,
        "GET",
        "/endpoints/churn/v2/models/churn/versions/2/ready",
        "",
        "",
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = send(
        &app,
        "POST",
        "/endpoints/churn/invocations",
        "application/json",
        BODY,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
