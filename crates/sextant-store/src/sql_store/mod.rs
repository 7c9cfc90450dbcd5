//! The one SQL implementation of [`MetaStore`], shared by both backends.
//! Each trait method is one transaction; the work lives in the submodules.

mod audit;
mod auth;
mod endpoints;
mod events;
mod experiments;
mod four_eyes;
mod group;
mod import;
mod load;
mod logged_models;
mod logging;
mod monitors;
mod pipelines;
mod registry;
mod runs;
mod sources;
mod versions;
mod webhooks;

pub use audit::row_hash as audit_row_hash;
pub use events::appended as events_appended;
pub use import::open_import_sink;

use sextant_core::endpoints::StoredEndpoint;
use sextant_core::entities::{
    DatasetInput, DatasetSummary, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelOutput,
    NewLoggedModel, NewRun, Page, Param, Run, RunInfo, RunStatus, Tag,
};
use sextant_core::monitors::{MonitorRun, StoredMonitor};
use sextant_core::pipeline_runs::{Applied, CacheEntry, ClaimedTask, Pipeline, PipelineRun, Task};
use sextant_core::registry::{
    Approval, ApprovalSettingsUpdate, Event, FourEyes, ModelVersion, NewModelVersion,
    RegisteredModel, Stage,
};

use sextant_core::webhooks::{
    DeliveryAttempt, DeliveryState, NewWebhook, PendingDelivery, Webhook, WebhookUpdate,
};

use crate::backend::Backend;
use crate::postgres::Postgres;
use crate::sqlite::Sqlite;
use crate::store::{
    ExperimentSearch, LoggedModelSearch, ModelVersionSearch, PipelineRunSearch,
    RegisteredModelSearch, RunSearch,
};
use crate::{AuditStore, AuthStore, MetaStore, StoreError, StoreOptions, migrations};
use group::GroupCommit;
pub(crate) use sextant_core::clock::now_ms;

/// Advisory-lock key that serializes migrations across servers on PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x5e_47_a4_70;

/// [`MetaStore`] over any [`Backend`].
pub struct SqlStore<B> {
    db: B,
    root: String,
    /// Small log-batch calls share transactions.
    group: GroupCommit<group::Batch>,
    /// So do run creations.
    creates: GroupCommit<group::CreateRun>,
}

/// Items (metrics, params and tags) up to which a log-batch call goes
/// through group commit: the single-value calls the MLflow client makes
/// one by one. Larger batches pay for their own commit easily.
const GROUP_COMMIT_ITEMS: usize = 16;

/// `root/child`, with exactly one slash between them (`mlflow-artifacts:` + `0`
/// gives `mlflow-artifacts:/0`, as MLflow writes it).
pub(crate) fn child_uri(root: &str, child: &str) -> String {
    format!("{}/{}", root.trim_end_matches('/'), child)
}

enum Scheme {
    Sqlite,
    Postgres,
}

fn scheme(uri: &str) -> Result<Scheme, StoreError> {
    if uri.starts_with("sqlite://") {
        Ok(Scheme::Sqlite)
    } else if uri.starts_with("postgresql://") || uri.starts_with("postgres://") {
        Ok(Scheme::Postgres)
    } else {
        Err(StoreError::Config(format!(
            "unsupported backend store uri '{uri}': use sqlite:///path or postgresql://…"
        )))
    }
}

pub(crate) fn open(
    uri: &str,
    root: &str,
    options: &StoreOptions,
) -> Result<Box<dyn MetaStore>, StoreError> {
    if uri == "sqlite://:memory:" {
        return Err(StoreError::Config(
            "an in-memory store vanishes between upgrade and open; use open_in_memory".into(),
        ));
    }
    match scheme(uri)? {
        Scheme::Sqlite => {
            let db = Sqlite::open(uri)?.with_options(options.clone())?;
            Ok(Box::new(SqlStore::checked(db, root)?))
        }
        Scheme::Postgres => {
            let db = Postgres::open(uri)?.with_options(options.clone());
            Ok(Box::new(SqlStore::checked(db, root)?))
        }
    }
}

