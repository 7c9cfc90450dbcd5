//! Property (issue 15.2): the same table sent as `dataframe_split` and as
//! `dataframe_records` gets the same answer, with the columns in any order, for every model
//! of the ONNX zoo (`sextant-onnx/tests/python/make_zoo.py`, each served without a signature
//! and with a column signature) and every built-in trainer. With a column signature the
//! answer also does not depend on the column order; without one, columns are taken in the
//! order sent, records in the order their keys first appear (as pandas builds the frame).

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use sextant_gbdt::{Gbdt, Objective, Params};
use sextant_serving::{self as serving, Gateway, GatewaySettings, VariantSpec};
use sextant_train::data::Matrix;
use sextant_train::{linear, logistic, mlflow_model};
use tower::ServiceExt;

/// A Python with skl2onnx and onnxruntime, found as `sextant-onnx`'s zoo test finds it.
fn python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(venv) = std::env::var("SEXTANT_VENV") {
        candidates.push(Path::new(&venv).join("bin/python"));
    }
    candidates.push(PathBuf::from("python3"));
    if let Some(dir) = std::env::var("HOME")
        .ok()
        .and_then(|home| std::fs::read_dir(Path::new(&home).join(".cache/sextant")).ok())
    {
        let mut venvs: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("venv-"))
            })
            .map(|p| p.join("bin/python"))
            .collect();
        venvs.sort();
        candidates.extend(venvs);
    }
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import skl2onnx, onnxruntime, sklearn"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// One served model and the table it is asked about.
struct Case {
    name: String,
    app: Router,
    /// Column names in the model's order.
    columns: Vec<String>,
    /// Rows, cells in `columns` order.
    rows: Vec<Vec<Value>>,
    /// Whether a column signature names the columns (then their order does not matter).
    by_name: bool,
}

