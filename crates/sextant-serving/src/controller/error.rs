//! Why the controller refuses or fails a change of an endpoint, and the
//! error code each answer carries.

use crate::endpoints::apply::ApplyError;
use crate::endpoints::config::SpecProblem;

/// Why the controller refused or failed a change of an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A definition, model or request that cannot be served.
    #[error("{0}")]
    Invalid(String),
    /// A change the endpoint's state does not allow now (no rollout in progress).
    #[error("{0}")]
    Conflict(String),
    /// A definition made in code (a pipeline's `deploy:` step) breaks a rule.
    #[error(transparent)]
    Spec(#[from] SpecProblem),
    /// The definition cannot be applied over the endpoint as it is.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A domain error: a malformed endpoint name, an endpoint that does not exist.
    #[error(transparent)]
    Domain(#[from] sextant_core::Error),
    /// The metadata store failed or refused.
    #[error(transparent)]
    Store(#[from] sextant_store::CallError),
    /// Sextant failed; the message is for the log, not for clients.
    #[error("{0}")]
    Internal(String),
}

impl EndpointError {
    /// The wire name of the error code this error is answered with.
    pub fn error_code(&self) -> &'static str {
        use sextant_store::{CallError, StoreError};
        match self {
            EndpointError::Invalid(_) | EndpointError::Spec(_) => "INVALID_PARAMETER_VALUE",
            EndpointError::Conflict(_) => "RESOURCE_CONFLICT",
            EndpointError::Apply(e) => e.error_code(),
            EndpointError::Domain(e) => domain_code(e),
            EndpointError::Store(CallError::Store(e)) => match e {
                StoreError::Domain(e) => domain_code(e),
                StoreError::Busy(_) | StoreError::Cancelled => "TEMPORARILY_UNAVAILABLE",
                StoreError::Timeout { .. } => "INVALID_PARAMETER_VALUE",
                StoreError::Sqlite(_)
                | StoreError::Postgres(_)
                | StoreError::Config(_)
                | StoreError::Migration(_)
                | StoreError::Corrupt(_) => "INTERNAL_ERROR",
            },
            EndpointError::Store(CallError::Task(_)) | EndpointError::Internal(_) => {
                "INTERNAL_ERROR"
            }
        }
    }
}

/// The wire name of a domain error's code.
fn domain_code(e: &sextant_core::Error) -> &'static str {
    use sextant_core::Error as E;
    match e {
        E::InvalidParameter(_) => "INVALID_PARAMETER_VALUE",
        E::NotFound(_) => "RESOURCE_DOES_NOT_EXIST",
        E::AlreadyExists(_) => "RESOURCE_ALREADY_EXISTS",
        E::InvalidState(_) => "INVALID_STATE",
        E::PermissionDenied(_) => "PERMISSION_DENIED",
    }
}
