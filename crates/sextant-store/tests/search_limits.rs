//! Searches at the filter-size limit, on SQLite and on a fresh PostgreSQL
//! database: a filter of the most clauses allowed answers correctly (on
//! PostgreSQL through the per-row plan of many-clause filters), and one more
//! clause is refused before it reaches the store.

mod support;

use sextant_core::entities::{Metric, NewRun, Tag};
use sextant_core::search::{MAX_FILTER_CLAUSES, SearchKind, parse_filter, parse_order_by};
use sextant_core::{Error, search::Filter};
use sextant_store::{ExperimentSearch, MetaStore, RunSearch};

use support::Fixture;

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Fixture::sqlite()); })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(&super::Fixture::postgres()); })*
        }
    };
}

both!(
    a_run_search_at_the_clause_limit_answers_and_one_more_is_refused,
    an_experiment_search_at_the_clause_limit_answers,
);

fn filter(kind: SearchKind, clauses: &[String]) -> Result<Filter, Error> {
    parse_filter(kind, &clauses.join(" AND "))
}

/// Runs `r0`…`r5`, each with metrics `m0`…`m{N-1}` and params `p0`…: all
/// positive, except that r2 lacks `m57`, r3 has `m99 = -1`, r4 has a NaN
/// `m10` and r5 has param `p49 = 'other'`.
fn seed(s: &dyn MetaStore) -> i64 {
    let exp = s.create_experiment("limits", None, &[]).unwrap();
    for i in 0..6 {
        let run = s
            .create_run(&NewRun {
                experiment_id: exp,
                run_name: Some(format!("r{i}")),
                start_time: Some(i),
                ..NewRun::default()
            })
            .unwrap();
        let metrics: Vec<Metric> = (0..MAX_FILTER_CLAUSES)
            .filter(|&k| !(i == 2 && k == 57))
            .map(|k| {
                let v = match (i, k) {
                    (3, 99) => -1.0,
                    (4, 10) => f64::NAN,
                    _ => (k + 1) as f64,
                };
                Metric::new(format!("m{k}"), v, 0, 0)
            })
            .collect();
        let params: Vec<Tag> = (0..MAX_FILTER_CLAUSES / 2)
            .map(|k| {
                let v = if i == 5 && k == 49 { "other" } else { "x" };
                Tag::new(format!("p{k}"), v)
            })
            .collect();
        s.log_batch(&run.info.run_id, &metrics, &params, &[])
            .unwrap();
    }
    exp
}

fn names(s: &dyn MetaStore, exp: i64, filter: Filter, order_by: &[&str]) -> Vec<String> {
    let order_by = order_by
        .iter()
        .map(|o| parse_order_by(SearchKind::Runs, o).unwrap())
        .collect();
    s.search_runs(&RunSearch {
        experiment_ids: vec![exp],
        filter,
        order_by,
        max_results: 100,
        ..RunSearch::default()
    })
    .unwrap()
    .items
    .into_iter()
    .map(|r| r.info.run_name)
    .collect()
}

fn a_run_search_at_the_clause_limit_answers_and_one_more_is_refused(f: &Fixture) {
    let s = f.store.as_ref();
    let exp = seed(s);
    let metrics: Vec<String> = (0..MAX_FILTER_CLAUSES)
        .map(|k| format!("metrics.m{k} > 0"))
        .collect();
    let at_limit = filter(SearchKind::Runs, &metrics).unwrap();
    assert_eq!(at_limit.clauses.len(), MAX_FILTER_CLAUSES);
    // Newest first (start_time DESC); r2, r3, r4 each fail one clause.
    assert_eq!(names(s, exp, at_limit.clone(), &[]), ["r5", "r1", "r0"]);
    // The metric-ordered plan takes the same filter (equal m3: newest first).
    assert_eq!(
        names(s, exp, at_limit, &["metrics.m3 ASC"]),
        ["r5", "r1", "r0"]
    );
    // Half metrics, half params, `!=` included (NaN differs from 0.5).
    let mut mixed: Vec<String> = (0..MAX_FILTER_CLAUSES / 2)
        .map(|k| format!("params.p{k} = 'x'"))
        .collect();
    mixed.extend((0..MAX_FILTER_CLAUSES / 2 - 1).map(|k| format!("metrics.m{k} != 0.5")));
    mixed.push("metrics.m99 >= 1".into());
    let mixed = filter(SearchKind::Runs, &mixed).unwrap();
    assert_eq!(mixed.clauses.len(), MAX_FILTER_CLAUSES);
    assert_eq!(names(s, exp, mixed, &[]), ["r4", "r2", "r1", "r0"]);

    let mut over = metrics.clone();
    over.push("metrics.m0 > 0".into());
    match filter(SearchKind::Runs, &over) {
        Err(Error::InvalidParameter(m)) => assert!(m.contains("clauses"), "{m}"),
        other => panic!("expected the clause limit, got {other:?}"),
    }
}

fn an_experiment_search_at_the_clause_limit_answers(f: &Fixture) {
    let s = f.store.as_ref();
    let tags: Vec<Tag> = (0..MAX_FILTER_CLAUSES)
        .map(|k| Tag::new(format!("t{k}"), "x"))
        .collect();
    s.create_experiment("all-tags", None, &tags).unwrap();
    s.create_experiment("some-tags", None, &tags[..MAX_FILTER_CLAUSES - 1])
        .unwrap();
    let clauses: Vec<String> = (0..MAX_FILTER_CLAUSES)
        .map(|k| format!("tags.t{k} = 'x'"))
        .collect();
    let found = s
        .search_experiments(&ExperimentSearch {
            filter: filter(SearchKind::Experiments, &clauses).unwrap(),
            max_results: 10,
            ..ExperimentSearch::default()
        })
        .unwrap();
    let found: Vec<String> = found.items.into_iter().map(|e| e.name).collect();
    assert_eq!(found, ["all-tags"]);
}

/// A store filling up fast gets its tables analyzed without waiting for
/// autovacuum (at best once a minute), whose absence made the planner treat
/// every filter as matching one row: a 3 ms search took 160–260 ms.
#[test]
fn postgres_statistics_keep_up_with_a_fast_growing_store() {
    let f = Fixture::postgres();
    let mut c = f.postgres_client();
    let analyzed = |c: &mut ::postgres::Client| -> i64 {
        c.query_one(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'runs'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(analyzed(&mut c), 0);
    for _ in 0..500 {
        f.store
            .create_run(&NewRun {
                experiment_id: 0,
                user_id: "ada".into(),
                ..NewRun::default()
            })
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while analyzed(&mut c) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the runs table was never analyzed"
        );
        // Statistics counters are published asynchronously.
        std::thread::sleep(std::time::Duration::from_millis(50));
        c.batch_execute("SELECT pg_stat_clear_snapshot()").unwrap();
    }
    let reltuples: f32 = c
        .query_one("SELECT reltuples FROM pg_class WHERE relname = 'runs'", &[])
        .unwrap()
        .get(0);
    assert!(reltuples >= 500.0, "{reltuples}");
}
