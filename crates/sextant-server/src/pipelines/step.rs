//! Running one claimed task: the step's tracking run, `${…}` resolution,
//! the step itself by kind, its metrics, and the fenced outcome.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use sextant_artifacts::SafePath;
use sextant_core::entities::{Metric, NewRun, RunStatus, Tag};
use sextant_core::pipeline_runs::{ClaimedTask, PipelineRun, TaskStatus};
use sextant_core::registry::{Approval, ApprovalStatus, NewModelVersion};
use sextant_pipelines::builtins::{METRICS_FILE, run_builtin};
use sextant_pipelines::condition::{Env, Val};
use sextant_pipelines::executor::{
    DEFAULT_GRACE, ExecError, Executor, Exit, RECORD_FILE, StepCommand, StepExec, stop_recorded,
};
use sextant_pipelines::refs::{self, Ref};
use sextant_pipelines::shell;
use sextant_pipelines::spec::{self, Branch, RunCommand, Step, StepKind, Value};
use sextant_store::{MetaStore, StoreError};

use super::outputs;
use super::plan::{self, StepResult};
use super::service::USER;
use super::step_cache::{self, Lookup};
use super::{Orchestrator, OrchestratorError, now_ms};
use crate::data_roots::DataRoots;

/// Why one attempt of a step failed.
pub(super) struct StepFailure {
    pub(super) message: String,
    /// Retrying cannot help (`fail:`, `else: fail`, a bad reference).
    pub(super) permanent: bool,
}

impl StepFailure {
    pub(super) fn retryable(message: impl Into<String>) -> Self {
        StepFailure {
            message: message.into(),
            permanent: false,
        }
    }
    pub(super) fn permanent(message: impl Into<String>) -> Self {
        StepFailure {
            message: message.into(),
            permanent: true,
        }
    }
}

impl From<OrchestratorError> for StepFailure {
    fn from(e: OrchestratorError) -> Self {
        StepFailure::retryable(e.to_string())
    }
}

/// What a step may refer to while it runs.
pub(super) struct Context {
    pub(super) run_id: String,
    pub(super) pipeline: String,
    /// The run was started with `--no-cache`.
    pub(super) no_cache: bool,
    pub(super) params: Map<String, Json>,
    pub(super) metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// The digest of each published output of each succeeded step.
    pub(super) outputs: BTreeMap<String, BTreeMap<String, String>>,
    pub(super) run_dir: PathBuf,
    pub(super) step: String,
}

/// A claimed task with what its step needs, read once by [`Orchestrator::prepare`].
pub(super) struct Prepared {
    pub(super) run: PipelineRun,
    pub(super) step: Step,
    /// The attempt's tracking run: id and artifact URI.
    pub(super) step_run: (String, String),
    pub(super) ctx: Context,
}

impl Context {
    pub(super) fn output_root(&self, step: &str) -> PathBuf {
        self.run_dir.join(step)
    }

    /// `text` with every `${…}` replaced; `$${` stays a literal `${`.
    pub(super) fn resolve(&self, text: &str) -> Result<String, StepFailure> {
        self.substitute(text, false)
    }

    /// A `run:` command line with every `${…}` replaced by its value as one
    /// single-quoted shell word part, so that no value splits, globs or
    /// expands (validation refused references where that cannot hold).
    pub(super) fn resolve_shell(&self, text: &str) -> Result<String, StepFailure> {
        self.substitute(text, true)
    }

