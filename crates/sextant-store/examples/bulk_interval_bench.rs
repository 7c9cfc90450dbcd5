//! Times `metric_history_bulk_interval` — what the web UI's compare page
//! asks once per chart — over RUNS runs of STEPS steps of one metric (100 ×
//! 10,000 by default, issue 18's "20 charts × 100 runs × 10,000 steps"), in a
//! fresh SQLite store or the store URI given third (an empty PostgreSQL
//! database, say). Prints the best and median of 10 calls, 320 points each.
//!
//!     cargo run --release -p sextant-store --example bulk_interval_bench -- 100 10000 [URI]

use std::time::Instant;

use sextant_core::entities::{Metric, NewRun};

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(100, |a| a.parse().expect("RUNS"));
    let steps: i64 = args.next().map_or(10_000, |a| a.parse().expect("STEPS"));
    let dir = tempfile::tempdir().unwrap();
    let uri = args
        .next()
        .unwrap_or_else(|| format!("sqlite:///{}", dir.path().join("bench.db").display()));
    sextant_store::upgrade(&uri, "mlflow-artifacts:").unwrap();
    let store = sextant_store::open(&uri, "mlflow-artifacts:").unwrap();
    let start = Instant::now();
    let mut ids = Vec::new();
    for r in 0..runs {
        let run = store
            .create_run(&NewRun {
                experiment_id: 0,
                user_id: "bench".into(),
                start_time: Some(1),
                ..NewRun::default()
            })
            .unwrap();
        for first in (0..steps).step_by(1000) {
            let batch: Vec<Metric> = (first..(first + 1000).min(steps))
                .map(|s| Metric::new("loss", (s as f64 + r as f64).ln_1p(), 1_000 + s, s))
                .collect();
            store.log_batch(&run.info.run_id, &batch, &[], &[]).unwrap();
        }
        ids.push(run.info.run_id);
    }
    println!(
        "filled {runs} runs × {steps} steps in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut points = 0;
    for _ in 0..10 {
        let start = Instant::now();
        points = store
            .metric_history_bulk_interval(&ids, "loss", None, 320)
            .unwrap()
            .len();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "bulk interval, {points} points: best {:.1} ms, median {:.1} ms",
        times[0], times[5]
    );
}
