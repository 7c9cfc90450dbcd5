//! The built-in steps end to end on generated CSVs: split → train → evaluate, and the
//! error messages a pipeline author sees.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use sextant_pipelines::builtins::{
    Metrics, builtin_keys, builtin_required_keys, run_builtin, run_builtin_until,
};
use sextant_pipelines::spec::Builtin;

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
    assert_eq!(
        error("builtin/gbdt", &[("train", data)], &out),
        "builtin/gbdt: missing required with key \"target\""
    );
    assert_eq!(
        error("builtin/nope", &[], &out),
        "unknown built-in \"builtin/nope\" (known: builtin/split, builtin/linear, builtin/logistic, builtin/gbdt, builtin/evaluate, builtin/baseline)"
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
        Some(
            &[
                "train",
                "target",
                "C",
                "max_iter",
                "valid",
                "holdout",
                "train_fraction",
                "seed"
            ][..]
        )
    );
    assert_eq!(
        builtin_keys("builtin/evaluate"),
        Some(&["model", "data", "target"][..])
    );
    assert!(builtin_keys("builtin/linear").unwrap().contains(&"l2"));
    assert_eq!(builtin_keys("builtin/nope"), None);
    assert_eq!(builtin_required_keys("builtin/split"), Some(&["data"][..]));
    assert_eq!(
        builtin_required_keys("builtin/gbdt"),
        Some(&["train", "target"][..])
    );
    assert_eq!(
        builtin_required_keys("builtin/evaluate"),
        Some(&["model", "data", "target"][..])
    );
    // Every built-in the spec parser accepts can run.
    for b in Builtin::ALL {
        let name = format!("builtin/{}", b.as_str());
        let (keys, required) = (builtin_keys(&name), builtin_required_keys(&name));
        assert!(keys.is_some() && required.is_some(), "{name}");
    }
}

