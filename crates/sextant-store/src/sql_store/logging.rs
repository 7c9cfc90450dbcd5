//! The hot write path (metrics, params, tags in batches), run inputs and
//! outputs, and metric history reads.

use std::collections::{BTreeMap, HashMap, HashSet};

use sextant_core::Error;
use sextant_core::entities::{
    Dataset, DatasetInput, DatasetSummary, Metric, ModelOutput, Page, Param, Tag,
};
use sextant_core::validation;

use super::experiments::page_rest;
use super::load::{self, metric_value};
use super::runs::upsert_tag;
use crate::StoreError;
use crate::backend::ColumnType::{Int, Real, Text};
use crate::backend::{Conn, SqlValue, placeholders};
use crate::store::MAX_DATASET_SUMMARIES;

/// Validation that needs no database: limits, keys, duplicate params.
pub fn check_batch(metrics: &[Metric], params: &[Param], tags: &[Tag]) -> Result<(), StoreError> {
    validation::validate_batch_limits(metrics.len(), params.len(), tags.len())?;
    let mut seen = HashSet::new();
    for m in metrics {
        if seen.insert(m.key.as_str()) {
            validation::validate_key("metric", &m.key)?;
        }
        validation::validate_metric_timestamp(&m.key, m.value, m.timestamp)?;
    }
    let mut keys = HashSet::new();
    let mut dups = Vec::new();
    for p in params {
        validation::validate_key("param", &p.key)?;
        if !keys.insert(p.key.as_str()) && !dups.contains(&p.key.as_str()) {
            dups.push(p.key.as_str());
        }
    }
    if !dups.is_empty() {
        let listed: Vec<String> = dups.iter().map(|k| format!("'{k}'")).collect();
        return Err(Error::invalid(format!(
            "Duplicate parameter keys have been submitted: [{}]. Please ensure the request \
             contains only one param value per param key.",
            listed.join(", ")
        ))
        .into());
    }
    for t in tags {
        validation::validate_key("tag", &t.key)?;
    }
    Ok(())
}

fn log_params(
    c: &mut dyn Conn,
    run_id: &str,
    rid: i64,
    params: &[Param],
) -> Result<(), StoreError> {
    if params.is_empty() {
        return Ok(());
    }
    let values: Vec<(String, String)> = params
        .iter()
        .map(|p| (p.key.clone(), validation::truncate_param_value(&p.value)))
        .collect();
    let mut args: Vec<SqlValue> = vec![rid.into()];
    args.extend(values.iter().map(|(k, _)| SqlValue::from(k)));
    let sql = format!(
        "SELECT key, value FROM params WHERE rid = ? AND key IN ({})",
        placeholders(values.len())
    );
    let existing: HashMap<String, String> = c
        .query(&sql, &args)?
        .into_iter()
        .map(|row| {
            let [k, v]: [SqlValue; 2] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short param row".into()))?;
            Ok((k.text()?, v.text()?))
        })
        .collect::<Result<_, StoreError>>()?;
    let conflicts: Vec<_> = values
        .iter()
        .filter_map(|(k, v)| {
            existing
                .get(k)
                .filter(|old| *old != v)
                .map(|old| (k, old, v))
        })
        .collect();
    if let [(k, old, new)] = conflicts.as_slice() {
        return Err(Error::invalid(format!(
            "Changing param values is not allowed. Param with key='{k}' was already logged with \
             value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
        ))
        .into());
    }
    if !conflicts.is_empty() {
        let listed: Vec<String> = conflicts
            .iter()
            .map(|(k, old, new)| {
                format!("{{'key': '{k}', 'old_value': '{old}', 'new_value': '{new}'}}")
            })
            .collect();
        return Err(Error::invalid(format!(
            "Changing param values is not allowed. Params were already logged='[{}]' for run ID='{run_id}'.",
            listed.join(", ")
        ))
        .into());
    }
    let rows: Vec<SqlValue> = values
        .into_iter()
        .filter(|(k, _)| !existing.contains_key(k))
        .flat_map(|(k, v)| [rid.into(), k.into(), v.into()])
        .collect();
    c.insert(
        "INSERT INTO params (rid, key, value)",
        "ON CONFLICT DO NOTHING",
        &[Int, Text, Text],
        &rows,
    )
}

/// The order MLflow uses to pick a run's latest value of a metric.
fn later(a: &Metric, b: &Metric) -> bool {
    let key = |m: &Metric| {
        (
            m.step,
            m.timestamp,
            if m.value.is_nan() { f64::MIN } else { m.value },
        )
    };
    key(a).partial_cmp(&key(b)).is_some_and(|o| o.is_gt())
}

