//! The pipeline orchestrator lives in `sextant-control`; this is its wiring
//! into the server: the dependencies it is given, the endpoint controller
//! behind its `deploy:` steps, and the old paths while callers move.

mod deploy;

use std::sync::Arc;

pub use sextant_control::pipelines::*;

use crate::state::AppState;

/// Starts the orchestrator over `state`'s stores (see
/// [`sextant_control::pipelines::spawn`]) and lets `state` reach it for the
/// remote workers' API.
pub fn spawn(state: AppState, settings: Settings) -> tokio::task::JoinHandle<()> {
    let deployer = Arc::new(deploy::EndpointDeployer::new(state.clone()));
    let (orchestrator, handle) =
        sextant_control::pipelines::spawn(state.pipeline_deps(), deployer, settings);
    let _ = state.orchestrator.set(orchestrator);
    handle
}
