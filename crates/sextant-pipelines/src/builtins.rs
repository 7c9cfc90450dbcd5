//! The in-process built-in steps: `builtin/split`, `builtin/linear`, `builtin/logistic`
//! and `builtin/evaluate`.
//!
//! Each takes its `with` values already resolved to strings and an output root (the
//! step's `$SEXTANT_OUTPUT_DIR`), writes its outputs under it, and returns its metrics,
//! also written to `<out>/metrics.json`. They train and read files synchronously: call
//! them from a blocking pool, never on the async runtime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sextant_train::data::{Dataset, Matrix, load_csv, split_csv};
use sextant_train::onnx::TrainedModel;
use sextant_train::{TrainError, linear, logistic, metrics, mlflow_model};

/// Metric name to value, as a step reports them.
pub type Metrics = BTreeMap<String, f64>;

/// The file name of a data set inside an output directory (`<out>/train/data.csv`).
pub const DATA_FILE: &str = "data.csv";
/// The file a step's metrics are written to, inside its output root.
pub const METRICS_FILE: &str = "metrics.json";

const SPLIT_KEYS: &[&str] = &["data", "test_fraction", "seed"];
const LINEAR_KEYS: &[&str] = &["train", "target", "l2"];
const LOGISTIC_KEYS: &[&str] = &["train", "target", "C", "max_iter"];
const EVALUATE_KEYS: &[&str] = &["model", "data", "target"];

/// The `with` keys a built-in accepts, by its `uses:` name (`builtin/split`); `None` for a
/// name this module does not run.
pub fn builtin_keys(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "builtin/split" => Some(SPLIT_KEYS),
        "builtin/linear" => Some(LINEAR_KEYS),
        "builtin/logistic" => Some(LOGISTIC_KEYS),
        "builtin/evaluate" => Some(EVALUATE_KEYS),
        _ => None,
    }
}

/// Why a built-in step failed.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinError {
    /// The `uses:` name is not a built-in this module runs.
    #[error(
        "unknown built-in {0:?} (known: builtin/split, builtin/linear, builtin/logistic, builtin/evaluate)"
    )]
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
    /// A `with` value that must be a number is not one.
    #[error("{builtin}: with key {key:?}: {value:?} is not {expected}")]
    BadNumber {
        /// The built-in.
        builtin: String,
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What was expected, e.g. "a number".
        expected: &'static str,
    },
    /// The evaluation data lacks a column the model was trained on.
    #[error("{path}: no column {column:?}, which the model {model} takes as input")]
    MissingFeature {
        /// The evaluation data.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// The model directory.
        model: PathBuf,
    },
    /// The model directory holds a kind of model this step cannot score yet.
    #[error("builtin/evaluate: cannot score the model in {0} (supported: linear, logistic)")]
    UnsupportedModel(PathBuf),
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
}

/// Runs the built-in `name` with resolved `with` values, writing under `out` (created if
/// missing). Returns the step's metrics.
pub fn run_builtin(
    name: &str,
    with: &BTreeMap<String, String>,
    out: &Path,
) -> Result<Metrics, BuiltinError> {
    let accepted = builtin_keys(name).ok_or_else(|| BuiltinError::Unknown(name.to_owned()))?;
    let args = Args {
        builtin: name,
        with,
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
        "builtin/evaluate" => evaluate(&args, out)?,
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
            Some(value) => value.trim().parse().map_err(|_| BuiltinError::BadNumber {
                builtin: self.builtin.to_owned(),
                key,
                value: value.clone(),
                expected,
            }),
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
    let data = load(args, "train")?;
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
    regression_metrics(&data.target, &predicted, "training_")
        .map_err(&err)
        .map(Metrics::from_iter)
}

fn train_logistic(args: &Args<'_>, out: &Path) -> Result<Metrics, BuiltinError> {
    let data = load(args, "train")?;
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
    classification_metrics(&data.target, &proba, "training_")
        .map_err(&err)
        .map(Metrics::from_iter)
}

fn evaluate(args: &Args<'_>, _out: &Path) -> Result<Metrics, BuiltinError> {
    let model_dir = PathBuf::from(args.required("model")?);
    let err = args.train_err();
    let exported = mlflow_model::load(&model_dir).map_err(&err)?;
    let data_path = csv_path(args.required("data")?);
    let data = load(args, "data")?;
    let x = align_columns(&data, &exported.feature_names, &data_path, &model_dir)?;
    let metrics = match &exported.model {
        TrainedModel::Linear(m) => {
            regression_metrics(&data.target, &m.predict(&x).map_err(&err)?, "")
        }
        TrainedModel::Logistic(m) => {
            classification_metrics(&data.target, &m.predict_proba(&x).map_err(&err)?, "")
        }
        // GBDT (and any later kind sextant-train learns to read back) is not scored here
        // yet; the allow keeps this arm building whether or not such a variant exists.
        #[allow(unreachable_patterns)]
        _ => return Err(BuiltinError::UnsupportedModel(model_dir)),
    };
    metrics.map_err(&err).map(Metrics::from_iter)
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
/// another order still scores correctly.
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

/// Loads the CSV named by `with.<key>` with the target named by `with.target`.
fn load(args: &Args<'_>, key: &'static str) -> Result<Dataset, BuiltinError> {
    let path = csv_path(args.required(key)?);
    let target = args.required("target")?;
    load_csv(&path, target).map_err(args.train_err())
}

/// A data reference is a CSV file, or a directory holding [`DATA_FILE`] (what
/// `builtin/split` writes as each output).
fn csv_path(value: &str) -> PathBuf {
    let path = PathBuf::from(value);
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
