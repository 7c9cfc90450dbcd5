//! MLflow model directories holding an ONNX model: what `mlflow.onnx.save_model` writes,
//! so `mlflow.pyfunc.load_model` and the `onnx` flavor's loader both accept them.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sextant_gbdt::{Gbdt, Objective};

use crate::data::Matrix;
use crate::linear::LinearModel;
use crate::logistic::LogisticModel;
use crate::onnx::{self, pb};
use crate::onnx_trees;
use crate::{Result, TrainError};

/// The MLflow release whose `MLmodel` layout this module reproduces and that the tests load
/// the directories with; `mlflow_version` and the environment files pin it.
pub const MLFLOW_VERSION: &str = "3.17.2";
/// Python of the environment the model was checked against (the `python_function` flavor
/// and `python_env.yaml` record it, as mlflow records the interpreter that saved a model).
pub const PYTHON_VERSION: &str = "3.11.7";
/// `onnx` package version recorded in the `onnx` flavor and the requirements.
pub const ONNX_VERSION: &str = "1.23.2";
const REQUIREMENTS: [&str; 4] = [
    "mlflow==3.17.2",
    "numpy==2.4.6",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
];
/// Rows of the training data kept as the input example.
const EXAMPLE_ROWS: usize = 5;

/// What [`save_linear`], [`save_logistic`] and [`save_gbdt`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedModel {
    /// The model directory.
    pub dir: PathBuf,
    /// The `model_uuid` recorded in `MLmodel`.
    pub model_uuid: String,
}

/// Writes a linear regressor to `dir` (created if missing; existing files of the same
/// names are replaced). `feature_names` name the input columns in order; `example`
/// supplies the input example, its first few rows.
pub fn save_linear(
    dir: &Path,
    model: &LinearModel,
    feature_names: &[String],
    example: &Matrix,
) -> Result<SavedModel> {
    let output = tensor_spec(Some(onnx::REGRESSION_OUTPUT), "float32", &[-1, 1]);
    let proto = onnx::linear_regressor(model, feature_names)?;
    let inputs = column_signature(feature_names, example)?;
    save(dir, &proto, inputs, json!([output]), example)
}

/// Writes a binary logistic classifier to `dir`; see [`save_linear`]. Its outputs are
/// `label` and `probabilities` (one map per row from class to probability).
pub fn save_logistic(
    dir: &Path,
    model: &LogisticModel,
    feature_names: &[String],
    example: &Matrix,
) -> Result<SavedModel> {
    let proto = onnx::logistic_classifier(model, feature_names)?;
    let inputs = column_signature(feature_names, example)?;
    save(dir, &proto, inputs, classifier_output_schema(), example)
}

/// Writes a gradient-boosted tree model to `dir`; see [`save_linear`]. A regressor has the
/// `variable [N, 1]` output, a classifier `label [N]` and `probabilities` (one map per row
/// from class to probability). Rows with missing values are used for the input example only
/// when there are too few complete ones, because JSON has no `NaN` (they are written as
/// `null`).
pub fn save_gbdt(
    dir: &Path,
    model: &Gbdt,
    feature_names: &[String],
    example: &Matrix,
) -> Result<SavedModel> {
    let outputs = match model.objective() {
        Objective::Regression => json!([tensor_spec(
            Some(onnx::REGRESSION_OUTPUT),
            "float32",
            &[-1, 1]
        )]),
        Objective::Binary | Objective::Multiclass { .. } => classifier_output_schema(),
    };
    let inputs = column_signature(feature_names, example)?;
    let proto = onnx_trees::gbdt_model(model, feature_names)?;
    save(dir, &proto, inputs, outputs, &complete_rows_first(example)?)
}

/// The first [`EXAMPLE_ROWS`] rows of `m` without `NaN`, topped up with rows that have some.
fn complete_rows_first(m: &Matrix) -> Result<Matrix> {
    let (complete, partial): (Vec<usize>, Vec<usize>) =
        (0..m.rows()).partition(|&i| m.row(i).iter().all(|v| !v.is_nan()));
    let rows: Vec<usize> = complete
        .into_iter()
        .chain(partial)
        .take(EXAMPLE_ROWS)
        .collect();
    let values = rows.iter().flat_map(|&i| m.row(i)).copied().collect();
    Matrix::new(rows.len(), m.cols(), values)
}

/// Reads back the model of a directory written by [`save_linear`], [`save_logistic`] or
/// [`save_gbdt`].
pub fn load(dir: &Path) -> Result<onnx::ExportedModel> {
    let path = dir.join("model.onnx");
    let bytes = std::fs::read(&path).map_err(|e| TrainError::io(path, e))?;
    onnx::read(&bytes)
}

