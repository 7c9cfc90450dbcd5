//! Model versions: create (with source resolution), read, update, soft
//! delete, search, tags, stage transitions and approval decisions.

use serde_json::json;
use sextant_core::Error;
use sextant_core::entities::{Page, Tag};
use sextant_core::registry::{
    Approval, ApprovalStatus, FourEyes, ModelVersion, NewModelVersion, Stage, pipeline_approval_off,
};
use sextant_core::validation;

use super::experiments::page_rest;
use super::registry::{
    self, DELETED_STAGE, MV_COLUMNS, attach_version_details, check_max_results, live_version,
};
use super::{events, four_eyes, logged_models, now_ms, sources};
use crate::StoreError;
use crate::backend::{Conn, SqlValue};
use crate::search_sql::{self, Registry};
use crate::store::ModelVersionSearch;

/// MLflow's `SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD`.
const MAX_VERSIONS_PER_PAGE: u64 = 200_000;

/// The logged-model tag listing the versions registered from it.
const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

fn subject(name: &str, version: i64) -> String {
    format!("model_version:{name}/{version}")
}

fn approval_kind(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Approved => "model_version.approved",
        ApprovalStatus::Rejected => "model_version.rejected",
        ApprovalStatus::Pending => "model_version.approval_reset",
    }
}

pub fn get(c: &mut dyn Conn, name: &str, version: i64) -> Result<ModelVersion, StoreError> {
    let mut v = [live_version(c, name, version)?];
    attach_version_details(c, &mut v)?;
    let [v] = v;
    Ok(v)
}

/// Resolves `models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>`
/// to (storage location, run id, model id) of that version.
fn resolve_reference(
    c: &mut dyn Conn,
    reference: &str,
) -> Result<(String, Option<String>, Option<String>), StoreError> {
    let v = if let Some((name, alias)) = reference.split_once('@') {
        registry::version_by_alias(c, name, alias)?
    } else if let Some((name, which)) = reference.split_once('/') {
        if let Ok(n) = which.parse::<i64>() {
            live_version(c, name, n)?
        } else if which.eq_ignore_ascii_case("latest") {
            registry::version_by_alias(c, name, "latest")?
        } else {
            let stage = Stage::parse(which)?;
            registry::require_model(c, name)?;
            registry::latest_versions(c, name)?
                .into_iter()
                .find(|v| v.current_stage == stage)
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "No versions of model with name '{name}' and stage '{stage}' found"
                    ))
                })?
        }
    } else {
        return Err(Error::invalid(format!(
            "Invalid model URI 'models:/{reference}'. Expected models:/<name>/<version>, \
             models:/<name>@<alias> or models:/<model_id>."
        ))
        .into());
    };
    Ok((v.storage_location, v.run_id, v.model_id))
}

/// Appends `{"name": …, "version": …}` to a logged model's
/// `mlflow.modelVersions` tag, written as Python's `json.dumps` writes it.
fn record_on_logged_model(
    c: &mut dyn Conn,
    model_id: &str,
    name: &str,
    version: i64,
) -> Result<(), StoreError> {
    let model = logged_models::get(c, model_id, false)?;
    let existing = model
        .tags
        .iter()
        .find(|t| t.key == MODEL_VERSIONS_TAG)
        .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t.value).ok())
        .unwrap_or_default();
    let mut items: Vec<String> = existing
        .iter()
        .map(
            |e| match (e.get("name").and_then(|n| n.as_str()), e.get("version")) {
                (Some(n), Some(v)) if v.is_i64() => {
                    format!(
                        "{{\"name\": {}, \"version\": {v}}}",
                        validation::json_string(n)
                    )
                }
                _ => e.to_string(),
            },
        )
        .collect();
    items.push(format!(
        "{{\"name\": {}, \"version\": {version}}}",
        validation::json_string(name)
    ));
    let value = format!("[{}]", items.join(", "));
    logged_models::set_tags(c, model_id, &[Tag::new(MODEL_VERSIONS_TAG, value)])
}

