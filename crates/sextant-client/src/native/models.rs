//! Registered models, their versions, approvals and aliases.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::v1;
use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// One page of `GET /api/v1/models`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelsPage {
    /// Each model as the server describes it.
    #[serde(default)]
    pub models: Vec<Value>,
    /// Pass as `page_token` for the next page; `None` on the last.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// An approval decision's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    Approved,
    Rejected,
    /// Undecided: a forced decision of `pending` withdraws one.
    Pending,
}

impl Approval {
    /// The wire name: `approved`, `rejected` or `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Pending => "pending",
            Approval::Approved => "approved",
            Approval::Rejected => "rejected",
        }
    }
}

/// A decision on one model version.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub status: Approval,
    /// Replace a decision already made (else the server answers 409).
    pub force: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A model's rules for approving its versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalSettings {
    /// Four-eyes: nobody approves a version they created.
    pub require_distinct_approver: bool,
    /// A pipeline's `register_model: {approval: …}` may decide.
    pub allow_pipeline_approval: bool,
}

/// A change of [`ApprovalSettings`]: the settings given change, the others
/// keep their value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApprovalSettingsUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_distinct_approver: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_pipeline_approval: Option<bool>,
}

/// The part of a model's description that holds its settings.
#[derive(Deserialize)]
struct WithSettings {
    approval_settings: ApprovalSettings,
}

impl Client {
    /// One page of registered models, filtered by an MLflow search filter.
    pub async fn list_models(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<ModelsPage, ClientError> {
        let mut query = vec![("max_results", max_results.to_string())];
        query.extend(filter.map(|f| ("filter", f.to_string())));
        query.extend(page_token.map(|t| ("page_token", t.to_string())));
        self.get(&v1(&["models"]), &query).await
    }

    /// A model with all its versions and their approvals.
    pub async fn get_model(&self, name: &str) -> Result<Value, ClientError> {
        self.get(&v1(&["models", name]), &[]).await
    }

    /// One version of a model, with its tags and approval.
    pub async fn get_model_version(&self, name: &str, version: i64) -> Result<Value, ClientError> {
        let version = version.to_string();
        self.get(&v1(&["models", name, "versions", &version]), &[])
            .await
    }

    /// Records `decision` on a version; answers the version as it now is.
    pub async fn decide(
        &self,
        name: &str,
        version: u64,
        decision: &Decision,
    ) -> Result<Value, ClientError> {
        let version = version.to_string();
        let url = self.url(
            &v1(&["models", name, "versions", &version, "approval"]),
            &[],
        );
        self.call(Method::POST, url, Body::json(decision), Wait::Usual)
            .await
    }

    /// A model's approval settings (reading them needs READ on it).
    pub async fn approval_settings(&self, name: &str) -> Result<ApprovalSettings, ClientError> {
        let m: WithSettings = self.get(&v1(&["models", name]), &[]).await?;
        Ok(m.approval_settings)
    }

    /// Changes the approval settings `update` names (MANAGE on the model);
    /// answers them all as they now are.
    pub async fn set_approval_settings(
        &self,
        name: &str,
        update: &ApprovalSettingsUpdate,
    ) -> Result<ApprovalSettings, ClientError> {
        let url = self.url(&v1(&["models", name, "approval-settings"]), &[]);
        self.call(Method::PATCH, url, Body::json(update), Wait::Usual)
            .await
    }

    /// Points `alias` of model `name` at `version`.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u64,
    ) -> Result<Value, ClientError> {
        let url = self.url(&v1(&["models", name, "aliases", alias]), &[]);
        let body = Body::Json(json!({ "version": version }));
        self.call(Method::PUT, url, body, Wait::Usual).await
    }

    /// Removes `alias` of model `name`.
    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), ClientError> {
        let url = self.url(&v1(&["models", name, "aliases", alias]), &[]);
        self.call::<Value>(Method::DELETE, url, Body::None, Wait::Usual)
            .await
            .map(drop)
    }
}
