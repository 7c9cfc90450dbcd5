//! Endpoints as the control plane keeps them: the definition applied
//! ([`config`]), the models it resolves to ([`resolve`]), the rollout state
//! machine ([`rollout`]) and the state stored for each endpoint.

pub mod config;
pub mod resolve;
pub mod rollout;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant_core::endpoints::StoredEndpoint;

use self::config::EndpointSpec;
use self::rollout::{Deployed, Rollout};

/// How often rollouts are evaluated.
pub const TICK: Duration = Duration::from_millis(250);

/// Where capture files go, relative to the artifact root.
pub const CAPTURE_PREFIX: &str = "datacapture";

/// Where the capture files of this server go, relative to the artifact root.
pub fn capture_prefix() -> PathBuf {
    PathBuf::from(CAPTURE_PREFIX)
}

/// The gateway variant a rollout serves a variant's new model as.
pub fn canary(variant: &str) -> String {
    format!("{variant}-canary")
}

/// Whether an endpoint serves as defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    InService,
    /// A rollout is in progress.
    Updating,
    Failed,
}

/// What the controller made of a definition (stored as the endpoint's state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointState {
    pub status: EndpointStatus,
    /// The stable model of each variant, by variant name.
    pub deployed: BTreeMap<String, Deployed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Deployed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// Ended rollouts, newest last.
    #[serde(default)]
    pub past_rollouts: Vec<Rollout>,
    /// Every traffic split installed, newest last.
    #[serde(default)]
    pub traffic: Vec<TrafficChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One traffic split and why it was installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficChange {
    pub time: i64,
    /// Percent of the endpoint's traffic by variant (gateway variant names).
    pub split: BTreeMap<String, f64>,
    pub reason: String,
}

/// A stored endpoint that does not read back: written by a bug, or by a newer server.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableEndpoint {
    #[error("stored endpoint '{name}': {source}")]
    Spec {
        name: String,
        source: serde_json::Error,
    },
    #[error("stored endpoint '{name}' state: {source}")]
    State {
        name: String,
        source: serde_json::Error,
    },
}

/// The definition and state of a stored endpoint.
pub fn parse_stored(
    e: &StoredEndpoint,
) -> Result<(EndpointSpec, EndpointState), UnreadableEndpoint> {
    let spec = serde_json::from_str(&e.spec).map_err(|source| UnreadableEndpoint::Spec {
        name: e.name.clone(),
        source,
    })?;
    let state = serde_json::from_str(&e.state).map_err(|source| UnreadableEndpoint::State {
        name: e.name.clone(),
        source,
    })?;
    Ok((spec, state))
}
