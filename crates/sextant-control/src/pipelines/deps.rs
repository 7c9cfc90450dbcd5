//! What the pipeline controllers are given instead of the server's state.

use std::path::PathBuf;
use std::sync::Arc;

use sextant_artifacts::ArtifactStore;
use sextant_artifacts::data_roots::DataRoots;
use sextant_core::clock::SharedClock;
use sextant_store::{CallError, MetaStore, StoreError};
use tokio::sync::Notify;

use super::PipelineError;

/// The stores, notifiers, directories and clock that the orchestrator, its
/// service functions and its triggers work with. Cheap to clone: every
/// field is shared.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn MetaStore>,
    pub artifacts: Arc<ArtifactStore>,
    /// Woken when a pipeline run is created or cancelled or a task is
    /// queued: the orchestrator waits on it.
    pub pipelines: Arc<Notify>,
    /// Woken (all waiters) when steps are queued: remote workers' claims wait on it.
    pub queued: Arc<Notify>,
    /// Woken after every change that may have appended events: running
    /// steps look at their task again, triggers read new events.
    pub changes: Arc<Notify>,
    /// The server's data directory, where live step logs are read from;
    /// `None` when there is none (then only uploaded logs can be read).
    pub data_dir: Option<Arc<PathBuf>>,
    /// Where files read on a caller's behalf may lie.
    pub data_roots: Arc<DataRoots>,
    /// Lease expiry, schedules, cache expiry and recorded times read it.
    pub clock: SharedClock,
}

impl Deps {
    /// Runs a store call on the blocking pool (cancelled when dropped).
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, PipelineError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn MetaStore) -> Result<T, StoreError> + Send + 'static,
    {
        sextant_store::call(&self.store, f)
            .await
            .map_err(|e| match e {
                CallError::Store(e) => PipelineError::Store(e),
                CallError::Task(m) => PipelineError::Task(m),
            })
    }
}
