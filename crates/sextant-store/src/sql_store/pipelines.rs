//! Stored pipelines, pipeline runs and the task queue.
//!
//! The queue is a table: a claim is one `UPDATE … RETURNING` that picks the
//! oldest claimable row, so it is atomic on both backends. On PostgreSQL the
//! pick is `FOR UPDATE SKIP LOCKED`, so concurrent claimers pass over a row
//! another transaction is taking instead of queuing behind it; SQLite has a
//! single writer, which serializes claims by itself.
//!
//! Every write by a worker names the fencing token its claim returned and
//! only touches a row that is still `running` under that token; a claimer
//! that lost its lease changes nothing and is told so.

use serde_json::{Value, json};
use sextant_core::Error;
use sextant_core::entities::Page;
use sextant_core::pipeline_runs::{
    Applied, CacheEntry, ClaimedTask, NewPipelineRun, Pipeline, PipelineRun, PipelineRunStatus,
    Task, TaskStatus, TriggerKind, validate_pipeline_name,
};

mod clocked;

use super::experiments::page_rest;
use super::{events, now_ms};
use crate::backend::{Conn, Dialect, Row, SqlValue};
use crate::{PipelineRunSearch, StoreError};

const RUN_COLUMNS: &str = "id, pipeline, run_uuid, status, trigger_kind, trigger_event, params, \
                           no_cache, started_by, created_time, updated_time";

const PIPELINE_COLUMNS: &str = "name, spec, applied_by, created_time, updated_time";

const TASK_COLUMNS: &str = "id, pipeline_run, step, status, attempt, fencing, not_before, \
                            lease_owner, lease_expires, heartbeat, payload, result, error, \
                            step_run_uuid, created_time, updated_time";

fn limit(n: u64) -> SqlValue {
    i64::try_from(n).unwrap_or(i64::MAX).into()
}

/// `suffix` on PostgreSQL, nothing on SQLite (whose single writer already
/// excludes concurrent changes).
fn pg_only(c: &dyn Conn, suffix: &'static str) -> &'static str {
    match c.dialect() {
        Dialect::Postgres => suffix,
        Dialect::Sqlite => "",
    }
}

fn check_json(what: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("{what} is not valid JSON ({e}): {text}")).into())
}

// --- Pipelines. ---

fn decode_pipeline(row: Row) -> Result<Pipeline, StoreError> {
    let [name, spec, applied_by, created, updated]: [SqlValue; 5] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short pipeline row".into()))?;
    Ok(Pipeline {
        name: name.text()?,
        spec: spec.text()?,
        applied_by: applied_by.opt_text()?,
        created_time: created.int()?,
        updated_time: updated.int()?,
    })
}

/// Stores a pipeline. A known applier replaces the recorded one even when
/// the text is unchanged (they vouch for it now); an unknown one (`None`,
/// authentication off) leaves it.
pub fn put(
    c: &mut dyn Conn,
    name: &str,
    spec: &str,
    applied_by: Option<&str>,
) -> Result<Applied, StoreError> {
    validate_pipeline_name(name)?;
    let (applied, kind) = match get_opt(c, name)? {
        Some(p) if p.spec == spec => {
            if let Some(user) = applied_by.filter(|u| p.applied_by.as_deref() != Some(*u)) {
                c.exec(
                    "UPDATE pipelines SET applied_by = ? WHERE name = ?",
                    &[user.into(), name.into()],
                )?;
            }
            return Ok(Applied::Unchanged);
        }
        Some(_) => (Applied::Updated, "pipeline.updated"),
        None => (Applied::Created, "pipeline.created"),
    };
    // The store's clock, not a caller's: triggers compare this time with
    // the events' (`Event::time`, the store's too) to react only to events
    // appended after the pipeline was applied.
    let now = now_ms();
    // An upsert, so that two first applies of one name at once both succeed.
    c.exec(
        "INSERT INTO pipelines (name, spec, applied_by, created_time, updated_time) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, \
         applied_by = COALESCE(excluded.applied_by, pipelines.applied_by), \
         updated_time = excluded.updated_time",
        &[
            name.into(),
            spec.into(),
            applied_by.into(),
            now.into(),
            now.into(),
        ],
    )?;
    events::append(
        c,
        kind,
        &format!("pipeline:{name}"),
        None,
        json!({ "name": name, "applied_by": applied_by }),
    )?;
    Ok(applied)
}

