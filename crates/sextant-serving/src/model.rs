//! Loading an MLflow model directory into a [`Predictor`]: the `MLmodel` file (flavors,
//! signature) and, for the `onnx` runtime, the graph run in-process by `sextant-onnx`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sextant_onnx::{Dim, ElemType, Model, ValueInfo, ValueKind};
use sextant_pipelines::yaml::{self, NotOneDocument};

use super::convert::InputPlan;
use super::error::{InputError, LoadError, PredictError};
use super::protocol::{ModelRequest, Prediction};
use super::signature::{Schema, Signature};

/// A boxed, sendable future, so [`Predictor`] stays object-safe.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A loaded model behind one endpoint variant, whatever runs it: the in-process `onnx`
/// runtime, or a child process speaking the MLflow scoring protocol.
pub trait Predictor: Send + Sync + 'static {
    /// What the model takes and answers.
    fn info(&self) -> &ModelInfo;
    /// Predicts on one request. CPU-heavy work must not block the caller's runtime.
    fn predict(
        self: Arc<Self>,
        request: ModelRequest,
    ) -> BoxFuture<Result<Prediction, PredictError>>;
    /// Whether it can answer now (a child process may be restarting).
    fn ready(&self) -> bool {
        true
    }
    /// Runtime instances behind it (an autoscaled pool has several).
    fn instances(&self) -> usize {
        1
    }
}

/// A model input or output as the Open Inference Protocol describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMeta {
    /// The name.
    pub name: String,
    /// OIP datatype (`FP32`, `INT64`, `BYTES`, …).
    pub datatype: String,
    /// Dimensions; `-1` is free.
    pub shape: Vec<i64>,
}

/// What a predictor knows about its model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// `onnx` or `process`.
    pub runtime: &'static str,
    /// OIP platform string (`onnx_onnxv1`, `mlflow_pyfunc`).
    pub platform: String,
    /// The `MLmodel` signature.
    pub signature: Signature,
    /// Inputs a request carries.
    pub inputs: Vec<TensorMeta>,
    /// Outputs an answer carries.
    pub outputs: Vec<TensorMeta>,
    /// Seconds it took to load (and, for a process, to become healthy).
    pub load_seconds: f64,
    /// `MLmodel`'s `model_uuid`, if any.
    pub model_uuid: Option<String>,
}

/// The parts of an `MLmodel` file serving uses.
#[derive(Debug, Clone)]
pub struct MlModel {
    /// The `onnx` flavor's model file (relative to the directory), if the flavor is there.
    pub onnx_data: Option<String>,
    /// Whether the `python_function` flavor is there (what a `process` runtime serves).
    pub pyfunc: bool,
    /// The signature.
    pub signature: Signature,
    /// `model_uuid`.
    pub model_uuid: Option<String>,
}

impl MlModel {
    /// Reads `<dir>/MLmodel`.
    pub fn read(dir: &Path) -> Result<MlModel, LoadError> {
        let path = dir.join("MLmodel");
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        MlModel::parse(&text, &path)
    }

    /// Parses the text of an `MLmodel` file (`path` names it in errors), read
    /// by Sextant's one YAML reader (`sextant_pipelines::yaml`).
    pub fn parse(text: &str, path: &Path) -> Result<MlModel, LoadError> {
        let bad = |message: String| LoadError::MlModel {
            path: path.to_owned(),
            message,
        };
        let doc = match yaml::read_one(text) {
            Ok(doc) => doc,
            Err(NotOneDocument::Syntax { at, info }) => {
                return Err(bad(format!(
                    "not YAML: {info} at line {} column {}",
                    at.line, at.col
                )));
            }
            // MLflow reads the file with `yaml.safe_load`, which takes one document.
            Err(NotOneDocument::Several { at }) => {
                return Err(bad(format!(
                    "expected one YAML document, found a second at line {}",
                    at.line
                )));
            }
            Err(NotOneDocument::Empty) => return Err(bad("expected a YAML mapping".into())),
        };
        if !doc.data.is_mapping() {
            return Err(bad("expected a YAML mapping".into()));
        }
        fn get<'a>(node: &'a yaml::Node, key: &str) -> Option<&'a yaml::Node> {
            node.data.as_mapping_get(key)
        }
        fn text_of(node: Option<&yaml::Node>) -> Option<String> {
            node.and_then(|n| n.data.as_str()).map(str::to_owned)
        }
        let flavors = get(&doc, "flavors")
            .filter(|f| f.data.is_mapping())
            .ok_or_else(|| bad("no flavors".into()))?;
        let onnx_data = match get(flavors, "onnx") {
            None => None,
            Some(onnx) => Some(
                text_of(get(onnx, "data"))
                    .ok_or_else(|| bad("the onnx flavor has no data file".into()))?,
            ),
        };
        let signature = get(&doc, "signature");
        let inputs = text_of(signature.and_then(|s| get(s, "inputs")));
        let outputs = text_of(signature.and_then(|s| get(s, "outputs")));
        Ok(MlModel {
            onnx_data,
            pyfunc: get(flavors, "python_function").is_some(),
            signature: Signature {
                inputs: Schema::parse(inputs.as_deref(), "inputs")?,
                outputs: Schema::parse_outputs(outputs.as_deref())?,
            },
            model_uuid: text_of(get(&doc, "model_uuid")),
        })
    }
}