fn log_metrics(
    c: &mut dyn Conn,
    rid: i64,
    experiment_id: i64,
    metrics: &[Metric],
) -> Result<(), StoreError> {
    if metrics.is_empty() {
        return Ok(());
    }
    let mut latest: BTreeMap<&str, &Metric> = BTreeMap::new();
    let rows: Vec<SqlValue> = metrics
        .iter()
        .flat_map(|m| {
            latest
                .entry(m.key.as_str())
                .and_modify(|cur| {
                    if later(m, cur) {
                        *cur = m;
                    }
                })
                .or_insert(m);
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
        .collect();
    c.insert(
        "INSERT INTO metrics (rid, key, timestamp, step, value, is_nan, model_id, dataset_name, dataset_digest)",
        "ON CONFLICT DO NOTHING",
        &[Int, Text, Int, Int, Real, Int, Text, Text, Text],
        &rows,
    )?;
    let rows: Vec<SqlValue> = latest
        .values()
        .flat_map(|m| {
            let (value, is_nan) = metric_value(m.value);
            [
                rid.into(),
                experiment_id.into(),
                m.key.as_str().into(),
                m.timestamp.into(),
                m.step.into(),
                value.into(),
                is_nan.into(),
            ]
        })
        .collect();
    c.insert(
        "INSERT INTO latest_metrics AS lm (rid, experiment_id, key, timestamp, step, value, is_nan)",
        "ON CONFLICT (rid, key) DO UPDATE SET timestamp = excluded.timestamp, step = excluded.step, \
         value = excluded.value, is_nan = excluded.is_nan \
         WHERE (excluded.step, excluded.timestamp, excluded.value) > (lm.step, lm.timestamp, lm.value)",
        &[Int, Int, Text, Int, Int, Real, Int],
        &rows,
    )
}

pub fn log_batch(
    c: &mut dyn Conn,
    run_id: &str,
    metrics: &[Metric],
    params: &[Param],
    tags: &[Tag],
) -> Result<(), StoreError> {
    let (rid, info) = load::active_run(c, run_id)?;
    log_params(c, run_id, rid, params)?;
    for tag in tags {
        upsert_tag(c, rid, tag)?;
    }
    log_metrics(c, rid, info.experiment_id, metrics)
}

pub fn log_inputs(
    c: &mut dyn Conn,
    run_id: &str,
    datasets: &[DatasetInput],
    model_ids: &[String],
) -> Result<(), StoreError> {
    let (rid, info) = load::run_info(c, run_id)?;
    load::active_rid(c, run_id)?;
    for input in datasets {
        let d = &input.dataset;
        validation::validate_dataset(d)?;
        let did = link_dataset(c, rid, info.experiment_id, d)?;
        for t in &input.tags {
            validation::validate_input_tag(&t.key, &t.value)?;
            c.exec(
                "INSERT INTO run_input_tags (rid, dataset_id, key, value) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (rid, dataset_id, key) DO UPDATE SET value = excluded.value",
                &[
                    rid.into(),
                    did.into(),
                    t.key.as_str().into(),
                    t.value.as_str().into(),
                ],
            )?;
        }
    }
    for m in model_ids {
        c.exec(
            "INSERT INTO run_model_inputs (rid, model_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            &[rid.into(), m.as_str().into()],
        )?;
    }
    Ok(())
}

/// The distinct (experiment, name, digest, context) of the datasets the
/// runs of `experiment_ids` used, as MLflow's `_search_datasets` lists them
/// (an input without a context tag gives one row without context).
pub fn dataset_summaries(
    c: &mut dyn Conn,
    experiment_ids: &[i64],
) -> Result<Vec<DatasetSummary>, StoreError> {
    if experiment_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value FROM datasets d \
         JOIN run_inputs i ON i.dataset_id = d.dataset_id \
         LEFT JOIN run_input_tags t ON t.rid = i.rid AND t.dataset_id = d.dataset_id \
         AND t.key = 'mlflow.data.context' \
         WHERE d.experiment_id IN ({}) \
         ORDER BY d.experiment_id, d.name, d.digest, t.value LIMIT {MAX_DATASET_SUMMARIES}",
        placeholders(experiment_ids.len())
    );
    let params: Vec<SqlValue> = experiment_ids.iter().map(|&e| e.into()).collect();
    c.query(&sql, &params)?
        .into_iter()
        .map(|row| {
            let mut cols = row.into_iter();
            let mut next = || {
                cols.next()
                    .ok_or_else(|| StoreError::Corrupt("short row".into()))
            };
            Ok(DatasetSummary {
                experiment_id: next()?.int()?,
                name: next()?.text()?,
                digest: next()?.text()?,
                context: next()?.opt_text()?,
            })
        })
        .collect()
}

pub fn log_outputs(
    c: &mut dyn Conn,
    run_id: &str,
    models: &[ModelOutput],
) -> Result<(), StoreError> {
    let rid = load::active_rid(c, run_id)?;
    for m in models {
        c.exec(
            "INSERT INTO run_model_outputs (rid, model_id, step) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            &[rid.into(), m.model_id.as_str().into(), m.step.into()],
        )?;
    }
    Ok(())
}

const METRIC_COLUMNS: &str =
    "key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest";

/// Decodes a row of [`METRIC_COLUMNS`].
pub fn decode_metric(row: Vec<SqlValue>) -> Result<Metric, StoreError> {
    let [key, value, is_nan, ts, step, model, dname, ddigest]: [SqlValue; 8] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short metric row".into()))?;
    let value = if is_nan.int()? == 1 {
        f64::NAN
    } else {
        value.real()?
    };
    let mut m = Metric::new(key.text()?, value, ts.int()?, step.int()?);
    m.model_id = model.opt_text()?;
    m.dataset_name = dname.opt_text()?;
    m.dataset_digest = ddigest.opt_text()?;
    Ok(m)
}

pub fn history(
    c: &mut dyn Conn,
    run_id: &str,
    key: &str,
    max_results: u64,
    offset: u64,
) -> Result<Page<Metric>, StoreError> {
    let (rid, _) = load::run_info(c, run_id)?;
    let sql = format!(
        "SELECT {METRIC_COLUMNS} FROM metrics WHERE rid = ? AND key = ? \
         ORDER BY timestamp, step, is_nan, value LIMIT ? OFFSET ?"
    );
    let rows = c.query(
        &sql,
        &[
            rid.into(),
            key.into(),
            (max_results as i64 + 1).into(),
            (offset as i64).into(),
        ],
    )?;
    let mut items = rows
        .into_iter()
        .map(decode_metric)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut items, max_results, offset);
    Ok(Page { items, next_offset })
}

