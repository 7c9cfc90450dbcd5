//! What the native API asks of pipelines: start a run with typed parameters,
//! cancel one, and describe one step by step.

use serde_json::{Map, Value as Json};
use sextant_core::Error;
use sextant_core::entities::{NewRun, RunStatus, Tag};
use sextant_core::pipeline_runs::{
    NewPipelineRun, PipelineRun, PipelineRunStatus, Task, TriggerKind,
};
use sextant_pipelines::spec::{ParamType, Pipeline, Value};
use sextant_store::{MetaStore, StoreError};

use super::plan::{self, StepState};
use crate::error::ApiError;
use crate::state::AppState;

/// Who the orchestrator's tracking runs belong to.
pub(super) const USER: &str = "sextant";

/// Checks `given` against the spec's parameters and fills in defaults.
pub fn resolve_params(
    p: &Pipeline,
    given: &Map<String, Json>,
) -> Result<Map<String, Json>, ApiError> {
    for key in given.keys() {
        if p.param(key).is_none() {
            let known: Vec<&str> = p.params.iter().map(|p| p.name.value.as_str()).collect();
            return Err(ApiError::invalid(format!(
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
            (None, Some(d)) => spec_json(&d.value),
            (None, None) => {
                return Err(ApiError::invalid(format!(
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
fn typed(ty: ParamType, name: &str, v: &Json) -> Result<Json, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "invalid value {v} for parameter '{name}': expected {}",
            ty.as_str()
        ))
    };
    let text = v.as_str();
    match ty {
        ParamType::String => match v {
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

/// A spec value as JSON.
pub(super) fn spec_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => Json::from(*f),
        Value::String(s) => Json::String(s.clone()),
        Value::List(items) => Json::Array(items.iter().map(|i| spec_json(&i.value)).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.value.clone(), spec_json(&v.value)))
                .collect(),
        ),
    }
}

/// Starts a run of the stored pipeline `name`: checks the parameters,
/// creates the parent tracking run (in the experiment named after the
/// pipeline) and a `PENDING` pipeline run the orchestrator picks up.
/// With `no_cache`, no step of the run reuses a cached result.
pub async fn start_run(
    st: &AppState,
    name: String,
    params: Map<String, Json>,
    no_cache: bool,
) -> Result<PipelineRun, ApiError> {
    let trigger = StartedBy {
        kind: TriggerKind::Manual,
        event: None,
    };
    start_triggered_run(st, name, params, trigger, no_cache).await
}

/// What started a run.
pub(super) struct StartedBy {
    pub kind: TriggerKind,
    /// The event, for event triggers.
    pub event: Option<i64>,
}

/// [`start_run`] recording what triggered the run (and which event, if any).
pub(super) async fn start_triggered_run(
    st: &AppState,
    name: String,
    params: Map<String, Json>,
    trigger: StartedBy,
    no_cache: bool,
) -> Result<PipelineRun, ApiError> {
    let n = name.clone();
    // Parsed on the blocking pool, once per stored version.
    let v = st
        .db(move |s| {
            let stored = s.get_pipeline(&n)?;
            Ok(super::cache::SPECS.load(&n, &stored.spec))
        })
        .await?;
    let v = v.map_err(|e| {
        ApiError::internal(format!("stored pipeline '{name}' does not validate: {e}"))
    })?;
    let params = resolve_params(&v.pipeline, &params)?;
    let run = st
        .db(move |s| {
            let experiment_id = experiment_for(s, &name)?;
            let parent = s.create_run(&NewRun {
                experiment_id,
                user_id: USER.to_string(),
                run_name: Some(name.clone()),
                start_time: None,
                tags: vec![Tag::new("sextant.pipeline", name.as_str())],
            })?;
            let run = s.create_pipeline_run(&NewPipelineRun {
                pipeline: name.clone(),
                params: Json::Object(params).to_string(),
                trigger_kind: trigger.kind,
                trigger_event: trigger.event,
                run_uuid: Some(parent.info.run_id.clone()),
                no_cache,
            })?;
            s.log_batch(
                &parent.info.run_id,
                &[],
                &[],
                &[Tag::new("sextant.pipelineRun", run.id.as_str())],
            )?;
            Ok(run)
        })
        .await?;
    st.pipelines.notify_one();
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
pub async fn cancel_run(st: &AppState, id: String) -> Result<PipelineRun, ApiError> {
    let run = st
        .db(move |s| {
            let run = s.set_pipeline_run_status(&id, PipelineRunStatus::Cancelled)?;
            if let Some(parent) = &run.run_uuid {
                s.update_run(parent, Some(RunStatus::Killed), Some(super::now_ms()), None)?;
            }
            Ok(run)
        })
        .await?;
    st.pipelines.notify_waiters();
    Ok(run)
}

/// One step of a run as the API shows it.
#[derive(Debug, Clone)]
pub struct StepDetail {
    pub name: String,
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
pub async fn run_detail(st: &AppState, id: String) -> Result<RunDetail, ApiError> {
    let (run, v, tasks) = st
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
        ApiError::internal(format!(
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
        .map(|(step, &state)| {
            let task = latest.get(step.name.value.as_str()).map(|t| (*t).clone());
            StepDetail {
                name: step.name.value.clone(),
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
/// name the file declares. Errors list every problem as `file:line:col: message`.
pub async fn apply(
    st: &AppState,
    name: String,
    text: String,
) -> Result<sextant_core::pipeline_runs::Applied, ApiError> {
    sextant_core::pipeline_runs::validate_pipeline_name(&name)?;
    let label = format!("{name}.yaml");
    let v = sextant_pipelines::load(&label, &text).map_err(|e| match e {
        sextant_pipelines::Error::Invalid { file, diagnostics } => ApiError::invalid(
            diagnostics
                .iter()
                .map(|d| format!("{file}:{d}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    })?;
    if v.pipeline.name.value != name {
        return Err(ApiError::invalid(format!(
            "{label}:{}:{}: the file names pipeline '{}', not '{name}'",
            v.pipeline.name.pos.line, v.pipeline.name.pos.col, v.pipeline.name.value
        )));
    }
    st.db(move |s| s.put_pipeline(&name, &text)).await
}