fn get_opt(c: &mut dyn Conn, name: &str) -> Result<Option<Pipeline>, StoreError> {
    let rows = c.query(
        &format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE name = ?"),
        &[name.into()],
    )?;
    rows.into_iter().next().map(decode_pipeline).transpose()
}

pub fn get(c: &mut dyn Conn, name: &str) -> Result<Pipeline, StoreError> {
    get_opt(c, name)?.ok_or_else(|| Error::not_found(format!("pipeline '{name}' not found")).into())
}

pub fn list(c: &mut dyn Conn, max_results: u64, offset: u64) -> Result<Page<Pipeline>, StoreError> {
    let rows = c.query(
        &format!("SELECT {PIPELINE_COLUMNS} FROM pipelines ORDER BY name LIMIT ? OFFSET ?"),
        &[limit(max_results.saturating_add(1)), limit(offset)],
    )?;
    let mut items = rows
        .into_iter()
        .map(decode_pipeline)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut items, max_results, offset);
    Ok(Page { items, next_offset })
}

// --- Pipeline runs. ---

fn decode_run(row: Row) -> Result<PipelineRun, StoreError> {
    let [
        id,
        pipeline,
        run_uuid,
        status,
        kind,
        event,
        params,
        no_cache,
        started_by,
        created,
        updated,
    ]: [SqlValue; 11] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short pipeline run row".into()))?;
    let status = status.text()?;
    let kind = kind.text()?;
    Ok(PipelineRun {
        id: id.text()?,
        pipeline: pipeline.text()?,
        run_uuid: run_uuid.opt_text()?,
        status: PipelineRunStatus::parse(&status)
            .map_err(|_| StoreError::Corrupt(format!("pipeline run status {status}")))?,
        trigger_kind: TriggerKind::parse(&kind)
            .map_err(|_| StoreError::Corrupt(format!("trigger kind {kind}")))?,
        trigger_event: event.opt_int()?,
        params: params.text()?,
        no_cache: no_cache.int()? != 0,
        started_by: started_by.opt_text()?,
        created_time: created.int()?,
        updated_time: updated.int()?,
    })
}

fn run_event(c: &mut dyn Conn, run: &PipelineRun, kind: &str) -> Result<(), StoreError> {
    run_event_with(c, run, kind, None)
}

/// [`run_event`] that also records who the run acts for from now on and
/// who it acted for before (a run resumed by someone else).
fn run_event_with(
    c: &mut dyn Conn,
    run: &PipelineRun,
    kind: &str,
    previous_started_by: Option<Option<String>>,
) -> Result<(), StoreError> {
    let mut payload = json!({
        "id": run.id,
        "pipeline": run.pipeline,
        "status": run.status.as_str(),
        "trigger_kind": run.trigger_kind.as_str(),
        "trigger_event": run.trigger_event,
    });
    if let Some(previous) = previous_started_by {
        payload["started_by"] = json!(run.started_by);
        payload["previous_started_by"] = json!(previous);
    }
    events::append(c, kind, &format!("pipeline_run:{}", run.id), None, payload)
}

pub fn create_run_at(
    c: &mut dyn Conn,
    new: &NewPipelineRun,
    now: i64,
) -> Result<PipelineRun, StoreError> {
    if !check_json("pipeline run params", &new.params)?.is_object() {
        return Err(Error::invalid(format!(
            "pipeline run params must be a JSON object, got: {}",
            new.params
        ))
        .into());
    }
    get(c, &new.pipeline)?;
    let run = PipelineRun {
        id: uuid::Uuid::new_v4().to_string(),
        pipeline: new.pipeline.clone(),
        run_uuid: new.run_uuid.clone(),
        status: PipelineRunStatus::Pending,
        trigger_kind: new.trigger_kind,
        trigger_event: new.trigger_event,
        params: new.params.clone(),
        no_cache: new.no_cache,
        started_by: new.started_by.clone(),
        created_time: now,
        updated_time: now,
    };
    c.exec(
        &format!(
            "INSERT INTO pipeline_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            run.id.as_str().into(),
            run.pipeline.as_str().into(),
            run.run_uuid.as_deref().into(),
            run.status.as_str().into(),
            run.trigger_kind.as_str().into(),
            run.trigger_event.into(),
            run.params.as_str().into(),
            i64::from(run.no_cache).into(),
            run.started_by.as_deref().into(),
            now.into(),
            now.into(),
        ],
    )?;
    run_event(c, &run, "pipeline_run.created")?;
    Ok(run)
}