/// Loads an MLflow model directory with the `onnx` flavor into the in-process runtime.
/// Blocking (file IO and graph building): call it from a blocking thread.
pub fn load_model(dir: &Path) -> Result<Arc<dyn Predictor>, LoadError> {
    Ok(Arc::new(OnnxPredictor::load(dir)?))
}

/// The `onnx` runtime: a `sextant-onnx` model run in-process.
#[derive(Debug)]
pub struct OnnxPredictor {
    model: Model,
    plan: InputPlan,
    info: ModelInfo,
    /// Running average of nanoseconds per row, to decide whether a call runs inline.
    ns_per_row: AtomicU64,
}

/// A call expected to take longer than this goes to the blocking pool; shorter ones run
/// on the request's task, where a hand-off would cost more than the inference.
const INLINE_BUDGET_NS: u64 = 200_000;

impl OnnxPredictor {
    /// Loads `dir` (its `MLmodel` must have the `onnx` flavor).
    pub fn load(dir: &Path) -> Result<OnnxPredictor, LoadError> {
        let started = Instant::now();
        let mlmodel = MlModel::read(dir)?;
        let data = mlmodel
            .onnx_data
            .as_deref()
            .ok_or_else(|| LoadError::MlModel {
                path: dir.join("MLmodel"),
                message: "the model has no onnx flavor; serve it with the process runtime".into(),
            })?;
        let path: PathBuf = dir.join(data);
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        let model = Model::load(&bytes).map_err(|source| LoadError::Onnx { path, source })?;
        let plan = InputPlan::new(&mlmodel.signature, model.inputs())?;
        let info = ModelInfo {
            runtime: "onnx",
            platform: "onnx_onnxv1".into(),
            inputs: model.inputs().iter().map(meta).collect(),
            outputs: model.outputs().iter().map(meta).collect(),
            signature: mlmodel.signature,
            load_seconds: started.elapsed().as_secs_f64(),
            model_uuid: mlmodel.model_uuid,
        };
        Ok(OnnxPredictor {
            model,
            plan,
            info,
            ns_per_row: AtomicU64::new(0),
        })
    }

    /// Converts and runs one request synchronously.
    pub fn predict_now(&self, request: ModelRequest) -> Result<Prediction, PredictError> {
        let converted = self.plan.convert(request.payload)?;
        if !converted.ignored.is_empty() {
            // MLflow logs the same warning and predicts on the signature's columns.
            tracing::warn!(
                columns = %super::convert::names(converted.ignored.iter().map(String::as_str)),
                "ignoring input columns that are not in the model's signature"
            );
        }
        let started = Instant::now();
        let outputs = self.model.run(converted.tensors).map_err(|e| match e {
            sextant_onnx::Error::UnknownInput { .. }
            | sextant_onnx::Error::MissingInput(_)
            | sextant_onnx::Error::InputType { .. }
            | sextant_onnx::Error::InputShape { .. }
            | sextant_onnx::Error::BadTensor(_) => {
                PredictError::Input(InputError::schema(e.to_string()))
            }
            sextant_onnx::Error::Decode(_)
            | sextant_onnx::Error::InvalidModel(_)
            | sextant_onnx::Error::UnsupportedOp { .. }
            | sextant_onnx::Error::Node { .. }
            | sextant_onnx::Error::Op { .. } => PredictError::Model(e.to_string()),
        })?;
        let per_row = started.elapsed().as_nanos() as u64 / converted.rows.max(1) as u64;
        let old = self.ns_per_row.load(Ordering::Relaxed);
        let new = if old == 0 {
            per_row
        } else {
            (old * 7 + per_row) / 8
        };
        self.ns_per_row.store(new, Ordering::Relaxed);
        Ok(Prediction::Outputs {
            outputs,
            records: converted.records,
        })
    }

