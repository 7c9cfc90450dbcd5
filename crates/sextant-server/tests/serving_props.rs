//! Property: whatever a client sends to `/invocations` or OIP `infer`, the answer is a 200
//! or a 4xx with a message, never a 5xx or a panic, for models with a tensor signature and
//! with a column signature.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sextant_serving::{self as serving, Gateway, GatewaySettings, VariantSpec};
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use tower::ServiceExt;

fn app_for(dir: &Path) -> Router {
    let gw = Gateway::new("m", GatewaySettings::default(), None);
    gw.set_variants(
        vec![VariantSpec {
            name: "v".into(),
            predictor: serving::load_model(dir).unwrap(),
            weight: 1.0,
            max_concurrency: 4,
            model_version: None,
        }],
        None,
    )
    .unwrap();
    serving::router(gw)
}

/// A tensor-signature and a column-signature model over the same graph.
fn apps(root: &Path) -> Vec<Router> {
    let tensor = root.join("tensor");
    let model = LinearModel {
        coefficients: vec![1.0, 2.0],
        intercept: 0.0,
    };
    let x = Matrix::from_rows(&[vec![1.0, 2.0]]).unwrap();
    sextant_train::mlflow_model::save_linear(&tensor, &model, &["a".into(), "b".into()], &x)
        .unwrap();
    // The built-in trainer writes a column signature; this one takes a tensor.
    std::fs::write(
        tensor.join("MLmodel"),
        "flavors:\n  onnx:\n    data: model.onnx\nsignature:\n  inputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1, 2]}}]'\n",
    )
    .unwrap();
    let columns = root.join("columns");
    std::fs::create_dir_all(&columns).unwrap();
    std::fs::copy(tensor.join("model.onnx"), columns.join("model.onnx")).unwrap();
    std::fs::write(
        columns.join("MLmodel"),
        "flavors:\n  onnx:\n    data: model.onnx\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"a\"}, {\"type\": \"long\", \"name\": \"b\", \"required\": false}]'\n",
    )
    .unwrap();
    vec![app_for(&tensor), app_for(&columns)]
}

const KEYS: [&str; 12] = [
    "a",
    "b",
    "X",
    "columns",
    "data",
    "index",
    "inputs",
    "name",
    "shape",
    "datatype",
    "params",
    "instances",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..1_000).prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop::sample::select(vec!["", "a", "b", "FP32", "INT64", "BYTES", "1.5"])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..5).prop_map(
                |entries| Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>()
                )
            ),
        ]
    })
}

fn mlflow_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        (
            prop::sample::select(vec![
                "dataframe_split",
                "dataframe_records",
                "instances",
                "inputs"
            ]),
            json_value(),
            prop::option::of(json_value()),
        )
            .prop_map(|(key, v, params)| {
                let mut doc = json!({ key: v });
                if let Some(p) = params {
                    doc["params"] = p;
                }
                doc
            }),
    ]
}

fn oip_body() -> impl Strategy<Value = Value> {
    let input = (
        prop::sample::select(vec!["X", "a", "b", "float_input"]),
        prop::collection::vec(0u64..4, 0..4),
        prop::sample::select(vec!["FP32", "FP64", "INT64", "BYTES", "BOOL", "UINT8"]),
        json_value(),
    )
        .prop_map(|(name, shape, datatype, data)| {
            json!({"name": name, "shape": shape, "datatype": datatype, "data": data})
        });
    prop_oneof![
        json_value(),
        prop::collection::vec(input, 0..3).prop_map(|inputs| json!({ "inputs": inputs })),
    ]
}

fn status_of(
    rt: &tokio::runtime::Runtime,
    app: &Router,
    uri: &str,
    ct: &str,
    body: String,
) -> (u16, String) {
    rt.block_on(async {
        let req = Request::builder()
            .method("POST")
            .uri(uri)
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    })
}

struct Fixture {
    _tmp: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    apps: Vec<Router>,
}

fn fixture() -> Arc<Fixture> {
    static FIXTURE: std::sync::OnceLock<Arc<Fixture>> = std::sync::OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let apps = apps(tmp.path());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            Arc::new(Fixture {
                _tmp: tmp,
                rt,
                apps,
            })
        })
        .clone()
}

fn check(status: u16, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        status == 200 || (400..500).contains(&status),
        "{status}: {text}"
    );
    if status != 200 && status != 415 {
        let doc: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let message = doc["message"].as_str().or(doc["error"].as_str());
        prop_assert!(message.is_some_and(|m| !m.is_empty()), "{status}: {text}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn invocations_never_answer_5xx(body in mlflow_body()) {
        let f = fixture();
        for app in &f.apps {
            let (status, text) = status_of(&f.rt, app, "/invocations", "application/json", body.to_string());
            check(status, &text)?;
        }
    }

    #[test]
    fn oip_infer_never_answers_5xx(body in oip_body()) {
        let f = fixture();
        for app in &f.apps {
            let (status, text) = status_of(&f.rt, app, "/v2/models/m/infer", "application/json", body.to_string());
            check(status, &text)?;
        }
    }

    #[test]
    fn csv_never_answers_5xx(cells in prop::collection::vec(prop::collection::vec("[a-c0-9.,\" -]{0,4}", 0..4), 0..5)) {
        let f = fixture();
        let text: String = cells.iter().map(|row| row.join(",") + "\n").collect();
        for app in &f.apps {
            let (status, reply) = status_of(&f.rt, app, "/invocations", "text/csv", text.clone());
            check(status, &reply)?;
        }
    }
}