/// Reads a run; `lock` is appended to the query (a row lock on PostgreSQL).
fn get_run_locked(c: &mut dyn Conn, id: &str, lock: &str) -> Result<PipelineRun, StoreError> {
    let rows = c.query(
        &format!("SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE id = ?{lock}"),
        &[id.into()],
    )?;
    rows.into_iter()
        .next()
        .map(decode_run)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("pipeline run '{id}' not found")).into())
}

pub fn get_run(c: &mut dyn Conn, id: &str) -> Result<PipelineRun, StoreError> {
    get_run_locked(c, id, "")
}

pub fn list_runs(c: &mut dyn Conn, q: &PipelineRunSearch) -> Result<Page<PipelineRun>, StoreError> {
    let mut conditions = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    if let Some(p) = &q.pipeline {
        conditions.push("pipeline = ?");
        params.push(p.into());
    }
    if let Some(s) = q.status {
        conditions.push("status = ?");
        params.push(s.as_str().into());
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    params.push(limit(q.max_results.saturating_add(1)));
    params.push(limit(q.offset));
    let rows = c.query(
        &format!(
            "SELECT {RUN_COLUMNS} FROM pipeline_runs{filter} \
             ORDER BY created_time DESC, id DESC LIMIT ? OFFSET ?"
        ),
        &params,
    )?;
    let mut items = rows
        .into_iter()
        .map(decode_run)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut items, q.max_results, q.offset);
    Ok(Page { items, next_offset })
}

pub fn set_run_status_at(
    c: &mut dyn Conn,
    id: &str,
    status: PipelineRunStatus,
    now: i64,
) -> Result<PipelineRun, StoreError> {
    // The row lock orders this change against concurrent status changes and
    // against enqueues into the run, which take a share lock on it.
    let lock = pg_only(c, " FOR UPDATE");
    let run = get_run_locked(c, id, lock)?;
    change_status(c, run, status, None, now)
}

/// Moves a run (read under its row lock) to `status`; with `acting_for`,
/// the run acts for that user from now on, and a change of user is in
/// the event.
fn change_status(
    c: &mut dyn Conn,
    mut run: PipelineRun,
    status: PipelineRunStatus,
    acting_for: Option<&str>,
    now: i64,
) -> Result<PipelineRun, StoreError> {
    let id = run.id.clone();
    let from = run.status;
    if from == status {
        return Ok(run);
    }
    if !from.can_become(status) {
        return Err(Error::InvalidState(format!(
            "pipeline run '{id}' is {} and cannot become {}",
            from.as_str(),
            status.as_str()
        ))
        .into());
    }
    c.exec(
        "UPDATE pipeline_runs SET status = ?, updated_time = ? WHERE id = ?",
        &[status.as_str().into(), now.into(), id.as_str().into()],
    )?;
    if status == PipelineRunStatus::Cancelled {
        cancel_tasks(c, &id, now)?;
    }
    let mut previous = None;
    if let Some(user) = acting_for
        && run.started_by.as_deref() != Some(user)
    {
        c.exec(
            "UPDATE pipeline_runs SET started_by = ? WHERE id = ?",
            &[user.into(), id.as_str().into()],
        )?;
        previous = Some(run.started_by.replace(user.to_string()));
    }
    run.status = status;
    run.updated_time = now;
    run_event_with(c, &run, status.event_kind(from), previous)?;
    Ok(run)
}

// --- Tasks. ---

