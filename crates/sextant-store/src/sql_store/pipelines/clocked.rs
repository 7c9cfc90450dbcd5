//! [`ClockedStore`] over the SQL store: each call one transaction, like
//! `MetaStore`'s in `sql_store/mod.rs`, with the time the caller gives; the
//! endpoints', monitors' and webhooks' writes are their modules' work.

use sextant_core::endpoints::{EndpointEvent, StoredEndpoint};
use sextant_core::monitors::{MonitorEvent, MonitorRun, MonitorRunStatus, StoredMonitor};
use sextant_core::pipeline_runs::{NewPipelineRun, PipelineRun, PipelineRunStatus, Task};
use sextant_core::webhooks::NewDelivery;

use crate::backend::Backend;
use crate::sql_store::{SqlStore, endpoints, monitors, pipelines, webhooks};
use crate::{ClockedStore, StoreError};

impl<B: Backend> ClockedStore for SqlStore<B> {
    fn create_pipeline_run_at(
        &self,
        new: &NewPipelineRun,
        now_ms: i64,
    ) -> Result<PipelineRun, StoreError> {
        self.db.write(|c| pipelines::create_run_at(c, new, now_ms))
    }
    fn set_pipeline_run_status_at(
        &self,
        id: &str,
        status: PipelineRunStatus,
        now_ms: i64,
    ) -> Result<PipelineRun, StoreError> {
        self.db
            .write(|c| pipelines::set_run_status_at(c, id, status, now_ms))
    }
    fn enqueue_task_at(
        &self,
        pipeline_run: &str,
        step: &str,
        payload: &str,
        not_before: Option<i64>,
        now_ms: i64,
    ) -> Result<Task, StoreError> {
        self.db
            .write(|c| pipelines::enqueue_at(c, pipeline_run, step, payload, not_before, now_ms))
    }
    fn heartbeat_task_at(
        &self,
        task_id: i64,
        fencing: i64,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| pipelines::heartbeat_at(c, task_id, fencing, lease_ms, now_ms))
    }
    fn set_task_step_run_at(
        &self,
        task_id: i64,
        fencing: i64,
        step_run_uuid: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| pipelines::set_step_run_at(c, task_id, fencing, step_run_uuid, now_ms))
    }
    fn complete_task_at(
        &self,
        task_id: i64,
        fencing: i64,
        result: &str,
        now_ms: i64,
    ) -> Result<Task, StoreError> {
        self.db
            .write(|c| pipelines::complete_at(c, task_id, fencing, result, now_ms))
    }
    fn fail_task_at(
        &self,
        task_id: i64,
        fencing: i64,
        error: &str,
        retry_at: Option<i64>,
        now_ms: i64,
    ) -> Result<Task, StoreError> {
        self.db
            .write(|c| pipelines::fail_at(c, task_id, fencing, error, retry_at, now_ms))
    }
    fn cancel_run_tasks_at(&self, pipeline_run: &str, now_ms: i64) -> Result<u64, StoreError> {
        self.db
            .write(|c| pipelines::cancel_run_tasks_at(c, pipeline_run, now_ms))
    }
    fn resume_pipeline_run_at(
        &self,
        id: &str,
        steps: &[(String, String)],
        acting_for: Option<&str>,
        now_ms: i64,
    ) -> Result<(PipelineRun, Vec<Task>), StoreError> {
        self.db
            .write(|c| pipelines::resume_run_at(c, id, steps, acting_for, now_ms))
    }
    fn put_endpoint_at(
        &self,
        name: &str,
        spec: &str,
        state: &str,
        event: Option<&EndpointEvent>,
        now_ms: i64,
    ) -> Result<StoredEndpoint, StoreError> {
        self.db
            .write(|c| endpoints::put_at(c, name, spec, state, event, now_ms))
    }
    fn set_endpoint_state_at(
        &self,
        name: &str,
        state: &str,
        event: Option<&EndpointEvent>,
        now_ms: i64,
    ) -> Result<StoredEndpoint, StoreError> {
        self.db
            .write(|c| endpoints::set_state_at(c, name, state, event, now_ms))
    }
    fn put_monitor_at(
        &self,
        name: &str,
        spec: &str,
        event: Option<&MonitorEvent>,
        now_ms: i64,
    ) -> Result<StoredMonitor, StoreError> {
        self.db
            .write(|c| monitors::put_at(c, name, spec, event, now_ms))
    }
    fn finish_monitor_run_at(
        &self,
        id: &str,
        status: MonitorRunStatus,
        summary: &str,
        error: Option<&str>,
        events: &[MonitorEvent],
        now_ms: i64,
    ) -> Result<MonitorRun, StoreError> {
        self.db
            .write(|c| monitors::finish_run_at(c, id, status, summary, error, events, now_ms))
    }
    fn enqueue_webhook_deliveries_at(
        &self,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.db
            .write(|c| webhooks::enqueue_at(c, from, to, deliveries, now_ms))
    }
}
