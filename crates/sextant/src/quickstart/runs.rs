//! Reading pipeline runs over the API: waiting for one to end, and what it
//! registered and measured.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use sextant_client::{Client as Api, ClientError};

use super::{Log, text};

/// Polls a pipeline run until it ends; prints its steps.
pub(super) async fn wait_for_pipeline_run(api: &Api, log: &Log, id: &str) -> anyhow::Result<Value> {
    let run = wait_until(
        || api.get_pipeline_run(id),
        |r| matches!(text(&r["status"]), "SUCCEEDED" | "FAILED" | "CANCELLED"),
    )
    .await?;
    let steps: Vec<String> = run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} {}", text(&s["name"]), text(&s["status"]).to_lowercase()))
        .collect();
    log.say(format!("pipeline run {id}: {}", steps.join(", ")));
    if run["status"] != "SUCCEEDED" {
        bail!(
            "pipeline run {id} ended {}: {}",
            text(&run["status"]),
            failed_steps(&run)
        );
    }
    Ok(run)
}

/// Reads with `get` until `done` holds for the answer (every 100 ms).
pub(super) async fn wait_until<F>(
    get: impl Fn() -> F,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value>
where
    F: Future<Output = Result<Value, ClientError>>,
{
    loop {
        let v = get().await?;
        if done(&v) {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The model version the run's `register_model:` step wrote.
pub(super) fn registered_version(run: &Value) -> anyhow::Result<i64> {
    run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|s| s["model_version"].as_i64())
        .context("the pipeline run registered no model version")
}

/// A metric a step of the run logged; NaN when it logged none.
pub(super) fn step_metric(run: &Value, step: &str, metric: &str) -> f64 {
    run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == step)
        .and_then(|s| s["metrics"][metric].as_f64())
        .unwrap_or(f64::NAN)
}

/// The failed steps with their errors, `; `-separated.
pub(super) fn failed_steps(run: &Value) -> String {
    let failed: Vec<String> = run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["error"].is_string())
        .map(|s| format!("{}: {}", text(&s["name"]), text(&s["error"])))
        .collect();
    failed.join("; ")
}