fn decode_task(row: Row) -> Result<Task, StoreError> {
    let [
        id,
        run,
        step,
        status,
        attempt,
        fencing,
        not_before,
        owner,
        expires,
        heartbeat,
        payload,
        result,
        error,
        step_run,
        created,
        updated,
    ]: [SqlValue; 16] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short task row".into()))?;
    let status = status.text()?;
    Ok(Task {
        id: id.int()?,
        pipeline_run: run.text()?,
        step: step.text()?,
        status: TaskStatus::parse(&status)
            .map_err(|_| StoreError::Corrupt(format!("task status {status}")))?,
        attempt: attempt.int()?,
        fencing: fencing.int()?,
        not_before: not_before.int()?,
        lease_owner: owner.opt_text()?,
        lease_expires: expires.opt_int()?,
        heartbeat: heartbeat.opt_int()?,
        payload: payload.text()?,
        result: result.opt_text()?,
        error: error.opt_text()?,
        step_run_uuid: step_run.opt_text()?,
        created_time: created.int()?,
        updated_time: updated.int()?,
    })
}

pub fn enqueue_at(
    c: &mut dyn Conn,
    run_id: &str,
    step: &str,
    payload: &str,
    not_before: Option<i64>,
    now: i64,
) -> Result<Task, StoreError> {
    if step.is_empty() {
        return Err(Error::invalid("a task needs a step name").into());
    }
    check_json("task payload", payload)?;
    let lock = pg_only(c, " FOR SHARE");
    let run = get_run_locked(c, run_id, lock)?;
    if run.status.is_terminal() {
        return Err(Error::InvalidState(format!(
            "pipeline run '{run_id}' is {}; no task can be queued for it",
            run.status.as_str()
        ))
        .into());
    }
    let rows = c.query(
        &format!(
            "INSERT INTO tasks (pipeline_run, step, status, attempt, fencing, not_before, \
             payload, created_time, updated_time) VALUES (?, ?, 'queued', 0, 0, ?, ?, ?, ?) \
             RETURNING {TASK_COLUMNS}"
        ),
        &[
            run_id.into(),
            step.into(),
            not_before.unwrap_or(now).into(),
            payload.into(),
            now.into(),
            now.into(),
        ],
    )?;
    rows.into_iter()
        .next()
        .map(decode_task)
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("insert returned no task".into()))
}

pub fn get_task(c: &mut dyn Conn, task_id: i64) -> Result<Task, StoreError> {
    let rows = c.query(
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"),
        &[task_id.into()],
    )?;
    rows.into_iter()
        .next()
        .map(decode_task)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("task {task_id} not found")).into())
}

pub fn tasks_of_run(c: &mut dyn Conn, run_id: &str) -> Result<Vec<Task>, StoreError> {
    get_run(c, run_id)?;
    c.query(
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE pipeline_run = ? ORDER BY id"),
        &[run_id.into()],
    )?
    .into_iter()
    .map(decode_task)
    .collect()
}

