//! The in-process built-in steps: `builtin/split`, `builtin/linear`, `builtin/logistic`,
//! `builtin/gbdt` and `builtin/evaluate`.
//!
//! Each takes its `with` values already resolved to strings and an output root (the
//! step's `$SEXTANT_OUTPUT_DIR`), writes its outputs under it, and returns its metrics,
//! also written to `<out>/metrics.json`. They train and read files synchronously: call
//! them from a blocking pool, never on the async runtime.
//!
//! The trainers log `training_*` metrics on the rows they fitted. Given held-out rows —
//! `valid` (a CSV, or a directory holding [`DATA_FILE`]) or `holdout` (a fraction of
//! `train`, picked by a shuffle seeded with `seed`) — they also log the same metrics on
//! those rows as `valid_*`, which is what `tune:` scores trials by. `train_fraction` fits
//! on a seeded sample of the remaining training rows (the budget of successive halving).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sextant_gbdt::{EarlyStopping, EnsembleKind, Gbdt, GbdtError, Objective, Params};
use sextant_train::data::{Dataset, Matrix, load_csv, load_csv_with_missing, split_csv};
use sextant_train::onnx::TrainedModel;
use sextant_train::{TrainError, linear, logistic, metrics, mlflow_model};

/// Metric name to value, as a step reports them.
pub type Metrics = BTreeMap<String, f64>;

/// The file name of a data set inside an output directory (`<out>/train/data.csv`).
pub const DATA_FILE: &str = "data.csv";
/// The file a step's metrics are written to, inside its output root.
pub const METRICS_FILE: &str = "metrics.json";

/// Each built-in's `uses:` name, the `with` keys it accepts and, first among them, those it
/// requires.
const BUILTINS: &[(&str, &[&str], usize)] = &[
    ("builtin/split", &["data", "test_fraction", "seed"], 1),
    (
        "builtin/linear",
        &[
            "train",
            "target",
            "l2",
            "valid",
            "holdout",
            "train_fraction",
            "seed",
        ],
        2,
    ),
    (
        "builtin/logistic",
        &[
            "train",
            "target",
            "C",
            "max_iter",
            "valid",
            "holdout",
            "train_fraction",
            "seed",
        ],
        2,
    ),
    (
        "builtin/gbdt",
        &[
            "train",
            "target",
            "task",
            "n_trees",
            "learning_rate",
            "max_leaf_nodes",
            "max_depth",
            "min_samples_leaf",
            "l2",
            "early_stopping",
            "validation_fraction",
            "n_iter_no_change",
            "seed",
            "valid",
            "holdout",
            "train_fraction",
        ],
        2,
    ),
    ("builtin/evaluate", &["model", "data", "target"], 3),
    ("builtin/baseline", &["data", "model", "target"], 1),
];

/// The `n_trees` of `builtin/gbdt` when `with` does not set it.
pub const GBDT_DEFAULT_TREES: usize = 100;

/// More classes than this is taken for a mistaken `task: classification` on a numeric
/// target, which would otherwise grow one tree per class value per iteration.
const MAX_CLASSES: usize = 1000;

/// The `with` keys a built-in accepts, by its `uses:` name (`builtin/split`); `None` for a
/// name this module does not run.
pub fn builtin_keys(name: &str) -> Option<&'static [&'static str]> {
    BUILTINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, keys, _)| *keys)
}

/// The `with` keys a built-in cannot run without, by its `uses:` name; `None` for a name this
/// module does not run.
pub fn builtin_required_keys(name: &str) -> Option<&'static [&'static str]> {
    BUILTINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, keys, required)| &keys[..*required])
}

/// The `uses:` names of every built-in this module runs, comma-separated.
fn known_builtins() -> String {
    let names: Vec<&str> = BUILTINS.iter().map(|(n, _, _)| *n).collect();
    names.join(", ")
}

