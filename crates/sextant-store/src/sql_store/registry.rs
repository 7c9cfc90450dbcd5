//! Registered models: create, read, rename, update, delete, search, tags
//! and aliases; and the loading of versions shared with `versions.rs`.
//!
//! Semantics and messages follow MLflow's SQL registry store. A deleted
//! version stays as a row in stage `Deleted_Internal` and is hidden from
//! every read, so version numbers are never reused.

use std::collections::HashMap;

use serde_json::json;
use sextant_core::Error;
use sextant_core::entities::{Page, Tag};
use sextant_core::registry::{
    Alias, Approval, ApprovalSettings, ApprovalSettingsUpdate, ApprovalStatus, ModelVersion,
    ModelVersionStatus, RegisteredModel, Stage,
};
use sextant_core::validation;

use super::experiments::page_rest;
use super::{events, now_ms};
use crate::StoreError;
use crate::backend::{Conn, Row, SqlValue, placeholders};
use crate::search_sql::{self, Registry};
use crate::store::RegisteredModelSearch;

/// The stage MLflow gives deleted versions; such rows are never shown.
pub const DELETED_STAGE: &str = "Deleted_Internal";

/// MLflow's `SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD`.
const MAX_MODELS_PER_PAGE: u64 = 1000;

/// Pairs per `(name, version)` lookup statement, well under every
/// backend's bound-parameter limit.
const CHUNK: usize = 400;

const RM_COLUMNS: &str = "rm.name, rm.description, rm.user_id, rm.creation_timestamp, \
     rm.last_updated_timestamp, rm.require_distinct_approver, rm.allow_pipeline_approval";

pub const MV_COLUMNS: &str = "mv.name, mv.version, mv.source, mv.storage_location, mv.run_id, \
     mv.model_id, mv.run_link, mv.description, mv.user_id, mv.current_stage, mv.status, \
     mv.status_message, mv.approval_status, mv.approval_actor, mv.approval_time, \
     mv.approval_comment, mv.creation_timestamp, mv.last_updated_timestamp";

pub fn model_not_found(name: &str) -> StoreError {
    Error::not_found(format!("Registered Model with name={name} not found")).into()
}

pub fn version_not_found(name: &str, version: i64) -> StoreError {
    Error::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
    .into()
}

pub fn subject(name: &str) -> String {
    format!("registered_model:{name}")
}

fn decode_model(row: Row) -> Result<RegisteredModel, StoreError> {
    let [
        name,
        description,
        user_id,
        created,
        updated,
        distinct_approver,
        pipeline_approval,
    ]: [SqlValue; 7] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short registered model row".into()))?;
    Ok(RegisteredModel {
        name: name.text()?,
        description: description.opt_text()?,
        user_id: user_id.opt_text()?,
        creation_timestamp: created.int()?,
        last_updated_timestamp: updated.int()?,
        approval_settings: ApprovalSettings {
            require_distinct_approver: distinct_approver.int()? != 0,
            allow_pipeline_approval: pipeline_approval.int()? != 0,
        },
        tags: Vec::new(),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    })
}

