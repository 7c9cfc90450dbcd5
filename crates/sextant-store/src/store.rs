//! The [`MetaStore`] trait: every metadata operation Sextant needs, with the
//! domain rules (validation, lifecycle checks, immutability) applied inside,
//! so every caller gets the same behaviour.

use sextant_core::endpoints::StoredEndpoint;
use sextant_core::entities::{
    DatasetInput, DatasetSummary, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelOutput,
    NewLoggedModel, NewRun, Page, Param, Run, RunInfo, RunStatus, Tag, ViewType,
};
use sextant_core::monitors::{MonitorRun, StoredMonitor};
use sextant_core::pipeline_runs::{
    Applied, CacheEntry, ClaimedTask, Pipeline, PipelineRun, PipelineRunStatus, Task,
};
use sextant_core::registry::{
    Approval, ApprovalSettingsUpdate, Event, FourEyes, ModelVersion, NewModelVersion,
    RegisteredModel, Stage,
};
use sextant_core::search::{Filter, OrderBy};
use sextant_core::webhooks::{
    DeliveryAttempt, DeliveryState, NewWebhook, PendingDelivery, Webhook, WebhookUpdate,
};

use crate::{ClockedStore, StoreError};

/// The most summaries one dataset search answers (MLflow's limit).
pub const MAX_DATASET_SUMMARIES: u64 = 1000;

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

/// A search over registered models (filter and order_by parsed with
/// `SearchKind::RegisteredModels`).
#[derive(Debug, Clone, Default)]
pub struct RegisteredModelSearch {
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub max_results: u64,
    pub offset: u64,
}

/// A search over model versions (`SearchKind::ModelVersions`).
#[derive(Debug, Clone, Default)]
pub struct ModelVersionSearch {
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub max_results: u64,
    pub offset: u64,
}

/// A listing of pipeline runs, optionally of one pipeline or in one status.
#[derive(Debug, Clone, Default)]
pub struct PipelineRunSearch {
    pub pipeline: Option<String>,
    pub status: Option<PipelineRunStatus>,
    pub max_results: u64,
    pub offset: u64,
}

/// Which keys of an experiment's runs [`MetaStore::experiment_keys`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKeyKind {
    Metrics,
    Params,
    Tags,
}

/// Sextant's metadata: experiments, runs, logged models, the model registry,
/// the events feed, pipelines and their task queue, endpoints, monitors and
/// webhooks. The writes whose time the caller's clock gives (leases, due
/// times, the controllers' records) are [`ClockedStore`]'s.
///
/// Every lifecycle change appends one [`Event`] in the same transaction as
/// the change itself; task claims, heartbeats and outcomes are queue traffic,
/// not lifecycle changes, and append none.
pub trait MetaStore: ClockedStore + Send + Sync {
    /// Users, roles, grants and tokens, in the same database.
    fn auth(&self) -> &dyn crate::AuthStore;
    /// The hash-chained audit log, in the same database.
    fn audit(&self) -> &dyn crate::AuditStore;

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
    /// The latest value, step and time and the smallest and largest value
    /// of `keys` (every key when empty) of each run named, by run id and
    /// key; a key a run never logged has no entry.
    fn metric_summaries(
        &self,
        run_ids: &[String],
        keys: &[String],
    ) -> Result<Vec<sextant_core::entities::MetricSummary>, StoreError>;
    /// Searches runs.
    fn search_runs(&self, q: &RunSearch) -> Result<Page<Run>, StoreError>;
    /// The distinct metric, param or tag keys of an experiment's runs
    /// (deleted runs included), sorted, at most `limit` of them: what a
    /// column chooser offers when runs carry thousands of keys.
    fn experiment_keys(
        &self,
        experiment_id: i64,
        kind: RunKeyKind,
        limit: u64,
    ) -> Result<Vec<String>, StoreError>;
    /// The distinct (dataset, context) pairs the runs of these experiments
    /// used, at most [`MAX_DATASET_SUMMARIES`] of them.
    fn search_dataset_summaries(
        &self,
        experiment_ids: &[i64],
    ) -> Result<Vec<DatasetSummary>, StoreError>;

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

    // --- Model registry. ---

    /// Creates a registered model; an existing name is RESOURCE_ALREADY_EXISTS.
    fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<RegisteredModel, StoreError>;
    /// Returns a registered model with its tags, aliases and latest versions.
    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, StoreError>;
    /// Renames a model and all its versions, aliases and tags.
    fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel, StoreError>;
    /// Sets the description of a model.
    fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel, StoreError>;
    /// Changes the approval settings `update` names, keeping the others;
    /// appends `registered_model.approval_settings_updated` when they change.
    fn set_registered_model_approval_settings(
        &self,
        name: &str,
        update: &ApprovalSettingsUpdate,
    ) -> Result<RegisteredModel, StoreError>;
    /// Deletes a model with its versions, tags and aliases (hard delete, as MLflow).
    fn delete_registered_model(&self, name: &str) -> Result<(), StoreError>;
    /// Searches registered models.
    fn search_registered_models(
        &self,
        q: &RegisteredModelSearch,
    ) -> Result<Page<RegisteredModel>, StoreError>;
    /// Upserts a tag of a registered model.
    fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<(), StoreError>;
    /// Deletes a tag of a registered model (no error if absent, as MLflow).
    fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<(), StoreError>;
    /// Points an alias at a version (upsert); reserved aliases are refused.
    fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<(), StoreError>;
    /// Removes an alias.
    fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<(), StoreError>;
    /// The version an alias names; `latest` (any case) is the highest version.
    fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion, StoreError>;

