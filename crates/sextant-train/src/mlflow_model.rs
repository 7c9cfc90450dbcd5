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
    save(dir, &proto, json!([output]), example)
}

/// Writes a binary logistic classifier to `dir`; see [`save_linear`].
pub fn save_logistic(
    dir: &Path,
    model: &LogisticModel,
    feature_names: &[String],
    example: &Matrix,
) -> Result<SavedModel> {
    let outputs = json!([
        tensor_spec(Some(onnx::LABEL_OUTPUT), "int64", &[-1]),
        tensor_spec(Some(onnx::PROBABILITIES_OUTPUT), "float32", &[-1, 2]),
    ]);
    let proto = onnx::logistic_classifier(model, feature_names)?;
    save(dir, &proto, outputs, example)
}

/// Writes a gradient-boosted tree model to `dir`; see [`save_linear`]. A regressor has the
/// `variable [N, 1]` output, a classifier `label [N]` and `probabilities [N, K]`. Rows with
/// missing values are used for the input example only when there are too few complete ones,
/// because JSON has no `NaN` (they are written as `null`).
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
        Objective::Binary | Objective::Multiclass { .. } => {
            let k = model.to_tree_ensemble().classlabels_int64s.len() as i64;
            json!([
                tensor_spec(Some(onnx::LABEL_OUTPUT), "int64", &[-1]),
                tensor_spec(Some(onnx::PROBABILITIES_OUTPUT), "float32", &[-1, k]),
            ])
        }
    };
    let proto = onnx_trees::gbdt_model(model, feature_names)?;
    save(dir, &proto, outputs, &complete_rows_first(example)?)
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
    outputs: Value,
    example: &Matrix,
) -> Result<SavedModel> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let write = |name: &str, content: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| TrainError::io(path, e))
    };
    write("model.onnx", &onnx::to_bytes(model))?;

    // The example is stored as the float32 values the model will actually see.
    let rows: Vec<Vec<f64>> = (0..example.rows().min(EXAMPLE_ROWS))
        .map(|i| {
            example
                .row(i)
                .iter()
                .map(|&v| f64::from(v as f32))
                .collect()
        })
        .collect();
    write("input_example.json", json!(rows).to_string().as_bytes())?;
    let serving = serde_json::to_string_pretty(&json!({ "inputs": rows }))
        .expect("serializing JSON values cannot fail");
    write("serving_input_example.json", serving.as_bytes())?;

    let inputs = json!([tensor_spec(None, "float32", &[-1, example.cols() as i64])]);
    let model_uuid = uuid::Uuid::new_v4().simple().to_string();
    let created = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f");
    write(
        "MLmodel",
        mlmodel_yaml(&inputs, &outputs, &model_uuid, &created.to_string()).as_bytes(),
    )?;
    write("requirements.txt", REQUIREMENTS.join("\n").as_bytes())?;
    write("python_env.yaml", python_env_yaml().as_bytes())?;
    write("conda.yaml", conda_yaml().as_bytes())?;
    Ok(SavedModel {
        dir: dir.to_owned(),
        model_uuid,
    })
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
fn mlmodel_yaml(inputs: &Value, outputs: &Value, model_uuid: &str, created: &str) -> String {
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
  artifact_path: input_example.json
  serving_input_path: serving_input_example.json
  type: ndarray
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
