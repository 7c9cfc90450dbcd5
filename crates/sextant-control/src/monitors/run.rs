//! One run's work: the baseline, the window, the engine on the blocking pool,
//! the files under `monitoring/<monitor>/<run>/`, and the events it ends with.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sextant_artifacts::{ArtifactStore, SafePath};
use sextant_core::monitors::{MonitorEvent, MonitorRun, MonitorRunStatus};
use sextant_monitor::drift::DriftConfig;
use sextant_monitor::engine::{self, CaptureWindow, Checks, QualityCheck, Window};
use sextant_monitor::profile::ProfileOptions;
use sextant_monitor::read::profile_path;

use super::config::MonitorSpec;
use super::{MonitorError, Monitors, REPORTS_PREFIX, event, ground_truth};

/// What a finished check produced.
pub(super) struct Executed {
    pub status: MonitorRunStatus,
    pub summary: Value,
    pub events: Vec<MonitorEvent>,
}

/// The engine's view of a definition: which checks, with which settings.
fn checks(spec: &MonitorSpec) -> Checks {
    Checks {
        title: format!("Monitor {}", spec.name.as_deref().unwrap_or("")),
        watches: spec.endpoint.as_deref().map_or_else(
            || spec.data.clone().unwrap_or_default(),
            |e| format!("endpoint {e}"),
        ),
        data_quality: spec.data_quality,
        drift: spec.drift.enabled.then(|| DriftConfig {
            threshold: spec.drift.threshold.unwrap_or(0.1),
            alpha: spec.drift.alpha.unwrap_or(0.05),
            drift_share: spec.drift.drift_share.unwrap_or(0.5),
        }),
        model_quality: spec.model_quality.as_ref().map(|mq| QualityCheck {
            problem_type: mq.problem_type,
            label: mq.label.clone(),
            constraints: mq.constraints.clone(),
            positive_label: mq.positive_label.clone(),
        }),
    }
}

impl Monitors {
    /// Runs one check: baseline, window, engine, files, events.
    pub(super) async fn execute(
        &self,
        spec: &MonitorSpec,
        run: &MonitorRun,
    ) -> Result<Executed, MonitorError> {
        let name = run.monitor.as_str();
        let baseline = self.load_baseline(spec).await?;
        let baseline = blocking(move || baseline.parse()).await??;
        let opts = ProfileOptions::default();
        let window = match (&spec.endpoint, &spec.data) {
            (Some(endpoint), _) => {
                self.deps.capture.flush().await;
                let empty = CaptureWindow::new(baseline.columns(), opts);
                let span = (run.window_start, run.window_end);
                let window = self.read_capture(endpoint, spec, span, empty).await?;
                let labels = if spec.model_quality.is_some() {
                    let now = self.deps.clock.now_ms();
                    ground_truth::labels(&self.deps.artifacts, endpoint, run.window_start, now)
                        .await?
                } else {
                    Default::default()
                };
                window.finish(labels)
            }
            (None, Some(path)) => {
                let path = self.host_path("monitor data", path)?;
                let profile = blocking(move || profile_path(&path, opts)).await?;
                Window::data_set(profile.map_err(engine::EngineError::from)?)
            }
            (None, None) => return Err(MonitorError::WatchesNothing),
        };
        let checks = checks(spec);
        let out = blocking(move || engine::evaluate(&checks, &baseline, &window)).await??;
        if out.rows < spec.min_rows {
            return Err(MonitorError::TooFewRows {
                rows: out.rows,
                min_rows: spec.min_rows,
            });
        }
        let dir = format!("{REPORTS_PREFIX}/{name}/{}", run.id);
        let mut files = serde_json::Map::new();
        for (file, bytes) in out.files {
            let path = SafePath::parse(&format!("{dir}/{file}"))
                .map_err(|e| MonitorError::Artifacts(e.to_string()))?;
            let body = futures::stream::once(async move {
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(bytes))
            });
            self.deps
                .artifacts
                .put(&path, body)
                .await
                .map_err(|e| MonitorError::Artifacts(format!("writing {path}: {e}")))?;
            files.insert(file.to_string(), json!(path.to_string()));
        }
        let window_file = files.get("window.csv").and_then(Value::as_str);
        let (window_uri, window_path) = match window_file {
            Some(p) => locate(&self.deps.artifacts, p),
            None => (None, None),
        };
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
        let status = if out.violations.is_empty() {
            MonitorRunStatus::Completed
        } else {
            let checks: BTreeSet<&str> = out
                .violations
                .iter()
                .filter_map(|v| v.get("constraint_check_type").and_then(Value::as_str))
                .collect();
            payload["checks"] = json!(checks);
            events.push(event("monitor.violation", payload));
            MonitorRunStatus::CompletedWithViolations
        };
        Ok(Executed {
            status,
            summary,
            events,
        })
    }
}

/// Runs CPU work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, MonitorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MonitorError::Panicked(e.to_string()))
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
