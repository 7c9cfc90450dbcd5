//! `/api/v1/runs/keys`: the metric, param or tag keys of an experiment's
//! runs, for a column chooser that searches instead of listing thousands.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use sextant_store::RunKeyKind;

use super::query;
use crate::error::ApiError;
use crate::state::AppState;

/// The most keys one answer lists.
const MAX_KEYS: u64 = 100_000;
/// Keys read per answer unless the client asks otherwise.
const DEFAULT_KEYS: u64 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    experiment_id: String,
    kind: String,
    /// Only keys containing this text, case-insensitively.
    contains: Option<String>,
    max_results: Option<u64>,
}

#[derive(Serialize)]
pub struct KeysPage {
    keys: Vec<String>,
    /// Whether more keys match than were listed.
    truncated: bool,
}

/// `GET /api/v1/runs/keys?experiment_id=&kind=metrics|params|tags&contains=&max_results=`.
pub async fn keys(
    State(st): State<AppState>,
    q: Result<Query<KeysQuery>, QueryRejection>,
) -> Result<Json<KeysPage>, ApiError> {
    let q = query(q)?;
    let experiment_id: i64 = q.experiment_id.trim().parse().map_err(|_| {
        ApiError::invalid(format!(
            "invalid experiment_id '{}': it must be an integer",
            q.experiment_id
        ))
    })?;
    let kind = match q.kind.as_str() {
        "metrics" => RunKeyKind::Metrics,
        "params" => RunKeyKind::Params,
        "tags" => RunKeyKind::Tags,
        other => {
            return Err(ApiError::invalid(format!(
                "invalid kind '{other}': it must be metrics, params or tags"
            )));
        }
    };
    let limit = match q.max_results {
        None => DEFAULT_KEYS,
        Some(n @ 1..=MAX_KEYS) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "invalid max_results {n}: it must be between 1 and {MAX_KEYS}"
            )));
        }
    };
    let needle = q.contains.unwrap_or_default().to_lowercase();
    // Filtering by text happens here, over every key (sorted, so the page is
    // stable): the store's dialects disagree on case-insensitive matching.
    // Without a text, the store reads only the page.
    let read = if needle.is_empty() {
        limit + 1
    } else {
        MAX_KEYS + 1
    };
    let all = st
        .db(move |s| s.experiment_keys(experiment_id, kind, read))
        .await?;
    let mut keys: Vec<String> = all
        .into_iter()
        .filter(|k| needle.is_empty() || k.to_lowercase().contains(&needle))
        .take(limit as usize + 1)
        .collect();
    let truncated = keys.len() as u64 > limit;
    keys.truncate(limit as usize);
    Ok(Json(KeysPage { keys, truncated }))
}
