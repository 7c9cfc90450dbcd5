//! `sextant worker --server URL`: runs pipeline steps on this host for a
//! server, over its HTTP API only (see [`super::remote`] for the server side).
//!
//! A worker long-polls for work orders while it has a free slot, runs each
//! step exactly as the server's own executor would (same environment, same
//! output layout under its work directory, inputs fetched by digest through
//! the artifact API, outputs published by digest the same way), renews the
//! lease every third of it, and reports the outcome under the claim's
//! fencing token. Losing the lease (409 on a heartbeat) kills the step's
//! process group; a stale outcome is refused by the server and dropped here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use sextant_artifacts::SafePath;
use sextant_client::{Claim, Client, ClientError, Credentials, Heartbeat, Settings};
use sextant_pipelines::builtins::{METRICS_FILE, run_builtin};
use sextant_pipelines::executor::{Canceller, DEFAULT_GRACE, LocalExecutor, StepCommand};
use sextant_pipelines::spec::{Step, StepKind};
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use super::command::{self, read_metrics_file};
use super::context::{self, Context};
use super::files;
use super::outputs::{self, BlobError, Blobs};
use super::plan::StepResult;
use super::remote::{Outcome, WorkOrder};
use super::step::StepFailure;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The server's base URL, e.g. `http://127.0.0.1:5000`; also the step
    /// processes' `MLFLOW_TRACKING_URI`.
    pub server: String,
    /// The lease owner name recorded on the tasks this worker claims.
    pub id: String,
    /// Steps run at once.
    pub concurrency: usize,
    /// Outputs and logs go under `<work_dir>/pipeline-runs/<run>/…`.
    pub work_dir: PathBuf,
    /// The lease asked for with each claim and renewal.
    pub lease: Duration,
    /// CA certificates (PEM) to trust besides the system's; handed to the
    /// steps as `MLFLOW_TRACKING_SERVER_CERT_PATH`, which MLflow reads.
    pub ca_cert: Option<PathBuf>,
}

/// How long one claim waits on the server for a task.
const CLAIM_WAIT: Duration = Duration::from_secs(20);
/// Waits between attempts to reach a server that is down, doubling to the cap.
const RECONNECT: Duration = Duration::from_millis(250);
const RECONNECT_CAP: Duration = Duration::from_secs(5);

/// The worker's client of the server and its settings.
struct Worker {
    client: Client,
    settings: WorkerSettings,
    executor: LocalExecutor,
    blobs: HttpBlobs,
}

/// Runs the worker until the returned future is dropped; fails at once
/// when its client cannot be set up (an unreadable `ca_cert`).
pub async fn run(settings: WorkerSettings) -> Result<(), ClientError> {
    // No overall timeout: an upload of a large output takes what it takes;
    // a claim gets its own (its wait plus a margin).
    let client = Client::with_settings(
        &settings.server,
        Settings {
            user_agent: None,
            timeout: None,
            connect_timeout: Some(Duration::from_secs(10)),
            credentials: Credentials::from_env(),
            ca_cert: settings.ca_cert.clone(),
        },
    )?;
    let concurrency = settings.concurrency.max(1);
    let worker = Arc::new(Worker {
        blobs: HttpBlobs(client.clone()),
        client,
        executor: LocalExecutor::new(concurrency, DEFAULT_GRACE),
        settings,
    });
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut wait = RECONNECT;
    tracing::info!(server = %worker.settings.server, id = %worker.settings.id, concurrency, "worker started");
    loop {
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the slots are never closed");
        match worker.claim().await {
            Ok(Some(order)) => {
                wait = RECONNECT;
                let w = Arc::clone(&worker);
                tokio::spawn(async move {
                    w.work(order).await;
                    drop(permit);
                });
            }
            Ok(None) => wait = RECONNECT,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "cannot claim a task");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONNECT_CAP);
            }
        }
    }
}

impl Worker {
    fn lease_ms(&self) -> i64 {
        self.settings.lease.as_millis() as i64
    }

    /// One long-poll for a work order.
    async fn claim(&self) -> Result<Option<WorkOrder>, ClientError> {
        let claim = Claim {
            worker: self.settings.id.clone(),
            lease_ms: self.lease_ms(),
            wait_ms: CLAIM_WAIT.as_millis() as u64,
        };
        self.client.claim_task(&claim).await
    }

