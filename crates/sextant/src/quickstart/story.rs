//! The quickstart's phases, in the order they run; each prints its progress
//! lines and hands the next what it needs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};
use sextant_client::{Client as Api, Definition, EventsQuery, RunRequest};
use sextant_core::clock::now_ms;
use tokio::task::JoinHandle;

use super::follow::follow_the_loop;
use super::runs::{registered_version, step_metric, wait_for_pipeline_run, wait_until};
use super::summary::{
    Windows, describe_run, print_findings, print_totals, print_traffic_history, print_versions,
    print_where_to_look,
};
use super::traffic::{Traffic, spawn_traffic};
use super::world::{Regime, endpoint_spec, monitor_spec, pipeline_yaml, write_training_csv};
use super::{
    AFTER_REQUESTS, CLEAN_REQUESTS, DRIFT_REQUESTS, ENDPOINT, FEATURES, Log, MODEL, MONITOR,
    PIPELINE, TARGET, TRAIN_ROWS, text,
};

/// What every phase works with.
pub(super) struct Story<'a> {
    api: &'a Api,
    log: Log,
    data_dir: &'a Path,
    seed: u64,
    traffic: Arc<Traffic>,
}

/// A version the pipeline trained and registered.
pub(super) struct Trained {
    /// The pipeline run that made it.
    pub(super) run: Value,
    pub(super) version: i64,
    /// The held-out r2 of the run's `evaluate` step.
    pub(super) r2: f64,
}

/// The world after the drift: traffic still flowing, and the monitor run
/// that flagged it.
pub(super) struct Drift {
    started: Instant,
    /// The drifted traffic's senders, running until stopped.
    pub(super) senders: Vec<JoinHandle<()>>,
    /// The events feed's position before the violation.
    cursor: i64,
    /// The monitor run over the drifted window.
    pub(super) violated: Value,
}

/// The retrained version, and how long after the drift began it served all traffic.
pub(super) struct Retrained {
    pub(super) trained: Trained,
    pub(super) drift_to_full: Duration,
}

