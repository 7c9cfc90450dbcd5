//! Running a `tune:` step. `sextant_pipelines::tune` plans the search (grid,
//! random, successive halving) and ranks trials; this module runs them.
//!
//! Each trial is the step's built-in with the trial's `with`, run on the
//! blocking pool in its own directory (`<run dir>/.trials/<step>/<n>`), and
//! its own tracking run nested under the step's run: tags
//! `mlflow.parentRunId`, `sextant.trial` (and `sextant.rung` when halving),
//! the `with` values the trial set as params, its metrics, and FINISHED,
//! FAILED or KILLED.
//!
//! Up to `parallel` trials run at once. The first runs on the slot the
//! step's task already holds; each further one only on a slot it can take
//! from the host's semaphore without waiting, so a search never waits on a
//! slot that another step (or another search) holds, and cannot deadlock.
//!
//! The best trial wins (see `tune::ranking`): its outputs are copied into
//! the step's output directories, where downstream `${steps.S.outputs.O}`
//! and output publishing find them, its metrics become the step's together
//! with `best_trial` (its number) and `trials` (how many ran), and its `with`
//! values become the step run's params. Cancelling the run, losing the lease
//! or passing the step's `timeout` launches no more trials and stops running
//! gbdt fits at their next boosting iteration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sextant_core::entities::{Metric, NewRun, Param, RunStatus, Tag};
use sextant_core::pipeline_runs::ClaimedTask;
use sextant_pipelines::builtins::{METRICS_FILE, Metrics, run_builtin_until};
use sextant_pipelines::executor::Canceller;
use sextant_pipelines::spec::{Builtin, Goal, Step, Strategy, Tune};
use sextant_pipelines::tune::{self, Config, Plan};
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::Orchestrator;
use super::plan::StepResult;
use super::service::USER;
use super::step::StepFailure;

/// A tune step ready to run: its `with` already resolved.
pub(super) struct TuneJob<'a> {
    pub(super) claimed: &'a ClaimedTask,
    pub(super) step: &'a Step,
    pub(super) tune: &'a Tune,
    pub(super) builtin: Builtin,
    /// The step's `with`, `${…}` resolved: what every trial starts from.
    pub(super) with: BTreeMap<String, String>,
    /// The step's tracking run id.
    pub(super) step_run: &'a str,
    /// The pipeline run id, which seeds random draws.
    pub(super) run_id: &'a str,
    pub(super) run_dir: &'a Path,
    /// The step's output root (`<run dir>/<step>`).
    pub(super) out: &'a Path,
}

/// One trial that ran (or was stopped).
struct Trial {
    /// From 1, in launch order.
    number: usize,
    /// Which configuration of the plan it tried.
    candidate: usize,
    /// The `with` values it set or changed.
    params: BTreeMap<String, String>,
    metrics: Metrics,
    /// Its value of the tuned metric, when it has a usable one.
    score: Option<f64>,
    error: Option<String>,
    dir: PathBuf,
    run_id: String,
}

/// What every trial of one search shares.
struct Search<'j, 'a> {
    job: &'j TuneJob<'a>,
    /// `<run dir>/.trials/<step>`.
    dir: PathBuf,
    experiment_id: i64,
    /// The metric trials are ranked by (`valid_<metric>`).
    metric: String,
    /// Set to stop running fits.
    stop: Arc<AtomicBool>,
    /// Turns true when the run is cancelled or the lease is lost.
    cancelled: watch::Receiver<bool>,
    deadline: Option<tokio::time::Instant>,
    trials: Vec<Trial>,
}

/// One trial about to start.
struct Launch {
    number: usize,
    candidate: usize,
    rung: Option<usize>,
    with: BTreeMap<String, String>,
    params: BTreeMap<String, String>,
}

impl Orchestrator {
    /// Runs the search of `job` to the step's result, renewing the task's
    /// lease meanwhile and stopping when the task is no longer ours.
    pub(super) async fn tune(&self, job: TuneJob<'_>) -> Result<StepResult, StepFailure> {
        let (canceller, cancelled) = Canceller::new();
        let search = self.search(&job, cancelled);
        self.heartbeating(job.claimed, Some(canceller), search)
            .await
    }

