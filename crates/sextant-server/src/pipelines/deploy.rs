//! The `deploy:` step: puts a model on a serving endpoint of this server —
//! creating the endpoint, or rolling the model out to its first variant by
//! the endpoint's policy (with the step's overrides) — and with `wait:`
//! follows the rollout to its end, failing when it is rolled back.

use std::sync::Arc;
use std::time::Duration;

use sextant_core::pipeline_runs::ClaimedTask;

use super::Orchestrator;
use super::plan::StepResult;
use super::step::StepFailure;
use crate::endpoints::config::{EndpointSpec, RolloutPolicy, Runtime, Strategy, VariantSpec};
use crate::error::{ApiError, ErrorCode};

/// What a `deploy:` step asks for, references resolved.
pub(super) struct Target {
    pub endpoint: String,
    pub model: String,
    pub strategy: Option<String>,
    pub percent: Option<f64>,
    pub bake: Option<Duration>,
    pub wait: bool,
}

/// A client mistake cannot get better by retrying; anything else may.
fn failure(e: ApiError) -> StepFailure {
    let message = format!("deploy: {}", e.message);
    if e.code.status().is_client_error() {
        StepFailure::permanent(message)
    } else {
        StepFailure::retryable(message)
    }
}

impl Orchestrator {
    pub(super) async fn deploy(
        self: &Arc<Self>,
        claimed: &ClaimedTask,
        t: Target,
    ) -> Result<StepResult, StepFailure> {
        let st = &self.state;
        let eps = st.endpoints.clone();
        let deps = st.endpoint_deps();
        let mut spec = match eps.view(&deps, &t.endpoint).await {
            Ok(v) => v.spec,
            Err(e) if e.code == ErrorCode::ResourceDoesNotExist => EndpointSpec {
                name: None,
                variants: vec![VariantSpec {
                    name: "primary".into(),
                    model: t.model.clone(),
                    runtime: Runtime::Onnx,
                    weight: 1.0,
                    max_concurrency: 64,
                    instances: None,
                }],
                shadow: None,
                capture: None,
                rollout: RolloutPolicy::default(),
                follow: None,
                allowed_origins: Vec::new(),
            },
            Err(e) => return Err(failure(e)),
        };
        spec.variants[0].model = t.model.clone();
        if let Some(s) = &t.strategy {
            spec.rollout.strategy = match s.as_str() {
                "canary" => Strategy::Canary,
                "linear" => Strategy::Linear,
                "blue_green" => Strategy::BlueGreen,
                _ => Strategy::AllAtOnce,
            };
        }
        if let Some(p) = t.percent {
            spec.rollout.percent = p;
        }
        if let Some(b) = t.bake {
            spec.rollout.bake = b;
        }
        let (_, view) = eps.apply(&deps, &t.endpoint, spec).await.map_err(failure)?;
        let rollout = view.state.rollout.as_ref().map(|r| r.id.clone());
        let mut result = StepResult::default();
        if let Some(v) = view
            .state
            .deployed
            .get(&view.spec.variants[0].name)
            .and_then(|d| d.version)
        {
            result.metrics.insert("deployed_version".into(), v as f64);
        }
        let (Some(id), true) = (rollout, t.wait) else {
            return Ok(result);
        };
        let name = t.endpoint.clone();
        let ended = self
            .heartbeating(claimed, None, async {
                loop {
                    tokio::time::sleep(crate::endpoints::TICK).await;
                    match eps.view(&deps, &name).await {
                        Ok(v) if v.state.rollout.as_ref().is_some_and(|r| r.id == id) => {}
                        Ok(v) => {
                            return Ok(v.state.past_rollouts.into_iter().find(|r| r.id == id));
                        }
                        Err(e) => return Err(failure(e)),
                    }
                }
            })
            .await?;
        use crate::endpoints::rollout::RolloutStatus;
        match ended {
            Some(r) if r.status == RolloutStatus::Succeeded => {
                if let Some(v) = r.to.version {
                    result.metrics.insert("deployed_version".into(), v as f64);
                }
                Ok(result)
            }
            Some(r) => Err(StepFailure::permanent(format!(
                "deploy: the rollout of {} to endpoint '{}' ended {:?}: {}",
                r.to.resolved,
                t.endpoint,
                r.status,
                r.reason.unwrap_or_default()
            ))),
            None => Err(StepFailure::permanent(format!(
                "deploy: the rollout to endpoint '{}' was replaced",
                t.endpoint
            ))),
        }
    }
}