    fn expected_ns(&self, request: &ModelRequest) -> u64 {
        let rows = match &request.payload {
            super::protocol::Payload::Frame(f) => f.rows.len(),
            super::protocol::Payload::Tensor(t) => t.rows(),
            super::protocol::Payload::Named(n) => n.first().map_or(1, |(_, t)| t.rows()),
        };
        // Until a call has been timed, assume large batches are slow.
        let per_row = match self.ns_per_row.load(Ordering::Relaxed) {
            0 => 1_000,
            n => n,
        };
        per_row.saturating_mul(rows as u64)
    }
}

impl Predictor for OnnxPredictor {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict(
        self: Arc<Self>,
        request: ModelRequest,
    ) -> BoxFuture<Result<Prediction, PredictError>> {
        Box::pin(async move {
            if self.expected_ns(&request) <= INLINE_BUDGET_NS {
                return self.predict_now(request);
            }
            tokio::task::spawn_blocking(move || self.predict_now(request))
                .await
                .map_err(|e| PredictError::Internal(format!("the inference task failed: {e}")))?
        })
    }
}

/// A graph input or output in OIP terms.
fn meta(v: &ValueInfo) -> TensorMeta {
    let (datatype, shape) = match &v.kind {
        ValueKind::Tensor { elem, shape } => (
            oip_datatype(*elem),
            shape.as_ref().map_or_else(Vec::new, |dims| {
                dims.iter()
                    .map(|d| match d {
                        Dim::Fixed(n) => *n as i64,
                        Dim::Free(_) => -1,
                    })
                    .collect()
            }),
        ),
        // ZipMap's maps are answered as a [N, classes] FP32 tensor over OIP.
        ValueKind::Records => ("FP32", vec![-1, -1]),
        ValueKind::Unknown => ("BYTES", vec![-1]),
    };
    TensorMeta {
        name: v.name.clone(),
        datatype: datatype.into(),
        shape,
    }
}

/// The OIP datatype of an element type.
pub(crate) fn oip_datatype(e: ElemType) -> &'static str {
    match e {
        ElemType::F32 => "FP32",
        ElemType::F64 => "FP64",
        ElemType::I64 => "INT64",
        ElemType::Str => "BYTES",
        ElemType::Bool => "BOOL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_mlflow_writes() {
        let text = r#"
artifact_path: /tmp/x
flavors:
  onnx:
    code: null
    data: model.onnx
    onnx_version: 1.23.2
    providers:
    - CUDAExecutionProvider
  python_function:
    data: model.onnx
    loader_module: mlflow.onnx
model_uuid: m-b93
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1,
    10]}}]'
  outputs: '[{"name": "label", "type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: null
"#;
        let m = MlModel::parse(text, Path::new("MLmodel")).unwrap();
        assert_eq!(m.onnx_data.as_deref(), Some("model.onnx"));
        assert!(m.pyfunc);
        assert_eq!(m.model_uuid.as_deref(), Some("m-b93"));
        let Schema::Tensors(inputs) = &m.signature.inputs else {
            panic!("{:?}", m.signature.inputs)
        };
        assert_eq!(inputs[0].shape, vec![-1, 10]);
    }

    #[test]
    fn refuses_a_directory_without_what_it_needs() {
        let e = MlModel::parse("a: [", Path::new("MLmodel")).unwrap_err();
        assert!(e.to_string().starts_with("MLmodel: not YAML"), "{e}");
        let e = MlModel::parse("x: 1", Path::new("MLmodel")).unwrap_err();
        assert_eq!(e.to_string(), "MLmodel: no flavors");
        for not_a_mapping in ["", "# nothing\n", "- a\n"] {
            let e = MlModel::parse(not_a_mapping, Path::new("MLmodel")).unwrap_err();
            assert_eq!(e.to_string(), "MLmodel: expected a YAML mapping");
        }
        let e = MlModel::parse("flavors: {}\n---\nx: 1\n", Path::new("MLmodel")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "MLmodel: expected one YAML document, found a second at line 3"
        );
        let e = MlModel::parse("flavors:\n  onnx: {}\n", Path::new("MLmodel")).unwrap_err();
        assert_eq!(e.to_string(), "MLmodel: the onnx flavor has no data file");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("MLmodel"),
            "flavors:\n  python_function:\n    loader_module: x\n",
        )
        .unwrap();
        let e = OnnxPredictor::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("no onnx flavor"), "{e}");
        let e = OnnxPredictor::load(&dir.path().join("nope")).unwrap_err();
        assert!(e.to_string().starts_with("reading "), "{e}");
    }
}
