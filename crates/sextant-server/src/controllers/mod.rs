//! Starting the server's controllers over its state: the one module that
//! hands the state's parts to `sextant-control` and `sextant-serving` as
//! their dependencies. The state itself knows none of this module (no
//! back-references: `state.rs` imports nothing of the controllers' wiring).

mod deploy;

use std::sync::Arc;

use sextant_control::pipelines::Settings;
use sextant_control::webhooks::{WebhookDeps, Webhooks};
use tokio::task::JoinHandle;

use crate::state::AppState;

/// Starts the pipeline orchestrator over `state`'s stores, its `deploy:`
/// steps carried out by `state`'s endpoint controller, and lets `state`
/// reach it for the remote workers' API.
pub fn spawn_pipelines(state: &AppState, settings: Settings) -> JoinHandle<()> {
    let deployer = Arc::new(deploy::EndpointDeployer::new(
        state.endpoints.clone(),
        state.endpoint_deps(),
    ));
    let (orchestrator, handle) =
        sextant_control::pipelines::spawn(state.pipeline_deps(), deployer, settings);
    let _ = state.orchestrator.set(orchestrator);
    handle
}

/// Starts the endpoint controller over the state's endpoints.
pub fn spawn_endpoints(state: &AppState) -> JoinHandle<()> {
    sextant_serving::controller::spawn(state.endpoints.clone(), state.endpoint_deps())
}

/// Starts the monitors' scheduler.
pub fn spawn_monitors(state: &AppState) -> JoinHandle<()> {
    sextant_control::monitors::spawn(state.monitors.clone())
}

/// Webhook delivery's dependencies out of a server's state.
pub fn webhook_deps(state: &AppState) -> WebhookDeps {
    WebhookDeps {
        store: state.store.clone(),
        changes: state.changes.clone(),
        clock: state.clock.clone(),
    }
}

/// Starts webhook delivery over the state's store.
pub fn spawn_webhooks(state: &AppState, hooks: Webhooks) -> JoinHandle<()> {
    sextant_control::webhooks::spawn(webhook_deps(state), hooks)
}
