//! Each run's smallest and largest value of each metric (schema version 9):
//! kept by every write path (batches, group commit, imports), filled by the
//! migration from the history, and searched with `min(metrics.…)` /
//! `max(metrics.…)`. Every test runs on SQLite and PostgreSQL.

#[macro_use]
mod support;

use sextant_core::Error;
use sextant_core::entities::{Metric, MetricSummary, NewRun, ViewType};
use sextant_core::search::{SearchKind, parse_filter, parse_order_by};
use sextant_store::{MetaStore, RunSearch, StoreError};

use support::Fixture;

conformance!(
    ranges_follow_batches_out_of_order_repeats_nan_and_infinities,
    group_commit_keeps_ranges,
    search_orders_and_filters_by_min_and_max,
    imports_compute_ranges_from_the_history,
    unknown_runs_are_not_found,
);

mod migration {
    #[test]
    fn sqlite_backfill() {
        super::migration_backfills_ranges(true);
    }
    #[test]
    fn postgres_backfill() {
        super::migration_backfills_ranges(false);
    }
}

fn run(s: &dyn MetaStore, exp: i64, name: &str, start: i64) -> String {
    s.create_run(&NewRun {
        experiment_id: exp,
        run_name: Some(name.into()),
        start_time: Some(start),
        ..NewRun::default()
    })
    .unwrap()
    .info
    .run_id
}

/// (last, min, max) of one key of one run; NaN compared as NaN.
fn range(s: &dyn MetaStore, run_id: &str, key: &str) -> (f64, f64, f64) {
    let got = s
        .metric_summaries(&[run_id.to_string()], &[key.to_string()])
        .unwrap();
    assert_eq!(got.len(), 1, "{key} of {run_id}: {got:?}");
    (got[0].last, got[0].min, got[0].max)
}

#[track_caller]
fn assert_same(got: (f64, f64, f64), want: (f64, f64, f64)) {
    let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
    assert!(
        same(got.0, want.0) && same(got.1, want.1) && same(got.2, want.2),
        "(last, min, max) {got:?}, expected {want:?}"
    );
}

fn ranges_follow_batches_out_of_order_repeats_nan_and_infinities(f: &Fixture) {
    let s = f.store.as_ref();
    let id = run(s, 0, "r", 1);
    // A batch too large for group commit, steps out of order.
    let mut batch: Vec<Metric> = (0..20)
        .map(|i| Metric::new("loss", 1.0 + f64::from(i % 7), 100, i64::from(i)))
        .collect();
    batch.push(Metric::new("loss", 0.25, 50, 3));
    batch.push(Metric::new("loss", f64::NAN, 60, 30));
    s.log_batch(&id, &batch, &[], &[]).unwrap();
    assert_same(range(s, &id, "loss"), (f64::NAN, 0.25, 7.0));
    // A single value inside the range (group commit) changes only the latest.
    s.log_batch(&id, &[Metric::new("loss", 2.0, 70, 31)], &[], &[])
        .unwrap();
    assert_same(range(s, &id, "loss"), (2.0, 0.25, 7.0));
    // An earlier step widens the range without becoming the latest.
    s.log_batch(&id, &[Metric::new("loss", -3.0, 10, 0)], &[], &[])
        .unwrap();
    s.log_batch(&id, &[Metric::new("loss", 9.0, 10, 1)], &[], &[])
        .unwrap();
    assert_same(range(s, &id, "loss"), (2.0, -3.0, 9.0));
    // A repeated step with another value, and an exact repeat of a stored
    // metric in a large batch (written again skipping repeats).
    s.log_batch(&id, &[Metric::new("loss", -4.0, 70, 31)], &[], &[])
        .unwrap();
    let mut again = batch.clone();
    again.push(Metric::new("loss", 11.0, 5, 2));
    s.log_batch(&id, &again, &[], &[]).unwrap();
    assert_same(range(s, &id, "loss"), (2.0, -4.0, 11.0));

    // Every value NaN: the range is NaN, and a number ends that.
    s.log_batch(&id, &[Metric::new("n", f64::NAN, 1, 0)], &[], &[])
        .unwrap();
    assert_same(range(s, &id, "n"), (f64::NAN, f64::NAN, f64::NAN));
    s.log_batch(&id, &[Metric::new("n", f64::NAN, 2, 1)], &[], &[])
        .unwrap();
    assert_same(range(s, &id, "n"), (f64::NAN, f64::NAN, f64::NAN));
    s.log_batch(&id, &[Metric::new("n", 5.0, 3, 0)], &[], &[])
        .unwrap();
    assert_same(range(s, &id, "n"), (f64::NAN, 5.0, 5.0));

    // Infinities are values like any other.
    s.log_batch(
        &id,
        &[
            Metric::new("inf", 1.0, 1, 0),
            Metric::new("inf", f64::INFINITY, 1, 1),
        ],
        &[],
        &[],
    )
    .unwrap();
    assert_same(range(s, &id, "inf"), (f64::INFINITY, 1.0, f64::INFINITY));
    s.log_batch(
        &id,
        &[Metric::new("inf", f64::NEG_INFINITY, 1, 2)],
        &[],
        &[],
    )
    .unwrap();
    assert_same(
        range(s, &id, "inf"),
        (f64::NEG_INFINITY, f64::NEG_INFINITY, f64::INFINITY),
    );

    // Every key at once, by key; a key the run lacks is left out.
    let all = s.metric_summaries(std::slice::from_ref(&id), &[]).unwrap();
    let keys: Vec<&str> = all.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["inf", "loss", "n"]);
    assert_eq!((all[1].step, all[1].timestamp), (31, 70));
    assert!(
        s.metric_summaries(std::slice::from_ref(&id), &["absent".into()])
            .unwrap()
            .is_empty()
    );
    // The latest value MLflow's API shows is unchanged by all this.
    let shown = s.get_run(&id).unwrap().data.metrics;
    let loss = shown.iter().find(|m| m.key == "loss").unwrap();
    assert_eq!((loss.value, loss.step, loss.timestamp), (2.0, 31, 70));
}