/// Why a built-in step failed.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinError {
    /// The `uses:` name is not a built-in this module runs.
    #[error("unknown built-in {0:?} (known: {known})", known = known_builtins())]
    Unknown(String),
    /// `with` holds keys the built-in does not take.
    #[error("{builtin}: unknown with key(s) {} (accepted: {})", keys.join(", "), accepted.join(", "))]
    UnknownKeys {
        /// The built-in.
        builtin: String,
        /// The keys not accepted, sorted.
        keys: Vec<String>,
        /// The keys it accepts.
        accepted: &'static [&'static str],
    },
    /// A required `with` key is absent.
    #[error("{builtin}: missing required with key {key:?}")]
    MissingKey {
        /// The built-in.
        builtin: String,
        /// The key.
        key: &'static str,
    },
    /// A `with` value is not of the form its key takes (a number, a boolean, one of a few
    /// words).
    #[error("{builtin}: with key {key:?}: {value:?} is not {expected}")]
    BadValue {
        /// The built-in.
        builtin: String,
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What was expected, e.g. "a number".
        expected: &'static str,
    },
    /// The evaluation or validation data lacks a column the model is trained on.
    #[error("{path}: no column {column:?}, which the model takes as input (from {model})")]
    MissingFeature {
        /// The evaluation or validation data.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// Where the model's columns come from: its directory, or the training data.
        model: PathBuf,
    },
    /// A classification target holds something other than a class index.
    #[error(
        "builtin/gbdt: {path}: data row {row}: target {value} is not a class index (0 and 1, or 0, 1, … below {MAX_CLASSES})"
    )]
    BadLabel {
        /// The training data.
        path: PathBuf,
        /// The data row, from 1 (the header is not counted).
        row: usize,
        /// The target value.
        value: f64,
    },
    /// `with` holds two keys that cannot go together.
    #[error("{builtin}: with keys {first:?} and {second:?} cannot both be given: {why}")]
    Conflict {
        /// The built-in.
        builtin: String,
        /// The first key.
        first: &'static str,
        /// The second key.
        second: &'static str,
        /// Why not.
        why: &'static str,
    },
    /// An output could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The IO failure.
        #[source]
        source: std::io::Error,
    },
    /// Loading data, training, evaluating or saving the model failed.
    #[error("{builtin}: {source}")]
    Train {
        /// The built-in.
        builtin: String,
        /// The failure.
        #[source]
        source: TrainError,
    },
    /// Training or scoring gradient-boosted trees failed.
    #[error("{builtin}: {source}")]
    Gbdt {
        /// The built-in.
        builtin: String,
        /// The failure.
        #[source]
        source: GbdtError,
    },
}

/// Runs the built-in `name` with resolved `with` values, writing under `out` (created if
/// missing). Returns the step's metrics.
pub fn run_builtin(
    name: &str,
    with: &BTreeMap<String, String>,
    out: &Path,
) -> Result<Metrics, BuiltinError> {
    run_builtin_until(name, with, out, &AtomicBool::new(false))
}

/// [`run_builtin`] that gives up once `stop` is set: gradient boosting checks it before
/// every iteration (the other built-ins are short and run to the end).
pub fn run_builtin_until(
    name: &str,
    with: &BTreeMap<String, String>,
    out: &Path,
    stop: &AtomicBool,
) -> Result<Metrics, BuiltinError> {
    let accepted = builtin_keys(name).ok_or_else(|| BuiltinError::Unknown(name.to_owned()))?;
    let args = Args {
        builtin: name,
        with,
        stop,
    };
    let unknown: Vec<String> = with
        .keys()
        .filter(|k| !accepted.contains(&k.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(BuiltinError::UnknownKeys {
            builtin: name.to_owned(),
            keys: unknown,
            accepted,
        });
    }
    create_dir(out)?;
    let metrics = match name {
        "builtin/split" => split(&args, out)?,
        "builtin/linear" => train_linear(&args, out)?,
        "builtin/logistic" => train_logistic(&args, out)?,
        "builtin/gbdt" => train_gbdt(&args, out)?,
        "builtin/evaluate" => evaluate(&args, out)?,
        "builtin/baseline" => baseline(&args, out)?,
        _ => unreachable!("builtin_keys accepted {name}"),
    };
    let path = out.join(METRICS_FILE);
    let json = serde_json::to_string_pretty(&metrics).expect("a map of floats serializes");
    std::fs::write(&path, json).map_err(|source| BuiltinError::Io { path, source })?;
    Ok(metrics)
}

/// The `with` values of one invocation, with typed accessors whose errors name the key.
struct Args<'a> {
    builtin: &'a str,
    with: &'a BTreeMap<String, String>,
    stop: &'a AtomicBool,
}

