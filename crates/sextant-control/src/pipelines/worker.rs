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
use futures::StreamExt;
use serde_json::json;
use sextant_artifacts::SafePath;
use sextant_pipelines::builtins::{METRICS_FILE, run_builtin};
use sextant_pipelines::executor::{Canceller, DEFAULT_GRACE, LocalExecutor, StepCommand};
use sextant_pipelines::spec::{Step, StepKind};
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use super::command::{self, read_metrics_file};
use super::context::{self, Context};
use super::files;
use super::outputs::{self, Blobs};
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
}

/// How long one claim waits on the server for a task.
const CLAIM_WAIT: Duration = Duration::from_secs(20);
/// Waits between attempts to reach a server that is down, doubling to the cap.
const RECONNECT: Duration = Duration::from_millis(250);
const RECONNECT_CAP: Duration = Duration::from_secs(5);

/// The worker's HTTP client and its settings.
struct Worker {
    http: reqwest::Client,
    settings: WorkerSettings,
    executor: LocalExecutor,
    blobs: HttpBlobs,
}

/// Runs the worker until the returned future is dropped.
pub async fn run(settings: WorkerSettings) {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("the HTTP client builds");
    let concurrency = settings.concurrency.max(1);
    let worker = Arc::new(Worker {
        blobs: HttpBlobs {
            http: http.clone(),
            base: settings.server.trim_end_matches('/').to_string(),
        },
        http,
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
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.blobs.base)
    }

    fn lease_ms(&self) -> i64 {
        self.settings.lease.as_millis() as i64
    }

    /// One long-poll for a work order.
    async fn claim(&self) -> Result<Option<WorkOrder>, String> {
        let body = json!({
            "worker": self.settings.id,
            "lease_ms": self.lease_ms(),
            "wait_ms": CLAIM_WAIT.as_millis() as u64,
        });
        let resp = self
            .http
            .post(self.url("/api/v1/tasks/claim"))
            .timeout(CLAIM_WAIT + Duration::from_secs(30))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {text}"));
        }
        #[derive(serde::Deserialize)]
        struct Claimed {
            task: Option<WorkOrder>,
        }
        serde_json::from_str::<Claimed>(&text)
            .map(|c| c.task)
            .map_err(|e| format!("unreadable claim answer: {e}"))
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
            Ok(result) => Outcome::Succeeded { result },
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
        let body = json!({ "fencing": order.fencing, "outcome": outcome });
        let url = self.url(&format!("/api/v1/tasks/{}/outcome", order.task_id));
        let mut wait = RECONNECT;
        let mut left = self.settings.lease;
        loop {
            match self.http.post(&url).json(&body).send().await {
                Ok(resp) if resp.status().is_success() => {
                    tracing::info!("reported the step's outcome");
                    return;
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    tracing::warn!(%status, answer = %text, "the server refused the step's outcome");
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
        let url = self.url(&format!("/api/v1/tasks/{task_id}/heartbeat"));
        let body = json!({ "fencing": fencing, "lease_ms": self.lease_ms() });
        let mut tick = tokio::time::interval(self.settings.lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.http.post(&url).json(&body).send().await {
                Ok(resp) if resp.status() == reqwest::StatusCode::CONFLICT => {
                    let text = resp.text().await.unwrap_or_default();
                    tracing::warn!(answer = %text, "lost the task's lease; stopping the step");
                    lost.store(true, Ordering::SeqCst);
                    cancel.cancel();
                    return;
                }
                Ok(resp) if !resp.status().is_success() => {
                    tracing::warn!(status = %resp.status(), "heartbeat refused");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot renew the task's lease"),
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
        let env = command::command_env(&self.settings.server, &order.step_run_id, ctx, step, out)?;
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

/// The server's artifact store through its MLflow artifact API.
struct HttpBlobs {
    http: reqwest::Client,
    base: String,
}

impl HttpBlobs {
    fn url(&self, path: &SafePath) -> String {
        let mut url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base);
        for segment in path.segments() {
            url.push('/');
            url.push_str(&encode(segment));
        }
        url
    }
}

/// A path segment percent-encoded (everything but RFC 3986's unreserved).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn refused(what: &str, resp: reqwest::Response) -> String {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    format!("{what}: {status}: {text}")
}

impl Blobs for HttpBlobs {
    async fn read(&self, path: &SafePath) -> Result<Option<Vec<u8>>, String> {
        let resp = self
            .http
            .get(self.url(path))
            .send()
            .await
            .map_err(|e| format!("reading {path}: {e}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(refused(&format!("reading {path}"), resp).await);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading {path}: {e}"))?;
        Ok(Some(body.to_vec()))
    }

    async fn get_file(&self, path: &SafePath, target: &Path) -> Result<(u64, String), String> {
        let resp = self
            .http
            .get(self.url(path))
            .send()
            .await
            .map_err(|e| format!("reading {path}: {e}"))?;
        if !resp.status().is_success() {
            return Err(refused(&format!("reading {path}"), resp).await);
        }
        outputs::write_stream(resp.bytes_stream().boxed(), target).await
    }

    async fn put_file(&self, dest: &SafePath, file: &Path) -> Result<(), String> {
        let body = outputs::file_stream(file).await?;
        let resp = self
            .http
            .put(self.url(dest))
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|e| format!("storing {dest}: {e}"))?;
        if !resp.status().is_success() {
            return Err(refused(&format!("storing {dest}"), resp).await);
        }
        Ok(())
    }

    async fn put_bytes(&self, dest: &SafePath, data: Vec<u8>) -> Result<(), String> {
        let resp = self
            .http
            .put(self.url(dest))
            .body(Bytes::from(data))
            .send()
            .await
            .map_err(|e| format!("storing {dest}: {e}"))?;
        if !resp.status().is_success() {
            return Err(refused(&format!("storing {dest}"), resp).await);
        }
        Ok(())
    }
}
