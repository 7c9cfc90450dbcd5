//! [`ImportSink`] over Sextant's SQL schema: inserts that keep the source's
//! ids, skip what exists, and append no lifecycle events (see
//! [`crate::import`] for why).

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use sextant_core::Error;
use sextant_core::entities::{Metric, Tag};

use super::load::metric_value;
use super::logging::Latest;
use super::{Scheme, SqlStore, events, scheme};
use crate::StoreError;
use crate::backend::{Backend, Conn, Dialect, SqlValue, placeholders};
use crate::import::{
    ExperimentRecord, ImportSink, LoggedModelRecord, RegisteredModelRecord, RunRecord,
};
use crate::postgres::Postgres;
use crate::sqlite::Sqlite;

/// Opens a migrated store for importing (run [`crate::upgrade`] first).
pub fn open_import_sink(uri: &str, root: &str) -> Result<Box<dyn ImportSink>, StoreError> {
    match scheme(uri)? {
        Scheme::Sqlite => Ok(Box::new(SqlStore::checked(Sqlite::open(uri)?, root)?)),
        Scheme::Postgres => Ok(Box::new(SqlStore::checked(Postgres::open(uri)?, root)?)),
    }
}

/// Inserts `values` (rows of `width` values, one after another), keeping
/// rows that exist already.
fn insert_rows(
    c: &mut dyn Conn,
    head: &str,
    width: usize,
    values: &[SqlValue],
) -> Result<(), StoreError> {
    crate::backend::insert_values(c, head, "ON CONFLICT DO NOTHING", width, values)
}

/// `(owner, key, value)` rows for a tag-like table.
fn kv_rows(owner: &SqlValue, tags: &[Tag]) -> Vec<SqlValue> {
    tags.iter()
        .flat_map(|t| {
            [
                owner.clone(),
                t.key.as_str().into(),
                t.value.as_str().into(),
            ]
        })
        .collect()
}

fn exists(c: &mut dyn Conn, sql: &str, params: &[SqlValue]) -> Result<bool, StoreError> {
    Ok(!c.query(sql, params)?.is_empty())
}

fn import_experiment(c: &mut dyn Conn, e: &ExperimentRecord) -> Result<bool, StoreError> {
    let id = e.experiment_id;
    if exists(
        c,
        "SELECT 1 FROM experiments WHERE experiment_id = ?",
        &[id.into()],
    )? {
        return if id == 0 {
            adopt_default(c, e)
        } else {
            Ok(false)
        };
    }
    if let Some(row) = c
        .query(
            "SELECT experiment_id FROM experiments WHERE name = ?",
            &[e.name.as_str().into()],
        )?
        .into_iter()
        .next()
    {
        let other = row.into_iter().next().map_or(Ok(-1), |v| v.int())?;
        return Err(Error::AlreadyExists(format!(
            "experiment '{}' (id {id} in MLflow) exists in Sextant with id {other}; \
             rename one of them and import again",
            e.name
        ))
        .into());
    }
    c.exec(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, \
         creation_time, last_update_time) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            id.into(),
            e.name.as_str().into(),
            e.artifact_location.as_str().into(),
            e.lifecycle_stage.as_str().into(),
            e.creation_time.into(),
            e.last_update_time.into(),
        ],
    )?;
    insert_rows(
        c,
        "INSERT INTO experiment_tags (experiment_id, key, value)",
        3,
        &kv_rows(&id.into(), &e.tags),
    )?;
    if c.dialect() == Dialect::Postgres {
        // Ids came from MLflow, not from the sequence: move it past them so
        // the next experiment created in Sextant gets a fresh id.
        c.query(
            "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), \
             GREATEST(?, nextval(pg_get_serial_sequence('experiments', 'experiment_id')) - 1))",
            &[id.into()],
        )?;
    }
    Ok(true)
}

/// Gives Sextant's Default experiment (id 0, made by the first migration
/// rather than by anyone) the source's name, location, times and tags,
/// while it is still empty and untagged; true when that changed it.
fn adopt_default(c: &mut dyn Conn, e: &ExperimentRecord) -> Result<bool, StoreError> {
    let used = exists(c, "SELECT 1 FROM runs WHERE experiment_id = 0", &[])?
        || exists(
            c,
            "SELECT 1 FROM logged_models WHERE experiment_id = 0",
            &[],
        )?
        || exists(
            c,
            "SELECT 1 FROM experiment_tags WHERE experiment_id = 0",
            &[],
        )?;
    let name_taken = exists(
        c,
        "SELECT 1 FROM experiments WHERE name = ? AND experiment_id <> 0",
        &[e.name.as_str().into()],
    )?;
    if used || name_taken {
        return Ok(false);
    }
    let changed = c.exec(
        "UPDATE experiments SET name = ?, artifact_location = ?, lifecycle_stage = ?, \
         creation_time = ?, last_update_time = ? WHERE experiment_id = 0 AND NOT \
         (name = ? AND artifact_location = ? AND lifecycle_stage = ? AND creation_time = ? \
         AND last_update_time = ?)",
        &[
            e.name.as_str().into(),
            e.artifact_location.as_str().into(),
            e.lifecycle_stage.as_str().into(),
            e.creation_time.into(),
            e.last_update_time.into(),
            e.name.as_str().into(),
            e.artifact_location.as_str().into(),
            e.lifecycle_stage.as_str().into(),
            e.creation_time.into(),
            e.last_update_time.into(),
        ],
    )?;
    insert_rows(
        c,
        "INSERT INTO experiment_tags (experiment_id, key, value)",
        3,
        &kv_rows(&0.into(), &e.tags),
    )?;
    Ok(changed > 0 || !e.tags.is_empty())
}

