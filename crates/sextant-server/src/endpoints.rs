//! The endpoint controller, now in `sextant_serving::controller`, and the
//! endpoint definitions it applies, re-exported so the server's callers and
//! its tests keep their paths.

pub use sextant_serving::controller::*;
pub use sextant_serving::endpoints::{
    EndpointState, EndpointStatus, TICK, TrafficChange, apply, canary, capture_prefix, config,
    resolve, rollout,
};

use crate::state::AppState;

/// Starts the controller over the server's endpoints and dependencies.
pub fn spawn(st: AppState) -> tokio::task::JoinHandle<()> {
    sextant_serving::controller::spawn(st.endpoints.clone(), st.endpoint_deps())
}
