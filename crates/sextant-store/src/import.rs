//! Importing an MLflow tracking server's history with its ids kept, so that
//! `runs:/…`, `models:/…` and `mlflow-artifacts:/…` URIs written before the
//! move keep resolving after it.
//!
//! The [`MetaStore`](crate::MetaStore) trait assigns ids, so imports go
//! through their own trait, [`ImportSink`], whose writes take ids as given.
//! [`copy_from_mlflow`] reads an [`MlflowSource`] and feeds a sink:
//! experiments, logged models, runs (in batches, each batch one
//! transaction), then the registry. Every entity is compared by id (a
//! registered model by name, a version by name and number) and skipped when
//! the target has it already, so an interrupted or repeated import picks up
//! where it stopped. An entity that exists is left as it is: its children are
//! not merged.
//!
//! Imported history appends no lifecycle events; the caller records one
//! `import.completed` event with the counts instead ([`ImportSink::record_import`]).
//! Replaying years of history as events would wake every subscriber for
//! changes that happened elsewhere, long ago.

use std::collections::HashSet;

use sextant_core::entities::{DatasetInput, LoggedModelStatus, Metric, ModelOutput, Param, Tag};

use crate::StoreError;
pub use crate::mlflow_source::MlflowSource;
pub use crate::sql_store::open_import_sink;

/// Runs read from the source and written to the target per transaction. A
/// batch is held in memory whole, metric history included, so this stays small.
const RUNS_PER_BATCH: usize = 50;

/// An experiment with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRecord {
    pub experiment_id: i64,
    pub name: String,
    pub artifact_location: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<Tag>,
}

/// A run with everything logged to it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub user_id: String,
    /// The MLflow enum name (`FINISHED`, …).
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
    pub deleted_time: Option<i64>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
    /// The full history, NaN included; scoped to a logged model or dataset
    /// where the source recorded that.
    pub metrics: Vec<Metric>,
    /// The source's latest value of each metric, copied rather than recomputed.
    pub latest_metrics: Vec<Metric>,
    pub datasets: Vec<DatasetInput>,
    pub model_inputs: Vec<String>,
    pub model_outputs: Vec<ModelOutput>,
}

/// A logged model (`m-…`) with its params and tags; its metrics travel with
/// the runs that logged them.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModelRecord {
    pub model_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub artifact_uri: String,
    pub status: LoggedModelStatus,
    pub status_message: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub lifecycle_stage: String,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

/// A registered model with its versions (deleted ones included) and aliases.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredModelRecord {
    pub name: String,
    pub description: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub tags: Vec<Tag>,
    pub versions: Vec<VersionRecord>,
    /// (alias, version).
    pub aliases: Vec<(String, i64)>,
}

/// One model version as the source stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub version: i64,
    pub source: String,
    pub storage_location: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub user_id: Option<String>,
    /// `None`, `Staging`, `Production`, `Archived` or `Deleted_Internal`.
    pub current_stage: String,
    pub status: String,
    pub status_message: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub tags: Vec<Tag>,
}

/// How many entities of one kind were written and how many existed already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub imported: u64,
    pub skipped: u64,
}

impl Count {
    fn add(&mut self, imported: u64, seen: u64) {
        self.imported += imported;
        self.skipped += seen - imported;
    }
}

/// What an import wrote and skipped, per entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub experiments: Count,
    pub runs: Count,
    /// Metric history rows of the imported runs.
    pub metrics: u64,
    pub logged_models: Count,
    pub registered_models: Count,
    pub model_versions: Count,
    pub aliases: Count,
}

impl ImportCounts {
    /// True when nothing at all was written.
    pub fn nothing_imported(&self) -> bool {
        [
            self.experiments,
            self.runs,
            self.logged_models,
            self.registered_models,
            self.model_versions,
            self.aliases,
        ]
        .iter()
        .all(|c| c.imported == 0)
    }

