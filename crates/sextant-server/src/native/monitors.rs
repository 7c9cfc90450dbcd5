//! `/api/v1/monitors…` and `/api/v1/monitor-runs…`: apply, show, list and
//! delete monitors, run one now, read its runs and their files (statistics,
//! violations, drift, model quality, the HTML report, the window's rows); and
//! `POST /api/v1/endpoints/{name}/ground-truth`, the labels model-quality
//! monitors join with captured predictions.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sextant_artifacts::SafePath;
use sextant_core::monitors::{MonitorRun, StoredMonitor};

use super::{path, query, rfc3339};
use crate::error::ApiError;
use crate::state::AppState;
use sextant_control::monitors::config::MonitorSpec;
use sextant_control::monitors::{
    DEFAULT_RUNS, REPORTS_PREFIX, RunRequest, ground_truth, parse_stored,
};

fn run_body(r: &MonitorRun) -> Value {
    let summary: Value = serde_json::from_str(&r.summary).unwrap_or(Value::Null);
    json!({
        "id": r.id,
        "monitor": r.monitor,
        "status": r.status.as_str(),
        "trigger": r.trigger,
        "window_start": r.window_start,
        "window_start_rfc3339": rfc3339(r.window_start),
        "window_end": r.window_end,
        "window_end_rfc3339": rfc3339(r.window_end),
        "started_time": r.started_time,
        "started_time_rfc3339": rfc3339(r.started_time),
        "ended_time": r.ended_time,
        "ended_time_rfc3339": r.ended_time.map(rfc3339),
        "error": r.error,
        "summary": summary,
        "report_url": format!("/api/v1/monitor-runs/{}/files/report.html", r.id),
    })
}

fn body(m: &StoredMonitor, last: Option<&MonitorRun>) -> Result<Value, ApiError> {
    Ok(json!({
        "name": m.name,
        "spec": parse_stored(m)?,
        "created_time": m.created_time,
        "created_time_rfc3339": rfc3339(m.created_time),
        "updated_time": m.updated_time,
        "updated_time_rfc3339": rfc3339(m.updated_time),
        "last_run": last.map(run_body),
    }))
}

/// `GET /api/v1/monitors`.
pub async fn list(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = st.db(|s| s.list_monitors()).await?;
    let names = all.iter().map(|m| m.name.clone()).collect();
    let last = st.monitors.latest_runs(names).await;
    let items = all
        .iter()
        .zip(&last)
        .map(|(m, l)| body(m, l.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "monitors": items })))
}

/// `PUT /api/v1/monitors/{name}`: creates (201) or replaces (200) from a JSON or YAML definition.
pub async fn put(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = path(p)?;
    sextant_core::monitors::validate_monitor_name(&name)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::invalid("the monitor definition is not UTF-8"))?;
    let spec = MonitorSpec::parse(&format!("{name}.yaml"), text)?;
    let (created, stored) = st.monitors.apply(&name, spec).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body(&stored, None)?)))
}

/// `GET /api/v1/monitors/{name}`.
pub async fn show(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    let n = name.clone();
    let m = st.db(move |s| s.get_monitor(&n)).await?;
    let last = st.monitors.latest_runs(vec![name]).await;
    Ok(Json(body(&m, last[0].as_ref())?))
}

/// `DELETE /api/v1/monitors/{name}`: the monitor and its runs (their files stay).
pub async fn delete(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    st.db(move |s| s.delete_monitor(&name)).await?;
    st.changes.notify_waiters();
    Ok(Json(json!({})))
}

/// The body of `POST /api/v1/monitors/{name}/runs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    window_start: Option<i64>,
    window_end: Option<i64>,
    /// The window's length, e.g. `10m` (default the monitor's).
    window: Option<String>,
}

/// `POST /api/v1/monitors/{name}/runs`: checks a window now and answers with the ended run.
pub async fn run(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = path(p)?;
    let b: RunBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        super::body(&bytes)?
    };
    let window = match &b.window {
        None => None,
        Some(t) => Some(
            sextant_serving::endpoints::config::parse_duration(t)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    ApiError::invalid(format!("invalid window '{t}': use e.g. 10m or 1h"))
                })?,
        ),
    };
    let req = RunRequest {
        window_start: b.window_start,
        window_end: b.window_end,
        window,
        trigger: "manual".into(),
    };
    let run = st.monitors.run(&name, req).await?;
    Ok((StatusCode::CREATED, Json(run_body(&run))))
}

/// The most runs one listing returns; the document says so, and a larger or zero
/// `max_results` is refused rather than silently clamped.
const MAX_RUNS_PAGE: u64 = 10_000;

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    max_results: Option<u64>,
}

/// `GET /api/v1/monitors/{name}/runs`: newest first.
pub async fn runs(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    let max = match query(q)?.max_results {
        None => DEFAULT_RUNS,
        Some(n @ 1..=MAX_RUNS_PAGE) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "invalid max_results {n}: it must be between 1 and {MAX_RUNS_PAGE}"
            )));
        }
    };
    let n = name.clone();
    st.db(move |s| s.get_monitor(&n)).await?;
    let runs = st.db(move |s| s.list_monitor_runs(&name, max)).await?;
    Ok(Json(
        json!({ "runs": runs.iter().map(run_body).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/v1/monitor-runs/{id}`.
pub async fn show_run(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = path(p)?;
    let run = st.db(move |s| s.get_monitor_run(&id)).await?;
    Ok(Json(run_body(&run)))
}

/// The files a run writes, with their content types.
const FILES: &[(&str, &str)] = &[
    ("report.html", "text/html; charset=utf-8"),
    ("statistics.json", "application/json"),
    ("constraint_violations.json", "application/json"),
    ("drift.json", "application/json"),
    ("model_quality.json", "application/json"),
    ("window.csv", "text/csv"),
];

/// `GET /api/v1/monitor-runs/{id}/files/{file}`: one of the run's files.
pub async fn file(
    State(st): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (id, file) = path(p)?;
    let Some((_, content_type)) = FILES.iter().find(|(f, _)| *f == file) else {
        let names: Vec<&str> = FILES.iter().map(|(f, _)| *f).collect();
        return Err(ApiError::invalid(format!(
            "unknown run file '{file}': use one of {}",
            names.join(", ")
        )));
    };
    let run = st.db(move |s| s.get_monitor_run(&id)).await?;
    let path = SafePath::parse(&format!(
        "{REPORTS_PREFIX}/{}/{}/{file}",
        run.monitor, run.id
    ))
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    let download = st.artifacts.get(&path, None).await.map_err(|_| {
        ApiError::not_found(format!(
            "monitor run '{}' has no {file} (status {}{})",
            run.id,
            run.status.as_str(),
            run.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))
    })?;
    Ok((
        [(header::CONTENT_TYPE, *content_type)],
        Body::from_stream(download.stream),
    )
        .into_response())
}

/// `POST /api/v1/endpoints/{name}/ground-truth`: `{"records": [{"inference_id", "label"}]}`.
pub async fn ground_truth(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    let n = name.clone();
    st.db(move |s| s.get_endpoint(&n)).await?;
    let labels = ground_truth::parse_upload(&bytes)?;
    let now = chrono::DateTime::from_timestamp_millis(st.clock.now_ms()).unwrap_or_default();
    let path = ground_truth::store(&st.artifacts, &name, &labels, now).await?;
    Ok(Json(json!({ "stored": labels.len(), "path": path })))
}
