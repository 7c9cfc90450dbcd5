//! The remote worker protocol: `POST /api/v1/tasks/claim` (a long-poll for
//! a work order), `…/{id}/heartbeat` and `…/{id}/outcome`, fenced by the
//! token the claim returned (409 once the task is no longer the caller's).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{body, path};
use crate::error::ApiError;
use crate::state::AppState;
use sextant_control::pipelines::remote::{self, Outcome};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimRequest {
    worker: String,
    lease_ms: i64,
    #[serde(default)]
    wait_ms: u64,
}

/// `POST /api/v1/tasks/claim`: `{"task": <work order>}`, or `{"task": null}`
/// when none came within `wait_ms` (at most 30 s).
pub async fn claim(State(st): State<AppState>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let req: ClaimRequest = body(&bytes)?;
    let order = remote::claim(
        st.orchestrator(),
        req.worker,
        req.lease_ms,
        Duration::from_millis(req.wait_ms),
    )
    .await?;
    Ok(Json(json!({ "task": order })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatRequest {
    fencing: i64,
    lease_ms: i64,
}

/// `POST /api/v1/tasks/{id}/heartbeat`: renews the lease.
pub async fn heartbeat(
    State(st): State<AppState>,
    p: Result<Path<i64>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = path(p)?;
    let req: HeartbeatRequest = body(&bytes)?;
    remote::heartbeat(st.orchestrator(), id, req.fencing, req.lease_ms).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeRequest {
    fencing: i64,
    outcome: Outcome,
}

/// `POST /api/v1/tasks/{id}/outcome`: the attempt's result or failure.
pub async fn outcome(
    State(st): State<AppState>,
    p: Result<Path<i64>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = path(p)?;
    let req: OutcomeRequest = body(&bytes)?;
    remote::complete(st.orchestrator(), id, req.fencing, req.outcome).await?;
    Ok(Json(json!({})))
}
