//! The [`ClockedStore`] trait: the store calls whose time is the caller's.
//!
//! The controllers (the pipeline orchestrator and its remote workers' API,
//! the monitor scheduler, the endpoint controller, webhook delivery) read
//! "now" from the clock they are given (`sextant_core::clock`), and the
//! store compares what it stored with the time a later call brings: a claim
//! takes a task whose lease expired at the claimer's `now`, a due task is one
//! whose `not_before` has passed at the claimer's `now`, a cron schedule
//! fires after the `created_time` of its last run. So every write whose time
//! such a comparison reads takes that time from the caller (`now_ms`, Unix
//! milliseconds) instead of stamping the store's wall clock: lease expiry,
//! due times and the recorded times of the controllers' writes are judged in
//! one clock, the caller's, whatever a test's manual clock says.
//!
//! What stays on the store's own clock is the store's business: events
//! (the feed's `time`, which triggers compare with a pipeline's
//! `updated_time`, also the store's), the records the API writes for people
//! (experiments, runs, the registry, pipelines, webhooks), migrations and
//! the audit log.
//!
//! Reached on any `dyn MetaStore` (a supertrait); `MetaStore` has no
//! wall-clock form of these calls.

use sextant_core::endpoints::{EndpointEvent, StoredEndpoint};
use sextant_core::monitors::{MonitorEvent, MonitorRun, MonitorRunStatus, StoredMonitor};
use sextant_core::pipeline_runs::{NewPipelineRun, PipelineRun, PipelineRunStatus, Task};
use sextant_core::webhooks::NewDelivery;

use crate::StoreError;

/// Writes stamped with the caller's time, `now_ms`.
pub trait ClockedStore: Send + Sync {
    // --- Pipeline runs and the task queue. ---

    /// Creates a run of a stored pipeline in `PENDING` state, created at
    /// `now_ms` (a schedule's last firing); appends `pipeline_run.created`.
    fn create_pipeline_run_at(
        &self,
        new: &NewPipelineRun,
        now_ms: i64,
    ) -> Result<PipelineRun, StoreError>;
    /// Moves a run to `status` (see [`PipelineRunStatus::can_become`]) and
    /// appends its event; cancelling also cancels the run's open tasks.
    /// Setting the status a run already has changes nothing.
    fn set_pipeline_run_status_at(
        &self,
        id: &str,
        status: PipelineRunStatus,
        now_ms: i64,
    ) -> Result<PipelineRun, StoreError>;
    /// Queues a task for a step of a live run, claimable from `not_before`
    /// (`now_ms` when `None`).
    fn enqueue_task_at(
        &self,
        pipeline_run: &str,
        step: &str,
        payload: &str,
        not_before: Option<i64>,
        now_ms: i64,
    ) -> Result<Task, StoreError>;
    /// Extends the lease of a running task to `now_ms + lease_ms`; an
    /// `InvalidState` error means the holder lost the task (stale fencing
    /// token, cancelled) and must stop the step.
    fn heartbeat_task_at(
        &self,
        task_id: i64,
        fencing: i64,
        lease_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Records the tracking run of the current attempt (fenced).
    fn set_task_step_run_at(
        &self,
        task_id: i64,
        fencing: i64,
        step_run_uuid: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Marks a running task succeeded with its result (JSON); only the
    /// holder of the current fencing token may, and a repeat of the same
    /// completion is a no-op. A stale holder gets `InvalidState` and changes
    /// nothing.
    fn complete_task_at(
        &self,
        task_id: i64,
        fencing: i64,
        result: &str,
        now_ms: i64,
    ) -> Result<Task, StoreError>;
    /// Records a failed attempt (fenced like [`ClockedStore::complete_task_at`]):
    /// with `retry_at` the task is queued again from then, otherwise it fails.
    fn fail_task_at(
        &self,
        task_id: i64,
        fencing: i64,
        error: &str,
        retry_at: Option<i64>,
        now_ms: i64,
    ) -> Result<Task, StoreError>;
    /// Cancels the queued and running tasks of a run; returns how many.
    /// Their holders learn it from their next heartbeat.
    fn cancel_run_tasks_at(&self, pipeline_run: &str, now_ms: i64) -> Result<u64, StoreError>;
    /// Resumes a `FAILED` or `CANCELLED` run in place: moves it to `RUNNING`
    /// (appending `pipeline_run.resumed`) and queues one task per
    /// `(step, payload)`, due at `now_ms`, in one transaction. Any other
    /// status, or a task of the run still open, is `InvalidState`; an empty
    /// `steps` is invalid. With `acting_for` (who retries it, with
    /// authentication on) the run acts for that user from now on; the
    /// resumed event names the user it acted for before
    /// (`previous_started_by`) when that changed.
    fn resume_pipeline_run_at(
        &self,
        id: &str,
        steps: &[(String, String)],
        acting_for: Option<&str>,
        now_ms: i64,
    ) -> Result<(PipelineRun, Vec<Task>), StoreError>;

    // --- Serving endpoints (the endpoint controller's clock). ---

    /// Creates or replaces an endpoint (definition and state), appending
    /// `event` in the same transaction.
    fn put_endpoint_at(
        &self,
        name: &str,
        spec: &str,
        state: &str,
        event: Option<&EndpointEvent>,
        now_ms: i64,
    ) -> Result<StoredEndpoint, StoreError>;
    /// Replaces an endpoint's controller state, appending `event`.
    fn set_endpoint_state_at(
        &self,
        name: &str,
        state: &str,
        event: Option<&EndpointEvent>,
        now_ms: i64,
    ) -> Result<StoredEndpoint, StoreError>;

    // --- Monitors (the scheduler's clock: an unrun monitor is due from its `updated_time`). ---

    /// Creates or replaces a monitor's definition, appending `event`.
    fn put_monitor_at(
        &self,
        name: &str,
        spec: &str,
        event: Option<&MonitorEvent>,
        now_ms: i64,
    ) -> Result<StoredMonitor, StoreError>;
    /// Ends a running monitor run at `now_ms` with its outcome, appending
    /// `events` in the same transaction; a run that already ended is
    /// `InvalidState`.
    fn finish_monitor_run_at(
        &self,
        id: &str,
        status: MonitorRunStatus,
        summary: &str,
        error: Option<&str>,
        events: &[MonitorEvent],
        now_ms: i64,
    ) -> Result<MonitorRun, StoreError>;

    // --- Webhook deliveries (claimed at the delivery worker's `now`). ---

    /// Moves the fan-out cursor from `from` to `to` and queues `deliveries`,
    /// due at `now_ms`; false, changing nothing, when another fan-out moved
    /// the cursor first.
    fn enqueue_webhook_deliveries_at(
        &self,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}