fn app_for(dir: &Path) -> Router {
    let gw = Gateway::new("m", GatewaySettings::default(), None);
    gw.set_variants(
        vec![VariantSpec {
            name: "v".into(),
            predictor: serving::load_model(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
            weight: 1.0,
            max_concurrency: 4,
            model_version: None,
        }],
        None,
    )
    .unwrap();
    serving::router(gw)
}

fn write_mlmodel(dir: &Path, signature: Option<&Value>) {
    let mut text = "flavors:\n  onnx:\n    data: model.onnx\n".to_owned();
    if let Some(sig) = signature {
        text.push_str(&format!(
            "signature:\n  inputs: '{}'\n",
            sig.to_string().replace('\'', "''")
        ));
    }
    std::fs::write(dir.join("MLmodel"), text).unwrap();
}

/// The zoo's models, each without a signature and with a column signature, asked about
/// the zoo's own inputs. Multi-input graphs take one `[N, 1]` column per input.
fn zoo_cases(root: &Path) -> Vec<Case> {
    let Some(python) = python() else {
        eprintln!("SKIPPED the zoo: no Python with skl2onnx and onnxruntime (set SEXTANT_VENV)");
        return Vec::new();
    };
    let zoo = root.join("zoo");
    let script = Path::new(&manifest_dir()).join("../sextant-onnx/tests/python/make_zoo.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&zoo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&zoo)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".onnx")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 25, "the zoo has only {names:?}");
    let mut cases = Vec::new();
    for name in names {
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(zoo.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let inputs = doc["inputs"].as_object().unwrap();
        // Columns: one per input column; a single input's columns are named c0, c1, ….
        let mut columns: Vec<(String, &'static str, Vec<Value>)> = Vec::new();
        let single = inputs.len() == 1;
        for (input, t) in inputs {
            let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
            let width = shape.get(1).copied().unwrap_or(1);
            if !single && width != 1 {
                panic!("{name}: multi-input graph with a [N, {width}] input");
            }
            let ty = match t["dtype"].as_str().unwrap() {
                "float" | "double" => "double",
                "int64" => "long",
                "string" => "string",
                other => panic!("{name}: dtype {other}"),
            };
            let data = t["data"].as_array().unwrap();
            for c in 0..width {
                let column_name = if single {
                    format!("c{c}")
                } else {
                    input.clone()
                };
                let cells = (0..shape[0]).map(|r| data[r * width + c].clone()).collect();
                columns.push((column_name, ty, cells));
            }
        }
        let rows: Vec<Vec<Value>> = (0..columns[0].2.len())
            .map(|r| {
                columns
                    .iter()
                    .map(|(_, _, cells)| cells[r].clone())
                    .collect()
            })
            .collect();
        let names: Vec<String> = columns.iter().map(|(n, _, _)| n.clone()).collect();
        let signature = Value::Array(
            columns
                .iter()
                .map(|(n, ty, _)| json!({"type": ty, "name": n, "required": true}))
                .collect(),
        );
        for (suffix, sig) in [("none", None), ("columns", Some(&signature))] {
            let dir = root.join(format!("{name}-{suffix}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(zoo.join(format!("{name}.onnx")), dir.join("model.onnx")).unwrap();
            write_mlmodel(&dir, sig);
            cases.push(Case {
                name: format!("{name} ({suffix} signature)"),
                app: app_for(&dir),
                columns: names.clone(),
                rows: rows.clone(),
                by_name: sig.is_some(),
            });
        }
    }
    cases
}

/// Every built-in trainer's model as it writes it (a regressor with a column signature, a
/// classifier with its tensor signature).
fn builtin_cases(root: &Path) -> Vec<Case> {
    let n = 60;
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let t = i as f64;
            vec![
                (t * 0.37).sin() * 10.0,
                (i % 5) as f64,
                t / 7.0,
                (t * 1.3).cos(),
            ]
        })
        .collect();
    let x = Matrix::from_rows(&rows).unwrap();
    let names: Vec<String> = ["area", "rooms", "age", "distance"]
        .map(String::from)
        .to_vec();
    let y: Vec<f64> = rows
        .iter()
        .map(|r| 2.0 * r[0] - r[1] + 0.5 * r[2] + 3.0 * r[3])
        .collect();
    let labels: Vec<f64> = y.iter().map(|v| f64::from(*v > 0.0)).collect();
    let classes: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
    let mut dirs = Vec::new();

    let lin = linear::fit(&x, &y, &linear::LinearParams::default()).unwrap();
    dirs.push((
        "linear",
        mlflow_model::save_linear(&root.join("linear"), &lin, &names, &x)
            .unwrap()
            .dir,
    ));
    let logit = logistic::fit(&x, &labels, &logistic::LogisticParams::default()).unwrap();
    dirs.push((
        "logistic",
        mlflow_model::save_logistic(&root.join("logistic"), &logit, &names, &x)
            .unwrap()
            .dir,
    ));
    for (kind, objective, target) in [
        ("gbdt regression", Objective::Regression, &y),
        (
            "gbdt multiclass",
            Objective::Multiclass { n_classes: 3 },
            &classes,
        ),
    ] {
        let params = Params {
            objective,
            n_trees: 5,
            min_samples_leaf: 5,
            ..Default::default()
        };
        let model = Gbdt::fit(&params, x.as_slice(), x.cols(), target).unwrap();
        let dir = root.join(kind.replace(' ', "-"));
        dirs.push((
            kind,
            mlflow_model::save_gbdt(&dir, &model, &names, &x)
                .unwrap()
                .dir,
        ));
    }
    dirs.into_iter()
        .map(|(kind, dir)| {
            let mlmodel = std::fs::read_to_string(dir.join("MLmodel")).unwrap();
            Case {
                name: format!("built-in {kind}"),
                app: app_for(&dir),
                columns: names.clone(),
                // The `rooms` column is integral: send it as integers, as a client would.
                rows: rows
                    .iter()
                    .map(|r| vec![json!(r[0]), json!(r[1] as i64), json!(r[2]), json!(r[3])])
                    .collect(),
                by_name: !mlmodel.contains("tensor-spec"),
            }
        })
        .collect()
}

async fn invoke(app: &Router, body: String) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri("/invocations")
        .header("content-type", "application/json")
        .body(Body::from(body))
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

/// The split and records bodies of `rows[from..to]` with the columns in `order`. The
/// records body is written by hand so its keys stay in `order` (a `serde_json::Map` would
/// sort them).
fn bodies(case: &Case, order: &[usize], from: usize, to: usize) -> (String, String) {
    let columns: Vec<&String> = order.iter().map(|&i| &case.columns[i]).collect();
    let rows: Vec<Vec<&Value>> = case.rows[from..to]
        .iter()
        .map(|r| order.iter().map(|&i| &r[i]).collect())
        .collect();
    let split = json!({"dataframe_split": {"columns": columns, "data": rows}}).to_string();
    let records: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = columns
                .iter()
                .zip(row)
                .map(|(c, v)| format!("{}: {v}", Value::String((*c).clone())))
                .collect();
            format!("{{{}}}", cells.join(", "))
        })
        .collect();
    let records = format!("{{\"dataframe_records\": [{}]}}", records.join(", "));
    (split, records)
}

#[test]
fn records_and_split_answer_the_same_in_any_column_order() {
    let root = tempfile::tempdir().unwrap();
    let mut cases = builtin_cases(root.path());
    cases.extend(zoo_cases(root.path()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Every model once in the given order, then random orders and row ranges.
    for case in &cases {
        let order: Vec<usize> = (0..case.columns.len()).collect();
        let (split, records) = bodies(case, &order, 0, case.rows.len().min(8));
        let (a, b) = rt.block_on(async {
            (
                invoke(&case.app, split).await,
                invoke(&case.app, records).await,
            )
        });
        assert_eq!(a.0, StatusCode::OK, "{}: {}", case.name, a.1);
        assert_eq!(a, b, "{}", case.name);
    }
    let n = cases.len();
    let strategy = (0..n, any::<u64>(), 0usize..40, 1usize..6);
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    runner
        .run(&strategy, |(which, seed, from, len)| {
            let case = &cases[which];
            let from = from % case.rows.len();
            let to = (from + len).min(case.rows.len());
            // A permutation from the seed (Fisher–Yates on a small LCG).
            let mut order: Vec<usize> = (0..case.columns.len()).collect();
            let mut s = seed;
            for i in (1..order.len()).rev() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let identity: Vec<usize> = (0..case.columns.len()).collect();
            let (split, records) = bodies(case, &order, from, to);
            let (canonical, _) = bodies(case, &identity, from, to);
            let (a, b, c) = rt.block_on(async {
                (
                    invoke(&case.app, split).await,
                    invoke(&case.app, records).await,
                    invoke(&case.app, canonical).await,
                )
            });
            prop_assert_eq!(&a, &b, "{}: order {:?}", case.name, order);
            if case.by_name {
                prop_assert_eq!(a.0, StatusCode::OK, "{}: {}", case.name, a.1);
                prop_assert_eq!(&a, &c, "{}: order {:?}", case.name, order);
            }
            Ok(())
        })
        .unwrap();
}

/// This crate's directory, read when the test runs (cargo and nextest set it):
/// a binary built from another checkout of the same sources is reused by
/// cargo, and the compile-time value would point at that checkout.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
