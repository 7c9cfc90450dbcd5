//! `sextant quickstart`: the whole loop on synthetic data, in a fresh data
//! directory, against an in-process server on a free port — every step goes
//! through the same HTTP API a user or the `mlflow` client would use:
//!
//! prepare → train (built-in) → evaluate → gate → register (approved) →
//! endpoint with capture → clean traffic + ground truth → monitor (clean) →
//! drifted traffic → monitor violation → retraining pipeline (event trigger)
//! → new version approved → canary → promotion; then a summary and where to
//! look. It exits non-zero if any inference request failed or the loop did
//! not close.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sextant_client::{Client as Api, ClientError, Definition, EventsQuery, RunRequest};

use crate::server::{self, PipelineArgs, StoreArgs};
use sextant_core::clock::now_ms;

const MODEL: &str = "quickstart-spend";
const PIPELINE: &str = "quickstart-spend";
const ENDPOINT: &str = "quickstart";
const MONITOR: &str = "quickstart-drift";
const FEATURES: [&str; 6] = [
    "tenure",
    "usage",
    "price",
    "discount",
    "support_calls",
    "age",
];
const TARGET: &str = "spend";
/// Rows of the first training set, and of clean and drifted traffic before each monitor run.
const TRAIN_ROWS: usize = 5000;
const CLEAN_REQUESTS: usize = 1200;
const DRIFT_REQUESTS: usize = 1500;
const AFTER_REQUESTS: usize = 1000;
/// The whole loop must close within this time, or the quickstart gives up.
const DEADLINE: Duration = Duration::from_secs(180);

