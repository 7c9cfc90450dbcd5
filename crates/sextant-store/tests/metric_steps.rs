//! A metric's steps as a progression (schema version 10): every write path
//! records in `latest_metrics` when a run's steps of a key are an
//! arithmetic progression, each step once, and get-history-bulk-interval
//! then reads only the rows it samples, by step. Its answers must be the
//! ones reading every row gives: each is compared with a twin run holding
//! the same history whose record was erased behind the store's back. Every
//! test runs on SQLite and PostgreSQL.

#[macro_use]
mod support;

use sextant_core::entities::{Metric, NewRun};
use sextant_store::MetaStore;

use support::Fixture;

conformance!(
    every_write_path_records_the_steps,
    sampling_by_rank_answers_as_reading_every_row,
    stored_rows_that_disagree_with_the_record_are_all_read,
    only_the_sampled_rows_are_read,
);

mod migration {
    #[test]
    fn sqlite_backfill() {
        super::migration_records_steps_and_rekeys_the_history(true);
    }
    #[test]
    fn postgres_backfill() {
        super::migration_records_steps_and_rekeys_the_history(false);
    }
}

fn run(s: &dyn MetaStore, name: &str) -> String {
    s.create_run(&NewRun {
        experiment_id: 0,
        run_name: Some(name.into()),
        start_time: Some(1),
        ..NewRun::default()
    })
    .unwrap()
    .info
    .run_id
}

/// The recorded (first, last, count) of a run's steps of `key`; `None`
/// when they are recorded as no progression.
fn recorded(f: &Fixture, run_id: &str, key: &str) -> Option<(i64, i64, i64)> {
    let rows = f.raw_ints(&format!(
        "SELECT l.steps_first, l.steps_last, l.steps_count FROM latest_metrics l \
         JOIN runs r ON r.rid = l.rid WHERE r.run_uuid = '{run_id}' AND l.key = '{key}'"
    ));
    assert_eq!(rows.len(), 1, "one latest_metrics row of {key}");
    match rows[0][..] {
        [first, last, Some(count)] => Some((first.unwrap(), last.unwrap(), count)),
        _ => None,
    }
}

/// Two runs holding the same `histories`, each logged in batches of 300 as
/// a client's batching sends them: the first read by rank, the second, its
/// record erased, row by row.
fn twins(f: &Fixture, histories: &[&[Metric]]) -> (String, String) {
    let s = f.store.as_ref();
    let (r, twin) = (run(s, "by rank"), run(s, "row by row"));
    for history in histories {
        for id in [&r, &twin] {
            for batch in history.chunks(300) {
                s.log_batch(id, batch, &[], &[]).unwrap();
            }
        }
    }
    forget(f, &twin);
    (r, twin)
}

/// Erases the record of a run's steps, as a store from before it would
/// have none: its histories are then read row by row.
fn forget(f: &Fixture, run_id: &str) {
    f.raw_sql(&format!(
        "UPDATE latest_metrics SET steps_count = NULL \
         WHERE rid = (SELECT rid FROM runs WHERE run_uuid = '{run_id}')"
    ));
}

fn log(s: &dyn MetaStore, run_id: &str, metrics: &[(&str, i64, i64)]) {
    let metrics: Vec<Metric> = metrics
        .iter()
        .map(|&(key, ts, step)| Metric::new(key, step as f64 / 7.0, ts, step))
        .collect();
    s.log_batch(run_id, &metrics, &[], &[]).unwrap();
}