impl Args<'_> {
    fn required(&self, key: &'static str) -> Result<&str, BuiltinError> {
        self.with
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| BuiltinError::MissingKey {
                builtin: self.builtin.to_owned(),
                key,
            })
    }

    fn number<T: std::str::FromStr>(
        &self,
        key: &'static str,
        default: T,
        expected: &'static str,
    ) -> Result<T, BuiltinError> {
        match self.with.get(key) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| self.bad_value(key, expected)),
        }
    }

    /// A number that may also be `none` (or YAML's `null` and `~`) for no limit.
    fn limit(
        &self,
        key: &'static str,
        default: Option<usize>,
    ) -> Result<Option<usize>, BuiltinError> {
        match self.with.get(key).map(|v| v.trim()) {
            None => Ok(default),
            Some("none" | "None" | "null" | "~") => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|_| self.bad_value(key, "a non-negative integer or none")),
        }
    }

    fn flag(&self, key: &'static str, default: bool) -> Result<bool, BuiltinError> {
        match self.with.get(key).map(|v| v.trim()) {
            None => Ok(default),
            Some("true" | "True") => Ok(true),
            Some("false" | "False") => Ok(false),
            Some(_) => Err(self.bad_value(key, "true or false")),
        }
    }

    fn bad_value(&self, key: &'static str, expected: &'static str) -> BuiltinError {
        BuiltinError::BadValue {
            builtin: self.builtin.to_owned(),
            key,
            value: self.with.get(key).cloned().unwrap_or_default(),
            expected,
        }
    }

    fn gbdt_err(&self) -> impl Fn(GbdtError) -> BuiltinError + '_ {
        |source| BuiltinError::Gbdt {
            builtin: self.builtin.to_owned(),
            source,
        }
    }

    fn train_err(&self) -> impl Fn(TrainError) -> BuiltinError + '_ {
        |source| BuiltinError::Train {
            builtin: self.builtin.to_owned(),
            source,
        }
    }
}

fn split(args: &Args<'_>, out: &Path) -> Result<Metrics, BuiltinError> {
    let data = csv_path(args.required("data")?);
    let test_fraction = args.number("test_fraction", 0.2, "a number")?;
    let seed = args.number("seed", 0u64, "a non-negative integer")?;
    let (train_dir, test_dir) = (out.join("train"), out.join("test"));
    create_dir(&train_dir)?;
    create_dir(&test_dir)?;
    let counts = split_csv(
        &data,
        test_fraction,
        seed,
        &train_dir.join(DATA_FILE),
        &test_dir.join(DATA_FILE),
    )
    .map_err(args.train_err())?;
    Ok(Metrics::from([
        ("train_rows".to_owned(), counts.train as f64),
        ("test_rows".to_owned(), counts.test as f64),
    ]))
}

