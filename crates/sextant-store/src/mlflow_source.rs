//! Reading an MLflow 3 SQL database (its SQLAlchemy schema) directly, on
//! SQLite or PostgreSQL, inside one read-only snapshot.
//!
//! The reader opens the source read-only and never changes it. Tables and
//! columns that older MLflow versions lack (`logged_models`, `workspace`,
//! `inputs.step`, …) are detected and treated as empty. MLflow 3.17 has
//! workspaces; Sextant has none, so only the `default` workspace is read.

use std::collections::{HashMap, HashSet};

use postgres::types::Type;
use postgres::{Client, NoTls};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use sextant_core::entities::{Dataset, DatasetInput, LoggedModelStatus, Metric, ModelOutput, Tag};

use crate::StoreError;
use crate::backend::{Row, SqlValue, numbered_placeholders, placeholders};
use crate::import::{
    ExperimentRecord, LoggedModelRecord, RegisteredModelRecord, RunRecord, VersionRecord,
};
use crate::sqlite_uri::SqliteTarget;

enum Db {
    Sqlite(Connection),
    Postgres(Client),
}

/// An MLflow tracking database, open for reading.
pub struct MlflowSource {
    db: Db,
    tables: HashSet<String>,
    /// `AND workspace = 'default'` when the schema has workspaces.
    ws: &'static str,
    /// Whether `inputs` has the `step` column (MLflow 3).
    input_step: bool,
}

fn config(msg: String) -> StoreError {
    StoreError::Config(msg)
}

/// The file an MLflow SQLite URI names, read as SQLAlchemy reads it
/// (`sqlite:///rel.db` relative, `sqlite:////abs.db` absolute).
fn sqlite_path(uri: &str) -> Result<std::path::PathBuf, StoreError> {
    match crate::sqlite_uri::sqlite_target(uri)? {
        SqliteTarget::File(path) if path.is_file() => Ok(path),
        SqliteTarget::File(path) => Err(config(format!(
            "no MLflow database at {} (from '{uri}')",
            path.display()
        ))),
        SqliteTarget::Memory => Err(config(format!(
            "'{uri}' is an in-memory database: there is nothing to import"
        ))),
    }
}

impl MlflowSource {
    /// Opens `sqlite:///…` or `postgresql[+driver]://…` and starts a
    /// read-only snapshot that lasts as long as the source.
    pub fn open(uri: &str) -> Result<Self, StoreError> {
        let db = if uri.starts_with("sqlite:") {
            let conn = Connection::open_with_flags(
                sqlite_path(uri)?,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(std::time::Duration::from_secs(20))?;
            conn.execute_batch("BEGIN")?;
            Db::Sqlite(conn)
        } else if let Some((scheme, rest)) = uri.split_once("://")
            && (scheme == "postgresql" || scheme == "postgres" || scheme.starts_with("postgresql+"))
        {
            let mut client = Client::connect(&format!("postgresql://{rest}"), NoTls)?;
            client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            Db::Postgres(client)
        } else {
            return Err(config(format!(
                "unsupported MLflow backend store uri '{uri}': use sqlite:///path or postgresql://…"
            )));
        };
        let mut source = MlflowSource {
            db,
            tables: HashSet::new(),
            ws: "",
            input_step: false,
        };
        let tables_sql = match source.db {
            Db::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'table'",
            Db::Postgres(_) => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
            }
        };
        source.tables = source
            .query(tables_sql, &[])?
            .into_iter()
            .filter_map(|r| r.into_iter().next()?.text().ok())
            .collect();
        for needed in ["experiments", "runs", "metrics", "params", "tags"] {
            if !source.tables.contains(needed) {
                return Err(config(format!(
                    "{uri} is not an MLflow tracking database: it has no '{needed}' table"
                )));
            }
        }
        if source.has_column("experiments", "workspace")? {
            source.ws = " AND workspace = 'default'";
        }
        source.input_step = source.has_table("inputs") && source.has_column("inputs", "step")?;
        Ok(source)
    }

