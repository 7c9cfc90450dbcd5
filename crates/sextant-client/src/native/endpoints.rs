//! Serving endpoints: definitions, rollouts, ground truth, and the counters
//! a remote gateway reports.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::v1;
use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// An endpoint's (or monitor's) definition as sent to the server.
#[derive(Debug, Clone)]
pub enum Definition {
    /// A JSON document (the CLI's flags, a spec read back and changed).
    Json(Value),
    /// A YAML (or JSON) file's text, sent as it is so the server's errors
    /// name its lines.
    Yaml(String),
}

impl Definition {
    pub(crate) fn body(self) -> Body {
        match self {
            Definition::Json(v) => Body::Json(v),
            Definition::Yaml(text) => Body::Yaml(text),
        }
    }
}

/// What a PUT of an endpoint (or monitor) left.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The PUT created it (`201 Created`) rather than replacing one (`200`).
    pub created: bool,
    /// The endpoint (or monitor) as the server now describes it.
    pub body: Value,
}

impl Client {
    /// Creates or updates endpoint `name`; a changed model is rolled out by
    /// its policy. `wait` is added to the timeout: the server answers a
    /// process runtime's variant only once its child answers `/ping`.
    pub async fn put_endpoint(
        &self,
        name: &str,
        definition: Definition,
        wait: Duration,
    ) -> Result<Applied, ClientError> {
        let url = self.url(&v1(&["endpoints", name]), &[]);
        let (status, body) = self
            .call_status(Method::PUT, url, definition.body(), Wait::Longer(wait))
            .await?;
        Ok(Applied {
            created: status == StatusCode::CREATED,
            body,
        })
    }

    /// An endpoint: its spec, deployed models, rollout, traffic history and
    /// counters.
    pub async fn get_endpoint(&self, name: &str) -> Result<Value, ClientError> {
        self.get(&v1(&["endpoints", name]), &[]).await
    }

    /// Endpoint `name` read into the caller's type: a remote gateway reads
    /// the definition and deployed models into the serving crate's own
    /// types, which this crate (below it) does not know.
    pub async fn get_endpoint_as<T: DeserializeOwned>(&self, name: &str) -> Result<T, ClientError> {
        self.get(&v1(&["endpoints", name]), &[]).await
    }

    /// Each variant's traffic between the server's samples of the last hour:
    /// `{since, sample_every_ms, variants: [{variant, points: [...]}]}`.
    pub async fn endpoint_traffic(&self, name: &str) -> Result<Value, ClientError> {
        self.get(&v1(&["endpoints", name, "traffic"]), &[]).await
    }

    /// Every endpoint, as `{"endpoints": [...]}`.
    pub async fn list_endpoints(&self) -> Result<Value, ClientError> {
        self.get(&v1(&["endpoints"]), &[]).await
    }

    /// Deletes endpoint `name`.
    pub async fn delete_endpoint(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&v1(&["endpoints", name]), &[]);
        self.call::<Value>(Method::DELETE, url, Body::Json(Value::Null), Wait::Usual)
            .await
            .map(drop)
    }

    /// Gives the rollout's new model all of its traffic now.
    pub async fn promote(&self, name: &str) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["endpoints", name, "promote"]), &[]);
        self.call(Method::POST, url, Body::Json(Value::Null), Wait::Usual)
            .await
    }

    /// Returns the rollout's traffic to the stable model now.
    pub async fn rollback(&self, name: &str) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["endpoints", name, "rollback"]), &[]);
        self.call(Method::POST, url, Body::Json(Value::Null), Wait::Usual)
            .await
    }

    /// Stores labels for captured predictions: `{"inference_id", "label"}`
    /// records.
    pub async fn upload_ground_truth(
        &self,
        name: &str,
        records: &[Value],
    ) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["endpoints", name, "ground-truth"]), &[]);
        let body = Body::Json(json!({ "records": records }));
        self.call(Method::POST, url, body, Wait::Usual).await
    }

    /// Reports a remote gateway's per-variant counters for endpoint `name`.
    pub async fn report_gateway_stats(
        &self,
        name: &str,
        gateway: &str,
        variants: &impl Serialize,
    ) -> Result<(), ClientError> {
        let url = self.url(&v1(&["endpoints", name, "gateway-stats"]), &[]);
        let body = Body::Json(json!({ "gateway": gateway, "variants": variants }));
        self.call::<Value>(Method::POST, url, body, Wait::Usual)
            .await
            .map(drop)
    }

    /// Sends one inference request to endpoint `name` on the server's own
    /// gateway (`POST /endpoints/{name}/invocations`); answers the
    /// predictions document.
    pub async fn invoke(
        &self,
        name: &str,
        inference_id: Option<&str>,
        input: &Value,
    ) -> Result<Value, ClientError> {
        let url = self.url(&["endpoints", name, "invocations"], &[]);
        let mut req = self.http.post(url.clone()).json(input);
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        if let Some(id) = inference_id {
            req = req.header("x-inference-id", id);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::unreachable(&self.base, e))?;
        if !resp.status().is_success() {
            return Err(self.refusal(Method::POST, url, resp).await);
        }
        resp.json().await.map_err(|source| ClientError::Read {
            method: Method::POST,
            url: url.to_string(),
            source,
        })
    }
}