/// Evenly spaced picks from sorted `steps`, first and last always kept.
fn sample_steps(steps: &[i64], max: usize) -> Vec<i64> {
    if steps.len() <= max || max == 0 {
        return steps.to_vec();
    }
    if max == 1 {
        return vec![steps[0]];
    }
    let last = steps.len() - 1;
    let mut out: Vec<i64> = (0..max).map(|i| steps[i * last / (max - 1)]).collect();
    out.dedup();
    out
}

pub fn bulk_interval(
    c: &mut dyn Conn,
    run_ids: &[String],
    key: &str,
    steps: Option<(i64, i64)>,
    max_results: u64,
) -> Result<Vec<Metric>, StoreError> {
    let mut out = Vec::new();
    let mut sorted: Vec<&String> = run_ids.iter().collect();
    sorted.sort();
    sorted.dedup();
    for run_id in sorted {
        let (rid, _) = load::run_info(c, run_id)?;
        let (lo, hi) = steps.unwrap_or((i64::MIN, i64::MAX));
        let all: Vec<i64> = c
            .query(
                "SELECT DISTINCT step FROM metrics WHERE rid = ? AND key = ? AND step >= ? AND step <= ? ORDER BY step",
                &[rid.into(), key.into(), lo.into(), hi.into()],
            )?
            .into_iter()
            .map(|r| r.first().map_or(Ok(0), SqlValue::int))
            .collect::<Result<_, _>>()?;
        let picked = sample_steps(&all, max_results as usize);
        if picked.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT {METRIC_COLUMNS} FROM metrics WHERE rid = ? AND key = ? AND step IN ({}) \
             ORDER BY step, timestamp, is_nan, value",
            placeholders(picked.len())
        );
        let mut args: Vec<SqlValue> = vec![rid.into(), key.into()];
        args.extend(picked.iter().map(|&s| SqlValue::from(s)));
        for row in c.query(&sql, &args)? {
            let mut m = decode_metric(row)?;
            m.run_id = Some(run_id.clone());
            out.push(m);
        }
    }
    Ok(out)
}

/// Records that run `rid` used dataset `d` (stored once per experiment by
/// name and digest); returns the dataset's id.
pub(super) fn link_dataset(
    c: &mut dyn Conn,
    rid: i64,
    experiment_id: i64,
    d: &Dataset,
) -> Result<i64, StoreError> {
    c.exec(
        "INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema_json, profile) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (experiment_id, name, digest) DO NOTHING",
        &[
            experiment_id.into(),
            d.name.as_str().into(),
            d.digest.as_str().into(),
            d.source_type.as_str().into(),
            d.source.as_str().into(),
            d.schema.as_deref().into(),
            d.profile.as_deref().into(),
        ],
    )?;
    let did = c
        .query(
            "SELECT dataset_id FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
            &[
                experiment_id.into(),
                d.name.as_str().into(),
                d.digest.as_str().into(),
            ],
        )?
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| StoreError::Corrupt("dataset vanished".into()))?
        .int()?;
    c.exec(
        "INSERT INTO run_inputs (rid, dataset_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        &[rid.into(), did.into()],
    )?;
    Ok(did)
}

#[cfg(test)]
mod tests {
    use super::sample_steps;

    #[test]
    fn sampling_keeps_ends_and_bounds_count() {
        let steps: Vec<i64> = (0..100).collect();
        let s = sample_steps(&steps, 10);
        assert_eq!(s.len(), 10);
        assert_eq!(s.first(), Some(&0));
        assert_eq!(s.last(), Some(&99));
        assert_eq!(sample_steps(&steps[..5], 10), vec![0, 1, 2, 3, 4]);
    }
}
