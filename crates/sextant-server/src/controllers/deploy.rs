//! The orchestrator's `deploy:` steps, carried out by this server's
//! endpoint controller.

use std::time::Duration;

use futures::future::BoxFuture;
use sextant_control::pipelines::{DeployError, DeployTarget, Deployed, Deployer, RolloutProgress};

use std::sync::Arc;

use sextant_serving::controller::{Deps, Endpoints};
use sextant_serving::endpoints::config::{
    EndpointSpec, RolloutPolicy, Runtime, Strategy, VariantSpec,
};
use sextant_serving::endpoints::rollout::RolloutStatus;

use crate::error::deploy_refusal;

/// [`Deployer`] over the server's endpoint controller. It holds the
/// controller and its dependencies only, so the orchestrator holding it
/// holds no way back to itself.
pub(crate) struct EndpointDeployer {
    endpoints: Arc<Endpoints>,
    deps: Deps,
}

impl EndpointDeployer {
    pub(crate) fn new(endpoints: Arc<Endpoints>, deps: Deps) -> Self {
        EndpointDeployer { endpoints, deps }
    }
}

impl Deployer for EndpointDeployer {
    fn deploy(&self, t: DeployTarget) -> BoxFuture<'_, Result<Deployed, DeployError>> {
        Box::pin(async move {
            let (eps, deps) = (&self.endpoints, &self.deps);
            let mut spec = match eps.view(deps, &t.endpoint).await {
                Ok(v) => v.spec,
                Err(e) if e.error_code() == "RESOURCE_DOES_NOT_EXIST" => EndpointSpec {
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
                Err(e) => return Err(deploy_refusal(e)),
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
            let (_, view) = eps
                .apply(deps, &t.endpoint, spec)
                .await
                .map_err(deploy_refusal)?;
            Ok(Deployed {
                rollout: view.state.rollout.as_ref().map(|r| r.id.clone()),
                version: view
                    .state
                    .deployed
                    .get(&view.spec.variants[0].name)
                    .and_then(|d| d.version),
            })
        })
    }

    fn progress<'a>(
        &'a self,
        endpoint: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<RolloutProgress, DeployError>> {
        Box::pin(async move {
            let v = self
                .endpoints
                .view(&self.deps, endpoint)
                .await
                .map_err(deploy_refusal)?;
            if v.state.rollout.as_ref().is_some_and(|r| r.id == id) {
                return Ok(RolloutProgress::Running);
            }
            Ok(
                match v.state.past_rollouts.into_iter().find(|r| r.id == id) {
                    Some(r) if r.status == RolloutStatus::Succeeded => RolloutProgress::Succeeded {
                        version: r.to.version,
                    },
                    Some(r) => RolloutProgress::Ended {
                        model: r.to.resolved,
                        status: format!("{:?}", r.status),
                        reason: r.reason.unwrap_or_default(),
                    },
                    None => RolloutProgress::Replaced,
                },
            )
        })
    }

    fn poll_interval(&self) -> Duration {
        sextant_serving::endpoints::TICK
    }
}
