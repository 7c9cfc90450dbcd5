//! Throughput of the task queue: enqueues, then claim + complete pairs per
//! second on SQLite and PostgreSQL, with one and with four claimers.
//!
//! `cargo run --release -p sextant-store --example queue_bench [TASKS]`;
//! PostgreSQL is the server at `SEXTANT_BENCH_POSTGRES_URL` (default
//! `postgresql://postgres@127.0.0.1:5432/postgres`), where a scratch
//! database is created and dropped. This is a benchmark, not a test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sextant_core::pipeline_runs::{NewPipelineRun, TriggerKind};
use sextant_store::MetaStore;

const ROOT: &str = "mlflow-artifacts:";
const LEASE_MS: i64 = 600_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Queues `n` tasks in a fresh run and returns the run id.
fn fill(s: &dyn MetaStore, n: usize) -> Result<(String, f64), Box<dyn std::error::Error>> {
    if s.get_pipeline("bench").is_err() {
        s.put_pipeline("bench", "name: bench\n", None)?;
    }
    let run = s.create_pipeline_run_at(
        &NewPipelineRun {
            pipeline: "bench".into(),
            params: "{}".into(),
            trigger_kind: TriggerKind::Manual,
            trigger_event: None,
            run_uuid: None,
            no_cache: false,
            started_by: None,
        },
        now(),
    )?;
    let t = Instant::now();
    for i in 0..n {
        s.enqueue_task_at(&run.id, &format!("s{i}"), "{}", None, now())?;
    }
    Ok((run.id, n as f64 / t.elapsed().as_secs_f64()))
}

/// Drains the queue with `threads` claimers, each on its own store handle;
/// returns claim + complete pairs per second.
fn drain(stores: &[Box<dyn MetaStore>], threads: usize, n: usize) -> f64 {
    let done = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..threads {
            let store = stores[w % stores.len()].as_ref();
            let done = &done;
            scope.spawn(move || {
                let worker = format!("w{w}");
                while done.load(Ordering::SeqCst) < n {
                    match store.claim_task(&worker, LEASE_MS, now()).expect("claim") {
                        Some(c) => {
                            store
                                .complete_task_at(c.task.id, c.fencing, "{}", now())
                                .expect("complete");
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        None => std::thread::yield_now(),
                    }
                }
            });
        }
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn bench(label: &str, uri: &str, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    sextant_store::upgrade(uri, ROOT)?;
    let stores: Vec<Box<dyn MetaStore>> = (0..4)
        .map(|_| sextant_store::open(uri, ROOT))
        .collect::<Result<_, _>>()?;
    for threads in [1, 4] {
        let (_, enqueue_rate) = fill(stores[0].as_ref(), n)?;
        let rate = drain(&stores[..threads], threads, n);
        println!(
            "{label:<10} claimers={threads}  enqueue {enqueue_rate:>8.0}/s  \
             claim+complete {rate:>8.0}/s  ({n} tasks)"
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2_000);

    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite:///{}", dir.path().join("bench.db").display());
    bench("sqlite", &sqlite, n)?;

    let admin = std::env::var("SEXTANT_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("sextant_queue_bench_{}", std::process::id());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)?;
    client.batch_execute(&format!("CREATE DATABASE {db}"))?;
    let uri = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => return Err(format!("no database name in {admin}").into()),
    };
    let out = bench("postgres", &uri, n);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    out
}
