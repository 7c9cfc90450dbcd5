//! The gateway variants a stored state calls for, before their models are
//! loaded: the server's controller and a separate gateway plan alike.

use std::sync::Arc;

use crate::Predictor;
use crate::endpoints::config::{self, EndpointSpec, Runtime};
use crate::endpoints::rollout::{Deployed, RolloutStatus};
use crate::endpoints::{EndpointState, canary};

/// One gateway variant the state calls for, before its model is loaded.
pub struct Planned {
    /// The gateway variant: the definition's name, or `<name>-canary`.
    pub name: String,
    pub deployed: Deployed,
    pub weight: f64,
    pub max_concurrency: usize,
    /// Autoscaled instances of a `process` model.
    pub instances: Option<config::InstancesSpec>,
}

impl Planned {
    /// Variant `v` serving `deployed` with all its traffic.
    pub(super) fn of(v: &config::VariantSpec, deployed: &Deployed) -> Planned {
        Planned {
            name: v.name.clone(),
            deployed: deployed.clone(),
            weight: v.weight,
            max_concurrency: v.max_concurrency,
            instances: v.instances.clone(),
        }
    }

    /// The key a loaded model is shared by: the same model with another instance
    /// policy is another pool.
    pub fn model_key(&self) -> (String, Runtime) {
        let resolved = match &self.instances {
            None => self.deployed.resolved.clone(),
            Some(i) => format!(
                "{} [instances {}..{} at {} in flight, in after {:?}]",
                self.deployed.resolved, i.min, i.max, i.target_in_flight, i.scale_in_after
            ),
        };
        (resolved, self.deployed.runtime)
    }

    /// The data plane's variant over the loaded model.
    pub fn install(&self, predictor: Arc<dyn Predictor>) -> crate::VariantSpec {
        crate::VariantSpec {
            name: self.name.clone(),
            predictor,
            weight: self.weight,
            max_concurrency: self.max_concurrency,
            model_version: self.deployed.version.map(|n| n.to_string()),
        }
    }
}

/// The gateway variants (and shadow with its sampling) a state calls for:
/// each variant's stable model, split with its canary while a rollout runs.
pub struct Plan {
    pub variants: Vec<Planned>,
    pub shadow: Option<(Planned, f64)>,
}

pub fn plan(spec: &EndpointSpec, state: &EndpointState) -> Plan {
    let mut variants = Vec::new();
    for v in &spec.variants {
        let Some(stable) = state.deployed.get(&v.name) else {
            continue;
        };
        let rolling = state
            .rollout
            .as_ref()
            .filter(|r| r.status == RolloutStatus::InProgress && r.variant == v.name);
        let new_share = rolling.map_or(0.0, |r| r.traffic_percent / 100.0);
        if new_share < 1.0 {
            variants.push(Planned {
                name: v.name.clone(),
                deployed: stable.clone(),
                weight: v.weight * (1.0 - new_share),
                max_concurrency: v.max_concurrency,
                instances: v.instances.clone(),
            });
        }
        if let Some(r) = rolling {
            variants.push(Planned {
                name: canary(&v.name),
                deployed: r.to.clone(),
                weight: v.weight * new_share,
                max_concurrency: v.max_concurrency,
                instances: v.instances.clone(),
            });
        }
    }
    let shadow = match (&spec.shadow, &state.shadow) {
        (Some(s), Some(d)) => Some((
            Planned {
                name: s.name.clone(),
                deployed: d.clone(),
                weight: 0.0,
                max_concurrency: 64,
                instances: None,
            },
            s.sampling_percent,
        )),
        _ => None,
    };
    Plan { variants, shadow }
}