/// A private, migrated in-memory SQLite store (tests and throwaway servers).
pub fn open_in_memory(root: &str) -> Result<Box<dyn MetaStore>, StoreError> {
    let db = Sqlite::open("sqlite://:memory:")?;
    db.write(|c| migrations::apply(c, root, now_ms()))?;
    Ok(Box::new(SqlStore {
        db,
        root: root.to_string(),
        group: GroupCommit::default(),
        creates: GroupCommit::default(),
    }))
}

pub(crate) fn upgrade(uri: &str, root: &str) -> Result<Vec<u32>, StoreError> {
    upgrade_to(uri, root, u32::MAX)
}

pub(crate) fn upgrade_to(uri: &str, root: &str, target: u32) -> Result<Vec<u32>, StoreError> {
    match scheme(uri)? {
        Scheme::Sqlite => {
            let db = Sqlite::open(uri)?;
            db.write(|c| migrations::apply_to(c, root, now_ms(), target))
        }
        Scheme::Postgres => {
            let db = Postgres::open(uri)?;
            // The lock lives in its own session so that it spans the whole
            // migration transaction and is released even if that fails.
            let mut lock = db.client()?;
            lock.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])?;
            let out = db.write(|c| migrations::apply_to(c, root, now_ms(), target));
            lock.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])?;
            out
        }
    }
}

impl<B: Backend> SqlStore<B> {
    fn checked(db: B, root: &str) -> Result<Self, StoreError> {
        db.read(migrations::check)?;
        Ok(SqlStore {
            db,
            root: root.to_string(),
            group: GroupCommit::default(),
            creates: GroupCommit::default(),
        })
    }
}

impl<B: Backend> MetaStore for SqlStore<B> {
    fn auth(&self) -> &dyn AuthStore {
        self
    }
    fn audit(&self) -> &dyn AuditStore {
        self
    }

    fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<i64, StoreError> {
        self.db
            .write(|c| experiments::create(c, &self.root, name, artifact_location, tags))
    }
    fn get_experiment(&self, experiment_id: i64) -> Result<Experiment, StoreError> {
        self.db.read(|c| experiments::get(c, experiment_id))
    }
    fn get_experiment_by_name(&self, name: &str) -> Result<Experiment, StoreError> {
        self.db.read(|c| experiments::get_by_name(c, name))
    }
    fn search_experiments(&self, q: &ExperimentSearch) -> Result<Page<Experiment>, StoreError> {
        self.db.read(|c| experiments::search(c, q))
    }
    fn rename_experiment(&self, experiment_id: i64, new_name: &str) -> Result<(), StoreError> {
        self.db
            .write(|c| experiments::rename(c, experiment_id, new_name))
    }
    fn delete_experiment(&self, experiment_id: i64) -> Result<(), StoreError> {
        self.db
            .write(|c| experiments::set_stage(c, experiment_id, false))
    }
    fn restore_experiment(&self, experiment_id: i64) -> Result<(), StoreError> {
        self.db
            .write(|c| experiments::set_stage(c, experiment_id, true))
    }
    fn set_experiment_tag(&self, experiment_id: i64, tag: &Tag) -> Result<(), StoreError> {
        self.db
            .write(|c| experiments::set_tag(c, experiment_id, tag))
    }
    fn delete_experiment_tag(&self, experiment_id: i64, key: &str) -> Result<(), StoreError> {
        self.db
            .write(|c| experiments::delete_tag(c, experiment_id, key))
    }