fn save(
    dir: &Path,
    model: &pb::ModelProto,
    inputs: Value,
    outputs: Value,
    example: &Matrix,
) -> Result<SavedModel> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let write = |name: &str, content: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| TrainError::io(path, e))
    };
    write("model.onnx", &onnx::to_bytes(model))?;

    // A column signature's example is a table in pandas' split orient, as MLflow stores a
    // DataFrame example (`long` columns as integers); a tensor signature's is the array.
    // Numbers are the float32 values the model will actually see.
    let columns: Option<Vec<(&Value, bool)>> = inputs.as_array().and_then(|cols| {
        cols.iter()
            .map(|c| (c["type"] != "tensor").then(|| (&c["name"], c["type"] == "long")))
            .collect()
    });
    let rows: Vec<Vec<Value>> = (0..example.rows().min(EXAMPLE_ROWS))
        .map(|i| {
            example
                .row(i)
                .iter()
                .enumerate()
                .map(|(c, &v)| {
                    let long = columns.as_ref().is_some_and(|cols| cols[c].1);
                    if long {
                        json!(v as i64)
                    } else {
                        json!(f64::from(v as f32))
                    }
                })
                .collect()
        })
        .collect();
    let (example_json, serving, kind) = match &columns {
        Some(cols) => {
            let names: Vec<&Value> = cols.iter().map(|(n, _)| *n).collect();
            let table = json!({"columns": names, "data": rows});
            let serving = json!({ "dataframe_split": table });
            (table, serving, "dataframe")
        }
        None => (json!(rows), json!({ "inputs": rows }), "ndarray"),
    };
    write("input_example.json", example_json.to_string().as_bytes())?;
    let serving =
        serde_json::to_string_pretty(&serving).expect("serializing JSON values cannot fail");
    write("serving_input_example.json", serving.as_bytes())?;

    let model_uuid = uuid::Uuid::new_v4().simple().to_string();
    let created = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f");
    write(
        "MLmodel",
        mlmodel_yaml(&inputs, &outputs, kind, &model_uuid, &created.to_string()).as_bytes(),
    )?;
    write("requirements.txt", REQUIREMENTS.join("\n").as_bytes())?;
    write("python_env.yaml", python_env_yaml().as_bytes())?;
    write("conda.yaml", conda_yaml().as_bytes())?;
    Ok(SavedModel {
        dir: dir.to_owned(),
        model_uuid,
    })
}

/// The column signature of the model's input: each feature by name, `long` when every
/// training value of it is an integer (what pandas reads a column of integers as), else
/// `double`. Matching by name is what makes `mlflow.pyfunc` and the scoring server (and
/// Sextant's) put a request's columns in the model's order, whatever order they come in;
/// MLflow's `onnx` flavor then feeds the columns' values to the graph's one `float32` input,
/// casting `float64` to `float32`. When every feature would be `long`, all are declared
/// `double` instead: the flavor casts only `float64`, so an all-`int64` table would reach the
/// `float32` input uncast and onnxruntime would refuse it.
fn column_signature(feature_names: &[String], training: &Matrix) -> Result<Value> {
    if feature_names.len() != training.cols() {
        return Err(TrainError::LengthMismatch {
            what: "feature names and training columns",
            left: feature_names.len(),
            right: training.cols(),
        });
    }
    let integer: Vec<bool> = (0..training.cols())
        .map(|c| {
            training.rows() > 0
                && (0..training.rows()).all(|r| {
                    let v = training.row(r)[c];
                    v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15
                })
        })
        .collect();
    let all_integer = integer.iter().all(|&i| i);
    let columns: Vec<Value> = feature_names
        .iter()
        .zip(integer)
        .map(|(name, integer)| {
            let ty = if integer && !all_integer {
                "long"
            } else {
                "double"
            };
            json!({"type": ty, "name": name, "required": true})
        })
        .collect();
    Ok(Value::Array(columns))
}

/// A classifier's output schema, what `mlflow.models.infer_signature` gives for what the
/// `onnx` flavor predicts on a table: a DataFrame of `label` and of `probabilities` maps with
/// integer keys, which MLflow's schema cannot describe (map keys are strings there), so it
/// falls back to one column of type `any`. The maps are why a classifier can have a column
/// signature at all: with `label [N]` beside a `probabilities [N, K]` tensor the flavor's
/// DataFrame could not be formed ("All arrays must be of the same length").
fn classifier_output_schema() -> Value {
    json!([{"type": "any", "required": true}])
}

/// An MLflow tensor spec, as `mlflow.types.TensorSpec.to_dict` gives it.
fn tensor_spec(name: Option<&str>, dtype: &str, shape: &[i64]) -> Value {
    let mut spec = json!({"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}});
    if let Some(name) = name {
        spec["name"] = json!(name);
    }
    spec
}

/// The `MLmodel` file. Its layout is fixed, so it is written as text rather than through a
/// YAML serializer; the only free-form values (signature JSON, timestamp) go in
/// single-quoted scalars, as PyYAML writes them.
fn mlmodel_yaml(
    inputs: &Value,
    outputs: &Value,
    example_kind: &str,
    model_uuid: &str,
    created: &str,
) -> String {
    // MLflow records how a DataFrame example was written; an array example has no orient.
    let orient = if example_kind == "dataframe" {
        "\n  pandas_orient: split"
    } else {
        ""
    };
    let providers = "\n    - CUDAExecutionProvider\n    - CPUExecutionProvider";
    format!(
        "flavors:
  onnx:
    code: null
    data: model.onnx
    onnx_session_options: null
    onnx_version: {ONNX_VERSION}
    providers:{providers}
  python_function:
    data: model.onnx
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.onnx
    python_version: {PYTHON_VERSION}
mlflow_version: {MLFLOW_VERSION}
model_uuid: {model_uuid}
saved_input_example_info:
  artifact_path: input_example.json{orient}
  serving_input_path: serving_input_example.json
  type: {example_kind}
signature:
  inputs: {inputs}
  outputs: {outputs}
  params: null
utc_time_created: {created}
",
        inputs = single_quoted(&inputs.to_string()),
        outputs = single_quoted(&outputs.to_string()),
        created = single_quoted(created),
    )
}

/// A YAML single-quoted scalar; valid for any one-line string.
fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn python_env_yaml() -> String {
    format!(
        "python: {PYTHON_VERSION}
build_dependencies:
- pip
- setuptools
- wheel
dependencies:
- -r requirements.txt
"
    )
}

fn conda_yaml() -> String {
    let pip: String = REQUIREMENTS.iter().map(|r| format!("  - {r}\n")).collect();
    format!(
        "channels:
- conda-forge
dependencies:
- python={PYTHON_VERSION}
- pip
- pip:
{pip}name: mlflow-env
"
    )
}
