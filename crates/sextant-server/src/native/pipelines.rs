//! `/api/v1/pipelines…` and `/api/v1/pipeline-runs…`: store pipelines, start,
//! list, cancel and retry runs, follow a run step by step and read its logs.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sextant_core::pipeline_runs::{Applied, Pipeline, PipelineRun, PipelineRunStatus};
use sextant_pipelines::executor::LogStream;
use sextant_store::PipelineRunSearch;

use super::{body, path, query, rfc3339};
use crate::auth::approvals::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use sextant_control::pipelines::{self, LogChunk, LogRequest, RunDetail};

/// The page size of a pipeline listing unless the client asks otherwise.
const DEFAULT_PAGE: u64 = 100;
/// The largest page of a pipeline listing.
const MAX_PAGE: u64 = 1000;

#[derive(Serialize)]
pub struct PipelineBody {
    name: String,
    spec: String,
    /// Who last applied it, with authentication on.
    applied_by: Option<String>,
    /// Its steps' names, in file order.
    steps: Vec<String>,
    /// Its cron schedule (UTC), if any.
    schedule: Option<String>,
    /// The event kinds that start it, in file order.
    triggers: Vec<String>,
    created_time: i64,
    created_time_rfc3339: String,
    updated_time: i64,
    updated_time_rfc3339: String,
}

fn pipeline(p: Pipeline) -> PipelineBody {
    // Validated when it was applied; a spec an older version stored that no
    // longer loads shows no steps, schedule or triggers.
    let (steps, schedule, triggers) = match sextant_pipelines::load(&p.name, &p.spec) {
        Ok(v) => (
            v.pipeline
                .steps
                .iter()
                .map(|s| s.name.value.clone())
                .collect(),
            v.pipeline.schedule.map(|s| s.value),
            v.pipeline
                .on
                .iter()
                .map(|t| t.event.value.clone())
                .collect(),
        ),
        Err(_) => (Vec::new(), None, Vec::new()),
    };
    PipelineBody {
        created_time_rfc3339: rfc3339(p.created_time),
        updated_time_rfc3339: rfc3339(p.updated_time),
        steps,
        schedule,
        triggers,
        name: p.name,
        spec: p.spec,
        applied_by: p.applied_by,
        created_time: p.created_time,
        updated_time: p.updated_time,
    }
}

#[derive(Serialize)]
pub struct ApplyBody {
    name: String,
    result: &'static str,
}

/// `PUT /api/v1/pipelines/{name}`: the body is the pipeline YAML.
pub async fn put(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    caller: Caller,
    bytes: Bytes,
) -> Result<Json<ApplyBody>, ApiError> {
    let name = path(p)?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::invalid("the pipeline file is not UTF-8"))?;
    let applied =
        pipelines::apply(&st.pipeline_deps(), name.clone(), text, caller.username()).await?;
    let result = match applied {
        Applied::Created => "created",
        Applied::Updated => "updated",
        Applied::Unchanged => "unchanged",
    };
    Ok(Json(ApplyBody { name, result }))
}

#[derive(Deserialize)]
pub struct ListQuery {
    max_results: Option<u64>,
    offset: Option<u64>,
}

#[derive(Serialize)]
pub struct PipelinePage {
    pipelines: Vec<PipelineBody>,
    next_offset: Option<u64>,
}

