//! What the pipeline controllers are given instead of the server's state.

use std::path::PathBuf;
use std::sync::Arc;

use sextant_artifacts::ArtifactStore;
use sextant_artifacts::data_roots::DataRoots;
use sextant_core::clock::SharedClock;
use sextant_store::{CallError, MetaStore, StoreError};
use tokio::sync::Notify;

use super::PipelineError;

/// What the register step asks of the server's authorization when
/// authentication is on. The control plane keeps no permission rules of its
/// own: the server answers from the same grants every request is decided on.
pub trait RegistryAuthz: Send + Sync {
    /// Whether `user` holds MANAGE on the registered model `model` now (an
    /// admin does; an unknown user does not).
    fn manages_model(&self, s: &dyn MetaStore, user: &str, model: &str)
    -> Result<bool, StoreError>;
    /// Whether `user` may register a version of `model` now, as the API
    /// would let them: EDIT on an existing model (`exists`), else the right
    /// to create it (anyone a DENY does not cover). Admins may; an unknown
    /// user may not.
    fn may_register(
        &self,
        s: &dyn MetaStore,
        user: &str,
        model: &str,
        exists: bool,
    ) -> Result<bool, StoreError>;
    /// Gives `user` MANAGE on `model`, which a pipeline run acting for them
    /// just created, as creating a model through the API gives its creator.
    fn grant_model_creator(
        &self,
        s: &dyn MetaStore,
        user: &str,
        model: &str,
    ) -> Result<(), StoreError>;
}

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
    /// The server's authorization, with authentication on; `None` with it
    /// off, where a pipeline's gate decides as it always did.
    pub authz: Option<Arc<dyn RegistryAuthz>>,
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
