//! Conformance of the audit log: every test runs against SQLite and
//! PostgreSQL through `MetaStore::audit`. The tamper tests change rows with
//! SQL behind the store's back, as someone with access to the database
//! could, and `verify` must name the row.

#[macro_use]
mod support;

use std::sync::Arc;

use sextant_core::audit::{Break, GENESIS_HASH, NewAuditRow};
use sextant_store::{AuditStore, MetaStore};

use support::Fixture;

conformance!(
    rows_are_appended_unsealed_then_chained_in_order,
    tail_and_export_page_in_sequence_order,
    a_writer_appends_and_seals_in_one_transaction,
    an_edited_row_is_named,
    a_deleted_row_is_named_by_the_row_after_it,
    reordered_rows_are_named,
    an_inserted_row_is_named,
    a_removed_hash_is_named,
    a_gap_in_sequence_numbers_alone_is_not_a_break,
    pruning_keeps_a_checkpoint_the_chain_starts_from,
    concurrent_appenders_and_sealers_keep_one_chain,
);

fn row(i: i64) -> NewAuditRow {
    NewAuditRow {
        time_ms: 1_000 + i,
        actor: Some(format!("user{}", i % 3)),
        auth_method: Some("basic".into()),
        source: Some("10.0.0.7".into()),
        method: "POST".into(),
        route: "/api/2.0/mlflow/runs/create".into(),
        resource: Some(format!("experiment:{i}")),
        status: 200,
        request_id: Some(format!("req-{i}")),
        count: 1,
        // Every fifth row records an action, which its hash covers too.
        action: (i % 5 == 0).then(|| "token.create".to_string()),
    }
}

/// Appends `n` rows numbered from `first` and seals everything.
fn sealed_rows(a: &dyn AuditStore, first: i64, n: i64) {
    let rows: Vec<_> = (first..first + n).map(row).collect();
    a.append(&rows).unwrap();
    seal_all(a);
}

fn seal_all(a: &dyn AuditStore) {
    while a.seal(100).unwrap() > 0 {}
}

fn first_bad(f: &Fixture) -> (i64, Break) {
    let report = f.store.audit().verify().unwrap();
    report.first_bad.expect("verify found nothing wrong")
}

fn rows_are_appended_unsealed_then_chained_in_order(f: &Fixture) {
    let a = f.store.audit();
    let empty = a.verify().unwrap();
    assert!(empty.ok());
    assert_eq!((empty.rows, empty.sealed, empty.head), (0, 0, None));
    assert_eq!(a.seal(10).unwrap(), 0);

    a.append(&(1..=5).map(row).collect::<Vec<_>>()).unwrap();
    let report = a.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        (report.rows, report.sealed, report.unsealed_tail),
        (5, 0, 5)
    );

    assert_eq!(a.seal(2).unwrap(), 2);
    let report = a.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        (report.rows, report.sealed, report.unsealed_tail),
        (5, 2, 3)
    );
    assert_eq!(a.seal(100).unwrap(), 3);
    assert_eq!(a.seal(100).unwrap(), 0);

    let rows = a.tail(0, 100).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(rows[0].entry, row(1));
    assert_eq!(rows[0].prev_hash.as_deref(), Some(GENESIS_HASH));
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "row {}", pair[1].seq);
    }
    let last = rows.last().unwrap();
    assert_eq!(
        last.hash.as_deref(),
        Some(
            sextant_store::audit_row_hash(last.prev_hash.as_deref().unwrap(), 5, &last.entry)
                .as_str()
        )
    );
    let report = a.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        (report.rows, report.sealed, report.unsealed_tail),
        (5, 5, 0)
    );
    assert_eq!(report.head, Some((5, last.hash.clone().unwrap())));
    assert_eq!(a.head().unwrap(), report.head);

    // An anonymous, aggregated row: no actor, a count.
    a.append(&[NewAuditRow {
        time_ms: 60_000,
        source: Some("192.0.2.1".into()),
        method: "*".into(),
        route: "*".into(),
        status: 401,
        count: 100,
        ..NewAuditRow::default()
    }])
    .unwrap();
    seal_all(a);
    let agg = a.tail(5, 10).unwrap().remove(0);
    assert_eq!((agg.seq, agg.entry.actor, agg.entry.count), (6, None, 100));
    assert!(a.verify().unwrap().ok());
}

fn a_writer_appends_and_seals_in_one_transaction(f: &Fixture) {
    let a = f.store.audit();
    a.append(&[row(1)]).unwrap();
    // The tail before the rows is sealed first, then they.
    assert_eq!(a.append_sealed(&[row(2), row(3)], 100).unwrap(), 3);
    let report = a.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.rows, report.unsealed_tail), (3, 0));
    assert_eq!(
        a.append_sealed(&[row(4)], 0).unwrap(),
        0,
        "appended, left unsealed"
    );
    assert_eq!(a.verify().unwrap().unsealed_tail, 1);
    assert_eq!(a.tail(3, 10).unwrap()[0].entry, row(4));
}

