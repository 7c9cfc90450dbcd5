//! The pipeline orchestrator: starts pipeline runs, queues each step once its
//! dependencies are done, and runs queued steps on this host.
//!
//! The task queue in the MetaStore is the only record of progress: [`plan`]
//! derives every step's state from a run's tasks, so after a restart the
//! orchestrator re-derives the plan of each running run and queues what is
//! missing, while `claim_task` hands out tasks whose lease expired.
//! Queueing is serialized by one lock in this process, so a step is never
//! queued twice by two completions racing.

mod cache;
mod command;
mod context;
mod deploy;
mod deps;
mod error;
mod failure;
mod files;
mod logs;
pub mod outputs;
mod plan;
mod register;
pub mod remote;
mod service;
mod step;
mod step_cache;
mod triggers;
mod tune;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sextant_core::entities::RunStatus;
use sextant_core::pipeline_runs::{PipelineRun, PipelineRunStatus};
use sextant_pipelines::executor::{DEFAULT_GRACE, LocalExecutor};
use sextant_store::PipelineRunSearch;
use tokio::sync::{Mutex, Semaphore};

pub use deploy::{DeployError, DeployTarget, Deployed, Deployer, RolloutProgress};
pub use deps::{Deps, RegistryAuthz};
pub use error::PipelineError;
pub use logs::MAX_CHUNK as MAX_LOG_CHUNK;
pub use plan::{CacheInfo, CacheSource, OutputRecord, StepResult, StepState};
pub use service::{
    LogChunk, LogRequest, RunDetail, StepDetail, apply, cancel_run, retry_run, run_detail,
    start_run, step_logs,
};
pub use step_cache::{Explanation as CacheExplanation, explain as explain_cache};

/// How long a claim lasts without a heartbeat, unless configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How often a worker looks for due tasks when nothing woke it.
const POLL: Duration = Duration::from_millis(200);
/// Runs are read in pages of this size when resuming.
const RUN_BATCH: u64 = 1000;

/// What the orchestrator needs besides the stores.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Outputs go under `<data_dir>/pipeline-runs/<run id>/<step>/<output>`.
    pub data_dir: PathBuf,
    /// `MLFLOW_TRACKING_URI` of the step processes: this server's URL.
    pub tracking_uri: String,
    /// Step processes skip checking the server's TLS certificate
    /// (`MLFLOW_TRACKING_INSECURE_TLS`): set when they reach an HTTPS server
    /// on its own host, at an address its certificate need not name.
    pub tracking_insecure_tls: bool,
    /// Steps run at once on this host; 0 leaves every step to remote
    /// workers (`sextant worker`), except the control steps they hand back.
    pub concurrency: usize,
    /// The lease owner name of this host's worker.
    pub worker_id: String,
    /// How long a claim lasts without a heartbeat (renewed every third of it).
    pub lease: Duration,
    /// `MLFLOW_TRACKING_TOKEN` of the step processes when the server
    /// authenticates: its per-process internal token.
    pub tracking_token: Option<String>,
}

/// The orchestrator shared by its loop, the step tasks it spawns and the
/// remote workers' API.
pub struct Orchestrator {
    deps: Deps,
    /// Puts a `deploy:` step's model on a serving endpoint.
    deployer: Arc<dyn Deployer>,
    settings: Settings,
    executor: LocalExecutor,
    /// Serializes "derive the plan, queue the ready steps" per process.
    advancing: Mutex<()>,
    slots: Arc<Semaphore>,
}

/// Starts the orchestrator on the current runtime: resumes running runs,
/// then starts new runs and runs queued steps until the task is aborted.
/// Schedules and event triggers run on the same task. Returns the
/// orchestrator too, for the remote workers' API.
pub fn spawn(
    deps: Deps,
    deployer: Arc<dyn Deployer>,
    settings: Settings,
) -> (Arc<Orchestrator>, tokio::task::JoinHandle<()>) {
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    // Events are followed from the newest one when `spawn` is called, not when
    // the task first runs: an event appended in between (a busy runtime, or a
    // request answered right after start-up) would otherwise be skipped.
    // On a thread of its own: the PostgreSQL client blocks on a runtime of its
    // own, which it may not do on one of tokio's threads. A start-up cost of
    // one indexed read.
    let store = deps.store.clone();
    let since = std::thread::scope(|s| s.spawn(|| store.last_event_id().ok()).join())
        .ok()
        .flatten();
    let triggers = triggers::run(deps.clone(), since);
    let orch = Arc::new(Orchestrator {
        deps,
        deployer,
        executor: LocalExecutor::new(settings.concurrency.max(1), DEFAULT_GRACE),
        settings,
        advancing: Mutex::new(()),
        slots,
    });
    let looping = Arc::clone(&orch);
    let handle = tokio::spawn(async move {
        tokio::join!(looping.run(), triggers);
    });
    (orch, handle)
}

