//! The server's side of remote workers (`sextant worker --server URL`):
//! claims handed out as work orders, lease renewals, and fenced outcomes.
//!
//! A worker runs the work steps — `run:` commands and untuned `uses:`
//! built-ins — on its own host. Everything else a claim may return
//! (conditions, `fail:`, `register_model:`, `tune:` searches) needs the
//! stores, so the server runs it itself under the worker's claim and claims
//! again. The server also opens the attempt's tracking run and decides the
//! step cache before handing a task out (a hit never reaches the worker),
//! and on completion logs the metrics and records the outcome under the
//! worker's fencing token: a worker whose lease expired and was re-claimed
//! gets 409 and changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use sextant_core::pipeline_runs::{ClaimedTask, TaskStatus};
use sextant_pipelines::spec::{Step, StepKind};

use super::plan::{CacheInfo, StepResult};
use super::step::StepFailure;
use super::step_cache::Lookup;
use super::{Orchestrator, POLL, PipelineError, outputs};

/// The longest a claim waits for a task before answering "none".
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// Leases a remote worker may ask for.
pub const LEASE_RANGE: std::ops::RangeInclusive<i64> = 200..=600_000;

/// One task for a remote worker: what it needs to run the step on its host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkOrder {
    pub task_id: i64,
    /// The token every heartbeat and the outcome must present.
    pub fencing: i64,
    pub attempt: i64,
    pub pipeline_run: String,
    pub pipeline: String,
    pub step: String,
    /// The stored pipeline file, which the worker parses for the step.
    pub spec: String,
    /// The lease granted; renew it well within this.
    pub lease_ms: i64,
    /// The attempt's tracking run (`MLFLOW_RUN_ID` of the step process).
    pub step_run_id: String,
    pub step_run_artifact_uri: String,
    pub params: Map<String, Json>,
    /// Metrics of the run's succeeded steps, for `${steps.s.metrics.m}`.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// Output digests of the run's succeeded steps, fetched on demand.
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
    /// The cache's decision (a miss) when the step has a `cache:` policy;
    /// returned with the result.
    pub cache: Option<CacheInfo>,
}

/// What a worker reports at the end of an attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The step succeeded; its outputs are published by digest. (Boxed:
    /// a result is ten times the size of a failure.)
    Succeeded { result: Box<StepResult> },
    /// The attempt failed; `permanent` when retrying cannot help.
    Failed {
        message: String,
        #[serde(default)]
        permanent: bool,
    },
}

/// Whether a remote worker runs this step itself.
pub(super) fn runs_remotely(step: &Step) -> bool {
    match &step.kind {
        StepKind::Run { .. } => true,
        StepKind::Uses { .. } => step.tune.is_none(),
        _ => false,
    }
}

fn check_lease(lease_ms: i64) -> Result<(), PipelineError> {
    if LEASE_RANGE.contains(&lease_ms) {
        return Ok(());
    }
    Err(PipelineError::Invalid(format!(
        "lease_ms must be between {} and {}, got {lease_ms}",
        LEASE_RANGE.start(),
        LEASE_RANGE.end()
    )))
}

/// Claims the next task for `worker`, waiting up to `wait` for one. Tasks a
/// worker cannot run are run here and the claim goes on. `orch` is this
/// server's orchestrator, if it runs one.
pub async fn claim(
    orch: Option<&Arc<Orchestrator>>,
    worker: String,
    lease_ms: i64,
    wait: Duration,
) -> Result<Option<WorkOrder>, PipelineError> {
    check_lease(lease_ms)?;
    if worker.trim().is_empty() || worker.len() > 200 {
        return Err(PipelineError::Invalid(
            "worker must be a non-empty name of at most 200 bytes".into(),
        ));
    }
    let orch = orch.ok_or(PipelineError::NotRunning)?;
    let deadline = tokio::time::Instant::now() + wait.min(MAX_CLAIM_WAIT);
    loop {
        let queued = orch.deps.queued.clone();
        let notified = queued.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let who = worker.clone();
        let now = orch.deps.clock.now_ms();
        let claimed = orch
            .db(move |s| s.claim_task(&who, lease_ms, now))
            .await
            .map_err(|e| PipelineError::Internal(e.to_string()))?;
        if let Some(claimed) = claimed {
            if let Some(order) = orch.hand_out(claimed, lease_ms).await {
                return Ok(Some(order));
            }
            continue;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(left.min(POLL)) => {}
        }
    }
}

/// Renews the lease of a task a worker holds; 409 when it lost the task
/// (re-claimed by another, or the run was cancelled).
pub async fn heartbeat(
    orch: Option<&Arc<Orchestrator>>,
    task_id: i64,
    fencing: i64,
    lease_ms: i64,
) -> Result<(), PipelineError> {
    check_lease(lease_ms)?;
    let orch = orch.ok_or(PipelineError::NotRunning)?;
    // The lease runs on this server's clock, the one its claims read.
    let now = orch.deps.clock.now_ms();
    orch.db(move |s| s.heartbeat_task_at(task_id, fencing, lease_ms, now))
        .await
        .map_err(PipelineError::lost_claim)
}

