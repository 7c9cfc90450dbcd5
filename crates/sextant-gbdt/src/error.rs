//! The crate's one error type.

/// What went wrong while training, loading or evaluating a model.
#[derive(Debug, thiserror::Error)]
pub enum GbdtError {
    /// The training data or parameters are unusable; the message names the input.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A serialized model could not be read.
    #[error("cannot read model: {0}")]
    Deserialize(#[from] serde_json::Error),
    /// A flat tree ensemble refers to nodes that do not exist or is otherwise malformed.
    #[error("malformed tree ensemble: {0}")]
    MalformedEnsemble(String),
    /// Training was asked to stop (see [`crate::Gbdt::fit_until`]) before it finished.
    #[error("training was stopped before it finished")]
    Stopped,
}

pub(crate) fn invalid(message: impl Into<String>) -> GbdtError {
    GbdtError::InvalidInput(message.into())
}
