//! The [`MetaStore`] trait: every metadata operation Sextant needs, with the
//! domain rules (validation, lifecycle checks, immutability) applied inside,
//! so every caller gets the same behaviour.

use sextant_core::entities::{
    DatasetInput, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelOutput, NewLoggedModel,
    NewRun, Page, Param, Run, RunInfo, RunStatus, Tag, ViewType,
};
use sextant_core::search::{Filter, OrderBy};

use crate::StoreError;

/// A search over experiments.
#[derive(Debug, Clone, Default)]
pub struct ExperimentSearch {
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub view: ViewType,
    pub max_results: u64,
    pub offset: u64,
}

/// A search over runs.
#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    pub experiment_ids: Vec<i64>,
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub view: ViewType,
    pub max_results: u64,
    pub offset: u64,
}

/// A search over logged models; `order_by` holds (field, ascending) pairs.
#[derive(Debug, Clone, Default)]
pub struct LoggedModelSearch {
    pub experiment_ids: Vec<i64>,
    pub filter: Filter,
    pub order_by: Vec<(String, bool)>,
    pub max_results: u64,
    pub offset: u64,
}

/// Sextant's metadata: experiments, runs and logged models (the registry,
/// pipelines, endpoints and monitors join later; their tables exist already).
pub trait MetaStore: Send + Sync {
    /// Creates an experiment; `artifact_location` defaults to `<root>/<id>`.
    fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<i64, StoreError>;
    /// Returns an experiment, deleted ones included.
    fn get_experiment(&self, experiment_id: i64) -> Result<Experiment, StoreError>;
    /// Returns the experiment with that exact name.
    fn get_experiment_by_name(&self, name: &str) -> Result<Experiment, StoreError>;
    /// Searches experiments.
    fn search_experiments(&self, q: &ExperimentSearch) -> Result<Page<Experiment>, StoreError>;
    /// Renames an active experiment.
    fn rename_experiment(&self, experiment_id: i64, new_name: &str) -> Result<(), StoreError>;
    /// Soft-deletes an experiment and its runs.
    fn delete_experiment(&self, experiment_id: i64) -> Result<(), StoreError>;
    /// Restores a deleted experiment and its runs.
    fn restore_experiment(&self, experiment_id: i64) -> Result<(), StoreError>;
    /// Sets (upserts) a tag on an active experiment.
    fn set_experiment_tag(&self, experiment_id: i64, tag: &Tag) -> Result<(), StoreError>;
    /// Deletes a tag of an experiment; a missing tag is an error.
    fn delete_experiment_tag(&self, experiment_id: i64, key: &str) -> Result<(), StoreError>;

    /// Creates a run in an active experiment.
    fn create_run(&self, new: &NewRun) -> Result<Run, StoreError>;
    /// Returns a run with its latest metrics, params, tags, inputs and outputs.
    fn get_run(&self, run_id: &str) -> Result<Run, StoreError>;
    /// Changes the status, end time or name of an active run.
    fn update_run(
        &self,
        run_id: &str,
        status: Option<RunStatus>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunInfo, StoreError>;
    /// Soft-deletes a run.
    fn delete_run(&self, run_id: &str) -> Result<(), StoreError>;
    /// Restores a deleted run.
    fn restore_run(&self, run_id: &str) -> Result<(), StoreError>;
    /// Logs metrics, params and tags atomically; exact duplicate metrics are
    /// ignored and a param may only be re-logged with the same value.
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<(), StoreError>;
    /// Deletes a tag of an active run; a missing tag is an error.
    fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), StoreError>;
    /// Records datasets and logged models used by a run.
    fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        model_ids: &[String],
    ) -> Result<(), StoreError>;
    /// Records logged models produced by a run.
    fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<(), StoreError>;
    /// The history of one metric ordered by (timestamp, step, value).
    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: u64,
        offset: u64,
    ) -> Result<Page<Metric>, StoreError>;
    /// Histories of one metric over several runs, sampled to at most
    /// `max_results` steps per run (first and last step kept), with `run_id` set.
    fn metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        steps: Option<(i64, i64)>,
        max_results: u64,
    ) -> Result<Vec<Metric>, StoreError>;
    /// Searches runs.
    fn search_runs(&self, q: &RunSearch) -> Result<Page<Run>, StoreError>;

    /// Creates a logged model in `PENDING` state.
    fn create_logged_model(&self, new: &NewLoggedModel) -> Result<LoggedModel, StoreError>;
    /// Returns a logged model; deleted ones only when `allow_deleted`.
    fn get_logged_model(
        &self,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<LoggedModel, StoreError>;
    /// Sets the upload status of a logged model.
    fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel, StoreError>;
    /// Soft-deletes a logged model.
    fn delete_logged_model(&self, model_id: &str) -> Result<(), StoreError>;
    /// Upserts tags on a logged model.
    fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<(), StoreError>;
    /// Deletes a tag of a logged model; a missing tag is an error.
    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<(), StoreError>;
    /// Adds params to a logged model.
    fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<(), StoreError>;
    /// Searches logged models.
    fn search_logged_models(&self, q: &LoggedModelSearch) -> Result<Page<LoggedModel>, StoreError>;
}

/// Opens the store named by `uri` (`sqlite:///path`, `sqlite://:memory:`,
/// `postgresql://…`) without migrating it. `default_artifact_root` is the
/// root under which experiments get their artifact location.
pub fn open(uri: &str, default_artifact_root: &str) -> Result<Box<dyn MetaStore>, StoreError> {
    crate::sql_store::open(uri, default_artifact_root)
}

/// Brings the schema of the store at `uri` to the latest version; returns the
/// versions applied. On PostgreSQL this runs under an advisory lock, so
/// several servers may start at once.
pub fn upgrade(uri: &str, default_artifact_root: &str) -> Result<Vec<u32>, StoreError> {
    crate::sql_store::upgrade(uri, default_artifact_root)
}