    /// The counts as JSON, for the `import.completed` event and `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let c = |c: Count| serde_json::json!({ "imported": c.imported, "skipped": c.skipped });
        serde_json::json!({
            "experiments": c(self.experiments),
            "runs": c(self.runs),
            "metrics": self.metrics,
            "logged_models": c(self.logged_models),
            "registered_models": c(self.registered_models),
            "model_versions": c(self.model_versions),
            "aliases": c(self.aliases),
        })
    }
}

/// Writes that keep the source's ids. Each method is one transaction and
/// skips entities that exist already (compared by id).
pub trait ImportSink: Send + Sync {
    /// Inserts an experiment with its tags; false when its id exists. An
    /// experiment with the same name under another id is an error.
    fn import_experiment(&self, e: &ExperimentRecord) -> Result<bool, StoreError>;
    /// Those of `run_ids` the target has.
    fn existing_runs(&self, run_ids: &[String]) -> Result<HashSet<String>, StoreError>;
    /// Inserts runs with everything logged to them; returns how many were new.
    fn import_runs(&self, runs: &[RunRecord]) -> Result<u64, StoreError>;
    /// Inserts logged models with params and tags; returns how many were new.
    fn import_logged_models(&self, models: &[LoggedModelRecord]) -> Result<u64, StoreError>;
    /// Inserts a registered model, its missing versions and aliases; returns
    /// (model new?, versions new, aliases new). Imported versions get
    /// approval status `pending` with `approval_note` as its comment.
    fn import_registered_model(
        &self,
        m: &RegisteredModelRecord,
        approval_note: &str,
    ) -> Result<(bool, u64, u64), StoreError>;
    /// Appends the one `import.completed` event, `payload` holding the counts.
    fn record_import(&self, payload: serde_json::Value) -> Result<(), StoreError>;
}

/// Which entity an import is working on, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Experiments,
    LoggedModels,
    Runs,
    Registry,
}

/// The comment imported versions carry with their `pending` approval.
pub const APPROVAL_NOTE: &str =
    "imported from MLflow; approval was not tracked there, review before relying on it";

/// Copies everything from `source` into `sink`, calling `progress` after each
/// batch with the counts so far.
pub fn copy_from_mlflow(
    source: &mut MlflowSource,
    sink: &dyn ImportSink,
    progress: &mut dyn FnMut(Phase, &ImportCounts),
) -> Result<ImportCounts, StoreError> {
    let mut counts = ImportCounts::default();
    for e in source.experiments()? {
        let new = sink.import_experiment(&e)?;
        counts.experiments.add(u64::from(new), 1);
    }
    progress(Phase::Experiments, &counts);

    let models = source.logged_models()?;
    for chunk in models.chunks(RUNS_PER_BATCH) {
        let new = sink.import_logged_models(chunk)?;
        counts.logged_models.add(new, chunk.len() as u64);
    }
    progress(Phase::LoggedModels, &counts);

    let run_ids = source.run_ids()?;
    for chunk in run_ids.chunks(RUNS_PER_BATCH) {
        let existing = sink.existing_runs(chunk)?;
        let missing: Vec<String> = chunk
            .iter()
            .filter(|id| !existing.contains(*id))
            .cloned()
            .collect();
        let mut new = 0;
        if !missing.is_empty() {
            let runs = source.runs(&missing)?;
            new = sink.import_runs(&runs)?;
            counts.metrics += runs.iter().map(|r| r.metrics.len() as u64).sum::<u64>();
        }
        counts.runs.add(new, chunk.len() as u64);
        progress(Phase::Runs, &counts);
    }

    for m in source.registered_models()? {
        let (new, versions, aliases) = sink.import_registered_model(&m, APPROVAL_NOTE)?;
        counts.registered_models.add(u64::from(new), 1);
        counts.model_versions.add(versions, m.versions.len() as u64);
        counts.aliases.add(aliases, m.aliases.len() as u64);
    }
    progress(Phase::Registry, &counts);
    Ok(counts)
}
