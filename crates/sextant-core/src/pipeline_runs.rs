//! Stored pipelines, their runs and the persisted task queue the
//! orchestrator and `sextant worker` share.
//!
//! A task is one execution request for one step of a pipeline run. Workers
//! claim a task with a lease; every claim bumps the task's `fencing` token,
//! and only the holder of the current token may heartbeat, complete or fail
//! it. A worker whose lease expired and was re-claimed by another therefore
//! cannot overwrite the newer attempt's outcome: each step ends exactly once,
//! recorded under one fencing token, even though it may have been *started*
//! more than once.

use crate::{Error, Result};

/// A pipeline as stored by `pipelines apply`: its name and YAML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub name: String,
    pub spec: String,
    /// The user who last applied it, when authentication was on: scheduled
    /// and event-triggered runs act for them.
    pub applied_by: Option<String>,
    pub created_time: i64,
    pub updated_time: i64,
}

/// What storing a pipeline did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// No pipeline had that name.
    Created,
    /// The stored spec was replaced by a different one.
    Updated,
    /// The stored spec was already this text.
    Unchanged,
}

/// Where a pipeline run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipelineRunStatus {
    /// Created, no step started yet.
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl PipelineRunStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineRunStatus::Pending => "PENDING",
            PipelineRunStatus::Running => "RUNNING",
            PipelineRunStatus::Succeeded => "SUCCEEDED",
            PipelineRunStatus::Failed => "FAILED",
            PipelineRunStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses a status name in any case.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PENDING" => Ok(PipelineRunStatus::Pending),
            "RUNNING" => Ok(PipelineRunStatus::Running),
            "SUCCEEDED" => Ok(PipelineRunStatus::Succeeded),
            "FAILED" => Ok(PipelineRunStatus::Failed),
            "CANCELLED" => Ok(PipelineRunStatus::Cancelled),
            _ => Err(Error::invalid(format!(
                "invalid pipeline run status '{s}': use PENDING, RUNNING, SUCCEEDED, FAILED or \
                 CANCELLED"
            ))),
        }
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PipelineRunStatus::Succeeded | PipelineRunStatus::Failed | PipelineRunStatus::Cancelled
        )
    }

    /// Whether a run may move from `self` to `to`. A live run may move
    /// anywhere; a failed or cancelled run may only be resumed
    /// (`pipelines retry`); a succeeded run is final.
    pub fn can_become(self, to: PipelineRunStatus) -> bool {
        match self {
            PipelineRunStatus::Pending | PipelineRunStatus::Running => true,
            PipelineRunStatus::Failed | PipelineRunStatus::Cancelled => {
                to == PipelineRunStatus::Running
            }
            PipelineRunStatus::Succeeded => false,
        }
    }

    /// The kind of the event a move to this status appends, given the
    /// status it leaves.
    pub fn event_kind(self, from: PipelineRunStatus) -> &'static str {
        match self {
            PipelineRunStatus::Pending => "pipeline_run.created",
            PipelineRunStatus::Running if from.is_terminal() => "pipeline_run.resumed",
            PipelineRunStatus::Running => "pipeline_run.started",
            PipelineRunStatus::Succeeded => "pipeline_run.succeeded",
            PipelineRunStatus::Failed => "pipeline_run.failed",
            PipelineRunStatus::Cancelled => "pipeline_run.cancelled",
        }
    }
}

/// What started a pipeline run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    /// A person, through the CLI or the API.
    Manual,
    /// The pipeline's cron schedule.
    Schedule,
    /// An event of the events feed matched one of the pipeline's `on` triggers.
    Event,
}

impl TriggerKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Manual => "manual",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Event => "event",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "manual" => Ok(TriggerKind::Manual),
            "schedule" => Ok(TriggerKind::Schedule),
            "event" => Ok(TriggerKind::Event),
            _ => Err(Error::invalid(format!(
                "invalid trigger kind '{s}': use manual, schedule or event"
            ))),
        }
    }
}

/// A pipeline run to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPipelineRun {
    /// The stored pipeline's name.
    pub pipeline: String,
    /// The resolved parameters, a JSON object as text.
    pub params: String,
    pub trigger_kind: TriggerKind,
    /// The id of the event that triggered the run, for event triggers.
    pub trigger_event: Option<i64>,
    /// The tracking run the step runs nest under, if already created.
    pub run_uuid: Option<String>,
    /// Run every step even where a cached result could be reused.
    pub no_cache: bool,
    /// The user the run acts for (see [`PipelineRun::started_by`]).
    pub started_by: Option<String>,
}

