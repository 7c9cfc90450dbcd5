//! Experiments: create, read, search, rename, lifecycle and tags.

use sextant_core::Error;
use sextant_core::entities::{Experiment, LifecycleStage, Page, Tag, ViewType};
use sextant_core::validation;

use serde_json::json;

use super::{child_uri, events, now_ms};
use crate::StoreError;
use crate::backend::{Conn, Row, SqlValue, placeholders};
use crate::search_sql;
use crate::store::ExperimentSearch;

const COLUMNS: &str = "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

fn not_found(id: i64) -> StoreError {
    Error::not_found(format!("No Experiment with id={id} exists")).into()
}

fn decode(row: Row) -> Result<Experiment, StoreError> {
    let mut it = row.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| StoreError::Corrupt("short experiment row".into()))
    };
    Ok(Experiment {
        experiment_id: next()?.int()?,
        name: next()?.text()?,
        artifact_location: next()?.text()?,
        lifecycle_stage: next()?.text()?.parse()?,
        creation_time: next()?.int()?,
        last_update_time: next()?.int()?,
        tags: Vec::new(),
    })
}

/// Fills in the tags of `experiments` with one query.
fn attach_tags(c: &mut dyn Conn, experiments: &mut [Experiment]) -> Result<(), StoreError> {
    if experiments.is_empty() {
        return Ok(());
    }
    let ids: Vec<SqlValue> = experiments.iter().map(|e| e.experiment_id.into()).collect();
    let sql = format!(
        "SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ({}) ORDER BY key",
        placeholders(ids.len())
    );
    for row in c.query(&sql, &ids)? {
        let mut it = row.into_iter();
        let (Some(id), Some(k), Some(v)) = (it.next(), it.next(), it.next()) else {
            return Err(StoreError::Corrupt("short tag row".into()));
        };
        let id = id.int()?;
        if let Some(e) = experiments.iter_mut().find(|e| e.experiment_id == id) {
            e.tags.push(Tag::new(k.text()?, v.text()?));
        }
    }
    Ok(())
}

fn load_where(
    c: &mut dyn Conn,
    cond: &str,
    params: &[SqlValue],
) -> Result<Option<Experiment>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM experiments e WHERE {cond}");
    let Some(row) = c.query(&sql, params)?.into_iter().next() else {
        return Ok(None);
    };
    let mut exp = [decode(row)?];
    attach_tags(c, &mut exp)?;
    let [e] = exp;
    Ok(Some(e))
}

pub fn get(c: &mut dyn Conn, id: i64) -> Result<Experiment, StoreError> {
    load_where(c, "e.experiment_id = ?", &[id.into()])?.ok_or_else(|| not_found(id))
}

pub fn get_by_name(c: &mut dyn Conn, name: &str) -> Result<Experiment, StoreError> {
    load_where(c, "e.name = ?", &[name.into()])?.ok_or_else(|| {
        Error::not_found(format!("Could not find experiment with name '{name}'")).into()
    })
}

/// The experiment, which must be active for writes.
pub fn active(c: &mut dyn Conn, id: i64) -> Result<Experiment, StoreError> {
    let e = get(c, id)?;
    if e.lifecycle_stage != LifecycleStage::Active {
        // MLflow's `_check_experiment_is_active` answers INVALID_PARAMETER_VALUE.
        return Err(Error::invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is deleted."
        ))
        .into());
    }
    Ok(e)
}

fn upsert_tag(c: &mut dyn Conn, id: i64, tag: &Tag) -> Result<(), StoreError> {
    validation::validate_experiment_tag(&tag.key, &tag.value)?;
    c.exec(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        &[
            id.into(),
            tag.key.as_str().into(),
            tag.value.as_str().into(),
        ],
    )?;
    Ok(())
}

pub fn create(
    c: &mut dyn Conn,
    root: &str,
    name: &str,
    artifact_location: Option<&str>,
    tags: &[Tag],
) -> Result<i64, StoreError> {
    validation::validate_experiment_name(name)?;
    if let Some(loc) = artifact_location {
        validation::validate_artifact_location(loc)?;
    }
    let exists = c.query("SELECT 1 FROM experiments WHERE name = ?", &[name.into()])?;
    if !exists.is_empty() {
        return Err(
            Error::AlreadyExists(format!("Experiment(name={name}) already exists.")).into(),
        );
    }
    let now = now_ms();
    let rows = c.query(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
         VALUES (?, '', 'active', ?, ?) RETURNING experiment_id",
        &[name.into(), now.into(), now.into()],
    )?;
    let id = rows
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))?
        .int()?;
    let location = match artifact_location {
        Some(l) if !l.is_empty() => l.to_string(),
        _ => child_uri(root, &id.to_string()),
    };
    c.exec(
        "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
        &[location.into(), id.into()],
    )?;
    for tag in tags {
        upsert_tag(c, id, tag)?;
    }
    events::append(
        c,
        "experiment.created",
        &subject(id),
        None,
        json!({ "experiment_id": id.to_string(), "name": name }),
    )?;
    Ok(id)
}

