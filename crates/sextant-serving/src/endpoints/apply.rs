//! What applying a definition does to an endpoint's state, pure: given the
//! stored state (if any), the models the definition resolved to and the
//! time, the new state — a changed model of a variant becomes a rollout by
//! the definition's policy. The controller does the IO around it (reading
//! the store, loading models, installing the gateway, storing the result).

use std::collections::BTreeMap;

use super::config::{EndpointSpec, Strategy};
use super::rollout::{Deployed, Rollout, RolloutStatus};
use super::{EndpointState, EndpointStatus};

/// The models a definition names, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedModels {
    /// By variant name.
    pub variants: BTreeMap<String, Deployed>,
    pub shadow: Option<Deployed>,
}

/// The state a definition leads to.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Whether the endpoint is new.
    pub created: bool,
    pub state: EndpointState,
    /// The event kind to record: `endpoint.created` or `endpoint.updated`.
    pub event: &'static str,
    /// Models this change puts into service (new variants, changed models).
    pub fresh: Vec<Deployed>,
}

/// Why a definition cannot be applied to the endpoint as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("endpoint '{0}' has a rollout in progress: promote or roll it back first")]
    RolloutInProgress(String),
    #[error(
        "{count} variants change model at once; a {strategy:?} rollout moves one variant at a time"
    )]
    SeveralChanged { count: usize, strategy: Strategy },
}

impl ApplyError {
    /// The wire name of the error.
    pub fn error_code(&self) -> &'static str {
        match self {
            ApplyError::RolloutInProgress(_) => "RESOURCE_CONFLICT",
            ApplyError::SeveralChanged { .. } => "INVALID_PARAMETER_VALUE",
        }
    }
}