fn every_write_path_records_the_steps(f: &Fixture) {
    let s = f.store.as_ref();
    let r = run(s, "r");
    // One at a time, then a batch continuing them in any order.
    for step in 0..3 {
        log(s, &r, &[("dense", 100 + step, step)]);
    }
    assert_eq!(recorded(f, &r, "dense"), Some((0, 2, 3)));
    log(
        s,
        &r,
        &[("dense", 200, 5), ("dense", 200, 3), ("dense", 200, 4)],
    );
    assert_eq!(recorded(f, &r, "dense"), Some((0, 5, 6)));

    // A stride, negative steps, a second step setting the stride.
    log(
        s,
        &r,
        &[("strided", 1, -20), ("strided", 2, -10), ("strided", 3, 0)],
    );
    log(s, &r, &[("strided", 4, 10)]);
    assert_eq!(recorded(f, &r, "strided"), Some((-20, 10, 4)));
    log(s, &r, &[("second", 1, 4)]);
    assert_eq!(recorded(f, &r, "second"), Some((4, 4, 1)));
    log(s, &r, &[("second", 1, 10)]);
    log(s, &r, &[("second", 1, 16)]);
    assert_eq!(recorded(f, &r, "second"), Some((4, 16, 3)));

    // What breaks a progression, for good: batches of (time, step).
    type Batches = &'static [&'static [(i64, i64)]];
    let breaks: [(&str, Batches); 7] = [
        ("other_stride", &[&[(1, 0), (2, 10)], &[(3, 25)]]),
        ("same_step_again", &[&[(1, 5)], &[(2, 5)]]),
        ("backwards", &[&[(1, 7)], &[(2, 3)]]),
        ("twice_in_a_batch", &[&[(1, 0), (2, 0)]]),
        ("gap_in_a_batch", &[&[(1, 0), (1, 1), (1, 3)]]),
        ("beyond_2_52", &[&[(1, 0), (2, 1 << 60)]]),
        ("logged_again", &[&[(1, 0)], &[(1, 0)]]),
    ];
    for (key, batches) in breaks {
        for batch in batches {
            let rows: Vec<(&str, i64, i64)> = batch.iter().map(|&(t, s)| (key, t, s)).collect();
            log(s, &r, &rows);
        }
        assert_eq!(recorded(f, &r, key), None, "{key}");
    }
    // ... and stays broken when the steps go on as before.
    log(s, &r, &[("other_stride", 4, 35)]);
    assert_eq!(recorded(f, &r, "other_stride"), None);

    // Concurrent writers, each on its own key, grouped into shared commits.
    let other = f.open_again();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, r) = (if t % 2 == 0 { s } else { other.as_ref() }, &r);
            scope.spawn(move || {
                let key = format!("worker{t}");
                for step in 0..25 {
                    log(s, r, &[(key.as_str(), step, step)]);
                }
            });
        }
    });
    for t in 0..4 {
        assert_eq!(recorded(f, &r, &format!("worker{t}")), Some((0, 24, 25)));
    }

    // An import records the steps of the history it brings.
    let mut history: Vec<Metric> = (0..5)
        .map(|step| Metric::new("loss", 1.0, 10 - step, step * 2))
        .collect();
    history.extend([0, 3, 4].map(|step| Metric::new("gappy", 1.0, 1, step)));
    let imported = f.import_run(vec![history[4].clone(), history[7].clone()], history);
    assert_eq!(recorded(f, &imported, "loss"), Some((0, 8, 5)));
    assert_eq!(recorded(f, &imported, "gappy"), None);
    // A write continues an imported progression.
    log(s, &imported, &[("loss", 20, 10)]);
    assert_eq!(recorded(f, &imported, "loss"), Some((0, 10, 6)));
}

/// A run's answer as (step, timestamp, value bits), run ids left out.
fn sampled(
    s: &dyn MetaStore,
    run_id: &str,
    key: &str,
    range: Option<(i64, i64)>,
    max: u64,
) -> Vec<(i64, i64, u64)> {
    s.metric_history_bulk_interval(&[run_id.to_string()], key, range, max)
        .unwrap()
        .iter()
        .map(|m| (m.step, m.timestamp, m.value.to_bits()))
        .collect()
}

/// The ranges and sizes every comparison asks.
const RANGES: [Option<(i64, i64)>; 9] = [
    None,
    Some((0, 0)),
    Some((-10, 10)),
    Some((1, 998)),
    Some((5, 4)),
    Some((2_000, 3_000)),
    Some((i64::MIN, -49)),
    Some((-49, -48)),
    Some((-1_000, i64::MAX)),
];
const SIZES: [u64; 10] = [0, 1, 2, 3, 7, 100, 999, 1_000, 1_001, 2_500];

