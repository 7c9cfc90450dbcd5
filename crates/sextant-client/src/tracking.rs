//! MLflow tracking calls: experiments and runs, as a program (not the
//! `mlflow` Python client) makes them.

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// The path of an MLflow 2.0 RPC.
pub(crate) fn rpc<'a>(group: &'a str, name: &'a str) -> [&'a str; 5] {
    ["api", "2.0", "mlflow", group, name]
}

/// Which runs to find (`runs/search`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    /// An MLflow search filter, e.g. ``tags.`mlflow.parentRunId` = '…'``.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter: String,
    pub max_results: u32,
}

/// A metric value to log to a run.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub step: i64,
}

impl Client {
    /// The experiment named `name`, or `None` when there is none.
    pub async fn experiment_by_name(&self, name: &str) -> Result<Option<Value>, ClientError> {
        let answer: Result<Value, ClientError> = self
            .get(
                &rpc("experiments", "get-by-name"),
                &[("experiment_name", name.to_string())],
            )
            .await;
        match answer {
            Ok(v) => Ok(Some(v["experiment"].clone())),
            Err(e) if e.error_code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates experiment `name`; answers its id.
    pub async fn create_experiment(&self, name: &str) -> Result<String, ClientError> {
        let url = self.url(&rpc("experiments", "create"), &[]);
        let answer: Value = self
            .call(
                Method::POST,
                url,
                Body::Json(json!({ "name": name })),
                Wait::Usual,
            )
            .await?;
        Ok(answer["experiment_id"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Starts a run in experiment `experiment_id`; answers the run
    /// (`{"info": …, "data": …}`).
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
    ) -> Result<Value, ClientError> {
        let url = self.url(&rpc("runs", "create"), &[]);
        let mut body = json!({ "experiment_id": experiment_id });
        if let Some(n) = run_name {
            body["run_name"] = json!(n);
        }
        let answer: Value = self
            .call(Method::POST, url, Body::Json(body), Wait::Usual)
            .await?;
        Ok(answer["run"].clone())
    }

    /// A run with its params, metrics and tags.
    pub async fn get_run(&self, run_id: &str) -> Result<Value, ClientError> {
        let answer: Value = self
            .get(&rpc("runs", "get"), &[("run_id", run_id.to_string())])
            .await?;
        Ok(answer["run"].clone())
    }

    /// The runs `search` finds (one page of at most `max_results`), each
    /// `{"info": …, "data": …}`.
    pub async fn search_runs(&self, search: &RunSearch) -> Result<Vec<Value>, ClientError> {
        let url = self.url(&rpc("runs", "search"), &[]);
        let answer: Value = self
            .call(Method::POST, url, Body::json(search), Wait::Usual)
            .await?;
        Ok(answer["runs"].as_array().cloned().unwrap_or_default())
    }

    /// Logs one metric value to run `run_id`.
    pub async fn log_metric(&self, run_id: &str, metric: &Metric) -> Result<(), ClientError> {
        let url = self.url(&rpc("runs", "log-metric"), &[]);
        let mut body = serde_json::to_value(metric).expect("a metric serializes");
        body["run_id"] = json!(run_id);
        self.call::<Value>(Method::POST, url, Body::Json(body), Wait::Usual)
            .await
            .map(drop)
    }
}
