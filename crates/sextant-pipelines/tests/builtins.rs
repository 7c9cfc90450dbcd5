//! The built-in steps end to end on generated CSVs: split → train → evaluate, and the
//! error messages a pipeline author sees.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use sextant_pipelines::builtins::{Metrics, builtin_keys, run_builtin};

fn with(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Deterministic noise in [-0.5, 0.5).
fn noise(i: u64) -> f64 {
    let z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    z as f64 / (1u64 << 53) as f64 - 0.5
}

/// `y = 3·a − 2·b + 0.5` plus a little noise.
fn linear_csv(path: &Path) {
    let mut text = String::from("a,b,y\n");
    for i in 0..200u64 {
        let (a, b) = (i as f64 / 20.0, (i * 7 % 13) as f64);
        let y = 3.0 * a - 2.0 * b + 0.5 + 0.1 * noise(i);
        writeln!(text, "{a},{b},{y}").unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// `label = 1` when `a + b > 10`, separable with a margin.
fn logistic_csv(path: &Path) {
    let mut text = String::from("a,b,label\n");
    for i in 0..200u64 {
        let (a, b) = ((i % 20) as f64 * 0.5, (i * 7 % 23) as f64 * 0.5);
        let label = u8::from(a + b + noise(i) > 10.0);
        writeln!(text, "{a},{b},{label}").unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn run(name: &str, pairs: &[(&str, &str)], out: &Path) -> Metrics {
    run_builtin(name, &with(pairs), out).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_metrics(out: &Path) -> Metrics {
    serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn split_linear_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("housing.csv");
    linear_csv(&data);
    let split = dir.path().join("split");
    let counts = run(
        "builtin/split",
        &[
            ("data", data.to_str().unwrap()),
            ("test_fraction", "0.25"),
            ("seed", "7"),
        ],
        &split,
    );
    assert_eq!(counts["train_rows"], 150.0);
    assert_eq!(counts["test_rows"], 50.0);
    assert!(split.join("train/data.csv").is_file());
    assert!(split.join("test/data.csv").is_file());

    // A split output is referenced as a directory.
    let train = dir.path().join("train");
    let fit = run(
        "builtin/linear",
        &[
            ("train", split.join("train").to_str().unwrap()),
            ("target", "y"),
            ("l2", "0"),
        ],
        &train,
    );
    assert!(fit["training_r2"] > 0.99, "{fit:?}");
    assert!(train.join("model/MLmodel").is_file());
    assert!(train.join("model/model.onnx").is_file());
    assert_eq!(read_metrics(&train), fit);

    let eval = dir.path().join("evaluate");
    let metrics = run(
        "builtin/evaluate",
        &[
            ("model", train.join("model").to_str().unwrap()),
            ("data", split.join("test/data.csv").to_str().unwrap()),
            ("target", "y"),
        ],
        &eval,
    );
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["mae", "r2", "rmse"],
        "{metrics:?}"
    );
    assert!(metrics["r2"] > 0.9, "{metrics:?}");
    assert!(metrics["rmse"] < 0.5, "{metrics:?}");
    assert_eq!(read_metrics(&eval), metrics);

    // Columns are matched by name, not position.
    let reordered = dir.path().join("reordered.csv");
    let text = std::fs::read_to_string(split.join("test/data.csv")).unwrap();
    let swapped: String = text
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!("{},{},{}\n", c[2], c[1], c[0])
        })
        .collect();
    std::fs::write(&reordered, swapped).unwrap();
    let again = run(
        "builtin/evaluate",
        &[
            ("model", train.join("model").to_str().unwrap()),
            ("data", reordered.to_str().unwrap()),
            ("target", "y"),
        ],
        &dir.path().join("evaluate2"),
    );
    assert_eq!(again, metrics);
}

#[test]
fn split_logistic_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("churn.csv");
    logistic_csv(&data);
    let split = dir.path().join("split");
    run(
        "builtin/split",
        &[("data", data.to_str().unwrap()), ("seed", "3")],
        &split,
    );
    let train = dir.path().join("train");
    let fit = run(
        "builtin/logistic",
        &[
            ("train", split.join("train").to_str().unwrap()),
            ("target", "label"),
            ("C", "10"),
            ("max_iter", "200"),
        ],
        &train,
    );
    assert!(fit["training_accuracy"] > 0.9, "{fit:?}");
    let metrics = run(
        "builtin/evaluate",
        &[
            ("model", train.join("model").to_str().unwrap()),
            ("data", split.join("test").to_str().unwrap()),
            ("target", "label"),
        ],
        &dir.path().join("evaluate"),
    );
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["accuracy", "auc", "f1"],
        "{metrics:?}"
    );
    assert!(metrics["accuracy"] > 0.9, "{metrics:?}");
    assert!(metrics["auc"] > 0.9, "{metrics:?}");
}

fn error(name: &str, pairs: &[(&str, &str)], out: &Path) -> String {
    run_builtin(name, &with(pairs), out)
        .map(|m| panic!("{name} succeeded: {m:?}"))
        .unwrap_err()
        .to_string()
}

#[test]
fn errors_name_the_builtin_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    linear_csv(&data);
    let data = data.to_str().unwrap();
    let out = dir.path().join("out");

    assert_eq!(
        error(
            "builtin/split",
            &[("data", data), ("fraction", "0.2"), ("sed", "1")],
            &out
        ),
        "builtin/split: unknown with key(s) fraction, sed (accepted: data, test_fraction, seed)"
    );
    assert_eq!(
        error(
            "builtin/split",
            &[("data", data), ("test_fraction", "a fifth")],
            &out
        ),
        "builtin/split: with key \"test_fraction\": \"a fifth\" is not a number"
    );
    assert_eq!(
        error("builtin/split", &[("data", data), ("seed", "-1")], &out),
        "builtin/split: with key \"seed\": \"-1\" is not a non-negative integer"
    );
    assert_eq!(
        error("builtin/linear", &[("train", data)], &out),
        "builtin/linear: missing required with key \"target\""
    );
    let err = error(
        "builtin/split",
        &[("data", data), ("test_fraction", "1.5")],
        &out,
    );
    assert!(err.starts_with("builtin/split: invalid parameter"), "{err}");
    let err = error(
        "builtin/linear",
        &[("train", data), ("target", "price")],
        &out,
    );
    assert!(err.contains("no column named \"price\""), "{err}");
    let err = error("builtin/gbdt", &[], &out);
    assert!(
        err.starts_with("unknown built-in \"builtin/gbdt\""),
        "{err}"
    );

    // Evaluating on data that lacks one of the model's columns.
    let train = dir.path().join("train");
    run(
        "builtin/linear",
        &[("train", data), ("target", "y")],
        &train,
    );
    let narrow = dir.path().join("narrow.csv");
    std::fs::write(&narrow, "a,y\n1,2\n3,4\n").unwrap();
    let err = error(
        "builtin/evaluate",
        &[
            ("model", train.join("model").to_str().unwrap()),
            ("data", narrow.to_str().unwrap()),
            ("target", "y"),
        ],
        &out,
    );
    assert!(err.contains("no column \"b\""), "{err}");
}

#[test]
fn accepted_keys_are_listed_per_builtin() {
    assert_eq!(
        builtin_keys("builtin/split"),
        Some(&["data", "test_fraction", "seed"][..])
    );
    assert_eq!(
        builtin_keys("builtin/logistic"),
        Some(&["train", "target", "C", "max_iter"][..])
    );
    assert_eq!(
        builtin_keys("builtin/evaluate"),
        Some(&["model", "data", "target"][..])
    );
    assert!(builtin_keys("builtin/linear").unwrap().contains(&"l2"));
    assert_eq!(builtin_keys("builtin/nope"), None);
}
