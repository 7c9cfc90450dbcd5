//! The proxied artifact service (`/api/2.0/mlflow-artifacts/…`) and run artifact listing.

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