fn metric_rows(rid: i64, metrics: &[Metric]) -> Vec<SqlValue> {
    metrics
        .iter()
        .flat_map(|m| {
            let (value, is_nan) = metric_value(m.value);
            [
                rid.into(),
                m.key.as_str().into(),
                m.timestamp.into(),
                m.step.into(),
                value.into(),
                is_nan.into(),
                m.model_id.as_deref().into(),
                m.dataset_name.as_deref().into(),
                m.dataset_digest.as_deref().into(),
            ]
        })
        .collect()
}

/// The source's latest values, each with the range and steps of its key's
/// history.
fn latest_rows(
    rid: i64,
    experiment_id: i64,
    latest: &[Metric],
    history: &[Metric],
) -> Vec<SqlValue> {
    let mut rows: HashMap<&str, Latest<'_>> = latest
        .iter()
        .map(|m| (m.key.as_str(), Latest::stored(experiment_id, m)))
        .collect();
    for m in history {
        if let Some(l) = rows.get_mut(m.key.as_str()) {
            l.include(m);
        }
    }
    let mut keys: Vec<&str> = rows.keys().copied().collect();
    keys.sort_unstable();
    keys.into_iter()
        .flat_map(|k| rows.get_mut(k).map(|l| l.row(rid, k)))
        .flatten()
        .collect()
}

/// Inserts one run; false when its id exists.
fn import_run(c: &mut dyn Conn, r: &RunRecord) -> Result<bool, StoreError> {
    let rows = c.query(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, \
         artifact_uri, lifecycle_stage, deleted_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (run_uuid) DO NOTHING RETURNING rid",
        &[
            r.run_id.as_str().into(),
            r.experiment_id.into(),
            r.name.as_str().into(),
            r.user_id.as_str().into(),
            r.status.as_str().into(),
            r.start_time.into(),
            r.end_time.into(),
            r.artifact_uri.as_str().into(),
            r.lifecycle_stage.as_str().into(),
            r.deleted_time.into(),
        ],
    )?;
    let Some(rid) = rows.first().and_then(|row| row.first()) else {
        return Ok(false);
    };
    let rid = rid.int()?;
    let owner = SqlValue::from(rid);
    insert_rows(
        c,
        "INSERT INTO params (rid, key, value)",
        3,
        &kv_rows(&owner, &r.params),
    )?;
    insert_rows(
        c,
        "INSERT INTO run_tags (rid, key, value)",
        3,
        &kv_rows(&owner, &r.tags),
    )?;
    insert_rows(
        c,
        "INSERT INTO metrics (rid, key, timestamp, step, value, is_nan, model_id, dataset_name, dataset_digest)",
        9,
        &metric_rows(rid, &r.metrics),
    )?;
    insert_rows(
        c,
        super::logging::LATEST_HEAD,
        super::logging::LATEST_TYPES.len(),
        &latest_rows(rid, r.experiment_id, &r.latest_metrics, &r.metrics),
    )?;
    for input in &r.datasets {
        let did = super::logging::link_dataset(c, rid, r.experiment_id, &input.dataset)?;
        let tags: Vec<SqlValue> = input
            .tags
            .iter()
            .flat_map(|t| {
                [
                    rid.into(),
                    did.into(),
                    t.key.as_str().into(),
                    t.value.as_str().into(),
                ]
            })
            .collect();
        insert_rows(
            c,
            "INSERT INTO run_input_tags (rid, dataset_id, key, value)",
            4,
            &tags,
        )?;
    }
    let inputs: Vec<SqlValue> = r
        .model_inputs
        .iter()
        .flat_map(|m| [rid.into(), m.as_str().into()])
        .collect();
    insert_rows(
        c,
        "INSERT INTO run_model_inputs (rid, model_id)",
        2,
        &inputs,
    )?;
    let outputs: Vec<SqlValue> = r
        .model_outputs
        .iter()
        .flat_map(|m| [rid.into(), m.model_id.as_str().into(), m.step.into()])
        .collect();
    insert_rows(
        c,
        "INSERT INTO run_model_outputs (rid, model_id, step)",
        3,
        &outputs,
    )?;
    Ok(true)
}