fn train_linear(args: &Args<'_>, out: &Path) -> Result<Metrics, BuiltinError> {
    let Rows { train: data, valid } = training_rows(args, load_csv)?;
    let params = linear::LinearParams {
        l2: args.number("l2", 0.0, "a number")?,
    };
    let err = args.train_err();
    let model = linear::fit(&data.features, &data.target, &params).map_err(&err)?;
    let predicted = model.predict(&data.features).map_err(&err)?;
    mlflow_model::save_linear(
        &out.join("model"),
        &model,
        &data.feature_names,
        &data.features,
    )
    .map_err(&err)?;
    let mut metrics = regression_metrics(&data.target, &predicted, "training_").map_err(&err)?;
    if let Some(v) = valid {
        let predicted = model.predict(&v.features).map_err(&err)?;
        metrics.extend(regression_metrics(&v.target, &predicted, VALID_PREFIX).map_err(&err)?);
    }
    Ok(Metrics::from_iter(metrics))
}

fn train_logistic(args: &Args<'_>, out: &Path) -> Result<Metrics, BuiltinError> {
    let Rows { train: data, valid } = training_rows(args, load_csv)?;
    let params = logistic::LogisticParams {
        c: args.number("C", 1.0, "a number")?,
        max_iter: args.number("max_iter", 100usize, "a non-negative integer")?,
    };
    let err = args.train_err();
    let model = logistic::fit(&data.features, &data.target, &params).map_err(&err)?;
    let proba = model.predict_proba(&data.features).map_err(&err)?;
    mlflow_model::save_logistic(
        &out.join("model"),
        &model,
        &data.feature_names,
        &data.features,
    )
    .map_err(&err)?;
    let mut metrics = classification_metrics(&data.target, &proba, "training_").map_err(&err)?;
    if let Some(v) = valid {
        let proba = model.predict_proba(&v.features).map_err(&err)?;
        metrics.extend(classification_metrics(&v.target, &proba, VALID_PREFIX).map_err(&err)?);
    }
    Ok(Metrics::from_iter(metrics))
}

fn train_gbdt(args: &Args<'_>, out: &Path) -> Result<Metrics, BuiltinError> {
    let path = csv_path(args.required("train")?);
    let Rows { train: data, valid } = training_rows(args, load_csv_with_missing)?;
    let objective = match args.with.get("task").map(|t| t.trim()) {
        None | Some("regression") => Objective::Regression,
        Some("classification") => class_objective(&data.target, &path)?,
        Some(_) => return Err(args.bad_value("task", "regression or classification")),
    };
    let early_stopping = if args.flag("early_stopping", false)? {
        Some(EarlyStopping {
            validation_fraction: args.number("validation_fraction", 0.1, "a number")?,
            n_iter_no_change: args.number("n_iter_no_change", 10usize, "a positive integer")?,
            seed: args.number("seed", 0u64, "a non-negative integer")?,
            ..EarlyStopping::default()
        })
    } else {
        None
    };
    let params = Params {
        objective,
        n_trees: args.number("n_trees", GBDT_DEFAULT_TREES, "a positive integer")?,
        learning_rate: args.number("learning_rate", 0.1, "a number")?,
        max_leaf_nodes: args.limit("max_leaf_nodes", Some(31))?,
        max_depth: args.limit("max_depth", None)?,
        min_samples_leaf: args.number("min_samples_leaf", 20usize, "a positive integer")?,
        l2_regularization: args.number("l2", 0.0, "a number")?,
        early_stopping,
        ..Params::default()
    };
    let x = &data.features;
    let stop = || args.stop.load(Ordering::Relaxed);
    let model = Gbdt::fit_until(&params, x.as_slice(), x.cols(), &data.target, &stop)
        .map_err(args.gbdt_err())?;
    let predicted = model.predict(x.as_slice()).map_err(args.gbdt_err())?;
    let err = args.train_err();
    mlflow_model::save_gbdt(&out.join("model"), &model, &data.feature_names, x).map_err(&err)?;
    let task = match objective {
        Objective::Regression => Task::Regression,
        Objective::Binary => Task::Binary,
        Objective::Multiclass { n_classes } => Task::Multiclass(n_classes),
    };
    let mut metrics = task_metrics(task, &data.target, &predicted, "training_").map_err(&err)?;
    if let Some(v) = valid {
        let predicted = model
            .predict(v.features.as_slice())
            .map_err(args.gbdt_err())?;
        metrics.extend(task_metrics(task, &v.target, &predicted, VALID_PREFIX).map_err(&err)?);
    }
    Ok(Metrics::from_iter(metrics))
}

