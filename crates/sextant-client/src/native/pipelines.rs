//! Pipelines, their runs, the steps' logs and cache decisions.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::v1;
use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// What starting a run asks for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunRequest {
    /// Values of the pipeline's `params`, by name.
    pub params: Map<String, Value>,
    /// Run every step, reusing nothing from the step cache.
    pub no_cache: bool,
}

/// One page of an offset-paged listing (`pipelines`, `pipeline-runs`).
#[derive(Debug, Clone)]
pub struct OffsetPage {
    /// The items as the server describes them.
    pub items: Vec<Value>,
    /// Pass as `offset` for the next page; `None` on the last.
    pub next_offset: Option<u64>,
}

/// Which piece of a step's log to read.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub step: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The attempt; `None` asks only about the step's state.
    pub attempt: Option<i64>,
    /// Bytes of the attempt's stream already read.
    pub offset: u64,
}

/// A piece of a step's log and where the step stands.
#[derive(Debug, Clone, Deserialize)]
pub struct LogChunk {
    /// The text from the asked offset.
    #[serde(default)]
    pub data: String,
    /// Where the next read starts.
    pub next_offset: u64,
    /// The attempt read (0 before the first).
    #[serde(default)]
    pub attempt: i64,
    /// Which stream was read: `stdout` or `stderr`.
    #[serde(default)]
    pub stream: String,
    /// Attempts the step has made so far.
    #[serde(default)]
    pub attempts: i64,
    /// The attempt's stream is whole: no more will be written to it.
    #[serde(default)]
    pub complete: bool,
    /// The step has ended: no attempt will follow.
    #[serde(default)]
    pub finished: bool,
    /// The step's state.
    #[serde(default)]
    pub status: String,
}

impl Client {
    /// Stores a pipeline file's text under `name`; the answer's `result`
    /// says whether it was created, changed or left as it was.
    pub async fn put_pipeline(&self, name: &str, yaml: String) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["pipelines", name]), &[]);
        self.call(Method::PUT, url, Body::Yaml(yaml), Wait::Usual)
            .await
    }

    /// Starts a run of stored pipeline `name`; answers the run (its `id`).
    pub async fn start_run(&self, name: &str, req: &RunRequest) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["pipelines", name, "runs"]), &[]);
        self.call(Method::POST, url, Body::json(req), Wait::Usual)
            .await
    }

    /// A pipeline run with its steps.
    pub async fn get_pipeline_run(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&v1(&["pipeline-runs", id]), &[]).await
    }

    /// Cancels a run.
    pub async fn cancel_run(&self, id: &str) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["pipeline-runs", id, "cancel"]), &[]);
        self.call(Method::POST, url, Body::Json(json!({})), Wait::Usual)
            .await
    }

    /// Resumes a failed or cancelled run from its failed steps.
    pub async fn retry_run(&self, id: &str) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["pipeline-runs", id, "retry"]), &[]);
        self.call(Method::POST, url, Body::Json(json!({})), Wait::Usual)
            .await
    }

    /// Why a step of a run was (or was not) served from the step cache.
    pub async fn explain_cache(&self, run: &str, step: &str) -> Result<Value, ClientError> {
        self.get(&v1(&["pipeline-runs", run, "steps", step, "cache"]), &[])
            .await
    }

    /// One page of stored pipelines, by name.
    pub async fn list_pipelines(
        &self,
        max_results: u64,
        offset: u64,
    ) -> Result<OffsetPage, ClientError> {
        self.offset_page("pipelines", "pipelines", &[], max_results, offset)
            .await
    }

    /// One page of runs, newest first; `filter` holds `pipeline` and
    /// `status` pairs.
    pub async fn list_pipeline_runs(
        &self,
        filter: &[(&str, String)],
        max_results: u64,
        offset: u64,
    ) -> Result<OffsetPage, ClientError> {
        self.offset_page("pipeline-runs", "runs", filter, max_results, offset)
            .await
    }

    async fn offset_page(
        &self,
        path: &str,
        field: &str,
        filter: &[(&str, String)],
        max_results: u64,
        offset: u64,
    ) -> Result<OffsetPage, ClientError> {
        let mut query = filter.to_vec();
        query.push(("max_results", max_results.to_string()));
        query.push(("offset", offset.to_string()));
        let page: Value = self.get(&v1(&[path]), &query).await?;
        Ok(OffsetPage {
            items: page[field].as_array().cloned().unwrap_or_default(),
            next_offset: page["next_offset"].as_u64(),
        })
    }

    /// A piece of a step's captured stdout or stderr.
    pub async fn step_log(&self, run: &str, q: &LogQuery) -> Result<LogChunk, ClientError> {
        let mut query = vec![
            ("step", q.step.clone()),
            ("stream", q.stream.clone()),
            ("offset", q.offset.to_string()),
        ];
        query.extend(q.attempt.map(|a| ("attempt", a.to_string())));
        self.get(&v1(&["pipeline-runs", run, "logs"]), &query).await
    }
}