    /// Runs one work order and reports its outcome.
    async fn work(self: &Arc<Self>, order: WorkOrder) {
        let span = tracing::info_span!("step", run = %order.pipeline_run, step = %order.step, attempt = order.attempt);
        self.work_in_span(order).instrument(span).await
    }

    async fn work_in_span(self: &Arc<Self>, order: WorkOrder) {
        let (canceller, taken) = Canceller::new();
        let lost = Arc::new(AtomicBool::new(false));
        let beat = tokio::spawn(
            Arc::clone(self)
                .heartbeat(
                    order.task_id,
                    order.fencing,
                    canceller.clone(),
                    Arc::clone(&lost),
                )
                .in_current_span(),
        );
        let result = self.attempt(&order, taken).await;
        beat.abort();
        if lost.load(Ordering::SeqCst) {
            tracing::warn!("the task was taken from this worker; its outcome is dropped");
            return;
        }
        let outcome = match result {
            Ok(result) => Outcome::Succeeded {
                result: Box::new(result),
            },
            Err(f) => Outcome::Failed {
                message: f.message,
                permanent: f.permanent,
            },
        };
        self.report(&order, &outcome).await;
    }

    /// Sends the outcome, retrying while the server cannot be reached and
    /// the lease may still be ours.
    async fn report(&self, order: &WorkOrder, outcome: &Outcome) {
        let mut wait = RECONNECT;
        let mut left = self.settings.lease;
        loop {
            let sent = self
                .client
                .report_outcome(order.task_id, order.fencing, outcome)
                .await;
            match sent {
                Ok(()) => {
                    tracing::info!("reported the step's outcome");
                    return;
                }
                Err(e) if !e.is_transport() => {
                    let status = status_of(&e);
                    tracing::warn!(status = %status, answer = %e, "the server refused the step's outcome");
                    return;
                }
                Err(e) if left > wait => {
                    tracing::warn!(error = %e, "cannot report the step's outcome; retrying");
                    tokio::time::sleep(wait).await;
                    left -= wait;
                    wait = (wait * 2).min(RECONNECT_CAP);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot report the step's outcome; the lease will expire and the step run again");
                    return;
                }
            }
        }
    }

    /// Renews the lease every third of it until aborted; a 409 means the
    /// task is no longer ours: the step is stopped.
    async fn heartbeat(
        self: Arc<Self>,
        task_id: i64,
        fencing: i64,
        cancel: Canceller,
        lost: Arc<AtomicBool>,
    ) {
        let beat = Heartbeat {
            fencing,
            lease_ms: self.lease_ms(),
        };
        let mut tick = tokio::time::interval(self.settings.lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.client.heartbeat(task_id, &beat).await {
                Ok(()) => {}
                Err(e) if e.status() == Some(StatusCode::CONFLICT.as_u16()) => {
                    tracing::warn!(answer = %e, "lost the task's lease; stopping the step");
                    lost.store(true, Ordering::SeqCst);
                    cancel.cancel();
                    return;
                }
                Err(e) if e.is_transport() => {
                    tracing::warn!(error = %e, "cannot renew the task's lease")
                }
                Err(e) => tracing::warn!(status = %status_of(&e), "heartbeat refused"),
            }
        }
    }

    /// One attempt of the step, on this host.
    async fn attempt(
        &self,
        order: &WorkOrder,
        taken: watch::Receiver<bool>,
    ) -> Result<StepResult, StepFailure> {
        let v = super::cache::SPECS
            .load(&order.pipeline, &order.spec)
            .map_err(|e| StepFailure::permanent(format!("the pipeline does not validate: {e}")))?;
        let step = v.pipeline.step(&order.step).cloned().ok_or_else(|| {
            StepFailure::permanent(format!(
                "pipeline '{}' has no step '{}'",
                order.pipeline, order.step
            ))
        })?;
        let ctx = Context {
            run_id: order.pipeline_run.clone(),
            pipeline: order.pipeline.clone(),
            no_cache: false,
            started_by: None,
            params: order.params.clone(),
            metrics: order.metrics.clone(),
            outputs: order.outputs.clone(),
            run_dir: self
                .settings
                .work_dir
                .join("pipeline-runs")
                .join(&order.pipeline_run),
            step: order.step.clone(),
        };
        command::stop_leftovers(&ctx, &step).await;
        let out = files::clear_outputs(&ctx, &step)?;
        files::fetch_inputs(&self.blobs, &ctx, &step).await?;
        let mut result = match &step.kind {
            StepKind::Run { command } => {
                let command = ctx.resolve_command(command)?;
                self.command(order, &ctx, &step, command, &out, taken)
                    .await?
            }
            StepKind::Uses { builtin, with } if step.tune.is_none() => {
                let args = context::builtin_args(&ctx, with)?;
                let name = format!("builtin/{}", builtin.value.as_str());
                let dir = out.clone();
                let metrics = tokio::task::spawn_blocking(move || run_builtin(&name, &args, &dir))
                    .await
                    .map_err(|e| StepFailure::retryable(format!("built-in step panicked: {e}")))?
                    .map_err(|e| StepFailure::retryable(e.to_string()))?;
                StepResult {
                    metrics,
                    ..StepResult::default()
                }
            }
            _ => {
                return Err(StepFailure::permanent(format!(
                    "step '{}' is not a work step; the server runs it",
                    order.step
                )));
            }
        };
        read_metrics_file(&out.join(METRICS_FILE), &mut result).await?;
        files::publish_outputs(&self.blobs, &ctx, &step, &mut result).await?;
        result.cache = order.cache.clone();
        Ok(result)
    }

