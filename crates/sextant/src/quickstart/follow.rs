//! Following the loop on the events feed: from the monitor's violation to
//! the retrained version serving all traffic.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use sextant_client::{Client as Api, EventsQuery};

use super::runs::failed_steps;
use super::{ENDPOINT, Log, MODEL, PIPELINE, text};

/// Prints each hop of the loop as its event arrives, until the retrained
/// version serves all traffic; returns the retraining run and the version.
pub(super) async fn follow_the_loop(
    api: &Api,
    log: &Log,
    mut cursor: i64,
    v1: i64,
) -> anyhow::Result<(Value, i64)> {
    let mut retrain_run: Option<String> = None;
    let mut v2: Option<i64> = None;
    loop {
        let page = api
            .events(&EventsQuery {
                after: Some(cursor.to_string()),
                limit: 1000,
                wait: Duration::from_secs(10),
                kinds: None,
            })
            .await?;
        cursor = page.cursor;
        for e in &page.events {
            let p = &e["payload"];
            match text(&e["kind"]) {
                "monitor.violation" => log.say(format!(
                    "event {}: monitor.violation ({} violations: {})",
                    e["id"],
                    p["violations"],
                    p["checks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(text)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                "pipeline_run.created" if p["pipeline"] == PIPELINE => {
                    retrain_run = p["id"].as_str().map(String::from);
                    log.say(format!(
                        "event {}: pipeline run {} started by event {}: retraining on the window's labelled rows",
                        e["id"],
                        text(&p["id"]),
                        p["trigger_event"],
                    ));
                }
                "pipeline_run.failed" | "pipeline_run.cancelled" if p["pipeline"] == PIPELINE => {
                    let run = api.get_pipeline_run(text(&p["id"])).await?;
                    bail!("the retraining run failed: {}", failed_steps(&run));
                }
                "model_version.approved" if p["name"] == MODEL => {
                    v2 = p["version"].as_i64();
                    log.say(format!(
                        "event {}: {MODEL} v{} registered and approved by the gate",
                        e["id"], p["version"]
                    ));
                }
                "pipeline_run.succeeded" if p["pipeline"] == PIPELINE => {
                    log.say(format!(
                        "event {}: pipeline run {} succeeded",
                        e["id"],
                        text(&p["id"])
                    ));
                }
                "endpoint.updated" if p["name"] == ENDPOINT => {
                    let endpoint = api.get_endpoint(ENDPOINT).await?;
                    let reason = endpoint["traffic"]
                        .as_array()
                        .and_then(|t| t.last())
                        .map_or("", |c| text(&c["reason"]));
                    log.say(format!("event {}: endpoint.updated: {reason}", e["id"]));
                }
                "endpoint.traffic_shifted" | "endpoint.rollout_succeeded"
                    if p["name"] == ENDPOINT =>
                {
                    log.say(format!(
                        "event {}: {}: {}",
                        e["id"],
                        text(&e["kind"]),
                        text(&p["reason"])
                    ));
                    if e["kind"] == "endpoint.rollout_succeeded" && v2.is_some() {
                        let endpoint = api.get_endpoint(ENDPOINT).await?;
                        if endpoint["deployed"]["primary"]["version"].as_i64() == v2 {
                            let id = retrain_run.context("a promotion without a retraining run")?;
                            let run = api.get_pipeline_run(&id).await?;
                            return Ok((run, v2.unwrap_or(v1)));
                        }
                    }
                }
                "endpoint.rolled_back" if p["name"] == ENDPOINT => {
                    bail!("the canary was rolled back: {}", text(&p["reason"]));
                }
                _ => {}
            }
        }
    }
}