/// Held to four-eyes, the registrant's decision is checked first, in this
/// transaction ([`four_eyes`]); a pipeline gate's decision is kept only
/// while the model allows pipeline approval, read in this transaction too.
pub fn create(c: &mut dyn Conn, new: &NewModelVersion) -> Result<ModelVersion, StoreError> {
    let name = new.name.as_str();
    let mut approval = new.approval.clone().unwrap_or_default();
    let deciding = approval.status != ApprovalStatus::Pending;
    match new.four_eyes {
        FourEyes::Off => {}
        FourEyes::Held if deciding => {
            let settings = four_eyes::settings_locked(c, name)?;
            let user = approval.actor.as_deref().unwrap_or_default();
            four_eyes::check_registration(settings, user, name, approval.status)?;
        }
        FourEyes::Gate if deciding => {
            if !four_eyes::settings_locked(c, name)?.allow_pipeline_approval {
                approval = Approval {
                    comment: Some(pipeline_approval_off(name, approval.status)),
                    ..Approval::default()
                };
            }
        }
        FourEyes::Held | FourEyes::Gate => {}
    }
    validation::validate_model_name(name)?;
    for t in &new.tags {
        validation::validate_model_version_tag(&t.key, &t.value)?;
    }
    let resolved = sources::resolve(c, new, resolve_reference)?;
    let now = now_ms();
    // Touching the model first takes its row lock on PostgreSQL, so two
    // concurrent registrations number their versions one after the other.
    let touched = c.exec(
        "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
        &[now.into(), name.into()],
    )?;
    if touched == 0 {
        return Err(registry::model_not_found(name));
    }
    let version = c
        .query(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?",
            &[name.into()],
        )?
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| StoreError::Corrupt("no max version".into()))?
        .int()?;
    // Pending is the absence of a decision: nobody decided, at no time.
    let (approval_actor, approval_time) = match approval.status {
        ApprovalStatus::Pending => (None, None),
        ApprovalStatus::Approved | ApprovalStatus::Rejected => (
            approval.actor.as_deref(),
            Some(approval.time.unwrap_or(now)),
        ),
    };
    c.exec(
        "INSERT INTO model_versions (name, version, source, storage_location, run_id, model_id, \
         run_link, description, user_id, current_stage, status, status_message, approval_status, \
         approval_actor, approval_time, approval_comment, creation_timestamp, \
         last_updated_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'None', 'READY', NULL, ?, ?, \
         ?, ?, ?, ?)",
        &[
            name.into(),
            version.into(),
            new.source.as_str().into(),
            resolved.storage_location.as_str().into(),
            resolved.run_id.as_deref().into(),
            resolved.model_id.as_deref().into(),
            new.run_link.as_deref().into(),
            new.description.as_deref().into(),
            new.user_id.as_deref().into(),
            approval.status.as_str().into(),
            approval_actor.into(),
            approval_time.into(),
            approval.comment.as_deref().into(),
            now.into(),
            now.into(),
        ],
    )?;
    for t in &new.tags {
        upsert_tag(c, name, version, t)?;
    }
    if let Some(model_id) = &resolved.registers {
        record_on_logged_model(c, model_id, name, version)?;
    }
    let actor = new.user_id.as_deref();
    events::append(
        c,
        "model_version.created",
        &subject(name, version),
        actor,
        json!({
            "name": name,
            "version": version,
            "source": new.source,
            "storage_location": resolved.storage_location,
            "run_id": resolved.run_id,
            "model_id": resolved.model_id,
        }),
    )?;
    if approval.status != ApprovalStatus::Pending {
        events::append(
            c,
            approval_kind(approval.status),
            &subject(name, version),
            approval.actor.as_deref().or(actor),
            json!({
                "name": name,
                "version": version,
                "status": approval.status.as_str(),
                "previous_status": null,
                "comment": approval.comment,
            }),
        )?;
    }
    get(c, name, version)
}

pub fn update(
    c: &mut dyn Conn,
    name: &str,
    version: i64,
    description: Option<&str>,
) -> Result<ModelVersion, StoreError> {
    let v = live_version(c, name, version)?;
    c.exec(
        "UPDATE model_versions SET description = ?, last_updated_timestamp = ? \
         WHERE name = ? AND version = ?",
        &[
            description.into(),
            now_ms().into(),
            name.into(),
            version.into(),
        ],
    )?;
    events::append(
        c,
        "model_version.updated",
        &subject(name, version),
        v.user_id.as_deref(),
        json!({ "name": name, "version": version, "description": description }),
    )?;
    get(c, name, version)
}