/// Decodes a row of [`MV_COLUMNS`] (tags and aliases left empty).
pub fn decode_version(row: Row) -> Result<ModelVersion, StoreError> {
    let [
        name,
        version,
        source,
        storage_location,
        run_id,
        model_id,
        run_link,
        description,
        user_id,
        stage,
        status,
        status_message,
        approval_status,
        approval_actor,
        approval_time,
        approval_comment,
        created,
        updated,
    ]: [SqlValue; 18] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short model version row".into()))?;
    let stage = stage.text()?;
    let status = status.text()?;
    Ok(ModelVersion {
        name: name.text()?,
        version: version.int()?,
        source: source.text()?,
        storage_location: storage_location.text()?,
        run_id: run_id.opt_text()?,
        model_id: model_id.opt_text()?,
        run_link: run_link.opt_text()?,
        description: description.opt_text()?,
        user_id: user_id.opt_text()?,
        current_stage: Stage::parse(&stage)
            .map_err(|_| StoreError::Corrupt(format!("model version stage {stage}")))?,
        status: ModelVersionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("model version status {status}")))?,
        status_message: status_message.opt_text()?,
        approval: Approval {
            status: ApprovalStatus::parse(&approval_status.text()?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            actor: approval_actor.opt_text()?,
            time: approval_time.opt_int()?,
            comment: approval_comment.opt_text()?,
        },
        creation_timestamp: created.int()?,
        last_updated_timestamp: updated.int()?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

/// Fills in the tags and aliases of `versions`, a few hundred at a time.
pub fn attach_version_details(
    c: &mut dyn Conn,
    versions: &mut [ModelVersion],
) -> Result<(), StoreError> {
    let index: HashMap<(String, i64), usize> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| ((v.name.clone(), v.version), i))
        .collect();
    let keys: Vec<(String, i64)> = versions
        .iter()
        .map(|v| (v.name.clone(), v.version))
        .collect();
    for chunk in keys.chunks(CHUNK) {
        let cond = vec!["(name = ? AND version = ?)"; chunk.len()].join(" OR ");
        let params: Vec<SqlValue> = chunk
            .iter()
            .flat_map(|(n, v)| [SqlValue::from(n.as_str()), (*v).into()])
            .collect();
        let sql = format!(
            "SELECT name, version, key, value FROM model_version_tags WHERE {cond} ORDER BY key"
        );
        for row in c.query(&sql, &params)? {
            let [name, version, key, value]: [SqlValue; 4] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short version tag row".into()))?;
            if let Some(&i) = index.get(&(name.text()?, version.int()?)) {
                versions[i].tags.push(Tag::new(key.text()?, value.text()?));
            }
        }
        let sql = format!(
            "SELECT name, version, alias FROM registered_model_aliases WHERE {cond} ORDER BY alias"
        );
        for row in c.query(&sql, &params)? {
            let [name, version, alias]: [SqlValue; 3] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short alias row".into()))?;
            if let Some(&i) = index.get(&(name.text()?, version.int()?)) {
                versions[i].aliases.push(alias.text()?);
            }
        }
    }
    Ok(())
}

/// The newest live version in each stage of the model `name`, in MLflow's
/// order (stages by their lowest live version), with tags and aliases.
pub fn latest_versions(c: &mut dyn Conn, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
    let sql = format!(
        "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.name = ? AND mv.current_stage != ? \
         AND mv.version = (SELECT MAX(v2.version) FROM model_versions v2 \
         WHERE v2.name = mv.name AND v2.current_stage = mv.current_stage) \
         ORDER BY (SELECT MIN(v3.version) FROM model_versions v3 \
         WHERE v3.name = mv.name AND v3.current_stage = mv.current_stage)"
    );
    let mut versions = c
        .query(&sql, &[name.into(), DELETED_STAGE.into()])?
        .into_iter()
        .map(decode_version)
        .collect::<Result<Vec<_>, _>>()?;
    attach_version_details(c, &mut versions)?;
    Ok(versions)
}

/// Fills in tags, aliases (sorted) and latest versions of `models`.
fn complete(c: &mut dyn Conn, models: &mut [RegisteredModel]) -> Result<(), StoreError> {
    if models.is_empty() {
        return Ok(());
    }
    let index: HashMap<String, usize> = models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.clone(), i))
        .collect();
    let names: Vec<SqlValue> = models.iter().map(|m| m.name.as_str().into()).collect();
    for chunk in names.chunks(CHUNK) {
        let ph = placeholders(chunk.len());
        let sql = format!(
            "SELECT name, key, value FROM registered_model_tags WHERE name IN ({ph}) ORDER BY key"
        );
        for row in c.query(&sql, chunk)? {
            let [name, key, value]: [SqlValue; 3] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short model tag row".into()))?;
            if let Some(&i) = index.get(&name.text()?) {
                models[i].tags.push(Tag::new(key.text()?, value.text()?));
            }
        }
        let sql = format!(
            "SELECT name, alias, version FROM registered_model_aliases WHERE name IN ({ph}) \
             ORDER BY alias"
        );
        for row in c.query(&sql, chunk)? {
            let [name, alias, version]: [SqlValue; 3] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short alias row".into()))?;
            if let Some(&i) = index.get(&name.text()?) {
                models[i].aliases.push(Alias {
                    alias: alias.text()?,
                    version: version.int()?,
                });
            }
        }
    }
    for m in models.iter_mut() {
        m.latest_versions = latest_versions(c, &m.name)?;
    }
    Ok(())
}

