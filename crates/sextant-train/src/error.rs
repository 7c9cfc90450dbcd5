use std::path::PathBuf;

/// Everything that can go wrong while loading data, training, evaluating or writing a model.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading or writing a file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV itself is malformed (ragged rows, bad UTF-8, …).
    #[error("cannot read CSV {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// The requested target column is not in the header.
    #[error("{path}: no column named {column:?} (columns: {available})")]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: String,
    },
    /// A cell that must be a number is not.
    #[error("{path}: line {line}, column {column:?}: {value:?} is not a number")]
    NonNumeric {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    /// The data set has no rows, or no feature columns.
    #[error("{0}")]
    EmptyData(String),
    /// A binary classifier's target holds something other than 0 and 1.
    #[error("row {row}: target {value} is not a binary label (expected 0 or 1)")]
    NotBinary { row: usize, value: f64 },
    /// A training or evaluation parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    /// The least-squares or Newton system has no unique solution.
    #[error("{0}")]
    Singular(String),
    /// Two inputs that must have the same length do not.
    #[error("length mismatch: {what} ({left} vs {right})")]
    LengthMismatch {
        what: &'static str,
        left: usize,
        right: usize,
    },
    /// An ONNX file that this crate did not write (or that is damaged).
    #[error("not a model written by sextant-train: {0}")]
    UnknownModel(String),
    /// A metric is not defined for the given values.
    #[error("{metric} is undefined: {reason}")]
    UndefinedMetric {
        metric: &'static str,
        reason: &'static str,
    },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn csv(path: impl Into<PathBuf>, source: csv::Error) -> Self {
        Self::Csv {
            path: path.into(),
            source,
        }
    }
}