/// The prefix of the metrics a trainer logs on held-out rows.
pub const VALID_PREFIX: &str = "valid_";

/// The rows a trainer fits, and the held-out rows it is scored on, if any.
struct Rows {
    train: Dataset,
    valid: Option<Dataset>,
}

/// Loads `with.train` with `loader`, then takes the held-out rows from `with.valid` (its
/// columns matched to the training columns by name) or `with.holdout`, and keeps a
/// `with.train_fraction` sample of the rest; both draws are seeded with `with.seed`.
fn training_rows(
    args: &Args<'_>,
    loader: fn(&Path, &str) -> sextant_train::Result<Dataset>,
) -> Result<Rows, BuiltinError> {
    let err = args.train_err();
    let path = csv_path(args.required("train")?);
    let target = args.required("target")?;
    let data = loader(&path, target).map_err(&err)?;
    let seed = args.number("seed", 0u64, "a non-negative integer")?;
    let (train, valid) = match (args.with.get("valid"), args.with.contains_key("holdout")) {
        (Some(_), true) => {
            return Err(BuiltinError::Conflict {
                builtin: args.builtin.to_owned(),
                first: "valid",
                second: "holdout",
                why: "each names where the held-out rows come from",
            });
        }
        (Some(v), false) => {
            let v_path = csv_path(v);
            let raw = loader(&v_path, target).map_err(&err)?;
            let features = align_columns(&raw, &data.feature_names, &v_path, &path)?;
            let valid = Dataset {
                feature_names: data.feature_names.clone(),
                features,
                ..raw
            };
            (data, Some(valid))
        }
        (None, true) => {
            let fraction = args.number("holdout", 0.0, "a number")?;
            let (train, valid) =
                sextant_train::data::holdout(&data, fraction, seed).map_err(&err)?;
            (train, Some(valid))
        }
        (None, false) => (data, None),
    };
    let train = match args.with.get("train_fraction") {
        None => train,
        Some(_) => {
            let fraction = args.number("train_fraction", 1.0, "a number")?;
            sextant_train::data::sample(&train, fraction, seed).map_err(&err)?
        }
    };
    Ok(Rows { train, valid })
}

/// The objective for class labels `y`: binary when they are all 0 or 1, else multiclass over
/// `0..K` where `K - 1` is the largest label.
fn class_objective(y: &[f64], path: &Path) -> Result<Objective, BuiltinError> {
    let bad = y
        .iter()
        .position(|&v| v.fract() != 0.0 || !(0.0..MAX_CLASSES as f64).contains(&v));
    if let Some(row) = bad {
        return Err(BuiltinError::BadLabel {
            path: path.to_owned(),
            row: row + 1,
            value: y[row],
        });
    }
    // Every label is a whole number in 0..MAX_CLASSES, so the cast is exact.
    let largest = y.iter().copied().fold(0.0, f64::max) as usize;
    Ok(if largest <= 1 {
        Objective::Binary
    } else {
        Objective::Multiclass {
            n_classes: largest + 1,
        }
    })
}

