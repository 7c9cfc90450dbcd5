//! Measures raw log-batch throughput of the store (no HTTP):
//! `cargo run --release -p sextant-store --example ingest -- [sqlite:////abs/path.db | postgresql://…] [BATCH]`;
//! `SEXTANT_SQLITE_SYNCHRONOUS=full` measures SQLite with an fsync per commit.

use std::time::Instant;

use sextant_core::entities::{Metric, NewRun};

fn main() {
    let uri = std::env::args().nth(1).unwrap_or_else(|| {
        let dir = std::env::temp_dir().join(format!("sextant-ingest-{}", std::process::id()));
        format!("sqlite:///{}", dir.join("bench.db").display())
    });
    sextant_store::upgrade(&uri, "mlflow-artifacts:").unwrap();
    let batch: usize = std::env::args()
        .nth(2)
        .map_or(1000, |b| b.parse().expect("BATCH is a number"));
    let options = sextant_store::StoreOptions {
        sqlite_synchronous: std::env::var("SEXTANT_SQLITE_SYNCHRONOUS")
            .map_or(Ok(Default::default()), |s| s.parse())
            .unwrap(),
        ..Default::default()
    };
    let store = sextant_store::open_with(&uri, "mlflow-artifacts:", &options).unwrap();
    let runs: Vec<String> = (0..40)
        .map(|_| {
            store
                .create_run(&NewRun {
                    experiment_id: 0,
                    ..NewRun::default()
                })
                .unwrap()
                .info
                .run_id
        })
        .collect();
    let t = Instant::now();
    let mut n = 0;
    for (i, run) in runs.iter().enumerate() {
        for b in 0..10 {
            let metrics: Vec<Metric> = (0..batch)
                .map(|k| {
                    Metric::new(
                        format!("m{}", k % 10),
                        (i * k) as f64 * 0.001,
                        1_700_000_000_000,
                        (b * batch + k) as i64,
                    )
                })
                .collect();
            store.log_batch(run, &metrics, &[], &[]).unwrap();
            n += metrics.len();
        }
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "{{\"uri\": \"{uri}\", \"synchronous\": \"{}\", \"metrics\": {n}, \"seconds\": {el:.3}, \"metrics_per_s\": {:.0}, \"batches_per_s\": {:.0}}}",
        options.sqlite_synchronous.as_str(),
        n as f64 / el,
        (runs.len() * 10) as f64 / el
    );
}