    fn has_table(&self, table: &str) -> bool {
        self.tables.contains(table)
    }

    fn has_column(&mut self, table: &str, column: &str) -> Result<bool, StoreError> {
        let sql = match self.db {
            Db::Sqlite(_) => "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?",
            Db::Postgres(_) => {
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = ? AND column_name = ?"
            }
        };
        let rows = self.query(sql, &[table.into(), column.into()])?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .map(SqlValue::int)
            .transpose()?
            .unwrap_or(0)
            > 0)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        match &mut self.db {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let ncol = stmt.column_count();
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(params.iter().map(sqlite_param)))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let mut r = Vec::with_capacity(ncol);
                    for i in 0..ncol {
                        r.push(match row.get::<_, Value>(i)? {
                            Value::Null => SqlValue::Null,
                            Value::Integer(v) => SqlValue::Int(v),
                            Value::Real(v) => SqlValue::Real(v),
                            Value::Text(v) => SqlValue::Text(v),
                            Value::Blob(v) => SqlValue::Text(String::from_utf8_lossy(&v).into()),
                        });
                    }
                    out.push(r);
                }
                Ok(out)
            }
            Db::Postgres(client) => {
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|v| v as _).collect();
                let rows = client.query(numbered_placeholders(sql).as_str(), &refs)?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    /// Rows of `sql` with an `IN ({ids})` list filled from `ids`.
    fn query_in(&mut self, sql: &str, ids: &[String]) -> Result<Vec<Row>, StoreError> {
        let sql = sql.replace("{ids}", &placeholders(ids.len()));
        let params: Vec<SqlValue> = ids.iter().map(SqlValue::from).collect();
        self.query(&sql, &params)
    }

    /// Experiments of the default workspace, with tags, by id.
    pub fn experiments(&mut self) -> Result<Vec<ExperimentRecord>, StoreError> {
        let sql = format!(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, \
             last_update_time FROM experiments WHERE 1 = 1{} ORDER BY experiment_id",
            self.ws
        );
        let mut out = Vec::new();
        for row in self.query(&sql, &[])? {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            let experiment_id = next().int()?;
            let name = next().text()?;
            let artifact_location = next().opt_text()?.unwrap_or_default();
            let lifecycle_stage = next().opt_text()?.unwrap_or_else(|| "active".into());
            let creation_time = next().opt_int()?;
            let last_update_time = next().opt_int()?;
            out.push(ExperimentRecord {
                experiment_id,
                name,
                artifact_location,
                lifecycle_stage,
                creation_time: creation_time.or(last_update_time).unwrap_or(0),
                last_update_time: last_update_time.or(creation_time).unwrap_or(0),
                tags: Vec::new(),
            });
        }
        let mut tags = self.grouped_int(
            "SELECT experiment_id, key, value FROM experiment_tags ORDER BY experiment_id, key",
        )?;
        for e in &mut out {
            e.tags = tags.remove(&e.experiment_id).unwrap_or_default();
        }
        Ok(out)
    }

    fn grouped_int(&mut self, sql: &str) -> Result<HashMap<i64, Vec<Tag>>, StoreError> {
        let mut out: HashMap<i64, Vec<Tag>> = HashMap::new();
        for row in self.query(sql, &[])? {
            let [id, k, v] = three(row)?;
            out.entry(id.int()?).or_default().push(tag(k, v)?);
        }
        Ok(out)
    }

    fn grouped_text(
        &mut self,
        sql: &str,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<Tag>>, StoreError> {
        let mut out: HashMap<String, Vec<Tag>> = HashMap::new();
        for row in self.query_in(sql, ids)? {
            let [id, k, v] = three(row)?;
            out.entry(id.text()?).or_default().push(tag(k, v)?);
        }
        Ok(out)
    }

    /// The condition that keeps rows of default-workspace experiments.
    fn in_workspace(&self) -> String {
        format!(
            "experiment_id IN (SELECT experiment_id FROM experiments WHERE 1 = 1{})",
            self.ws
        )
    }

    /// Ids of the runs to import, oldest first.
    pub fn run_ids(&mut self) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT run_uuid FROM runs WHERE {} ORDER BY experiment_id, start_time, run_uuid",
            self.in_workspace()
        );
        self.query(&sql, &[])?
            .into_iter()
            .map(|r| first(r).text())
            .collect()
    }

    /// The runs with these ids, with everything logged to them.
    pub fn runs(&mut self, ids: &[String]) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs = Vec::with_capacity(ids.len());
        let rows = self.query_in(
            "SELECT run_uuid, experiment_id, name, user_id, status, start_time, end_time, \
             artifact_uri, lifecycle_stage, deleted_time FROM runs WHERE run_uuid IN ({ids})",
            ids,
        )?;
        for row in rows {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            runs.push(RunRecord {
                run_id: next().text()?,
                experiment_id: next().int()?,
                name: next().opt_text()?.unwrap_or_default(),
                user_id: next().opt_text()?.unwrap_or_default(),
                status: next().opt_text()?.unwrap_or_else(|| "FINISHED".into()),
                start_time: next().opt_int()?,
                end_time: next().opt_int()?,
                artifact_uri: next().opt_text()?.unwrap_or_default(),
                lifecycle_stage: next().opt_text()?.unwrap_or_else(|| "active".into()),
                deleted_time: next().opt_int()?,
                params: Vec::new(),
                tags: Vec::new(),
                metrics: Vec::new(),
                latest_metrics: Vec::new(),
                datasets: Vec::new(),
                model_inputs: Vec::new(),
                model_outputs: Vec::new(),
            });
        }
        let index: HashMap<String, usize> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.run_id.clone(), i))
            .collect();
        let mut params = self.grouped_text(
            "SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({ids})",
            ids,
        )?;
        let mut tags = self.grouped_text(
            "SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({ids})",
            ids,
        )?;
        for r in &mut runs {
            // A param is a key/value pair like a tag.
            r.params = params.remove(&r.run_id).unwrap_or_default();
            r.tags = tags.remove(&r.run_id).unwrap_or_default();
        }
        for row in self.query_in(
            "SELECT run_uuid, key, value, is_nan, timestamp, step FROM metrics WHERE run_uuid IN ({ids})",
            ids,
        )? {
            let (run_id, m) = metric_row(row)?;
            if let Some(&i) = index.get(&run_id) {
                runs[i].metrics.push(m);
            }
        }
        for row in self.query_in(
            "SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN ({ids})",
            ids,
        )? {
            let (run_id, m) = metric_row(row)?;
            if let Some(&i) = index.get(&run_id) {
                runs[i].latest_metrics.push(m);
            }
        }
        if self.has_table("logged_model_metrics") {
            self.scope_model_metrics(ids, &index, &mut runs)?;
        }
        if self.has_table("inputs") && self.has_table("datasets") {
            self.run_inputs(ids, &index, &mut runs)?;
        }
        Ok(runs)
    }

    /// Marks the metric rows MLflow also recorded for a logged model with
    /// that model (and dataset); Sextant keeps one row with the scope.
    fn scope_model_metrics(
        &mut self,
        ids: &[String],
        index: &HashMap<String, usize>,
        runs: &mut [RunRecord],
    ) -> Result<(), StoreError> {
        let rows = self.query_in(
            "SELECT run_id, model_id, metric_name, metric_value, metric_timestamp_ms, metric_step, \
             dataset_name, dataset_digest FROM logged_model_metrics WHERE run_id IN ({ids})",
            ids,
        )?;
        for row in rows {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            let run_id = next().text()?;
            let model_id = next().text()?;
            let key = next().text()?;
            let value = next();
            let value = if value == SqlValue::Null {
                f64::NAN
            } else {
                value.real()?
            };
            let (ts, step) = (next().int()?, next().int()?);
            let (dataset_name, dataset_digest) = (next().opt_text()?, next().opt_text()?);
            let Some(&i) = index.get(&run_id) else {
                continue;
            };
            let same = |m: &Metric| {
                m.key == key
                    && m.timestamp == ts
                    && m.step == step
                    && m.model_id.is_none()
                    && (m.value == value || (m.value.is_nan() && value.is_nan()))
            };
            let metric = match runs[i].metrics.iter_mut().find(|m| same(m)) {
                Some(m) => m,
                None => {
                    runs[i]
                        .metrics
                        .push(Metric::new(key.clone(), value, ts, step));
                    runs[i].metrics.last_mut().expect("just pushed")
                }
            };
            metric.model_id = Some(model_id);
            metric.dataset_name = dataset_name;
            metric.dataset_digest = dataset_digest;
        }
        Ok(())
    }

    fn run_inputs(
        &mut self,
        ids: &[String],
        index: &HashMap<String, usize>,
        runs: &mut [RunRecord],
    ) -> Result<(), StoreError> {
        let mut input_tags: HashMap<String, Vec<Tag>> = HashMap::new();
        if self.has_table("input_tags") {
            input_tags = self.grouped_text(
                "SELECT t.input_uuid, t.name, t.value FROM input_tags t JOIN inputs i \
                 ON i.input_uuid = t.input_uuid WHERE i.destination_type = 'RUN' \
                 AND i.destination_id IN ({ids}) ORDER BY t.name",
                ids,
            )?;
        }
        let rows = self.query_in(
            "SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, \
             d.dataset_source, d.dataset_schema, d.dataset_profile FROM inputs i JOIN datasets d \
             ON d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET' \
             AND i.destination_type = 'RUN' AND i.destination_id IN ({ids})",
            ids,
        )?;
        for row in rows {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            let run_id = next().text()?;
            let input_uuid = next().text()?;
            let dataset = Dataset {
                name: next().text()?,
                digest: next().text()?,
                source_type: next().text()?,
                source: next().text()?,
                schema: next().opt_text()?,
                profile: next().opt_text()?,
            };
            if let Some(&i) = index.get(&run_id) {
                runs[i].datasets.push(DatasetInput {
                    dataset,
                    tags: input_tags.remove(&input_uuid).unwrap_or_default(),
                });
            }
        }
        for row in self.query_in(
            "SELECT source_id, destination_id FROM inputs WHERE source_type = 'RUN_INPUT' \
             AND destination_type = 'MODEL_INPUT' AND source_id IN ({ids})",
            ids,
        )? {
            let [run_id, model_id]: [SqlValue; 2] = fixed(row)?;
            if let Some(&i) = index.get(&run_id.text()?) {
                runs[i].model_inputs.push(model_id.text()?);
            }
        }
        let step = if self.input_step { "step" } else { "0" };
        for row in self.query_in(
            &format!(
                "SELECT source_id, destination_id, {step} FROM inputs WHERE source_type = 'RUN_OUTPUT' \
                 AND destination_type = 'MODEL_OUTPUT' AND source_id IN ({{ids}})"
            ),
            ids,
        )? {
            let [run_id, model_id, step] = three(row)?;
            if let Some(&i) = index.get(&run_id.text()?) {
                runs[i].model_outputs.push(ModelOutput {
                    model_id: model_id.text()?,
                    step: step.opt_int()?.unwrap_or(0),
                });
            }
        }
        Ok(())
    }

    /// Logged models of the default workspace with params and tags.
    pub fn logged_models(&mut self) -> Result<Vec<LoggedModelRecord>, StoreError> {
        if !self.has_table("logged_models") {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT model_id, experiment_id, name, artifact_location, status, status_message, \
             model_type, source_run_id, creation_timestamp_ms, last_updated_timestamp_ms, \
             lifecycle_stage FROM logged_models WHERE {} ORDER BY creation_timestamp_ms, model_id",
            self.in_workspace()
        );
        let mut out = Vec::new();
        for row in self.query(&sql, &[])? {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            let model_id = next().text()?;
            let experiment_id = next().int()?;
            let name = next().text()?;
            let artifact_uri = next().text()?;
            let status = next().opt_int()?.unwrap_or(0);
            out.push(LoggedModelRecord {
                status: LoggedModelStatus::parse(&status.to_string())
                    .unwrap_or(LoggedModelStatus::Pending),
                status_message: next().opt_text()?,
                model_type: next().opt_text()?,
                source_run_id: next().opt_text()?,
                creation_timestamp: next().int()?,
                last_updated_timestamp: next().int()?,
                lifecycle_stage: next().opt_text()?.unwrap_or_else(|| "active".into()),
                model_id,
                experiment_id,
                name,
                artifact_uri,
                params: Vec::new(),
                tags: Vec::new(),
            });
        }
        let ids: Vec<String> = out.iter().map(|m| m.model_id.clone()).collect();
        for chunk in ids.chunks(500) {
            let mut params = self.grouped_text(
                "SELECT model_id, param_key, param_value FROM logged_model_params WHERE model_id IN ({ids})",
                chunk,
            )?;
            let mut tags = self.grouped_text(
                "SELECT model_id, tag_key, tag_value FROM logged_model_tags WHERE model_id IN ({ids})",
                chunk,
            )?;
            for m in out.iter_mut().filter(|m| chunk.contains(&m.model_id)) {
                m.params = params.remove(&m.model_id).unwrap_or_default();
                m.tags = tags.remove(&m.model_id).unwrap_or_default();
            }
        }
        Ok(out)
    }

    /// Registered models of the default workspace with tags, every version
    /// (deleted ones included) and aliases.
    pub fn registered_models(&mut self) -> Result<Vec<RegisteredModelRecord>, StoreError> {
        if !self.has_table("registered_models") {
            return Ok(Vec::new());
        }
        let ws = self.ws;
        let mut out = Vec::new();
        for row in self.query(
            &format!(
                "SELECT name, description, creation_time, last_updated_time FROM registered_models \
                 WHERE 1 = 1{ws} ORDER BY name"
            ),
            &[],
        )? {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            let name = next().text()?;
            let description = next().opt_text()?;
            let created = next().opt_int()?;
            let updated = next().opt_int()?;
            out.push(RegisteredModelRecord {
                name,
                description,
                creation_timestamp: created.or(updated).unwrap_or(0),
                last_updated_timestamp: updated.or(created).unwrap_or(0),
                tags: Vec::new(),
                versions: Vec::new(),
                aliases: Vec::new(),
            });
        }
        let index: HashMap<String, usize> = out
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
        for row in self.query(
            &format!(
                "SELECT name, key, value FROM registered_model_tags WHERE 1 = 1{ws} ORDER BY key"
            ),
            &[],
        )? {
            let [name, k, v] = three(row)?;
            if let Some(&i) = index.get(&name.text()?) {
                out[i].tags.push(tag(k, v)?);
            }
        }
        let mut version_tags: HashMap<(String, i64), Vec<Tag>> = HashMap::new();
        for row in self.query(
            &format!("SELECT name, version, key, value FROM model_version_tags WHERE 1 = 1{ws} ORDER BY key"),
            &[],
        )? {
            let [name, version, k, v]: [SqlValue; 4] = fixed(row)?;
            version_tags
                .entry((name.text()?, version.int()?))
                .or_default()
                .push(tag(k, v)?);
        }
        for row in self.query(
            &format!(
                "SELECT name, version, source, storage_location, run_id, run_link, description, \
                 user_id, current_stage, status, status_message, creation_time, last_updated_time \
                 FROM model_versions WHERE 1 = 1{ws} ORDER BY name, version"
            ),
            &[],
        )? {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            let name = next().text()?;
            let version = next().int()?;
            let source = next().opt_text()?.unwrap_or_default();
            let storage_location = next().opt_text()?.unwrap_or_else(|| source.clone());
            let run_id = next().opt_text()?;
            let run_link = next().opt_text()?;
            let description = next().opt_text()?;
            let user_id = next().opt_text()?;
            let current_stage = next().opt_text()?.unwrap_or_else(|| "None".into());
            let status = next().opt_text()?.unwrap_or_else(|| "READY".into());
            let status_message = next().opt_text()?;
            let created = next().opt_int()?;
            let updated = next().opt_int()?;
            let Some(&i) = index.get(&name) else { continue };
            out[i].versions.push(VersionRecord {
                version,
                model_id: model_id_of(&source),
                source,
                storage_location,
                run_id,
                run_link,
                description,
                user_id,
                current_stage,
                status,
                status_message,
                creation_timestamp: created.or(updated).unwrap_or(0),
                last_updated_timestamp: updated.or(created).unwrap_or(0),
                tags: version_tags.remove(&(name, version)).unwrap_or_default(),
            });
        }
        if self.has_table("registered_model_aliases") {
            for row in self.query(
                &format!("SELECT name, alias, version FROM registered_model_aliases WHERE 1 = 1{ws} ORDER BY alias"),
                &[],
            )? {
                let [name, alias, version] = three(row)?;
                if let Some(&i) = index.get(&name.text()?) {
                    out[i].aliases.push((alias.text()?, version.int()?));
                }
            }
        }
        Ok(out)
    }

    /// Names of workspaces other than `default` that hold experiments or
    /// registered models; their contents are not imported.
    pub fn other_workspaces(&mut self) -> Result<Vec<String>, StoreError> {
        if self.ws.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql =
            "SELECT DISTINCT workspace FROM experiments WHERE workspace <> 'default'".to_string();
        if self.has_table("registered_models") {
            sql.push_str(" UNION SELECT DISTINCT workspace FROM registered_models WHERE workspace <> 'default'");
        }
        self.query(&sql, &[])?
            .into_iter()
            .map(|r| first(r).text())
            .collect()
    }
}

