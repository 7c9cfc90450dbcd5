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
//! Schedules are cron (UTC, no catch-up): the last time a monitor's schedule
//! fired is its newest scheduled run. A run left `InProgress` by a server that
//! stopped is marked `Failed` when the next one starts.

pub mod config;
pub mod engine;
pub mod ground_truth;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};
use sextant_artifacts::{ArtifactStore, SafePath};
use sextant_core::monitors::{MonitorEvent, MonitorRun, MonitorRunStatus, StoredMonitor};

use self::config::MonitorSpec;
use self::engine::{Baseline, Input};
use crate::endpoints::config::{EndpointSpec, Runtime};
use crate::endpoints::{EndpointState, resolve};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use sextant_core::clock::now_ms;

/// Where monitor runs write their files, relative to the artifact root.
/// A run without an end that started longer ago than this is taken as died with
/// its server and marked Failed when the monitor next runs.
const STALE_AFTER: Duration = Duration::from_secs(3600);

pub const REPORTS_PREFIX: &str = "monitoring";
/// How often schedules are looked at when nothing woke the loop.
const POLL: Duration = Duration::from_secs(1);
/// Runs kept in a monitor's listing by default.
pub const DEFAULT_RUNS: u64 = 100;

/// The monitors this server runs.
#[derive(Default)]
pub struct Monitors {
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
pub fn parse_stored(m: &StoredMonitor) -> Result<MonitorSpec, ApiError> {
    serde_json::from_str(&m.spec)
        .map_err(|e| ApiError::internal(format!("stored monitor '{}': {e}", m.name)))
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
    /// Creates or replaces a monitor; `true` when it is new.
    pub async fn apply(
        &self,
        st: &AppState,
        name: &str,
        spec: MonitorSpec,
    ) -> Result<(bool, StoredMonitor), ApiError> {
        if let Some(n) = &spec.name
            && n != name
        {
            return Err(ApiError::invalid(format!(
                "the definition names monitor '{n}' but the request is for '{name}'"
            )));
        }
        let mut spec = spec;
        spec.name = Some(name.to_string());
        let refuse = |why: String| ApiError::invalid(format!("monitor '{name}': {why}"));
        if let Some(e) = spec.endpoint.clone() {
            let stored = st
                .db(move |s| s.get_endpoint(&e))
                .await
                .map_err(|e| refuse(e.message))?;
            let espec: EndpointSpec = serde_json::from_str(&stored.spec).map_err(|e| {
                ApiError::internal(format!("stored endpoint '{}': {e}", stored.name))
            })?;
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
            host_path(st, "monitor data", data).map_err(|e| refuse(e.to_string()))?;
        }
        load_baseline(st, &spec)
            .await
            .map_err(|e| match &spec.endpoint {
                Some(endpoint) if spec.baseline.is_none() => refuse(format!(
                    "no baseline given, and the model endpoint '{endpoint}' serves has none: {e}"
                )),
                _ => refuse(e),
            })?;
        let n = name.to_string();
        let existed = st.db(move |s| s.get_monitor(&n)).await.is_ok();
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
        let n = name.to_string();
        let stored = st.db(move |s| s.put_monitor(&n, &text, Some(&ev))).await?;
        st.changes.notify_waiters();
        Ok((!existed, stored))
    }

    /// Starts a run of `name` and waits for its end.
    pub async fn run(
        &self,
        st: &AppState,
        name: &str,
        req: RunRequest,
    ) -> Result<MonitorRun, ApiError> {
        let n = name.to_string();
        let stored = st.db(move |s| s.get_monitor(&n)).await?;
        let spec = parse_stored(&stored)?;
        if !self
            .running
            .lock()
            .expect("running set")
            .insert(name.to_string())
        {
            return Err(ApiError::new(
                ErrorCode::ResourceConflict,
                format!("monitor '{name}' has a run in progress"),
            ));
        }
        let _guard = RunningGuard {
            monitors: self,
            name: name.to_string(),
        };
        let end = req.window_end.unwrap_or_else(now_ms);
        let length = req.window.unwrap_or(spec.window);
        let start = req
            .window_start
            .unwrap_or(end - i64::try_from(length.as_millis()).unwrap_or(i64::MAX / 2));
        if start >= end {
            return Err(ApiError::invalid(format!(
                "the window must start before it ends (start {start}, end {end})"
            )));
        }
        // A run that never ended and started long ago died with its server (a younger
        // one may be another server's, on the same PostgreSQL).
        let n = name.to_string();
        let stale_before = now_ms() - i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
        for stale in st
            .db(move |s| s.list_monitor_runs(&n, 10))
            .await?
            .into_iter()
            .filter(|r| r.status == MonitorRunStatus::Running && r.started_time < stale_before)
        {
            let _ = st
                .db(move |s| {
                    s.finish_monitor_run(
                        &stale.id,
                        MonitorRunStatus::Failed,
                        "{}",
                        Some("the server stopped during the run"),
                        &[],
                    )
                })
                .await;
        }
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
            started_time: now_ms(),
            ended_time: None,
            summary: "{}".into(),
            error: None,
        };
        let r = run.clone();
        st.db(move |s| s.start_monitor_run(&r)).await?;
        let (status, summary, error, events) = match execute(st, &spec, &run).await {
            Ok(done) => (done.status, done.summary, None, done.events),
            Err(message) => {
                let ev = event(
                    "monitor.run_failed",
                    json!({"monitor": name, "run": run.id, "error": message}),
                );
                (MonitorRunStatus::Failed, json!({}), Some(message), vec![ev])
            }
        };
        let id = run.id.clone();
        let text = summary.to_string();
        let finished = st
            .db(move |s| s.finish_monitor_run(&id, status, &text, error.as_deref(), &events))
            .await?;
        st.changes.notify_waiters();
        Ok(finished)
    }
}

