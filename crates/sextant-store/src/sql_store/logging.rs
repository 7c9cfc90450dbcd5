//! The hot write path (metrics, params, tags in batches), run inputs and
//! outputs, and metric history reads.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sextant_core::Error;
use sextant_core::entities::{
    Dataset, DatasetInput, DatasetSummary, LifecycleStage, Metric, MetricSummary, ModelOutput,
    Page, Param, Tag,
};
use sextant_core::validation;

use super::experiments::page_rest;
use super::load::{self, metric_value};
use super::runs::RUN_NAME_TAG;
use crate::StoreError;
use crate::backend::ColumnType::{Int, Real, Text};
use crate::backend::{Backend, ColumnType, Conn, SqlValue, placeholders};
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

/// One run's share of a write: what a log-batch call carries.
#[derive(Clone, Copy)]
pub struct RunBatch<'a> {
    pub run_id: &'a str,
    pub metrics: &'a [Metric],
    pub params: &'a [Param],
    pub tags: &'a [Tag],
}

/// Whether an insert of metrics expects each row to be new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeats {
    /// A plain insert: a metric already stored fails the statement.
    Refuse,
    /// An insert that skips a metric already stored.
    Skip,
}

/// Writes one log-batch call in a transaction of its own.
pub fn write_batch<B: Backend>(db: &B, batch: RunBatch<'_>) -> Result<(), StoreError> {
    write_batches(db, &[batch])?
        .pop()
        .unwrap_or_else(|| Err(StoreError::Corrupt("a batch without an outcome".into())))
}

/// Writes the batches of several calls in one transaction ([`log_batches`]).
///
/// A metric logged twice with the same key, time, step and value is stored
/// once, as MLflow does. Checking each row for one already stored costs: on
/// PostgreSQL `ON CONFLICT DO NOTHING` inserts speculatively, about twice
/// the work of a plain insert (400,000 rows: 2.5–3.0 s against 1.4–1.5 s,
/// measured with psql). A repeat is rare (a client retrying a call whose
/// answer it lost), so the transaction first assumes there is none and is
/// written once more, skipping repeats, only if a row proved it wrong.
pub fn write_batches<B: Backend>(
    db: &B,
    batches: &[RunBatch<'_>],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    match db.write(|c| log_batches(c, batches, Repeats::Refuse)) {
        Err(e) if e.is_unique_violation() => db.write(|c| log_batches(c, batches, Repeats::Skip)),
        written => written,
    }
}