/// `y = 3·sin(a) + 2·[b > 5] + a·b / 10` plus a little noise; every 17th `b` is missing.
fn nonlinear_csv(path: &Path) {
    let mut text = String::from("a,b,y\n");
    for i in 0..600u64 {
        let (a, b) = ((i % 60) as f64 / 6.0, (i * 7 % 11) as f64);
        let y = 3.0 * a.sin() + 2.0 * f64::from(u8::from(b > 5.0)) + a * b / 10.0 + 0.2 * noise(i);
        let b = if i % 17 == 0 {
            String::new()
        } else {
            b.to_string()
        };
        writeln!(text, "{a},{b},{y}").unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Classes by distance from the origin: inside radius 3 (0), up to 5 (1), beyond (2). With
/// `binary`, only inside radius 4 (1) or not (0). Neither is linearly separable.
fn rings_csv(path: &Path, binary: bool) {
    let mut text = String::from("a,b,label\n");
    for i in 0..800u64 {
        let (a, b) = (
            (i % 40) as f64 / 4.0 - 5.0,
            (i * 13 % 41) as f64 / 4.0 - 5.0,
        );
        let r = (a * a + b * b).sqrt() + 0.2 * noise(i);
        let label = match (binary, r) {
            (true, r) => u8::from(r < 4.0),
            (false, r) if r < 3.0 => 0,
            (false, r) if r < 5.0 => 1,
            (false, _) => 2,
        };
        writeln!(text, "{a},{b},{label}").unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Splits `data`, trains `builtin/gbdt` with `params` on the train part and evaluates the
/// model on the test part; returns the training and evaluation metrics.
fn split_gbdt_evaluate(
    dir: &Path,
    data: &Path,
    target: &str,
    params: &[(&str, &str)],
) -> (Metrics, Metrics) {
    let split = dir.join("split");
    run(
        "builtin/split",
        &[("data", data.to_str().unwrap()), ("seed", "11")],
        &split,
    );
    let train = dir.join("train");
    let train_dir = split.join("train");
    let mut with = vec![("train", train_dir.to_str().unwrap()), ("target", target)];
    with.extend_from_slice(params);
    let fit = run("builtin/gbdt", &with, &train);
    assert!(train.join("model/MLmodel").is_file());
    assert!(train.join("model/model.onnx").is_file());
    assert_eq!(read_metrics(&train), fit);
    let eval = dir.join("evaluate");
    let metrics = run(
        "builtin/evaluate",
        &[
            ("model", train.join("model").to_str().unwrap()),
            ("data", split.join("test").to_str().unwrap()),
            ("target", target),
        ],
        &eval,
    );
    assert_eq!(read_metrics(&eval), metrics);
    (fit, metrics)
}

#[test]
fn split_gbdt_evaluate_regression() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("waves.csv");
    nonlinear_csv(&data);
    let (fit, metrics) = split_gbdt_evaluate(dir.path(), &data, "y", &[("n_trees", "150")]);
    assert_eq!(
        fit.keys().collect::<Vec<_>>(),
        ["training_mae", "training_r2", "training_rmse"],
        "{fit:?}"
    );
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["mae", "r2", "rmse"],
        "{metrics:?}"
    );
    assert!(metrics["r2"] > 0.8, "{metrics:?}");
    assert!(fit["training_r2"] >= metrics["r2"], "{fit:?} {metrics:?}");

    // The exported model, scored on the training data, agrees with the trainer's own
    // predictions up to the f32 precision of the ONNX file.
    let again = run(
        "builtin/evaluate",
        &[
            ("model", dir.path().join("train/model").to_str().unwrap()),
            ("data", dir.path().join("split/train").to_str().unwrap()),
            ("target", "y"),
        ],
        &dir.path().join("evaluate-train"),
    );
    for name in ["mae", "r2", "rmse"] {
        let (ours, exported) = (fit[&format!("training_{name}")], again[name]);
        assert!(
            (ours - exported).abs() < 1e-4,
            "{name}: {ours} vs {exported}"
        );
    }

    // A straight line cannot follow the sine: the trees are doing the work.
    let linear = dir.path().join("linear");
    let train = dir.path().join("split/train.csv");
    std::fs::write(
        &train,
        std::fs::read_to_string(dir.path().join("split/train/data.csv"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains(",,"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let fit = run(
        "builtin/linear",
        &[("train", train.to_str().unwrap()), ("target", "y")],
        &linear,
    );
    assert!(fit["training_r2"] < 0.8, "{fit:?}");
}

#[test]
fn split_gbdt_evaluate_binary_classification() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("disc.csv");
    rings_csv(&data, true);
    let (fit, metrics) = split_gbdt_evaluate(
        dir.path(),
        &data,
        "label",
        &[
            ("task", "classification"),
            ("max_depth", "4"),
            ("max_leaf_nodes", "none"),
            ("learning_rate", "0.2"),
        ],
    );
    assert_eq!(
        fit.keys().collect::<Vec<_>>(),
        ["training_accuracy", "training_auc", "training_f1"],
        "{fit:?}"
    );
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["accuracy", "auc", "f1"],
        "{metrics:?}"
    );
    assert!(metrics["accuracy"] > 0.85, "{metrics:?}");
    assert!(metrics["auc"] > 0.9, "{metrics:?}");
}

#[test]
fn split_gbdt_evaluate_multiclass_with_early_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rings.csv");
    rings_csv(&data, false);
    let (fit, metrics) = split_gbdt_evaluate(
        dir.path(),
        &data,
        "label",
        &[
            ("task", "classification"),
            ("early_stopping", "true"),
            ("n_iter_no_change", "5"),
            ("seed", "3"),
        ],
    );
    assert_eq!(
        fit.keys().collect::<Vec<_>>(),
        ["training_accuracy"],
        "{fit:?}"
    );
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["accuracy"],
        "{metrics:?}"
    );
    assert!(metrics["accuracy"] > 0.85, "{metrics:?}");
}

#[test]
fn gbdt_errors_name_the_key_value_or_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("waves.csv");
    nonlinear_csv(&data);
    let data = data.to_str().unwrap();
    let out = dir.path().join("out");
    let base = [("train", data), ("target", "y")];
    let with_base = |extra: (&'static str, &'static str)| {
        let mut w = base.to_vec();
        w.push(extra);
        w
    };
    assert_eq!(
        error("builtin/gbdt", &with_base(("task", "ranking")), &out),
        "builtin/gbdt: with key \"task\": \"ranking\" is not regression or classification"
    );
    assert_eq!(
        error("builtin/gbdt", &with_base(("max_depth", "deep")), &out),
        "builtin/gbdt: with key \"max_depth\": \"deep\" is not a non-negative integer or none"
    );
    assert_eq!(
        error("builtin/gbdt", &with_base(("early_stopping", "yes")), &out),
        "builtin/gbdt: with key \"early_stopping\": \"yes\" is not true or false"
    );
    assert_eq!(
        error("builtin/gbdt", &with_base(("n_trees", "0")), &out),
        "builtin/gbdt: invalid input: n_trees must be at least 1"
    );
    let err = error("builtin/gbdt", &with_base(("task", "classification")), &out);
    assert!(err.starts_with("builtin/gbdt: /"), "{err}");
    assert!(err.ends_with(
        "waves.csv: data row 1: target -0.1 is not a class index (0 and 1, or 0, 1, … below 1000)"
    ), "{err}");
    assert_eq!(
        error("builtin/gbdt", &with_base(("n_tress", "5")), &out),
        "builtin/gbdt: unknown with key(s) n_tress (accepted: train, target, task, n_trees, learning_rate, max_leaf_nodes, max_depth, min_samples_leaf, l2, early_stopping, validation_fraction, n_iter_no_change, seed, valid, holdout, train_fraction)"
    );
}

/// Keeps the lines of `from` whose index (0 = header) `keep` accepts, writing them to `to`.
fn filter_lines(from: &Path, to: &Path, keep: impl Fn(usize) -> bool) {
    let text: String = std::fs::read_to_string(from)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || keep(*i))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(to, text).unwrap();
}

