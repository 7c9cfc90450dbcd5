//! Loading whole runs: the info row plus children, fetched for a page of runs
//! with one query per child table (never one per run).

use std::collections::HashMap;

use sextant_core::Error;
use sextant_core::entities::{
    Dataset, DatasetInput, LifecycleStage, Metric, ModelOutput, Run, RunData, RunInfo, RunStatus,
    Tag,
};

use crate::StoreError;
use crate::backend::{Conn, Row, SqlValue, placeholders};

/// The run columns, in [`decode_info`]'s order, qualified by alias `r`.
pub const RUN_COLUMNS: &str = "r.rid, r.run_uuid, r.name, r.experiment_id, r.user_id, r.status, \
     r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage";

/// Decodes a row of [`RUN_COLUMNS`] into (rid, info).
pub fn decode_info(row: Row) -> Result<(i64, RunInfo), StoreError> {
    let mut it = row.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| StoreError::Corrupt("short run row".into()))
    };
    let rid = next()?.int()?;
    let info = RunInfo {
        run_id: next()?.text()?,
        run_name: next()?.text()?,
        experiment_id: next()?.int()?,
        user_id: next()?.text()?,
        status: {
            let s = next()?.text()?;
            RunStatus::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("run status {s}")))?
        },
        start_time: next()?.opt_int()?,
        end_time: next()?.opt_int()?,
        artifact_uri: next()?.text()?,
        lifecycle_stage: next()?.text()?.parse::<LifecycleStage>()?,
    };
    Ok((rid, info))
}

/// The run's internal id, experiment and info, or RESOURCE_DOES_NOT_EXIST.
pub fn run_info(c: &mut dyn Conn, run_id: &str) -> Result<(i64, RunInfo), StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = ?");
    match c.query(&sql, &[run_id.into()])?.into_iter().next() {
        Some(row) => decode_info(row),
        None => Err(Error::not_found(format!("Run with id={run_id} not found")).into()),
    }
}

/// The internal id of a run that must be active (for writes).
pub fn active_rid(c: &mut dyn Conn, run_id: &str) -> Result<i64, StoreError> {
    Ok(active_run(c, run_id)?.0)
}

/// The internal id and info of a run that must be active (for writes).
pub fn active_run(c: &mut dyn Conn, run_id: &str) -> Result<(i64, RunInfo), StoreError> {
    let (rid, info) = run_info(c, run_id)?;
    if info.lifecycle_stage != LifecycleStage::Active {
        return Err(Error::invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is deleted."
        ))
        .into());
    }
    Ok((rid, info))
}

/// Metric value encoding shared by writes and reads: NaN is stored as 0 with
/// a flag (SQLite turns a NaN into NULL).
pub fn metric_value(value: f64) -> (f64, i64) {
    if value.is_nan() { (0.0, 1) } else { (value, 0) }
}

fn ids_in(rids: &[i64]) -> (String, Vec<SqlValue>) {
    (
        placeholders(rids.len()),
        rids.iter().map(|&r| r.into()).collect(),
    )
}

fn group_kv(
    c: &mut dyn Conn,
    table: &str,
    rids: &[i64],
) -> Result<HashMap<i64, Vec<Tag>>, StoreError> {
    let (ph, params) = ids_in(rids);
    let sql = format!("SELECT rid, key, value FROM {table} WHERE rid IN ({ph}) ORDER BY rid, key");
    let mut out: HashMap<i64, Vec<Tag>> = HashMap::new();
    for row in c.query(&sql, &params)? {
        let mut it = row.into_iter();
        let (Some(r), Some(k), Some(v)) = (it.next(), it.next(), it.next()) else {
            return Err(StoreError::Corrupt(format!("short {table} row")));
        };
        out.entry(r.int()?)
            .or_default()
            .push(Tag::new(k.text()?, v.text()?));
    }
    Ok(out)
}