/// Writes the batches of several calls (group commit) with the same few
/// statements one batch takes: a lookup of the runs, one of the params
/// already logged, then one insert per table for all of them. A batch that
/// cannot be written — its run is missing or not active, or it logs a
/// param already logged with another value, before or by an earlier batch
/// of the group — writes nothing and gets its error in its slot; the others
/// are written. `Err` is a database failure (or, with
/// [`Repeats::Refuse`], a metric already stored): the transaction must not
/// commit.
pub fn log_batches(
    c: &mut dyn Conn,
    batches: &[RunBatch<'_>],
    repeats: Repeats,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let runs = active_runs(c, batches)?;
    let mut outcomes: Vec<Result<(), StoreError>> = batches
        .iter()
        .map(|b| match runs.get(b.run_id) {
            None => Err(Error::not_found(format!("Run with id={} not found", b.run_id)).into()),
            Some((_, _, false)) => Err(Error::invalid(format!(
                "The run {} must be in the 'active' state. Current state is deleted.",
                b.run_id
            ))
            .into()),
            Some(_) => Ok(()),
        })
        .collect();

    // Params: refused when any of a batch's values differs from the one
    // logged before (in the store, or by an earlier batch of this group).
    let mut known = logged_params(c, batches, &runs, &outcomes)?;
    let mut param_rows = Vec::new();
    for (b, outcome) in batches.iter().zip(outcomes.iter_mut()) {
        let Some(&(rid, _, true)) = runs.get(b.run_id) else {
            continue;
        };
        if outcome.is_err() || b.params.is_empty() {
            continue;
        }
        let values: Vec<(&str, String)> = b
            .params
            .iter()
            .map(|p| (p.key.as_str(), validation::truncate_param_value(&p.value)))
            .collect();
        let conflicts: Vec<(&str, &str, &str)> = values
            .iter()
            .filter_map(|(k, v)| {
                known
                    .get(&(rid, (*k).to_string()))
                    .filter(|old| *old != v)
                    .map(|old| (*k, old.as_str(), v.as_str()))
            })
            .collect();
        if !conflicts.is_empty() {
            *outcome = Err(param_conflict(b.run_id, &conflicts));
            continue;
        }
        for (k, v) in values {
            if let std::collections::hash_map::Entry::Vacant(e) = known.entry((rid, k.to_string()))
            {
                param_rows.extend([rid.into(), k.into(), v.as_str().into()]);
                e.insert(v);
            }
        }
    }

    // Tags (the last value of a key wins) and metrics, of the batches kept.
    let mut tags: BTreeMap<(i64, &str), String> = BTreeMap::new();
    let mut run_names: BTreeMap<i64, String> = BTreeMap::new();
    let mut metric_rows = Vec::new();
    let mut latest: BTreeMap<(i64, &str), Latest<'_>> = BTreeMap::new();
    for (b, outcome) in batches.iter().zip(&outcomes) {
        let (Some(&(rid, experiment_id, true)), Ok(())) = (runs.get(b.run_id), outcome) else {
            continue;
        };
        for t in b.tags {
            let value = validation::truncate_tag_value(&t.value);
            if t.key == RUN_NAME_TAG {
                run_names.insert(rid, value.clone());
            }
            tags.insert((rid, t.key.as_str()), value);
        }
        for m in b.metrics {
            latest
                .entry((rid, m.key.as_str()))
                .and_modify(|l| l.add(m))
                .or_insert_with(|| Latest::new(experiment_id, m));
            let (value, is_nan) = metric_value(m.value);
            metric_rows.extend([
                rid.into(),
                m.key.as_str().into(),
                m.timestamp.into(),
                m.step.into(),
                value.into(),
                is_nan.into(),
                m.model_id.as_deref().into(),
                m.dataset_name.as_deref().into(),
                m.dataset_digest.as_deref().into(),
            ]);
        }
    }

    if !param_rows.is_empty() {
        c.insert(
            "INSERT INTO params (rid, key, value)",
            "ON CONFLICT DO NOTHING",
            &[Int, Text, Text],
            &param_rows,
        )?;
    }
    if !tags.is_empty() {
        let rows: Vec<SqlValue> = tags
            .into_iter()
            .flat_map(|((rid, key), value)| [rid.into(), key.into(), value.into()])
            .collect();
        c.insert(
            "INSERT INTO run_tags (rid, key, value)",
            "ON CONFLICT (rid, key) DO UPDATE SET value = excluded.value",
            &[Int, Text, Text],
            &rows,
        )?;
    }
    for (rid, name) in run_names {
        c.exec(
            "UPDATE runs SET name = ? WHERE rid = ?",
            &[name.into(), rid.into()],
        )?;
    }
    if !metric_rows.is_empty() {
        const COLUMNS: &str =
            "rid, key, timestamp, step, value, is_nan, model_id, dataset_name, dataset_digest";
        const TYPES: [ColumnType; 9] = [Int, Text, Int, Int, Real, Int, Text, Text, Text];
        match repeats {
            Repeats::Refuse => c.append("metrics", COLUMNS, &TYPES, &metric_rows)?,
            Repeats::Skip => c.insert(
                &format!("INSERT INTO metrics ({COLUMNS})"),
                "ON CONFLICT DO NOTHING",
                &TYPES,
                &metric_rows,
            )?,
        }
        let rows: Vec<SqlValue> = latest
            .into_iter()
            .flat_map(|((rid, key), mut l)| l.row(rid, key))
            .collect();
        c.insert(LATEST_HEAD, LATEST_UPSERT, &LATEST_TYPES, &rows)?;
    }
    Ok(outcomes)
}

/// The columns of a `latest_metrics` row as [`Latest::row`] gives them.
pub(super) const LATEST_HEAD: &str = "INSERT INTO latest_metrics AS lm \
     (rid, experiment_id, key, timestamp, step, value, is_nan, min_value, max_value, \
     steps_first, steps_last, steps_count)";
pub(super) const LATEST_TYPES: [crate::backend::ColumnType; 12] = [
    Int, Int, Text, Int, Int, Real, Int, Real, Real, Int, Int, Int,
];

/// Merges a batch's latest value, range and steps of each (run, key) into
/// the stored row in one statement: the latest value is replaced only by a
/// later one, the range only widens, and the steps stay a progression only
/// when the batch's continue the stored ones with the same stride (the
/// batch's first step less the stored last is that stride). A row that changes
/// none of them is not written. NULL (every value NaN) is no bound: the
/// CASEs keep the other side, which SQLite's two-argument `min()` would
/// not. `NULLIF` keeps a zero gap from dividing: PostgreSQL does not
/// short-circuit `AND`.
const LATEST_UPSERT: &str = "ON CONFLICT (rid, key) DO UPDATE SET \
     timestamp = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > (lm.step, lm.timestamp, lm.value) \
         THEN excluded.timestamp ELSE lm.timestamp END, \
     step = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > (lm.step, lm.timestamp, lm.value) \
         THEN excluded.step ELSE lm.step END, \
     value = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > (lm.step, lm.timestamp, lm.value) \
         THEN excluded.value ELSE lm.value END, \
     is_nan = CASE WHEN (excluded.step, excluded.timestamp, excluded.value) > (lm.step, lm.timestamp, lm.value) \
         THEN excluded.is_nan ELSE lm.is_nan END, \
     min_value = CASE WHEN lm.min_value IS NULL OR excluded.min_value < lm.min_value \
         THEN excluded.min_value ELSE lm.min_value END, \
     max_value = CASE WHEN lm.max_value IS NULL OR excluded.max_value > lm.max_value \
         THEN excluded.max_value ELSE lm.max_value END, \
     steps_last = excluded.steps_last, \
     steps_count = CASE WHEN excluded.steps_first > lm.steps_last \
         AND (lm.steps_count = 1 \
             OR ((lm.steps_last - lm.steps_first) % NULLIF(excluded.steps_first - lm.steps_last, 0) = 0 \
                 AND (lm.steps_last - lm.steps_first) / NULLIF(excluded.steps_first - lm.steps_last, 0) \
                     = lm.steps_count - 1)) \
         AND (excluded.steps_count = 1 \
             OR ((excluded.steps_last - excluded.steps_first) % NULLIF(excluded.steps_first - lm.steps_last, 0) = 0 \
                 AND (excluded.steps_last - excluded.steps_first) / NULLIF(excluded.steps_first - lm.steps_last, 0) \
                     = excluded.steps_count - 1)) \
         THEN lm.steps_count + excluded.steps_count END \
     WHERE (excluded.step, excluded.timestamp, excluded.value) > (lm.step, lm.timestamp, lm.value) \
     OR excluded.min_value < lm.min_value OR excluded.max_value > lm.max_value \
     OR (lm.min_value IS NULL AND excluded.min_value IS NOT NULL) \
     OR lm.steps_count IS NOT NULL";

/// What a write knows of one (run, key): the latest of its metrics, the
/// range of their values, NaN skipped (`None` while every value is NaN),
/// and their steps.
pub(super) struct Latest<'a> {
    experiment_id: i64,
    last: &'a Metric,
    range: Option<(f64, f64)>,
    steps: Vec<i64>,
}