fn tail_and_export_page_in_sequence_order(f: &Fixture) {
    let a = f.store.audit();
    sealed_rows(a, 1, 7);
    let page: Vec<i64> = a.tail(2, 3).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(page, vec![3, 4, 5]);
    assert!(a.tail(7, 10).unwrap().is_empty());
    // Rows answered at 1004 or later: seq 4 on.
    let since: Vec<i64> = a
        .export(1_004, 0, 2)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(since, vec![4, 5]);
    let next: Vec<i64> = a
        .export(1_004, 5, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(next, vec![6, 7]);
}

fn an_edited_row_is_named(f: &Fixture) {
    sealed_rows(f.store.audit(), 1, 6);
    f.raw_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3");
    assert_eq!(first_bad(f), (3, Break::Edited));
    let report = f.store.audit().verify().unwrap();
    assert_eq!(
        (report.rows, report.sealed),
        (6, 6),
        "counted past the break"
    );
    // An action is covered like any field: removing one, or giving a plain
    // request one, is an edit.
    let g = Fixture::sqlite();
    sealed_rows(g.store.audit(), 1, 6);
    assert!(g.store.audit().verify().unwrap().ok());
    g.raw_sql("UPDATE audit_log SET action = NULL WHERE seq = 5");
    assert_eq!(first_bad(&g), (5, Break::Edited));
    sealed_rows(f.store.audit(), 7, 1);
    f.raw_sql("UPDATE audit_log SET actor = 'user0' WHERE seq = 3");
    f.raw_sql("UPDATE audit_log SET action = 'login' WHERE seq = 4");
    assert_eq!(first_bad(f), (4, Break::Edited));
}

fn a_deleted_row_is_named_by_the_row_after_it(f: &Fixture) {
    sealed_rows(f.store.audit(), 1, 6);
    f.raw_sql("DELETE FROM audit_log WHERE seq = 3");
    assert_eq!(
        first_bad(f),
        (
            4,
            Break::Unlinked {
                after: Some(2),
                missing: 1
            }
        )
    );
    // The first row too: the chain's start is fixed.
    let g = Fixture::sqlite();
    sealed_rows(g.store.audit(), 1, 3);
    g.raw_sql("DELETE FROM audit_log WHERE seq = 1");
    assert_eq!(
        first_bad(&g),
        (
            2,
            Break::Unlinked {
                after: None,
                missing: 1
            }
        )
    );
}

fn reordered_rows_are_named(f: &Fixture) {
    sealed_rows(f.store.audit(), 1, 6);
    f.raw_sql(
        "UPDATE audit_log SET seq = -1 WHERE seq = 3; \
         UPDATE audit_log SET seq = 3 WHERE seq = 4; \
         UPDATE audit_log SET seq = 4 WHERE seq = -1",
    );
    assert_eq!(first_bad(f), (3, Break::Moved));
}

/// A forged row chained properly after row 2, in a gap of the numbering:
/// the row after the gap still links to row 2, which names the forgery.
fn an_inserted_row_is_named(f: &Fixture) {
    let a = f.store.audit();
    sealed_rows(a, 1, 2);
    skip_sequence_to(f, 10);
    sealed_rows(a, 11, 1);
    assert!(a.verify().unwrap().ok());
    let rows = a.tail(0, 10).unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 11]);
    let prev = rows[1].hash.clone().unwrap();
    let forged = row(99);
    let hash = sextant_store::audit_row_hash(&prev, 5, &forged);
    f.raw_sql(&format!(
        "INSERT INTO audit_log (seq, time_ms, actor, auth_method, source, method, route, \
         resource, status, request_id, count, prev_hash, hash) VALUES (5, {}, 'user0', 'basic', \
         '10.0.0.7', 'POST', '/api/2.0/mlflow/runs/create', 'experiment:99', 200, 'req-99', 1, \
         '{prev}', '{hash}')",
        forged.time_ms
    ));
    assert_eq!(first_bad(f), (5, Break::Inserted));
}

fn a_removed_hash_is_named(f: &Fixture) {
    sealed_rows(f.store.audit(), 1, 4);
    f.raw_sql("UPDATE audit_log SET hash = NULL, prev_hash = NULL WHERE seq = 2");
    assert_eq!(first_bad(f), (2, Break::HashRemoved { sealed_after: 3 }));
    // The sealer never reaches back behind the sealed run to hide it.
    assert_eq!(f.store.audit().seal(100).unwrap(), 0);
    assert_eq!(first_bad(f), (2, Break::HashRemoved { sealed_after: 3 }));
}

/// What a rolled-back append leaves: a number nobody holds.
fn a_gap_in_sequence_numbers_alone_is_not_a_break(f: &Fixture) {
    let a = f.store.audit();
    sealed_rows(a, 1, 3);
    skip_sequence_to(f, 20);
    sealed_rows(a, 4, 2);
    let report = a.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.head.map(|(s, _)| s), Some(22));
}