/// One execution of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRun {
    /// A UUID.
    pub id: String,
    pub pipeline: String,
    pub run_uuid: Option<String>,
    pub status: PipelineRunStatus,
    pub trigger_kind: TriggerKind,
    pub trigger_event: Option<i64>,
    /// The resolved parameters, a JSON object as text.
    pub params: String,
    /// Started with `--no-cache`: no step reuses a cached result.
    pub no_cache: bool,
    /// The user the run acts for, when authentication is on: who started
    /// it, or for a scheduled or event-triggered run who applied the
    /// pipeline. Versions it registers count as created by them.
    pub started_by: Option<String>,
    pub created_time: i64,
    pub updated_time: i64,
}

/// Where a task is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Waiting to be claimed once `not_before` has passed.
    Queued,
    /// Claimed under a lease; claimable again once the lease expires.
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "queued" => Ok(TaskStatus::Queued),
            "running" => Ok(TaskStatus::Running),
            "succeeded" => Ok(TaskStatus::Succeeded),
            "failed" => Ok(TaskStatus::Failed),
            "cancelled" => Ok(TaskStatus::Cancelled),
            _ => Err(Error::invalid(format!("invalid task status '{s}'"))),
        }
    }

    /// Whether the task has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

/// One queued execution of one step of a pipeline run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: i64,
    pub pipeline_run: String,
    pub step: String,
    pub status: TaskStatus,
    /// How many times the task was claimed (each claim is an attempt).
    pub attempt: i64,
    /// The fencing token of the current or last claim; it only grows.
    pub fencing: i64,
    /// The task is not claimed before this time (retry backoff).
    pub not_before: i64,
    pub lease_owner: Option<String>,
    pub lease_expires: Option<i64>,
    /// When the holder last renewed its lease.
    pub heartbeat: Option<i64>,
    /// What the executor needs to run the step, JSON as text.
    pub payload: String,
    /// The outcome of a succeeded task, JSON as text.
    pub result: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// The tracking run of the current attempt.
    pub step_run_uuid: Option<String>,
    pub created_time: i64,
    pub updated_time: i64,
}

/// A task a worker now holds: it must present `fencing` on every later write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTask {
    pub task: Task,
    pub fencing: i64,
}

/// Checks a pipeline name: letters, digits, `_` and `-`, at most 128 chars.
pub fn validate_pipeline_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid pipeline name '{name}': use 1 to 128 letters, digits, '_' and '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_transitions_hold() {
        for s in [
            PipelineRunStatus::Pending,
            PipelineRunStatus::Running,
            PipelineRunStatus::Succeeded,
            PipelineRunStatus::Failed,
            PipelineRunStatus::Cancelled,
        ] {
            assert_eq!(PipelineRunStatus::parse(s.as_str()), Ok(s));
        }
        for s in [
            TaskStatus::Queued,
            TaskStatus::Running,
            TaskStatus::Succeeded,
            TaskStatus::Failed,
            TaskStatus::Cancelled,
        ] {
            assert_eq!(TaskStatus::parse(s.as_str()), Ok(s));
        }
        use PipelineRunStatus::*;
        assert!(Pending.can_become(Cancelled));
        assert!(Failed.can_become(Running));
        assert!(!Failed.can_become(Succeeded));
        assert!(!Succeeded.can_become(Running));
        assert_eq!(Running.event_kind(Failed), "pipeline_run.resumed");
        assert_eq!(Running.event_kind(Pending), "pipeline_run.started");
        assert!(validate_pipeline_name("housing-v2_a").is_ok());
        assert!(validate_pipeline_name("a/b").is_err());
        assert!(validate_pipeline_name("").is_err());
    }
}

/// A succeeded step execution that later runs with the same cache key may
/// reuse instead of running the step again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub pipeline: String,
    pub step: String,
    /// `sha256:<hex>` over `parts`.
    pub cache_key: String,
    /// What the key hashes, a JSON object as text, kept to explain misses.
    pub parts: String,
    /// The pipeline run and task that produced the result.
    pub pipeline_run: String,
    pub task_id: i64,
    /// The step's tracking run.
    pub step_run_uuid: Option<String>,
    /// The step's result (JSON text), as stored on its task.
    pub result: String,
    pub created_time: i64,
}
