//! Webhook delivery moved to `sextant_control::webhooks`; the old paths stay
//! while callers move, and the state's parts become its dependencies here.

use std::time::Duration;

pub use sextant_control::webhooks::*;

use crate::error::ApiError;
use crate::state::AppState;

/// Delivery's dependencies out of a server's state.
pub fn deps(st: &AppState) -> WebhookDeps {
    WebhookDeps {
        store: st.store.clone(),
        changes: st.changes.clone(),
        clock: st.clock.clone(),
    }
}

/// One delivery pass over the state's store (see [`sextant_control::webhooks::run_once`]).
pub async fn run_once(st: &AppState, hooks: &Webhooks) -> Result<Duration, ApiError> {
    Ok(sextant_control::webhooks::run_once(&deps(st), hooks).await?)
}
