//! The MLflow-compatible REST API (3.17.2 wire format).
//!
//! Every RPC is served under `/api/2.0/mlflow` and its UI alias
//! `/ajax-api/2.0/mlflow`. Handlers read a [`wire::Fields`], call the
//! MetaStore on the blocking pool and write proto-JSON with [`convert`].

pub(crate) mod artifacts;
mod convert;
mod experiments;
mod logged_models;
mod registry;
mod registry_convert;
mod runs;
mod webhooks;
mod wire;

use sextant_core::entities::ViewType;
use sextant_core::search::{OrderBy, SearchKind, parse_order_by_list};
use sextant_store::token;

use crate::error::ApiError;
use crate::routes::{Api, Group, Route};
use wire::{Fields, invalid_value};

/// Where MLflow's RPCs are served: the REST API and the UI's mirror.
const RPC_MOUNTS: &[&str] = &["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];

pub(crate) const EXPERIMENTS: Group = rpc(experiments::ROUTES);
pub(crate) const RUNS: Group = rpc(runs::ROUTES);
pub(crate) const LOGGED_MODELS: Group = rpc(logged_models::ROUTES);
pub(crate) const REGISTRY: Group = rpc(registry::ROUTES);
pub(crate) const WEBHOOKS: Group = rpc(webhooks::ROUTES);
/// The UI's RPCs that MLflow serves under `/ajax-api` only.
pub(crate) const AJAX_ONLY: Group = Group {
    api: Api::Mlflow,
    mounts: &["/ajax-api/2.0/mlflow"],
    routes: experiments::AJAX_ROUTES,
};

const fn rpc(routes: &'static [Route]) -> Group {
    Group {
        api: Api::Mlflow,
        mounts: RPC_MOUNTS,
        routes,
    }
}

/// An experiment id: MLflow's ids are integers carried as strings.
fn experiment_id(s: &str) -> Result<i64, ApiError> {
    Ok(sextant_core::validation::parse_experiment_id(s)?)
}

/// `max_results` with its default; zero, negative or above `max` is a 400.
fn max_results(f: &Fields, field: &str, default: u64, max: u64) -> Result<u64, ApiError> {
    match f.opt_i64(field)? {
        None => Ok(default),
        Some(n) if n >= 1 && (n as u64) <= max => Ok(n as u64),
        Some(n) => Err(invalid_value(field, &serde_json::Value::from(n))),
    }
}

/// The offset named by `page_token` (0 without one).
fn page_offset(f: &Fields) -> Result<u64, ApiError> {
    match f.opt_str("page_token")? {
        Some(t) if !t.is_empty() => Ok(token::decode_offset(&t)?),
        _ => Ok(0),
    }
}

/// The token of the next page, if there is one.
fn next_page_token(next: Option<u64>) -> Option<String> {
    next.map(token::encode_offset)
}

/// A parsed `order_by` list; duplicates are a 400 (MLflow answers 500).
fn order_by(kind: SearchKind, clauses: &[String]) -> Result<Vec<OrderBy>, ApiError> {
    Ok(parse_order_by_list(kind, clauses)?)
}

/// A view type given by name or number.
fn view_type(f: &Fields, field: &str) -> Result<Option<ViewType>, ApiError> {
    match f.opt_enum(field)? {
        None => Ok(None),
        Some(s) => ViewType::parse(&s)
            .map(Some)
            .ok_or_else(|| invalid_value(field, &serde_json::Value::from(s.as_str()))),
    }
}