/// The logged model a `models:/m-…` source names, as Sextant records it.
fn model_id_of(source: &str) -> Option<String> {
    let id = source.strip_prefix("models:/")?;
    (id.starts_with("m-") && !id.contains(['/', '@'])).then(|| id.to_string())
}

fn sqlite_param(v: &SqlValue) -> rusqlite::types::Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Int(i) => Value::Integer(*i),
        SqlValue::Real(f) => Value::Real(*f),
        SqlValue::Text(s) => Value::Text(s.clone()),
    }
}

fn pg_row(row: &postgres::Row) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.into()
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?.map(i64::from).into()
        } else if *t == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?.map(i64::from).into()
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(i64::from).into()
        } else if *t == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)?.into()
        } else if *t == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i)?.map(f64::from).into()
        } else {
            row.try_get::<_, Option<String>>(i)?.into()
        };
        out.push(v);
    }
    Ok(out)
}

fn fixed<const N: usize>(row: Row) -> Result<[SqlValue; N], StoreError> {
    row.try_into()
        .map_err(|_| StoreError::Corrupt("unexpected column count in the MLflow database".into()))
}

fn three(row: Row) -> Result<[SqlValue; 3], StoreError> {
    fixed(row)
}

fn first(row: Row) -> SqlValue {
    row.into_iter().next().unwrap_or(SqlValue::Null)
}

/// A tag whose NULL value (MLflow allows one) reads as empty.
fn tag(k: SqlValue, v: SqlValue) -> Result<Tag, StoreError> {
    Ok(Tag::new(k.text()?, v.opt_text()?.unwrap_or_default()))
}

/// `(run_uuid, metric)` from `run_uuid, key, value, is_nan, timestamp, step`.
fn metric_row(row: Row) -> Result<(String, Metric), StoreError> {
    let [run_id, key, value, is_nan, ts, step]: [SqlValue; 6] = fixed(row)?;
    let value = if is_nan.opt_int()?.unwrap_or(0) != 0 {
        f64::NAN
    } else {
        value.real()?
    };
    Ok((
        run_id.text()?,
        Metric::new(
            key.text()?,
            value,
            ts.opt_int()?.unwrap_or(0),
            step.opt_int()?.unwrap_or(0),
        ),
    ))
}