/// What a finished check produced.
struct Executed {
    status: MonitorRunStatus,
    summary: Value,
    events: Vec<MonitorEvent>,
}

/// Runs one check: baseline, window, engine, files, events.
async fn execute(st: &AppState, spec: &MonitorSpec, run: &MonitorRun) -> Result<Executed, String> {
    let name = run.monitor.as_str();
    let baseline = load_baseline(st, spec).await?;
    let input = match (&spec.endpoint, &spec.data) {
        (Some(endpoint), _) => {
            st.endpoints.flush_capture().await;
            let lines = capture_lines(st, endpoint, spec, run.window_start, run.window_end).await?;
            let labels = if spec.model_quality.is_some() {
                ground_truth::labels(&st.artifacts, endpoint, run.window_start, now_ms()).await?
            } else {
                Default::default()
            };
            Input::Capture { lines, labels }
        }
        (None, Some(path)) => {
            Input::File(host_path(st, "monitor data", path).map_err(|e| e.to_string())?)
        }
        (None, None) => return Err("the monitor watches nothing".into()),
    };
    let spec2 = spec.clone();
    let out = tokio::task::spawn_blocking(move || engine::evaluate(&spec2, &baseline, input))
        .await
        .map_err(|e| format!("the check panicked: {e}"))??;
    if out.rows < spec.min_rows {
        return Err(format!(
            "the window holds {} rows, fewer than min_rows {}: nothing to judge (is capture on, and traffic flowing?)",
            out.rows, spec.min_rows
        ));
    }
    let dir = format!("{REPORTS_PREFIX}/{name}/{}", run.id);
    let mut files = serde_json::Map::new();
    for (file, bytes) in out.files {
        let path = SafePath::parse(&format!("{dir}/{file}")).map_err(|e| e.to_string())?;
        let body = futures::stream::once(async move {
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(bytes))
        });
        st.artifacts
            .put(&path, body)
            .await
            .map_err(|e| format!("writing {path}: {e}"))?;
        files.insert(file.to_string(), json!(path.to_string()));
    }
    let window_file = files
        .get("window.csv")
        .and_then(Value::as_str)
        .map(String::from);
    let (window_uri, window_path) = match &window_file {
        Some(p) => locate(&st.artifacts, p),
        None => (None, None),
    };
    let violated = !out.violations.is_empty();
    let summary = json!({
        "rows": out.rows,
        "baseline": out.baseline_source,
        "violations": out.violations,
        "drift": out.drift,
        "model_quality": out.quality,
        "files": files,
        "window_uri": window_uri,
        "window_path": window_path,
    });
    let mut payload = json!({
        "monitor": name,
        "run": run.id,
        "endpoint": spec.endpoint,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "rows": out.rows,
        "violations": out.violations.len(),
        "report": files.get("report.html"),
        "window_uri": window_uri,
        "window_path": window_path,
    });
    if let Some(drifted) = out.drift.get("drifted_features") {
        payload["drifted_features"] = drifted.clone();
    }
    let mut events = vec![event("monitor.run_completed", payload.clone())];
    let status = if violated {
        let checks: BTreeSet<&str> = out
            .violations
            .iter()
            .filter_map(|v| v.get("constraint_check_type").and_then(Value::as_str))
            .collect();
        payload["checks"] = json!(checks);
        events.push(event("monitor.violation", payload));
        MonitorRunStatus::CompletedWithViolations
    } else {
        MonitorRunStatus::Completed
    };
    Ok(Executed {
        status,
        summary,
        events,
    })
}

