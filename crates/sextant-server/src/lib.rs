//! Sextant's HTTP surface. This is the only crate that knows axum, status
//! codes and wire JSON; it converts domain types to wire types by hand.

// The OpenAPI document is one `json!` literal, deeper than the default limit.
#![recursion_limit = "256"]

pub mod auth;
pub mod controllers;
mod error;
mod misc;
pub mod mlflow;
mod native;
pub mod routes;
mod security;
mod state;
pub mod telemetry;
mod ui;

use axum::Router;

pub use error::{ApiError, ErrorCode};
pub use security::SecurityConfig;
pub use state::AppState;

/// The whole HTTP application: every route of `routes::table()`, the
/// state-changing ones behind the request guard, each request (the data
/// plane's too) in its own span with an `x-request-id`.
pub fn router(state: AppState) -> Router {
    let security = state.security.clone();
    let changes = state.changes.clone();
    let gateways = state.endpoints.gateways.clone();
    let authn = state.authn();
    let audit = state
        .audit
        .clone()
        .map(|log| std::sync::Arc::new(auth::audit::Audit::new(log, state.auth.clone())));
    routes::router(security.clone(), &authn)
        .fallback(misc::not_found)
        .with_state(state)
        .merge(routes::guard_data_plane(
            sextant_serving::endpoints_router(gateways),
            &authn,
        ))
        // Inside CORS: a browser's preflight carries no credentials.
        .layer(axum::middleware::from_fn_with_state(
            authn,
            auth::authenticate,
        ))
        // Around authentication: it sees its refusals and, on the answer, the principal.
        .layer(axum::middleware::from_fn_with_state(
            audit,
            auth::audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            changes,
            announce_changes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            security.clone(),
            security::cors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            security,
            security::check_host,
        ))
        // Outermost, so the span covers the guards and their refusals.
        .layer(axum::middleware::from_fn(telemetry::trace_request))
}

/// Wakes whoever waits for new events (events feed, webhooks, triggers,
/// schedules, running steps) once the answer of a state-changing route is
/// ready, as its table row declares (`routes::Announce`): not after reads
/// (searches sent as POST included), inference or unknown paths, and after
/// a route declared eventless (logging to a run) only if an event was
/// appended after all. A training loop logging one metric per call would
/// otherwise have every waiter read the store again per call — measured,
/// four read transactions per log-metric.
async fn announce_changes(
    axum::extract::State(changes): axum::extract::State<std::sync::Arc<tokio::sync::Notify>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let events_before = sextant_store::events_appended();
    let resp = next.run(req).await;
    let wake = match resp.extensions().get::<routes::Announce>() {
        Some(routes::Announce::Always) => true,
        Some(routes::Announce::IfEventsAppended) => {
            sextant_store::events_appended() != events_before
        }
        None => false,
    };
    if wake {
        changes.notify_waiters();
    }
    resp
}
