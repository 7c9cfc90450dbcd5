//! Fills an audit log of N rows (1,000,000 by default) in a fresh SQLite
//! store, seals it, and times `verify` over the whole chain, printing rows
//! per second of each phase. A store URI as second argument (an empty
//! PostgreSQL database, say) is used instead of the temporary SQLite file.
//!
//!     cargo run --release -p sextant-store --example audit_verify_bench -- 1000000

use std::time::Instant;

use sextant_core::audit::NewAuditRow;

const BATCH: usize = 10_000;

fn row(i: usize) -> NewAuditRow {
    NewAuditRow {
        time_ms: 1_700_000_000_000 + i as i64,
        actor: Some(format!("user{}", i % 50)),
        auth_method: Some("basic".into()),
        source: Some(format!("10.0.{}.{}", i / 256 % 256, i % 256)),
        method: "POST".into(),
        route: "/api/2.0/mlflow/runs/log-batch".into(),
        resource: Some(format!("run:{:032x}", i * 7919)),
        status: 200,
        request_id: Some(format!("{:032x}", i * 104_729)),
        count: 1,
        action: None,
    }
}

fn per_second(n: usize, secs: f64) -> String {
    format!("{:.0} rows/s", n as f64 / secs)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("N: a number of rows"));
    let dir = tempfile::tempdir().unwrap();
    let uri = std::env::args()
        .nth(2)
        .unwrap_or_else(|| format!("sqlite:///{}", dir.path().join("audit.db").display()));
    sextant_store::upgrade(&uri, "mlflow-artifacts:").unwrap();
    let store = sextant_store::open(&uri, "mlflow-artifacts:").unwrap();
    let a = store.audit();

    let start = Instant::now();
    for first in (0..n).step_by(BATCH) {
        let rows: Vec<_> = (first..(first + BATCH).min(n)).map(row).collect();
        a.append(&rows).unwrap();
    }
    let appended = start.elapsed().as_secs_f64();
    println!(
        "append: {n} rows in {appended:.2} s ({})",
        per_second(n, appended)
    );

    let start = Instant::now();
    let mut sealed = 0;
    loop {
        let s = a.seal(BATCH as u64).unwrap();
        if s == 0 {
            break;
        }
        sealed += s as usize;
    }
    let sealing = start.elapsed().as_secs_f64();
    println!(
        "seal: {sealed} rows in {sealing:.2} s ({})",
        per_second(sealed, sealing)
    );

    let start = Instant::now();
    let report = a.verify().unwrap();
    let verifying = start.elapsed().as_secs_f64();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.sealed as usize, n);
    println!(
        "verify: {} rows in {verifying:.2} s ({})",
        report.rows,
        per_second(report.rows as usize, verifying)
    );
}
