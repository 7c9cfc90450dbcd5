//! The cron loop every server runs: a due schedule fires one run, across
//! servers sharing a PostgreSQL because the store refuses a second scheduled
//! run of a monitor for the same window end.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;

use super::{MonitorError, Monitors, RunRequest, parse_stored};

/// How often schedules are looked at when nothing woke the loop.
const POLL: Duration = Duration::from_secs(1);

/// Fires schedules until the task is aborted.
pub fn spawn(monitors: Arc<Monitors>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let changes = monitors.deps.changes.clone();
            let woken = changes.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Err(e) = fire_due(&monitors).await {
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
async fn fire_due(monitors: &Arc<Monitors>) -> Result<(), MonitorError> {
    let all = monitors.db(|s| s.list_monitors()).await?;
    let Some(now) = DateTime::from_timestamp_millis(monitors.deps.clock.now_ms()) else {
        return Ok(());
    };
    for m in all {
        let Ok(spec) = parse_stored(&m) else { continue };
        let Some(text) = &spec.schedule else { continue };
        let Ok(cron) = sextant_pipelines::cron::parse_cron(text) else {
            continue;
        };
        let n = m.name.clone();
        let runs = monitors.db(move |s| s.list_monitor_runs(&n, 50)).await?;
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
        let monitors = monitors.clone();
        let name = m.name.clone();
        tokio::spawn(async move {
            let req = RunRequest {
                window_end: Some(newest.timestamp_millis()),
                trigger: "schedule".into(),
                ..RunRequest::default()
            };
            match monitors.run(&name, req).await {
                Ok(run) => {
                    tracing::info!(monitor = %name, run = %run.id, status = run.status.as_str(), "scheduled monitor run ended")
                }
                // Running already, or another server fired this due time.
                Err(e)
                    if matches!(
                        e.error_code(),
                        "RESOURCE_CONFLICT" | "RESOURCE_ALREADY_EXISTS"
                    ) => {}
                Err(e) => {
                    tracing::warn!(monitor = %name, error = %e, "scheduled monitor run not started")
                }
            }
        });
    }
    Ok(())
}
