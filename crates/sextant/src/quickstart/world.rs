//! The synthetic world the quickstart's data comes from, and the definitions
//! it applies: the pipeline, the endpoint and the monitor.

use std::path::Path;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{ENDPOINT, FEATURES, MODEL, MONITOR, PIPELINE, TARGET};

/// The pipeline: the same definition trains the first model and, triggered
/// by the monitor's violation, retrains on the window the endpoint saw.
pub(super) fn pipeline_yaml() -> String {
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

pub(super) fn endpoint_spec() -> Value {
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

pub(super) fn monitor_spec() -> Value {
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
pub(super) enum Regime {
    Before,
    After,
}

pub(super) fn customer(rng: &mut StdRng, regime: Regime) -> ([f64; 6], f64) {
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

pub(super) fn write_training_csv(path: &Path, rows: usize, seed: u64) -> anyhow::Result<()> {
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
