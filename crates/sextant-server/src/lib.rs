//! Sextant's HTTP surface. This is the only crate that knows axum, status
//! codes and wire JSON; it converts domain types to wire types by hand.

mod error;
mod misc;
pub mod mlflow;
mod security;
mod state;

use axum::Router;

pub use error::{ApiError, ErrorCode};
pub use security::SecurityConfig;
pub use state::AppState;

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let security = state.security.clone();
    Router::new()
        .merge(misc::routes())
        .merge(mlflow::routes())
        .fallback(misc::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            security,
            security::check_host,
        ))
}