    /// What to execute for a `run:` step.
    pub(super) fn resolve_command(&self, command: &RunCommand) -> Result<StepCommand, StepFailure> {
        Ok(match command {
            RunCommand::Shell(line) => StepCommand::Shell(self.resolve_shell(&line.value)?),
            RunCommand::Argv(args) => StepCommand::Argv(
                args.iter()
                    .map(|a| self.resolve(&a.value))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn substitute(&self, text: &str, quoted: bool) -> Result<String, StepFailure> {
        let mut out = String::new();
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        for found in refs::scan(text) {
            let found = found.map_err(|e| StepFailure::permanent(e.message))?;
            out.push_str(&literal(&chars[at..found.offset]));
            let value = match &found.reference {
                Ref::Param(p) => match self.params.get(p) {
                    Some(Json::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => return Err(StepFailure::permanent(format!("no parameter '{p}'"))),
                },
                Ref::StepOutput { step, output } => {
                    self.output_root(step).join(output).display().to_string()
                }
                Ref::StepMetric { step, metric } => {
                    match self.metrics.get(step).and_then(|m| m.get(metric)) {
                        Some(v) => v.to_string(),
                        None => {
                            return Err(StepFailure::permanent(format!(
                                "step '{step}' logged no metric '{metric}'"
                            )));
                        }
                    }
                }
                Ref::Output(o) => self.output_root(&self.step).join(o).display().to_string(),
                Ref::RunId => self.run_id.clone(),
                Ref::EventPayload(_) | Ref::EventSubject | Ref::EventKind => {
                    return Err(StepFailure::permanent(format!(
                        "{} is only available in `on:` triggers",
                        found.reference
                    )));
                }
            };
            if quoted {
                out.push_str(&shell::quote(&value));
            } else {
                out.push_str(&value);
            }
            // Skip the reference itself: `${`, its text, and `}`.
            let close = chars[found.offset..]
                .iter()
                .position(|&c| c == '}')
                .map_or(chars.len(), |i| found.offset + i + 1);
            at = close;
        }
        out.push_str(&literal(&chars[at.min(chars.len())..]));
        Ok(out)
    }
}

/// Text between references, where `$${` stands for `${`.
fn literal(chars: &[char]) -> String {
    chars.iter().collect::<String>().replace("$${", "${")
}

impl Env for Context {
    fn param(&self, name: &str) -> Option<Val> {
        match self.params.get(name)? {
            Json::String(s) => Some(Val::Str(s.clone())),
            Json::Bool(b) => Some(Val::Bool(*b)),
            v => v.as_f64().map(Val::Num),
        }
    }
    fn metric(&self, step: &str, metric: &str) -> Option<Val> {
        self.metrics.get(step)?.get(metric).copied().map(Val::Num)
    }
}

/// `NAME-x` as `NAME_X`, for environment variable names.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

impl Orchestrator {
    /// Runs one claimed task to its fenced outcome.
    pub(super) async fn execute(self: &Arc<Self>, claimed: ClaimedTask) {
        let task = &claimed.task;
        let span = tracing::info_span!("step", run = %task.pipeline_run, step = %task.step, attempt = task.attempt);
        let _enter = span.enter();
        if let Some(p) = self.prepare(&claimed).await {
            self.run_prepared(&claimed, p).await;
        }
    }

    /// Runs a prepared task on this host to its fenced outcome.
    pub(super) async fn run_prepared(self: &Arc<Self>, claimed: &ClaimedTask, p: Prepared) {
        let result = self.run_step(claimed, &p.ctx, &p.step, &p.step_run).await;
        // A lost lease is logged by `finish`; the new holder decides the step.
        let _ = self
            .conclude(claimed, &p.run, &p.step, &p.step_run.0, result)
            .await;
    }

    /// Reads what a claimed task needs to run and opens its tracking run.
    /// When that fails, the task's outcome is recorded here and `None`
    /// returned.
    pub(super) async fn prepare(&self, claimed: &ClaimedTask) -> Option<Prepared> {
        let task = &claimed.task;
        let id = task.pipeline_run.clone();
        let run = match self.db(move |s| s.get_pipeline_run(&id)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pipeline run of a task");
                return None;
            }
        };
        let fail = |message: String| Err(StepFailure::permanent(message));
        let v = match self.spec_of(&run.pipeline).await {
            Ok(v) => v,
            Err(e) => {
                let _ = self
                    .finish(claimed, &run.pipeline, None, fail(e.to_string()), 1, None)
                    .await;
                return None;
            }
        };
        let Some(step) = v.pipeline.step(&task.step).cloned() else {
            let msg = format!("pipeline '{}' has no step '{}'", run.pipeline, task.step);
            let _ = self
                .finish(claimed, &run.pipeline, None, fail(msg), 1, None)
                .await;
            return None;
        };
        let (attempts, backoff) = retry_policy(&step);
        let step_run = match self.open_step_run(claimed, &run).await {
            Ok(r) => r,
            Err(e) => {
                let f =
                    StepFailure::retryable(format!("cannot create the step's tracking run: {e}"));
                let _ = self
                    .finish(claimed, &run.pipeline, None, Err(f), attempts, backoff)
                    .await;
                return None;
            }
        };
        let ctx = match self.context(&run, &step.name.value).await {
            Ok(ctx) => ctx,
            Err(e) => {
                let _ = self
                    .finish(
                        claimed,
                        &run.pipeline,
                        Some(&step_run.0),
                        Err(e.into()),
                        attempts,
                        backoff,
                    )
                    .await;
                return None;
            }
        };
        Some(Prepared {
            run,
            step,
            step_run,
            ctx,
        })
    }

    /// Records a prepared task's outcome: its metrics, then the fenced result.
    pub(super) async fn conclude(
        &self,
        claimed: &ClaimedTask,
        run: &PipelineRun,
        step: &Step,
        step_run: &str,
        result: Result<StepResult, StepFailure>,
    ) -> Result<(), OrchestratorError> {
        let result = self.collect_metrics(step_run, step, run, result).await;
        let (attempts, backoff) = retry_policy(step);
        self.finish(
            claimed,
            &run.pipeline,
            Some(step_run),
            result,
            attempts,
            backoff,
        )
        .await
    }

    /// Creates the attempt's tracking run under the pipeline's, and records it
    /// on the task. Returns its id and artifact URI.
    async fn open_step_run(
        &self,
        claimed: &ClaimedTask,
        run: &PipelineRun,
    ) -> Result<(String, String), OrchestratorError> {
        let (task, fencing) = (claimed.task.clone(), claimed.fencing);
        let (parent, run_id) = (run.run_uuid.clone(), run.id.clone());
        self.db(move |s| {
            let parent = parent.ok_or_else(|| {
                StoreError::Corrupt(format!("pipeline run {run_id} has no tracking run"))
            })?;
            let experiment_id = s.get_run(&parent)?.info.experiment_id;
            let created = s.create_run(&NewRun {
                experiment_id,
                user_id: USER.to_string(),
                run_name: Some(task.step.clone()),
                start_time: None,
                tags: vec![
                    Tag::new("mlflow.parentRunId", parent.as_str()),
                    Tag::new("sextant.pipelineRun", run_id.as_str()),
                    Tag::new("sextant.step", task.step.as_str()),
                    Tag::new("sextant.attempt", task.attempt.to_string()),
                ],
            })?;
            s.set_task_step_run(task.id, fencing, &created.info.run_id)?;
            Ok((created.info.run_id, created.info.artifact_uri))
        })
        .await
    }

    /// Parameters and the metrics of every succeeded step of the run.
    async fn context(&self, run: &PipelineRun, step: &str) -> Result<Context, OrchestratorError> {
        let id = run.id.clone();
        let tasks = self.db(move |s| s.tasks_of_run(&id)).await?;
        let (mut metrics, mut outputs) = (BTreeMap::new(), BTreeMap::new());
        for (name, t) in plan::latest_tasks(&tasks) {
            if t.status != TaskStatus::Succeeded {
                continue;
            }
            let r = plan::task_result(t);
            let digests = r.outputs.into_iter().map(|(o, rec)| (o, rec.digest));
            outputs.insert(name.to_string(), digests.collect());
            metrics.insert(name.to_string(), r.metrics);
        }
        Ok(Context {
            run_id: run.id.clone(),
            pipeline: run.pipeline.clone(),
            no_cache: run.no_cache,
            params: serde_json::from_str(&run.params).unwrap_or_default(),
            metrics,
            outputs,
            run_dir: self.settings.data_dir.join("pipeline-runs").join(&run.id),
            step: step.to_string(),
        })
    }

    async fn run_step(
        self: &Arc<Self>,
        claimed: &ClaimedTask,
        ctx: &Context,
        step: &Step,
        step_run: &(String, String),
    ) -> Result<StepResult, StepFailure> {
        stop_leftovers(ctx, step).await;
        let out = clear_outputs(ctx, step)?;
        let cache = match self.cache_lookup(ctx, step).await? {
            Some(Lookup {
                reused: Some(result),
                ..
            }) => {
                tracing::info!(key = ?result.cache.as_ref().map(|c| &c.key), "cache hit: reusing an earlier execution");
                return Ok(result);
            }
            Some(Lookup { info, .. }) => Some(info),
            None => None,
        };
        fetch_inputs(self.state.artifacts.as_ref(), ctx, step).await?;
        let mut result = self.run_kind(claimed, ctx, step, step_run, &out).await?;
        result.cache = cache;
        publish_outputs(self.state.artifacts.as_ref(), ctx, step, &mut result).await?;
        Ok(result)
    }

    /// Runs the step by its kind; outputs are published by the caller.
    async fn run_kind(
        self: &Arc<Self>,
        claimed: &ClaimedTask,
        ctx: &Context,
        step: &Step,
        step_run: &(String, String),
        out: &Path,
    ) -> Result<StepResult, StepFailure> {
        match &step.kind {
            StepKind::Run { command } => {
                let command = ctx.resolve_command(command)?;
                self.run_command(claimed, ctx, step, step_run, command, out)
                    .await
            }
            StepKind::Uses { builtin, with } => {
                let args = builtin_args(ctx, with)?;
                confine_builtin_paths(&self.state.data_roots, &step.name.value, &args)
                    .map_err(StepFailure::permanent)?;
                if let Some(tune) = &step.tune {
                    let job = super::tune::TuneJob {
                        claimed,
                        step,
                        tune,
                        builtin: builtin.value,
                        with: args,
                        step_run: &step_run.0,
                        run_id: &ctx.run_id,
                        run_dir: &ctx.run_dir,
                        out,
                    };
                    return self.tune(job).await.map_err(|f| StepFailure {
                        message: f.message,
                        permanent: f.permanent,
                    });
                }
                let name = format!("builtin/{}", builtin.value.as_str());
                let dir = out.to_path_buf();
                let metrics = self
                    .heartbeating(claimed, None, async move {
                        tokio::task::spawn_blocking(move || run_builtin(&name, &args, &dir)).await
                    })
                    .await
                    .map_err(|e| StepFailure::retryable(format!("built-in step panicked: {e}")))?
                    .map_err(|e| StepFailure::retryable(e.to_string()))?;
                Ok(StepResult {
                    metrics,
                    ..StepResult::default()
                })
            }
            StepKind::Condition {
                source,
                expr,
                then,
                otherwise,
            } => {
                let taken = expr.eval(ctx).map_err(|e| {
                    StepFailure::permanent(format!("condition '{}': {e}", source.value))
                })?;
                let branch = if taken { then } else { otherwise };
                if let Some(Branch::Fail(_)) = branch {
                    let compared: Vec<String> = expr
                        .values(ctx)
                        .into_iter()
                        .map(|(name, v)| match v {
                            Some(v) => format!("{name} = {v}"),
                            None => format!("{name} has no value"),
                        })
                        .collect();
                    let compared = if compared.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", compared.join(", "))
                    };
                    return Err(StepFailure::permanent(format!(
                        "condition '{}' is {taken}{compared}: the pipeline fails on this branch",
                        source.value
                    )));
                }
                Ok(StepResult {
                    branch: Some(taken),
                    ..StepResult::default()
                })
            }
            StepKind::Fail { message } => Err(StepFailure::permanent(ctx.resolve(&message.value)?)),
            StepKind::Deploy {
                endpoint,
                model,
                strategy,
                percent,
                bake,
                wait,
            } => {
                let target = super::deploy::Target {
                    endpoint: ctx.resolve(&endpoint.value)?,
                    model: ctx.resolve(&model.value)?,
                    strategy: strategy.as_ref().map(|s| s.value.clone()),
                    percent: percent.as_ref().map(|p| f64::from(p.value)),
                    bake: bake.as_ref().map(|b| b.value),
                    wait: *wait,
                };
                self.deploy(claimed, target).await
            }
            StepKind::RegisterModel {
                name,
                model,
                approval,
            } => {
                let dir = PathBuf::from(ctx.resolve(&model.value)?);
                let version = self
                    .register(step_run, &name.value, &dir, *approval)
                    .await?;
                Ok(StepResult {
                    model_version: Some(version),
                    // So later steps can name it: `${steps.<s>.metrics.version}`.
                    metrics: [("version".to_string(), version as f64)].into(),
                    ..StepResult::default()
                })
            }
        }
    }

    async fn run_command(
        &self,
        claimed: &ClaimedTask,
        ctx: &Context,
        step: &Step,
        step_run: &(String, String),
        command: StepCommand,
        out: &Path,
    ) -> Result<StepResult, StepFailure> {
        let env = command_env(&self.settings.tracking_uri, &step_run.0, ctx, step, out)?;
        let logs = super::logs::attempt_dir(
            &ctx.run_dir,
            &step.name.value,
            claimed.task.id,
            claimed.task.attempt,
        );
        let handle = start_command(&self.executor, &logs, env, command, step)?;
        let canceller = handle.canceller();
        let outcome = self
            .heartbeating(claimed, Some(canceller), handle.wait())
            .await;
        upload_logs(self.state.artifacts.as_ref(), &step_run.1, &logs).await;
        let outcome = outcome.map_err(|e| exec_failure(step, e))?;
        command_outcome(step, &outcome, &logs)
    }

    /// Awaits `work` while renewing the task's lease. When the task is no
    /// longer ours (cancelled, or the lease was lost), `cancel` stops the work.
    pub(super) async fn heartbeating<T>(
        &self,
        claimed: &ClaimedTask,
        cancel: Option<sextant_pipelines::executor::Canceller>,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(self.settings.lease / 3);
        tick.tick().await;
        let (id, fencing) = (claimed.task.id, claimed.fencing);
        let lease = self.settings.lease.as_millis() as i64;
        loop {
            let changes = self.state.changes.clone();
            tokio::select! {
                r = &mut work => return r,
                _ = tick.tick() => {
                    if let Err(e) = self.db(move |s| s.heartbeat_task(id, fencing, lease)).await {
                        tracing::warn!(error = %e, "lost the task's lease; stopping the step");
                        if let Some(c) = &cancel { c.cancel(); }
                    }
                }
                _ = changes.notified() => {
                    if let Ok(t) = self.db(move |s| s.get_task(id)).await
                        && (t.status == TaskStatus::Cancelled || t.fencing != fencing)
                        && let Some(c) = &cancel
                    {
                        c.cancel();
                    }
                }
            }
        }
    }

    /// Uploads `dir` as `model/` of the step run and registers it.
    async fn register(
        &self,
        step_run: &(String, String),
        name: &str,
        dir: &Path,
        approval: spec::Approval,
    ) -> Result<i64, StepFailure> {
        if !dir.is_dir() {
            return Err(StepFailure::permanent(format!(
                "model directory {} does not exist",
                dir.display()
            )));
        }
        for file in walk(dir)
            .map_err(|e| StepFailure::retryable(format!("reading {}: {e}", dir.display())))?
        {
            let rel = file.strip_prefix(dir).unwrap_or(&file);
            let rel = rel.to_string_lossy().replace('\\', "/");
            upload_to_run(
                self.state.artifacts.as_ref(),
                &step_run.1,
                &format!("model/{rel}"),
                &file,
            )
            .await
            .map_err(StepFailure::retryable)?;
        }
        let mut new = NewModelVersion {
            name: name.to_string(),
            source: format!("{}/model", step_run.1.trim_end_matches('/')),
            run_id: Some(step_run.0.clone()),
            model_id: None,
            run_link: None,
            description: None,
            user_id: Some(USER.to_string()),
            tags: Vec::new(),
            approval: Some(Approval {
                status: match approval {
                    spec::Approval::Pending => ApprovalStatus::Pending,
                    spec::Approval::Approved => ApprovalStatus::Approved,
                    spec::Approval::Rejected => ApprovalStatus::Rejected,
                },
                actor: Some(USER.to_string()),
                time: None,
                comment: Some("registered by a pipeline".to_string()),
            }),
        };
        let model = name.to_string();
        let version = self
            .db(move |s| {
                new.tags = lineage(s, &new.run_id.clone().unwrap_or_default())?;
                match s.get_registered_model(&model) {
                    Ok(_) => {}
                    Err(StoreError::Domain(sextant_core::Error::NotFound(_))) => {
                        s.create_registered_model(&model, None, &[])?;
                    }
                    Err(e) => return Err(e),
                }
                s.create_model_version(&new)
            })
            .await?;
        Ok(version.version)
    }

    /// Logs the step's own metrics to its run, then reads back everything
    /// logged there (by the step process too) merged with `metrics.json`.
    async fn collect_metrics(
        &self,
        step_run: &str,
        step: &Step,
        run: &PipelineRun,
        mut result: Result<StepResult, StepFailure>,
    ) -> Result<StepResult, StepFailure> {
        let Ok(r) = &mut result else {
            return result;
        };
        let file = self
            .settings
            .data_dir
            .join("pipeline-runs")
            .join(&run.id)
            .join(&step.name.value)
            .join(METRICS_FILE);
        if let Ok(text) = tokio::fs::read_to_string(&file).await {
            let parsed: BTreeMap<String, Json> = serde_json::from_str(&text).map_err(|e| {
                StepFailure::retryable(format!(
                    "{}: not a JSON object of numbers: {e}",
                    file.display()
                ))
            })?;
            for (k, v) in parsed {
                if let Some(f) = v.as_f64() {
                    r.metrics.insert(k, f);
                }
            }
        }
        let now = now_ms();
        let metrics: Vec<Metric> = r
            .metrics
            .iter()
            .map(|(k, v)| Metric::new(k.clone(), *v, now, 0))
            .collect();
        // Lineage: which stored output each declared output is, and what
        // the cache decided.
        let mut tags: Vec<Tag> = r
            .outputs
            .iter()
            .map(|(o, rec)| Tag::new(format!("sextant.output.{o}"), rec.digest.as_str()))
            .collect();
        if let Some(c) = &r.cache {
            tags.push(Tag::new("sextant.cache.key", c.key.as_str()));
            tags.push(Tag::new(
                "sextant.cache",
                if c.hit { "hit" } else { "miss" },
            ));
            if let Some(src) = &c.source {
                tags.push(Tag::new(
                    "sextant.cache.sourceRun",
                    src.pipeline_run.as_str(),
                ));
                if let Some(sr) = &src.step_run {
                    tags.push(Tag::new("sextant.cache.sourceStepRun", sr.as_str()));
                }
            }
        }
        let id = step_run.to_string();
        let logged = self
            .db(move |s| {
                if !metrics.is_empty() || !tags.is_empty() {
                    s.log_batch(&id, &metrics, &[], &tags)?;
                }
                s.get_run(&id)
            })
            .await?;
        for m in logged.data.metrics {
            r.metrics.entry(m.key).or_insert(m.value);
        }
        result
    }

    /// Records the attempt's outcome on the task (fenced) and its tracking run.
    async fn finish(
        &self,
        claimed: &ClaimedTask,
        pipeline: &str,
        step_run: Option<&str>,
        result: Result<StepResult, StepFailure>,
        attempts: u32,
        backoff: Option<Duration>,
    ) -> Result<(), OrchestratorError> {
        let (id, fencing, attempt) = (claimed.task.id, claimed.fencing, claimed.task.attempt);
        let status = if result.is_ok() {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        };
        let entry = result
            .as_ref()
            .ok()
            .and_then(|r| step_cache::entry_of(pipeline, &claimed.task, step_run, r));
        let step_run = step_run.map(str::to_string);
        let outcome = self
            .db(move |s| {
                if let Some(r) = &step_run {
                    s.update_run(r, Some(status), Some(now_ms()), None)?;
                }
                match result {
                    Ok(r) => {
                        let json = serde_json::to_string(&r).expect("a step result serializes");
                        s.complete_task(id, fencing, &json)?;
                        tracing::info!("step succeeded");
                        // After the fenced completion: a stale holder records nothing.
                        if let Some(e) = &entry
                            && let Err(err) = s.put_cache_entry(e)
                        {
                            tracing::warn!(error = %err, "cannot record the step in the cache");
                        }
                    }
                    Err(f) => {
                        let retry_at = (!f.permanent && attempt < i64::from(attempts)).then(|| {
                            let wait = backoff.unwrap_or_default().as_millis() as i64;
                            now_ms() + wait.saturating_mul(1 << (attempt - 1).clamp(0, 20))
                        });
                        tracing::warn!(error = %f.message, retry = retry_at.is_some(), "step failed");
                        s.fail_task(id, fencing, &f.message, retry_at)?;
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, "cannot record the step's outcome (lease lost or run ended?)");
        }
        outcome
    }
}

/// The attempts a step's retry policy allows and the backoff between them.
fn retry_policy(step: &Step) -> (u32, Option<Duration>) {
    let attempts = step.retry.as_ref().map_or(1, |r| r.attempts.value);
    let backoff = step
        .retry
        .as_ref()
        .and_then(|r| r.backoff.as_ref())
        .map(|b| b.value);
    (attempts, backoff)
}

/// Empties the step's output directory for this attempt and creates one
/// directory per declared output; returns the step's output root. What an
/// earlier, failed attempt left (half a model, a metrics.json) must not pass
/// for this one's work, nor may the markers that named those files.
pub(super) fn clear_outputs(ctx: &Context, step: &Step) -> Result<PathBuf, StepFailure> {
    let out = ctx.output_root(&step.name.value);
    let stale = step
        .outputs
        .iter()
        .map(|o| outputs::marker(&ctx.run_dir, &step.name.value, &o.value));
    for path in std::iter::once(out.clone()).chain(stale) {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StepFailure::retryable(format!(
                    "cannot clear {}: {e}",
                    path.display()
                )));
            }
            _ => {}
        }
    }
    for o in &step.outputs {
        std::fs::create_dir_all(out.join(&o.value))
            .map_err(|e| StepFailure::retryable(format!("cannot create {}: {e}", out.display())))?;
    }
    Ok(out)
}

/// Brings every upstream output the step refers to into the run's
/// directory (a no-op for outputs this host made for this run).
pub(super) async fn fetch_inputs(
    blobs: &impl outputs::Blobs,
    ctx: &Context,
    step: &Step,
) -> Result<(), StepFailure> {
    for s in step.strings() {
        for found in refs::scan(&s.value).into_iter().flatten() {
            let Ref::StepOutput { step: from, output } = &found.reference else {
                continue;
            };
            let Some(digest) = ctx.outputs.get(from).and_then(|o| o.get(output)) else {
                continue;
            };
            outputs::ensure_local(blobs, &ctx.run_dir, from, output, digest)
                .await
                .map_err(|e| {
                    StepFailure::retryable(format!(
                        "cannot fetch output '{output}' of step '{from}': {e}"
                    ))
                })?;
        }
    }
    Ok(())
}

/// Publishes each declared output of the step by digest and records it on
/// `result` and in the run's markers.
pub(super) async fn publish_outputs(
    blobs: &impl outputs::Blobs,
    ctx: &Context,
    step: &Step,
    result: &mut StepResult,
) -> Result<(), StepFailure> {
    let out = ctx.output_root(&step.name.value);
    for o in &step.outputs {
        let dir = out.join(&o.value);
        let manifest = outputs::publish(blobs, &dir)
            .await
            .map_err(|e| StepFailure::retryable(format!("publishing output '{}': {e}", o.value)))?;
        outputs::mark(&ctx.run_dir, &step.name.value, &o.value, &manifest.digest)
            .map_err(StepFailure::retryable)?;
        result.outputs.insert(
            o.value.clone(),
            plan::OutputRecord {
                files: manifest.files.len() as u64,
                bytes: manifest.bytes(),
                digest: manifest.digest,
            },
        );
    }
    Ok(())
}

/// The string arguments of a `uses:` step, references resolved.
pub(super) fn builtin_args(
    ctx: &Context,
    with: &spec::Entries<Value>,
) -> Result<BTreeMap<String, String>, StepFailure> {
    let mut args = BTreeMap::new();
    for (k, v) in with {
        let text = match &v.value {
            Value::String(s) => ctx.resolve(s)?,
            Value::Null => String::new(),
            other => other.to_json().to_string(),
        };
        args.insert(k.value.clone(), text);
    }
    Ok(args)
}

/// Refuses a built-in step (run in this process) that would read a file outside the
/// server's data roots.
pub(super) fn confine_builtin_paths(
    roots: &DataRoots,
    step: &str,
    args: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (key, path) in sextant_pipelines::builtins::input_paths(args) {
        roots
            .check_tree(&format!("with.{key} of step '{step}'"), &path)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// [`confine_builtin_paths`] at run start, of the paths already known: literal, or made
/// of parameters only. Others are checked when their step runs.
pub(super) fn confine_known_paths(
    roots: &DataRoots,
    pipeline: &spec::Pipeline,
    params: &Map<String, Json>,
) -> Result<(), String> {
    let ctx = Context {
        run_id: String::new(),
        pipeline: pipeline.name.value.clone(),
        no_cache: false,
        params: params.clone(),
        metrics: BTreeMap::new(),
        outputs: BTreeMap::new(),
        run_dir: PathBuf::new(),
        step: String::new(),
    };
    let known = |v: &Value| match v {
        Value::String(s) => refs::scan(s)
            .iter()
            .all(|r| matches!(r, Ok(f) if matches!(f.reference, Ref::Param(_)))),
        _ => true,
    };
    for step in &pipeline.steps {
        let StepKind::Uses { with, .. } = &step.kind else {
            continue;
        };
        let with: spec::Entries<Value> = with
            .iter()
            .filter(|(_, v)| known(&v.value))
            .cloned()
            .collect();
        let args = builtin_args(&ctx, &with).map_err(|f| f.message)?;
        confine_builtin_paths(roots, &step.name.value, &args)?;
    }
    Ok(())
}

/// The environment of a `run:` step's process.
pub(super) fn command_env(
    tracking_uri: &str,
    step_run_id: &str,
    ctx: &Context,
    step: &Step,
    out: &Path,
) -> Result<BTreeMap<String, String>, StepFailure> {
    let mut env = BTreeMap::new();
    env.insert("MLFLOW_TRACKING_URI".into(), tracking_uri.to_string());
    env.insert("MLFLOW_RUN_ID".into(), step_run_id.to_string());
    env.insert("SEXTANT_PIPELINE_RUN_ID".into(), ctx.run_id.clone());
    env.insert("SEXTANT_OUTPUT_DIR".into(), out.display().to_string());
    for o in &step.outputs {
        env.insert(
            format!("SEXTANT_OUTPUT_{}", env_name(&o.value)),
            out.join(&o.value).display().to_string(),
        );
    }
    for (k, v) in &step.inputs {
        env.insert(
            format!("SEXTANT_INPUT_{}", env_name(&k.value)),
            ctx.resolve(&v.value)?,
        );
    }
    for (k, v) in &ctx.params {
        let text = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        env.insert(format!("SEXTANT_PARAM_{}", env_name(k)), text);
    }
    for (k, v) in &step.env {
        env.insert(k.value.clone(), ctx.resolve(&v.value)?);
    }
    Ok(env)
}

/// Starts a `run:` step's command with its stdout and stderr in `logs`.
pub(super) fn start_command(
    executor: &impl Executor,
    logs: &Path,
    env: BTreeMap<String, String>,
    command: StepCommand,
    step: &Step,
) -> Result<sextant_pipelines::executor::ExecHandle, StepFailure> {
    std::fs::create_dir_all(logs)
        .map_err(|e| StepFailure::retryable(format!("cannot create {}: {e}", logs.display())))?;
    Ok(executor.start(StepExec {
        command,
        env,
        cwd: None,
        timeout: step.timeout.as_ref().map(|t| t.value),
        stdout_path: logs.join("stdout.txt"),
        stderr_path: logs.join("stderr.txt"),
        tee: None,
        record: Some(logs.join(RECORD_FILE)),
    }))
}

/// Stops what an earlier attempt of the step left running on this host (a
/// holder killed together with its step's watchdog), before this attempt
/// touches the step's outputs: two attempts never run at once on one host.
pub(super) async fn stop_leftovers(ctx: &Context, step: &Step) {
    if !matches!(step.kind, StepKind::Run { .. }) {
        return;
    }
    let dir = ctx.run_dir.join(".logs").join(&step.name.value);
    for r in stop_recorded(&dir, DEFAULT_GRACE).await {
        tracing::warn!(
            pid = r.pid,
            "stopped an earlier attempt of the step that was still running"
        );
    }
}

/// Copies a local file to `path` under a tracking run's artifact root.
pub(super) async fn upload_to_run(
    blobs: &impl outputs::Blobs,
    artifact_uri: &str,
    path: &str,
    file: &Path,
) -> Result<(), String> {
    let root = crate::mlflow::artifacts::proxied_root(artifact_uri).map_err(|e| e.message)?;
    let dest = root.join(&SafePath::parse(path).map_err(|e| e.to_string())?);
    blobs.put_file(&dest, file).await
}

/// Uploads an attempt's stdout and stderr as `logs/` of its tracking run;
/// a failure is logged (the local files stay).
pub(super) async fn upload_logs(blobs: &impl outputs::Blobs, artifact_uri: &str, logs: &Path) {
    for name in ["stdout.txt", "stderr.txt"] {
        let path = format!("logs/{name}");
        if let Err(e) = upload_to_run(blobs, artifact_uri, &path, &logs.join(name)).await {
            tracing::warn!(error = %e, "cannot upload step log");
        }
    }
}

/// This host's name, for messages about what it lacks.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Why a `run:` step's process could not be awaited or started.
pub(super) fn exec_failure(step: &Step, e: ExecError) -> StepFailure {
    match e {
        ExecError::Spawn { program, source } if source.kind() == std::io::ErrorKind::NotFound => {
            StepFailure::retryable(format!(
                "step '{}': program '{program}' was not found on the PATH of host '{}', which runs the step",
                step.name.value,
                host_name()
            ))
        }
        other => StepFailure::retryable(other.to_string()),
    }
}

/// A `run:` step's process outcome as the attempt's result; `logs` holds
/// its stdout and stderr.
pub(super) fn command_outcome(
    step: &Step,
    outcome: &sextant_pipelines::executor::Outcome,
    logs: &Path,
) -> Result<StepResult, StepFailure> {
    if outcome.success() {
        return Ok(StepResult::default());
    }
    if outcome.exit == Some(Exit::Code(127)) && !outcome.cancelled && !outcome.timed_out {
        // `sh` exits 127 when it cannot find a command; its own words name it.
        let said = std::fs::read_to_string(logs.join("stderr.txt"))
            .unwrap_or_default()
            .lines()
            .rev()
            .find(|l| l.contains("not found"))
            .map(|l| format!(" ({})", l.trim()))
            .unwrap_or_default();
        return Err(StepFailure::retryable(format!(
            "step '{}' exited with code 127: a command was not found on the PATH of host '{}', which runs the step{said}",
            step.name.value,
            host_name()
        )));
    }
    let why = if outcome.cancelled {
        "cancelled".to_string()
    } else if outcome.timed_out {
        format!("timed out after {:?}", outcome.duration)
    } else {
        match outcome.exit {
            Some(Exit::Code(c)) => format!("exited with code {c}"),
            Some(Exit::Signal(n)) => format!("was killed by signal {n}"),
            None => "did not start".to_string(),
        }
    };
    Err(StepFailure::retryable(format!(
        "step '{}' {why}",
        step.name.value
    )))
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The lineage a registered version carries: its pipeline run and, from the
/// pipeline's tracking run, what triggered it (event, monitor run).
fn lineage(s: &dyn MetaStore, step_run: &str) -> Result<Vec<Tag>, StoreError> {
    let step = s.get_run(step_run)?;
    let tag = |run: &sextant_core::entities::Run, key: &str| {
        run.data
            .tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.clone())
    };
    let mut tags = Vec::new();
    if let Some(id) = tag(&step, "sextant.pipelineRun") {
        tags.push(Tag::new("sextant.pipelineRun", id));
    }
    if let Some(parent) = tag(&step, "mlflow.parentRunId") {
        let parent = s.get_run(&parent)?;
        tags.extend(parent.data.tags.into_iter().filter(|t| {
            t.key.starts_with("sextant.trigger") || t.key.starts_with("sextant.monitor")
        }));
    }
    Ok(tags)
}