/// Records a worker's outcome for the task it holds under `fencing`.
pub async fn complete(
    orch: Option<&Arc<Orchestrator>>,
    task_id: i64,
    fencing: i64,
    outcome: Outcome,
) -> Result<(), PipelineError> {
    let orch = orch.ok_or(PipelineError::NotRunning)?;
    // Only "not found" can come of reading a task, so `lost_claim` keeps it.
    let task = orch
        .db(move |s| s.get_task(task_id))
        .await
        .map_err(PipelineError::lost_claim)?;
    if task.status != TaskStatus::Running || task.fencing != fencing {
        return Err(PipelineError::Conflict(format!(
            "task {task_id} is not held under fencing token {fencing}: it is {} under token {}",
            task.status.as_str(),
            task.fencing
        )));
    }
    let run_id = task.pipeline_run.clone();
    let step_run = task.step_run_uuid.clone().ok_or_else(|| {
        PipelineError::InvalidState(format!(
            "task {task_id} has no tracking run: it was not handed out as a work order"
        ))
    })?;
    let claimed = ClaimedTask { task, fencing };
    let (run, step) = orch
        .task_step(&claimed)
        .await
        .map_err(PipelineError::lost_claim)?;
    let result = match outcome {
        Outcome::Succeeded { result } => orch.check_outputs(&step, *result).await,
        Outcome::Failed { message, permanent } => Err(StepFailure { message, permanent }),
    };
    let recorded = orch
        .conclude(&claimed, &run, &step, &step_run, result)
        .await
        .map_err(PipelineError::lost_claim);
    orch.advance_logged(&run_id).await;
    orch.deps.pipelines.notify_one();
    recorded
}

impl Orchestrator {
    /// Prepares a task claimed by a remote worker: its work order, or `None`
    /// when the server ran it (a control step, a cache hit) or it already
    /// ended (it could not be prepared).
    async fn hand_out(self: &Arc<Self>, claimed: ClaimedTask, lease_ms: i64) -> Option<WorkOrder> {
        let run_id = claimed.task.pipeline_run.clone();
        let Some(p) = self.prepare(&claimed).await else {
            self.advance_logged(&run_id).await;
            return None;
        };
        if !runs_remotely(&p.step) {
            let orch = Arc::clone(self);
            tokio::spawn(async move {
                orch.run_prepared(&claimed, p).await;
                orch.advance_logged(&run_id).await;
                orch.deps.pipelines.notify_one();
            });
            return None;
        }
        let cache = match self.cache_lookup(&p.ctx, &p.step).await {
            Ok(Some(Lookup {
                reused: Some(result),
                ..
            })) => Err(Ok(result)),
            Ok(lookup) => Ok(lookup.map(|l| l.info)),
            Err(f) => Err(Err(f)),
        };
        let cache = match cache {
            Ok(c) => c,
            Err(result) => {
                let _ = self
                    .conclude(&claimed, &p.run, &p.step, &p.step_run.0, result)
                    .await;
                self.advance_logged(&run_id).await;
                return None;
            }
        };
        let spec = match self.spec_text(&p.run.pipeline).await {
            Ok(s) => s,
            Err(e) => {
                let f = StepFailure::retryable(e.to_string());
                let _ = self
                    .conclude(&claimed, &p.run, &p.step, &p.step_run.0, Err(f))
                    .await;
                self.advance_logged(&run_id).await;
                return None;
            }
        };
        tracing::info!(run = %run_id, step = %claimed.task.step, worker = ?claimed.task.lease_owner, "handed a step to a remote worker");
        Some(WorkOrder {
            task_id: claimed.task.id,
            fencing: claimed.fencing,
            attempt: claimed.task.attempt,
            pipeline_run: run_id,
            pipeline: p.run.pipeline.clone(),
            step: claimed.task.step.clone(),
            spec,
            lease_ms,
            step_run_id: p.step_run.0,
            step_run_artifact_uri: p.step_run.1,
            params: p.ctx.params,
            metrics: p.ctx.metrics,
            outputs: p.ctx.outputs,
            cache,
        })
    }

    /// The stored text of a pipeline.
    async fn spec_text(&self, pipeline: &str) -> Result<String, PipelineError> {
        let name = pipeline.to_string();
        self.db(move |s| Ok(s.get_pipeline(&name)?.spec)).await
    }

    /// The run and the step of a claimed task.
    async fn task_step(
        &self,
        claimed: &ClaimedTask,
    ) -> Result<(sextant_core::pipeline_runs::PipelineRun, Step), PipelineError> {
        let id = claimed.task.pipeline_run.clone();
        let run = self.db(move |s| s.get_pipeline_run(&id)).await?;
        let v = self.spec_of(&run.pipeline).await?;
        let step = v
            .pipeline
            .step(&claimed.task.step)
            .cloned()
            .ok_or_else(|| PipelineError::Spec {
                pipeline: run.pipeline.clone(),
                message: format!("no step '{}'", claimed.task.step),
            })?;
        Ok((run, step))
    }

    /// A worker's result, accepted only if it names every declared output
    /// and each is wholly in the artifact store.
    async fn check_outputs(
        &self,
        step: &Step,
        result: StepResult,
    ) -> Result<StepResult, StepFailure> {
        for o in &step.outputs {
            let Some(rec) = result.outputs.get(&o.value) else {
                return Err(StepFailure::retryable(format!(
                    "the worker reported no output '{}'",
                    o.value
                )));
            };
            let stored = outputs::is_stored(self.deps.artifacts.as_ref(), &rec.digest).await?;
            if !stored {
                return Err(StepFailure::retryable(format!(
                    "output '{}' ({}) is not in the artifact store",
                    o.value, rec.digest
                )));
            }
        }
        Ok(result)
    }
}
