//! The MLflow-compatible REST API (3.17.2 wire format).

mod artifacts;

use axum::Router;

use crate::state::AppState;

/// Every MLflow route, under `/api/2.0/mlflow`, `/api/3.0/mlflow` and their `/ajax-api` aliases.
pub fn routes() -> Router<AppState> {
    Router::new().merge(artifacts::routes())
}