impl<'a> Latest<'a> {
    pub(super) fn new(experiment_id: i64, m: &'a Metric) -> Self {
        Latest {
            experiment_id,
            last: m,
            range: (!m.value.is_nan()).then_some((m.value, m.value)),
            steps: vec![m.step],
        }
    }

    /// The stored latest value of a history that [`Latest::include`] then
    /// goes through (an import: the source says which value is the latest).
    pub(super) fn stored(experiment_id: i64, last: &'a Metric) -> Self {
        Latest {
            steps: Vec::new(),
            ..Latest::new(experiment_id, last)
        }
    }

    pub(super) fn add(&mut self, m: &'a Metric) {
        if later(m, self.last) {
            self.last = m;
        }
        self.include(m);
    }

    /// Widens the range by a value of the history (NaN is skipped) and
    /// notes its step.
    pub(super) fn include(&mut self, m: &Metric) {
        self.steps.push(m.step);
        let v = m.value;
        if v.is_nan() {
            return;
        }
        self.range = Some(match self.range {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }

    /// The row in [`LATEST_HEAD`]'s columns.
    pub(super) fn row(&mut self, rid: i64, key: &str) -> [SqlValue; 12] {
        let (value, is_nan) = metric_value(self.last.value);
        let steps = progression(&mut self.steps);
        [
            rid.into(),
            self.experiment_id.into(),
            key.into(),
            self.last.timestamp.into(),
            self.last.step.into(),
            value.into(),
            is_nan.into(),
            self.range.map(|r| r.0).into(),
            self.range.map(|r| r.1).into(),
            steps.map(|p| p.first).into(),
            steps.map(|p| p.last).into(),
            steps.map(|p| p.count).into(),
        ]
    }
}

/// Steps that are an arithmetic progression, each once: `count` of them
/// from `first` to `last`, so the one of rank `i` is `first + i × stride`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Progression {
    pub first: i64,
    pub last: i64,
    pub count: i64,
}

/// Beyond it a step is not tracked (see migration 10): sums and differences
/// of tracked steps then stay within `i64` in the database's arithmetic.
const TRACKED_STEP: i64 = 1 << 52;

impl Progression {
    /// The stride between consecutive steps (1 for a single step).
    pub fn stride(&self) -> i64 {
        if self.count > 1 {
            (self.last - self.first) / (self.count - 1)
        } else {
            1
        }
    }
}

/// The progression `steps` make in any order, if they make one.
fn progression(steps: &mut [i64]) -> Option<Progression> {
    if steps
        .iter()
        .any(|s| !(-TRACKED_STEP..=TRACKED_STEP).contains(s))
    {
        return None;
    }
    steps.sort_unstable();
    let (&first, &last) = (steps.first()?, steps.last()?);
    let stride = steps.get(1).map_or(1, |second| second - first);
    (stride > 0 && steps.windows(2).all(|w| w[1] - w[0] == stride)).then_some(Progression {
        first,
        last,
        count: steps.len() as i64,
    })
}

/// (rid, experiment id, active) of the batches' runs, by run id.
fn active_runs(
    c: &mut dyn Conn,
    batches: &[RunBatch<'_>],
) -> Result<HashMap<String, (i64, i64, bool)>, StoreError> {
    let ids: BTreeSet<&str> = batches.iter().map(|b| b.run_id).collect();
    let sql = format!(
        "SELECT rid, run_uuid, experiment_id, lifecycle_stage FROM runs WHERE run_uuid IN ({})",
        placeholders(ids.len())
    );
    let args: Vec<SqlValue> = ids.into_iter().map(SqlValue::from).collect();
    c.query(&sql, &args)?
        .into_iter()
        .map(|row| {
            let [rid, id, exp, stage]: [SqlValue; 4] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short run row".into()))?;
            let active = stage.text()? == LifecycleStage::Active.as_str();
            Ok((id.text()?, (rid.int()?, exp.int()?, active)))
        })
        .collect()
}

/// The values already stored of the params the writable batches log.
fn logged_params(
    c: &mut dyn Conn,
    batches: &[RunBatch<'_>],
    runs: &HashMap<String, (i64, i64, bool)>,
    outcomes: &[Result<(), StoreError>],
) -> Result<HashMap<(i64, String), String>, StoreError> {
    let mut rids = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for (b, outcome) in batches.iter().zip(outcomes) {
        if let (Some(&(rid, _, _)), Ok(()), false) =
            (runs.get(b.run_id), outcome, b.params.is_empty())
        {
            rids.insert(rid);
            keys.extend(b.params.iter().map(|p| p.key.as_str()));
        }
    }
    if rids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT rid, key, value FROM params WHERE rid IN ({}) AND key IN ({})",
        placeholders(rids.len()),
        placeholders(keys.len())
    );
    let mut args: Vec<SqlValue> = rids.into_iter().map(SqlValue::from).collect();
    args.extend(keys.into_iter().map(SqlValue::from));
    c.query(&sql, &args)?
        .into_iter()
        .map(|row| {
            let [rid, k, v]: [SqlValue; 3] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short param row".into()))?;
            Ok(((rid.int()?, k.text()?), v.text()?))
        })
        .collect()
}

/// MLflow's refusal of params logged again with other values.
fn param_conflict(run_id: &str, conflicts: &[(&str, &str, &str)]) -> StoreError {
    if let [(k, old, new)] = conflicts {
        return Error::invalid(format!(
            "Changing param values is not allowed. Param with key='{k}' was already logged with \
             value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
        ))
        .into();
    }
    let listed: Vec<String> = conflicts
        .iter()
        .map(|(k, old, new)| {
            format!("{{'key': '{k}', 'old_value': '{old}', 'new_value': '{new}'}}")
        })
        .collect();
    Error::invalid(format!(
        "Changing param values is not allowed. Params were already logged='[{}]' for run ID='{run_id}'.",
        listed.join(", ")
    ))
    .into()
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

/// The latest value and the range of `keys` (every key when empty) of each
/// run of `run_ids`, ordered by run id and key: two reads whatever the
/// count. A run that does not exist is RESOURCE_DOES_NOT_EXIST.
pub fn summaries(
    c: &mut dyn Conn,
    run_ids: &[String],
    keys: &[String],
) -> Result<Vec<MetricSummary>, StoreError> {
    let ids: BTreeSet<&str> = run_ids.iter().map(String::as_str).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let id_args: Vec<SqlValue> = ids.iter().map(|&id| id.into()).collect();
    let found: HashSet<String> = c
        .query(
            &format!(
                "SELECT run_uuid FROM runs WHERE run_uuid IN ({})",
                placeholders(ids.len())
            ),
            &id_args,
        )?
        .into_iter()
        .map(|row| row.into_iter().next().unwrap_or(SqlValue::Null).text())
        .collect::<Result<_, _>>()?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(**id)) {
        return Err(Error::not_found(format!("Run with id={missing} not found")).into());
    }
    let keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut sql = format!(
        "SELECT r.run_uuid, lm.key, lm.value, lm.is_nan, lm.step, lm.timestamp, lm.min_value, \
         lm.max_value FROM runs r JOIN latest_metrics lm ON lm.rid = r.rid \
         WHERE r.run_uuid IN ({})",
        placeholders(ids.len())
    );
    let mut args = id_args;
    if !keys.is_empty() {
        sql.push_str(&format!(" AND lm.key IN ({})", placeholders(keys.len())));
        args.extend(keys.iter().map(|&k| SqlValue::from(k)));
    }
    sql.push_str(" ORDER BY r.run_uuid, lm.key");
    c.query(&sql, &args)?
        .into_iter()
        .map(|row| {
            let [run, key, value, is_nan, step, ts, lo, hi]: [SqlValue; 8] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short metric summary row".into()))?;
            let bound = |v: SqlValue| match v {
                SqlValue::Null => Ok(f64::NAN),
                v => v.real(),
            };
            Ok(MetricSummary {
                run_id: run.text()?,
                key: key.text()?,
                last: if is_nan.int()? == 1 {
                    f64::NAN
                } else {
                    value.real()?
                },
                step: step.int()?,
                timestamp: ts.int()?,
                min: bound(lo)?,
                max: bound(hi)?,
            })
        })
        .collect()
}

/// The rows MLflow 3.17's SQL store keeps of `total` ordered rows for
/// `max` results: the first row of each of `max` `NTILE` buckets (the first
/// `total % max` buckets one row longer), then the last row, replacing the
/// last pick when there are already `max` (so `max = 1` keeps the last row
/// alone). A `max` of 0 counts as 1, as MLflow reads it.
fn sampled_rows(total: usize, max: usize) -> Vec<usize> {
    let max = max.max(1);
    if total <= max {
        return (0..total).collect();
    }
    let (q, r) = (total / max, total % max);
    let mut picks: Vec<usize> = (0..max).map(|b| b * q + b.min(r)).collect();
    if picks.last() != Some(&(total - 1)) {
        if picks.len() >= max {
            picks.pop();
        }
        picks.push(total - 1);
    }
    picks
}

/// A history row as stored: NaN is value 0 with `is_nan` 1, and orders so.
#[derive(Clone, Copy)]
struct StoredRow {
    step: i64,
    timestamp: i64,
    value: f64,
    is_nan: i64,
}

impl StoredRow {
    fn decode(row: &[SqlValue]) -> Result<Self, StoreError> {
        let [step, ts, value, is_nan] = row else {
            return Err(StoreError::Corrupt("short metric row".into()));
        };
        Ok(StoredRow {
            step: step.int()?,
            timestamp: ts.int()?,
            value: value.real()?,
            is_nan: is_nan.int()?,
        })
    }

    fn metric(&self, run_id: &str, key: &str) -> Metric {
        let value = if self.is_nan == 1 {
            f64::NAN
        } else {
            self.value
        };
        let mut m = Metric::new(key, value, self.timestamp, self.step);
        m.run_id = Some(run_id.to_string());
        m
    }
}

/// The UI's sampled histories, as MLflow 3.17's get-history-bulk-interval
/// answers them: for each run (in the order asked), its rows in the step
/// range ordered by step, time, stored value and NaN-ness, sampled to at
/// most `max_results` evenly spaced rows with the last one kept. Sampling
/// rows, not steps, keeps the answer bounded when many values share a step
/// (`log_metric` without a step logs them all at 0).
///
/// A chart of 100 runs × 10,000 steps holds 1M rows. Where a run's steps
/// are a progression (`latest_metrics.steps_count`), the sampled ranks are
/// steps, and only those rows are read; otherwise every row in the range
/// is streamed, four columns of it (MLflow's answer has no model or
/// dataset fields).
pub fn bulk_interval(
    c: &mut dyn Conn,
    run_ids: &[String],
    key: &str,
    steps: Option<(i64, i64)>,
    max_results: u64,
) -> Result<Vec<Metric>, StoreError> {
    let mut rids = HashMap::new();
    for run_id in run_ids {
        if !rids.contains_key(run_id.as_str()) {
            rids.insert(run_id.as_str(), load::run_info(c, run_id)?.0);
        }
    }
    let progressions = progressions(c, rids.values().copied(), key)?;
    let range = steps.unwrap_or((i64::MIN, i64::MAX));
    let max = max_results as usize;
    let mut out = Vec::new();
    let mut rows: Vec<StoredRow> = Vec::new();
    for run_id in run_ids {
        let rid = rids[run_id.as_str()];
        rows.clear();
        if let Some(&p) = progressions.get(&rid) {
            if sampled_by_rank(c, rid, key, p, range, max, &mut rows)? {
                out.extend(rows.iter().map(|r| r.metric(run_id, key)));
                continue;
            }
            tracing::warn!(
                run_id = %run_id, key, "the stored steps of a metric are not the progression recorded for them; reading all of its rows"
            );
            rows.clear();
        }
        c.query_each(
            "SELECT step, timestamp, value, is_nan FROM metrics \
             WHERE rid = ? AND key = ? AND step >= ? AND step <= ?",
            &[rid.into(), key.into(), range.0.into(), range.1.into()],
            &mut |row| {
                rows.push(StoredRow::decode(row)?);
                Ok(())
            },
        )?;
        // The key orders by step, then time: MLflow's order unless two rows
        // share a step and time.
        let order = |a: &StoredRow, b: &StoredRow| {
            (a.step, a.timestamp)
                .cmp(&(b.step, b.timestamp))
                .then(a.value.total_cmp(&b.value))
                .then(a.is_nan.cmp(&b.is_nan))
        };
        if !rows.is_sorted_by(|a, b| order(a, b).is_le()) {
            rows.sort_by(order);
        }
        out.extend(
            sampled_rows(rows.len(), max)
                .into_iter()
                .map(|i| rows[i].metric(run_id, key)),
        );
    }
    Ok(out)
}

/// The recorded progression of `key`'s steps in each of the runs `rids`
/// that has one.
fn progressions(
    c: &mut dyn Conn,
    rids: impl Iterator<Item = i64>,
    key: &str,
) -> Result<HashMap<i64, Progression>, StoreError> {
    let mut args: Vec<SqlValue> = vec![key.into()];
    args.extend(rids.map(SqlValue::from));
    if args.len() == 1 {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT rid, steps_first, steps_last, steps_count FROM latest_metrics \
         WHERE key = ? AND steps_count IS NOT NULL AND rid IN ({})",
        placeholders(args.len() - 1)
    );
    c.query(&sql, &args)?
        .into_iter()
        .map(|row| {
            let [rid, first, last, count]: [SqlValue; 4] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short progression row".into()))?;
            let p = Progression {
                first: first.int()?,
                last: last.int()?,
                count: count.int()?,
            };
            Ok((rid.int()?, p))
        })
        .collect()
}

/// The most sampled steps read by rank in one statement (the server asks
/// at most 2,500 rows a run, as MLflow does).
const MAX_STEPS_PROBED: usize = 10_000;

/// Reads into `rows` the rows MLflow samples of a history whose steps are
/// the progression `p`: rank `i` of those in `range` is step
/// `first + i × stride`, one row each, so the sampled ranks are read by
/// their steps. False (and `rows` unusable) when the stored rows are not
/// one per step of the progression.
fn sampled_by_rank(
    c: &mut dyn Conn,
    rid: i64,
    key: &str,
    p: Progression,
    (lo, hi): (i64, i64),
    max: usize,
    rows: &mut Vec<StoredRow>,
) -> Result<bool, StoreError> {
    let (first, stride) = (i128::from(p.first), i128::from(p.stride()));
    if p.count < 1 || stride < 1 {
        return Ok(false);
    }
    // The ranks whose steps lie in the range: ⌈(lo − first) / stride⌉ to
    // ⌊(hi − first) / stride⌋, within the history.
    let lowest = (-(first - i128::from(lo)).div_euclid(stride)).max(0);
    let highest = (i128::from(hi) - first)
        .div_euclid(stride)
        .min(i128::from(p.count) - 1);
    if lowest > highest {
        return Ok(true);
    }
    let total = usize::try_from(highest - lowest + 1).unwrap_or(usize::MAX);
    if max > MAX_STEPS_PROBED {
        // More steps than one statement takes parameters: read every row.
        return Ok(false);
    }
    let wanted: Vec<i64> = sampled_rows(total, max)
        .into_iter()
        .map(|i| (first + (lowest + i as i128) * stride) as i64)
        .collect();
    let mut args: Vec<SqlValue> = vec![rid.into(), key.into()];
    args.extend(wanted.iter().map(|&s| SqlValue::from(s)));
    c.query_each(
        &format!(
            "SELECT step, timestamp, value, is_nan FROM metrics \
             WHERE rid = ? AND key = ? AND step IN ({}) ORDER BY step",
            placeholders(wanted.len())
        ),
        &args,
        &mut |row| {
            rows.push(StoredRow::decode(row)?);
            Ok(())
        },
    )?;
    Ok(rows.len() == wanted.len() && rows.iter().zip(&wanted).all(|(r, &s)| r.step == s))
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
    use super::sampled_rows;

    #[test]
    fn rows_are_sampled_as_mlflows_ntile_buckets_with_the_last_kept() {
        // 10 rows in 4 buckets of 3, 3, 2, 2: firsts 0, 3, 6, 8, the last replacing 8.
        assert_eq!(sampled_rows(10, 4), [0, 3, 6, 9]);
        // 100 rows in 10 buckets of 10: 0, 10, …, 80, then 99 instead of 90.
        let mut tens: Vec<usize> = (0..9).map(|i| i * 10).collect();
        tens.push(99);
        assert_eq!(sampled_rows(100, 10), tens);
        assert_eq!(sampled_rows(5, 10), [0, 1, 2, 3, 4]);
        assert_eq!(sampled_rows(7, 1), [6]);
        assert_eq!(sampled_rows(7, 0), [6]);
        assert_eq!(sampled_rows(0, 3), Vec::<usize>::new());
    }
}
