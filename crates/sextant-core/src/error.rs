//! Domain errors shared by every layer; the HTTP edge maps each to a code.

/// A domain error: what went wrong, said so that a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request carries a value the domain refuses (MLflow `INVALID_PARAMETER_VALUE`).
    #[error("{0}")]
    InvalidParameter(String),
    /// The named resource does not exist (MLflow `RESOURCE_DOES_NOT_EXIST`).
    #[error("{0}")]
    NotFound(String),
    /// A resource with that identity exists already (MLflow `RESOURCE_ALREADY_EXISTS`).
    #[error("{0}")]
    AlreadyExists(String),
    /// The resource is in a state that forbids the change (MLflow `INVALID_STATE`).
    #[error("{0}")]
    InvalidState(String),
    /// The caller may not make this change, by a rule the domain keeps
    /// (four-eyes approval) rather than by their grants (MLflow
    /// `PERMISSION_DENIED`).
    #[error("{0}")]
    PermissionDenied(String),
}

/// Result with the domain error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidParameter(msg.into())
    }
    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
}
