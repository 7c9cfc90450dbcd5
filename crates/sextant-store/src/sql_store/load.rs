//! Loading whole runs: the info row plus children, fetched for a page of runs
//! with one statement for all child tables on PostgreSQL, one per table on
//! SQLite (never one per run).

use std::collections::HashMap;

use sextant_core::Error;
use sextant_core::entities::{
    Dataset, DatasetInput, LifecycleStage, Metric, ModelOutput, Run, RunData, RunInfo, RunStatus,
    Tag,
};

use crate::StoreError;
use crate::backend::{Conn, Dialect, Row, SqlValue, placeholders};

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

/// The reads of a page of runs' children, one per child table: each row is
/// led by its table's number and its run, then the same columns for all —
/// four integers, a double and six texts (the NULLs typed, so that
/// PostgreSQL can match them in a `UNION ALL`) — and each comes with its
/// own order. `{in_page}` tests a run id against the page's ([`in_page`]).
/// Inputs come before their tags.
///
/// On PostgreSQL they are one statement, [`union`]: one round trip instead
/// of seven, and a search of 100 runs at 100k took 4.5–5.2 ms instead of
/// 5.4–5.9 (the store call, on `bench_search.py`'s store). SQLite has no
/// round trips to save, and there the union took longer than the seven
/// (1.8–2.1 against 1.5–1.6 ms): it runs each in turn.
const CHILDREN: [(&str, &str); 7] = [
    (
        "SELECT 0, rid, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
         CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE PRECISION), key, value, CAST(NULL AS TEXT), \
         CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT) \
         FROM params WHERE rid {in_page}",
        "rid, key",
    ),
    (
        "SELECT 1, rid, NULL, NULL, NULL, NULL, NULL, key, value, NULL, NULL, NULL, NULL \
         FROM run_tags WHERE rid {in_page}",
        "rid, key",
    ),
    (
        "SELECT 2, rid, NULL, is_nan, timestamp, step, value, key, NULL, NULL, NULL, NULL, NULL \
         FROM latest_metrics WHERE rid {in_page}",
        "rid, key",
    ),
    (
        "SELECT 3, ri.rid, ri.dataset_id, NULL, NULL, NULL, NULL, d.name, d.digest, \
         d.source_type, d.source, d.schema_json, d.profile \
         FROM run_inputs ri JOIN datasets d ON d.dataset_id = ri.dataset_id \
         WHERE ri.rid {in_page}",
        "ri.rid, ri.dataset_id",
    ),
    (
        "SELECT 4, rid, dataset_id, NULL, NULL, NULL, NULL, key, value, NULL, NULL, NULL, NULL \
         FROM run_input_tags WHERE rid {in_page}",
        "rid, dataset_id, key",
    ),
    (
        "SELECT 5, rid, NULL, NULL, NULL, NULL, NULL, model_id, NULL, NULL, NULL, NULL, NULL \
         FROM run_model_inputs WHERE rid {in_page}",
        "rid, model_id",
    ),
    (
        "SELECT 6, rid, step, NULL, NULL, NULL, NULL, model_id, NULL, NULL, NULL, NULL, NULL \
         FROM run_model_outputs WHERE rid {in_page}",
        "rid, step, model_id",
    ),
];

/// [`CHILDREN`] as one statement: rows ordered by table, run, first integer
/// and first text, which is each table's own order.
fn union() -> String {
    let selects: Vec<&str> = CHILDREN.iter().map(|(select, _)| *select).collect();
    format!("{} ORDER BY 1, 2, 3, 8", selects.join(" UNION ALL "))
}

/// The test of a run id against the page's `rids`, with its parameters. On
/// PostgreSQL the ids go as one array, in its text form: the statement is
/// the same for any page size (one prepared statement, not one per size),
/// and it is planned for one parameter instead of one per id, which took
/// half its planning time (0.50 against 0.25 ms for a page of 100,
/// `EXPLAIN ANALYZE` on a 100k-run store). Every select of the union
/// names that one parameter as `$1`, so the array is sent and parsed once.
fn in_page(dialect: Dialect, rids: &[i64]) -> (String, Vec<SqlValue>) {
    match dialect {
        Dialect::Sqlite => (
            format!("IN ({})", placeholders(rids.len())),
            rids.iter().map(|&r| r.into()).collect(),
        ),
        Dialect::Postgres => {
            let list: Vec<String> = rids.iter().map(i64::to_string).collect();
            (
                "= ANY(CAST(CAST($1 AS TEXT) AS BIGINT[]))".into(),
                vec![format!("{{{}}}", list.join(",")).into()],
            )
        }
    }
}

/// The children of a page of runs, by run.
#[derive(Default)]
struct Children {
    params: Vec<Tag>,
    tags: Vec<Tag>,
    metrics: Vec<Metric>,
    /// The dataset inputs with their dataset ids, for their tags.
    inputs: Vec<(i64, DatasetInput)>,
    model_inputs: Vec<String>,
    model_outputs: Vec<ModelOutput>,
}

/// Full runs for `infos` (in that order), children loaded in bulk.
pub fn complete(c: &mut dyn Conn, infos: Vec<(i64, RunInfo)>) -> Result<Vec<Run>, StoreError> {
    if infos.is_empty() {
        return Ok(Vec::new());
    }
    let rids: Vec<i64> = infos.iter().map(|(r, _)| *r).collect();
    let (test, ids) = in_page(c.dialect(), &rids);
    let rows = match c.dialect() {
        Dialect::Postgres => c.query(&union().replace("{in_page}", &test), &ids)?,
        Dialect::Sqlite => {
            let mut rows = Vec::new();
            for (select, order) in CHILDREN {
                let sql = format!("{} ORDER BY {order}", select.replace("{in_page}", &test));
                rows.extend(c.query(&sql, &ids)?);
            }
            rows
        }
    };
    let mut children: HashMap<i64, Children> = HashMap::new();
    for row in rows {
        let [kind, rid, n1, n2, n3, n4, x, t1, t2, t3, t4, t5, t6]: [SqlValue; 13] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("short child row of a run".into()))?;
        let of = children.entry(rid.int()?).or_default();
        match kind.int()? {
            0 => of.params.push(Tag::new(t1.text()?, t2.text()?)),
            1 => of.tags.push(Tag::new(t1.text()?, t2.text()?)),
            2 => {
                let value = if n2.int()? == 1 { f64::NAN } else { x.real()? };
                of.metrics
                    .push(Metric::new(t1.text()?, value, n3.int()?, n4.int()?));
            }
            3 => of.inputs.push((
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
            // After the run's inputs (see `CHILDREN`).
            4 => {
                let dataset_id = n1.int()?;
                if let Some((_, input)) = of.inputs.iter_mut().find(|(d, _)| *d == dataset_id) {
                    input.tags.push(Tag::new(t1.text()?, t2.text()?));
                }
            }
            5 => of.model_inputs.push(t1.text()?),
            6 => of.model_outputs.push(ModelOutput {
                model_id: t1.text()?,
                step: n1.int()?,
            }),
            other => return Err(StoreError::Corrupt(format!("child row of kind {other}"))),
        }
    }

    Ok(infos
        .into_iter()
        .map(|(rid, info)| {
            let of = children.remove(&rid).unwrap_or_default();
            Run {
                info,
                data: RunData {
                    metrics: of.metrics,
                    params: of.params,
                    tags: of.tags,
                },
                dataset_inputs: of.inputs.into_iter().map(|(_, input)| input).collect(),
                model_inputs: of.model_inputs,
                model_outputs: of.model_outputs,
            }
        })
        .collect())
}
