//! Profiles two CSV files end to end (read, parse, sketch) and compares them, printing
//! values per second. Data: `python ../shared/bench/make_drift_data.py 1000000 /tmp/drift-data`.
//!
//!     cargo run --release -p sextant-monitor --example profile_bench -- /tmp/drift-data

use std::time::Instant;

use sextant_monitor::drift::{DriftConfig, FeatureDrift, NumericSample, dataset_drift};
use sextant_monitor::profile::ProfileOptions;
use sextant_monitor::read::profile_path;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/drift-data".into());
    let dir = std::path::Path::new(&dir);
    let start = Instant::now();
    let opts = ProfileOptions::default();
    let reference = profile_path(&dir.join("reference.csv"), opts).expect("reference.csv");
    let current = profile_path(&dir.join("current.csv"), opts).expect("current.csv");
    let profiled = start.elapsed();
    let config = DriftConfig::default();
    let features: Vec<FeatureDrift> = reference
        .columns
        .iter()
        .filter_map(|r| {
            let c = current.column(&r.name)?;
            Some(if r.inferred_type().is_numeric() {
                let (rc, cc) = (r.cdf(), c.cdf());
                FeatureDrift::numeric(
                    &r.name,
                    NumericSample {
                        cdf: &rc,
                        n: r.moments.n,
                        std_dev: r.std_dev(),
                    },
                    NumericSample {
                        cdf: &cc,
                        n: c.moments.n,
                        std_dev: c.std_dev(),
                    },
                    &config,
                )
            } else {
                FeatureDrift::categorical(&r.name, &r.categories(), &c.categories(), &config)
            })
        })
        .collect();
    let drift = dataset_drift(features, &config);
    let total = start.elapsed();
    let values = (reference.item_count + current.item_count) * reference.columns.len() as u64;
    println!(
        "{} + {} rows x {} columns = {values} values: profiled in {:.2} s, compared in {:.3} s; {:.1} M values/s end to end",
        reference.item_count,
        current.item_count,
        reference.columns.len(),
        profiled.as_secs_f64(),
        (total - profiled).as_secs_f64(),
        values as f64 / total.as_secs_f64() / 1e6
    );
    println!(
        "drifted: {:?} (share {:.2})",
        drift.drifted_features, drift.share
    );
}
