//! Store calls from async code: the one way controllers and handlers reach
//! the metadata store without blocking the async runtime.

use std::sync::Arc;

use crate::{Cancel, MetaStore, StoreError, actor};

/// Why a store call made from async code failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The store answered with an error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task running the call panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
}

/// Runs `f` against `store` on the blocking pool, so SQL never blocks the
/// async runtime. Dropping the returned future (a client that disconnected)
/// cancels the call's reads: they would otherwise run to the end for nobody.
pub async fn call<T, F>(store: &Arc<dyn MetaStore>, f: F) -> Result<T, CallError>
where
    T: Send + 'static,
    F: FnOnce(&dyn MetaStore) -> Result<T, StoreError> + Send + 'static,
{
    let store = store.clone();
    let cancel = Cancel::new();
    let guard = cancel.on_drop();
    // The caller's actor (`actor::acting_as`) goes along to the blocking thread.
    let actor = actor::of_task();
    let out = tokio::task::spawn_blocking(move || {
        actor::scope(actor, || cancel.scope(|| f(store.as_ref())))
    })
    .await;
    guard.disarm();
    Ok(out.map_err(|e| CallError::Task(e.to_string()))??)
}
