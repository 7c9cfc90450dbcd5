//! Runs: create, read, update, lifecycle, tag deletion and search.

use sextant_core::Error;
use std::collections::BTreeMap;

use sextant_core::entities::{
    Experiment, LifecycleStage, NewRun, Page, Run, RunData, RunInfo, RunStatus, Tag,
};
use sextant_core::search::Entity;
use sextant_core::validation;

use super::experiments::{self, page_rest};
use super::load::{self, RUN_COLUMNS};
use serde_json::json;

use super::{child_uri, events, now_ms};
use crate::StoreError;
use crate::backend::ColumnType::{Int, Text};
use crate::backend::{Conn, SqlValue, placeholders};
use crate::names::random_name;
use crate::search_sql;
use crate::store::RunSearch;

/// The tag that mirrors a run's name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// Upserts a run tag (value truncated as MLflow does) and keeps the run name
/// in step with `mlflow.runName` (for a rename; `logging::log_batches`
/// writes logged tags, the same way, for many runs at once).
fn upsert_tag(c: &mut dyn Conn, rid: i64, tag: &Tag) -> Result<(), StoreError> {
    validation::validate_key("tag", &tag.key)?;
    let value = validation::truncate_tag_value(&tag.value);
    c.exec(
        "INSERT INTO run_tags (rid, key, value) VALUES (?, ?, ?) \
         ON CONFLICT (rid, key) DO UPDATE SET value = excluded.value",
        &[rid.into(), tag.key.as_str().into(), value.as_str().into()],
    )?;
    if tag.key == RUN_NAME_TAG {
        c.exec(
            "UPDATE runs SET name = ? WHERE rid = ?",
            &[value.into(), rid.into()],
        )?;
    }
    Ok(())
}

pub fn create(c: &mut dyn Conn, new: &NewRun) -> Result<Run, StoreError> {
    let exp = experiments::active(c, new.experiment_id)?;
    create_in(c, &exp, new)
}

/// Creates `new` in `exp`, an active experiment read in this transaction.
/// Every check of the caller's input comes before the first write, so a
/// refused creation has written nothing: group commit shares one
/// transaction between creations without a savepoint each.
pub fn create_in(c: &mut dyn Conn, exp: &Experiment, new: &NewRun) -> Result<Run, StoreError> {
    let tag_name = new
        .tags
        .iter()
        .rev()
        .find(|t| t.key == RUN_NAME_TAG)
        .map(|t| t.value.as_str());
    let name = match (new.run_name.as_deref().filter(|n| !n.is_empty()), tag_name) {
        (Some(n), Some(t)) if n != t => {
            return Err(Error::invalid(format!(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with \
                 different values (run_name='{n}', mlflow.runName='{t}')."
            ))
            .into());
        }
        (Some(n), _) => n.to_string(),
        (None, Some(t)) if !t.is_empty() => t.to_string(),
        _ => random_name(),
    };
    // The tags as a read gives them back (by key, the last value of a key
    // kept), written with one statement; the name is in the run already.
    let mut tags = BTreeMap::new();
    for tag in new.tags.iter().filter(|t| t.key != RUN_NAME_TAG) {
        validation::validate_key("tag", &tag.key)?;
        tags.insert(tag.key.as_str(), validation::truncate_tag_value(&tag.value));
    }
    tags.insert(RUN_NAME_TAG, name.clone());
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let artifact_uri = child_uri(&exp.artifact_location, &format!("{run_id}/artifacts"));
    let start_time = new.start_time.unwrap_or_else(now_ms);
    // The first write: nothing below refuses the caller's input.
    let rows = c.query(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, \
         artifact_uri, lifecycle_stage) VALUES (?, ?, ?, ?, 'RUNNING', ?, NULL, ?, 'active') RETURNING rid",
        &[
            run_id.as_str().into(),
            exp.experiment_id.into(),
            name.as_str().into(),
            new.user_id.as_str().into(),
            start_time.into(),
            artifact_uri.as_str().into(),
        ],
    )?;
    let rid = rows
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| StoreError::Corrupt("insert returned no rid".into()))?
        .int()?;
    let rows: Vec<SqlValue> = tags
        .iter()
        .flat_map(|(k, v)| [rid.into(), (*k).into(), v.as_str().into()])
        .collect();
    c.insert(
        "INSERT INTO run_tags (rid, key, value)",
        "ON CONFLICT (rid, key) DO UPDATE SET value = excluded.value",
        &[Int, Text, Text],
        &rows,
    )?;
    events::append(
        c,
        "run.created",
        &format!("run:{run_id}"),
        Some(new.user_id.as_str()),
        json!({
            "run_id": run_id,
            "experiment_id": exp.experiment_id.to_string(),
            "run_name": name,
        }),
    )?;
    // All of the new run is known here: no need to read it back.
    Ok(Run {
        data: RunData {
            tags: tags.into_iter().map(|(k, v)| Tag::new(k, v)).collect(),
            ..RunData::default()
        },
        info: RunInfo {
            run_id,
            run_name: name,
            experiment_id: exp.experiment_id,
            user_id: new.user_id.clone(),
            status: RunStatus::Running,
            start_time: Some(start_time),
            end_time: None,
            artifact_uri,
            lifecycle_stage: LifecycleStage::Active,
        },
        dataset_inputs: Vec::new(),
        model_inputs: Vec::new(),
        model_outputs: Vec::new(),
    })
}