/// Full runs for `infos` (in that order), children loaded in bulk.
pub fn complete(c: &mut dyn Conn, infos: Vec<(i64, RunInfo)>) -> Result<Vec<Run>, StoreError> {
    if infos.is_empty() {
        return Ok(Vec::new());
    }
    let rids: Vec<i64> = infos.iter().map(|(r, _)| *r).collect();
    let mut params = group_kv(c, "params", &rids)?;
    let mut tags = group_kv(c, "run_tags", &rids)?;
    let (ph, ids) = ids_in(&rids);

    let mut metrics: HashMap<i64, Vec<Metric>> = HashMap::new();
    let sql = format!(
        "SELECT rid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE rid IN ({ph}) ORDER BY rid, key"
    );
    for row in c.query(&sql, &ids)? {
        let [rid, key, value, is_nan, ts, step]: [SqlValue; 6] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("short metric row".into()))?;
        let value = if is_nan.int()? == 1 {
            f64::NAN
        } else {
            value.real()?
        };
        metrics.entry(rid.int()?).or_default().push(Metric::new(
            key.text()?,
            value,
            ts.int()?,
            step.int()?,
        ));
    }

    let mut datasets: HashMap<i64, Vec<DatasetInput>> = HashMap::new();
    let sql = format!(
        "SELECT ri.rid, ri.dataset_id, d.name, d.digest, d.source_type, d.source, d.schema_json, d.profile \
         FROM run_inputs ri JOIN datasets d ON d.dataset_id = ri.dataset_id WHERE ri.rid IN ({ph}) \
         ORDER BY ri.rid, ri.dataset_id"
    );
    let mut input_keys = Vec::new();
    for row in c.query(&sql, &ids)? {
        let [rid, did, name, digest, st, src, schema, profile]: [SqlValue; 8] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("short input row".into()))?;
        let (rid, did) = (rid.int()?, did.int()?);
        input_keys.push((rid, did));
        datasets.entry(rid).or_default().push(DatasetInput {
            dataset: Dataset {
                name: name.text()?,
                digest: digest.text()?,
                source_type: st.text()?,
                source: src.text()?,
                schema: schema.opt_text()?,
                profile: profile.opt_text()?,
            },
            tags: Vec::new(),
        });
    }
    if !input_keys.is_empty() {
        let sql = format!(
            "SELECT rid, dataset_id, key, value FROM run_input_tags WHERE rid IN ({ph}) ORDER BY rid, dataset_id, key"
        );
        for row in c.query(&sql, &ids)? {
            let [rid, did, k, v]: [SqlValue; 4] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short input tag row".into()))?;
            let (rid, did) = (rid.int()?, did.int()?);
            if let Some(pos) = input_keys
                .iter()
                .filter(|(r, _)| *r == rid)
                .position(|(_, d)| *d == did)
                && let Some(list) = datasets.get_mut(&rid)
            {
                list[pos].tags.push(Tag::new(k.text()?, v.text()?));
            }
        }
    }

    let mut model_inputs: HashMap<i64, Vec<String>> = HashMap::new();
    let sql = format!(
        "SELECT rid, model_id FROM run_model_inputs WHERE rid IN ({ph}) ORDER BY rid, model_id"
    );
    for row in c.query(&sql, &ids)? {
        let [rid, mid]: [SqlValue; 2] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("short model input row".into()))?;
        model_inputs
            .entry(rid.int()?)
            .or_default()
            .push(mid.text()?);
    }
    let mut model_outputs: HashMap<i64, Vec<ModelOutput>> = HashMap::new();
    let sql = format!(
        "SELECT rid, model_id, step FROM run_model_outputs WHERE rid IN ({ph}) ORDER BY rid, step, model_id"
    );
    for row in c.query(&sql, &ids)? {
        let [rid, mid, step]: [SqlValue; 3] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("short model output row".into()))?;
        model_outputs
            .entry(rid.int()?)
            .or_default()
            .push(ModelOutput {
                model_id: mid.text()?,
                step: step.int()?,
            });
    }

    Ok(infos
        .into_iter()
        .map(|(rid, info)| Run {
            info,
            data: RunData {
                metrics: metrics.remove(&rid).unwrap_or_default(),
                params: params.remove(&rid).unwrap_or_default(),
                tags: tags.remove(&rid).unwrap_or_default(),
            },
            dataset_inputs: datasets.remove(&rid).unwrap_or_default(),
            model_inputs: model_inputs.remove(&rid).unwrap_or_default(),
            model_outputs: model_outputs.remove(&rid).unwrap_or_default(),
        })
        .collect())
}