/// Inserts one logged model; false when its id exists.
fn import_logged_model(c: &mut dyn Conn, m: &LoggedModelRecord) -> Result<bool, StoreError> {
    let inserted = c.exec(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, status, \
         status_message, model_type, source_run_id, creation_timestamp, last_updated_timestamp, \
         lifecycle_stage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_id) DO NOTHING",
        &[
            m.model_id.as_str().into(),
            m.experiment_id.into(),
            m.name.as_str().into(),
            m.artifact_uri.as_str().into(),
            m.status.as_str().into(),
            m.status_message.as_deref().into(),
            m.model_type.as_deref().into(),
            m.source_run_id.as_deref().into(),
            m.creation_timestamp.into(),
            m.last_updated_timestamp.into(),
            m.lifecycle_stage.as_str().into(),
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    let owner = SqlValue::from(m.model_id.as_str());
    insert_rows(
        c,
        "INSERT INTO logged_model_params (model_id, key, value)",
        3,
        &kv_rows(&owner, &m.params),
    )?;
    insert_rows(
        c,
        "INSERT INTO logged_model_tags (model_id, key, value)",
        3,
        &kv_rows(&owner, &m.tags),
    )?;
    Ok(true)
}

fn import_registered_model(
    c: &mut dyn Conn,
    m: &RegisteredModelRecord,
    note: &str,
) -> Result<(bool, u64, u64), StoreError> {
    let name = SqlValue::from(m.name.as_str());
    let model_new = c.exec(
        "INSERT INTO registered_models (name, description, user_id, creation_timestamp, \
         last_updated_timestamp) VALUES (?, ?, NULL, ?, ?) ON CONFLICT (name) DO NOTHING",
        &[
            name.clone(),
            m.description.as_deref().into(),
            m.creation_timestamp.into(),
            m.last_updated_timestamp.into(),
        ],
    )? > 0;
    if model_new {
        insert_rows(
            c,
            "INSERT INTO registered_model_tags (name, key, value)",
            3,
            &kv_rows(&name, &m.tags),
        )?;
    }
    let mut versions = 0;
    for v in &m.versions {
        let inserted = c.exec(
            "INSERT INTO model_versions (name, version, source, storage_location, run_id, model_id, \
             run_link, description, user_id, current_stage, status, status_message, approval_status, \
             approval_actor, approval_time, approval_comment, creation_timestamp, \
             last_updated_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, \
             NULL, ?, ?, ?) ON CONFLICT (name, version) DO NOTHING",
            &[
                name.clone(),
                v.version.into(),
                v.source.as_str().into(),
                v.storage_location.as_str().into(),
                v.run_id.as_deref().into(),
                v.model_id.as_deref().into(),
                v.run_link.as_deref().into(),
                v.description.as_deref().into(),
                v.user_id.as_deref().into(),
                v.current_stage.as_str().into(),
                v.status.as_str().into(),
                v.status_message.as_deref().into(),
                note.into(),
                v.creation_timestamp.into(),
                v.last_updated_timestamp.into(),
            ],
        )?;
        if inserted == 0 {
            continue;
        }
        versions += 1;
        let tags: Vec<SqlValue> = v
            .tags
            .iter()
            .flat_map(|t| {
                [
                    name.clone(),
                    v.version.into(),
                    t.key.as_str().into(),
                    t.value.as_str().into(),
                ]
            })
            .collect();
        insert_rows(
            c,
            "INSERT INTO model_version_tags (name, version, key, value)",
            4,
            &tags,
        )?;
    }
    let mut aliases = 0;
    for (alias, version) in &m.aliases {
        aliases += c.exec(
            "INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?) \
             ON CONFLICT (name, alias) DO NOTHING",
            &[name.clone(), alias.as_str().into(), (*version).into()],
        )?;
    }
    Ok((model_new, versions, aliases))
}

impl<B: Backend> ImportSink for SqlStore<B> {
    fn import_experiment(&self, e: &ExperimentRecord) -> Result<bool, StoreError> {
        self.db.write(|c| import_experiment(c, e))
    }

    fn existing_runs(&self, run_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        if run_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let sql = format!(
            "SELECT run_uuid FROM runs WHERE run_uuid IN ({})",
            placeholders(run_ids.len())
        );
        let params: Vec<SqlValue> = run_ids.iter().map(SqlValue::from).collect();
        self.db.read(|c| {
            c.query(&sql, &params)?
                .into_iter()
                .map(|row| row.into_iter().next().unwrap_or(SqlValue::Null).text())
                .collect()
        })
    }

    fn import_runs(&self, runs: &[RunRecord]) -> Result<u64, StoreError> {
        self.db.write(|c| {
            let mut new = 0;
            for r in runs {
                new += u64::from(import_run(c, r)?);
            }
            Ok(new)
        })
    }

    fn import_logged_models(&self, models: &[LoggedModelRecord]) -> Result<u64, StoreError> {
        self.db.write(|c| {
            let mut new = 0;
            for m in models {
                new += u64::from(import_logged_model(c, m)?);
            }
            Ok(new)
        })
    }

    fn import_registered_model(
        &self,
        m: &RegisteredModelRecord,
        approval_note: &str,
    ) -> Result<(bool, u64, u64), StoreError> {
        self.db
            .write(|c| import_registered_model(c, m, approval_note))
    }

    fn record_import(&self, payload: Value) -> Result<(), StoreError> {
        self.db
            .write(|c| events::append(c, "import.completed", "import:mlflow", None, payload))
    }
}
