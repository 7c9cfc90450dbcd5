//! Applying a definition: resolve and load its models, plan the change
//! ([`plan_apply`]), install it, store it; and the registry events that
//! apply a followed model's new version.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sextant_core::endpoints::{EndpointEvent, StoredEndpoint};

use super::{
    Deps, EndpointError, EndpointView, Endpoints, HISTORY, Planned, event, parse_stored,
    resolve_error,
};
use crate::Predictor;
use crate::endpoints::apply::{Applied, ResolvedModels, plan_apply};
use crate::endpoints::config::EndpointSpec;
use crate::endpoints::resolve;
use crate::endpoints::rollout::{Deployed, RolloutStatus};
use crate::endpoints::{EndpointState, TrafficChange};

impl Endpoints {
    /// Creates or updates an endpoint from its definition. A changed model
    /// of a variant starts a rollout by the definition's policy.
    pub async fn apply(
        &self,
        deps: &Deps,
        name: &str,
        spec: EndpointSpec,
    ) -> Result<(bool, EndpointView), EndpointError> {
        sextant_core::endpoints::validate_endpoint_name(name)?;
        spec.check()?;
        if let Some(n) = &spec.name
            && n != name
        {
            return Err(EndpointError::Invalid(format!(
                "the definition names endpoint '{n}' but was applied to '{name}'"
            )));
        }
        let guard = self.changing.lock().await;
        let n = name.to_string();
        let existing = deps
            .db(move |s| match s.get_endpoint(&n) {
                Ok(e) => Ok(Some(e)),
                Err(sextant_store::StoreError::Domain(sextant_core::Error::NotFound(_))) => {
                    Ok(None)
                }
                Err(e) => Err(e),
            })
            .await?;
        let resolved = self.resolve_all(deps, &spec).await?;
        let now = self.clock.now_ms();
        let existing = match &existing {
            Some(e) => Some(parse_stored(e)?.1),
            None => None,
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let Applied {
            created,
            mut state,
            event: kind,
            fresh,
        } = plan_apply(name, existing, &resolved.models, &spec, now, id)?;
        let warnings = self.approval_warnings(deps, &fresh).await;
        let split = self.install(deps, name, &spec, &state).await?;
        self.take_baseline(name, &state);
        let reason = match &state.rollout {
            Some(r) if r.status == RolloutStatus::InProgress && r.started_ms == now => format!(
                "{:?} rollout of {} into variant {} started",
                r.policy.strategy, r.to.resolved, r.variant
            ),
            _ if created => "endpoint created".into(),
            _ => "endpoint updated".into(),
        };
        push_traffic(&mut state, now, split, reason);
        let stored = self
            .store(
                deps,
                name,
                Some(&spec),
                &state,
                event(kind, json!({"name": name})),
            )
            .await?;
        drop(guard);
        // An all-at-once rollout completes on the spot.
        if state
            .rollout
            .as_ref()
            .is_some_and(|r| r.status == RolloutStatus::InProgress)
        {
            self.tick_one(deps, name).await;
        }
        let mut view = self
            .view(deps, name)
            .await
            .unwrap_or_else(|_| EndpointView {
                name: name.to_string(),
                spec,
                state,
                created_time: stored.created_time,
                updated_time: stored.updated_time,
                stats: Vec::new(),
                time_left_ms: None,
                warnings: Vec::new(),
            });
        view.warnings = warnings;
        Ok((created, view))
    }

    /// A warning for each registry version among `fresh` that is not approved: it is
    /// served all the same (approval gates `follow`, not a person's explicit change).
    async fn approval_warnings(&self, deps: &Deps, fresh: &[Deployed]) -> Vec<String> {
        let mut warnings = Vec::new();
        for d in fresh {
            let (Some(model), Some(version)) = (d.model.clone(), d.version) else {
                continue;
            };
            let Ok(v) = deps.db(move |s| s.get_model_version(&model, version)).await else {
                continue;
            };
            let status = v.approval.status;
            if status != sextant_core::registry::ApprovalStatus::Approved {
                tracing::warn!(model = %d.resolved, approval = %status, "rolling out a version that is not approved");
                warnings.push(format!(
                    "{} is not approved (its approval is {status}); it is served anyway",
                    d.resolved
                ));
            }
        }
        warnings
    }

    /// Resolves every model the definition names (validating them).
    async fn resolve_all(
        &self,
        deps: &Deps,
        spec: &EndpointSpec,
    ) -> Result<Resolved, EndpointError> {
        let mut variants = BTreeMap::new();
        let mut loaded = Vec::new();
        for v in &spec.variants {
            let (uri, rt, roots) = (v.model.clone(), v.runtime, deps.data_roots.clone());
            let d = deps
                .db(move |s| Ok(resolve::resolve(s, &uri, rt, &roots)))
                .await?
                .map_err(resolve_error)?;
            // Loading now makes a broken model a 400 before anything changes.
            loaded.push(self.load(deps, &Planned::of(v, &d)).await?);
            variants.insert(v.name.clone(), d);
        }
        let shadow = match &spec.shadow {
            Some(s) => {
                let (uri, rt, roots) = (s.model.clone(), s.runtime, deps.data_roots.clone());
                let d = deps
                    .db(move |s| Ok(resolve::resolve(s, &uri, rt, &roots)))
                    .await?
                    .map_err(resolve_error)?;
                loaded.push(
                    self.load(
                        deps,
                        &Planned {
                            name: s.name.clone(),
                            deployed: d.clone(),
                            weight: 0.0,
                            max_concurrency: 64,
                            instances: None,
                        },
                    )
                    .await?,
                );
                Some(d)
            }
            None => None,
        };
        Ok(Resolved {
            models: ResolvedModels { variants, shadow },
            _loaded: loaded,
        })
    }

    pub(super) async fn store(
        &self,
        deps: &Deps,
        name: &str,
        spec: Option<&EndpointSpec>,
        state: &EndpointState,
        ev: EndpointEvent,
    ) -> Result<StoredEndpoint, EndpointError> {
        let name = name.to_string();
        let state = serde_json::to_string(state).expect("state serializes");
        let spec = spec.map(|s| serde_json::to_string(s).expect("spec serializes"));
        let now = self.clock.now_ms();
        let stored = deps
            .db(move |s| match spec {
                Some(spec) => s.put_endpoint_at(&name, &spec, &state, Some(&ev), now),
                None => s.set_endpoint_state_at(&name, &state, Some(&ev), now),
            })
            .await?;
        deps.changes.notify_waiters();
        Ok(stored)
    }

    /// Reacts to a registry event: endpoints that follow the model deploy
    /// the version it names.
    pub(super) async fn follow(&self, deps: &Deps, e: &sextant_core::registry::Event) {
        let approved = e.kind == "model_version.approved";
        if !(approved || e.kind == "model_version.alias_set") {
            return;
        }
        let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
        let (Some(model), Some(version)) = (
            payload["name"].as_str().map(str::to_string),
            payload["version"].as_i64(),
        ) else {
            return;
        };
        let Ok(all) = self.list(deps).await else {
            return;
        };
        for ep in all {
            let Some(f) = &ep.spec.follow else { continue };
            let wanted = f.model == model
                && match &f.alias {
                    Some(alias) => !approved && payload["alias"].as_str() == Some(alias.as_str()),
                    None => approved,
                };
            let first = &ep.spec.variants[0];
            let current = ep.state.deployed.get(&first.name);
            if !wanted
                || current.and_then(|d| d.version) == Some(version)
                    && current.and_then(|d| d.model.as_deref()) == Some(model.as_str())
            {
                continue;
            }
            let mut spec = ep.spec.clone();
            if f.alias.is_none() {
                spec.variants[0].model = format!("models:/{model}/{version}");
            }
            tracing::info!(endpoint = %ep.name, %model, version, "deploying a followed model version");
            if let Err(err) = self.apply(deps, &ep.name, spec).await {
                tracing::warn!(endpoint = %ep.name, error = %err, "cannot deploy the followed version");
            }
        }
    }
}

struct Resolved {
    models: ResolvedModels,
    /// The models, loaded: held until they are installed, so they are not started twice.
    _loaded: Vec<Arc<dyn Predictor>>,
}

pub(super) fn push_traffic(
    state: &mut EndpointState,
    time: i64,
    split: BTreeMap<String, f64>,
    reason: String,
) {
    state.traffic.push(TrafficChange {
        time,
        split,
        reason,
    });
    let extra = state.traffic.len().saturating_sub(HISTORY);
    state.traffic.drain(..extra);
}