/// Moves the sequence on, as appends that rolled back would (rows must
/// exist already: SQLite keeps the counter once the table had a row).
fn skip_sequence_to(f: &Fixture, n: i64) {
    if f.is_sqlite() {
        f.raw_sql(&format!(
            "UPDATE sqlite_sequence SET seq = {n} WHERE name = 'audit_log'"
        ));
    } else {
        f.raw_sql(&format!("SELECT setval('audit_log_seq_seq', {n})"));
    }
}

fn pruning_keeps_a_checkpoint_the_chain_starts_from(f: &Fixture) {
    let a = f.store.audit();
    sealed_rows(a, 1, 6);
    let hash3 = a.tail(2, 1).unwrap()[0].hash.clone().unwrap();
    assert_eq!(a.prune(4).unwrap(), 3);
    let report = a.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.rows, report.sealed), (3, 3));
    let cp = report.checkpoint.unwrap();
    assert_eq!((cp.seq, cp.hash), (3, hash3));
    assert_eq!(a.tail(0, 10).unwrap()[0].seq, 4);

    // Unsealed rows stay, whatever the bound; the chain goes on from the checkpoint.
    a.append(&[row(7), row(8)]).unwrap();
    assert_eq!(a.prune(100).unwrap(), 3);
    assert_eq!(a.verify().unwrap().unsealed_tail, 2);
    seal_all(a);
    let report = a.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.rows, report.checkpoint.unwrap().seq), (2, 6));
    // Everything pruned: the head is the checkpoint's.
    assert_eq!(a.prune(100).unwrap(), 2);
    assert_eq!(a.head().unwrap().map(|(s, _)| s), Some(8));
    sealed_rows(a, 9, 1);
    assert!(a.verify().unwrap().ok());
    assert_eq!(a.tail(0, 10).unwrap()[0].seq, 9, "numbers are never reused");

    // A forged checkpoint no longer anchors the first row.
    f.raw_sql(&format!(
        "UPDATE audit_checkpoint SET hash = '{GENESIS_HASH}'"
    ));
    assert_eq!(
        first_bad(f),
        (
            9,
            Break::Unlinked {
                after: Some(8),
                missing: 0
            }
        )
    );
}

/// Several servers on one database: each appends and seals through its
/// own connections; the chain stays one line.
fn concurrent_appenders_and_sealers_keep_one_chain(f: &Fixture) {
    const THREADS: i64 = 4;
    const BATCHES: i64 = 25;
    const PER_BATCH: i64 = 4;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store: Arc<dyn MetaStore> = Arc::from(f.open_again());
            std::thread::spawn(move || {
                for b in 0..BATCHES {
                    let first = (t * BATCHES + b) * PER_BATCH;
                    let rows: Vec<_> = (first..first + PER_BATCH).map(row).collect();
                    // A server's writer appends and seals at once; a plain
                    // append (a change's own transaction) leaves it to a sealer.
                    if t % 2 == 0 {
                        store.audit().append_sealed(&rows, 3).unwrap();
                    } else {
                        store.audit().append(&rows).unwrap();
                        store.audit().seal(3).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    seal_all(f.store.audit());
    let report = f.store.audit().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    let n = (THREADS * BATCHES * PER_BATCH) as u64;
    assert_eq!(
        (report.rows, report.sealed, report.unsealed_tail),
        (n, n, 0)
    );
}

/// PostgreSQL numbers rows when they are inserted, not when they commit: a
/// seal must wait for an append still in flight, or it would chain the row
/// after it first and the late row could never join the chain.
#[test]
fn postgres_a_seal_waits_for_appends_in_flight() {
    let f = Fixture::postgres();
    let mut early = f.postgres_client();
    let mut tx = early.transaction().unwrap();
    tx.batch_execute(
        "INSERT INTO audit_log (time_ms, method, route, status, count) \
         VALUES (1, 'POST', '/early', 200, 1)",
    )
    .unwrap();
    f.store.audit().append(&[row(2)]).unwrap();
    let store: Arc<dyn MetaStore> = Arc::from(f.open_again());
    let sealer = std::thread::spawn(move || store.audit().seal(100).unwrap());
    let mut watch = f.postgres_client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting: i64 = watch
            .query_one(
                "SELECT COUNT(*) FROM pg_locks WHERE NOT granted \
                 AND relation = 'audit_log'::regclass",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sealer never waited for the append in flight"
        );
        std::thread::yield_now();
    }
    tx.commit().unwrap();
    assert_eq!(sealer.join().unwrap(), 2);
    let rows = f.store.audit().tail(0, 10).unwrap();
    assert_eq!(rows[0].entry.route, "/early");
    assert_eq!(rows[1].prev_hash, rows[0].hash);
    assert!(f.store.audit().verify().unwrap().ok());
}
