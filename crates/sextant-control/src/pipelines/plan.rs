//! Where each step of a pipeline run stands, derived from the spec and the
//! run's tasks alone. The queue is the only record of progress, so a restarted
//! server derives the same plan and goes on from there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sextant_core::pipeline_runs::{Task, TaskStatus};
use sextant_pipelines::Validated;
use sextant_pipelines::spec::{Branch, StepKind};

/// What a succeeded task records as its result (JSON in the task row).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step's metrics: those logged to its run merged with `metrics.json`.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// For a condition step, whether `then` (true) or `else` (false) was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<bool>,
    /// For a `register_model` step, the version it registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<i64>,
    /// What a person should know of a step that succeeded: a register
    /// step's approval withheld, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Each declared output as stored by digest, by output name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, OutputRecord>,
    /// For a step with a `cache:` policy, its key and whether it was reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheInfo>,
}

/// What the step cache decided for one execution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheInfo {
    /// `sha256:<hex>` over `parts` (`sextant_pipelines::cachekey`).
    pub key: String,
    /// What the key hashes, to explain a later miss.
    pub parts: serde_json::Value,
    /// Whether an earlier execution's result was reused.
    pub hit: bool,
    /// The execution reused, on a hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CacheSource>,
    /// Why nothing was reused, on a miss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The earlier execution a cache hit reused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSource {
    pub pipeline_run: String,
    pub step_run: Option<String>,
    /// When it was recorded, ms since the epoch.
    pub created_time: i64,
}

/// One published output of a succeeded step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// `sha256:<hex>` of its manifest (`sextant_pipelines::outputs`).
    pub digest: String,
    /// How many files it holds.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
}

/// The state of one step in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// Waits for its dependencies.
    Waiting,
    /// May start now; no task exists yet.
    Ready,
    /// Has a task in the queue.
    Queued,
    /// Its task is claimed by a worker.
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// On the branch a condition did not take, or after such a step.
    Skipped,
}

impl StepState {
    /// The displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Waiting => "waiting",
            StepState::Ready => "ready",
            StepState::Queued => "queued",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Cancelled => "cancelled",
            StepState::Skipped => "skipped",
        }
    }
}

/// Where a run stands as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Steps remain to run.
    Open,
    /// Every step succeeded or was skipped.
    Succeeded,
    /// A step failed for good.
    Failed,
}

/// The state of every step (indexed like `pipeline.steps`) and of the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub states: Vec<StepState>,
    pub outcome: Outcome,
}

impl Plan {
    /// The steps that may be queued now.
    pub fn ready(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.states.len()).filter(|&i| self.states[i] == StepState::Ready)
    }
}

/// The newest task of each step, by name.
pub fn latest_tasks(tasks: &[Task]) -> BTreeMap<&str, &Task> {
    let mut latest: BTreeMap<&str, &Task> = BTreeMap::new();
    for t in tasks {
        match latest.get(t.step.as_str()) {
            Some(prev) if prev.id > t.id => {}
            _ => {
                latest.insert(t.step.as_str(), t);
            }
        }
    }
    latest
}

/// The result a succeeded task recorded; empty when it holds none.
pub fn task_result(task: &Task) -> StepResult {
    task.result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default()
}

/// Derives the plan of a run from its spec and tasks.
pub fn plan(v: &Validated, tasks: &[Task]) -> Plan {
    let steps = &v.pipeline.steps;
    let latest = latest_tasks(tasks);
    let mut states = vec![StepState::Waiting; steps.len()];
    let mut untaken = vec![false; steps.len()];
    for &i in v.dag.order() {
        let step = &steps[i];
        let state = match latest.get(step.name.value.as_str()) {
            Some(t) => match t.status {
                TaskStatus::Queued => StepState::Queued,
                TaskStatus::Running => StepState::Running,
                TaskStatus::Succeeded => StepState::Succeeded,
                TaskStatus::Failed => StepState::Failed,
                TaskStatus::Cancelled => StepState::Cancelled,
            },
            None => {
                let deps = v.dag.dependencies(i);
                if untaken[i] || deps.iter().any(|&d| states[d] == StepState::Skipped) {
                    StepState::Skipped
                } else if deps.iter().all(|&d| states[d] == StepState::Succeeded) {
                    StepState::Ready
                } else {
                    StepState::Waiting
                }
            }
        };
        states[i] = state;
        if let (
            StepState::Succeeded,
            StepKind::Condition {
                then, otherwise, ..
            },
        ) = (state, &step.kind)
        {
            let taken = latest
                .get(step.name.value.as_str())
                .and_then(|t| task_result(t).branch)
                .unwrap_or(true);
            let other = if taken { otherwise } else { then };
            if let Some(Branch::Steps(names)) = other {
                for n in names {
                    if let Some(j) = steps.iter().position(|s| s.name.value == n.value) {
                        untaken[j] = true;
                    }
                }
            }
        }
    }
    let outcome = if states
        .iter()
        .any(|s| matches!(s, StepState::Failed | StepState::Cancelled))
    {
        Outcome::Failed
    } else if states
        .iter()
        .all(|s| matches!(s, StepState::Succeeded | StepState::Skipped))
    {
        Outcome::Succeeded
    } else {
        Outcome::Open
    };
    Plan { states, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name: p
params:
  t: {type: float, default: 0.5}
steps:
  a:
    run: "true"
  gate:
    condition: "steps.a.metrics.m >= params.t"
    then: [yes]
    else: [no]
  yes:
    run: "true"
  no:
    run: "true"
  after_no:
    run: "true"
    needs: [no]
"#;

    fn task(id: i64, step: &str, status: TaskStatus, result: Option<&str>) -> Task {
        Task {
            id,
            pipeline_run: "r".into(),
            step: step.into(),
            status,
            attempt: 1,
            fencing: 1,
            not_before: 0,
            lease_owner: None,
            lease_expires: None,
            heartbeat: None,
            payload: "{}".into(),
            result: result.map(str::to_string),
            error: None,
            step_run_uuid: None,
            created_time: 0,
            updated_time: 0,
        }
    }

    #[test]
    fn a_condition_skips_the_other_branch_and_what_follows_it() {
        let v = sextant_pipelines::load("p.yaml", SPEC).unwrap();
        let p = plan(&v, &[]);
        assert_eq!(p.ready().collect::<Vec<_>>(), vec![0]);
        let tasks = [
            task(
                1,
                "a",
                TaskStatus::Succeeded,
                Some(r#"{"metrics":{"m":1}}"#),
            ),
            task(2, "gate", TaskStatus::Succeeded, Some(r#"{"branch":true}"#)),
        ];
        let p = plan(&v, &tasks);
        let names: Vec<_> = p.states.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["succeeded", "succeeded", "ready", "skipped", "skipped"]
        );
        assert_eq!(p.outcome, Outcome::Open);
        let mut done = tasks.to_vec();
        done.push(task(3, "yes", TaskStatus::Succeeded, None));
        assert_eq!(plan(&v, &done).outcome, Outcome::Succeeded);
    }

    #[test]
    fn the_newest_task_of_a_step_decides_and_a_failure_fails_the_run() {
        let v = sextant_pipelines::load("p.yaml", SPEC).unwrap();
        let tasks = [
            task(1, "a", TaskStatus::Failed, None),
            task(2, "a", TaskStatus::Queued, None),
        ];
        let p = plan(&v, &tasks);
        assert_eq!(p.states[0], StepState::Queued);
        assert_eq!(p.outcome, Outcome::Open);
        assert_eq!(plan(&v, &tasks[..1]).outcome, Outcome::Failed);
    }
}