impl Orchestrator {
    async fn run(self: Arc<Self>) {
        match self.runs_with(PipelineRunStatus::Running).await {
            Ok(runs) => {
                for run in runs {
                    tracing::info!(run = %run.id, pipeline = %run.pipeline, "resuming pipeline run");
                    self.advance_logged(&run.id).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list running pipeline runs to resume"),
        }
        loop {
            match self.runs_with(PipelineRunStatus::Pending).await {
                Ok(runs) => {
                    for run in runs {
                        self.advance_logged(&run.id).await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot list pending pipeline runs"),
            }
            self.claim_due().await;
            let wake = self.deps.pipelines.clone();
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims due tasks while a slot is free and runs each on its own task.
    async fn claim_due(self: &Arc<Self>) {
        while let Ok(permit) = self.slots.clone().try_acquire_owned() {
            let worker = self.settings.worker_id.clone();
            let now = self.deps.clock.now_ms();
            let lease = self.settings.lease.as_millis() as i64;
            match self.db(move |s| s.claim_task(&worker, lease, now)).await {
                Ok(Some(claimed)) => {
                    let orch = Arc::clone(self);
                    tokio::spawn(async move {
                        let run = claimed.task.pipeline_run.clone();
                        orch.execute(claimed).await;
                        drop(permit);
                        orch.advance_logged(&run).await;
                        orch.deps.pipelines.notify_one();
                    });
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim a task");
                    return;
                }
            }
        }
    }

    async fn runs_with(
        &self,
        status: PipelineRunStatus,
    ) -> Result<Vec<PipelineRun>, PipelineError> {
        let mut all = Vec::new();
        loop {
            let q = PipelineRunSearch {
                pipeline: None,
                status: Some(status),
                max_results: RUN_BATCH,
                offset: all.len() as u64,
            };
            let page = self.db(move |s| s.list_pipeline_runs(&q)).await?;
            let more = page.next_offset.is_some();
            all.extend(page.items);
            if !more {
                return Ok(all);
            }
        }
    }

    async fn advance_logged(&self, run_id: &str) {
        if let Err(e) = self.advance(run_id).await {
            tracing::error!(run = %run_id, error = %e, "cannot advance pipeline run");
        }
    }

    /// Derives the run's plan, queues its ready steps, and ends the run when
    /// nothing is left to do or a step failed for good.
    async fn advance(&self, run_id: &str) -> Result<(), PipelineError> {
        let _guard = self.advancing.lock().await;
        let id = run_id.to_string();
        let run = self.db(move |s| s.get_pipeline_run(&id)).await?;
        if run.status.is_terminal() {
            return Ok(());
        }
        let v = self.spec_of(&run.pipeline).await?;
        let id = run.id.clone();
        let tasks = self.db(move |s| s.tasks_of_run(&id)).await?;
        let plan = plan::plan(&v, &tasks);
        let end = match plan.outcome {
            plan::Outcome::Open => None,
            plan::Outcome::Succeeded => Some((PipelineRunStatus::Succeeded, RunStatus::Finished)),
            plan::Outcome::Failed => Some((PipelineRunStatus::Failed, RunStatus::Failed)),
        };
        if let Some((status, tracking)) = end {
            let (id, parent) = (run.id.clone(), run.run_uuid.clone());
            let now = self.deps.clock.now_ms();
            self.db(move |s| {
                s.set_pipeline_run_status_at(&id, status, now)?;
                s.cancel_run_tasks_at(&id, now)?;
                if let Some(parent) = parent {
                    s.update_run(&parent, Some(tracking), Some(now), None)?;
                }
                Ok(())
            })
            .await?;
            tracing::info!(run = %run.id, status = status.as_str(), "pipeline run ended");
            return Ok(());
        }
        if run.status == PipelineRunStatus::Pending {
            let (id, now) = (run.id.clone(), self.deps.clock.now_ms());
            self.db(move |s| s.set_pipeline_run_status_at(&id, PipelineRunStatus::Running, now))
                .await?;
        }
        let ready: Vec<String> = plan
            .ready()
            .map(|i| v.pipeline.steps[i].name.value.clone())
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        let (id, now) = (run.id.clone(), self.deps.clock.now_ms());
        self.db(move |s| {
            for step in &ready {
                let payload = serde_json::json!({ "step": step }).to_string();
                s.enqueue_task_at(&id, step, &payload, None, now)?;
            }
            Ok(())
        })
        .await?;
        self.deps.pipelines.notify_one();
        self.deps.queued.notify_waiters();
        Ok(())
    }

    /// The stored spec of `pipeline`, validated (parsed once per stored
    /// version, on the blocking pool).
    async fn spec_of(
        &self,
        pipeline: &str,
    ) -> Result<Arc<sextant_pipelines::Validated>, PipelineError> {
        let name = pipeline.to_string();
        self.db(move |s| {
            let stored = s.get_pipeline(&name)?;
            Ok(cache::SPECS.load(&name, &stored.spec))
        })
        .await?
        .map_err(|e| PipelineError::Spec {
            pipeline: pipeline.to_string(),
            message: e.to_string(),
        })
    }

    /// Runs a store call on the blocking pool.
    async fn db<T, F>(&self, f: F) -> Result<T, PipelineError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn sextant_store::MetaStore) -> Result<T, sextant_store::StoreError>
            + Send
            + 'static,
    {
        self.deps.db(f).await
    }
}
