//! Stored monitors and their runs. A run's end and its events (e.g.
//! `monitor.violation`) are written in one transaction, so a trigger never
//! sees a violation whose run is not recorded.

use serde_json::Value;
use sextant_core::Error;
use sextant_core::monitors::{
    MonitorEvent, MonitorRun, MonitorRunStatus, StoredMonitor, validate_monitor_name,
};

use super::events;
use crate::StoreError;
use crate::backend::{Conn, Row, SqlValue};

const COLUMNS: &str = "name, spec, created_time, updated_time";
const RUN_COLUMNS: &str = "id, monitor, status, trigger_kind, window_start, window_end, started_time, ended_time, summary, error";

fn decode(row: Row) -> Result<StoredMonitor, StoreError> {
    let [name, spec, created, updated]: [SqlValue; 4] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short monitor row".into()))?;
    Ok(StoredMonitor {
        name: name.text()?,
        spec: spec.text()?,
        created_time: created.int()?,
        updated_time: updated.int()?,
    })
}

fn decode_run(row: Row) -> Result<MonitorRun, StoreError> {
    let [
        id,
        monitor,
        status,
        trigger,
        ws,
        we,
        started,
        ended,
        summary,
        error,
    ]: [SqlValue; 10] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short monitor run row".into()))?;
    let status = status.text()?;
    Ok(MonitorRun {
        id: id.text()?,
        monitor: monitor.text()?,
        status: MonitorRunStatus::parse(&status)
            .map_err(|_| StoreError::Corrupt(format!("monitor run status '{status}'")))?,
        trigger: trigger.text()?,
        window_start: ws.int()?,
        window_end: we.int()?,
        started_time: started.int()?,
        ended_time: ended.opt_int()?,
        summary: summary.text()?,
        error: error.opt_text()?,
    })
}

fn json(what: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("monitor {what} is not valid JSON: {e}")).into())
}

fn append(c: &mut dyn Conn, name: &str, event: &MonitorEvent) -> Result<(), StoreError> {
    events::append(
        c,
        &event.kind,
        &format!("monitor:{name}"),
        None,
        json("event payload", &event.payload)?,
    )
}

pub fn get(c: &mut dyn Conn, name: &str) -> Result<StoredMonitor, StoreError> {
    c.query(
        &format!("SELECT {COLUMNS} FROM monitors WHERE name = ?"),
        &[name.into()],
    )?
    .into_iter()
    .next()
    .map(decode)
    .transpose()?
    .ok_or_else(|| Error::not_found(format!("monitor '{name}' not found")).into())
}

pub fn list(c: &mut dyn Conn) -> Result<Vec<StoredMonitor>, StoreError> {
    c.query(
        &format!("SELECT {COLUMNS} FROM monitors ORDER BY name"),
        &[],
    )?
    .into_iter()
    .map(decode)
    .collect()
}

/// Creates or replaces a monitor's definition at `now` (the scheduler's
/// clock: a monitor that never ran is due from then); appends `event` if given.
pub fn put_at(
    c: &mut dyn Conn,
    name: &str,
    spec: &str,
    event: Option<&MonitorEvent>,
    now: i64,
) -> Result<StoredMonitor, StoreError> {
    validate_monitor_name(name)?;
    json("spec", spec)?;
    c.exec(
        "INSERT INTO monitors (name, spec, created_time, updated_time) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_time = excluded.updated_time",
        &[name.into(), spec.into(), now.into(), now.into()],
    )?;
    if let Some(e) = event {
        append(c, name, e)?;
    }
    get(c, name)
}

/// Deletes a monitor and its runs; appends `monitor.deleted`.
pub fn delete(c: &mut dyn Conn, name: &str) -> Result<(), StoreError> {
    c.exec("DELETE FROM monitor_runs WHERE monitor = ?", &[name.into()])?;
    let n = c.exec("DELETE FROM monitors WHERE name = ?", &[name.into()])?;
    if n == 0 {
        return Err(Error::not_found(format!("monitor '{name}' not found")).into());
    }
    append(
        c,
        name,
        &MonitorEvent {
            kind: "monitor.deleted".into(),
            payload: serde_json::json!({ "monitor": name }).to_string(),
        },
    )
}

/// Records a started run (status `InProgress`) of an existing monitor.
pub fn start_run(c: &mut dyn Conn, run: &MonitorRun) -> Result<MonitorRun, StoreError> {
    get(c, &run.monitor)?;
    json("run summary", &run.summary)?;
    // A due time fires once across servers (the unique index settles a race).
    if run.trigger == "schedule"
        && !c
            .query(
                "SELECT 1 FROM monitor_runs WHERE monitor = ? AND trigger_kind = 'schedule' AND window_end = ?",
                &[run.monitor.as_str().into(), run.window_end.into()],
            )?
            .is_empty()
    {
        return Err(Error::AlreadyExists(format!(
            "monitor '{}' already has a scheduled run for the window ending at {}",
            run.monitor, run.window_end
        ))
        .into());
    }
    c.exec(
        &format!("INSERT INTO monitor_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            run.id.as_str().into(),
            run.monitor.as_str().into(),
            run.status.as_str().into(),
            run.trigger.as_str().into(),
            run.window_start.into(),
            run.window_end.into(),
            run.started_time.into(),
            run.ended_time.into(),
            run.summary.as_str().into(),
            run.error.as_deref().into(),
        ],
    )?;
    get_run(c, &run.id)
}

/// Ends a running run at `now` with its outcome and appends `events` in the
/// same transaction. A run that already ended is a conflict.
pub fn finish_run_at(
    c: &mut dyn Conn,
    id: &str,
    status: MonitorRunStatus,
    summary: &str,
    error: Option<&str>,
    events: &[MonitorEvent],
    now: i64,
) -> Result<MonitorRun, StoreError> {
    if !status.is_terminal() {
        return Err(Error::invalid(
            "a monitor run ends Completed, CompletedWithViolations or Failed",
        )
        .into());
    }
    json("run summary", summary)?;
    let run = get_run(c, id)?;
    let n = c.exec(
        "UPDATE monitor_runs SET status = ?, summary = ?, error = ?, ended_time = ? WHERE id = ? AND status = ?",
        &[
            status.as_str().into(),
            summary.into(),
            error.into(),
            now.into(),
            id.into(),
            MonitorRunStatus::Running.as_str().into(),
        ],
    )?;
    if n == 0 {
        return Err(Error::InvalidState(format!("monitor run '{id}' has already ended")).into());
    }
    for e in events {
        append(c, &run.monitor, e)?;
    }
    get_run(c, id)
}

pub fn get_run(c: &mut dyn Conn, id: &str) -> Result<MonitorRun, StoreError> {
    c.query(
        &format!("SELECT {RUN_COLUMNS} FROM monitor_runs WHERE id = ?"),
        &[id.into()],
    )?
    .into_iter()
    .next()
    .map(decode_run)
    .transpose()?
    .ok_or_else(|| Error::not_found(format!("monitor run '{id}' not found")).into())
}

/// A monitor's runs, newest first, at most `max_results`.
pub fn list_runs(
    c: &mut dyn Conn,
    monitor: &str,
    max_results: u64,
) -> Result<Vec<MonitorRun>, StoreError> {
    c.query(
        &format!(
            "SELECT {RUN_COLUMNS} FROM monitor_runs WHERE monitor = ? ORDER BY started_time DESC, id DESC LIMIT ?"
        ),
        &[monitor.into(), (max_results.min(i64::MAX as u64) as i64).into()],
    )?
    .into_iter()
    .map(decode_run)
    .collect()
}