pub fn delete(c: &mut dyn Conn, name: &str, version: i64) -> Result<(), StoreError> {
    let v = live_version(c, name, version)?;
    let now = now_ms();
    c.exec(
        "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
        &[now.into(), name.into()],
    )?;
    // MLflow keeps the row (so the number is never reused) with its
    // identifying fields redacted; tags stay.
    c.exec(
        "UPDATE model_versions SET current_stage = ?, last_updated_timestamp = ?, \
         description = NULL, user_id = NULL, source = 'REDACTED-SOURCE-PATH', \
         storage_location = 'REDACTED-SOURCE-PATH', run_id = 'REDACTED-RUN-ID', \
         run_link = 'REDACTED-RUN-LINK', status_message = NULL WHERE name = ? AND version = ?",
        &[
            DELETED_STAGE.into(),
            now.into(),
            name.into(),
            version.into(),
        ],
    )?;
    let actor = v.user_id.as_deref();
    registry::drop_aliases(
        c,
        name,
        "name = ? AND version = ?",
        &[name.into(), version.into()],
        actor,
    )?;
    events::append(
        c,
        "model_version.deleted",
        &subject(name, version),
        actor,
        json!({ "name": name, "version": version }),
    )
}

pub fn search(c: &mut dyn Conn, q: &ModelVersionSearch) -> Result<Page<ModelVersion>, StoreError> {
    check_max_results(q.max_results, MAX_VERSIONS_PER_PAGE)?;
    let d = c.dialect();
    let filter = search_sql::registry_filter(d, Registry::Versions, &q.filter)?;
    let order = search_sql::registry_order(d, Registry::Versions, &q.order_by)?;
    let mut params: Vec<SqlValue> = vec![DELETED_STAGE.into()];
    let mut cond = "mv.current_stage != ?".to_string();
    if !filter.sql.is_empty() {
        cond = format!("{cond} AND {}", filter.sql);
        params.extend(filter.params);
    }
    params.push((q.max_results as i64 + 1).into());
    params.push((q.offset as i64).into());
    let sql = format!(
        "SELECT {MV_COLUMNS} FROM model_versions mv WHERE {cond} ORDER BY {order} LIMIT ? OFFSET ?"
    );
    let mut items = c
        .query(&sql, &params)?
        .into_iter()
        .map(registry::decode_version)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut items, q.max_results, q.offset);
    attach_version_details(c, &mut items)?;
    Ok(Page { items, next_offset })
}

fn upsert_tag(c: &mut dyn Conn, name: &str, version: i64, tag: &Tag) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
        &[
            name.into(),
            version.into(),
            tag.key.as_str().into(),
            tag.value.as_str().into(),
        ],
    )?;
    Ok(())
}

pub fn set_tag(c: &mut dyn Conn, name: &str, version: i64, tag: &Tag) -> Result<(), StoreError> {
    validation::validate_model_name(name)?;
    validation::validate_model_version_tag(&tag.key, &tag.value)?;
    let v = live_version(c, name, version)?;
    upsert_tag(c, name, version, tag)?;
    events::append(
        c,
        "model_version.tag_set",
        &subject(name, version),
        v.user_id.as_deref(),
        json!({ "name": name, "version": version, "key": tag.key, "value": tag.value }),
    )
}

pub fn delete_tag(c: &mut dyn Conn, name: &str, version: i64, key: &str) -> Result<(), StoreError> {
    validation::validate_model_name(name)?;
    validation::validate_registry_tag_name(key)?;
    let v = live_version(c, name, version)?;
    let removed = c.exec(
        "DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
        &[name.into(), version.into(), key.into()],
    )?;
    if removed == 0 {
        return Ok(());
    }
    events::append(
        c,
        "model_version.tag_deleted",
        &subject(name, version),
        v.user_id.as_deref(),
        json!({ "name": name, "version": version, "key": key }),
    )
}

