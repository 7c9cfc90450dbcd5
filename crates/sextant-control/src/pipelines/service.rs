//! What the native API asks of pipelines: start a run with typed parameters,
//! cancel or retry one, describe one step by step, and read a step's logs.

use serde_json::{Map, Value as Json};
use sextant_core::Error;
use sextant_core::entities::{NewRun, RunStatus, Tag};
use sextant_core::pipeline_runs::{
    NewPipelineRun, PipelineRun, PipelineRunStatus, Task, TaskStatus, TriggerKind,
};
use sextant_pipelines::executor::LogStream;
use sextant_pipelines::spec::{ParamType, Pipeline};
use sextant_store::{MetaStore, StoreError};

use super::plan::{self, StepState};
use super::{Deps, PipelineError, logs};

/// Who the orchestrator's tracking runs belong to.
pub(super) const USER: &str = "sextant";

/// Checks `given` against the spec's parameters and fills in defaults.
pub fn resolve_params(
    p: &Pipeline,
    given: &Map<String, Json>,
) -> Result<Map<String, Json>, PipelineError> {
    for key in given.keys() {
        if p.param(key).is_none() {
            let known: Vec<&str> = p.params.iter().map(|p| p.name.value.as_str()).collect();
            return Err(PipelineError::Invalid(format!(
                "unknown parameter '{key}' of pipeline '{}' (declared: {})",
                p.name.value,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let mut out = Map::new();
    for param in &p.params {
        let name = &param.name.value;
        let value = match (given.get(name), &param.default) {
            (Some(v), _) => typed(param.ty, name, v)?,
            (None, Some(d)) => d.value.to_json(),
            (None, None) => {
                return Err(PipelineError::Invalid(format!(
                    "missing parameter '{name}' ({}): it has no default",
                    param.ty.as_str()
                )));
            }
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// A given parameter value as its declared type. Strings are parsed, so
/// `--param n=3` works for an int.
fn typed(ty: ParamType, name: &str, v: &Json) -> Result<Json, PipelineError> {
    let bad = || {
        PipelineError::Invalid(format!(
            "invalid value {v} for parameter '{name}': expected {}",
            ty.as_str()
        ))
    };
    let text = v.as_str();
    match ty {
        ParamType::String => match v {
            // No process can receive a NUL byte, as an argument or in its environment.
            Json::String(s) if s.contains('\0') => Err(PipelineError::Invalid(format!(
                "invalid value for parameter '{name}': it contains a NUL character, which no step command can receive"
            ))),
            Json::String(_) => Ok(v.clone()),
            Json::Number(_) | Json::Bool(_) => Ok(Json::String(v.to_string())),
            _ => Err(bad()),
        },
        ParamType::Int => v
            .as_i64()
            .or_else(|| text.and_then(|t| t.trim().parse().ok()))
            .map(Json::from)
            .ok_or_else(bad),
        ParamType::Float => v
            .as_f64()
            .or_else(|| text.and_then(|t| t.trim().parse().ok()))
            .filter(|f: &f64| f.is_finite())
            .map(Json::from)
            .ok_or_else(bad),
        ParamType::Bool => v
            .as_bool()
            .or_else(|| text.and_then(|t| t.trim().parse().ok()))
            .map(Json::from)
            .ok_or_else(bad),
    }
}

/// Starts a run of the stored pipeline `name`: checks the parameters,
/// creates the parent tracking run (in the experiment named after the
/// pipeline) and a `PENDING` pipeline run the orchestrator picks up.
/// With `no_cache`, no step of the run reuses a cached result. `user` is
/// the authenticated caller (`None` with authentication off).
pub async fn start_run(
    deps: &Deps,
    name: String,
    params: Map<String, Json>,
    no_cache: bool,
    user: Option<String>,
) -> Result<PipelineRun, PipelineError> {
    let trigger = StartedBy {
        kind: TriggerKind::Manual,
        event: None,
        tags: Vec::new(),
        user,
    };
    start_triggered_run(deps, name, params, trigger, no_cache).await
}

/// What started a run.
pub(super) struct StartedBy {
    pub kind: TriggerKind,
    /// The event, for event triggers.
    pub event: Option<i64>,
    /// The user who started it; `None` for schedules and events (the run
    /// then acts for whoever applied the pipeline) and without authentication.
    pub user: Option<String>,
    /// Lineage tags for the run's tracking run (`sextant.triggerEvent`,
    /// `sextant.monitorRun`, …); registered versions carry them too.
    pub tags: Vec<Tag>,
}

/// [`start_run`] recording what triggered the run (and which event, if any).
pub(super) async fn start_triggered_run(
    deps: &Deps,
    name: String,
    params: Map<String, Json>,
    trigger: StartedBy,
    no_cache: bool,
) -> Result<PipelineRun, PipelineError> {
    let n = name.clone();
    // Parsed on the blocking pool, once per stored version.
    let (v, applied_by) = deps
        .db(move |s| {
            let stored = s.get_pipeline(&n)?;
            Ok((
                super::cache::SPECS.load(&n, &stored.spec),
                stored.applied_by,
            ))
        })
        .await?;
    let started_by = trigger.user.or(applied_by);
    let v = v.map_err(|e| {
        PipelineError::Internal(format!("stored pipeline '{name}' does not validate: {e}"))
    })?;
    let params = resolve_params(&v.pipeline, &params)?;
    super::context::confine_known_paths(&deps.data_roots, &v.pipeline, &params)?;
    // The run's times are the orchestrator's clock's (a schedule's last
    // firing is read back from `created_time`), as its end will be.
    let now = deps.clock.now_ms();
    let run = deps
        .db(move |s| {
            let experiment_id = experiment_for(s, &name)?;
            let parent = s.create_run(&NewRun {
                experiment_id,
                user_id: USER.to_string(),
                run_name: Some(name.clone()),
                start_time: Some(now),
                tags: std::iter::once(Tag::new("sextant.pipeline", name.as_str()))
                    .chain(trigger.tags)
                    .collect(),
            })?;
            let run = s.create_pipeline_run_at(
                &NewPipelineRun {
                    pipeline: name.clone(),
                    params: Json::Object(params).to_string(),
                    trigger_kind: trigger.kind,
                    trigger_event: trigger.event,
                    run_uuid: Some(parent.info.run_id.clone()),
                    no_cache,
                    started_by,
                },
                now,
            )?;
            s.log_batch(
                &parent.info.run_id,
                &[],
                &[],
                &[Tag::new("sextant.pipelineRun", run.id.as_str())],
            )?;
            Ok(run)
        })
        .await?;
    deps.pipelines.notify_one();
    Ok(run)
}

/// The id of the experiment named `name`, created if missing.
fn experiment_for(s: &dyn MetaStore, name: &str) -> Result<i64, StoreError> {
    match s.get_experiment_by_name(name) {
        Ok(e) => Ok(e.experiment_id),
        Err(StoreError::Domain(Error::NotFound(_))) => s.create_experiment(name, None, &[]),
        Err(e) => Err(e),
    }
}

/// Cancels a run: its open tasks are cancelled, and running steps are
/// killed when their worker next checks its task.
pub async fn cancel_run(deps: &Deps, id: String) -> Result<PipelineRun, PipelineError> {
    let now = deps.clock.now_ms();
    let run = deps
        .db(move |s| {
            let run = s.set_pipeline_run_status_at(&id, PipelineRunStatus::Cancelled, now)?;
            if let Some(parent) = &run.run_uuid {
                s.update_run(parent, Some(RunStatus::Killed), Some(now), None)?;
            }
            Ok(run)
        })
        .await?;
    deps.pipelines.notify_waiters();
    Ok(run)
}

/// One step of a run as the API shows it.
#[derive(Debug, Clone)]
pub struct StepDetail {
    pub name: String,
    /// The steps this one waits for (from `needs`, references and condition
    /// branches): the edges of the run's graph.
    pub needs: Vec<String>,
    pub state: StepState,
    pub task: Option<Task>,
    pub result: plan::StepResult,
}

/// A run with its steps in file order.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub run: PipelineRun,
    pub steps: Vec<StepDetail>,
}

/// Describes a run and the state of each of its steps.
pub async fn run_detail(deps: &Deps, id: String) -> Result<RunDetail, PipelineError> {
    let (run, v, tasks) = deps
        .db(move |s| {
            let run = s.get_pipeline_run(&id)?;
            let stored = s.get_pipeline(&run.pipeline)?;
            let tasks = s.tasks_of_run(&id)?;
            // Parsed on the blocking pool, once per stored version.
            let v = super::cache::SPECS.load(&run.pipeline, &stored.spec);
            Ok((run, v, tasks))
        })
        .await?;
    let v = v.map_err(|e| {
        PipelineError::Internal(format!(
            "stored pipeline '{}' does not validate: {e}",
            run.pipeline
        ))
    })?;
    let plan = plan::plan(&v, &tasks);
    let latest = plan::latest_tasks(&tasks);
    let steps = v
        .pipeline
        .steps
        .iter()
        .zip(&plan.states)
        .enumerate()
        .map(|(i, (step, &state))| {
            let task = latest.get(step.name.value.as_str()).map(|t| (*t).clone());
            StepDetail {
                name: step.name.value.clone(),
                needs: v
                    .dag
                    .dependencies(i)
                    .iter()
                    .map(|&d| v.pipeline.steps[d].name.value.clone())
                    .collect(),
                // A run that ended leaves its unstarted steps as they were.
                state: match state {
                    StepState::Ready if run.status.is_terminal() => StepState::Waiting,
                    s => s,
                },
                result: task.as_ref().map(plan::task_result).unwrap_or_default(),
                task,
            }
        })
        .collect();
    Ok(RunDetail { run, steps })
}

/// Validates a pipeline file and stores it under `name`, which must be the
/// name the file declares, as applied by `user` (the authenticated caller;
/// `None` with authentication off). Errors list every problem as
/// `file:line:col: message`.
pub async fn apply(
    deps: &Deps,
    name: String,
    text: String,
    user: Option<String>,
) -> Result<sextant_core::pipeline_runs::Applied, PipelineError> {
    sextant_core::pipeline_runs::validate_pipeline_name(&name)?;
    let label = format!("{name}.yaml");
    let v = sextant_pipelines::load(&label, &text).map_err(|e| match e {
        sextant_pipelines::Error::Invalid { file, diagnostics } => PipelineError::Invalid(
            diagnostics
                .iter()
                .map(|d| format!("{file}:{d}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    })?;
    if v.pipeline.name.value != name {
        return Err(PipelineError::Invalid(format!(
            "{label}:{}:{}: the file names pipeline '{}', not '{name}'",
            v.pipeline.name.pos.line, v.pipeline.name.pos.col, v.pipeline.name.value
        )));
    }
    deps.db(move |s| s.put_pipeline(&name, &text, user.as_deref()))
        .await
}

/// `error` as a 409 when it says the run is in the wrong state for it.
fn conflict_on_state(error: PipelineError) -> PipelineError {
    match error {
        PipelineError::Store(StoreError::Domain(Error::InvalidState(m)))
        | PipelineError::Domain(Error::InvalidState(m))
        | PipelineError::InvalidState(m) => PipelineError::Conflict(m),
        other => other,
    }
}

/// Resumes a failed or cancelled run in place (`pipelines retry`). Steps
/// that succeeded keep their results; every failed or cancelled step, and
/// every step that was ready but never queued, gets a fresh task, and the
/// steps after them run as their dependencies succeed, so the same run id
/// finishes. A run that is live or succeeded is a 409. `user` is who
/// retries it (the authenticated caller; `None` with authentication off):
/// the run acts for them from then on (`started_by`), so the steps it runs
/// again run on their rights, and the resumed event keeps who it acted for
/// before.
pub async fn retry_run(
    deps: &Deps,
    id: String,
    user: Option<String>,
) -> Result<PipelineRun, PipelineError> {
    let i = id.clone();
    let run = deps.db(move |s| s.get_pipeline_run(&i)).await?;
    if !matches!(
        run.status,
        PipelineRunStatus::Failed | PipelineRunStatus::Cancelled
    ) {
        return Err(PipelineError::Conflict(format!(
            "pipeline run '{id}' is {}: only a FAILED or CANCELLED run can be retried",
            run.status.as_str()
        )));
    }
    let (v, tasks) = spec_and_tasks(deps, &run).await?;
    let plan = plan::plan(&v, &tasks);
    let again: Vec<(String, String)> = v
        .pipeline
        .steps
        .iter()
        .zip(&plan.states)
        .filter(|(_, s)| {
            matches!(
                s,
                StepState::Failed | StepState::Cancelled | StepState::Ready
            )
        })
        // The payload the orchestrator queues a step with.
        .map(|(step, _)| {
            let name = step.name.value.clone();
            let payload = serde_json::json!({ "step": name }).to_string();
            (name, payload)
        })
        .collect();
    if again.is_empty() {
        return Err(PipelineError::Conflict(format!(
            "every step of pipeline run '{id}' succeeded or was skipped: nothing to retry"
        )));
    }
    let (parent, now) = (run.run_uuid.clone(), deps.clock.now_ms());
    let resumed = deps
        .db(move |s| {
            let (run, _) = s.resume_pipeline_run_at(&id, &again, user.as_deref(), now)?;
            // The parent tracking run shows the run as live again; the
            // pipeline run is the record, so a parent that is gone is no
            // reason to refuse.
            if let Some(parent) = parent
                && let Err(e) = s.update_run(&parent, Some(RunStatus::Running), None, None)
            {
                tracing::warn!(run = %run.id, error = %e, "cannot reopen the run's tracking run");
            }
            Ok(run)
        })
        .await
        .map_err(conflict_on_state)?;
    tracing::info!(run = %resumed.id, pipeline = %resumed.pipeline, "pipeline run resumed");
    deps.pipelines.notify_one();
    Ok(resumed)
}

/// The stored spec of a run's pipeline (validated, cached) and its tasks.
async fn spec_and_tasks(
    deps: &Deps,
    run: &PipelineRun,
) -> Result<(std::sync::Arc<sextant_pipelines::Validated>, Vec<Task>), PipelineError> {
    let (id, pipeline) = (run.id.clone(), run.pipeline.clone());
    let (v, tasks) = deps
        .db(move |s| {
            let stored = s.get_pipeline(&pipeline)?;
            let tasks = s.tasks_of_run(&id)?;
            Ok((super::cache::SPECS.load(&pipeline, &stored.spec), tasks))
        })
        .await?;
    let v = v.map_err(|e| {
        PipelineError::Internal(format!(
            "stored pipeline '{}' does not validate: {e}",
            run.pipeline
        ))
    })?;
    Ok((v, tasks))
}

/// What to read of a step's log.
#[derive(Debug, Clone)]
pub struct LogRequest {
    pub step: String,
    pub stream: LogStream,
    /// The byte offset to read from.
    pub offset: u64,
    /// Which attempt of the step's current task; the latest when `None`.
    pub attempt: Option<i64>,
    /// At most this many bytes (1 to [`logs::MAX_CHUNK`]).
    pub max_bytes: u64,
}

/// A piece of one stream of one attempt of a step's log.
#[derive(Debug, Clone)]
pub struct LogChunk {
    pub step: String,
    pub stream: LogStream,
    /// The attempt read; 0 when the step has not started.
    pub attempt: i64,
    /// The latest attempt of the step so far.
    pub attempts: i64,
    pub offset: u64,
    /// Where the next read starts: `offset` plus the bytes `text` covers.
    pub next_offset: u64,
    pub text: String,
    /// This attempt's log will not grow any more.
    pub complete: bool,
    /// The step will write no more logs in this run: the attempt read is its
    /// last and it is over.
    pub finished: bool,
    pub state: StepState,
}

/// Reads a step's captured stdout or stderr from an offset, for a live step
/// (the file the orchestrator is writing) as for a finished one (that file,
/// or the copy uploaded to the attempt's tracking run).
pub async fn step_logs(
    deps: &Deps,
    run_id: String,
    req: LogRequest,
) -> Result<LogChunk, PipelineError> {
    if !(1..=logs::MAX_CHUNK).contains(&req.max_bytes) {
        return Err(PipelineError::Invalid(format!(
            "invalid max_bytes {}: it must be between 1 and {}",
            req.max_bytes,
            logs::MAX_CHUNK
        )));
    }
    let detail = run_detail(deps, run_id).await?;
    let Some(step) = detail.steps.iter().find(|s| s.name == req.step) else {
        let names: Vec<&str> = detail.steps.iter().map(|s| s.name.as_str()).collect();
        return Err(PipelineError::NotFound(format!(
            "pipeline run '{}' has no step '{}' (its steps: {})",
            detail.run.id,
            req.step,
            names.join(", ")
        )));
    };
    let latest = step.task.as_ref().map_or(0, |t| t.attempt);
    let attempt = match req.attempt {
        None => latest,
        Some(a) if (1..=latest).contains(&a) => a,
        Some(a) => {
            return Err(PipelineError::Invalid(format!(
                "step '{}' of pipeline run '{}' has no attempt {a}: its attempts so far are 1 to {latest}",
                req.step, detail.run.id
            )));
        }
    };
    // The task was read before the file below, so a task seen as no longer
    // running means its process ended and the file is whole.
    let running = step
        .task
        .as_ref()
        .is_some_and(|t| t.status == TaskStatus::Running);
    let complete = attempt < latest || !running;
    let last = match step.state {
        StepState::Succeeded | StepState::Failed | StepState::Cancelled | StepState::Skipped => {
            true
        }
        StepState::Waiting | StepState::Ready => detail.run.status.is_terminal(),
        StepState::Queued | StepState::Running => false,
    };
    let piece = match &step.task {
        Some(task) if attempt > 0 => read_attempt(deps, &detail.run, task, attempt, &req).await?,
        _ => None,
    }
    .unwrap_or_default();
    let more = !complete || !piece.at_end(req.offset);
    let (text, used) = logs::decode(&piece.bytes, more);
    Ok(LogChunk {
        step: req.step,
        stream: req.stream,
        attempt,
        attempts: latest,
        offset: req.offset,
        next_offset: req.offset + used as u64,
        text,
        complete,
        finished: complete && attempt == latest && last,
        state: step.state,
    })
}

/// The bytes of one attempt's stream: the local file when this host ran it,
/// else, for the task's latest attempt once it is over, the uploaded copy.
async fn read_attempt(
    deps: &Deps,
    run: &PipelineRun,
    task: &Task,
    attempt: i64,
    req: &LogRequest,
) -> Result<Option<logs::Piece>, PipelineError> {
    let (offset, max) = (req.offset, req.max_bytes);
    if let Some(data_dir) = &deps.data_dir {
        let run_dir = data_dir.join("pipeline-runs").join(&run.id);
        let path = logs::attempt_dir(&run_dir, &task.step, task.id, attempt)
            .join(logs::file_name(req.stream));
        let local = tokio::task::spawn_blocking(move || {
            logs::read_local(&path, offset, max)
                .map_err(|e| PipelineError::Internal(format!("reading {}: {e}", path.display())))
        })
        .await
        .map_err(|e| PipelineError::Internal(format!("log read task failed: {e}")))??;
        if local.is_some() {
            return Ok(local);
        }
    }
    let over = attempt == task.attempt && task.status != TaskStatus::Running;
    let Some(step_run) = task.step_run_uuid.clone().filter(|_| over) else {
        return Ok(None);
    };
    let root = deps
        .db(move |s| s.get_run(&step_run))
        .await?
        .info
        .artifact_uri;
    logs::read_uploaded(&deps.artifacts, &root, req.stream, offset, max).await
}
