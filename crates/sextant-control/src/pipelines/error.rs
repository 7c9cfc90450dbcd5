//! Why a pipeline request or the orchestrator's own work failed (as opposed
//! to a step failing, which is a [`super::step::StepFailure`] recorded on
//! its task).

use sextant_artifacts::NotProxied;
use sextant_store::StoreError;

/// Every error the pipeline controllers answer; `sextant-server` maps each
/// variant to a status with one exhaustive `match`.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// What the caller asked is malformed or does not fit the pipeline.
    #[error("{0}")]
    Invalid(String),
    /// A run, step or task the caller named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The resource is in a state that refuses the request (a retry of a
    /// live run, a worker's lost claim).
    #[error("{0}")]
    Conflict(String),
    /// The request does not fit the task's state (an outcome for a task
    /// that was never handed out).
    #[error("{0}")]
    InvalidState(String),
    /// This server runs no orchestrator (remote workers' API).
    #[error("the pipeline orchestrator is not running on this server")]
    NotRunning,
    /// A domain rule refused the request (a pipeline name).
    #[error(transparent)]
    Domain(#[from] sextant_core::Error),
    /// The metadata store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tracking run's artifact root is not in this server's artifact store.
    #[error(transparent)]
    NotProxied(#[from] NotProxied),
    /// The blocking task running a store call panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
    /// A stored pipeline no longer validates (a bug or a hand-edited store).
    #[error("stored pipeline '{pipeline}' no longer validates: {message}")]
    Spec { pipeline: String, message: String },
    /// Sextant failed; the message is for the log, not for clients.
    #[error("{0}")]
    Internal(String),
}

impl PipelineError {
    /// The wire name of the error code this error is answered with.
    pub fn error_code(&self) -> &'static str {
        match self {
            PipelineError::Invalid(_) | PipelineError::NotProxied(_) => "INVALID_PARAMETER_VALUE",
            PipelineError::NotFound(_) => "RESOURCE_DOES_NOT_EXIST",
            PipelineError::Conflict(_) => "RESOURCE_CONFLICT",
            PipelineError::InvalidState(_) => "INVALID_STATE",
            PipelineError::NotRunning => "TEMPORARILY_UNAVAILABLE",
            PipelineError::Domain(e) => domain_code(e),
            PipelineError::Store(e) => match e {
                StoreError::Domain(e) => domain_code(e),
                StoreError::Busy(_) | StoreError::Cancelled => "TEMPORARILY_UNAVAILABLE",
                StoreError::Timeout { .. } => "INVALID_PARAMETER_VALUE",
                StoreError::Sqlite(_)
                | StoreError::Postgres(_)
                | StoreError::Config(_)
                | StoreError::Migration(_)
                | StoreError::Corrupt(_) => "INTERNAL_ERROR",
            },
            PipelineError::Task(_) | PipelineError::Spec { .. } | PipelineError::Internal(_) => {
                "INTERNAL_ERROR"
            }
        }
    }

    /// A store's "wrong state" as the conflict it is for the caller, and
    /// "not found" as such; anything else as an internal failure.
    pub(crate) fn lost_claim(self) -> PipelineError {
        use sextant_core::Error as E;
        match self {
            PipelineError::Store(StoreError::Domain(E::InvalidState(m))) => {
                PipelineError::Conflict(m)
            }
            // A task id that names no task: the worker's mistake, not the server's.
            PipelineError::Store(StoreError::Domain(E::NotFound(m))) => PipelineError::NotFound(m),
            other => PipelineError::Internal(other.to_string()),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_claim_is_a_conflict_and_a_missing_task_not_found() {
        let state = PipelineError::Store(StoreError::Domain(sextant_core::Error::InvalidState(
            "taken".into(),
        )));
        assert_eq!(state.error_code(), "INVALID_STATE");
        let lost = state.lost_claim();
        assert_eq!(
            (lost.error_code(), lost.to_string().as_str()),
            ("RESOURCE_CONFLICT", "taken")
        );
        let gone = PipelineError::Store(StoreError::Domain(sextant_core::Error::NotFound(
            "no task 7".into(),
        )))
        .lost_claim();
        assert_eq!(gone.error_code(), "RESOURCE_DOES_NOT_EXIST");
        let other = PipelineError::Task("panicked".into()).lost_claim();
        assert_eq!(other.error_code(), "INTERNAL_ERROR");
    }
}
