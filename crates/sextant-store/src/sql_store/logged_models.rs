//! Logged models (MLflow 3's `m-…` entities): create, finalize, tags,
//! params, soft delete and search.

use std::collections::HashMap;

use sextant_core::Error;
use sextant_core::entities::{
    LifecycleStage, LoggedModel, LoggedModelStatus, NewLoggedModel, Page, Param, Tag,
};
use sextant_core::search::{Comparator, Entity, Value};
use sextant_core::validation;

use super::experiments::{self, page_rest};
use super::logging::decode_metric;
use serde_json::json;

use super::{child_uri, events, now_ms};
use crate::StoreError;
use crate::backend::{Conn, Dialect, Row, SqlValue, placeholders};
use crate::names::random_name;
use crate::store::LoggedModelSearch;

const COLUMNS: &str = "lm.model_id, lm.experiment_id, lm.name, lm.artifact_uri, lm.status, \
     lm.status_message, lm.model_type, lm.source_run_id, lm.creation_timestamp, \
     lm.last_updated_timestamp, lm.lifecycle_stage";

fn not_found(id: &str) -> StoreError {
    Error::not_found(format!("Logged model with ID '{id}' not found.")).into()
}

fn decode(row: Row) -> Result<LoggedModel, StoreError> {
    let [
        id,
        exp,
        name,
        uri,
        status,
        msg,
        mtype,
        src,
        created,
        updated,
        stage,
    ]: [SqlValue; 11] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short logged model row".into()))?;
    let status = status.text()?;
    Ok(LoggedModel {
        model_id: id.text()?,
        experiment_id: exp.int()?,
        name: name.text()?,
        artifact_uri: uri.text()?,
        status: LoggedModelStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("logged model status {status}")))?,
        status_message: msg.opt_text()?,
        model_type: mtype.opt_text()?,
        source_run_id: src.opt_text()?,
        creation_timestamp: created.int()?,
        last_updated_timestamp: updated.int()?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
        lifecycle_stage: stage.text()?.parse()?,
    })
}

/// Fills in tags, params and metrics of `models`.
fn complete(c: &mut dyn Conn, models: &mut [LoggedModel]) -> Result<(), StoreError> {
    if models.is_empty() {
        return Ok(());
    }
    let ids: Vec<SqlValue> = models.iter().map(|m| m.model_id.as_str().into()).collect();
    let ph = placeholders(ids.len());
    let index: HashMap<String, usize> = models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.model_id.clone(), i))
        .collect();
    for (table, is_tag) in [("logged_model_tags", true), ("logged_model_params", false)] {
        let sql = format!(
            "SELECT model_id, key, value FROM {table} WHERE model_id IN ({ph}) ORDER BY key"
        );
        for row in c.query(&sql, &ids)? {
            let [id, k, v]: [SqlValue; 3] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short kv row".into()))?;
            if let Some(&i) = index.get(&id.text()?) {
                let kv = Tag::new(k.text()?, v.text()?);
                if is_tag {
                    models[i].tags.push(kv)
                } else {
                    models[i].params.push(kv)
                }
            }
        }
    }
    let sql = format!(
        "SELECT m.key, m.value, m.is_nan, m.timestamp, m.step, m.model_id, m.dataset_name, \
         m.dataset_digest, r.run_uuid FROM metrics m JOIN runs r ON r.rid = m.rid \
         WHERE m.model_id IN ({ph}) ORDER BY m.key, m.step, m.timestamp"
    );
    for mut row in c.query(&sql, &ids)? {
        let run = row
            .pop()
            .ok_or_else(|| StoreError::Corrupt("short metric row".into()))?;
        let mut metric = decode_metric(row)?;
        metric.run_id = Some(run.text()?);
        if let Some(&i) = metric.model_id.as_ref().and_then(|id| index.get(id)) {
            models[i].metrics.push(metric);
        }
    }
    Ok(())
}

fn upsert_kv(c: &mut dyn Conn, table: &str, model_id: &str, kv: &Tag) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {table} (model_id, key, value) VALUES (?, ?, ?) \
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value"
    );
    c.exec(
        &sql,
        &[
            model_id.into(),
            kv.key.as_str().into(),
            kv.value.as_str().into(),
        ],
    )?;
    Ok(())
}