/// Settings of `sextant quickstart`.
#[derive(Args)]
pub struct QuickstartArgs {
    /// A new (or empty) directory for everything the quickstart makes.
    #[arg(long, default_value = "./sextant-quickstart")]
    data_dir: PathBuf,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// The pipeline: the same definition trains the first model and, triggered
/// by the monitor's violation, retrains on the window the endpoint saw.
fn pipeline_yaml() -> String {
    format!(
        r#"name: {PIPELINE}
params:
  data: {{type: string}}
  min_r2: {{type: float, default: 0.8}}
on:
  - event: monitor.violation
    where: {{monitor: {MONITOR}}}
    params: {{data: "${{event.payload.window_path}}"}}
steps:
  split:
    uses: builtin/split
    with: {{data: "${{params.data}}", test_fraction: 0.2, seed: 1}}
    outputs: [train, test]
  train:
    uses: builtin/gbdt
    with: {{train: "${{steps.split.outputs.train}}", target: {TARGET}, n_trees: 60, learning_rate: 0.15, max_leaf_nodes: 15}}
    outputs: [model]
  evaluate:
    uses: builtin/evaluate
    with: {{model: "${{steps.train.outputs.model}}", data: "${{steps.split.outputs.test}}", target: {TARGET}}}
  gate:
    condition: "steps.evaluate.metrics.r2 >= params.min_r2"
    then: [baseline]
    else: fail
  baseline:
    uses: builtin/baseline
    with: {{data: "${{steps.split.outputs.train}}", target: {TARGET}, model: "${{steps.train.outputs.model}}"}}
    outputs: [baseline, model]
  register:
    register_model: {{name: {MODEL}, model: "${{steps.baseline.outputs.model}}", approval: approved}}
"#
    )
}

fn endpoint_spec() -> Value {
    json!({
        "variants": [{"name": "primary", "model": format!("models:/{MODEL}/1")}],
        "capture": {"sampling_percent": 100},
        "rollout": {
            "strategy": "canary", "percent": 20, "bake": "6s",
            "alarms": {"max_error_rate": 0.01, "min_requests": 50}
        },
        "follow": {"model": MODEL, "approved": true}
    })
}

fn monitor_spec() -> Value {
    json!({
        "endpoint": ENDPOINT,
        "window": "1h",
        "min_rows": 500,
        "model_quality": {
            "problem_type": "Regression",
            "label": TARGET,
            "constraints": {"r2": {"threshold": 0.8, "comparison_operator": "LessThanThreshold"}}
        }
    })
}

/// The world the data comes from: before the drift, customers as trained on;
/// after it, a promotion campaign — more usage, higher list prices, deeper
/// discounts — and spend that reacts to price differently.
#[derive(Clone, Copy, PartialEq)]
enum Regime {
    Before,
    After,
}

fn customer(rng: &mut StdRng, regime: Regime) -> ([f64; 6], f64) {
    let after = regime == Regime::After;
    let tenure = rng.random_range(0.0..60.0);
    let usage = normal(rng, if after { 72.0 } else { 50.0 }, 15.0).max(0.0);
    let price = normal(rng, if after { 42.0 } else { 30.0 }, 8.0).max(1.0);
    let discount = if after {
        rng.random_range(0.2..0.5)
    } else {
        rng.random_range(0.0..0.3)
    };
    let support_calls = f64::from(rng.random_range(0..7u8));
    let age = normal(rng, 40.0, 12.0).clamp(18.0, 90.0);
    let net = price * (1.0 - discount);
    let spend = if after {
        35.0 + 0.6 * usage + 0.8 * tenure + 0.9 * net - 2.0 * support_calls
    } else {
        20.0 + 1.5 * usage + 0.8 * tenure - 2.0 * net + 3.0 * support_calls
    } + normal(rng, 0.0, 5.0);
    (
        [tenure, usage, price, discount, support_calls, age].map(round3),
        round3(spend),
    )
}

fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
    // Box–Muller; 1 - u keeps the logarithm finite.
    let (u, v): (f64, f64) = (rng.random(), rng.random());
    mean + sd * (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn write_training_csv(path: &Path, rows: usize, seed: u64) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut text = format!("{},{TARGET}\n", FEATURES.join(","));
    for _ in 0..rows {
        let (x, y) = customer(&mut rng, Regime::Before);
        let cells: Vec<String> = x.iter().map(f64::to_string).collect();
        text.push_str(&format!("{},{y}\n", cells.join(",")));
    }
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Progress lines, stamped with the time since the start.
struct Log(Instant);

impl Log {
    fn say(&self, text: impl AsRef<str>) {
        println!(
            "[{:5.1}s] {}",
            self.0.elapsed().as_secs_f64(),
            text.as_ref()
        );
    }
}

/// Inference traffic: what was sent, what failed, and the labels that the
/// "business" learns later (uploaded as ground truth).
#[derive(Default)]
struct Traffic {
    sent: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
    labels: Mutex<Vec<(String, f64)>>,
    stop: AtomicBool,
}

impl Traffic {
    async fn send(&self, api: &Api, id: String, x: [f64; 6], y: f64) {
        let row: Vec<Value> = x
            .iter()
            .zip(FEATURES)
            .map(|(v, name)| {
                if name == "support_calls" {
                    json!(*v as i64)
                } else {
                    json!(v)
                }
            })
            .collect();
        let body = json!({"dataframe_split": {"columns": FEATURES, "data": [row]}});
        let result = api.invoke(ENDPOINT, Some(&id), &body).await;
        self.sent.fetch_add(1, Ordering::Relaxed);
        let failure = result.err().map(|e| e.to_string());
        match failure {
            None => self.labels.lock().expect("labels").push((id, y)),
            Some(f) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_failure.lock().expect("failure").get_or_insert(f);
            }
        }
    }

    /// Uploads the labels collected so far as ground truth.
    async fn upload_labels(&self, api: &Api) -> anyhow::Result<usize> {
        let labels = std::mem::take(&mut *self.labels.lock().expect("labels"));
        for chunk in labels.chunks(1000) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|(id, y)| json!({"inference_id": id, "label": y}))
                .collect();
            api.upload_ground_truth(ENDPOINT, &records).await?;
        }
        Ok(labels.len())
    }
}

/// Sends `count` requests of `regime` traffic from `workers` concurrent
/// clients, or until stopped when `count` is `None`.
fn spawn_traffic(
    api: &Api,
    traffic: &Arc<Traffic>,
    regime: Regime,
    prefix: &str,
    count: Option<usize>,
    workers: u64,
    seed: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(0));
    (0..workers)
        .map(|w| {
            let (api, traffic, next) = (api.clone(), traffic.clone(), next.clone());
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed * 1000 + w);
                // A steady pace leaves the two cores to training and monitoring.
                let mut pace = tokio::time::interval(Duration::from_millis(if count.is_some() {
                    1
                } else {
                    4
                }));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if count.is_some_and(|c| i >= c as u64) || traffic.stop.load(Ordering::Relaxed)
                    {
                        break;
                    }
                    pace.tick().await;
                    let (x, y) = customer(&mut rng, regime);
                    traffic.send(&api, format!("{prefix}-{i}"), x, y).await;
                }
            })
        })
        .collect()
}