pub fn get(c: &mut dyn Conn, run_id: &str) -> Result<Run, StoreError> {
    let info = load::run_info(c, run_id)?;
    let mut runs = load::complete(c, vec![info])?;
    runs.pop()
        .ok_or_else(|| StoreError::Corrupt("run vanished".into()))
}

pub fn update(
    c: &mut dyn Conn,
    run_id: &str,
    status: Option<RunStatus>,
    end_time: Option<i64>,
    run_name: Option<&str>,
) -> Result<RunInfo, StoreError> {
    let (rid, before) = load::active_run(c, run_id)?;
    if let Some(s) = status {
        c.exec(
            "UPDATE runs SET status = ? WHERE rid = ?",
            &[s.as_str().into(), rid.into()],
        )?;
    }
    if let Some(t) = end_time {
        c.exec(
            "UPDATE runs SET end_time = ? WHERE rid = ?",
            &[t.into(), rid.into()],
        )?;
    }
    if let Some(n) = run_name.filter(|n| !n.is_empty()) {
        upsert_tag(c, rid, &Tag::new(RUN_NAME_TAG, n))?;
    }
    if let Some(s) = status.filter(|s| *s != before.status) {
        events::append(
            c,
            "run.status_changed",
            &format!("run:{run_id}"),
            Some(before.user_id.as_str()),
            json!({
                "run_id": run_id,
                "experiment_id": before.experiment_id.to_string(),
                "old_status": before.status.as_str(),
                "new_status": s.as_str(),
            }),
        )?;
    }
    Ok(load::run_info(c, run_id)?.1)
}

/// Deletes (`restore == false`) or restores a run.
pub fn set_stage(c: &mut dyn Conn, run_id: &str, restore: bool) -> Result<(), StoreError> {
    let (rid, info) = load::run_info(c, run_id)?;
    if restore {
        let exp = experiments::get(c, info.experiment_id)?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(Error::InvalidState(format!(
                "Cannot restore run {run_id}: its experiment {} is deleted",
                exp.experiment_id
            ))
            .into());
        }
        c.exec(
            "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE rid = ?",
            &[rid.into()],
        )?;
    } else {
        if info.lifecycle_stage == LifecycleStage::Deleted {
            return Err(Error::InvalidState(format!(
                "The run {run_id} must be in the 'active' state. Current state is deleted."
            ))
            .into());
        }
        c.exec(
            "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE rid = ?",
            &[now_ms().into(), rid.into()],
        )?;
    }
    events::append(
        c,
        if restore {
            "run.restored"
        } else {
            "run.deleted"
        },
        &format!("run:{run_id}"),
        Some(info.user_id.as_str()),
        json!({ "run_id": run_id, "experiment_id": info.experiment_id.to_string() }),
    )
}

pub fn delete_tag(c: &mut dyn Conn, run_id: &str, key: &str) -> Result<(), StoreError> {
    let rid = load::active_rid(c, run_id)?;
    let n = c.exec(
        "DELETE FROM run_tags WHERE rid = ? AND key = ?",
        &[rid.into(), key.into()],
    )?;
    if n == 0 {
        return Err(
            Error::not_found(format!("No tag with name: {key} in run with id {run_id}")).into(),
        );
    }
    Ok(())
}

pub fn search(c: &mut dyn Conn, q: &RunSearch) -> Result<Page<Run>, StoreError> {
    if q.experiment_ids.is_empty() {
        return Ok(Page {
            items: Vec::new(),
            next_offset: None,
        });
    }
    if let ([experiment_id], Some(first)) = (q.experiment_ids.as_slice(), q.order_by.first())
        && first.ident.entity == Entity::Metric
    {
        return search_by_metric(c, q, *experiment_id);
    }
    let order = search_sql::run_order(&q.order_by)?;
    let filter = search_sql::run_filter(c.dialect(), &q.filter)?;
    let mut params: Vec<SqlValue> = order.params;
    params.extend(q.experiment_ids.iter().map(|&e| SqlValue::from(e)));
    let mut conds = vec![
        format!(
            "r.experiment_id IN ({})",
            placeholders(q.experiment_ids.len())
        ),
        format!("r.{}", experiments::stage_cond(q.view)).replace("r.1 = 1", "1 = 1"),
    ];
    if !filter.sql.is_empty() {
        conds.push(filter.sql);
        params.extend(filter.params);
    }
    params.push((q.max_results as i64 + 1).into());
    params.push((q.offset as i64).into());
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs r{} WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
        order.joins,
        conds.join(" AND "),
        order.sql
    );
    let mut infos = c
        .query(&sql, &params)?
        .into_iter()
        .map(load::decode_info)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut infos, q.max_results, q.offset);
    let items = load::complete(c, infos)?;
    Ok(Page { items, next_offset })
}

