//! MLflow model registry calls: a registered model and its versions, as a
//! program (not the `mlflow` Python client) creates them.

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::request::{Body, Wait};
use crate::tracking::rpc;
use crate::{Client, ClientError};

/// A model version to register (`model-versions/create`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewVersion {
    /// The registered model's name.
    pub name: String,
    /// Where the version's files are: an artifact URI (`runs:/…`,
    /// `mlflow-artifacts:/…`, `models:/…`).
    pub source: String,
    /// The run that produced the files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl Client {
    /// Creates registered model `name`, with `description` if given;
    /// answers it (`registered_model`).
    pub async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<Value, ClientError> {
        let url = self.url(&rpc("registered-models", "create"), &[]);
        let mut body = json!({ "name": name });
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        let body = Body::Json(body);
        let answer: Value = self.call(Method::POST, url, body, Wait::Usual).await?;
        Ok(answer["registered_model"].clone())
    }

    /// Registers a new version; answers it (`model_version`, whose
    /// `version` is a string, as MLflow writes it).
    pub async fn create_model_version(&self, version: &NewVersion) -> Result<Value, ClientError> {
        let url = self.url(&rpc("model-versions", "create"), &[]);
        let answer: Value = self
            .call(Method::POST, url, Body::json(version), Wait::Usual)
            .await?;
        Ok(answer["model_version"].clone())
    }
}