    /// Registers a new version (number = max + 1). The source is resolved to
    /// a storage location and must lie inside the artifact root of the run
    /// or logged model it names; `models:/m-…` sources set `run_id` from the
    /// logged model's source run and append to its `mlflow.modelVersions` tag.
    fn create_model_version(&self, new: &NewModelVersion) -> Result<ModelVersion, StoreError>;
    /// Returns a version (deleted versions are not found).
    fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion, StoreError>;
    /// Sets the description of a version.
    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<ModelVersion, StoreError>;
    /// Deletes a version and the aliases pointing at it.
    fn delete_model_version(&self, name: &str, version: i64) -> Result<(), StoreError>;
    /// Searches versions.
    fn search_model_versions(
        &self,
        q: &ModelVersionSearch,
    ) -> Result<Page<ModelVersion>, StoreError>;
    /// Upserts a tag of a version.
    fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<(), StoreError>;
    /// Deletes a tag of a version.
    fn delete_model_version_tag(
        &self,
        name: &str,
        version: i64,
        key: &str,
    ) -> Result<(), StoreError>;
    /// Moves a version to a stage; with `archive_existing` (Staging or
    /// Production only) other versions in that stage move to Archived.
    fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion, StoreError>;
    /// The newest version per stage, restricted to `stages` unless empty.
    fn get_latest_versions(
        &self,
        name: &str,
        stages: &[Stage],
    ) -> Result<Vec<ModelVersion>, StoreError>;
    /// Records an approval decision (status, actor, comment; time = now).
    /// A version already approved or rejected keeps its decision
    /// (`InvalidState`) unless `force`; every decision stays in the events.
    /// A pending version has no actor and no decision time. With
    /// `four_eyes` held, the actor approving a version they created is
    /// refused (`PermissionDenied`) in the same transaction, while the
    /// model's `require_distinct_approver` is on.
    fn set_model_version_approval(
        &self,
        name: &str,
        version: i64,
        approval: &Approval,
        force: bool,
        four_eyes: FourEyes,
    ) -> Result<ModelVersion, StoreError>;

    /// Events with id greater than `after`, oldest first, at most `limit`,
    /// restricted to `kinds` unless empty (a kind ending in `.*` matches a prefix).
    fn events_after(
        &self,
        after: i64,
        kinds: &[String],
        limit: u64,
    ) -> Result<Vec<Event>, StoreError>;
    /// The id of the newest event (0 when there is none).
    fn last_event_id(&self) -> Result<i64, StoreError>;