/// Runs the quickstart.
pub fn run(args: QuickstartArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: the quickstart starts from a fresh data directory\n\
             hint: remove it, or pass --data-dir NEW_DIR",
            dir.display()
        );
    }
    let store = StoreArgs {
        data_dir: dir.clone(),
        backend_store_uri: None,
        tuning: Default::default(),
    };
    let state = server::open_state(&store, None, true, &[])?;
    let data_dir = state
        .data_dir
        .as_deref()
        .cloned()
        .context("the quickstart needs a data directory")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let pipelines = PipelineArgs {
            pipeline_concurrency: None,
            pipeline_lease_ms: 30_000,
        };
        let settings = sextant_control::webhooks::WebhookSettings::default();
        let server = tokio::spawn(async move {
            server::serve(state, listener, settings, &pipelines, None, async {
                let _ = stopped.await;
            })
            .await
        });
        let base = format!("http://{addr}");
        let api = Api::new(&base)?;
        let outcome =
            tokio::time::timeout(DEADLINE, closed_loop(&api, &base, &data_dir, args.seed))
                .await
                .map_err(|_| anyhow!("the loop did not close within {} s", DEADLINE.as_secs()))
                .and_then(|r| r);
        let _ = stop.send(());
        server.await.context("the server task")??;
        outcome
    })
}

