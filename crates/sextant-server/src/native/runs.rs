//! `/api/v1/runs/keys`: the metric, param or tag keys of an experiment's
//! runs, for a column chooser that searches instead of listing thousands;
//! `/api/v1/runs/metric-summaries`: the latest, smallest and largest value
//! of the metrics of the runs a table shows.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sextant_core::entities::MetricSummary;
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

/// The most runs one metric-summaries request names: a page of the runs
/// table (MLflow's bulk metric histories have the same limit).
pub const MAX_SUMMARY_RUNS: usize = 100;
/// The most keys one metric-summaries request names.
pub const MAX_SUMMARY_KEYS: usize = 100;

#[derive(Serialize)]
pub struct SummariesPage {
    summaries: Vec<SummaryWire>,
}

/// One run's metric. Doubles as MLflow's JSON writes them: numbers, or
/// `"NaN"`, `"Infinity"`, `"-Infinity"`.
#[derive(Serialize)]
struct SummaryWire {
    run_id: String,
    key: String,
    last: Value,
    min: Value,
    max: Value,
    step: i64,
    timestamp: i64,
}

fn double(v: f64) -> Value {
    if v.is_nan() {
        Value::from("NaN")
    } else if v.is_infinite() {
        Value::from(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        Value::from(v)
    }
}

impl From<MetricSummary> for SummaryWire {
    fn from(m: MetricSummary) -> Self {
        SummaryWire {
            run_id: m.run_id,
            key: m.key,
            last: double(m.last),
            min: double(m.min),
            max: double(m.max),
            step: m.step,
            timestamp: m.timestamp,
        }
    }
}

/// `GET /api/v1/runs/metric-summaries?run_id=…&run_id=…[&key=…&key=…]`: for
/// each run named and each key (every key of the run when none is named),
/// the latest value with its step and time, and the smallest and largest
/// value (NaN skipped; NaN when every value is NaN).
pub async fn metric_summaries(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<SummariesPage>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?;
    let (mut run_ids, mut keys) = (Vec::new(), Vec::new());
    for (name, value) in pairs {
        match name.as_str() {
            "run_id" => run_ids.push(value),
            "key" => keys.push(value),
            other => {
                return Err(ApiError::invalid(format!(
                    "invalid query: unknown parameter '{other}' (expected run_id, key)"
                )));
            }
        }
    }
    run_ids.sort();
    run_ids.dedup();
    keys.sort();
    keys.dedup();
    if run_ids.is_empty() {
        return Err(ApiError::invalid(
            "invalid query: name at least one run with run_id",
        ));
    }
    if run_ids.len() > MAX_SUMMARY_RUNS {
        return Err(ApiError::invalid(format!(
            "invalid query: {} runs named, more than the limit of {MAX_SUMMARY_RUNS} run_id values",
            run_ids.len()
        )));
    }
    if keys.len() > MAX_SUMMARY_KEYS {
        return Err(ApiError::invalid(format!(
            "invalid query: {} keys named, more than the limit of {MAX_SUMMARY_KEYS} key values",
            keys.len()
        )));
    }
    let summaries = st.db(move |s| s.metric_summaries(&run_ids, &keys)).await?;
    Ok(Json(SummariesPage {
        summaries: summaries.into_iter().map(SummaryWire::from).collect(),
    }))
}