/// The state of endpoint `name` once `spec` (whose models resolved to `resolved`) is
/// applied at `now` over `existing`; a rollout it starts is called `rollout_id`.
pub fn plan_apply(
    name: &str,
    existing: Option<EndpointState>,
    resolved: &ResolvedModels,
    spec: &EndpointSpec,
    now: i64,
    rollout_id: String,
) -> Result<Applied, ApplyError> {
    let Some(mut state) = existing else {
        return Ok(Applied {
            created: true,
            state: EndpointState {
                status: EndpointStatus::InService,
                deployed: resolved.variants.clone(),
                shadow: resolved.shadow.clone(),
                rollout: None,
                past_rollouts: Vec::new(),
                traffic: Vec::new(),
                message: None,
            },
            event: "endpoint.created",
            fresh: resolved.variants.values().cloned().collect(),
        });
    };
    let rolling = state
        .rollout
        .as_ref()
        .filter(|r| r.status == RolloutStatus::InProgress);
    // What each variant is headed for: a rolling one's new model.
    let current = |v: &String| match rolling {
        Some(r) if &r.variant == v => Some(&r.to),
        _ => state.deployed.get(v),
    };
    let changed: Vec<&String> = resolved
        .variants
        .iter()
        .filter(|(v, d)| {
            current(v).is_some_and(|old| old.resolved != d.resolved || old.runtime != d.runtime)
        })
        .map(|(v, _)| v)
        .collect();
    let fresh = resolved
        .variants
        .iter()
        .filter(|(v, _)| changed.contains(v) || current(v).is_none())
        .map(|(_, d)| d.clone())
        .collect();
    if rolling.is_some() && !changed.is_empty() {
        return Err(ApplyError::RolloutInProgress(name.to_string()));
    }
    let gradual = spec.rollout.strategy != Strategy::AllAtOnce;
    if gradual && changed.len() > 1 {
        return Err(ApplyError::SeveralChanged {
            count: changed.len(),
            strategy: spec.rollout.strategy,
        });
    }
    // Variants added or removed, weights and everything else apply now.
    let rolling_variant = rolling.map(|r| r.variant.clone());
    let mut deployed = BTreeMap::new();
    for (v, d) in &resolved.variants {
        // A changed variant keeps serving its stable model until the rollout ends, and
        // so does the one rolling now.
        let keep = state
            .deployed
            .get(v)
            .filter(|_| changed.contains(&v) || rolling_variant.as_ref() == Some(v));
        deployed.insert(v.clone(), keep.cloned().unwrap_or_else(|| d.clone()));
    }
    let first_changed = changed.first().map(|v| (*v).clone());
    state.deployed = deployed;
    state.shadow = resolved.shadow.clone();
    if let Some(v) = first_changed {
        state.rollout = Some(Rollout {
            id: rollout_id,
            traffic_percent: Rollout::initial_percent(&spec.rollout),
            from: state.deployed[&v].clone(),
            to: resolved.variants[&v].clone(),
            variant: v,
            policy: spec.rollout.clone(),
            status: RolloutStatus::InProgress,
            started_ms: now,
            step_started_ms: now,
            ended_ms: None,
            reason: None,
            counters: None,
        });
        state.status = EndpointStatus::Updating;
    }
    Ok(Applied {
        created: false,
        state,
        event: "endpoint.updated",
        fresh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::config::{RolloutPolicy, Runtime, VariantSpec};

    fn model(v: i64) -> Deployed {
        Deployed {
            uri: format!("models:/m/{v}"),
            resolved: format!("models:/m/{v}"),
            model: Some("m".into()),
            version: Some(v),
            runtime: Runtime::Onnx,
        }
    }

    fn variant(name: &str, v: i64) -> VariantSpec {
        VariantSpec {
            name: name.into(),
            model: format!("models:/m/{v}"),
            runtime: Runtime::Onnx,
            weight: 1.0,
            max_concurrency: 64,
            instances: None,
        }
    }

    fn spec(strategy: Strategy, variants: &[(&str, i64)]) -> EndpointSpec {
        EndpointSpec {
            name: None,
            variants: variants.iter().map(|(n, v)| variant(n, *v)).collect(),
            shadow: None,
            capture: None,
            rollout: RolloutPolicy {
                strategy,
                percent: 25.0,
                ..RolloutPolicy::default()
            },
            follow: None,
            allowed_origins: Vec::new(),
        }
    }

    fn resolved(variants: &[(&str, i64)]) -> ResolvedModels {
        ResolvedModels {
            variants: variants
                .iter()
                .map(|(n, v)| (n.to_string(), model(*v)))
                .collect(),
            shadow: None,
        }
    }

    fn apply(
        existing: Option<EndpointState>,
        strategy: Strategy,
        variants: &[(&str, i64)],
        now: i64,
    ) -> Result<Applied, ApplyError> {
        plan_apply(
            "churn",
            existing,
            &resolved(variants),
            &spec(strategy, variants),
            now,
            format!("r{now}"),
        )
    }

    #[test]
    fn a_new_endpoint_serves_its_models_at_once() {
        let a = apply(None, Strategy::Canary, &[("primary", 1)], 5).unwrap();
        assert!(a.created);
        assert_eq!(a.event, "endpoint.created");
        assert_eq!(a.state.status, EndpointStatus::InService);
        assert_eq!(a.state.deployed["primary"], model(1));
        assert!(a.state.rollout.is_none());
        assert_eq!(a.fresh, [model(1)]);
    }

    #[test]
    fn a_changed_model_starts_a_rollout_from_the_stable_one() {
        let first = apply(None, Strategy::Canary, &[("primary", 1)], 5).unwrap();
        let a = apply(Some(first.state), Strategy::Canary, &[("primary", 2)], 7).unwrap();
        assert!(!a.created);
        assert_eq!(a.event, "endpoint.updated");
        assert_eq!(a.state.status, EndpointStatus::Updating);
        // The stable model serves until the rollout ends.
        assert_eq!(a.state.deployed["primary"], model(1));
        let r = a.state.rollout.as_ref().unwrap();
        assert_eq!((r.id.as_str(), r.variant.as_str()), ("r7", "primary"));
        assert_eq!((&r.from, &r.to), (&model(1), &model(2)));
        assert_eq!((r.started_ms, r.step_started_ms), (7, 7));
        assert_eq!(r.traffic_percent, 25.0);
        assert_eq!(a.fresh, [model(2)]);
    }

    #[test]
    fn the_same_models_again_change_nothing_and_keep_a_rollout_going() {
        let first = apply(None, Strategy::Canary, &[("primary", 1)], 5).unwrap();
        let rolling = apply(Some(first.state), Strategy::Canary, &[("primary", 2)], 7).unwrap();
        let again = apply(
            Some(rolling.state.clone()),
            Strategy::Canary,
            &[("primary", 2)],
            9,
        )
        .unwrap();
        assert_eq!(again.state.rollout, rolling.state.rollout);
        assert_eq!(again.state.deployed["primary"], model(1));
        assert!(again.fresh.is_empty());
    }

    #[test]
    fn a_change_during_a_rollout_is_a_conflict() {
        let first = apply(None, Strategy::Canary, &[("primary", 1)], 5).unwrap();
        let rolling = apply(Some(first.state), Strategy::Canary, &[("primary", 2)], 7).unwrap();
        let err = apply(Some(rolling.state), Strategy::Canary, &[("primary", 3)], 9).unwrap_err();
        assert_eq!(err, ApplyError::RolloutInProgress("churn".into()));
        assert_eq!(err.error_code(), "RESOURCE_CONFLICT");
        assert_eq!(
            err.to_string(),
            "endpoint 'churn' has a rollout in progress: promote or roll it back first"
        );
    }

    #[test]
    fn a_gradual_rollout_moves_one_variant_at_a_time() {
        let both = [("a", 1), ("b", 1)];
        let first = apply(None, Strategy::Linear, &both, 5).unwrap();
        let err = apply(
            Some(first.state.clone()),
            Strategy::Linear,
            &[("a", 2), ("b", 2)],
            7,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 variants change model at once; a Linear rollout moves one variant at a time"
        );
        assert_eq!(err.error_code(), "INVALID_PARAMETER_VALUE");
        // All at once may change several; the first changed variant rolls.
        let a = apply(
            Some(first.state),
            Strategy::AllAtOnce,
            &[("a", 2), ("b", 2)],
            7,
        )
        .unwrap();
        assert_eq!(a.state.rollout.unwrap().variant, "a");
        assert_eq!(a.fresh, [model(2), model(2)]);
    }

    #[test]
    fn an_added_variant_serves_at_once_and_a_removed_one_goes() {
        let first = apply(None, Strategy::Canary, &[("a", 1)], 5).unwrap();
        let a = apply(Some(first.state), Strategy::Canary, &[("b", 3)], 7).unwrap();
        assert_eq!(a.state.deployed.keys().collect::<Vec<_>>(), ["b"]);
        assert!(a.state.rollout.is_none());
        assert_eq!(a.state.status, EndpointStatus::InService);
        assert_eq!(a.fresh, [model(3)]);
    }
}
