//! What the monitor controller answers when a call or a run fails.

use sextant_artifacts::data_roots::OutsideRoots;
use sextant_monitor::engine::EngineError;
use sextant_store::{CallError, StoreError};

/// Why a monitor could not be applied or run, or why a run failed (the run
/// keeps this message as its error).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The request or the definition is wrong in a way the caller can fix.
    #[error("{0}")]
    Invalid(String),
    /// The monitor has a run in progress in this process.
    #[error("monitor '{0}' has a run in progress")]
    Busy(String),
    /// The metadata store refused or failed.
    #[error(transparent)]
    Store(#[from] CallError),
    /// What the store holds cannot be read back (a bug or a damaged database).
    #[error("{0}")]
    Corrupt(String),
    /// The baseline cannot be found or read.
    #[error("{0}")]
    Baseline(String),
    /// A file the monitor names lies outside the server's data roots.
    #[error(transparent)]
    Outside(#[from] OutsideRoots),
    /// The artifact store could not list, read or write a file of the run.
    #[error("{0}")]
    Artifacts(String),
    /// The check itself failed on the window's data.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The window holds too few rows to judge.
    #[error(
        "the window holds {rows} rows, fewer than min_rows {min_rows}: nothing to judge (is capture on, and traffic flowing?)"
    )]
    TooFewRows { rows: u64, min_rows: u64 },
    /// The monitor's definition names neither an endpoint nor data.
    #[error("the monitor watches nothing")]
    WatchesNothing,
    /// The check's task panicked.
    #[error("the check panicked: {0}")]
    Panicked(String),
}

impl MonitorError {
    /// The wire name of the error's code.
    pub fn error_code(&self) -> &'static str {
        match self {
            MonitorError::Invalid(_) => "INVALID_PARAMETER_VALUE",
            MonitorError::Busy(_) => "RESOURCE_CONFLICT",
            MonitorError::Store(CallError::Store(e)) => store_code(e),
            MonitorError::Store(CallError::Task(_))
            | MonitorError::Corrupt(_)
            | MonitorError::Baseline(_)
            | MonitorError::Outside(_)
            | MonitorError::Artifacts(_)
            | MonitorError::Engine(_)
            | MonitorError::TooFewRows { .. }
            | MonitorError::WatchesNothing
            | MonitorError::Panicked(_) => "INTERNAL_ERROR",
        }
    }
}

/// The code a store error is answered with (as `error.rs` maps it).
fn store_code(e: &StoreError) -> &'static str {
    use sextant_core::Error as D;
    match e {
        StoreError::Domain(D::InvalidParameter(_)) | StoreError::Timeout { .. } => {
            "INVALID_PARAMETER_VALUE"
        }
        StoreError::Domain(D::NotFound(_)) => "RESOURCE_DOES_NOT_EXIST",
        StoreError::Domain(D::AlreadyExists(_)) => "RESOURCE_ALREADY_EXISTS",
        StoreError::Domain(D::InvalidState(_)) => "INVALID_STATE",
        StoreError::Domain(D::PermissionDenied(_)) => "PERMISSION_DENIED",
        StoreError::Busy(_) | StoreError::Cancelled => "TEMPORARILY_UNAVAILABLE",
        StoreError::Sqlite(_)
        | StoreError::Postgres(_)
        | StoreError::Config(_)
        | StoreError::Migration(_)
        | StoreError::Corrupt(_) => "INTERNAL_ERROR",
    }
}
