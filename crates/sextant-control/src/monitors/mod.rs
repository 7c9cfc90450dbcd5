//! Monitors: scheduled or on-demand checks of a window of an endpoint's
//! captured traffic (or of a data set) against a baseline — SageMaker's data
//! quality checks, per-feature drift, and model quality once ground truth is
//! uploaded. A run stores its files (`statistics.json`,
//! `constraint_violations.json`, `drift.json`, `model_quality.json`,
//! `report.html`, and the window's rows as `window.csv`) in the artifact store
//! under `monitoring/<monitor>/<run>/`, and ends with `monitor.run_completed`
//! plus `monitor.violation` when something broke — which pipelines' `on:`
//! triggers follow to retrain.
//!
//! The controller takes its dependencies as a plain value ([`MonitorDeps`])
//! and reads time from its clock; the checks themselves are
//! `sextant_monitor::engine`'s, without IO.
//!
//! Schedules are cron (UTC, no catch-up): the last time a monitor's schedule
//! fired is its newest scheduled run. A run left `InProgress` by a server that
//! stopped is marked `Failed` when the next one starts.

mod baseline;
mod capture;
pub mod config;
mod error;
pub mod ground_truth;
mod run;
mod schedule;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_artifacts::data_roots::DataRoots;
use sextant_core::clock::SharedClock;
use sextant_core::monitors::{MonitorEvent, MonitorRun, MonitorRunStatus, StoredMonitor};
use sextant_store::{CallError, MetaStore, StoreError};

use self::config::MonitorSpec;
pub use self::error::MonitorError;
pub use self::schedule::spawn;

/// Where monitor runs write their files, relative to the artifact root.
pub const REPORTS_PREFIX: &str = "monitoring";
/// A run without an end that started longer ago than this is taken as died with
/// its server and marked Failed when the monitor next runs.
const STALE_AFTER: Duration = Duration::from_secs(3600);
/// Runs kept in a monitor's listing by default.
pub const DEFAULT_RUNS: u64 = 100;

/// Writes out the capture records an endpoint has buffered, so that a window
/// ending now sees them. Implemented by whoever hosts the endpoints.
pub trait FlushCapture: Send + Sync {
    /// Flushes every endpoint's capture sink.
    fn flush(&self) -> BoxFuture<'_, ()>;
}

/// Nothing to flush: no endpoints are hosted here.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCapture;

impl FlushCapture for NoCapture {
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// What the monitor controller works with.
#[derive(Clone)]
pub struct MonitorDeps {
    pub store: Arc<dyn MetaStore>,
    pub artifacts: Arc<ArtifactStore>,
    /// Where served models are copied to read their `baseline/` (a temporary
    /// directory when there is none).
    pub data_dir: Option<PathBuf>,
    /// Where a monitor's `data:` and `baseline:` may lie.
    pub data_roots: Arc<DataRoots>,
    /// Windows, run times and schedules read time from it.
    pub clock: SharedClock,
    /// Flushed before a window of an endpoint's capture is read.
    pub capture: Arc<dyn FlushCapture>,
    /// Woken after a monitor or a run changed (events were appended), and
    /// waited on by the schedule loop.
    pub changes: Arc<tokio::sync::Notify>,
}

/// The monitors this server runs.
pub struct Monitors {
    deps: MonitorDeps,
    /// Monitors with a run in progress in this process: one at a time each.
    running: std::sync::Mutex<HashSet<String>>,
}

/// What to check when a run is asked for.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The window's end (ms; default now) …
    pub window_end: Option<i64>,
    /// … and start (default end minus the monitor's `window`), or its length.
    pub window_start: Option<i64>,
    pub window: Option<Duration>,
    /// `manual` or `schedule`.
    pub trigger: String,
}

fn event(kind: &str, payload: Value) -> MonitorEvent {
    MonitorEvent {
        kind: kind.into(),
        payload: payload.to_string(),
    }
}

/// Reads a stored monitor's definition.
pub fn parse_stored(m: &StoredMonitor) -> Result<MonitorSpec, MonitorError> {
    serde_json::from_str(&m.spec)
        .map_err(|e| MonitorError::Corrupt(format!("stored monitor '{}': {e}", m.name)))
}

/// Clears a monitor's name from the running set when the run ends, however it ends.
struct RunningGuard<'a> {
    monitors: &'a Monitors,
    name: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.monitors
            .running
            .lock()
            .expect("running set")
            .remove(&self.name);
    }
}

impl Monitors {
    /// The controller over these dependencies.
    pub fn new(deps: MonitorDeps) -> Monitors {
        Monitors {
            deps,
            running: std::sync::Mutex::new(HashSet::new()),
        }
    }

    /// Its dependencies.
    pub fn deps(&self) -> &MonitorDeps {
        &self.deps
    }