    async fn search(
        &self,
        job: &TuneJob<'_>,
        cancelled: watch::Receiver<bool>,
    ) -> Result<StepResult, StepFailure> {
        let step = &job.step.name.value;
        let plan = tune::plan(job.tune, tune::seed(job.run_id, step)).map_err(|e| StepFailure {
            message: format!("tune of step '{step}': {e}"),
            permanent: true,
        })?;
        let dir = job.run_dir.join(".trials").join(step);
        // A retried attempt starts from empty trial directories.
        if tokio::fs::metadata(&dir).await.is_ok() {
            tokio::fs::remove_dir_all(&dir).await.map_err(|e| {
                StepFailure::retryable(format!("cannot clear {}: {e}", dir.display()))
            })?;
        }
        let id = job.step_run.to_string();
        let experiment_id = self
            .db(move |s| Ok(s.get_run(&id)?.info.experiment_id))
            .await?;
        let mut search = Search {
            job,
            dir,
            experiment_id,
            metric: tune::metric_key(&job.tune.metric.value),
            stop: Arc::new(AtomicBool::new(false)),
            cancelled,
            deadline: job
                .step
                .timeout
                .as_ref()
                .map(|t| tokio::time::Instant::now() + t.value),
            trials: Vec::new(),
        };
        let finalists = match plan {
            Plan::Fixed(configs) => {
                let all: Vec<usize> = (0..configs.len()).collect();
                self.rung(&mut search, &configs, &all, None, 1.0).await?
            }
            Plan::Halving { candidates, rungs } => {
                let mut alive: Vec<usize> = (0..candidates.len()).collect();
                let mut last = Vec::new();
                for (r, rung) in rungs.iter().enumerate() {
                    last = self
                        .rung(&mut search, &candidates, &alive, Some(r), rung.budget)
                        .await?;
                    let Some(next) = rungs.get(r + 1) else { break };
                    let scores = scores(&search.trials, &last);
                    alive = tune::promote(&scores, next.trials, job.tune.goal)
                        .into_iter()
                        .map(|i| search.trials[last[i]].candidate)
                        .collect();
                    if alive.is_empty() {
                        return Err(no_score(&search, &last, &format!("rung {}", r + 1)));
                    }
                }
                last
            }
        };
        let best = tune::best(&scores(&search.trials, &finalists), job.tune.goal)
            .map(|i| finalists[i])
            .ok_or_else(|| no_score(&search, &finalists, "the final round"))?;
        self.adopt(&search, best).await
    }

    /// Runs the configurations `which` of `configs` on `budget`, at most
    /// `parallel` at once; returns the indices of their trials in `search.trials`.
    async fn rung(
        &self,
        search: &mut Search<'_, '_>,
        configs: &[Config],
        which: &[usize],
        rung: Option<usize>,
        budget: f64,
    ) -> Result<Vec<usize>, StepFailure> {
        let job = search.job;
        let kind = tune::budget_of(job.builtin, job.tune);
        let limit = (job.tune.parallel as usize).max(1);
        let mut queue = which.iter().copied().peekable();
        let mut running = FuturesUnordered::new();
        let mut own_slot_free = true;
        let first = search.trials.len();
        let outcome: Result<(), StepFailure> = loop {
            if *search.cancelled.borrow() {
                break Err(StepFailure::retryable("cancelled"));
            }
            while running.len() < limit && queue.peek().is_some() {
                let Some(slot) = self.free_slot(&mut own_slot_free) else {
                    break;
                };
                let candidate = queue.next().expect("peeked");
                let (with, params) = tune::trial_with(&job.with, &configs[candidate], kind, budget);
                let launch = Launch {
                    // Trials that ended are in `search.trials`, the others are running.
                    number: search.trials.len() + running.len() + 1,
                    candidate,
                    rung,
                    with,
                    params,
                };
                let own = slot.is_none();
                let trial = self.trial(search, launch, slot);
                running.push(async move { (trial.await, own) });
            }
            if running.is_empty() {
                break Ok(());
            }
            tokio::select! {
                Some((trial, own)) = running.next() => {
                    own_slot_free |= own;
                    match trial {
                        Ok(t) => search.trials.push(t),
                        Err(e) => break Err(e),
                    }
                }
                // Checked at the top of the loop: the flag only ever turns true.
                _ = search.cancelled.changed() => {}
                _ = until(search.deadline) => {
                    let limit = job.step.timeout.as_ref().map(|t| t.value).unwrap_or_default();
                    break Err(StepFailure::retryable(format!("timed out after {limit:?}")));
                }
            }
        };
        if outcome.is_err() {
            // Running fits notice the flag at their next iteration; wait for them, so
            // their runs end KILLED and no trial outlives its step.
            search.stop.store(true, Ordering::Relaxed);
            while let Some((trial, _)) = running.next().await {
                search.trials.extend(trial.ok());
            }
        }
        outcome?;
        search.trials[first..].sort_by_key(|t| t.number);
        Ok((first..search.trials.len()).collect())
    }