/// Fails unless the model exists.
pub fn require_model(c: &mut dyn Conn, name: &str) -> Result<(), StoreError> {
    validation::validate_model_name(name)?;
    let rows = c.query(
        "SELECT 1 FROM registered_models WHERE name = ?",
        &[name.into()],
    )?;
    if rows.is_empty() {
        return Err(model_not_found(name));
    }
    Ok(())
}

pub fn get(c: &mut dyn Conn, name: &str) -> Result<RegisteredModel, StoreError> {
    validation::validate_model_name(name)?;
    let sql = format!("SELECT {RM_COLUMNS} FROM registered_models rm WHERE rm.name = ?");
    let row = c
        .query(&sql, &[name.into()])?
        .into_iter()
        .next()
        .ok_or_else(|| model_not_found(name))?;
    let mut models = [decode_model(row)?];
    complete(c, &mut models)?;
    let [m] = models;
    Ok(m)
}

fn upsert_tag(c: &mut dyn Conn, name: &str, tag: &Tag) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?) \
         ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
        &[
            name.into(),
            tag.key.as_str().into(),
            tag.value.as_str().into(),
        ],
    )?;
    Ok(())
}

pub fn create(
    c: &mut dyn Conn,
    name: &str,
    description: Option<&str>,
    tags: &[Tag],
) -> Result<RegisteredModel, StoreError> {
    validation::validate_model_name(name)?;
    for t in tags {
        validation::validate_registered_model_tag(&t.key, &t.value)?;
    }
    let exists = c.query(
        "SELECT 1 FROM registered_models WHERE name = ?",
        &[name.into()],
    )?;
    if !exists.is_empty() {
        return Err(Error::AlreadyExists(format!(
            "Registered Model (name={name}) already exists."
        ))
        .into());
    }
    let now = now_ms();
    c.exec(
        "INSERT INTO registered_models (name, description, user_id, creation_timestamp, \
         last_updated_timestamp) VALUES (?, ?, NULL, ?, ?)",
        &[name.into(), description.into(), now.into(), now.into()],
    )?;
    for t in tags {
        upsert_tag(c, name, t)?;
    }
    events::append(
        c,
        "registered_model.created",
        &subject(name),
        None,
        json!({ "name": name }),
    )?;
    get(c, name)
}

pub fn rename(c: &mut dyn Conn, name: &str, new_name: &str) -> Result<RegisteredModel, StoreError> {
    validation::validate_model_new_name(new_name)?;
    require_model(c, name)?;
    let now = now_ms();
    if new_name != name {
        let taken = c.query(
            "SELECT 1 FROM registered_models WHERE name = ?",
            &[new_name.into()],
        )?;
        if !taken.is_empty() {
            return Err(Error::AlreadyExists(format!(
                "Registered Model (name={new_name}) already exists."
            ))
            .into());
        }
    }
    // Versions, their tags, model tags and aliases follow by ON UPDATE CASCADE.
    c.exec(
        "UPDATE registered_models SET name = ?, last_updated_timestamp = ? WHERE name = ?",
        &[new_name.into(), now.into(), name.into()],
    )?;
    c.exec(
        "UPDATE model_versions SET last_updated_timestamp = ? WHERE name = ?",
        &[now.into(), new_name.into()],
    )?;
    if new_name != name {
        events::append(
            c,
            "registered_model.renamed",
            &subject(new_name),
            None,
            json!({ "old_name": name, "new_name": new_name }),
        )?;
    }
    get(c, new_name)
}

