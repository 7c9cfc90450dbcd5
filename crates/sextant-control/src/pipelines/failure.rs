//! Why one attempt of a step failed, as recorded on its task.

use super::PipelineError;
use super::outputs::BlobError;

/// Why one attempt of a step failed.
#[derive(Debug)]
pub(super) struct StepFailure {
    pub(super) message: String,
    /// Retrying cannot help (`fail:`, `else: fail`, a bad reference).
    pub(super) permanent: bool,
}

impl StepFailure {
    pub(super) fn retryable(message: impl Into<String>) -> Self {
        StepFailure {
            message: message.into(),
            permanent: false,
        }
    }
    pub(super) fn permanent(message: impl Into<String>) -> Self {
        StepFailure {
            message: message.into(),
            permanent: true,
        }
    }
}

impl From<PipelineError> for StepFailure {
    fn from(e: PipelineError) -> Self {
        StepFailure::retryable(e.to_string())
    }
}

/// An output or file that could not be moved: worth another attempt.
impl From<BlobError> for StepFailure {
    fn from(e: BlobError) -> Self {
        StepFailure::retryable(e.to_string())
    }
}