fn evaluate(args: &Args<'_>, _out: &Path) -> Result<Metrics, BuiltinError> {
    let model_dir = PathBuf::from(args.required("model")?);
    let err = args.train_err();
    let exported = mlflow_model::load(&model_dir).map_err(&err)?;
    let data_path = csv_path(args.required("data")?);
    let target = args.required("target")?;
    // Trees route missing values; the linear models would turn them into NaN scores.
    let data = match exported.model {
        TrainedModel::Gbdt(_) => load_csv_with_missing(&data_path, target),
        TrainedModel::Linear(_) | TrainedModel::Logistic(_) => load_csv(&data_path, target),
    }
    .map_err(&err)?;
    let x = align_columns(&data, &exported.feature_names, &data_path, &model_dir)?;
    let metrics = match &exported.model {
        TrainedModel::Linear(m) => task_metrics(
            Task::Regression,
            &data.target,
            &m.predict(&x).map_err(&err)?,
            "",
        ),
        TrainedModel::Logistic(m) => {
            classification_metrics(&data.target, &m.predict_proba(&x).map_err(&err)?, "")
        }
        TrainedModel::Gbdt(ensemble) => {
            let task = match (ensemble.kind, ensemble.classlabels_int64s.len()) {
                (EnsembleKind::Regressor, _) => Task::Regression,
                (EnsembleKind::Classifier, 2) => Task::Binary,
                (EnsembleKind::Classifier, k) => Task::Multiclass(k),
            };
            let scores = ensemble
                .evaluate(x.as_slice(), x.cols())
                .map_err(args.gbdt_err())?;
            task_metrics(task, &data.target, &scores, "")
        }
    };
    metrics.map_err(&err).map(Metrics::from_iter)
}

/// What a tree model predicts, which decides the layout of its outputs and its metrics.
#[derive(Clone, Copy)]
enum Task {
    /// One value per row.
    Regression,
    /// The probabilities of classes 0 and 1, per row.
    Binary,
    /// The probability of each of this many classes, per row.
    Multiclass(usize),
}

/// Regression metrics, binary classification metrics from the probability of class 1, or
/// the accuracy of the most probable class, of `predicted` laid out as [`Task`] says.
fn task_metrics(
    task: Task,
    y: &[f64],
    predicted: &[f64],
    prefix: &str,
) -> Result<Vec<(String, f64)>, TrainError> {
    match task {
        Task::Regression => regression_metrics(y, predicted, prefix),
        Task::Binary => {
            let proba: Vec<f64> = predicted.iter().skip(1).step_by(2).copied().collect();
            classification_metrics(y, &proba, prefix)
        }
        Task::Multiclass(k) => {
            let labels: Vec<f64> = predicted
                .chunks_exact(k.max(1))
                .map(|p| {
                    let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]));
                    best.unwrap_or(0) as f64
                })
                .collect();
            Ok(vec![(
                format!("{prefix}accuracy"),
                metrics::accuracy(y, &labels)?,
            )])
        }
    }
}

fn regression_metrics(
    y: &[f64],
    predicted: &[f64],
    prefix: &str,
) -> Result<Vec<(String, f64)>, TrainError> {
    Ok(vec![
        (format!("{prefix}rmse"), metrics::rmse(y, predicted)?),
        (format!("{prefix}mae"), metrics::mae(y, predicted)?),
        (format!("{prefix}r2"), metrics::r2(y, predicted)?),
    ])
}

/// Accuracy and F1 at the 0.5 threshold the exported model uses, and ROC AUC.
fn classification_metrics(
    y: &[f64],
    proba: &[f64],
    prefix: &str,
) -> Result<Vec<(String, f64)>, TrainError> {
    let labels: Vec<f64> = proba.iter().map(|&p| f64::from(p > 0.5)).collect();
    Ok(vec![
        (format!("{prefix}accuracy"), metrics::accuracy(y, &labels)?),
        (format!("{prefix}f1"), metrics::f1(y, &labels)?),
        (format!("{prefix}auc"), metrics::roc_auc(y, proba)?),
    ])
}

