//! The remote worker protocol: claim a step's task, renew its lease, report
//! its outcome. The work order and the outcome are the orchestrator's types
//! (this crate sits below nothing that defines them), so these calls take
//! any type that reads or writes their JSON.

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::v1;
use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// How long past its wait a claim may take before it counts as lost.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// A worker's request for a task.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    /// The lease owner name recorded on the task.
    pub worker: String,
    /// The lease asked for.
    pub lease_ms: i64,
    /// How long the server may hold the request while no task is ready.
    pub wait_ms: u64,
}

/// The answer to a claim: a work order, or none within the wait.
#[derive(Debug, Clone, Deserialize)]
pub struct Claimed<T> {
    pub task: Option<T>,
}

/// A lease renewal under the claim's fencing token.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Heartbeat {
    pub fencing: i64,
    pub lease_ms: i64,
}

impl Client {
    /// One long-poll for a work order; it may take the claim's wait plus a
    /// margin, whatever the client's usual timeout.
    pub async fn claim_task<T: DeserializeOwned>(
        &self,
        claim: &Claim,
    ) -> Result<Option<T>, ClientError> {
        let url = self.url(&v1(&["tasks", "claim"]), &[]);
        let wait = Wait::Exactly(Duration::from_millis(claim.wait_ms) + CLAIM_MARGIN);
        let claimed: Claimed<T> = self
            .call(Method::POST, url, Body::json(claim), wait)
            .await?;
        Ok(claimed.task)
    }

    /// Renews the lease of task `task_id`; a [`ClientError::Server`] with
    /// status 409 means the task is no longer this worker's.
    pub async fn heartbeat(&self, task_id: i64, beat: &Heartbeat) -> Result<(), ClientError> {
        let task = task_id.to_string();
        let url = self.url(&v1(&["tasks", &task, "heartbeat"]), &[]);
        self.call::<Value>(Method::POST, url, Body::json(beat), Wait::Usual)
            .await
            .map(drop)
    }

    /// Reports the outcome of task `task_id` under its fencing token; a stale
    /// holder's outcome is refused with 409.
    pub async fn report_outcome(
        &self,
        task_id: i64,
        fencing: i64,
        outcome: &impl Serialize,
    ) -> Result<(), ClientError> {
        let task = task_id.to_string();
        let url = self.url(&v1(&["tasks", &task, "outcome"]), &[]);
        let body = Body::Json(json!({ "fencing": fencing, "outcome": outcome }));
        self.call::<Value>(Method::POST, url, body, Wait::Usual)
            .await
            .map(drop)
    }
}