#[test]
fn trainers_score_held_out_rows_as_valid_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("housing.csv");
    linear_csv(&data);
    let (train, valid) = (dir.path().join("train.csv"), dir.path().join("valid.csv"));
    filter_lines(&data, &train, |i| i % 4 != 0);
    filter_lines(&data, &valid, |i| i % 4 == 0);
    let (train, valid) = (train.to_str().unwrap(), valid.to_str().unwrap());

    let out = dir.path().join("with-valid");
    let fit = run(
        "builtin/linear",
        &[("train", train), ("target", "y"), ("valid", valid)],
        &out,
    );
    assert_eq!(
        fit.keys().collect::<Vec<_>>(),
        [
            "training_mae",
            "training_r2",
            "training_rmse",
            "valid_mae",
            "valid_r2",
            "valid_rmse"
        ]
    );
    // The held-out score is what evaluating the written model on those rows gives.
    let eval = run(
        "builtin/evaluate",
        &[
            ("model", out.join("model").to_str().unwrap()),
            ("data", valid),
            ("target", "y"),
        ],
        &dir.path().join("eval"),
    );
    for m in ["mae", "r2", "rmse"] {
        let (ours, evaluated) = (fit[&format!("valid_{m}")], eval[m]);
        assert!(
            (ours - evaluated).abs() < 1e-6,
            "{m}: {ours} vs {evaluated}"
        );
    }

    // `holdout` takes the held-out rows from `train`, the same ones for the same seed.
    let held = |seed: &str, tag: &str| {
        run(
            "builtin/gbdt",
            &[
                ("train", train),
                ("target", "y"),
                ("n_trees", "20"),
                ("holdout", "0.25"),
                ("seed", seed),
            ],
            &dir.path().join(tag),
        )
    };
    let (a, b, c) = (held("1", "a"), held("1", "b"), held("2", "c"));
    assert_eq!(a, b);
    assert_ne!(a["valid_rmse"], c["valid_rmse"]);
    assert!(a["valid_r2"] > 0.8, "{a:?}");

    // `train_fraction` fits a sample of the training rows, scored on the same held-out rows.
    let fraction = |f: &str, tag: &str| {
        run(
            "builtin/gbdt",
            &[
                ("train", train),
                ("target", "y"),
                ("n_trees", "20"),
                ("min_samples_leaf", "3"),
                ("valid", valid),
                ("train_fraction", f),
            ],
            &dir.path().join(tag),
        )
    };
    let (tenth, all) = (fraction("0.1", "tenth"), fraction("1", "all"));
    assert_ne!(tenth["valid_rmse"], all["valid_rmse"]);
    assert!(tenth["valid_rmse"] > all["valid_rmse"], "{tenth:?} {all:?}");

    let labels = dir.path().join("labels.csv");
    logistic_csv(&labels);
    let labels = labels.to_str().unwrap();
    let fit = run(
        "builtin/logistic",
        &[("train", labels), ("target", "label"), ("holdout", "0.3")],
        &dir.path().join("logistic"),
    );
    assert_eq!(
        fit.keys().collect::<Vec<_>>(),
        [
            "training_accuracy",
            "training_auc",
            "training_f1",
            "valid_accuracy",
            "valid_auc",
            "valid_f1"
        ]
    );
}