/// The features of `data` in the model's column order, so a CSV whose columns are in
/// another order still scores correctly. `model` names what takes these columns (a model
/// directory, or the training data) in the error for a missing one.
fn align_columns(
    data: &Dataset,
    names: &[String],
    path: &Path,
    model: &Path,
) -> Result<Matrix, BuiltinError> {
    let index: Vec<usize> = names
        .iter()
        .map(|name| {
            data.feature_names
                .iter()
                .position(|f| f == name)
                .ok_or_else(|| BuiltinError::MissingFeature {
                    path: path.to_owned(),
                    column: name.clone(),
                    model: model.to_owned(),
                })
        })
        .collect::<Result<_, _>>()?;
    let x = &data.features;
    let values = (0..x.rows())
        .flat_map(|r| index.iter().map(move |&c| x.row(r)[c]))
        .collect();
    Matrix::new(x.rows(), index.len(), values).map_err(|source| BuiltinError::Train {
        builtin: "builtin/evaluate".to_owned(),
        source,
    })
}

/// `builtin/baseline`: profiles `data` into SageMaker Model Monitor's
/// `statistics.json` and suggested `constraints.json` under the output
/// `baseline`; with `model`, the output `model` is that model directory with
/// the baseline in its `baseline/` folder, so the registered model carries the
/// baseline its monitors compare against.
fn baseline(args: &Args<'_>, out: &Path) -> Result<Metrics, BuiltinError> {
    let data = csv_path(args.required("data")?);
    let dir = out.join("baseline");
    let bad = |message: String| BuiltinError::Io {
        path: data.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    };
    // The label is in the training data but not in the requests a monitor sees.
    let exclude: Vec<&str> = args
        .with
        .get("target")
        .map(String::as_str)
        .into_iter()
        .collect();
    let written = sextant_monitor::sagemaker::write_baseline(&data, &dir, &exclude).map_err(bad)?;
    if let Some(model) = args.with.get("model") {
        let model = PathBuf::from(model);
        if !model.join("MLmodel").is_file() {
            return Err(args.bad_value("model", "an MLflow model directory (with an MLmodel file)"));
        }
        let target = out.join("model");
        copy_dir(&model, &target)?;
        copy_dir(&dir, &target.join("baseline"))?;
    }
    Ok(Metrics::from([
        (
            "baseline_rows".to_owned(),
            written["rows"].as_f64().unwrap_or(0.0),
        ),
        (
            "baseline_features".to_owned(),
            written["features"].as_f64().unwrap_or(0.0),
        ),
    ]))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), BuiltinError> {
    create_dir(to)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BuiltinError::Io { path, source }
    };
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io(&src))?;
        }
    }
    Ok(())
}

/// The `with` keys whose values name files or directories a built-in reads on its host:
/// data sets (`data`, `train`, `valid`) and model directories (`model`).
pub const PATH_KEYS: &[&str] = &["data", "train", "valid", "model"];

/// The host paths a built-in will read, from its resolved `with` values, as it opens
/// them (a data directory's [`DATA_FILE`]), so a server can confine them before running
/// it.
pub fn input_paths(with: &BTreeMap<String, String>) -> Vec<(&'static str, PathBuf)> {
    PATH_KEYS
        .iter()
        .filter_map(|&key| {
            let value = with.get(key)?;
            Some(match key {
                "model" => (
                    key,
                    PathBuf::from(value.strip_prefix("file://").unwrap_or(value)),
                ),
                _ => (key, csv_path(value)),
            })
        })
        .collect()
}

/// A data reference is a CSV file, or a directory holding [`DATA_FILE`] (what
/// `builtin/split` writes as each output).
fn csv_path(value: &str) -> PathBuf {
    let path = PathBuf::from(value.strip_prefix("file://").unwrap_or(value));
    if path.is_dir() {
        path.join(DATA_FILE)
    } else {
        path
    }
}

fn create_dir(path: &Path) -> Result<(), BuiltinError> {
    std::fs::create_dir_all(path).map_err(|source| BuiltinError::Io {
        path: path.to_owned(),
        source,
    })
}