    async fn db<T, F>(&self, f: F) -> Result<T, MonitorError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn MetaStore) -> Result<T, StoreError> + Send + 'static,
    {
        Ok(sextant_store::call(&self.deps.store, f).await?)
    }

    /// Creates or replaces a monitor; `true` when it is new.
    pub async fn apply(
        &self,
        name: &str,
        spec: MonitorSpec,
    ) -> Result<(bool, StoredMonitor), MonitorError> {
        if let Some(n) = &spec.name
            && n != name
        {
            return Err(MonitorError::Invalid(format!(
                "the definition names monitor '{n}' but the request is for '{name}'"
            )));
        }
        let mut spec = spec;
        spec.name = Some(name.to_string());
        let refuse = |why: String| MonitorError::Invalid(format!("monitor '{name}': {why}"));
        if let Some(e) = spec.endpoint.clone() {
            let stored = match self.db(move |s| s.get_endpoint(&e)).await {
                Ok(stored) => stored,
                Err(MonitorError::Store(CallError::Store(StoreError::Domain(d)))) => {
                    return Err(refuse(d.to_string()));
                }
                Err(e) => return Err(e),
            };
            let (espec, _) = baseline::parse_endpoint(&stored)?;
            if espec
                .capture
                .as_ref()
                .is_none_or(|c| c.sampling_percent <= 0.0)
            {
                return Err(refuse(format!(
                    "endpoint '{}' does not capture its traffic, so the monitor would have no rows: add `capture: {{sampling_percent: 100}}` to the endpoint's definition",
                    stored.name
                )));
            }
        }
        // Refused now rather than failing every run: the data must be where
        // the server may read, and the baseline must be there.
        if let Some(data) = &spec.data {
            self.host_path("monitor data", data)
                .map_err(|e| refuse(e.to_string()))?;
        }
        if let Err(e) = self.load_baseline(&spec).await {
            return Err(match &spec.endpoint {
                Some(endpoint) if spec.baseline.is_none() => refuse(format!(
                    "no baseline given, and the model endpoint '{endpoint}' serves has none: {e}"
                )),
                _ => refuse(e.to_string()),
            });
        }
        let n = name.to_string();
        let existed = self.db(move |s| s.get_monitor(&n)).await.is_ok();
        let text = serde_json::to_string(&spec).expect("a monitor spec serializes");
        let kind = if existed {
            "monitor.updated"
        } else {
            "monitor.created"
        };
        let ev = event(
            kind,
            json!({"monitor": name, "endpoint": spec.endpoint, "data": spec.data, "schedule": spec.schedule}),
        );
        let (n, now) = (name.to_string(), self.deps.clock.now_ms());
        let stored = self
            .db(move |s| s.put_monitor_at(&n, &text, Some(&ev), now))
            .await?;
        self.deps.changes.notify_waiters();
        Ok((!existed, stored))
    }

    /// Starts a run of `name` and waits for its end.
    pub async fn run(&self, name: &str, req: RunRequest) -> Result<MonitorRun, MonitorError> {
        let n = name.to_string();
        let stored = self.db(move |s| s.get_monitor(&n)).await?;
        let spec = parse_stored(&stored)?;
        if !self
            .running
            .lock()
            .expect("running set")
            .insert(name.to_string())
        {
            return Err(MonitorError::Busy(name.to_string()));
        }
        let _guard = RunningGuard {
            monitors: self,
            name: name.to_string(),
        };
        let now = self.deps.clock.now_ms();
        let end = req.window_end.unwrap_or(now);
        let length = req.window.unwrap_or(spec.window);
        let start = req
            .window_start
            .unwrap_or(end - i64::try_from(length.as_millis()).unwrap_or(i64::MAX / 2));
        if start >= end {
            return Err(MonitorError::Invalid(format!(
                "the window must start before it ends (start {start}, end {end})"
            )));
        }
        self.fail_stale(name, now).await?;
        let run = MonitorRun {
            id: uuid::Uuid::new_v4().simple().to_string(),
            monitor: name.to_string(),
            status: MonitorRunStatus::Running,
            trigger: if req.trigger.is_empty() {
                "manual".into()
            } else {
                req.trigger.clone()
            },
            window_start: start,
            window_end: end,
            started_time: now,
            ended_time: None,
            summary: "{}".into(),
            error: None,
        };
        let r = run.clone();
        self.db(move |s| s.start_monitor_run(&r)).await?;
        let (status, summary, error, events) = match self.execute(&spec, &run).await {
            Ok(done) => (done.status, done.summary, None, done.events),
            Err(e) => {
                let message = e.to_string();
                let ev = event(
                    "monitor.run_failed",
                    json!({"monitor": name, "run": run.id, "error": message}),
                );
                (MonitorRunStatus::Failed, json!({}), Some(message), vec![ev])
            }
        };
        let (id, now) = (run.id.clone(), self.deps.clock.now_ms());
        let text = summary.to_string();
        let finished = self
            .db(move |s| {
                s.finish_monitor_run_at(&id, status, &text, error.as_deref(), &events, now)
            })
            .await?;
        self.deps.changes.notify_waiters();
        Ok(finished)
    }

    /// Marks Failed the runs of `name` that never ended and started long ago:
    /// they died with their server (a younger one may be another server's, on
    /// the same PostgreSQL).
    async fn fail_stale(&self, name: &str, now: i64) -> Result<(), MonitorError> {
        let n = name.to_string();
        let stale_before = now - i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
        for stale in self
            .db(move |s| s.list_monitor_runs(&n, 10))
            .await?
            .into_iter()
            .filter(|r| r.status == MonitorRunStatus::Running && r.started_time < stale_before)
        {
            let _ = self
                .db(move |s| {
                    s.finish_monitor_run_at(
                        &stale.id,
                        MonitorRunStatus::Failed,
                        "{}",
                        Some("the server stopped during the run"),
                        &[],
                        now,
                    )
                })
                .await;
        }
        Ok(())
    }

    /// The latest run of each monitor named, as the API lists them.
    pub async fn latest_runs(&self, names: Vec<String>) -> Vec<Option<MonitorRun>> {
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(
                self.db(move |s| s.list_monitor_runs(&n, 1))
                    .await
                    .ok()
                    .and_then(|r| r.into_iter().next()),
            );
        }
        out
    }
}
