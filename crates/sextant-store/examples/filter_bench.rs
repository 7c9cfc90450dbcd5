//! Cost of run searches with many filter clauses on SQLite and PostgreSQL:
//! `N` clauses `metrics.mK > 0` over an experiment of `RUNS` runs with 100
//! metrics each, when every run matches (a page fills early) and when none
//! does (every run is checked). Median of 5 searches, 100 results a page.
//!
//! `cargo run --release -p sextant-store --example filter_bench [RUNS]`;
//! PostgreSQL is the server at `SEXTANT_BENCH_POSTGRES_URL` (default
//! `postgresql://postgres@127.0.0.1:5432/postgres`), where a scratch
//! database is created and dropped. This is a benchmark, not a test.

use std::time::{Duration, Instant};

use sextant_core::entities::{Metric, NewRun};
use sextant_core::search::{MAX_FILTER_CLAUSES, SearchKind, parse_filter};
use sextant_store::{MetaStore, RunSearch};

const ROOT: &str = "mlflow-artifacts:";
const METRICS: usize = 100;

fn seed(s: &dyn MetaStore, runs: usize) -> Result<i64, Box<dyn std::error::Error>> {
    let exp = s.create_experiment("bench", None, &[])?;
    for i in 0..runs {
        let run = s.create_run(&NewRun {
            experiment_id: exp,
            start_time: Some(i as i64),
            ..NewRun::default()
        })?;
        let metrics: Vec<Metric> = (0..METRICS)
            .map(|k| Metric::new(format!("m{k}"), (k + 1) as f64, 0, 0))
            .collect();
        s.log_batch(&run.info.run_id, &metrics, &[], &[])?;
    }
    Ok(exp)
}

/// The median time of a search with `n` clauses; the last one fails for
/// every run when `none_match`.
fn time(
    s: &dyn MetaStore,
    exp: i64,
    n: usize,
    none_match: bool,
) -> Result<(Duration, usize), Box<dyn std::error::Error>> {
    let mut clauses: Vec<String> = (0..n)
        .map(|k| format!("metrics.m{} > 0", k % METRICS))
        .collect();
    if none_match {
        clauses[n - 1] = format!("metrics.m{} > 1e9", (n - 1) % METRICS);
    }
    let q = RunSearch {
        experiment_ids: vec![exp],
        filter: parse_filter(SearchKind::Runs, &clauses.join(" AND "))?,
        max_results: 100,
        ..RunSearch::default()
    };
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..5 {
        let t = Instant::now();
        found = s.search_runs(&q)?.items.len();
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times[2], found))
}

fn bench(label: &str, uri: &str, runs: usize) -> Result<(), Box<dyn std::error::Error>> {
    sextant_store::upgrade(uri, ROOT)?;
    let store = sextant_store::open(uri, ROOT)?;
    let t = Instant::now();
    let exp = seed(store.as_ref(), runs)?;
    if uri.starts_with("postgresql://") {
        // Fresh tables have no statistics until autovacuum comes by.
        postgres::Client::connect(uri, postgres::NoTls)?.batch_execute("ANALYZE")?;
    }
    println!(
        "{label:<9} seeded {runs} runs x {METRICS} metrics in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for n in [1, 10, 50, MAX_FILTER_CLAUSES] {
        for none_match in [false, true] {
            let (median, found) = time(store.as_ref(), exp, n, none_match)?;
            println!(
                "{label:<9} N={n:<4} {:<11} {:>9.1} ms  ({found} runs)",
                if none_match {
                    "none match"
                } else {
                    "all match"
                },
                median.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2_000);

    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite:///{}", dir.path().join("bench.db").display());
    bench("sqlite", &sqlite, runs)?;

    let admin = std::env::var("SEXTANT_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("sextant_filter_bench_{}", std::process::id());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)?;
    client.batch_execute(&format!("CREATE DATABASE {db}"))?;
    let uri = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => return Err(format!("no database name in {admin}").into()),
    };
    let out = bench("postgres", &uri, runs);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    out
}