/// Single-value calls from many threads go through group commit, which
/// writes the batches of several calls (here: of one run and key) with one
/// statement per table.
fn group_commit_keeps_ranges(f: &Fixture) {
    let s = f.store.as_ref();
    let id = run(s, 0, "g", 1);
    let other = f.open_again();
    std::thread::scope(|scope| {
        for t in 0..4_i64 {
            let (s, id) = (if t % 2 == 0 { s } else { other.as_ref() }, &id);
            scope.spawn(move || {
                for i in 0..25_i64 {
                    let step = t * 25 + i;
                    let value = ((step * 37) % 101) as f64 - 50.0;
                    s.log_batch(id, &[Metric::new("m", value, step, step)], &[], &[])
                        .unwrap();
                }
            });
        }
    });
    let values: Vec<f64> = (0..100_i64)
        .map(|step| ((step * 37) % 101) as f64 - 50.0)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_same(range(s, &id, "m"), (values[99], lo, hi));
}

fn names(
    s: &dyn MetaStore,
    experiments: &[i64],
    order: &[&str],
    filter: &str,
    page: u64,
) -> Vec<String> {
    let q = RunSearch {
        experiment_ids: experiments.to_vec(),
        filter: parse_filter(SearchKind::Runs, filter).unwrap(),
        order_by: order
            .iter()
            .map(|o| parse_order_by(SearchKind::Runs, o).unwrap())
            .collect(),
        view: ViewType::ActiveOnly,
        max_results: page,
        offset: 0,
    };
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let got = s
            .search_runs(&RunSearch {
                offset,
                ..q.clone()
            })
            .unwrap();
        seen.extend(got.items.into_iter().map(|r| r.info.run_name));
        match got.next_offset {
            Some(o) => offset = o,
            None => return seen,
        }
    }
}

fn search_orders_and_filters_by_min_and_max(f: &Fixture) {
    let s = f.store.as_ref();
    let exp = s.create_experiment("ranges", None, &[]).unwrap();
    let empty = s.create_experiment("ranges-empty", None, &[]).unwrap();
    // name → history of `m` (none: the run lacks it). The latest value
    // orders these runs differently from their min and their max.
    let runs: [(&str, &[f64]); 6] = [
        ("a", &[5.0, 1.0, 3.0]),
        ("b", &[0.0, 9.0, 2.0]),
        ("c", &[4.0, 4.0]),
        ("d", &[f64::NAN, f64::NAN]),
        ("e", &[]),
        ("f", &[-1.0, f64::NAN, 6.0, 0.5]),
    ];
    for (i, (name, history)) in runs.iter().enumerate() {
        let id = run(s, exp, name, 100 - i as i64);
        let metrics: Vec<Metric> = history
            .iter()
            .enumerate()
            .map(|(step, &v)| Metric::new("m", v, 10, step as i64))
            .collect();
        if !metrics.is_empty() {
            s.log_batch(&id, &metrics, &[], &[]).unwrap();
        }
    }
    // min: a 1, b 0, c 4, d NaN, e missing, f -1; max: a 5, b 9, c 4, f 6.
    // NaN after numbers, runs without the metric last, ties by start time.
    let cases: [(&[&str], &str, &[&str]); 9] = [
        (&["min(metrics.m) ASC"], "", &["f", "b", "a", "c", "d", "e"]),
        (
            &["min(metrics.m) DESC"],
            "",
            &["c", "a", "b", "f", "d", "e"],
        ),
        (&["MAX(metrics.`m`)"], "", &["c", "a", "f", "b", "d", "e"]),
        (
            &["max(metrics.m) DESC"],
            "",
            &["b", "f", "a", "c", "d", "e"],
        ),
        (&["metrics.m ASC"], "", &["f", "b", "a", "c", "d", "e"]),
        (
            &["min(metrics.m) ASC"],
            "max(metrics.m) > 4.5",
            &["f", "b", "a"],
        ),
        (
            &["max(metrics.m) ASC"],
            "min(metrics.m) <= 1",
            &["a", "f", "b"],
        ),
        (
            &["attributes.run_name ASC"],
            "min(metrics.m) != 4",
            &["a", "b", "d", "f"],
        ),
        (
            &["attributes.run_name ASC"],
            "max(metrics.m) = 4 and metrics.m = 4",
            &["c"],
        ),
    ];
    for (order, filter, want) in cases {
        for page in [1, 2, 4, 100] {
            assert_eq!(
                names(s, &[exp], order, filter, page),
                want,
                "{order:?} where {filter:?}, pages of {page} (index plan)"
            );
            assert_eq!(
                names(s, &[exp, empty], order, filter, page),
                want,
                "{order:?} where {filter:?}, pages of {page} (general plan)"
            );
        }
    }
}