pub fn transition(
    c: &mut dyn Conn,
    name: &str,
    version: i64,
    stage: Stage,
    archive_existing: bool,
) -> Result<ModelVersion, StoreError> {
    if archive_existing && !matches!(stage, Stage::Staging | Stage::Production) {
        return Err(Error::invalid(format!(
            "Model version transition cannot archive existing model versions because '{stage}' \
             is not an Active stage. Valid stages are ['Staging', 'Production']"
        ))
        .into());
    }
    let target = live_version(c, name, version)?;
    let now = now_ms();
    let mut archived = Vec::new();
    if archive_existing {
        let others = [name.into(), version.into(), stage.as_str().into()];
        for row in c.query(
            "SELECT version, user_id FROM model_versions \
             WHERE name = ? AND version != ? AND current_stage = ? ORDER BY version",
            &others,
        )? {
            let [v, user]: [SqlValue; 2] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short version row".into()))?;
            archived.push((v.int()?, user.opt_text()?));
        }
        c.exec(
            "UPDATE model_versions SET current_stage = 'Archived', last_updated_timestamp = ? \
             WHERE name = ? AND version != ? AND current_stage = ?",
            &[
                now.into(),
                name.into(),
                version.into(),
                stage.as_str().into(),
            ],
        )?;
    }
    c.exec(
        "UPDATE model_versions SET current_stage = ?, last_updated_timestamp = ? \
         WHERE name = ? AND version = ?",
        &[
            stage.as_str().into(),
            now.into(),
            name.into(),
            version.into(),
        ],
    )?;
    c.exec(
        "UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?",
        &[now.into(), name.into()],
    )?;
    if target.current_stage != stage {
        events::append(
            c,
            "model_version.stage_changed",
            &subject(name, version),
            target.user_id.as_deref(),
            json!({
                "name": name,
                "version": version,
                "old_stage": target.current_stage.as_str(),
                "new_stage": stage.as_str(),
            }),
        )?;
    }
    for (v, user) in &archived {
        events::append(
            c,
            "model_version.stage_changed",
            &subject(name, *v),
            user.as_deref(),
            json!({
                "name": name,
                "version": v,
                "old_stage": stage.as_str(),
                "new_stage": Stage::Archived.as_str(),
            }),
        )?;
    }
    get(c, name, version)
}

pub fn latest(
    c: &mut dyn Conn,
    name: &str,
    stages: &[Stage],
) -> Result<Vec<ModelVersion>, StoreError> {
    registry::require_model(c, name)?;
    let mut versions = registry::latest_versions(c, name)?;
    if !stages.is_empty() {
        versions.retain(|v| stages.contains(&v.current_stage));
    }
    Ok(versions)
}

/// Records a decision. A version already approved or rejected keeps that
/// decision unless `force`; the events feed keeps every decision made.
/// Held to four-eyes, the check runs in this transaction ([`four_eyes`]).
pub fn set_approval(
    c: &mut dyn Conn,
    name: &str,
    version: i64,
    approval: &Approval,
    force: bool,
    held: FourEyes,
) -> Result<ModelVersion, StoreError> {
    if held == FourEyes::Held {
        let settings = four_eyes::settings_locked(c, name)?;
        let v = get(c, name, version)?;
        let user = approval.actor.as_deref().unwrap_or_default();
        four_eyes::check_decision(c, settings, user, &v, approval.status)?;
    }
    let v = live_version(c, name, version)?;
    if v.approval.status != ApprovalStatus::Pending && !force {
        let by = v
            .approval
            .actor
            .as_deref()
            .map(|a| format!(" by {a}"))
            .unwrap_or_default();
        return Err(Error::InvalidState(format!(
            "version {version} of model '{name}' is already {}{by}; \
             a new decision replaces it only with force",
            v.approval.status
        ))
        .into());
    }
    let now = now_ms();
    // Pending is the absence of a decision: nobody decided, at no time.
    let (actor, time) = match approval.status {
        ApprovalStatus::Pending => (None, None),
        ApprovalStatus::Approved | ApprovalStatus::Rejected => {
            (approval.actor.as_deref(), Some(now))
        }
    };
    c.exec(
        "UPDATE model_versions SET approval_status = ?, approval_actor = ?, approval_time = ?, \
         approval_comment = ?, last_updated_timestamp = ? WHERE name = ? AND version = ?",
        &[
            approval.status.as_str().into(),
            actor.into(),
            time.into(),
            approval.comment.as_deref().into(),
            now.into(),
            name.into(),
            version.into(),
        ],
    )?;
    events::append(
        c,
        approval_kind(approval.status),
        &subject(name, version),
        approval.actor.as_deref(),
        json!({
            "name": name,
            "version": version,
            "status": approval.status.as_str(),
            "previous_status": v.approval.status.as_str(),
            "previous_actor": v.approval.actor,
            "comment": approval.comment,
        }),
    )?;
    get(c, name, version)
}