impl<'a> Story<'a> {
    /// Starts the clock of the progress lines and says where the server is.
    pub(super) fn begin(api: &'a Api, base: &str, data_dir: &'a Path, seed: u64) -> Story<'a> {
        let log = Log(Instant::now());
        println!(
            "Sextant quickstart: training, serving, monitoring and retraining on synthetic data"
        );
        log.say(format!("server on {base} (data in {})", data_dir.display()));
        Story {
            api,
            log,
            data_dir,
            seed,
            traffic: Arc::new(Traffic::default()),
        }
    }

    /// Prepare, train, evaluate, gate, baseline, register.
    pub(super) async fn train_first_version(&self) -> anyhow::Result<Trained> {
        let csv = self.data_dir.join("data").join("customers.csv");
        write_training_csv(&csv, TRAIN_ROWS, self.seed)?;
        self.log.say(format!(
            "prepare: {TRAIN_ROWS} synthetic customers in {} ({} features, target '{TARGET}')",
            csv.display(),
            FEATURES.len()
        ));
        self.api.put_pipeline(PIPELINE, pipeline_yaml()).await?;
        self.log.say(format!(
            "pipeline '{PIPELINE}': split -> train (built-in gradient-boosted trees) -> evaluate -> gate r2 >= 0.8 -> baseline -> register; it also runs on '{MONITOR}' violations"
        ));
        let mut params = serde_json::Map::new();
        params.insert("data".into(), json!(csv.display().to_string()));
        let started = self
            .api
            .start_run(
                PIPELINE,
                &RunRequest {
                    params,
                    no_cache: false,
                },
            )
            .await?;
        let run = wait_for_pipeline_run(self.api, &self.log, text(&started["id"])).await?;
        let version = registered_version(&run)?;
        let r2 = step_metric(&run, "evaluate", "r2");
        self.log.say(format!(
            "registered {MODEL} v{version} (held-out r2 {r2:.3}), approved by the pipeline's gate"
        ));
        Ok(Trained { run, version, r2 })
    }

    /// An endpoint that captures everything and follows approved versions.
    pub(super) async fn serve(&self, first: &Trained) -> anyhow::Result<()> {
        let v1 = first.version;
        self.api
            .put_endpoint(ENDPOINT, Definition::Json(endpoint_spec()), Duration::ZERO)
            .await?;
        wait_until(
            || self.api.get_endpoint(ENDPOINT),
            |e| e["deployed"]["primary"]["version"].as_i64() == Some(v1),
        )
        .await?;
        self.log.say(format!(
            "endpoint '{ENDPOINT}' serves v{v1}: capture 100 %, canary 20 % for 6 s on each newly approved version"
        ));
        Ok(())
    }

    /// Clean traffic, its ground truth, and a monitor that finds nothing.
    pub(super) async fn monitor_clean_traffic(&self, first: &Trained) -> anyhow::Result<Value> {
        let start = now_ms();
        let senders = spawn_traffic(
            self.api,
            &self.traffic,
            Regime::Before,
            "clean",
            Some(CLEAN_REQUESTS),
            4,
            self.seed + 1,
        );
        for h in senders {
            h.await?;
        }
        let labels = self.traffic.upload_labels(self.api).await?;
        self.log.say(format!(
            "traffic: {CLEAN_REQUESTS} requests like the training data; {labels} labels uploaded as ground truth"
        ));
        self.api
            .put_monitor(MONITOR, Definition::Json(monitor_spec()))
            .await?;
        let clean = self.run_monitor(start).await?;
        self.log.say(format!(
            "monitor '{MONITOR}' (baseline: v{}'s training data): {}",
            first.version,
            describe_run(&clean)
        ));
        Ok(clean)
    }

    /// The world drifts; traffic keeps flowing until the new model serves all
    /// of it. The monitor must flag the drifted window.
    pub(super) async fn drift_the_world(&self) -> anyhow::Result<Drift> {
        let started = Instant::now();
        let start = now_ms();
        let senders = spawn_traffic(
            self.api,
            &self.traffic,
            Regime::After,
            "drifted",
            None,
            2,
            self.seed + 2,
        );
        self.log.say("drift: a promotion campaign begins (more usage, higher prices, deeper discounts, spend reacts differently)");
        self.traffic
            .until_sent((CLEAN_REQUESTS + DRIFT_REQUESTS) as u64)
            .await;
        let labels = self.traffic.upload_labels(self.api).await?;
        self.log.say(format!(
            "traffic: {DRIFT_REQUESTS} drifted requests; {labels} labels uploaded"
        ));
        let cursor = self
            .api
            .events(&EventsQuery {
                limit: 1000,
                ..Default::default()
            })
            .await?
            .cursor;
        let violated = self.run_monitor(start).await?;
        self.log
            .say(format!("monitor '{MONITOR}': {}", describe_run(&violated)));
        if violated["status"] != "CompletedWithViolations" {
            bail!("the monitor did not flag the drifted window: {violated}");
        }
        Ok(Drift {
            started,
            senders,
            cursor,
            violated,
        })
    }

    /// Violation -> retraining -> v2 approved -> canary -> promotion, watched
    /// on the events feed.
    pub(super) async fn retrain_and_promote(
        &self,
        drift: &Drift,
        first: &Trained,
    ) -> anyhow::Result<Retrained> {
        let promoted = follow_the_loop(self.api, &self.log, drift.cursor, first.version).await;
        let drift_to_full = drift.started.elapsed();
        let (run, version) = promoted.inspect_err(|_| self.traffic.stop())?;
        let r2 = step_metric(&run, "evaluate", "r2");
        Ok(Retrained {
            trained: Trained { run, version, r2 },
            drift_to_full,
        })
    }

    /// The same monitor on traffic after the promotion: v2 brought its own
    /// baseline (the drifted world it was trained on), so it judges v2 by it.
    /// Stops the drifted traffic.
    pub(super) async fn monitor_after_promotion(
        &self,
        senders: Vec<JoinHandle<()>>,
        second: &Trained,
    ) -> anyhow::Result<Value> {
        let start = now_ms();
        self.traffic
            .until_sent(self.traffic.sent() + AFTER_REQUESTS as u64)
            .await;
        self.traffic.stop();
        for h in senders {
            h.await?;
        }
        self.traffic.upload_labels(self.api).await?;
        let after = self.run_monitor(start).await?;
        self.log.say(format!(
            "monitor '{MONITOR}' after the promotion (baseline: v{}'s training data): {}",
            second.version,
            describe_run(&after)
        ));
        Ok(after)
    }

    /// The summary and where to look; an error if any inference request failed.
    pub(super) async fn summarize(
        &self,
        first: &Trained,
        second: &Retrained,
        windows: &Windows,
    ) -> anyhow::Result<()> {
        let v2 = second.trained.version;
        let endpoint = self.api.get_endpoint(ENDPOINT).await?;
        let version = self.api.get_model_version(MODEL, v2).await?;
        let (sent, failed) = (self.traffic.sent(), self.traffic.failed());
        println!();
        println!("Summary");
        print_versions(first, &second.trained, &version);
        print_traffic_history(&endpoint);
        print_findings(first.version, v2, windows);
        print_totals(sent, failed, v2, second.drift_to_full);
        println!();
        print_where_to_look(self.data_dir, windows);
        if failed > 0 {
            bail!(
                "{failed} of {sent} inference requests failed; the first: {}",
                self.traffic.first_failure()
            );
        }
        Ok(())
    }

    /// Runs the monitor over the window from `start` to now.
    async fn run_monitor(&self, start: i64) -> anyhow::Result<Value> {
        let window = json!({"window_start": start, "window_end": now_ms()});
        Ok(self.api.run_monitor(MONITOR, &window).await?)
    }
}