/// A stored artifact's URI, and its path on this host when the store is a local directory.
fn locate(store: &ArtifactStore, path: &str) -> (Option<String>, Option<String>) {
    let root = store.root().trim_end_matches('/');
    let local = root
        .strip_prefix("file://")
        .or_else(|| (!root.contains("://")).then_some(root));
    match local {
        Some(dir) => {
            let abs = std::path::Path::new(dir).join(path);
            let abs = std::path::absolute(&abs).unwrap_or(abs);
            (
                Some(format!("file://{}", abs.display())),
                Some(abs.display().to_string()),
            )
        }
        None => (Some(format!("{root}/{path}")), None),
    }
}

/// The monitor's baseline files: `spec.baseline` (a directory holding
/// `statistics.json` and `constraints.json`, or a `models:/` URI whose model directory
/// carries `baseline/`), else the `baseline/` of the model that the endpoint's first
/// variant serves.
async fn load_baseline(st: &AppState, spec: &MonitorSpec) -> Result<Baseline, String> {
    let (deployed, source) = match (&spec.baseline, &spec.endpoint) {
        (Some(b), _) if !b.starts_with("models:/") => {
            let dir = host_path(st, "monitor baseline", b).map_err(|e| e.to_string())?;
            return Baseline::read(&dir, b);
        }
        (Some(b), _) => {
            let (store, u, roots) = (st.store.clone(), b.clone(), st.data_roots.clone());
            let deployed = tokio::task::spawn_blocking(move || {
                resolve::resolve(store.as_ref(), &u, Runtime::Onnx, &roots)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            (deployed, b.clone())
        }
        (None, Some(endpoint)) => {
            let deployed = served_model(st, endpoint).await?;
            let source = deployed.resolved.clone();
            (deployed, source)
        }
        (None, None) => return Err("the monitor has no baseline".into()),
    };
    let data_dir = st
        .data_dir
        .as_deref()
        .cloned()
        .unwrap_or_else(std::env::temp_dir);
    let dir = resolve::materialize(&st.store, &st.artifacts, &data_dir, &deployed)
        .await
        .map_err(|e| e.to_string())?
        .join("baseline");
    Baseline::read(&dir, &source)
}

/// The model the first variant of `endpoint` serves, or, while none is
/// deployed yet, the one its definition names.
async fn served_model(
    st: &AppState,
    endpoint: &str,
) -> Result<crate::endpoints::rollout::Deployed, String> {
    let e = endpoint.to_string();
    let stored = st
        .db(move |s| s.get_endpoint(&e))
        .await
        .map_err(|e| e.message)?;
    let espec: EndpointSpec = serde_json::from_str(&stored.spec).map_err(|e| e.to_string())?;
    let state: EndpointState = serde_json::from_str(&stored.state).map_err(|e| e.to_string())?;
    let Some(first) = espec.variants.first() else {
        return Err(format!("endpoint '{endpoint}' has no variant"));
    };
    if let Some(d) = state.deployed.get(&first.name) {
        return Ok(d.clone());
    }
    let (store, uri, runtime, roots) = (
        st.store.clone(),
        first.model.clone(),
        first.runtime,
        st.data_roots.clone(),
    );
    tokio::task::spawn_blocking(move || resolve::resolve(store.as_ref(), &uri, runtime, &roots))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("endpoint '{endpoint}' serves no model yet: {e}"))
}

/// A monitor's `data:` or `baseline:` directory on this host, confined to the
/// server's data roots.
fn host_path(
    st: &AppState,
    what: &str,
    text: &str,
) -> Result<std::path::PathBuf, crate::data_roots::OutsideRoots> {
    let path = std::path::Path::new(text.strip_prefix("file://").unwrap_or(text));
    st.data_roots.check(what, path)
}

/// The capture lines of `endpoint` whose inference time falls in `[start, end)`.
async fn capture_lines(
    st: &AppState,
    endpoint: &str,
    spec: &MonitorSpec,
    start: i64,
    end: i64,
) -> Result<Vec<String>, String> {
    let prefix = crate::endpoints::capture_prefix();
    let prefix = prefix.to_string_lossy();
    let root = SafePath::parse(&format!("{prefix}/{endpoint}")).map_err(|e| e.to_string())?;
    let mut variants: Vec<String> = st
        .artifacts
        .list(&root)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|e| e.is_dir)
        .map(|e| e.name)
        .collect();
    if spec.variants.is_empty() {
        let e = endpoint.to_string();
        if let Ok(stored) = st.db(move |s| s.get_endpoint(&e)).await
            && let Ok(espec) = serde_json::from_str::<EndpointSpec>(&stored.spec)
            && let Some(shadow) = espec.shadow
        {
            variants.retain(|v| *v != shadow.name);
        }
    } else {
        variants.retain(|v| {
            spec.variants
                .iter()
                .any(|w| v == w || *v == format!("{w}-canary"))
        });
    }
    let from = DateTime::<Utc>::from_timestamp_millis(start).ok_or("window start out of range")?;
    let to = DateTime::<Utc>::from_timestamp_millis(end).ok_or("window end out of range")?;
    let mut lines = Vec::new();
    for variant in &variants {
        for hour in hours(from, to) {
            let dir = SafePath::parse(&format!("{prefix}/{endpoint}/{variant}/{hour}"))
                .map_err(|e| e.to_string())?;
            for entry in st.artifacts.list(&dir).await.map_err(|e| e.to_string())? {
                if entry.is_dir || !entry.name.ends_with(".jsonl") {
                    continue;
                }
                let file = dir.join(&SafePath::parse(&entry.name).map_err(|e| e.to_string())?);
                let bytes = st.artifacts.read_all(&file)
                    .await
                    .map_err(|e| format!("reading {file}: {e}"))?;
                let text = String::from_utf8_lossy(&bytes);
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    // A record without a readable time is kept: its file's hour is in the window.
                    let time = inference_time(line);
                    if time.is_none_or(|t| t >= start && t < end) {
                        lines.push(line.to_string());
                    }
                }
            }
        }
    }
    Ok(lines)
}