/// One part of a result in metric order: the runs with a number for the
/// metric, then with NaN, then without the metric (MLflow's order).
#[derive(Clone, Copy, PartialEq, Eq)]
enum MetricSegment {
    Numbers,
    NaN,
    Missing,
}

/// Runs of one experiment ordered by a metric first. Instead of joining and
/// sorting every run of the experiment, each segment is read in index order
/// from `latest_metrics (experiment_id, key, is_nan, value)` and stops after
/// one page, so a first page costs about the same at 100 runs and at 100k.
fn search_by_metric(
    c: &mut dyn Conn,
    q: &RunSearch,
    experiment_id: i64,
) -> Result<Page<Run>, StoreError> {
    let first = &q.order_by[0];
    let rest = search_sql::run_order(&q.order_by[1..])?;
    let filter = search_sql::run_filter(c.dialect(), &q.filter)?;
    let stage = format!("r.{}", experiments::stage_cond(q.view)).replace("r.1 = 1", "1 = 1");
    let dir = if first.ascending { "ASC" } else { "DESC" };
    let mut infos = Vec::new();
    let mut need = q.max_results + 1;
    let mut skip = q.offset;
    let col = search_sql::metric_column(first.ident.aggregate);
    for segment in [
        MetricSegment::Numbers,
        MetricSegment::NaN,
        MetricSegment::Missing,
    ] {
        if need == 0 {
            break;
        }
        let mut params: Vec<SqlValue> = rest.params.clone();
        params.push(experiment_id.into());
        params.push(first.ident.key.as_str().into());
        let (from, cond, order) = if segment == MetricSegment::Missing {
            (
                "runs r",
                "r.experiment_id = ? AND NOT EXISTS (SELECT 1 FROM latest_metrics fm \
                 WHERE fm.rid = r.rid AND fm.key = ?)"
                    .to_string(),
                rest.sql.clone(),
            )
        } else {
            let which = if segment == MetricSegment::NaN {
                col.nan
            } else {
                col.number
            };
            (
                "latest_metrics fm CROSS JOIN runs r",
                format!("fm.experiment_id = ? AND fm.key = ? AND fm.{which} AND r.rid = fm.rid"),
                format!("fm.{} {dir}, {}", col.value, rest.sql),
            )
        };
        let mut conds = vec![cond, stage.clone()];
        if !filter.sql.is_empty() {
            conds.push(filter.sql.clone());
            params.extend(filter.params.iter().cloned());
        }
        let base = format!("FROM {from}{} WHERE {}", rest.joins, conds.join(" AND "));
        let mut page_params = params.clone();
        page_params.push((need as i64).into());
        page_params.push((skip as i64).into());
        let sql = format!("SELECT {RUN_COLUMNS} {base} ORDER BY {order} LIMIT ? OFFSET ?");
        let rows = c.query(&sql, &page_params)?;
        if rows.is_empty() && skip > 0 {
            // The whole segment lies before the page: skip past it.
            let counted = c.query(&format!("SELECT COUNT(*) {base}"), &params)?;
            let n = match counted.first().and_then(|r| r.first()) {
                Some(v) => v.int()?,
                None => 0,
            };
            skip = skip.saturating_sub(n.max(0) as u64);
        } else {
            skip = 0;
        }
        need -= rows.len() as u64;
        for row in rows {
            infos.push(load::decode_info(row)?);
        }
    }
    let next_offset = page_rest(&mut infos, q.max_results, q.offset);
    let items = load::complete(c, infos)?;
    Ok(Page { items, next_offset })
}

/// The distinct keys of one kind over an experiment's runs, sorted. Metrics
/// come from `latest_metrics` by its `(experiment_id, key, …)` index; params
/// and tags through the experiment's runs.
pub fn experiment_keys(
    c: &mut dyn Conn,
    experiment_id: i64,
    kind: crate::store::RunKeyKind,
    limit: u64,
) -> Result<Vec<String>, StoreError> {
    use crate::store::RunKeyKind;
    experiments::get(c, experiment_id)?;
    let sql = match kind {
        RunKeyKind::Metrics => {
            "SELECT DISTINCT key FROM latest_metrics WHERE experiment_id = ? ORDER BY key LIMIT ?"
        }
        RunKeyKind::Params => {
            "SELECT DISTINCT p.key FROM params p JOIN runs r ON r.rid = p.rid \
             WHERE r.experiment_id = ? ORDER BY p.key LIMIT ?"
        }
        RunKeyKind::Tags => {
            "SELECT DISTINCT t.key FROM run_tags t JOIN runs r ON r.rid = t.rid \
             WHERE r.experiment_id = ? ORDER BY t.key LIMIT ?"
        }
    };
    c.query(sql, &[experiment_id.into(), (limit as i64).into()])?
        .into_iter()
        .map(|row| {
            row.into_iter()
                .next()
                .ok_or_else(|| StoreError::Corrupt("a key row without its key".into()))?
                .text()
        })
        .collect()
}
