//! The serving plane's errors: loading a model, a request the client got wrong, and a
//! prediction that failed. `http.rs` maps each to a status with an exhaustive match.

use std::path::PathBuf;

/// Why a model directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file of the model directory could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `MLmodel` is not the YAML MLflow writes, or lacks what serving needs.
    #[error("{path}: {message}")]
    MlModel {
        /// The `MLmodel` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The signature cannot be read or served.
    #[error("signature {part}: {message}")]
    Signature {
        /// `inputs` or `outputs`.
        part: String,
        /// What is wrong.
        message: String,
    },
    /// The ONNX engine refused the model.
    #[error("loading {path}: {source}")]
    Onnx {
        /// The `.onnx` file.
        path: PathBuf,
        /// The engine's error (it names the operator or value at fault).
        source: sextant_onnx::Error,
    },
    /// The model's signature and graph disagree.
    #[error("the signature does not fit the ONNX graph: {0}")]
    Mismatch(String),
    /// A `process` runtime could not be started or never became healthy.
    #[error("starting the model process: {0}")]
    Process(String),
}

/// A request the client got wrong: answered 4xx with the message, which names the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// The body cannot be decoded or does not have the protocol's shape.
    #[error("{0}")]
    Invalid(String),
    /// The content type is not one the protocol accepts (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The data does not fit the model's signature (columns, types, shapes).
    #[error("{0}")]
    Schema(String),
    /// The request names a model or version this endpoint does not serve (404).
    #[error("{0}")]
    NotFound(String),
}

impl InputError {
    /// A schema error.
    pub fn schema(message: impl Into<String>) -> Self {
        InputError::Schema(message.into())
    }

    /// A malformed request.
    pub fn invalid(message: impl Into<String>) -> Self {
        InputError::Invalid(message.into())
    }
}

/// Why a prediction failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PredictError {
    /// The client's input is wrong (4xx, not counted as a model error).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The model failed on an input that fit its signature; MLflow answers such failures
    /// 400, and they count as errors of the variant.
    #[error("the model failed on this input: {0}")]
    Model(String),
    /// The runtime cannot answer now (a `process` runtime restarting): 503.
    #[error("{0}")]
    Unavailable(String),
    /// The runtime itself broke (Sextant's or the child process's fault): 500.
    #[error("{0}")]
    Internal(String),
}