pub fn update(
    c: &mut dyn Conn,
    name: &str,
    description: Option<&str>,
) -> Result<RegisteredModel, StoreError> {
    require_model(c, name)?;
    c.exec(
        "UPDATE registered_models SET description = ?, last_updated_timestamp = ? WHERE name = ?",
        &[description.into(), now_ms().into(), name.into()],
    )?;
    events::append(
        c,
        "registered_model.updated",
        &subject(name),
        None,
        json!({ "name": name, "description": description }),
    )?;
    get(c, name)
}

/// Changes the settings `update` names; an empty update changes nothing
/// and appends no event.
pub fn set_approval_settings(
    c: &mut dyn Conn,
    name: &str,
    update: &ApprovalSettingsUpdate,
) -> Result<RegisteredModel, StoreError> {
    // Under the row lock a decision's four-eyes check takes too: two
    // changes of different settings do not undo each other.
    let before = super::four_eyes::settings_locked(c, name)?;
    let after = ApprovalSettings {
        require_distinct_approver: update
            .require_distinct_approver
            .unwrap_or(before.require_distinct_approver),
        allow_pipeline_approval: update
            .allow_pipeline_approval
            .unwrap_or(before.allow_pipeline_approval),
    };
    if after != before {
        c.exec(
            "UPDATE registered_models SET require_distinct_approver = ?, \
             allow_pipeline_approval = ?, last_updated_timestamp = ? WHERE name = ?",
            &[
                i64::from(after.require_distinct_approver).into(),
                i64::from(after.allow_pipeline_approval).into(),
                now_ms().into(),
                name.into(),
            ],
        )?;
        events::append(
            c,
            "registered_model.approval_settings_updated",
            &subject(name),
            None,
            json!({
                "name": name,
                "require_distinct_approver": after.require_distinct_approver,
                "allow_pipeline_approval": after.allow_pipeline_approval,
            }),
        )?;
    }
    get(c, name)
}

pub fn delete(c: &mut dyn Conn, name: &str) -> Result<(), StoreError> {
    require_model(c, name)?;
    for table in [
        "registered_model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ] {
        c.exec(
            &format!("DELETE FROM {table} WHERE name = ?"),
            &[name.into()],
        )?;
    }
    events::append(
        c,
        "registered_model.deleted",
        &subject(name),
        None,
        json!({ "name": name }),
    )
}

/// Checks a page size against MLflow's bounds.
pub fn check_max_results(max_results: u64, limit: u64) -> Result<(), StoreError> {
    if max_results == 0 {
        return Err(Error::invalid(
            "Invalid value for max_results. It must be a positive integer, but got 0",
        )
        .into());
    }
    if max_results > limit {
        return Err(Error::invalid(format!(
            "Invalid value for request parameter max_results. It must be at most {limit}, but \
             got value {max_results}"
        ))
        .into());
    }
    Ok(())
}

pub fn search(
    c: &mut dyn Conn,
    q: &RegisteredModelSearch,
) -> Result<Page<RegisteredModel>, StoreError> {
    check_max_results(q.max_results, MAX_MODELS_PER_PAGE)?;
    let d = c.dialect();
    let filter = search_sql::registry_filter(d, Registry::Models, &q.filter)?;
    let order = search_sql::registry_order(d, Registry::Models, &q.order_by)?;
    let mut params = filter.params;
    let cond = if filter.sql.is_empty() {
        "1 = 1".to_string()
    } else {
        filter.sql
    };
    params.push((q.max_results as i64 + 1).into());
    params.push((q.offset as i64).into());
    let sql = format!(
        "SELECT {RM_COLUMNS} FROM registered_models rm WHERE {cond} ORDER BY {order} \
         LIMIT ? OFFSET ?"
    );
    let mut items = c
        .query(&sql, &params)?
        .into_iter()
        .map(decode_model)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut items, q.max_results, q.offset);
    complete(c, &mut items)?;
    Ok(Page { items, next_offset })
}

pub fn set_tag(c: &mut dyn Conn, name: &str, tag: &Tag) -> Result<(), StoreError> {
    validation::validate_model_name(name)?;
    validation::validate_registered_model_tag(&tag.key, &tag.value)?;
    require_model(c, name)?;
    upsert_tag(c, name, tag)
}

