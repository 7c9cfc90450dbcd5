//! Per-row cost of `Model::run` on an ONNX file, batch 1 and batch 100 (a benchmark, not a
//! test). The inputs are the first row(s) of a zoo JSON written by `tests/python/make_zoo.py`.
//!
//! `cargo run --release -p sextant-onnx --example onnx_bench -- MODEL.onnx MODEL.json`
//! (or without `--release`: dependencies are built at opt-level 2, this crate is not.)

use std::time::Instant;

use sextant_onnx::{Model, Tensor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, onnx, json] = args.as_slice() else {
        anyhow::bail!("usage: onnx_bench MODEL.onnx MODEL.json");
    };
    let model = Model::load(&std::fs::read(onnx)?)?;
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json)?)?;
    let (name, input) = doc["inputs"]
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or_else(|| anyhow::anyhow!("no input"))?;
    let cols = input["shape"][1].as_u64().unwrap_or(1) as usize;
    let data: Vec<f32> = input["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
        .collect();
    for batch in [1usize, 100] {
        let rows: Vec<f32> = (0..batch)
            .flat_map(|r| data[(r % (data.len() / cols)) * cols..][..cols].to_vec())
            .collect();
        let tensor = Tensor::f32(vec![batch, cols], rows)?;
        let iters = if batch == 1 { 20_000 } else { 500 };
        for _ in 0..iters / 10 {
            model.run([(name.as_str(), tensor.clone())])?;
        }
        let start = Instant::now();
        for _ in 0..iters {
            model.run([(name.as_str(), tensor.clone())])?;
        }
        let per_call = start.elapsed().as_secs_f64() * 1e6 / iters as f64;
        println!(
            "batch {batch:>3}: {per_call:9.2} µs/call, {:8.3} µs/row",
            per_call / batch as f64
        );
    }
    Ok(())
}
