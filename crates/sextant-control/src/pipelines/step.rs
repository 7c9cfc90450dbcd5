//! Running one claimed task: the step's tracking run, the step itself by
//! kind, its metrics, and the fenced outcome.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sextant_core::entities::{Metric, NewRun, RunStatus, Tag};
use sextant_core::pipeline_runs::{ClaimedTask, PipelineRun, TaskStatus};
use sextant_pipelines::builtins::{METRICS_FILE, run_builtin};
use sextant_pipelines::executor::StepCommand;
use sextant_pipelines::spec::{Branch, Step, StepKind};
use sextant_store::StoreError;
use tracing::Instrument;

use super::command::{
    command_env, command_outcome, exec_failure, read_metrics_file, start_command, stop_leftovers,
};
use super::context::{Context, builtin_args, confine_builtin_paths};
use super::files::{clear_outputs, fetch_inputs, publish_outputs, upload_logs};
use super::plan::{self, StepResult};
use super::service::USER;
use super::step_cache::{self, Lookup};
use super::{Orchestrator, PipelineError};

pub(super) use super::failure::StepFailure;

/// A claimed task with what its step needs, read once by [`Orchestrator::prepare`].
pub(super) struct Prepared {
    pub(super) run: PipelineRun,
    pub(super) step: Step,
    /// The attempt's tracking run: id and artifact URI.
    pub(super) step_run: (String, String),
    pub(super) ctx: Context,
}

impl Orchestrator {
    /// Runs one claimed task to its fenced outcome.
    pub(super) async fn execute(self: &Arc<Self>, claimed: ClaimedTask) {
        let task = &claimed.task;
        let span = tracing::info_span!("step", run = %task.pipeline_run, step = %task.step, attempt = task.attempt);
        async {
            if let Some(p) = self.prepare(&claimed).await {
                self.run_prepared(&claimed, p).await;
            }
        }
        .instrument(span)
        .await
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
    ) -> Result<(), PipelineError> {
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
    ) -> Result<(String, String), PipelineError> {
        let (task, fencing) = (claimed.task.clone(), claimed.fencing);
        let (parent, run_id) = (run.run_uuid.clone(), run.id.clone());
        let now = self.deps.clock.now_ms();
        self.db(move |s| {
            let parent = parent.ok_or_else(|| {
                StoreError::Corrupt(format!("pipeline run {run_id} has no tracking run"))
            })?;
            let experiment_id = s.get_run(&parent)?.info.experiment_id;
            let created = s.create_run(&NewRun {
                experiment_id,
                user_id: USER.to_string(),
                run_name: Some(task.step.clone()),
                start_time: Some(now),
                tags: vec![
                    Tag::new("mlflow.parentRunId", parent.as_str()),
                    Tag::new("sextant.pipelineRun", run_id.as_str()),
                    Tag::new("sextant.step", task.step.as_str()),
                    Tag::new("sextant.attempt", task.attempt.to_string()),
                ],
            })?;
            s.set_task_step_run_at(task.id, fencing, &created.info.run_id, now)?;
            Ok((created.info.run_id, created.info.artifact_uri))
        })
        .await
    }

    /// Parameters and the metrics of every succeeded step of the run.
    async fn context(&self, run: &PipelineRun, step: &str) -> Result<Context, PipelineError> {
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
            started_by: run.started_by.clone(),
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
        fetch_inputs(self.deps.artifacts.as_ref(), ctx, step).await?;
        let mut result = self.run_kind(claimed, ctx, step, step_run, &out).await?;
        result.cache = cache;
        publish_outputs(self.deps.artifacts.as_ref(), ctx, step, &mut result).await?;
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
                confine_builtin_paths(&self.deps.data_roots, &step.name.value, &args)
                    .map_err(|e| StepFailure::permanent(e.to_string()))?;
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
                    return self.tune(job).await;
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
                let target = super::deploy::DeployTarget {
                    endpoint: ctx.resolve(&endpoint.value)?,
                    model: ctx.resolve(&model.value)?,
                    strategy: strategy.as_ref().map(|s| s.value.clone()),
                    percent: percent.as_ref().map(|p| f64::from(p.value)),
                    bake: bake.as_ref().map(|b| b.value),
                };
                self.deploy(claimed, target, *wait).await
            }
            StepKind::RegisterModel {
                name,
                model,
                approval,
            } => {
                let dir = PathBuf::from(ctx.resolve(&model.value)?);
                let registered = self
                    .register(ctx, step_run, &name.value, &dir, *approval)
                    .await?;
                let version = registered.version;
                Ok(StepResult {
                    model_version: Some(version),
                    // So later steps can name it: `${steps.<s>.metrics.version}`.
                    metrics: [("version".to_string(), version as f64)].into(),
                    note: registered.withheld,
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
        let env = command_env(
            &self.settings.tracking_uri,
            self.settings.tracking_token.as_deref(),
            self.settings.tracking_insecure_tls,
            &step_run.0,
            ctx,
            step,
            out,
        )?;
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
        upload_logs(self.deps.artifacts.as_ref(), &step_run.1, &logs).await;
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
            let changes = self.deps.changes.clone();
            tokio::select! {
                r = &mut work => return r,
                _ = tick.tick() => {
                    let now = self.deps.clock.now_ms();
                    if let Err(e) = self.db(move |s| s.heartbeat_task_at(id, fencing, lease, now)).await {
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
        read_metrics_file(&file, r).await?;
        let now = self.deps.clock.now_ms();
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
    ) -> Result<(), PipelineError> {
        let (id, fencing, attempt) = (claimed.task.id, claimed.fencing, claimed.task.attempt);
        let status = if result.is_ok() {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        };
        let now = self.deps.clock.now_ms();
        let entry = result
            .as_ref()
            .ok()
            .and_then(|r| step_cache::entry_of(pipeline, &claimed.task, step_run, r, now));
        let step_run = step_run.map(str::to_string);
        let outcome = self
            .db(move |s| {
                if let Some(r) = &step_run {
                    s.update_run(r, Some(status), Some(now), None)?;
                }
                match result {
                    Ok(r) => {
                        let json = serde_json::to_string(&r).expect("a step result serializes");
                        s.complete_task_at(id, fencing, &json, now)?;
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
                            now + wait.saturating_mul(1 << (attempt - 1).clamp(0, 20))
                        });
                        tracing::warn!(error = %f.message, retry = retry_at.is_some(), "step failed");
                        s.fail_task_at(id, fencing, &f.message, retry_at, now)?;
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