pub fn create(c: &mut dyn Conn, new: &NewLoggedModel) -> Result<LoggedModel, StoreError> {
    let exp = experiments::active(c, new.experiment_id)?;
    let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
    let name = new
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(random_name);
    let artifact_uri = child_uri(
        &exp.artifact_location,
        &format!("models/{model_id}/artifacts"),
    );
    let now = now_ms();
    c.exec(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, status, model_type, \
         source_run_id, creation_timestamp, last_updated_timestamp, lifecycle_stage) \
         VALUES (?, ?, ?, ?, 'LOGGED_MODEL_PENDING', ?, ?, ?, ?, 'active')",
        &[
            model_id.as_str().into(),
            exp.experiment_id.into(),
            name.as_str().into(),
            artifact_uri.into(),
            new.model_type.as_deref().into(),
            new.source_run_id.as_deref().into(),
            now.into(),
            now.into(),
        ],
    )?;
    for p in &new.params {
        validation::validate_key("param", &p.key)?;
        upsert_kv(c, "logged_model_params", &model_id, p)?;
    }
    for t in &new.tags {
        upsert_kv(c, "logged_model_tags", &model_id, t)?;
    }
    events::append(
        c,
        "logged_model.created",
        &format!("logged_model:{model_id}"),
        None,
        json!({
            "model_id": model_id,
            "experiment_id": exp.experiment_id.to_string(),
            "name": name,
            "source_run_id": new.source_run_id,
        }),
    )?;
    get(c, &model_id, false)
}

pub fn get(
    c: &mut dyn Conn,
    model_id: &str,
    allow_deleted: bool,
) -> Result<LoggedModel, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM logged_models lm WHERE lm.model_id = ?");
    let row = c
        .query(&sql, &[model_id.into()])?
        .into_iter()
        .next()
        .ok_or_else(|| not_found(model_id))?;
    let model = decode(row)?;
    if model.lifecycle_stage == LifecycleStage::Deleted && !allow_deleted {
        return Err(not_found(model_id));
    }
    let mut models = [model];
    complete(c, &mut models)?;
    let [m] = models;
    Ok(m)
}

fn touch(c: &mut dyn Conn, model_id: &str) -> Result<(), StoreError> {
    get(c, model_id, false)?;
    c.exec(
        "UPDATE logged_models SET last_updated_timestamp = ? WHERE model_id = ?",
        &[now_ms().into(), model_id.into()],
    )?;
    Ok(())
}

pub fn finalize(
    c: &mut dyn Conn,
    model_id: &str,
    status: LoggedModelStatus,
) -> Result<LoggedModel, StoreError> {
    touch(c, model_id)?;
    c.exec(
        "UPDATE logged_models SET status = ? WHERE model_id = ?",
        &[status.as_str().into(), model_id.into()],
    )?;
    events::append(
        c,
        "logged_model.finalized",
        &format!("logged_model:{model_id}"),
        None,
        json!({ "model_id": model_id, "status": status.as_str() }),
    )?;
    get(c, model_id, false)
}

pub fn delete(c: &mut dyn Conn, model_id: &str) -> Result<(), StoreError> {
    touch(c, model_id)?;
    c.exec(
        "UPDATE logged_models SET lifecycle_stage = 'deleted' WHERE model_id = ?",
        &[model_id.into()],
    )?;
    events::append(
        c,
        "logged_model.deleted",
        &format!("logged_model:{model_id}"),
        None,
        json!({ "model_id": model_id }),
    )
}

pub fn set_tags(c: &mut dyn Conn, model_id: &str, tags: &[Tag]) -> Result<(), StoreError> {
    touch(c, model_id)?;
    for t in tags {
        upsert_kv(c, "logged_model_tags", model_id, t)?;
    }
    Ok(())
}

pub fn delete_tag(c: &mut dyn Conn, model_id: &str, key: &str) -> Result<(), StoreError> {
    touch(c, model_id)?;
    let n = c.exec(
        "DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?",
        &[model_id.into(), key.into()],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "No tag with key '{key}' found for model with ID '{model_id}'."
        ))
        .into());
    }
    Ok(())
}

pub fn log_params(c: &mut dyn Conn, model_id: &str, params: &[Param]) -> Result<(), StoreError> {
    touch(c, model_id)?;
    for p in params {
        validation::validate_key("param", &p.key)?;
        upsert_kv(c, "logged_model_params", model_id, p)?;
    }
    Ok(())
}

fn column(key: &str) -> Result<&'static str, StoreError> {
    Ok(match key {
        "name" => "lm.name",
        "model_id" => "lm.model_id",
        "model_type" => "lm.model_type",
        "status" => "lm.status",
        "source_run_id" => "lm.source_run_id",
        "creation_timestamp" | "creation_time" => "lm.creation_timestamp",
        "last_updated_timestamp" | "last_updated_time" => "lm.last_updated_timestamp",
        other => {
            return Err(
                Error::invalid(format!("Invalid attribute key '{other}' specified.")).into(),
            );
        }
    })
}