/// The page size a listing asks for, checked.
fn page_size(max_results: Option<u64>) -> Result<u64, ApiError> {
    match max_results {
        None => Ok(DEFAULT_PAGE),
        Some(n @ 1..=MAX_PAGE) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "invalid max_results {n}: it must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// `GET /api/v1/pipelines`: stored pipelines by name.
pub async fn list(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<PipelinePage>, ApiError> {
    let q = query(q)?;
    let max = page_size(q.max_results)?;
    let offset = q.offset.unwrap_or(0);
    let page = st.db(move |s| s.list_pipelines(max, offset)).await?;
    Ok(Json(PipelinePage {
        pipelines: page.items.into_iter().map(pipeline).collect(),
        next_offset: page.next_offset,
    }))
}

/// `GET /api/v1/pipelines/{name}`.
pub async fn show(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<PipelineBody>, ApiError> {
    let name = path(p)?;
    Ok(Json(pipeline(st.db(move |s| s.get_pipeline(&name)).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(default)]
    params: Map<String, Value>,
    /// Run every step, reusing no cached result.
    #[serde(default)]
    no_cache: bool,
}

#[derive(Serialize)]
pub struct RunBody {
    id: String,
    pipeline: String,
    status: &'static str,
    tracking_run_id: Option<String>,
    trigger: &'static str,
    /// The event that started the run, for event triggers.
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger_event: Option<i64>,
    params: Value,
    no_cache: bool,
    /// The user the run acts for, with authentication on.
    started_by: Option<String>,
    created_time: i64,
    created_time_rfc3339: String,
    updated_time: i64,
    updated_time_rfc3339: String,
}

fn run(r: PipelineRun) -> RunBody {
    RunBody {
        status: r.status.as_str(),
        trigger: r.trigger_kind.as_str(),
        trigger_event: r.trigger_event,
        params: serde_json::from_str(&r.params).unwrap_or(Value::Null),
        no_cache: r.no_cache,
        started_by: r.started_by,
        created_time_rfc3339: rfc3339(r.created_time),
        updated_time_rfc3339: rfc3339(r.updated_time),
        id: r.id,
        pipeline: r.pipeline,
        tracking_run_id: r.run_uuid,
        created_time: r.created_time,
        updated_time: r.updated_time,
    }
}

/// `POST /api/v1/pipelines/{name}/runs`: starts a run with typed parameters.
pub async fn start(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    caller: Caller,
    bytes: Bytes,
) -> Result<(StatusCode, Json<RunBody>), ApiError> {
    let name = path(p)?;
    let req: RunRequest = if bytes.is_empty() {
        RunRequest {
            params: Map::new(),
            no_cache: false,
        }
    } else {
        body(&bytes)?
    };
    let r = pipelines::start_run(
        &st.pipeline_deps(),
        name,
        req.params,
        req.no_cache,
        caller.username(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(run(r))))
}

#[derive(Serialize)]
pub struct StepBody {
    name: String,
    /// The steps this one waits for: the edges of the run's graph.
    needs: Vec<String>,
    status: &'static str,
    attempts: i64,
    /// The fencing token of the step's current task: how many times it was claimed.
    fencing: i64,
    /// Who holds or last held the step's task (`server-<pid>` or a worker's id).
    worker: Option<String>,
    tracking_run_id: Option<String>,
    error: Option<String>,
    metrics: std::collections::BTreeMap<String, f64>,
    model_version: Option<i64>,
    /// What a person should know of the step (a register step's approval
    /// withheld, and why).
    note: Option<String>,
    branch: Option<&'static str>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    outputs: std::collections::BTreeMap<String, pipelines::OutputRecord>,
    cache: Option<pipelines::CacheInfo>,
}

#[derive(Serialize)]
pub struct RunDetailBody {
    #[serde(flatten)]
    run: RunBody,
    steps: Vec<StepBody>,
}

fn detail(d: RunDetail) -> RunDetailBody {
    RunDetailBody {
        run: run(d.run),
        steps: d
            .steps
            .into_iter()
            .map(|s| StepBody {
                status: s.state.as_str(),
                attempts: s.task.as_ref().map_or(0, |t| t.attempt),
                fencing: s.task.as_ref().map_or(0, |t| t.fencing),
                worker: s.task.as_ref().and_then(|t| t.lease_owner.clone()),
                tracking_run_id: s.task.as_ref().and_then(|t| t.step_run_uuid.clone()),
                error: s.task.and_then(|t| t.error),
                metrics: s.result.metrics,
                model_version: s.result.model_version,
                note: s.result.note,
                branch: s.result.branch.map(|b| if b { "then" } else { "else" }),
                outputs: s.result.outputs,
                cache: s.result.cache,
                name: s.name,
                needs: s.needs,
            })
            .collect(),
    }
}

/// `GET /api/v1/pipeline-runs/{id}`: a run and each of its steps.
pub async fn show_run(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<RunDetailBody>, ApiError> {
    let id = path(p)?;
    Ok(Json(detail(
        pipelines::run_detail(&st.pipeline_deps(), id).await?,
    )))
}

/// `POST /api/v1/pipeline-runs/{id}/cancel`.
pub async fn cancel(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<RunBody>, ApiError> {
    let id = path(p)?;
    Ok(Json(run(
        pipelines::cancel_run(&st.pipeline_deps(), id).await?
    )))
}

/// `GET /api/v1/pipeline-runs/{id}/steps/{step}/cache`: why the step was or
/// was not reused, and what changed in its key.
pub async fn explain_cache(
    State(st): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<pipelines::CacheExplanation>, ApiError> {
    let (id, step) = path(p)?;
    Ok(Json(
        pipelines::explain_cache(&st.pipeline_deps(), id, step).await?,
    ))
}

#[derive(Deserialize)]
pub struct RunListQuery {
    pipeline: Option<String>,
    status: Option<String>,
    max_results: Option<u64>,
    offset: Option<u64>,
}

#[derive(Serialize)]
pub struct RunPage {
    runs: Vec<RunBody>,
    next_offset: Option<u64>,
}

/// `GET /api/v1/pipeline-runs`: runs newest first, of one pipeline or in one
/// status if asked.
pub async fn list_runs(
    State(st): State<AppState>,
    q: Result<Query<RunListQuery>, QueryRejection>,
) -> Result<Json<RunPage>, ApiError> {
    let q = query(q)?;
    let search = PipelineRunSearch {
        pipeline: q.pipeline.filter(|p| !p.is_empty()),
        status: match q.status.as_deref() {
            None | Some("") => None,
            Some(s) => Some(PipelineRunStatus::parse(s)?),
        },
        max_results: page_size(q.max_results)?,
        offset: q.offset.unwrap_or(0),
    };
    let page = st.db(move |s| s.list_pipeline_runs(&search)).await?;
    Ok(Json(RunPage {
        runs: page.items.into_iter().map(run).collect(),
        next_offset: page.next_offset,
    }))
}

/// `POST /api/v1/pipeline-runs/{id}/retry`: resumes a failed or cancelled run.
/// With authentication on, the run acts for the caller from then on.
pub async fn retry(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    caller: Caller,
) -> Result<Json<RunBody>, ApiError> {
    let id = path(p)?;
    let user = caller.username();
    Ok(Json(run(pipelines::retry_run(
        &st.pipeline_deps(),
        id,
        user,
    )
    .await?)))
}

#[derive(Deserialize)]
pub struct LogQuery {
    step: Option<String>,
    stream: Option<String>,
    offset: Option<u64>,
    attempt: Option<i64>,
    max_bytes: Option<u64>,
}

#[derive(Serialize)]
pub struct LogBody {
    step: String,
    stream: &'static str,
    attempt: i64,
    attempts: i64,
    offset: u64,
    next_offset: u64,
    data: String,
    complete: bool,
    finished: bool,
    status: &'static str,
}

fn stream_name(s: LogStream) -> &'static str {
    match s {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    }
}

fn log_body(c: LogChunk) -> LogBody {
    LogBody {
        stream: stream_name(c.stream),
        status: c.state.as_str(),
        step: c.step,
        attempt: c.attempt,
        attempts: c.attempts,
        offset: c.offset,
        next_offset: c.next_offset,
        data: c.text,
        complete: c.complete,
        finished: c.finished,
    }
}

/// `GET /api/v1/pipeline-runs/{id}/logs?step=S`: a step's stdout or stderr
/// from an offset; poll with `next_offset` until `finished` to follow it.
pub async fn logs(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<LogBody>, ApiError> {
    let id = path(p)?;
    let q = query(q)?;
    let step = q.step.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::invalid("missing query parameter 'step': the step whose log to read")
    })?;
    let stream = match q.stream.as_deref() {
        None | Some("stdout") => LogStream::Stdout,
        Some("stderr") => LogStream::Stderr,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid stream '{other}': use stdout or stderr"
            )));
        }
    };
    let req = LogRequest {
        step,
        stream,
        offset: q.offset.unwrap_or(0),
        attempt: q.attempt,
        max_bytes: q.max_bytes.unwrap_or(pipelines::MAX_LOG_CHUNK),
    };
    Ok(Json(log_body(
        pipelines::step_logs(&st.pipeline_deps(), id, req).await?,
    )))
}
