//! Loading whole runs: the info row plus children, fetched for a page of runs
//! in one statement for every child table (never one per run).

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

/// Every child row of a page of runs, in one statement (one round trip to
/// PostgreSQL instead of seven): a `UNION ALL` of one branch per child
/// table, each row tagged with its [`Part`], in the columns
/// `part, rid, t1..t6 (text), x (real), n1..n3 (integers)`.
fn children_sql(n: usize) -> String {
    let ids = placeholders(n);
    // NULLs typed, so that PostgreSQL resolves each column's type alike in
    // every branch.
    let (t, x, i) = (
        "CAST(NULL AS TEXT)",
        "CAST(NULL AS DOUBLE PRECISION)",
        "CAST(NULL AS BIGINT)",
    );
    [
        format!("SELECT 0, rid, key, value, {t}, {t}, {t}, {t}, {x}, {i}, {i}, {i} FROM params WHERE rid IN ({ids})"),
        format!("SELECT 1, rid, key, value, {t}, {t}, {t}, {t}, {x}, {i}, {i}, {i} FROM run_tags WHERE rid IN ({ids})"),
        format!(
            "SELECT 2, rid, key, {t}, {t}, {t}, {t}, {t}, value, CAST(is_nan AS BIGINT), timestamp, \
             step FROM latest_metrics WHERE rid IN ({ids})"
        ),
        format!(
            "SELECT 3, ri.rid, d.name, d.digest, d.source_type, d.source, d.schema_json, d.profile, \
             {x}, ri.dataset_id, {i}, {i} FROM run_inputs ri JOIN datasets d ON d.dataset_id = \
             ri.dataset_id WHERE ri.rid IN ({ids})"
        ),
        format!(
            "SELECT 4, rid, key, value, {t}, {t}, {t}, {t}, {x}, dataset_id, {i}, {i} FROM run_input_tags \
             WHERE rid IN ({ids})"
        ),
        format!("SELECT 5, rid, model_id, {t}, {t}, {t}, {t}, {t}, {x}, {i}, {i}, {i} FROM run_model_inputs WHERE rid IN ({ids})"),
        format!("SELECT 6, rid, model_id, {t}, {t}, {t}, {t}, {t}, {x}, step, {i}, {i} FROM run_model_outputs WHERE rid IN ({ids})"),
    ]
    .join(" UNION ALL ")
}

/// The branches of [`children_sql`], each naming every run of a chunk.
const PARTS: usize = 7;

/// Runs per statement: 7 × 2,000 parameters stay below PostgreSQL's 65,535
/// (a page may hold 50,000 runs).
const CHUNK: usize = 2_000;

/// Full runs for `infos` (in that order), children loaded in bulk.
pub fn complete(c: &mut dyn Conn, infos: Vec<(i64, RunInfo)>) -> Result<Vec<Run>, StoreError> {
    if infos.is_empty() {
        return Ok(Vec::new());
    }
    let rids: Vec<i64> = infos.iter().map(|(r, _)| *r).collect();
    let mut params_of: HashMap<i64, Vec<Tag>> = HashMap::new();
    let mut tags: HashMap<i64, Vec<Tag>> = HashMap::new();
    let mut metrics: HashMap<i64, Vec<Metric>> = HashMap::new();
    // Per run: (dataset id, input) and (dataset id, tag).
    let mut datasets: HashMap<i64, Vec<(i64, DatasetInput)>> = HashMap::new();
    let mut input_tags: Vec<(i64, i64, Tag)> = Vec::new();
    let mut model_inputs: HashMap<i64, Vec<String>> = HashMap::new();
    let mut model_outputs: HashMap<i64, Vec<ModelOutput>> = HashMap::new();
    let mut rows = Vec::new();
    for chunk in rids.chunks(CHUNK) {
        let params: Vec<SqlValue> = (0..PARTS)
            .flat_map(|_| chunk.iter().map(|&r| SqlValue::from(r)))
            .collect();
        rows.extend(c.query(&children_sql(chunk.len()), &params)?);
    }
    for row in rows {
        let [part, rid, t1, t2, t3, t4, t5, t6, x, n1, n2, n3]: [SqlValue; 12] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("short run child row".into()))?;
        let rid = rid.int()?;
        match part.int()? {
            0 => params_of
                .entry(rid)
                .or_default()
                .push(Tag::new(t1.text()?, t2.text()?)),
            1 => tags
                .entry(rid)
                .or_default()
                .push(Tag::new(t1.text()?, t2.text()?)),
            2 => {
                let value = if n1.int()? == 1 { f64::NAN } else { x.real()? };
                metrics.entry(rid).or_default().push(Metric::new(
                    t1.text()?,
                    value,
                    n2.int()?,
                    n3.int()?,
                ));
            }
            3 => datasets.entry(rid).or_default().push((
                n1.int()?,
                DatasetInput {
                    dataset: Dataset {
                        name: t1.text()?,
                        digest: t2.text()?,
                        source_type: t3.text()?,
                        source: t4.text()?,
                        schema: t5.opt_text()?,
                        profile: t6.opt_text()?,
                    },
                    tags: Vec::new(),
                },
            )),
            4 => input_tags.push((rid, n1.int()?, Tag::new(t1.text()?, t2.text()?))),
            5 => model_inputs.entry(rid).or_default().push(t1.text()?),
            6 => model_outputs.entry(rid).or_default().push(ModelOutput {
                model_id: t1.text()?,
                step: n1.int()?,
            }),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "run child row of part {other}"
                )));
            }
        }
    }
    // The orders the per-table queries gave: by key, by dataset, by step.
    for list in params_of.values_mut().chain(tags.values_mut()) {
        list.sort_by(|a, b| a.key.cmp(&b.key));
    }
    for list in metrics.values_mut() {
        list.sort_by(|a, b| a.key.cmp(&b.key));
    }
    for list in datasets.values_mut() {
        list.sort_by_key(|(id, _)| *id);
    }
    input_tags.sort_by(|a, b| (a.0, a.1, &a.2.key).cmp(&(b.0, b.1, &b.2.key)));
    for (rid, did, tag) in input_tags {
        if let Some((_, input)) = datasets
            .get_mut(&rid)
            .and_then(|list| list.iter_mut().find(|(d, _)| *d == did))
        {
            input.tags.push(tag);
        }
    }
    for list in model_inputs.values_mut() {
        list.sort();
    }
    for list in model_outputs.values_mut() {
        list.sort_by(|a, b| (a.step, &a.model_id).cmp(&(b.step, &b.model_id)));
    }
    let mut params = params_of;
    let mut datasets: HashMap<i64, Vec<DatasetInput>> = datasets
        .into_iter()
        .map(|(rid, list)| (rid, list.into_iter().map(|(_, d)| d).collect()))
        .collect();

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