fn imports_compute_ranges_from_the_history(f: &Fixture) {
    let history = vec![
        Metric::new("loss", 0.9, 1, 0),
        Metric::new("loss", 0.1, 2, 1),
        Metric::new("loss", f64::NAN, 3, 2),
        Metric::new("loss", 0.4, 4, 3),
        Metric::new("nan", f64::NAN, 1, 0),
    ];
    let run_id = f.import_run(vec![history[3].clone(), history[4].clone()], history);
    let s = f.store.as_ref();
    assert_same(range(s, &run_id, "loss"), (0.4, 0.1, 0.9));
    assert_same(range(s, &run_id, "nan"), (f64::NAN, f64::NAN, f64::NAN));
    // And a write after the import widens the imported range.
    s.log_batch(&run_id, &[Metric::new("loss", 2.0, 5, 1)], &[], &[])
        .unwrap();
    assert_same(range(s, &run_id, "loss"), (0.4, 0.1, 2.0));
}

fn unknown_runs_are_not_found(f: &Fixture) {
    let s = f.store.as_ref();
    let id = run(s, 0, "r", 1);
    let err = s.metric_summaries(&[id, "nope".into()], &[]).unwrap_err();
    assert!(
        matches!(&err, StoreError::Domain(Error::NotFound(m)) if m.contains("nope")),
        "{err:?}"
    );
    assert!(s.metric_summaries(&[], &[]).unwrap().is_empty());
}

/// A store at version 8 with metric history, upgraded: each (run, key) has
/// the range of its history (NaN skipped, NULL → NaN when every value is NaN).
fn migration_backfills_ranges(sqlite: bool) {
    let mut f = Fixture::at(sqlite, 8);
    let (inf, neg_inf) = if sqlite {
        ("9e999", "-9e999")
    } else {
        ("'Infinity'", "'-Infinity'")
    };
    f.raw_sql(&format!(
        "INSERT INTO runs (rid, run_uuid, experiment_id, name, user_id, status, start_time, \
         artifact_uri, lifecycle_stage) VALUES \
         (1, 'r1', 0, 'one', 'ada', 'FINISHED', 10, 'a', 'active'), \
         (2, 'r2', 0, 'two', 'ada', 'FINISHED', 20, 'a', 'active'); \
         INSERT INTO metrics (rid, key, timestamp, step, value, is_nan) VALUES \
         (1, 'loss', 1, 0, 0.9, 0), (1, 'loss', 2, 1, 0.2, 0), (1, 'loss', 3, 2, 0, 1), \
         (1, 'loss', 4, 3, 0.5, 0), (1, 'inf', 1, 0, {inf}, 0), (1, 'inf', 1, 1, {neg_inf}, 0), \
         (2, 'loss', 1, 0, 0.1, 0), (2, 'nan', 1, 0, 0, 1); \
         INSERT INTO latest_metrics (rid, experiment_id, key, timestamp, step, value, is_nan) VALUES \
         (1, 0, 'loss', 4, 3, 0.5, 0), (1, 0, 'inf', 1, 1, {neg_inf}, 0), \
         (2, 0, 'loss', 1, 0, 0.1, 0), (2, 0, 'nan', 1, 0, 0, 1)"
    ));
    assert_eq!(f.upgrade_and_open(), vec![9, 10]);
    let s = f.store.as_ref();
    assert_same(range(s, "r1", "loss"), (0.5, 0.2, 0.9));
    assert_same(
        range(s, "r1", "inf"),
        (f64::NEG_INFINITY, f64::NEG_INFINITY, f64::INFINITY),
    );
    assert_same(range(s, "r2", "loss"), (0.1, 0.1, 0.1));
    assert_same(range(s, "r2", "nan"), (f64::NAN, f64::NAN, f64::NAN));
    let all: Vec<MetricSummary> = s
        .metric_summaries(&["r1".into(), "r2".into()], &["loss".into()])
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        names(s, &[0], &["max(metrics.loss) DESC"], "", 10),
        ["one", "two"]
    );
    assert_eq!(
        names(s, &[0], &["min(metrics.loss) DESC"], "", 10),
        ["one", "two"]
    );
    assert_eq!(
        names(s, &[0], &["min(metrics.loss) ASC"], "", 10),
        ["two", "one"]
    );
}