pub fn delete_tag(c: &mut dyn Conn, name: &str, key: &str) -> Result<(), StoreError> {
    validation::validate_model_name(name)?;
    validation::validate_registry_tag_name(key)?;
    require_model(c, name)?;
    c.exec(
        "DELETE FROM registered_model_tags WHERE name = ? AND key = ?",
        &[name.into(), key.into()],
    )?;
    Ok(())
}

/// The live version `version` of `name`, without tags or aliases.
pub fn live_version(
    c: &mut dyn Conn,
    name: &str,
    version: i64,
) -> Result<ModelVersion, StoreError> {
    validation::validate_model_name(name)?;
    let sql = format!(
        "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.name = ? AND mv.version = ? \
         AND mv.current_stage != ?"
    );
    let row = c
        .query(&sql, &[name.into(), version.into(), DELETED_STAGE.into()])?
        .into_iter()
        .next()
        .ok_or_else(|| version_not_found(name, version))?;
    decode_version(row)
}

pub fn set_alias(
    c: &mut dyn Conn,
    name: &str,
    alias: &str,
    version: i64,
) -> Result<(), StoreError> {
    validation::validate_model_name(name)?;
    validation::validate_model_alias(alias)?;
    let target = live_version(c, name, version)?;
    let previous = c
        .query(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
            &[name.into(), alias.into()],
        )?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .map(|v| v.int())
        .transpose()?;
    if previous == Some(version) {
        return Ok(());
    }
    c.exec(
        "INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?) \
         ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        &[name.into(), alias.into(), version.into()],
    )?;
    events::append(
        c,
        "model_version.alias_set",
        &subject(name),
        target.user_id.as_deref(),
        json!({ "name": name, "alias": alias, "version": version, "previous_version": previous }),
    )
}

/// Removes the alias rows selected by `cond` and records one
/// `model_version.alias_deleted` event for each.
pub fn drop_aliases(
    c: &mut dyn Conn,
    name: &str,
    cond: &str,
    params: &[SqlValue],
    actor: Option<&str>,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = c.query(
        &format!("SELECT alias, version FROM registered_model_aliases WHERE {cond} ORDER BY alias"),
        params,
    )?;
    let mut removed = Vec::new();
    for row in rows {
        let [alias, version]: [SqlValue; 2] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("short alias row".into()))?;
        removed.push((alias.text()?, version.int()?));
    }
    c.exec(
        &format!("DELETE FROM registered_model_aliases WHERE {cond}"),
        params,
    )?;
    for (alias, version) in &removed {
        events::append(
            c,
            "model_version.alias_deleted",
            &subject(name),
            actor,
            json!({ "name": name, "alias": alias, "version": version }),
        )?;
    }
    Ok(removed)
}

pub fn delete_alias(c: &mut dyn Conn, name: &str, alias: &str) -> Result<(), StoreError> {
    validation::validate_model_name(name)?;
    validation::validate_model_alias_name(alias)?;
    require_model(c, name)?;
    drop_aliases(
        c,
        name,
        "name = ? AND alias = ?",
        &[name.into(), alias.into()],
        None,
    )?;
    Ok(())
}

pub fn version_by_alias(
    c: &mut dyn Conn,
    name: &str,
    alias: &str,
) -> Result<ModelVersion, StoreError> {
    validation::validate_model_name(name)?;
    validation::validate_model_alias_name(alias)?;
    let alias_not_found = || {
        StoreError::from(Error::invalid(format!(
            "Registered model alias {alias} not found."
        )))
    };
    let version = if alias.eq_ignore_ascii_case("latest") {
        require_model(c, name)?;
        c.query(
            "SELECT MAX(version) FROM model_versions WHERE name = ? AND current_stage != ?",
            &[name.into(), DELETED_STAGE.into()],
        )?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .map(|v| v.opt_int())
        .transpose()?
        .flatten()
    } else {
        c.query(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
            &[name.into(), alias.into()],
        )?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .map(|v| v.int())
        .transpose()?
    };
    let version = version.ok_or_else(alias_not_found)?;
    let mut v = [live_version(c, name, version)?];
    attach_version_details(c, &mut v)?;
    let [v] = v;
    Ok(v)
}