/// Same answers from a run read by rank and its twin read row by row, for
/// each of `ranges` and `sizes`.
fn assert_twins(
    f: &Fixture,
    (run_id, twin): (&str, &str),
    key: &str,
    ranges: &[Option<(i64, i64)>],
    sizes: &[u64],
) {
    let s = f.store.as_ref();
    for &range in ranges {
        for &max in sizes {
            assert_eq!(
                sampled(s, run_id, key, range, max),
                sampled(s, twin, key, range, max),
                "{key}, steps {range:?}, max {max}"
            );
        }
    }
}

fn sampling_by_rank_answers_as_reading_every_row(f: &Fixture) {
    let s = f.store.as_ref();
    // Dense steps with time running backwards and a NaN; a stride from a
    // negative step; one row; two rows.
    let histories: [(&str, Vec<Metric>); 4] = [
        (
            "dense",
            (0..1_000)
                .map(|step| {
                    let value = if step == 500 {
                        f64::NAN
                    } else {
                        (step % 13) as f64
                    };
                    Metric::new("dense", value, 5_000 - step, step)
                })
                .collect(),
        ),
        (
            "strided",
            (0..400)
                .map(|i| Metric::new("strided", i as f64, 1_000 + i, -50 + 3 * i))
                .collect(),
        ),
        ("one", vec![Metric::new("one", 0.5, 1, 0)]),
        (
            "two",
            vec![
                Metric::new("two", 0.5, 1, -1),
                Metric::new("two", 0.25, 2, 999),
            ],
        ),
    ];
    let logged: Vec<&[Metric]> = histories.iter().map(|(_, h)| h.as_slice()).collect();
    let (r, twin) = twins(f, &logged);
    for (key, _) in &histories {
        assert!(recorded(f, &r, key).is_some(), "{key} is a progression");
        assert_twins(f, (&r, &twin), key, &RANGES, &SIZES);
    }
    // The dense history, all of it: every row, in step order.
    let all = sampled(s, &r, "dense", None, 2_500);
    assert_eq!(all.len(), 1_000);
    assert!(all.windows(2).all(|w| w[0].0 + 1 == w[1].0));
    // Several runs in one request: each run's sample, in the order asked.
    let both = s
        .metric_history_bulk_interval(&[twin.clone(), r.clone()], "strided", None, 10)
        .unwrap();
    assert_eq!(both.len(), 20);
    assert!(
        both[..10]
            .iter()
            .all(|m| m.run_id.as_deref() == Some(twin.as_str()))
    );
    assert!(
        both[10..]
            .iter()
            .all(|m| m.run_id.as_deref() == Some(r.as_str()))
    );
}

/// Steps 0 to 999 of metric `m`, one row each.
fn dense_m() -> Vec<Metric> {
    (0..1_000)
        .map(|step| Metric::new("m", step as f64, step, step))
        .collect()
}

fn stored_rows_that_disagree_with_the_record_are_all_read(f: &Fixture) {
    let (r, twin) = twins(f, &[&dense_m()]);
    let rid = |id: &str| format!("(SELECT rid FROM runs WHERE run_uuid = '{id}')");
    // The rows sampled are checked against the record: a second row at a
    // sampled step, written behind the store's back, is seen when every
    // step is sampled (a row at a step not sampled is not: the store keeps
    // the record as it writes).
    for id in [&r, &twin] {
        f.raw_sql(&format!(
            "INSERT INTO metrics (rid, key, timestamp, step, value, is_nan) \
             VALUES ({}, 'm', 5000, 500, 0.5, 0)",
            rid(id)
        ));
    }
    assert!(recorded(f, &r, "m").is_some());
    assert_twins(f, (&r, &twin), "m", &RANGES, &[1_000, 1_001, 2_500]);
    // The last step, sampled at every size when in the range, gone.
    for id in [&r, &twin] {
        f.raw_sql(&format!(
            "DELETE FROM metrics WHERE rid = {} AND key = 'm' AND step = 999",
            rid(id)
        ));
    }
    assert_twins(
        f,
        (&r, &twin),
        "m",
        &[None, Some((-1_000, i64::MAX))],
        &SIZES,
    );
}