    /// Runs a `run:` step's command; its logs are uploaded to the attempt's
    /// tracking run when it ends.
    async fn command(
        &self,
        order: &WorkOrder,
        ctx: &Context,
        step: &Step,
        command: StepCommand,
        out: &Path,
        mut taken: watch::Receiver<bool>,
    ) -> Result<StepResult, StepFailure> {
        let mut env = command::command_env(
            &self.settings.server,
            None,
            false,
            &order.step_run_id,
            ctx,
            step,
            out,
        )?;
        if let Some(ca) = &self.settings.ca_cert {
            env.insert(
                "MLFLOW_TRACKING_SERVER_CERT_PATH".into(),
                ca.display().to_string(),
            );
        }
        let logs =
            super::logs::attempt_dir(&ctx.run_dir, &order.step, order.task_id, order.attempt);
        let handle = command::start_command(&self.executor, &logs, env, command, step)?;
        let own = handle.canceller();
        let outcome = tokio::select! {
            outcome = handle.wait() => outcome,
            Ok(_) = taken.wait_for(|&t| t) => {
                own.cancel();
                return Err(StepFailure::retryable("the task was taken from this worker"));
            }
        };
        files::upload_logs(&self.blobs, &order.step_run_artifact_uri, &logs).await;
        let outcome = outcome.map_err(|e| command::exec_failure(step, e))?;
        command::command_outcome(step, &outcome, &logs)
    }
}

/// The HTTP status of a refusal as the server sent it ("409 Conflict"),
/// or what went wrong when there was no status to give.
fn status_of(e: &ClientError) -> String {
    match e.status().and_then(|s| StatusCode::from_u16(s).ok()) {
        Some(status) => status.to_string(),
        None => e.to_string(),
    }
}

/// The server's artifact store through its MLflow artifact API.
struct HttpBlobs(Client);

impl Blobs for HttpBlobs {
    async fn read(&self, path: &SafePath) -> Result<Option<Vec<u8>>, BlobError> {
        let body = self
            .0
            .artifact_bytes(&path.to_string())
            .await
            .map_err(|source| BlobError::Fetch {
                path: path.clone(),
                source: Box::new(source),
            })?;
        Ok(body.map(|b| b.to_vec()))
    }

    async fn get_file(&self, path: &SafePath, target: &Path) -> Result<(u64, String), BlobError> {
        let stream = self
            .0
            .artifact_stream(&path.to_string())
            .await
            .map_err(|source| BlobError::Fetch {
                path: path.clone(),
                source: Box::new(source),
            })?
            .ok_or_else(|| BlobError::Absent { path: path.clone() })?;
        outputs::write_stream(stream, target).await
    }

    async fn put_file(&self, dest: &SafePath, file: &Path) -> Result<(), BlobError> {
        let body = outputs::file_stream(file).await?;
        self.0
            .put_artifact_stream(&dest.to_string(), body)
            .await
            .map_err(|e| BlobError::storing(dest, e))
    }

    async fn put_bytes(&self, dest: &SafePath, data: Vec<u8>) -> Result<(), BlobError> {
        self.0
            .put_artifact(&dest.to_string(), Bytes::from(data))
            .await
            .map_err(|e| BlobError::storing(dest, e))
    }
}