async fn closed_loop(api: &Api, base: &str, data_dir: &Path, seed: u64) -> anyhow::Result<()> {
    let log = Log(Instant::now());
    println!("Sextant quickstart: training, serving, monitoring and retraining on synthetic data");
    log.say(format!("server on {base} (data in {})", data_dir.display()));

    // 1. Prepare, train, evaluate, gate, baseline, register.
    let csv = data_dir.join("data").join("customers.csv");
    write_training_csv(&csv, TRAIN_ROWS, seed)?;
    log.say(format!(
        "prepare: {TRAIN_ROWS} synthetic customers in {} ({} features, target '{TARGET}')",
        csv.display(),
        FEATURES.len()
    ));
    api.put_pipeline(PIPELINE, pipeline_yaml()).await?;
    log.say(format!(
        "pipeline '{PIPELINE}': split -> train (built-in gradient-boosted trees) -> evaluate -> gate r2 >= 0.8 -> baseline -> register; it also runs on '{MONITOR}' violations"
    ));
    let mut params = serde_json::Map::new();
    params.insert("data".into(), json!(csv.display().to_string()));
    let run = api
        .start_run(
            PIPELINE,
            &RunRequest {
                params,
                no_cache: false,
            },
        )
        .await?;
    let first = wait_for_pipeline_run(api, &log, text(&run["id"])).await?;
    let v1 = registered_version(&first)?;
    let r2_v1 = step_metric(&first, "evaluate", "r2");
    log.say(format!(
        "registered {MODEL} v{v1} (held-out r2 {r2_v1:.3}), approved by the pipeline's gate"
    ));

    // 2. An endpoint that captures everything and follows approved versions.
    api.put_endpoint(ENDPOINT, Definition::Json(endpoint_spec()), Duration::ZERO)
        .await?;
    wait_until(
        || api.get_endpoint(ENDPOINT),
        |e| e["deployed"]["primary"]["version"].as_i64() == Some(v1),
    )
    .await?;
    log.say(format!(
        "endpoint '{ENDPOINT}' serves v{v1}: capture 100 %, canary 20 % for 6 s on each newly approved version"
    ));

    // 3. Clean traffic, its ground truth, and a monitor that finds nothing.
    let traffic = Arc::new(Traffic::default());
    let clean_start = now_ms();
    for h in spawn_traffic(
        api,
        &traffic,
        Regime::Before,
        "clean",
        Some(CLEAN_REQUESTS),
        4,
        seed + 1,
    ) {
        h.await?;
    }
    let labels = traffic.upload_labels(api).await?;
    log.say(format!(
        "traffic: {CLEAN_REQUESTS} requests like the training data; {labels} labels uploaded as ground truth"
    ));
    api.put_monitor(MONITOR, Definition::Json(monitor_spec()))
        .await?;
    let clean = api
        .run_monitor(
            MONITOR,
            &json!({"window_start": clean_start, "window_end": now_ms()}),
        )
        .await?;
    log.say(format!(
        "monitor '{MONITOR}' (baseline: v{v1}'s training data): {}",
        describe_run(&clean)
    ));

    // 4. The world drifts; traffic keeps flowing until the new model serves all of it.
    let drift_start = Instant::now();
    let drift_ms = now_ms();
    let drifted = spawn_traffic(api, &traffic, Regime::After, "drifted", None, 2, seed + 2);
    log.say("drift: a promotion campaign begins (more usage, higher prices, deeper discounts, spend reacts differently)");
    while traffic.sent.load(Ordering::Relaxed) < (CLEAN_REQUESTS + DRIFT_REQUESTS) as u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let labels = traffic.upload_labels(api).await?;
    log.say(format!(
        "traffic: {DRIFT_REQUESTS} drifted requests; {labels} labels uploaded"
    ));
    let cursor = api
        .events(&EventsQuery {
            limit: 1000,
            ..Default::default()
        })
        .await?
        .cursor;
    let violated = api
        .run_monitor(
            MONITOR,
            &json!({"window_start": drift_ms, "window_end": now_ms()}),
        )
        .await?;
    log.say(format!("monitor '{MONITOR}': {}", describe_run(&violated)));
    if violated["status"] != "CompletedWithViolations" {
        bail!("the monitor did not flag the drifted window: {violated}");
    }

    // 5. Violation -> retraining -> v2 approved -> canary -> promotion, watched on the events feed.
    let promoted = follow_the_loop(api, &log, cursor, v1).await;
    let to_full = drift_start.elapsed();
    let (retrain, v2) = match promoted {
        Ok(p) => p,
        Err(e) => {
            traffic.stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
    };
    let r2_v2 = step_metric(&retrain, "evaluate", "r2");

    // 6. The same monitor on traffic after the promotion: v2 brought its own
    // baseline (the drifted world it was trained on), so it judges v2 by it.
    let after_ms = now_ms();
    let goal = traffic.sent.load(Ordering::Relaxed) + AFTER_REQUESTS as u64;
    while traffic.sent.load(Ordering::Relaxed) < goal {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    traffic.stop.store(true, Ordering::Relaxed);
    for h in drifted {
        h.await?;
    }
    traffic.upload_labels(api).await?;
    let after = api
        .run_monitor(
            MONITOR,
            &json!({"window_start": after_ms, "window_end": now_ms()}),
        )
        .await?;
    log.say(format!(
        "monitor '{MONITOR}' after the promotion (baseline: v{v2}'s training data): {}",
        describe_run(&after)
    ));

    // 7. Summary.
    let endpoint = api.get_endpoint(ENDPOINT).await?;
    let version = api.get_model_version(MODEL, v2).await?;
    let (sent, failed) = (
        traffic.sent.load(Ordering::Relaxed),
        traffic.failed.load(Ordering::Relaxed),
    );
    println!();
    println!("Summary");
    println!("  versions:");
    println!(
        "    v{v1}: first training, held-out r2 {r2_v1:.3}, pipeline run {}",
        text(&first["id"])
    );
    println!(
        "    v{v2}: retrained on the drifted window, held-out r2 {r2_v2:.3}, pipeline run {} (trigger event {}, monitor run {})",
        text(&retrain["id"]),
        version["tags"]["sextant.triggerEvent"]
            .as_str()
            .unwrap_or("?"),
        version["tags"]["sextant.monitorRun"]
            .as_str()
            .unwrap_or("?"),
    );
    println!("  endpoint '{ENDPOINT}' traffic split history:");
    let t0 = endpoint["traffic"][0]["time"].as_i64().unwrap_or(0);
    for change in endpoint["traffic"].as_array().into_iter().flatten() {
        let split: Vec<String> = change["split"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} {}%", v.as_f64().unwrap_or(0.0)))
            .collect();
        println!(
            "    +{:6.1}s  {:<32} {}",
            (change["time"].as_i64().unwrap_or(t0) - t0) as f64 / 1000.0,
            split.join(", "),
            text(&change["reason"])
        );
    }
    println!("  drift findings (top drifting features, baseline v{v1} vs drifted window):");
    for line in top_drift(&violated, 5) {
        println!("    {line}");
    }
    if let Some(r2) = quality_r2(&clean).zip(quality_r2(&violated)) {
        println!(
            "  model quality of v{v1}: r2 {:.3} on clean traffic, {:.3} after the drift",
            r2.0, r2.1
        );
    }
    if let Some(r2) = quality_r2(&after) {
        println!(
            "  model quality of v{v2} on traffic after its promotion: r2 {r2:.3} ({} violations)",
            after["summary"]["violations"]
                .as_array()
                .map_or(0, Vec::len)
        );
    }
    println!("  requests: {sent} sent, {failed} failed");
    println!(
        "  time from drift onset to v{v2} serving 100 %: {:.1} s",
        to_full.as_secs_f64()
    );
    println!();
    println!("Where to look");
    println!(
        "  sextant server --data-dir {}    # then http://127.0.0.1:5000",
        data_dir.display()
    );
    for (what, run) in [
        ("clean", &clean),
        ("drifted", &violated),
        ("after promotion", &after),
    ] {
        if let Some(p) = run["summary"]["files"]["report.html"].as_str() {
            println!(
                "  {what} window report: {}  (or {} once served)",
                data_dir.join("artifacts").join(p).display(),
                text(&run["report_url"])
            );
        }
    }
    println!(
        "  events: sextant events tail    models: sextant models show {MODEL}    endpoint: sextant endpoints show {ENDPOINT}"
    );
    if failed > 0 {
        bail!(
            "{failed} of {sent} inference requests failed; the first: {}",
            traffic
                .first_failure
                .lock()
                .expect("failure")
                .clone()
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Prints each hop of the loop as its event arrives, until the retrained
/// version serves all traffic; returns the retraining run and the version.
async fn follow_the_loop(
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

/// Polls a pipeline run until it ends; prints its steps.
async fn wait_for_pipeline_run(api: &Api, log: &Log, id: &str) -> anyhow::Result<Value> {
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
async fn wait_until<F>(get: impl Fn() -> F, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value>
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

fn registered_version(run: &Value) -> anyhow::Result<i64> {
    run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|s| s["model_version"].as_i64())
        .context("the pipeline run registered no model version")
}

fn step_metric(run: &Value, step: &str, metric: &str) -> f64 {
    run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == step)
        .and_then(|s| s["metrics"][metric].as_f64())
        .unwrap_or(f64::NAN)
}

fn failed_steps(run: &Value) -> String {
    let failed: Vec<String> = run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["error"].is_string())
        .map(|s| format!("{}: {}", text(&s["name"]), text(&s["error"])))
        .collect();
    failed.join("; ")
}

fn describe_run(run: &Value) -> String {
    let s = &run["summary"];
    let violations = s["violations"].as_array().map_or(0, Vec::len);
    let mut text_out = format!(
        "{} over {} rows, {violations} violations",
        text(&run["status"]),
        s["rows"]
    );
    if let Some(d) = s["drift"]["drifted_features"].as_array() {
        let names: Vec<&str> = d.iter().map(text).collect();
        text_out.push_str(&format!(
            "; drifted features: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    if let Some(r2) = quality_r2(run) {
        text_out.push_str(&format!("; r2 {r2:.3}"));
    }
    if run["status"] == "Failed" {
        text_out.push_str(&format!(": {}", text(&run["error"])));
    }
    text_out
}

fn quality_r2(run: &Value) -> Option<f64> {
    run["summary"]["model_quality"]["metrics"]["regression_metrics"]["r2"]["value"].as_f64()
}

/// The most drifted features of a monitor run, strongest first.
fn top_drift(run: &Value, n: usize) -> Vec<String> {
    let mut features: Vec<&Value> = run["summary"]["drift"]["features"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    features.sort_by(|a, b| {
        let s = |v: &Value| v["statistic"].as_f64().unwrap_or(0.0);
        s(b).total_cmp(&s(a))
    });
    features
        .into_iter()
        .take(n)
        .map(|f| {
            format!(
                "{:<14} {:<22} {:.3}  adjusted p {}{}",
                text(&f["name"]),
                text(&f["method"]),
                f["statistic"].as_f64().unwrap_or(f64::NAN),
                f["adjusted_p_value"]
                    .as_f64()
                    .map_or("-".into(), |p| format!("{p:.2e}")),
                if f["drifted"] == true {
                    "  DRIFTED"
                } else {
                    ""
                }
            )
        })
        .collect()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}
