//! Monitors and their runs (reports).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::v1;
use crate::request::{Body, Wait};
use crate::{Applied, Client, ClientError, Definition};

impl Client {
    /// Creates or replaces monitor `name`.
    pub async fn put_monitor(
        &self,
        name: &str,
        definition: Definition,
    ) -> Result<Applied, ClientError> {
        let url = self.url(&v1(&["monitors", name]), &[]);
        let (status, body) = self
            .call_status(Method::PUT, url, definition.body(), Wait::Usual)
            .await?;
        Ok(Applied {
            created: status == StatusCode::CREATED,
            body,
        })
    }

    /// A monitor with its definition and last run.
    pub async fn get_monitor(&self, name: &str) -> Result<Value, ClientError> {
        self.get(&v1(&["monitors", name]), &[]).await
    }

    /// Every monitor, as `{"monitors": [...]}`.
    pub async fn list_monitors(&self) -> Result<Value, ClientError> {
        self.get(&v1(&["monitors"]), &[]).await
    }

    /// Deletes monitor `name` and its runs.
    pub async fn delete_monitor(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&v1(&["monitors", name]), &[]);
        self.call::<Value>(Method::DELETE, url, Body::Json(Value::Null), Wait::Usual)
            .await
            .map(drop)
    }

    /// Runs monitor `name` now; `window` is `{"window": "1h"}`,
    /// `{"window_start", "window_end"}` in ms, or `{}` for its own window.
    /// Answers the run, failed or not.
    pub async fn run_monitor(&self, name: &str, window: &Value) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["monitors", name, "runs"]), &[]);
        self.call(Method::POST, url, Body::Json(window.clone()), Wait::Usual)
            .await
    }

    /// The newest `max_results` runs of monitor `name`, as `{"runs": [...]}`.
    pub async fn monitor_runs(&self, name: &str, max_results: u64) -> Result<Value, ClientError> {
        self.get(
            &v1(&["monitors", name, "runs"]),
            &[("max_results", max_results.to_string())],
        )
        .await
    }
}