pub fn claim(
    c: &mut dyn Conn,
    worker: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Option<ClaimedTask>, StoreError> {
    if worker.is_empty() || lease_ms <= 0 {
        return Err(Error::invalid(format!(
            "a claim needs a worker id and a positive lease, got '{worker}' and {lease_ms} ms"
        ))
        .into());
    }
    let skip_locked = pg_only(c, " FOR UPDATE SKIP LOCKED");
    // The redundant `status IN (…)` lets both planners use the partial index.
    let rows = c.query(
        &format!(
            "UPDATE tasks SET status = 'running', attempt = attempt + 1, fencing = fencing + 1, \
             lease_owner = ?, lease_expires = ?, heartbeat = ?, step_run_uuid = NULL, \
             updated_time = ? \
             WHERE id = (SELECT id FROM tasks WHERE status IN ('queued', 'running') \
             AND ((status = 'queued' AND not_before <= ?) \
             OR (status = 'running' AND lease_expires <= ?)) \
             ORDER BY id LIMIT 1{skip_locked}) \
             RETURNING {TASK_COLUMNS}"
        ),
        &[
            worker.into(),
            now.saturating_add(lease_ms).into(),
            now.into(),
            now.into(),
            now.into(),
            now.into(),
        ],
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let task = decode_task(row)?;
    Ok(Some(ClaimedTask {
        fencing: task.fencing,
        task,
    }))
}

/// The error for a fenced write that matched no row: the task is gone, or
/// no longer running under `fencing`.
fn lost(c: &mut dyn Conn, task_id: i64, fencing: i64) -> StoreError {
    match get_task(c, task_id) {
        Ok(t) => Error::InvalidState(format!(
            "task {task_id} is not held under fencing token {fencing}: it is {} under token {}",
            t.status.as_str(),
            t.fencing
        ))
        .into(),
        Err(e) => e,
    }
}

/// Runs `UPDATE tasks SET <sets>` on the task if it is still running under
/// `fencing`; `params` bind the `?`s of `sets`.
fn fenced(
    c: &mut dyn Conn,
    task_id: i64,
    fencing: i64,
    sets: &str,
    mut params: Vec<SqlValue>,
) -> Result<bool, StoreError> {
    params.push(task_id.into());
    params.push(fencing.into());
    let n = c.exec(
        &format!("UPDATE tasks SET {sets} WHERE id = ? AND fencing = ? AND status = 'running'"),
        &params,
    )?;
    Ok(n > 0)
}

pub fn heartbeat_at(
    c: &mut dyn Conn,
    task_id: i64,
    fencing: i64,
    lease_ms: i64,
    now: i64,
) -> Result<(), StoreError> {
    let sets = "lease_expires = ?, heartbeat = ?, updated_time = ?";
    let params = vec![now.saturating_add(lease_ms).into(), now.into(), now.into()];
    if fenced(c, task_id, fencing, sets, params)? {
        Ok(())
    } else {
        Err(lost(c, task_id, fencing))
    }
}

pub fn set_step_run_at(
    c: &mut dyn Conn,
    task_id: i64,
    fencing: i64,
    step_run_uuid: &str,
    now: i64,
) -> Result<(), StoreError> {
    let params = vec![step_run_uuid.into(), now.into()];
    if fenced(
        c,
        task_id,
        fencing,
        "step_run_uuid = ?, updated_time = ?",
        params,
    )? {
        Ok(())
    } else {
        Err(lost(c, task_id, fencing))
    }
}

pub fn complete_at(
    c: &mut dyn Conn,
    task_id: i64,
    fencing: i64,
    result: &str,
    now: i64,
) -> Result<Task, StoreError> {
    check_json("task result", result)?;
    let sets = "status = 'succeeded', result = ?, lease_expires = NULL, updated_time = ?";
    if fenced(c, task_id, fencing, sets, vec![result.into(), now.into()])? {
        return get_task(c, task_id);
    }
    // A holder that retries a completion whose answer it never received
    // finds its own outcome recorded: that is success, not a conflict.
    let t = get_task(c, task_id)?;
    if t.status == TaskStatus::Succeeded
        && t.fencing == fencing
        && t.result.as_deref() == Some(result)
    {
        return Ok(t);
    }
    Err(lost(c, task_id, fencing))
}

pub fn fail_at(
    c: &mut dyn Conn,
    task_id: i64,
    fencing: i64,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> Result<Task, StoreError> {
    let done = match retry_at {
        Some(at) => fenced(
            c,
            task_id,
            fencing,
            "status = 'queued', error = ?, not_before = ?, lease_owner = NULL, \
             lease_expires = NULL, updated_time = ?",
            vec![error.into(), at.into(), now.into()],
        )?,
        None => fenced(
            c,
            task_id,
            fencing,
            "status = 'failed', error = ?, lease_expires = NULL, updated_time = ?",
            vec![error.into(), now.into()],
        )?,
    };
    if done {
        get_task(c, task_id)
    } else {
        Err(lost(c, task_id, fencing))
    }
}

fn cancel_tasks(c: &mut dyn Conn, run_id: &str, now: i64) -> Result<u64, StoreError> {
    c.exec(
        "UPDATE tasks SET status = 'cancelled', lease_expires = NULL, updated_time = ? \
         WHERE pipeline_run = ? AND status IN ('queued', 'running')",
        &[now.into(), run_id.into()],
    )
}

pub fn cancel_run_tasks_at(c: &mut dyn Conn, run_id: &str, now: i64) -> Result<u64, StoreError> {
    get_run(c, run_id)?;
    cancel_tasks(c, run_id, now)
}

/// `pipelines retry`: a failed or cancelled run goes back to `RUNNING` with
/// a fresh task for each of `steps`, all in one transaction. Earlier tasks
/// keep their outcome; a step's newest task decides its state, so the new
/// tasks take over from the failed ones and succeeded steps stay done.
pub fn resume_run_at(
    c: &mut dyn Conn,
    id: &str,
    steps: &[(String, String)],
    acting_for: Option<&str>,
    now: i64,
) -> Result<(PipelineRun, Vec<Task>), StoreError> {
    let lock = pg_only(c, " FOR UPDATE");
    let run = get_run_locked(c, id, lock)?;
    if !matches!(
        run.status,
        PipelineRunStatus::Failed | PipelineRunStatus::Cancelled
    ) {
        return Err(Error::InvalidState(format!(
            "pipeline run '{id}' is {}: only a FAILED or CANCELLED run can be retried",
            run.status.as_str()
        ))
        .into());
    }
    if steps.is_empty() {
        return Err(Error::invalid(format!(
            "retrying pipeline run '{id}' needs at least one step to run again"
        ))
        .into());
    }
    // A run that has just ended may still have a task its ending has not yet
    // cancelled; resuming now would leave that step's outcome to chance.
    let open = c.query(
        "SELECT step FROM tasks WHERE pipeline_run = ? AND status IN ('queued', 'running') \
         ORDER BY id LIMIT 1",
        &[id.into()],
    )?;
    if let Some(row) = open.into_iter().next() {
        let step = row.into_iter().next().map(SqlValue::text).transpose()?;
        return Err(Error::InvalidState(format!(
            "pipeline run '{id}' is {} but its task for step '{}' is still open; try again in a moment",
            run.status.as_str(),
            step.unwrap_or_default()
        ))
        .into());
    }
    let run = change_status(c, run, PipelineRunStatus::Running, acting_for, now)?;
    let tasks = steps
        .iter()
        .map(|(step, payload)| enqueue_at(c, id, step, payload, None, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((run, tasks))
}

// --- The step cache. ---

const CACHE_COLUMNS: &str = "pipeline, step, cache_key, parts, pipeline_run, task_id, \
                             step_run_uuid, result, created_time";

fn decode_cache_entry(row: Row) -> Result<CacheEntry, StoreError> {
    let [
        pipeline,
        step,
        key,
        parts,
        run,
        task,
        step_run,
        result,
        created,
    ]: [SqlValue; 9] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short step cache row".into()))?;
    Ok(CacheEntry {
        pipeline: pipeline.text()?,
        step: step.text()?,
        cache_key: key.text()?,
        parts: parts.text()?,
        pipeline_run: run.text()?,
        task_id: task.int()?,
        step_run_uuid: step_run.opt_text()?,
        result: result.text()?,
        created_time: created.int()?,
    })
}

pub fn put_cache_entry(c: &mut dyn Conn, e: &CacheEntry) -> Result<(), StoreError> {
    check_json("step cache parts", &e.parts)?;
    check_json("step cache result", &e.result)?;
    c.exec(
        &format!("INSERT INTO step_cache ({CACHE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            e.pipeline.as_str().into(),
            e.step.as_str().into(),
            e.cache_key.as_str().into(),
            e.parts.as_str().into(),
            e.pipeline_run.as_str().into(),
            e.task_id.into(),
            e.step_run_uuid.as_deref().into(),
            e.result.as_str().into(),
            e.created_time.into(),
        ],
    )?;
    Ok(())
}

/// The newest entries of a step, newest first, created at or after `since`,
/// optionally only those with `key`.
pub fn cache_entries(
    c: &mut dyn Conn,
    pipeline: &str,
    step: &str,
    key: Option<&str>,
    since: i64,
    max_results: u64,
) -> Result<Vec<CacheEntry>, StoreError> {
    let mut args: Vec<SqlValue> = vec![pipeline.into(), step.into(), since.into()];
    let by_key = match key {
        Some(k) => {
            args.push(k.into());
            " AND cache_key = ?"
        }
        None => "",
    };
    args.push(limit(max_results));
    c.query(
        &format!(
            "SELECT {CACHE_COLUMNS} FROM step_cache WHERE pipeline = ? AND step = ? \
             AND created_time >= ?{by_key} ORDER BY created_time DESC, id DESC LIMIT ?"
        ),
        &args,
    )?
    .into_iter()
    .map(decode_cache_entry)
    .collect()
}