    /// A slot for one more trial: `Some(None)` for the slot the step's task
    /// holds, when no trial uses it; else `Some(permit)` for a slot free on
    /// this host right now; `None` when there is neither. Never waits, so a
    /// search cannot deadlock against other steps holding the other slots.
    fn free_slot(&self, own_slot_free: &mut bool) -> Option<Option<OwnedSemaphorePermit>> {
        if std::mem::take(own_slot_free) {
            return Some(None);
        }
        self.slots.clone().try_acquire_owned().ok().map(Some)
    }

    /// One trial: its tracking run, the built-in on the blocking pool (holding
    /// `slot`, if it has its own), and its outcome logged. A failed built-in is a
    /// trial without a score; only a tracking-store failure is an error.
    fn trial(
        &self,
        search: &Search<'_, '_>,
        launch: Launch,
        slot: Option<OwnedSemaphorePermit>,
    ) -> impl std::future::Future<Output = Result<Trial, StepFailure>> + use<> {
        let job = search.job;
        let step = job.step.name.value.clone();
        let dir = search.dir.join(launch.number.to_string());
        let name = format!("builtin/{}", job.builtin.as_str());
        let metric = search.metric.clone();
        let stop = search.stop.clone();
        let mut tags = vec![
            Tag::new("mlflow.parentRunId", job.step_run),
            Tag::new("sextant.pipelineRun", job.run_id),
            Tag::new("sextant.step", step.as_str()),
            Tag::new("sextant.trial", launch.number.to_string()),
        ];
        if let Some(r) = launch.rung {
            tags.push(Tag::new("sextant.rung", (r + 1).to_string()));
        }
        let new = NewRun {
            experiment_id: search.experiment_id,
            user_id: USER.to_string(),
            run_name: Some(format!("{step}-trial-{}", launch.number)),
            start_time: None,
            tags,
        };
        let deps = self.deps.clone();
        async move {
            let params: Vec<Param> = launch
                .params
                .iter()
                .map(|(k, v)| Param::new(k.as_str(), v.as_str()))
                .collect();
            // Started on the orchestrator's clock, which its end is stamped with.
            let new = NewRun {
                start_time: Some(deps.clock.now_ms()),
                ..new
            };
            let run_id = deps
                .db(move |s| {
                    let run = s.create_run(&new)?;
                    s.log_batch(&run.info.run_id, &[], &params, &[])?;
                    Ok(run.info.run_id)
                })
                .await?;
            let (with, out, flag) = (launch.with, dir.clone(), stop.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                run_builtin_until(&name, &with, &out, &flag)
            })
            .await;
            let (metrics, error) = match outcome {
                Ok(Ok(m)) => (m, None),
                Ok(Err(e)) => (Metrics::new(), Some(e.to_string())),
                Err(e) => (Metrics::new(), Some(format!("the trial panicked: {e}"))),
            };
            let status = match (&error, stop.load(Ordering::Relaxed)) {
                (None, _) => RunStatus::Finished,
                (Some(_), true) => RunStatus::Killed,
                (Some(_), false) => RunStatus::Failed,
            };
            let now = deps.clock.now_ms();
            let logged: Vec<Metric> = metrics
                .iter()
                .map(|(k, v)| Metric::new(k.clone(), *v, now, 0))
                .collect();
            let tags: Vec<Tag> = error
                .iter()
                .map(|e| Tag::new("sextant.error", e.as_str()))
                .collect();
            let id = run_id.clone();
            deps.db(move |s| {
                s.log_batch(&id, &logged, &[], &tags)?;
                s.update_run(&id, Some(status), Some(now), None)?;
                Ok(())
            })
            .await?;
            if let Some(e) = &error {
                tracing::info!(trial = launch.number, error = %e, "tune trial failed");
            }
            Ok(Trial {
                number: launch.number,
                candidate: launch.candidate,
                params: launch.params,
                score: metrics.get(&metric).copied().filter(|v| !v.is_nan()),
                metrics,
                error,
                dir,
                run_id,
            })
        }
    }

    /// Makes the trial `best` the step's result: its outputs in the step's
    /// output directories, its metrics and values on the step run.
    async fn adopt(&self, search: &Search<'_, '_>, best: usize) -> Result<StepResult, StepFailure> {
        let (job, winner) = (search.job, &search.trials[best]);
        let mut metrics = winner.metrics.clone();
        metrics.insert("best_trial".into(), winner.number as f64);
        metrics.insert("trials".into(), search.trials.len() as f64);
        let outputs: Vec<String> = job.step.outputs.iter().map(|o| o.value.clone()).collect();
        let (from, to) = (winner.dir.clone(), job.out.to_path_buf());
        let json = serde_json::to_string_pretty(&metrics).expect("a map of floats serializes");
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            for o in &outputs {
                let src = from.join(o);
                if src.is_dir() {
                    let dst = to.join(o);
                    if dst.exists() {
                        std::fs::remove_dir_all(&dst)?;
                    }
                    copy_dir(&src, &dst)?;
                }
            }
            std::fs::write(to.join(METRICS_FILE), json)
        })
        .await
        .map_err(|e| StepFailure::retryable(format!("copying the best trial failed: {e}")))?
        .map_err(|e| {
            StepFailure::retryable(format!(
                "cannot copy the outputs of trial {} to {}: {e}",
                winner.number,
                job.out.display()
            ))
        })?;
        let mut params: Vec<Param> = winner
            .params
            .iter()
            .map(|(k, v)| Param::new(k.as_str(), v.as_str()))
            .collect();
        params.push(Param::new("tune.strategy", strategy(job.tune.strategy)));
        params.push(Param::new("tune.metric", search.metric.as_str()));
        params.push(Param::new("tune.goal", goal(job.tune.goal)));
        let tags = vec![Tag::new("sextant.bestTrialRun", winner.run_id.as_str())];
        let id = job.step_run.to_string();
        self.db(move |s| s.log_batch(&id, &[], &params, &tags))
            .await?;
        tracing::info!(
            best = winner.number,
            trials = search.trials.len(),
            "tune step chose its best trial"
        );
        Ok(StepResult {
            metrics,
            ..StepResult::default()
        })
    }
}

/// Waits until `deadline`, or forever without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The scores of the trials at `indices`.
fn scores(trials: &[Trial], indices: &[usize]) -> Vec<Option<f64>> {
    indices.iter().map(|&i| trials[i].score).collect()
}

/// The failure of a search where no trial of `round` has a score.
fn no_score(search: &Search<'_, '_>, indices: &[usize], round: &str) -> StepFailure {
    let first = indices.iter().find_map(|&i| {
        search.trials[i]
            .error
            .as_ref()
            .map(|e| (search.trials[i].number, e))
    });
    let why = match first {
        Some((n, e)) => format!("; trial {n} failed: {e}"),
        None => String::new(),
    };
    StepFailure::retryable(format!(
        "no trial of {round} of step '{}' logged metric '{}'{why}",
        search.job.step.name.value, search.metric
    ))
}

fn strategy(s: Strategy) -> &'static str {
    match s {
        Strategy::Grid => "grid",
        Strategy::Random => "random",
        Strategy::Halving => "halving",
    }
}

fn goal(g: Goal) -> &'static str {
    match g {
        Goal::Minimize => "minimize",
        Goal::Maximize => "maximize",
    }
}

/// Copies the directory `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}