/// The `inferenceTime` of a capture line in ms (RFC 3339, with or without
/// fractional seconds, as SageMaker writes it), without parsing the whole record.
fn inference_time(line: &str) -> Option<i64> {
    let at = line.find("\"inferenceTime\":\"")? + "\"inferenceTime\":\"".len();
    let rest = &line[at..];
    let text = &rest[..rest.find('"')?];
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Every `yyyy/mm/dd/hh` directory from `from`'s hour to `to`'s.
pub(crate) fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    let mut t = from
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(from);
    let mut out = Vec::new();
    while t <= to && out.len() < 24 * 400 {
        out.push(t.format("%Y/%m/%d/%H").to_string());
        t += TimeDelta::hours(1);
    }
    out
}

/// Fires schedules until the task is aborted.
pub fn spawn(st: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let changes = st.changes.clone();
            let woken = changes.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Err(e) = fire_due(&st).await {
                tracing::warn!(error = %e, "cannot look at monitor schedules");
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

/// Starts a run of every monitor whose schedule is due (in the background).
async fn fire_due(st: &AppState) -> Result<(), String> {
    let monitors = st.db(|s| s.list_monitors()).await.map_err(|e| e.message)?;
    let now = Utc::now();
    for m in monitors {
        let Ok(spec) = parse_stored(&m) else { continue };
        let Some(text) = &spec.schedule else { continue };
        let Ok(cron) = sextant_pipelines::cron::parse_cron(text) else {
            continue;
        };
        let n = m.name.clone();
        let runs = st
            .db(move |s| s.list_monitor_runs(&n, 50))
            .await
            .map_err(|e| e.message)?;
        let last = runs
            .iter()
            .find(|r| r.trigger == "schedule")
            .and_then(|r| DateTime::from_timestamp_millis(r.window_end));
        // The first due time after the last fired one (or after the monitor was applied).
        let from = last.or_else(|| DateTime::from_timestamp_millis(m.updated_time));
        let Some(due) = from.and_then(|f| cron.find_next_occurrence(&f, false).ok()) else {
            continue;
        };
        if due > now {
            continue;
        }
        // Missed times are not caught up: the run covers the window up to the newest due time.
        let mut newest = due;
        while let Ok(next) = cron.find_next_occurrence(&newest, false) {
            if next > now {
                break;
            }
            newest = next;
        }
        let st2 = st.clone();
        let name = m.name.clone();
        tokio::spawn(async move {
            let req = RunRequest {
                window_end: Some(newest.timestamp_millis()),
                trigger: "schedule".into(),
                ..RunRequest::default()
            };
            match st2.monitors.run(&st2, &name, req).await {
                Ok(run) => {
                    tracing::info!(monitor = %name, run = %run.id, status = run.status.as_str(), "scheduled monitor run ended")
                }
                // Running already, or another server fired this due time.
                Err(e)
                    if matches!(
                        e.code,
                        ErrorCode::ResourceConflict | ErrorCode::ResourceAlreadyExists
                    ) => {}
                Err(e) => {
                    tracing::warn!(monitor = %name, error = %e.message, "scheduled monitor run not started")
                }
            }
        });
    }
    Ok(())
}

/// The monitors list as the API shows them, with their latest run.
pub async fn latest_runs(st: &AppState, names: Vec<String>) -> Vec<Option<MonitorRun>> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        out.push(
            st.db(move |s| s.list_monitor_runs(&n, 1))
                .await
                .ok()
                .and_then(|r| r.into_iter().next()),
        );
    }
    out
}