fn subject(id: i64) -> String {
    format!("experiment:{id}")
}

pub fn search(c: &mut dyn Conn, q: &ExperimentSearch) -> Result<Page<Experiment>, StoreError> {
    let filter = search_sql::experiment_filter(c.dialect(), &q.filter)?;
    let order = search_sql::experiment_order(&q.order_by)?;
    let mut params = Vec::new();
    let mut conds = vec![stage_cond(q.view).to_string()];
    if !filter.sql.is_empty() {
        conds.push(filter.sql);
        params.extend(filter.params);
    }
    params.push((q.max_results as i64 + 1).into());
    params.push((q.offset as i64).into());
    let sql = format!(
        "SELECT {COLUMNS} FROM experiments e WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
        conds.join(" AND "),
        order.sql
    );
    let mut items = c
        .query(&sql, &params)?
        .into_iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut items, q.max_results, q.offset);
    attach_tags(c, &mut items)?;
    Ok(Page { items, next_offset })
}

/// A SQL condition selecting the stages a view admits (alias-free column name).
pub fn stage_cond(view: ViewType) -> &'static str {
    match view {
        ViewType::ActiveOnly => "lifecycle_stage = 'active'",
        ViewType::DeletedOnly => "lifecycle_stage = 'deleted'",
        ViewType::All => "1 = 1",
    }
}

/// Truncates a page fetched with one extra row and returns the next offset, if any.
pub fn page_rest<T>(items: &mut Vec<T>, max: u64, offset: u64) -> Option<u64> {
    if items.len() as u64 > max {
        items.truncate(max as usize);
        Some(offset + max)
    } else {
        None
    }
}

pub fn rename(c: &mut dyn Conn, id: i64, new_name: &str) -> Result<(), StoreError> {
    validation::validate_experiment_name(new_name)?;
    let old = get(c, id)?;
    if old.lifecycle_stage != LifecycleStage::Active {
        return Err(Error::InvalidState("Cannot rename a non-active experiment.".into()).into());
    }
    let taken = c.query(
        "SELECT 1 FROM experiments WHERE name = ? AND experiment_id != ?",
        &[new_name.into(), id.into()],
    )?;
    if !taken.is_empty() {
        return Err(
            Error::AlreadyExists(format!("Experiment(name={new_name}) already exists.")).into(),
        );
    }
    c.exec(
        "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
        &[new_name.into(), now_ms().into(), id.into()],
    )?;
    if old.name != new_name {
        events::append(
            c,
            "experiment.renamed",
            &subject(id),
            None,
            json!({ "experiment_id": id.to_string(), "old_name": old.name, "new_name": new_name }),
        )?;
    }
    Ok(())
}

/// Deletes (`restore == false`) or restores an experiment with its runs.
pub fn set_stage(c: &mut dyn Conn, id: i64, restore: bool) -> Result<(), StoreError> {
    let e = get(c, id)?;
    let now = now_ms();
    if restore {
        if e.lifecycle_stage != LifecycleStage::Deleted {
            return Err(Error::InvalidState(format!(
                "Cannot restore an active experiment. Experiment id: {id}"
            ))
            .into());
        }
        c.exec(
            "UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? WHERE experiment_id = ?",
            &[now.into(), id.into()],
        )?;
        c.exec(
            "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE experiment_id = ?",
            &[id.into()],
        )?;
    } else {
        if id == 0 {
            return Err(Error::invalid("Cannot delete the default experiment '0'. This is an internally reserved experiment.").into());
        }
        if e.lifecycle_stage == LifecycleStage::Deleted {
            return Err(Error::InvalidState(format!(
                "The experiment {id} must be in the 'active' state. Current state is deleted."
            ))
            .into());
        }
        c.exec(
            "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? WHERE experiment_id = ?",
            &[now.into(), id.into()],
        )?;
        c.exec(
            "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE experiment_id = ? AND lifecycle_stage = 'active'",
            &[now.into(), id.into()],
        )?;
    }
    let kind = if restore {
        "experiment.restored"
    } else {
        "experiment.deleted"
    };
    events::append(
        c,
        kind,
        &subject(id),
        None,
        json!({ "experiment_id": id.to_string() }),
    )
}

pub fn set_tag(c: &mut dyn Conn, id: i64, tag: &Tag) -> Result<(), StoreError> {
    active(c, id)?;
    upsert_tag(c, id, tag)
}

pub fn delete_tag(c: &mut dyn Conn, id: i64, key: &str) -> Result<(), StoreError> {
    active(c, id)?;
    let n = c.exec(
        "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
        &[id.into(), key.into()],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "No tag with name: {key} in experiment with id {id}"
        ))
        .into());
    }
    Ok(())
}
