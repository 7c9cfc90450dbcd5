//! The one error type of this crate; every message names the model part or input at fault.

/// What went wrong loading or running a model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// The bytes are not an ONNX `ModelProto`.
    #[error("not an ONNX model: {0}")]
    Decode(String),
    /// The model decodes but is malformed (no graph, dangling names, bad initializer).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// A node uses an operator this engine does not implement.
    #[error("unsupported operator {op_type:?} (domain {domain:?}) in node {node:?}")]
    UnsupportedOp {
        /// The operator's name.
        op_type: String,
        /// Its domain (`""` is the default ONNX domain).
        domain: String,
        /// The node's name.
        node: String,
    },
    /// A node's attributes or inputs are not what its operator accepts.
    #[error("node {node:?} ({op}): {message}")]
    Node {
        /// The node's name.
        node: String,
        /// Its operator.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// An operator refused its attributes or inputs; the engine adds the node's name.
    #[error("{op}: {message}")]
    Op {
        /// The operator.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// The caller passed an input the model does not have.
    #[error("unknown input {name:?}; the model's inputs are {expected}")]
    UnknownInput {
        /// The name given.
        name: String,
        /// The model's input names, comma-separated.
        expected: String,
    },
    /// The caller did not pass one of the model's inputs.
    #[error("missing input {0:?}")]
    MissingInput(String),
    /// An input has the wrong element type.
    #[error("input {name:?}: expected element type {expected}, got {got}")]
    InputType {
        /// The input.
        name: String,
        /// The model's type.
        expected: String,
        /// The caller's.
        got: String,
    },
    /// An input has the wrong shape.
    #[error("input {name:?}: expected shape {expected}, got {got:?}")]
    InputShape {
        /// The input.
        name: String,
        /// The model's shape, e.g. `[N, 4]`.
        expected: String,
        /// The caller's.
        got: Vec<usize>,
    },
    /// A tensor's elements do not fill its shape.
    #[error("invalid tensor: {0}")]
    BadTensor(String),
}

impl Error {
    /// An operator-level error, to be tagged with its node by the engine.
    pub(crate) fn op(op: &str, message: impl Into<String>) -> Self {
        Error::Op {
            op: op.to_owned(),
            message: message.into(),
        }
    }

    /// Ties an operator-level error to the node it came from.
    pub(crate) fn at_node(self, node: &str) -> Self {
        match self {
            Error::Op { op, message } => Error::Node {
                node: node.to_owned(),
                op,
                message,
            },
            other => other,
        }
    }
}
