//! The `deploy:` step: puts a model on a serving endpoint of this server —
//! creating the endpoint, or rolling the model out to its first variant by
//! the endpoint's policy (with the step's overrides) — and with `wait:`
//! follows the rollout to its end, failing when it is rolled back.
//!
//! The endpoint controller is reached through [`Deployer`], which the
//! server implements over its endpoints: the orchestrator knows what a step
//! asks for and how a rollout ended, not how an endpoint is defined.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sextant_core::pipeline_runs::ClaimedTask;

use super::Orchestrator;
use super::plan::StepResult;
use super::step::StepFailure;

/// What a `deploy:` step asks for, references resolved.
#[derive(Debug, Clone)]
pub struct DeployTarget {
    pub endpoint: String,
    pub model: String,
    /// `canary`, `linear`, `blue_green` or anything else for all at once;
    /// the endpoint's own strategy when `None`.
    pub strategy: Option<String>,
    pub percent: Option<f64>,
    pub bake: Option<Duration>,
}

/// What applying a target did.
#[derive(Debug, Clone, Default)]
pub struct Deployed {
    /// The rollout it started, if any.
    pub rollout: Option<String>,
    /// The registry version now deployed on the first variant, if known.
    pub version: Option<i64>,
}

/// Where a rollout is.
#[derive(Debug, Clone)]
pub enum RolloutProgress {
    /// Still the endpoint's live rollout.
    Running,
    /// It ended and succeeded; `version` is the version it deployed.
    Succeeded { version: Option<i64> },
    /// It ended any other way (`status` as the controller names it).
    Ended {
        model: String,
        status: String,
        reason: String,
    },
    /// Another rollout took its place before it ended.
    Replaced,
}

/// Why the endpoint controller refused or failed a deploy.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeployError {
    pub message: String,
    /// The request was wrong (retrying cannot help), not the controller.
    pub client_error: bool,
}

/// The endpoint controller as a `deploy:` step drives it.
pub trait Deployer: Send + Sync {
    /// Creates the endpoint with `target.model`, or rolls it out to the
    /// endpoint's first variant with the target's overrides.
    fn deploy(&self, target: DeployTarget) -> BoxFuture<'_, Result<Deployed, DeployError>>;
    /// Where rollout `id` of `endpoint` is.
    fn progress<'a>(
        &'a self,
        endpoint: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<RolloutProgress, DeployError>>;
    /// How often a waiting step looks at its rollout.
    fn poll_interval(&self) -> Duration;
}

/// A client mistake cannot get better by retrying; anything else may.
fn failure(e: DeployError) -> StepFailure {
    let message = format!("deploy: {}", e.message);
    if e.client_error {
        StepFailure::permanent(message)
    } else {
        StepFailure::retryable(message)
    }
}

impl Orchestrator {
    pub(super) async fn deploy(
        self: &Arc<Self>,
        claimed: &ClaimedTask,
        target: DeployTarget,
        wait: bool,
    ) -> Result<StepResult, StepFailure> {
        let endpoint = target.endpoint.clone();
        let deployed = self.deployer.deploy(target).await.map_err(failure)?;
        let mut result = StepResult::default();
        if let Some(v) = deployed.version {
            result.metrics.insert("deployed_version".into(), v as f64);
        }
        let (Some(id), true) = (deployed.rollout, wait) else {
            return Ok(result);
        };
        let every = self.deployer.poll_interval();
        let ended = self
            .heartbeating(claimed, None, async {
                loop {
                    tokio::time::sleep(every).await;
                    match self.deployer.progress(endpoint.as_str(), id.as_str()).await {
                        Ok(RolloutProgress::Running) => {}
                        Ok(p) => return Ok(p),
                        Err(e) => return Err(failure(e)),
                    }
                }
            })
            .await?;
        match ended {
            RolloutProgress::Succeeded { version } => {
                if let Some(v) = version {
                    result.metrics.insert("deployed_version".into(), v as f64);
                }
                Ok(result)
            }
            RolloutProgress::Ended {
                model,
                status,
                reason,
            } => Err(StepFailure::permanent(format!(
                "deploy: the rollout of {model} to endpoint '{endpoint}' ended {status}: {reason}"
            ))),
            RolloutProgress::Replaced | RolloutProgress::Running => Err(StepFailure::permanent(
                format!("deploy: the rollout to endpoint '{endpoint}' was replaced"),
            )),
        }
    }
}