fn like_op(d: Dialect, op: Comparator) -> &'static str {
    match (op, d) {
        (Comparator::Like, Dialect::Sqlite) => "GLOB",
        (Comparator::ILike, Dialect::Sqlite) => "LIKE",
        (Comparator::ILike, Dialect::Postgres) => "ILIKE",
        (Comparator::Like, Dialect::Postgres) => "LIKE",
        (Comparator::Eq, _) => "=",
        (Comparator::Ne, _) => "!=",
        (Comparator::Gt, _) => ">",
        (Comparator::Ge, _) => ">=",
        (Comparator::Lt, _) => "<",
        (Comparator::Le, _) => "<=",
        (Comparator::In, _) => "IN",
        (Comparator::NotIn, _) => "NOT IN",
        (Comparator::IsNull, _) => "IS NULL",
        (Comparator::IsNotNull, _) => "IS NOT NULL",
    }
}

fn bind_value(
    d: Dialect,
    op: Comparator,
    v: &Value,
    params: &mut Vec<SqlValue>,
) -> Result<String, StoreError> {
    Ok(match v {
        Value::Str(s) if op == Comparator::Like && d == Dialect::Sqlite => {
            params.push(crate::search_sql::like_to_glob(s).into());
            "?".into()
        }
        Value::Str(s) => {
            params.push(s.into());
            "?".into()
        }
        Value::Number(f) => {
            params.push((*f).into());
            "?".into()
        }
        Value::Int(i) => {
            params.push((*i).into());
            "?".into()
        }
        Value::List(items) => {
            params.extend(items.iter().map(SqlValue::from));
            format!("({})", placeholders(items.len()))
        }
        Value::Null => String::new(),
    })
}

pub fn search(c: &mut dyn Conn, q: &LoggedModelSearch) -> Result<Page<LoggedModel>, StoreError> {
    if q.experiment_ids.is_empty() {
        return Ok(Page {
            items: Vec::new(),
            next_offset: None,
        });
    }
    let d = c.dialect();
    let mut params: Vec<SqlValue> = q.experiment_ids.iter().map(|&e| e.into()).collect();
    let mut conds = vec![
        format!(
            "lm.experiment_id IN ({})",
            placeholders(q.experiment_ids.len())
        ),
        "lm.lifecycle_stage = 'active'".to_string(),
    ];
    let fence = crate::search_sql::sublink_fence(d, q.filter.clauses.len());
    for cmp in &q.filter.clauses {
        let op = like_op(d, cmp.op);
        let cond = match cmp.ident.entity {
            Entity::Attribute => {
                let col = column(&cmp.ident.key)?;
                let rhs = bind_value(d, cmp.op, &cmp.value, &mut params)?;
                format!("{col} {op} {rhs}")
            }
            Entity::Metric => {
                params.push(cmp.ident.key.as_str().into());
                let rhs = bind_value(d, cmp.op, &cmp.value, &mut params)?;
                format!(
                    "EXISTS (SELECT 1 FROM metrics m WHERE m.model_id = lm.model_id AND m.key = ? AND m.is_nan = 0 AND m.value {op} {rhs}{fence})"
                )
            }
            Entity::Param | Entity::Tag => {
                let table = if cmp.ident.entity == Entity::Param {
                    "logged_model_params"
                } else {
                    "logged_model_tags"
                };
                params.push(cmp.ident.key.as_str().into());
                let rhs = bind_value(d, cmp.op, &cmp.value, &mut params)?;
                format!(
                    "EXISTS (SELECT 1 FROM {table} kv WHERE kv.model_id = lm.model_id AND kv.key = ? AND kv.value {op} {rhs}{fence})"
                )
            }
            Entity::Dataset => {
                return Err(Error::invalid("datasets are not filterable for logged models").into());
            }
        };
        conds.push(cond);
    }
    let mut order = Vec::new();
    for (field, asc) in &q.order_by {
        let col = column(field)?;
        order.push(format!("{col} {}", if *asc { "ASC" } else { "DESC" }));
    }
    if order.is_empty() {
        order.push("lm.creation_timestamp DESC".into());
    }
    order.push("lm.model_id ASC".into());
    params.push((q.max_results as i64 + 1).into());
    params.push((q.offset as i64).into());
    let sql = format!(
        "SELECT {COLUMNS} FROM logged_models lm WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
        conds.join(" AND "),
        order.join(", ")
    );
    let mut items = c
        .query(&sql, &params)?
        .into_iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut items, q.max_results, q.offset);
    complete(c, &mut items)?;
    Ok(Page { items, next_offset })
}