#[test]
fn held_out_rows_come_from_one_place_and_match_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("housing.csv");
    linear_csv(&data);
    let reordered = dir.path().join("reordered.csv");
    let text: String = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!("{},{},{}\n", c[2], c[1], c[0])
        })
        .collect();
    std::fs::write(&reordered, text).unwrap();
    let (data, reordered) = (data.to_str().unwrap(), reordered.to_str().unwrap());
    let out = dir.path().join("out");
    let same = run(
        "builtin/linear",
        &[("train", data), ("target", "y"), ("valid", data)],
        &out,
    );
    let moved = run(
        "builtin/linear",
        &[("train", data), ("target", "y"), ("valid", reordered)],
        &out,
    );
    assert_eq!(same, moved, "columns are matched by name");
    assert_eq!(same["valid_rmse"], same["training_rmse"]);

    assert_eq!(
        error(
            "builtin/linear",
            &[
                ("train", data),
                ("target", "y"),
                ("valid", data),
                ("holdout", "0.2")
            ],
            &out
        ),
        "builtin/linear: with keys \"valid\" and \"holdout\" cannot both be given: each names where the held-out rows come from"
    );
    let narrow = dir.path().join("narrow.csv");
    std::fs::write(&narrow, "a,y\n1,2\n").unwrap();
    let err = error(
        "builtin/linear",
        &[
            ("train", data),
            ("target", "y"),
            ("valid", narrow.to_str().unwrap()),
        ],
        &out,
    );
    assert!(
        err.contains("narrow.csv: no column \"b\", which the model takes as input"),
        "{err}"
    );
    let err = error(
        "builtin/gbdt",
        &[("train", data), ("target", "y"), ("holdout", "1.5")],
        &out,
    );
    assert!(
        err.contains("holdout must be strictly between 0 and 1"),
        "{err}"
    );
}

#[test]
fn a_stopped_gbdt_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("housing.csv");
    linear_csv(&data);
    let stop = std::sync::atomic::AtomicBool::new(true);
    let err = run_builtin_until(
        "builtin/gbdt",
        &with(&[("train", data.to_str().unwrap()), ("target", "y")]),
        &dir.path().join("out"),
        &stop,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "builtin/gbdt: training was stopped before it finished"
    );
}