    fn create_run(&self, new: &NewRun) -> Result<Run, StoreError> {
        let create = group::CreateRun {
            new: new.clone(),
            actor: crate::actor::current(),
        };
        let run = self.creates.write(&self.db, create)?;
        self.db.runs_created(1);
        Ok(run)
    }
    fn get_run(&self, run_id: &str) -> Result<Run, StoreError> {
        self.db.read(|c| runs::get(c, run_id))
    }
    fn update_run(
        &self,
        run_id: &str,
        status: Option<RunStatus>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunInfo, StoreError> {
        self.db
            .write(|c| runs::update(c, run_id, status, end_time, run_name))
    }
    fn delete_run(&self, run_id: &str) -> Result<(), StoreError> {
        self.db.write(|c| runs::set_stage(c, run_id, false))
    }
    fn restore_run(&self, run_id: &str) -> Result<(), StoreError> {
        self.db.write(|c| runs::set_stage(c, run_id, true))
    }
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<(), StoreError> {
        logging::check_batch(metrics, params, tags)?;
        if metrics.len() + params.len() + tags.len() <= GROUP_COMMIT_ITEMS {
            let batch = group::Batch {
                run_id: run_id.to_string(),
                metrics: metrics.to_vec(),
                params: params.to_vec(),
                tags: tags.to_vec(),
            };
            return self.group.write(&self.db, batch);
        }
        let batch = logging::RunBatch {
            run_id,
            metrics,
            params,
            tags,
        };
        logging::write_batch(&self.db, batch)
    }
    fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), StoreError> {
        self.db.write(|c| runs::delete_tag(c, run_id, key))
    }
    fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        model_ids: &[String],
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| logging::log_inputs(c, run_id, datasets, model_ids))
    }
    fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<(), StoreError> {
        self.db.write(|c| logging::log_outputs(c, run_id, models))
    }
    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: u64,
        offset: u64,
    ) -> Result<Page<Metric>, StoreError> {
        self.db
            .read(|c| logging::history(c, run_id, key, max_results, offset))
    }
    fn metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        steps: Option<(i64, i64)>,
        max_results: u64,
    ) -> Result<Vec<Metric>, StoreError> {
        self.db
            .read(|c| logging::bulk_interval(c, run_ids, key, steps, max_results))
    }
    fn metric_summaries(
        &self,
        run_ids: &[String],
        keys: &[String],
    ) -> Result<Vec<sextant_core::entities::MetricSummary>, StoreError> {
        self.db.read(|c| logging::summaries(c, run_ids, keys))
    }
    fn search_runs(&self, q: &RunSearch) -> Result<Page<Run>, StoreError> {
        self.db.read(|c| runs::search(c, q))
    }
    fn experiment_keys(
        &self,
        experiment_id: i64,
        kind: crate::store::RunKeyKind,
        limit: u64,
    ) -> Result<Vec<String>, StoreError> {
        self.db
            .read(|c| runs::experiment_keys(c, experiment_id, kind, limit))
    }
    fn search_dataset_summaries(
        &self,
        experiment_ids: &[i64],
    ) -> Result<Vec<DatasetSummary>, StoreError> {
        self.db
            .read(|c| logging::dataset_summaries(c, experiment_ids))
    }

    fn create_logged_model(&self, new: &NewLoggedModel) -> Result<LoggedModel, StoreError> {
        self.db.write(|c| logged_models::create(c, new))
    }
    fn get_logged_model(
        &self,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<LoggedModel, StoreError> {
        self.db
            .read(|c| logged_models::get(c, model_id, allow_deleted))
    }
    fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel, StoreError> {
        self.db
            .write(|c| logged_models::finalize(c, model_id, status))
    }
    fn delete_logged_model(&self, model_id: &str) -> Result<(), StoreError> {
        self.db.write(|c| logged_models::delete(c, model_id))
    }
    fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<(), StoreError> {
        self.db
            .write(|c| logged_models::set_tags(c, model_id, tags))
    }
    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<(), StoreError> {
        self.db
            .write(|c| logged_models::delete_tag(c, model_id, key))
    }
    fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<(), StoreError> {
        self.db
            .write(|c| logged_models::log_params(c, model_id, params))
    }
    fn search_logged_models(&self, q: &LoggedModelSearch) -> Result<Page<LoggedModel>, StoreError> {
        self.db.read(|c| logged_models::search(c, q))
    }

    fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<RegisteredModel, StoreError> {
        self.db
            .write(|c| registry::create(c, name, description, tags))
    }
    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, StoreError> {
        self.db.read(|c| registry::get(c, name))
    }
    fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel, StoreError> {
        self.db.write(|c| registry::rename(c, name, new_name))
    }
    fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel, StoreError> {
        self.db.write(|c| registry::update(c, name, description))
    }
    fn set_registered_model_approval_settings(
        &self,
        name: &str,
        update: &ApprovalSettingsUpdate,
    ) -> Result<RegisteredModel, StoreError> {
        self.db
            .write(|c| registry::set_approval_settings(c, name, update))
    }
    fn delete_registered_model(&self, name: &str) -> Result<(), StoreError> {
        self.db.write(|c| registry::delete(c, name))
    }
    fn search_registered_models(
        &self,
        q: &RegisteredModelSearch,
    ) -> Result<Page<RegisteredModel>, StoreError> {
        self.db.read(|c| registry::search(c, q))
    }
    fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<(), StoreError> {
        self.db.write(|c| registry::set_tag(c, name, tag))
    }
    fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<(), StoreError> {
        self.db.write(|c| registry::delete_tag(c, name, key))
    }
    fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| registry::set_alias(c, name, alias, version))
    }
    fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<(), StoreError> {
        self.db.write(|c| registry::delete_alias(c, name, alias))
    }
    fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion, StoreError> {
        self.db.read(|c| registry::version_by_alias(c, name, alias))
    }

    fn create_model_version(&self, new: &NewModelVersion) -> Result<ModelVersion, StoreError> {
        self.db.write(|c| versions::create(c, new))
    }
    fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion, StoreError> {
        self.db.read(|c| versions::get(c, name, version))
    }
    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<ModelVersion, StoreError> {
        self.db
            .write(|c| versions::update(c, name, version, description))
    }
    fn delete_model_version(&self, name: &str, version: i64) -> Result<(), StoreError> {
        self.db.write(|c| versions::delete(c, name, version))
    }
    fn search_model_versions(
        &self,
        q: &ModelVersionSearch,
    ) -> Result<Page<ModelVersion>, StoreError> {
        self.db.read(|c| versions::search(c, q))
    }
    fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<(), StoreError> {
        self.db.write(|c| versions::set_tag(c, name, version, tag))
    }
    fn delete_model_version_tag(
        &self,
        name: &str,
        version: i64,
        key: &str,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| versions::delete_tag(c, name, version, key))
    }
    fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion, StoreError> {
        self.db
            .write(|c| versions::transition(c, name, version, stage, archive_existing))
    }
    fn get_latest_versions(
        &self,
        name: &str,
        stages: &[Stage],
    ) -> Result<Vec<ModelVersion>, StoreError> {
        self.db.read(|c| versions::latest(c, name, stages))
    }
    fn set_model_version_approval(
        &self,
        name: &str,
        version: i64,
        approval: &Approval,
        force: bool,
        four_eyes: FourEyes,
    ) -> Result<ModelVersion, StoreError> {
        self.db
            .write(|c| versions::set_approval(c, name, version, approval, force, four_eyes))
    }

    fn events_after(
        &self,
        after: i64,
        kinds: &[String],
        limit: u64,
    ) -> Result<Vec<Event>, StoreError> {
        self.db.read(|c| events::after(c, after, kinds, limit))
    }
    fn last_event_id(&self) -> Result<i64, StoreError> {
        self.db.read(events::last_id)
    }

    fn create_webhook(&self, new: &NewWebhook) -> Result<Webhook, StoreError> {
        self.db.write(|c| webhooks::create(c, new))
    }
    fn get_webhook(&self, webhook_id: &str) -> Result<Webhook, StoreError> {
        self.db.read(|c| webhooks::get(c, webhook_id))
    }
    fn list_webhooks(&self, max_results: u64, offset: u64) -> Result<Page<Webhook>, StoreError> {
        self.db.read(|c| webhooks::list(c, max_results, offset))
    }
    fn update_webhook(
        &self,
        webhook_id: &str,
        update: &WebhookUpdate,
    ) -> Result<Webhook, StoreError> {
        self.db.write(|c| webhooks::update(c, webhook_id, update))
    }
    fn delete_webhook(&self, webhook_id: &str) -> Result<(), StoreError> {
        self.db.write(|c| webhooks::delete(c, webhook_id))
    }
    fn reseal_webhook_secret(
        &self,
        webhook_id: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        self.db
            .write(|c| webhooks::reseal_secret(c, webhook_id, from, to))
    }
    fn active_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.db.read(webhooks::active)
    }
    fn webhook_cursor(&self) -> Result<i64, StoreError> {
        self.db.read(webhooks::cursor)
    }
    fn claim_webhook_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        self.db.write(|c| webhooks::claim(c, now, lease_ms, limit))
    }
    fn record_webhook_attempt(
        &self,
        outbox_id: i64,
        attempt: &DeliveryAttempt,
        state: DeliveryState,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| webhooks::record(c, outbox_id, attempt, state))
    }
    fn webhook_delivery_log(
        &self,
        webhook_id: &str,
        limit: u64,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.db.read(|c| webhooks::log(c, webhook_id, limit))
    }

    fn put_pipeline(
        &self,
        name: &str,
        spec: &str,
        applied_by: Option<&str>,
    ) -> Result<Applied, StoreError> {
        self.db.write(|c| pipelines::put(c, name, spec, applied_by))
    }
    fn get_pipeline(&self, name: &str) -> Result<Pipeline, StoreError> {
        self.db.read(|c| pipelines::get(c, name))
    }
    fn list_pipelines(&self, max_results: u64, offset: u64) -> Result<Page<Pipeline>, StoreError> {
        self.db.read(|c| pipelines::list(c, max_results, offset))
    }
    fn get_pipeline_run(&self, id: &str) -> Result<PipelineRun, StoreError> {
        self.db.read(|c| pipelines::get_run(c, id))
    }
    fn list_pipeline_runs(&self, q: &PipelineRunSearch) -> Result<Page<PipelineRun>, StoreError> {
        self.db.read(|c| pipelines::list_runs(c, q))
    }
    fn get_task(&self, task_id: i64) -> Result<Task, StoreError> {
        self.db.read(|c| pipelines::get_task(c, task_id))
    }
    fn tasks_of_run(&self, pipeline_run: &str) -> Result<Vec<Task>, StoreError> {
        self.db.read(|c| pipelines::tasks_of_run(c, pipeline_run))
    }
    fn claim_task(
        &self,
        worker: &str,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<ClaimedTask>, StoreError> {
        self.db
            .write(|c| pipelines::claim(c, worker, lease_ms, now))
    }
    fn put_cache_entry(&self, entry: &CacheEntry) -> Result<(), StoreError> {
        self.db.write(|c| pipelines::put_cache_entry(c, entry))
    }
    fn cache_entries(
        &self,
        pipeline: &str,
        step: &str,
        key: Option<&str>,
        since: i64,
        max_results: u64,
    ) -> Result<Vec<CacheEntry>, StoreError> {
        self.db
            .read(|c| pipelines::cache_entries(c, pipeline, step, key, since, max_results))
    }

    fn get_endpoint(&self, name: &str) -> Result<StoredEndpoint, StoreError> {
        self.db.read(|c| endpoints::get(c, name))
    }
    fn list_endpoints(&self) -> Result<Vec<StoredEndpoint>, StoreError> {
        self.db.read(endpoints::list)
    }
    fn delete_endpoint(&self, name: &str) -> Result<(), StoreError> {
        self.db.write(|c| endpoints::delete(c, name))
    }
    fn get_monitor(&self, name: &str) -> Result<StoredMonitor, StoreError> {
        self.db.read(|c| monitors::get(c, name))
    }
    fn list_monitors(&self) -> Result<Vec<StoredMonitor>, StoreError> {
        self.db.read(monitors::list)
    }
    fn delete_monitor(&self, name: &str) -> Result<(), StoreError> {
        self.db.write(|c| monitors::delete(c, name))
    }
    fn start_monitor_run(&self, run: &MonitorRun) -> Result<MonitorRun, StoreError> {
        self.db.write(|c| monitors::start_run(c, run))
    }
    fn get_monitor_run(&self, id: &str) -> Result<MonitorRun, StoreError> {
        self.db.read(|c| monitors::get_run(c, id))
    }
    fn list_monitor_runs(
        &self,
        monitor: &str,
        max_results: u64,
    ) -> Result<Vec<MonitorRun>, StoreError> {
        self.db
            .read(|c| monitors::list_runs(c, monitor, max_results))
    }
}
