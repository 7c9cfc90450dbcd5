//! MLflow's webhook API as Sextant extends it: subscriptions to MLflow's
//! `{entity, action}` events or to Sextant's event kinds, deliveries signed
//! with a secret the server keeps sealed, and each webhook's delivery log.

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// One event a webhook subscribes to.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum WebhookEvent {
    /// An MLflow event, e.g. entity `REGISTERED_MODEL`, action `CREATED`.
    Mlflow { entity: String, action: String },
    /// A Sextant event kind, or a prefix of kinds (`run.*`).
    Kind(String),
}

/// A webhook to create (`webhooks` create).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WebhookRequest {
    pub name: String,
    /// Where deliveries are POSTed.
    pub url: String,
    pub events: Vec<WebhookEvent>,
    /// Signs each delivery (`x-mlflow-signature`); never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Changes to a webhook: a field left `None` stays as it is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WebhookChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A new secret; empty removes the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Client {
    /// Creates a webhook; answers it (`webhook`, with its `webhook_id`).
    pub async fn create_webhook(&self, hook: &WebhookRequest) -> Result<Value, ClientError> {
        let url = self.url(&["api", "2.0", "mlflow", "webhooks"], &[]);
        let answer: Value = self
            .call(Method::POST, url, Body::json(hook), Wait::Usual)
            .await?;
        Ok(answer["webhook"].clone())
    }

    /// Changes webhook `id`; answers it as it now is.
    pub async fn update_webhook(
        &self,
        id: &str,
        changes: &WebhookChanges,
    ) -> Result<Value, ClientError> {
        let url = self.url(&["api", "2.0", "mlflow", "webhooks", id], &[]);
        let answer: Value = self
            .call(Method::PATCH, url, Body::json(changes), Wait::Usual)
            .await?;
        Ok(answer["webhook"].clone())
    }

    /// Sends an example of the webhook's first event now; answers the
    /// receiver's reply (`success`, `response_status`, or `error_message`).
    pub async fn test_webhook(&self, id: &str) -> Result<Value, ClientError> {
        let url = self.url(&["api", "2.0", "mlflow", "webhooks", id, "test"], &[]);
        let answer: Value = self
            .call(Method::POST, url, Body::Json(json!({})), Wait::Usual)
            .await?;
        Ok(answer["result"].clone())
    }

    /// The delivery log of webhook `id`: its attempts, oldest first.
    pub async fn webhook_deliveries(&self, id: &str) -> Result<Vec<Value>, ClientError> {
        let answer: Value = self
            .get(&["api", "2.0", "mlflow", "webhooks", id, "deliveries"], &[])
            .await?;
        Ok(answer["deliveries"].as_array().cloned().unwrap_or_default())
    }
}