    /// Creates a webhook; it receives events appended after this call.
    fn create_webhook(&self, new: &NewWebhook) -> Result<Webhook, StoreError>;
    /// Returns a live webhook (with its secret).
    fn get_webhook(&self, webhook_id: &str) -> Result<Webhook, StoreError>;
    /// Live webhooks, newest first.
    fn list_webhooks(&self, max_results: u64, offset: u64) -> Result<Page<Webhook>, StoreError>;
    /// Changes the fields of a webhook that the update sets.
    fn update_webhook(
        &self,
        webhook_id: &str,
        update: &WebhookUpdate,
    ) -> Result<Webhook, StoreError>;
    /// Deletes a webhook (dropping its secret) and cancels its undelivered events.
    fn delete_webhook(&self, webhook_id: &str) -> Result<(), StoreError>;
    /// Replaces a live webhook's stored secret `from` by `to` (re-sealed
    /// under a new key) unless it changed meanwhile; whether it did.
    fn reseal_webhook_secret(
        &self,
        webhook_id: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError>;
    /// Live, active webhooks: the subscribers the delivery fan-out matches.
    fn active_webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// The id of the last event the webhook fan-out has handled.
    fn webhook_cursor(&self) -> Result<i64, StoreError>;
    /// Claims up to `limit` deliveries due at `now` for `lease_ms`.
    fn claim_webhook_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u64,
    ) -> Result<Vec<PendingDelivery>, StoreError>;
    /// Logs an attempt of the outbox row `outbox_id` and sets its state.
    fn record_webhook_attempt(
        &self,
        outbox_id: i64,
        attempt: &DeliveryAttempt,
        state: DeliveryState,
    ) -> Result<(), StoreError>;
    /// The newest `limit` delivery attempts to a webhook, oldest first.
    fn webhook_delivery_log(
        &self,
        webhook_id: &str,
        limit: u64,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;

    // --- Pipelines, their runs and the task queue. ---

    /// Stores a pipeline's spec under its name, creating or replacing it,
    /// applied by `applied_by` (`None` without authentication). Applying
    /// the same text again is `Unchanged` but still records who applied it.
    fn put_pipeline(
        &self,
        name: &str,
        spec: &str,
        applied_by: Option<&str>,
    ) -> Result<Applied, StoreError>;
    /// Returns a stored pipeline.
    fn get_pipeline(&self, name: &str) -> Result<Pipeline, StoreError>;
    /// Stored pipelines by name.
    fn list_pipelines(&self, max_results: u64, offset: u64) -> Result<Page<Pipeline>, StoreError>;
    /// Returns a pipeline run.
    fn get_pipeline_run(&self, id: &str) -> Result<PipelineRun, StoreError>;
    /// Pipeline runs, newest first.
    fn list_pipeline_runs(&self, q: &PipelineRunSearch) -> Result<Page<PipelineRun>, StoreError>;
    /// Returns a task.
    fn get_task(&self, task_id: i64) -> Result<Task, StoreError>;
    /// The tasks of a run in enqueue order.
    fn tasks_of_run(&self, pipeline_run: &str) -> Result<Vec<Task>, StoreError>;
    /// Claims the oldest task that is queued and due at `now`, or running
    /// with a lease expired at `now`, for `worker` until `now + lease_ms`;
    /// bumps its attempt and fencing token. Two claimers never get the same
    /// task under the same token.
    fn claim_task(
        &self,
        worker: &str,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<ClaimedTask>, StoreError>;
    /// Records a succeeded step execution in the step cache.
    fn put_cache_entry(&self, entry: &CacheEntry) -> Result<(), StoreError>;
    /// A step's cache entries created at or after `since` (ms), newest
    /// first, at most `max_results`; only those with `key` when given.
    fn cache_entries(
        &self,
        pipeline: &str,
        step: &str,
        key: Option<&str>,
        since: i64,
        max_results: u64,
    ) -> Result<Vec<CacheEntry>, StoreError>;

    // --- Serving endpoints. ---

    /// Returns an endpoint.
    fn get_endpoint(&self, name: &str) -> Result<StoredEndpoint, StoreError>;
    /// Every endpoint by name.
    fn list_endpoints(&self) -> Result<Vec<StoredEndpoint>, StoreError>;
    /// Deletes an endpoint; appends `endpoint.deleted`.
    fn delete_endpoint(&self, name: &str) -> Result<(), StoreError>;

    // --- Monitors. ---

    /// Returns a monitor.
    fn get_monitor(&self, name: &str) -> Result<StoredMonitor, StoreError>;
    /// Every monitor by name.
    fn list_monitors(&self) -> Result<Vec<StoredMonitor>, StoreError>;
    /// Deletes a monitor and its runs; appends `monitor.deleted`.
    fn delete_monitor(&self, name: &str) -> Result<(), StoreError>;
    /// Records a started monitor run.
    fn start_monitor_run(&self, run: &MonitorRun) -> Result<MonitorRun, StoreError>;
    /// Returns a monitor run.
    fn get_monitor_run(&self, id: &str) -> Result<MonitorRun, StoreError>;
    /// A monitor's runs, newest first, at most `max_results`.
    fn list_monitor_runs(
        &self,
        monitor: &str,
        max_results: u64,
    ) -> Result<Vec<MonitorRun>, StoreError>;
}

/// Opens the store named by `uri` (`sqlite:///path`, `sqlite://:memory:`,
/// `postgresql://…`) without migrating it. `default_artifact_root` is the
/// root under which experiments get their artifact location.
pub fn open(uri: &str, default_artifact_root: &str) -> Result<Box<dyn MetaStore>, StoreError> {
    crate::sql_store::open(uri, default_artifact_root, &crate::StoreOptions::default())
}

/// Opens the store at `uri` as [`open`] does, with `options` (the reads'
/// time limit, SQLite's `synchronous` mode).
pub fn open_with(
    uri: &str,
    default_artifact_root: &str,
    options: &crate::StoreOptions,
) -> Result<Box<dyn MetaStore>, StoreError> {
    crate::sql_store::open(uri, default_artifact_root, options)
}

/// Brings the schema of the store at `uri` to the latest version; returns the
/// versions applied. On PostgreSQL this runs under an advisory lock, so
/// several servers may start at once.
pub fn upgrade(uri: &str, default_artifact_root: &str) -> Result<Vec<u32>, StoreError> {
    crate::sql_store::upgrade(uri, default_artifact_root)
}

/// Brings the schema to version `target` at most: for tests of a migration,
/// which start from a store at the version before it. Not for production
/// use (a store below the latest version does not open).
#[doc(hidden)]
pub fn upgrade_to(
    uri: &str,
    default_artifact_root: &str,
    target: u32,
) -> Result<Vec<u32>, StoreError> {
    crate::sql_store::upgrade_to(uri, default_artifact_root, target)
}