fn only_the_sampled_rows_are_read(f: &Fixture) {
    let s = f.store.as_ref();
    let (r, twin) = twins(f, &[&dense_m()]);
    // A row between the sampled ones removed behind the store's back: the
    // run read by rank does not see it, as it reads the 7 rows it samples
    // and nothing else; its twin, read row by row, samples 999 rows.
    f.raw_sql("DELETE FROM metrics WHERE key = 'm' AND step = 500");
    let steps = |id: &str| -> Vec<i64> {
        sampled(s, id, "m", None, 7)
            .iter()
            .map(|row| row.0)
            .collect()
    };
    assert_eq!(steps(&r), [0, 143, 286, 429, 572, 715, 999]);
    assert_eq!(steps(&twin), [0, 143, 286, 429, 573, 716, 999]);
}

fn migration_records_steps_and_rekeys_the_history(sqlite: bool) {
    let mut f = Fixture::at(sqlite, 9);
    let mut metrics = Vec::new();
    let mut latest = Vec::new();
    let shapes: [(&str, &[i64]); 7] = [
        ("dense", &[0, 1, 2, 3, 4]),
        ("strided", &[30, 10, 20]),
        ("negative", &[-4, -2, 0, 2]),
        ("one", &[7]),
        ("gappy", &[0, 1, 3]),
        ("uneven", &[0, 2, 4, 12]),
        ("huge", &[0, 1 << 60]),
    ];
    for (key, steps) in shapes {
        for (i, step) in steps.iter().enumerate() {
            // Time runs against the steps: the old key's order is not the new one's.
            metrics.push(format!("(1, '{key}', {}, {step}, {i}, 0)", 100 - i as i64));
        }
        let last = steps.iter().max().unwrap();
        latest.push(format!(
            "(1, 0, '{key}', 1, {last}, 1, 0, 0, {})",
            steps.len() - 1
        ));
    }
    // The same step twice, at two times.
    metrics.push("(1, 'twice', 1, 0, 1, 0), (1, 'twice', 2, 0, 2, 0)".into());
    latest.push("(1, 0, 'twice', 2, 0, 2, 0, 1, 2)".into());
    f.raw_sql(&format!(
        "INSERT INTO runs (rid, run_uuid, experiment_id, name, user_id, status, start_time, \
         artifact_uri, lifecycle_stage) VALUES \
         (1, 'r1', 0, 'one', 'ada', 'FINISHED', 10, 'a', 'active'); \
         INSERT INTO metrics (rid, key, timestamp, step, value, is_nan) VALUES {}; \
         INSERT INTO latest_metrics (rid, experiment_id, key, timestamp, step, value, is_nan, \
         min_value, max_value) VALUES {}",
        metrics.join(", "),
        latest.join(", ")
    ));
    assert_eq!(f.upgrade_and_open(), vec![10]);
    for (key, want) in [
        ("dense", Some((0, 4, 5))),
        ("strided", Some((10, 30, 3))),
        ("negative", Some((-4, 2, 4))),
        ("one", Some((7, 7, 1))),
        ("gappy", None),
        ("uneven", None),
        ("huge", None),
        ("twice", None),
    ] {
        assert_eq!(recorded(&f, "r1", key), want, "{key}");
    }
    let s = f.store.as_ref();
    // The history is still read in time order, and sampled in step order.
    let history = s.metric_history("r1", "dense", 100, 0).unwrap().items;
    let steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    assert_eq!(steps, [4, 3, 2, 1, 0]);
    let sampled: Vec<i64> = s
        .metric_history_bulk_interval(&["r1".into()], "strided", None, 10)
        .unwrap()
        .iter()
        .map(|m| m.step)
        .collect();
    assert_eq!(sampled, [10, 20, 30]);
    // New rows continue the progression the migration recorded.
    s.log_batch("r1", &[Metric::new("strided", 1.0, 200, 40)], &[], &[])
        .unwrap();
    assert_eq!(recorded(&f, "r1", "strided"), Some((10, 40, 4)));
}
