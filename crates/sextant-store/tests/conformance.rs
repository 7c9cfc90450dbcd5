//! The conformance suite: every test runs against SQLite and PostgreSQL
//! through the public `MetaStore` trait. PostgreSQL is the server at
//! `SEXTANT_TEST_POSTGRES_URL` (default `postgresql://postgres@127.0.0.1:5432/postgres`);
//! each test gets a fresh database there.

#[macro_use]
mod support;

use sextant_core::Error;
use sextant_core::entities::{
    Dataset, DatasetInput, DatasetSummary, LifecycleStage, LoggedModelStatus, Metric, ModelOutput,
    NewLoggedModel, NewRun, RunStatus, Tag, ViewType,
};
use sextant_core::search::{SearchKind, parse_filter, parse_order_by};
use sextant_store::{ExperimentSearch, LoggedModelSearch, MetaStore, RunSearch, StoreError};

use support::Fixture;

conformance!(
    default_experiment_exists,
    experiment_lifecycle,
    experiment_tags,
    experiment_search,
    run_lifecycle,
    run_names,
    log_batch_and_latest_metrics,
    concurrent_single_writes_from_two_stores_all_land,
    params_are_immutable,
    metric_history_pages,
    nan_and_infinity_round_trip,
    run_search_filters,
    run_search_order_and_pages,
    metric_order_pages_match_the_general_plan,
    inputs_and_outputs,
    a_page_of_runs_gets_each_run_its_own_children,
    dataset_summaries,
    logged_models,
    bulk_interval_samples,
    migrations_are_idempotent,
    experiment_keys_are_distinct_and_sorted,
);

fn domain(e: StoreError) -> Error {
    match e {
        StoreError::Domain(d) => d,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

fn new_run(store: &dyn MetaStore, exp: i64) -> String {
    let run = store
        .create_run(&NewRun {
            experiment_id: exp,
            user_id: "ada".into(),
            start_time: Some(1000),
            ..NewRun::default()
        })
        .unwrap();
    run.info.run_id
}

fn default_experiment_exists(f: &Fixture) {
    let e = f.store.get_experiment(0).unwrap();
    assert_eq!(e.name, "Default");
    assert_eq!(e.artifact_location, "mlflow-artifacts:/0");
    assert_eq!(
        f.store
            .get_experiment_by_name("Default")
            .unwrap()
            .experiment_id,
        0
    );
}

fn experiment_lifecycle(f: &Fixture) {
    let s = f.store.as_ref();
    let id = s
        .create_experiment("exp-a", None, &[Tag::new("team", "x")])
        .unwrap();
    assert_eq!(id, 1);
    let e = s.get_experiment(id).unwrap();
    assert_eq!(e.artifact_location, "mlflow-artifacts:/1");
    assert_eq!(e.tags, vec![Tag::new("team", "x")]);
    assert!(matches!(
        domain(s.create_experiment("exp-a", None, &[]).unwrap_err()),
        Error::AlreadyExists(_)
    ));
    assert!(matches!(
        domain(s.get_experiment(999).unwrap_err()),
        Error::NotFound(_)
    ));
    assert!(matches!(
        domain(s.get_experiment_by_name("nope").unwrap_err()),
        Error::NotFound(_)
    ));
    let custom = s
        .create_experiment("exp-b", Some("s3://bucket/x"), &[])
        .unwrap();
    assert_eq!(
        s.get_experiment(custom).unwrap().artifact_location,
        "s3://bucket/x"
    );

    s.rename_experiment(id, "exp-renamed").unwrap();
    assert_eq!(s.get_experiment(id).unwrap().name, "exp-renamed");
    assert!(matches!(
        domain(s.rename_experiment(id, "exp-b").unwrap_err()),
        Error::AlreadyExists(_)
    ));

    let run = new_run(s, id);
    s.delete_experiment(id).unwrap();
    assert_eq!(
        s.get_experiment(id).unwrap().lifecycle_stage,
        LifecycleStage::Deleted
    );
    assert_eq!(
        s.get_run(&run).unwrap().info.lifecycle_stage,
        LifecycleStage::Deleted
    );
    // A deleted experiment still owns its name and refuses writes.
    assert!(matches!(
        domain(s.create_experiment("exp-renamed", None, &[]).unwrap_err()),
        Error::AlreadyExists(_)
    ));
    assert!(matches!(
        domain(
            s.create_run(&NewRun {
                experiment_id: id,
                ..NewRun::default()
            })
            .unwrap_err()
        ),
        Error::InvalidParameter(_)
    ));
    s.restore_experiment(id).unwrap();
    assert_eq!(
        s.get_run(&run).unwrap().info.lifecycle_stage,
        LifecycleStage::Active
    );
    assert!(
        s.delete_experiment(0).is_err(),
        "the default experiment cannot be deleted"
    );
}

fn experiment_tags(f: &Fixture) {
    let s = f.store.as_ref();
    let id = s.create_experiment("tagged", None, &[]).unwrap();
    s.set_experiment_tag(id, &Tag::new("k", "v1")).unwrap();
    s.set_experiment_tag(id, &Tag::new("k", "v2")).unwrap();
    assert_eq!(
        s.get_experiment(id).unwrap().tags,
        vec![Tag::new("k", "v2")]
    );
    s.delete_experiment_tag(id, "k").unwrap();
    assert!(s.get_experiment(id).unwrap().tags.is_empty());
    assert!(matches!(
        domain(s.delete_experiment_tag(id, "k").unwrap_err()),
        Error::NotFound(_)
    ));
}

fn exp_search(s: &dyn MetaStore, filter: &str, order: &[&str], view: ViewType) -> Vec<String> {
    let q = ExperimentSearch {
        filter: parse_filter(SearchKind::Experiments, filter).unwrap(),
        order_by: order
            .iter()
            .map(|o| parse_order_by(SearchKind::Experiments, o).unwrap())
            .collect(),
        view,
        max_results: 1000,
        offset: 0,
    };
    s.search_experiments(&q)
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.name)
        .collect()
}

fn experiment_search(f: &Fixture) {
    let s = f.store.as_ref();
    for (name, team) in [("exp-b", "red"), ("exp-a", "Blue"), ("other", "red")] {
        s.create_experiment(name, None, &[Tag::new("team", team)])
            .unwrap();
    }
    let gone = s.create_experiment("exp-gone", None, &[]).unwrap();
    s.delete_experiment(gone).unwrap();
    assert_eq!(
        exp_search(s, "name LIKE 'exp-%'", &["name ASC"], ViewType::ActiveOnly),
        ["exp-a", "exp-b"]
    );
    assert_eq!(
        exp_search(s, "tags.team = 'red'", &["name DESC"], ViewType::ActiveOnly),
        ["other", "exp-b"]
    );
    assert_eq!(
        exp_search(s, "tags.team ILIKE 'blue'", &[], ViewType::ActiveOnly),
        ["exp-a"]
    );
    assert!(
        exp_search(s, "tags.team LIKE 'blue'", &[], ViewType::ActiveOnly).is_empty(),
        "LIKE is case-sensitive"
    );
    assert_eq!(exp_search(s, "", &[], ViewType::DeletedOnly), ["exp-gone"]);
    assert_eq!(exp_search(s, "", &[], ViewType::All).len(), 5);
    // Default order: newest first, ties by id.
    assert_eq!(
        exp_search(s, "", &[], ViewType::ActiveOnly)
            .last()
            .map(String::as_str),
        Some("Default")
    );
    let page = s
        .search_experiments(&ExperimentSearch {
            max_results: 2,
            view: ViewType::All,
            ..ExperimentSearch::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_offset, Some(2));
}

fn run_lifecycle(f: &Fixture) {
    let s = f.store.as_ref();
    let run = s
        .create_run(&NewRun {
            experiment_id: 0,
            user_id: "ada".into(),
            run_name: Some("first".into()),
            start_time: Some(42),
            tags: vec![Tag::new("mlflow.source.type", "LOCAL")],
        })
        .unwrap();
    let id = run.info.run_id.clone();
    assert_eq!(id.len(), 32);
    assert_eq!(run.info.run_name, "first");
    assert_eq!(run.info.status, RunStatus::Running);
    assert_eq!(run.info.start_time, Some(42));
    assert_eq!(run.info.end_time, None);
    assert_eq!(
        run.info.artifact_uri,
        format!("mlflow-artifacts:/0/{id}/artifacts")
    );
    assert!(run.data.tags.contains(&Tag::new("mlflow.runName", "first")));

    let info = s
        .update_run(&id, Some(RunStatus::Finished), Some(99), Some("renamed"))
        .unwrap();
    assert_eq!(
        (info.status, info.end_time, info.run_name.as_str()),
        (RunStatus::Finished, Some(99), "renamed")
    );
    assert!(
        s.get_run(&id)
            .unwrap()
            .data
            .tags
            .contains(&Tag::new("mlflow.runName", "renamed"))
    );

    s.delete_run(&id).unwrap();
    assert_eq!(
        s.get_run(&id).unwrap().info.lifecycle_stage,
        LifecycleStage::Deleted
    );
    assert!(matches!(
        domain(
            s.log_batch(&id, &[], &[Tag::new("a", "b")], &[])
                .unwrap_err()
        ),
        Error::InvalidParameter(_)
    ));
    s.restore_run(&id).unwrap();
    s.log_batch(&id, &[], &[], &[Tag::new("t", "v")]).unwrap();
    s.delete_tag(&id, "t").unwrap();
    assert!(matches!(
        domain(s.delete_tag(&id, "t").unwrap_err()),
        Error::NotFound(_)
    ));
    assert!(matches!(
        domain(s.get_run("0123456789abcdef0123456789abcdef").unwrap_err()),
        Error::NotFound(_)
    ));
}

fn run_names(f: &Fixture) {
    let s = f.store.as_ref();
    let generated = s
        .create_run(&NewRun {
            experiment_id: 0,
            ..NewRun::default()
        })
        .unwrap();
    assert_eq!(
        generated.info.run_name.split('-').count(),
        3,
        "random adjective-noun-N name"
    );
    let from_tag = s
        .create_run(&NewRun {
            experiment_id: 0,
            tags: vec![Tag::new("mlflow.runName", "tagged")],
            ..NewRun::default()
        })
        .unwrap();
    assert_eq!(from_tag.info.run_name, "tagged");
    let clash = s.create_run(&NewRun {
        experiment_id: 0,
        run_name: Some("a".into()),
        tags: vec![Tag::new("mlflow.runName", "b")],
        ..NewRun::default()
    });
    assert!(matches!(
        domain(clash.unwrap_err()),
        Error::InvalidParameter(_)
    ));
    // Setting the tag renames the run.
    s.log_batch(
        &from_tag.info.run_id,
        &[],
        &[],
        &[Tag::new("mlflow.runName", "retagged")],
    )
    .unwrap();
    assert_eq!(
        s.get_run(&from_tag.info.run_id).unwrap().info.run_name,
        "retagged"
    );
}

fn log_batch_and_latest_metrics(f: &Fixture) {
    let s = f.store.as_ref();
    let id = new_run(s, 0);
    let metrics = vec![
        Metric::new("loss", 0.9, 10, 0),
        Metric::new("loss", 0.5, 30, 2),
        Metric::new("loss", 0.7, 20, 1),
        Metric::new("acc", 0.1, 10, 0),
    ];
    s.log_batch(
        &id,
        &metrics,
        &[Tag::new("lr", "0.1")],
        &[Tag::new("team", "red")],
    )
    .unwrap();
    // Exact duplicates are ignored, as MLflow's client retries may resend them.
    s.log_batch(&id, &metrics, &[Tag::new("lr", "0.1")], &[])
        .unwrap();
    s.log_batch(&id, &[Metric::new("loss", 0.8, 5, 1)], &[], &[])
        .unwrap();
    // So are they in a batch too large to be grouped (written first as if
    // every metric were new, on PostgreSQL by COPYs of 250 rows: the
    // repeats come in the second), repeated within the batch or from the
    // store; the new metrics beside them are written.
    let mut large: Vec<Metric> = (0..300)
        .map(|i| Metric::new("big", i as f64, 100, i))
        .collect();
    large.push(Metric::new("big", 3.0, 100, 3));
    large.extend(metrics.iter().cloned());
    s.log_batch(&id, &large, &[], &[]).unwrap();
    assert_eq!(
        s.metric_history(&id, "big", 1000, 0).unwrap().items.len(),
        300
    );
    let run = s.get_run(&id).unwrap();
    let loss = run.data.metrics.iter().find(|m| m.key == "loss").unwrap();
    assert_eq!(
        (loss.value, loss.step, loss.timestamp),
        (0.5, 2, 30),
        "latest = max (step, timestamp)"
    );
    assert_eq!(run.data.params, vec![Tag::new("lr", "0.1")]);
    assert!(run.data.tags.contains(&Tag::new("team", "red")));
    let history = s.metric_history(&id, "loss", 100, 0).unwrap().items;
    assert_eq!(history.len(), 4);

    let long = "x".repeat(7000);
    s.log_batch(
        &id,
        &[],
        &[Tag::new("long", long.as_str())],
        &[Tag::new("longtag", "y".repeat(9000))],
    )
    .unwrap();
    let run = s.get_run(&id).unwrap();
    assert_eq!(
        run.data
            .params
            .iter()
            .find(|p| p.key == "long")
            .unwrap()
            .value
            .len(),
        6000
    );
    assert_eq!(
        run.data
            .tags
            .iter()
            .find(|t| t.key == "longtag")
            .unwrap()
            .value
            .len(),
        8000
    );

    let too_many: Vec<Metric> = (0..1001).map(|i| Metric::new("m", 1.0, 0, i)).collect();
    assert!(matches!(
        domain(s.log_batch(&id, &too_many, &[], &[]).unwrap_err()),
        Error::InvalidParameter(_)
    ));
    assert!(matches!(
        domain(
            s.log_batch(&id, &[Metric::new("../bad", 1.0, 0, 0)], &[], &[])
                .unwrap_err()
        ),
        Error::InvalidParameter(_)
    ));
}

/// Single-value calls from many threads of two stores on one database (as
/// two servers' group commits) each land once, and a call that fails — a
/// param logged again with another value — fails alone.
fn concurrent_single_writes_from_two_stores_all_land(f: &Fixture) {
    let other = f.open_again();
    let stores = [f.store.as_ref(), other.as_ref()];
    let id = new_run(stores[0], 0);
    stores[0]
        .log_batch(&id, &[], &[Tag::new("fixed", "1")], &[])
        .unwrap();
    let (threads, calls) = (8, 25);
    let conflicts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (s, id) = (stores[t % 2], id.as_str());
                scope.spawn(move || {
                    let mut refused = 0;
                    for i in 0..calls {
                        let step = (t * calls + i) as i64;
                        s.log_batch(id, &[Metric::new("m", step as f64, step, step)], &[], &[])
                            .unwrap();
                        s.log_batch(id, &[], &[Tag::new(format!("p{t}_{i}"), "v")], &[])
                            .unwrap();
                        s.log_batch(id, &[], &[], &[Tag::new(format!("t{t}"), i.to_string())])
                            .unwrap();
                        if i % 5 == 0 {
                            let e = s.log_batch(id, &[], &[Tag::new("fixed", "2")], &[]);
                            refused += usize::from(matches!(
                                e.map_err(domain),
                                Err(Error::InvalidParameter(_))
                            ));
                        }
                    }
                    refused
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(conflicts, threads * calls / 5);
    let run = stores[1].get_run(&id).unwrap();
    assert_eq!(run.data.params.len(), threads * calls + 1);
    assert!(run.data.params.contains(&Tag::new("fixed", "1")));
    for t in 0..threads {
        let last = (calls - 1).to_string();
        assert!(
            run.data
                .tags
                .contains(&Tag::new(format!("t{t}"), last.as_str()))
        );
    }
    let history = stores[0].metric_history(&id, "m", 10_000, 0).unwrap().items;
    assert_eq!(history.len(), threads * calls);
    let latest = run.data.metrics.iter().find(|m| m.key == "m").unwrap();
    assert_eq!(latest.step, (threads * calls - 1) as i64);
}

fn params_are_immutable(f: &Fixture) {
    let s = f.store.as_ref();
    let id = new_run(s, 0);
    s.log_batch(&id, &[], &[Tag::new("p", "a")], &[]).unwrap();
    s.log_batch(&id, &[], &[Tag::new("p", "a")], &[]).unwrap();
    let err = domain(
        s.log_batch(
            &id,
            &[Metric::new("m", 1.0, 0, 0)],
            &[Tag::new("p", "b")],
            &[],
        )
        .unwrap_err(),
    );
    assert!(
        matches!(&err, Error::InvalidParameter(m) if m.contains("Changing param values is not allowed")),
        "{err:?}"
    );
    // All or nothing: the metric of the failed batch was not written.
    assert!(s.get_run(&id).unwrap().data.metrics.is_empty());
    let dup = s.log_batch(&id, &[], &[Tag::new("q", "1"), Tag::new("q", "2")], &[]);
    assert!(matches!(
        domain(dup.unwrap_err()),
        Error::InvalidParameter(_)
    ));
}

fn metric_history_pages(f: &Fixture) {
    let s = f.store.as_ref();
    let id = new_run(s, 0);
    let metrics: Vec<Metric> = (0..25)
        .map(|i| Metric::new("m", i as f64, 1000 - i, i))
        .collect();
    s.log_batch(&id, &metrics, &[], &[]).unwrap();
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = s.metric_history(&id, "m", 10, offset).unwrap();
        seen.extend(page.items.iter().map(|m| m.step));
        match page.next_offset {
            Some(o) => offset = o,
            None => break,
        }
    }
    // Ordered by timestamp: the highest step has the smallest timestamp.
    assert_eq!(seen, (0..25).rev().collect::<Vec<_>>());
    assert!(
        s.metric_history(&id, "absent", 10, 0)
            .unwrap()
            .items
            .is_empty()
    );
}

fn nan_and_infinity_round_trip(f: &Fixture) {
    let s = f.store.as_ref();
    let id = new_run(s, 0);
    let metrics = [
        Metric::new("nan", f64::NAN, 0, 0),
        Metric::new("inf", f64::INFINITY, 0, 0),
        Metric::new("ninf", f64::NEG_INFINITY, 0, 0),
    ];
    s.log_batch(&id, &metrics, &[], &[]).unwrap();
    let run = s.get_run(&id).unwrap();
    let get = |k: &str| run.data.metrics.iter().find(|m| m.key == k).unwrap().value;
    assert!(get("nan").is_nan());
    assert_eq!(get("inf"), f64::INFINITY);
    assert_eq!(get("ninf"), f64::NEG_INFINITY);
    assert!(
        s.metric_history(&id, "nan", 10, 0).unwrap().items[0]
            .value
            .is_nan()
    );

    // The same in a batch large enough to be copied in on PostgreSQL (in
    // three COPYs), with the model and dataset a metric may name, present
    // or absent.
    let values = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, 1e300];
    let batch: Vec<Metric> = (0..600)
        .map(|i| {
            let mut m = Metric::new("many", values[i % values.len()], 1000 + i as i64, i as i64);
            if i % 3 == 0 {
                m.model_id = Some(format!("m-{i}"));
                m.dataset_name = Some("train".into());
                m.dataset_digest = Some(format!("d{i}"));
            }
            m
        })
        .collect();
    s.log_batch(&id, &batch, &[], &[]).unwrap();
    let history = s.metric_history(&id, "many", 1000, 0).unwrap().items;
    assert_eq!(history.len(), batch.len());
    for (got, want) in history.iter().zip(&batch) {
        assert_eq!(
            (
                got.step,
                got.timestamp,
                &got.model_id,
                &got.dataset_name,
                &got.dataset_digest
            ),
            (
                want.step,
                want.timestamp,
                &want.model_id,
                &want.dataset_name,
                &want.dataset_digest
            )
        );
        assert!(
            got.value == want.value || (got.value.is_nan() && want.value.is_nan()),
            "step {}: {} for {}",
            got.step,
            got.value,
            want.value
        );
    }
}

fn run_search(s: &dyn MetaStore, exp: i64, filter: &str, order: &[&str]) -> Vec<String> {
    let q = RunSearch {
        experiment_ids: vec![exp],
        filter: parse_filter(SearchKind::Runs, filter).unwrap(),
        order_by: order
            .iter()
            .map(|o| parse_order_by(SearchKind::Runs, o).unwrap())
            .collect(),
        view: ViewType::ActiveOnly,
        max_results: 1000,
        offset: 0,
    };
    s.search_runs(&q)
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.info.run_name)
        .collect()
}

/// Four runs in a fresh experiment with varied metrics, params and tags.
fn seed_runs(s: &dyn MetaStore) -> i64 {
    let exp = s.create_experiment("search", None, &[]).unwrap();
    let rows: [(&str, Option<f64>, &str, &str, i64); 4] = [
        ("r1", Some(0.5), "tree", "Alpha", 1),
        ("r2", Some(1.5), "linear", "alpha", 2),
        ("r3", Some(f64::NAN), "tree", "beta", 3),
        ("r4", None, "svm", "gamma.x", 4),
    ];
    for (name, rmse, model, tag, start) in rows {
        let run = s
            .create_run(&NewRun {
                experiment_id: exp,
                run_name: Some(name.into()),
                start_time: Some(start),
                ..NewRun::default()
            })
            .unwrap();
        let metrics: Vec<Metric> = rmse
            .map(|v| Metric::new("rmse", v, 0, 0))
            .into_iter()
            .collect();
        let mut tags = vec![Tag::new("a.b", tag)];
        if name != "r4" {
            tags.push(Tag::new("only123", "yes"));
        }
        s.log_batch(
            &run.info.run_id,
            &metrics,
            &[Tag::new("model", model), Tag::new("my param", name)],
            &tags,
        )
        .unwrap();
    }
    exp
}

fn run_search_filters(f: &Fixture) {
    let s = f.store.as_ref();
    let exp = seed_runs(s);
    let q = |flt: &str| {
        let mut names = run_search(s, exp, flt, &[]);
        names.sort();
        names
    };
    assert_eq!(q("metrics.rmse < 1"), ["r1"]);
    assert_eq!(
        q("metrics.rmse != 0.5"),
        ["r2", "r3"],
        "NaN differs from every number"
    );
    assert_eq!(q("metrics.rmse >= 0.5 and params.model = 'tree'"), ["r1"]);
    assert_eq!(q("params.`my param` = 'r2'"), ["r2"]);
    assert_eq!(q("tags.`a.b` LIKE 'alpha'"), ["r2"]);
    assert_eq!(q("tags.\"a.b\" ILIKE 'alpha'"), ["r1", "r2"]);
    assert_eq!(q("tags.`a.b` LIKE '%.x'"), ["r4"]);
    assert_eq!(q("tags.only123 IS NULL"), ["r4"]);
    assert_eq!(q("tags.only123 IS NOT NULL"), ["r1", "r2", "r3"]);
    assert_eq!(q("params.model != 'tree'"), ["r2", "r4"]);
    assert_eq!(q("attributes.run_name = 'r3'"), ["r3"]);
    assert_eq!(
        q("`Run name` LIKE 'r%' and attributes.start_time > 2"),
        ["r3", "r4"]
    );
    assert_eq!(q("attributes.status = 'RUNNING'").len(), 4);
    let r1 = s
        .search_runs(&RunSearch {
            experiment_ids: vec![exp],
            filter: parse_filter(SearchKind::Runs, "attributes.run_name = 'r1'").unwrap(),
            max_results: 10,
            ..RunSearch::default()
        })
        .unwrap()
        .items
        .remove(0);
    assert_eq!(
        q(&format!(
            "attributes.run_id IN ('{}', 'nope')",
            r1.info.run_id
        )),
        ["r1"]
    );
    assert_eq!(
        q(&format!("attributes.run_id NOT IN ('{}')", r1.info.run_id)),
        ["r2", "r3", "r4"]
    );
    // Injection attempts are just strings.
    assert!(q("params.model = 'x'' OR 1=1 --'").is_empty());
}

fn run_search_order_and_pages(f: &Fixture) {
    let s = f.store.as_ref();
    let exp = seed_runs(s);
    assert_eq!(
        run_search(s, exp, "", &["metrics.rmse DESC"]),
        ["r2", "r1", "r3", "r4"]
    );
    assert_eq!(
        run_search(s, exp, "", &["metrics.rmse ASC"]),
        ["r1", "r2", "r3", "r4"]
    );
    assert_eq!(
        run_search(s, exp, "", &[]),
        ["r4", "r3", "r2", "r1"],
        "default: start_time DESC"
    );
    assert_eq!(
        run_search(
            s,
            exp,
            "",
            &["params.model ASC", "attributes.start_time DESC"]
        ),
        ["r2", "r4", "r3", "r1"]
    );
    assert_eq!(
        run_search(s, exp, "", &["tags.only123 DESC", "`Run name` ASC"]),
        ["r1", "r2", "r3", "r4"]
    );

    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = s
            .search_runs(&RunSearch {
                experiment_ids: vec![exp],
                order_by: vec![parse_order_by(SearchKind::Runs, "metrics.rmse DESC").unwrap()],
                max_results: 3,
                offset,
                ..RunSearch::default()
            })
            .unwrap();
        seen.extend(page.items.into_iter().map(|r| r.info.run_name));
        match page.next_offset {
            Some(o) => offset = o,
            None => break,
        }
    }
    assert_eq!(seen, ["r2", "r1", "r3", "r4"]);
}

/// Every page, at every page size, read through all pages.
fn all_pages(s: &dyn MetaStore, q: &RunSearch, page: u64) -> Vec<String> {
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let got = s
            .search_runs(&RunSearch {
                max_results: page,
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

/// One experiment ordered by a metric takes the index-driven plan (segments:
/// numbers, NaN, missing); two experiments take the general join-and-sort
/// plan. Both must give the same order on every page.
fn metric_order_pages_match_the_general_plan(f: &Fixture) {
    let s = f.store.as_ref();
    let exp = s.create_experiment("metric-order", None, &[]).unwrap();
    let empty = s
        .create_experiment("metric-order-empty", None, &[])
        .unwrap();
    let values = [
        Some(0.5),
        Some(0.5),
        None,
        Some(f64::NAN),
        Some(2.0),
        Some(-1.0),
        None,
        Some(f64::NAN),
        Some(0.5),
        Some(f64::INFINITY),
        None,
    ];
    for (i, v) in values.iter().enumerate() {
        let run = s
            .create_run(&NewRun {
                experiment_id: exp,
                run_name: Some(format!("r{i:02}")),
                start_time: Some(100 + (i as i64 % 3)),
                ..NewRun::default()
            })
            .unwrap();
        let metrics: Vec<Metric> = v.map(|v| Metric::new("m", v, 0, 0)).into_iter().collect();
        let param = Tag::new("p", if i % 2 == 0 { "even" } else { "odd" });
        s.log_batch(&run.info.run_id, &metrics, &[param], &[])
            .unwrap();
        if i == 8 {
            s.delete_run(&run.info.run_id).unwrap();
        }
    }
    for (order, filter) in [
        (&["metrics.m DESC"][..], ""),
        (&["metrics.m ASC"][..], ""),
        (&["metrics.m DESC", "params.p ASC"][..], ""),
        (&["metrics.m ASC"][..], "params.p = 'even'"),
    ] {
        let q = RunSearch {
            experiment_ids: vec![exp],
            filter: parse_filter(SearchKind::Runs, filter).unwrap(),
            order_by: order
                .iter()
                .map(|o| parse_order_by(SearchKind::Runs, o).unwrap())
                .collect(),
            view: ViewType::ActiveOnly,
            max_results: 1000,
            offset: 0,
        };
        let general = RunSearch {
            experiment_ids: vec![exp, empty],
            ..q.clone()
        };
        let expected = all_pages(s, &general, 1000);
        assert_eq!(
            expected.len(),
            if filter.is_empty() { 10 } else { 5 },
            "{order:?}"
        );
        for page in 1..=4 {
            assert_eq!(
                all_pages(s, &q, page),
                expected,
                "{order:?} page size {page}"
            );
            assert_eq!(
                all_pages(s, &general, page),
                expected,
                "{order:?} page size {page}"
            );
        }
    }
    let deleted_view = RunSearch {
        experiment_ids: vec![exp],
        order_by: vec![parse_order_by(SearchKind::Runs, "metrics.m DESC").unwrap()],
        view: ViewType::DeletedOnly,
        max_results: 10,
        ..RunSearch::default()
    };
    assert_eq!(all_pages(s, &deleted_view, 10), ["r08"]);
}

fn inputs_and_outputs(f: &Fixture) {
    let s = f.store.as_ref();
    let id = new_run(s, 0);
    let input = DatasetInput {
        dataset: Dataset {
            name: "train".into(),
            digest: "abc123".into(),
            source_type: "local".into(),
            source: "{\"uri\": \"/data\"}".into(),
            schema: Some("{}".into()),
            profile: None,
        },
        tags: vec![Tag::new("mlflow.data.context", "training")],
    };
    s.log_inputs(&id, std::slice::from_ref(&input), &["m-1".into()])
        .unwrap();
    s.log_inputs(&id, std::slice::from_ref(&input), &[])
        .unwrap();
    s.log_outputs(
        &id,
        &[ModelOutput {
            model_id: "m-2".into(),
            step: 3,
        }],
    )
    .unwrap();
    let run = s.get_run(&id).unwrap();
    assert_eq!(run.dataset_inputs, vec![input]);
    assert_eq!(run.model_inputs, vec!["m-1".to_string()]);
    assert_eq!(
        run.model_outputs,
        vec![ModelOutput {
            model_id: "m-2".into(),
            step: 3
        }]
    );
    let found = run_search(
        s,
        0,
        "datasets.context = 'training' and datasets.name = 'train'",
        &[],
    );
    assert_eq!(found.len(), 1);
}

/// A search's page reads the children of all its runs at once: each run
/// gets its own params, tags, latest metrics (NaN kept), inputs with their
/// own tags, model inputs and outputs, each in its order, and a run with
/// none of them gets none.
fn a_page_of_runs_gets_each_run_its_own_children(f: &Fixture) {
    let s = f.store.as_ref();
    let exp = s.create_experiment("children", None, &[]).unwrap();
    let dataset = |name: &str, tags: &[(&str, &str)]| DatasetInput {
        dataset: Dataset {
            name: name.into(),
            digest: format!("{name}-digest"),
            source_type: "local".into(),
            source: format!("/data/{name}"),
            schema: (name != "b").then(|| "{}".to_string()),
            profile: (name == "b").then(|| "{\"rows\": 3}".to_string()),
        },
        tags: tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
    };
    let mut expected = Vec::new();
    for i in 0..4_i64 {
        let run = s
            .create_run(&NewRun {
                experiment_id: exp,
                user_id: "u".into(),
                start_time: Some(100 - i),
                run_name: Some(format!("run{i}")),
                tags: vec![],
            })
            .unwrap();
        let id = run.info.run_id;
        if i == 3 {
            expected.push((
                id,
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            ));
            continue;
        }
        let params: Vec<Tag> = (0..=i)
            .map(|k| Tag::new(format!("p{k}"), format!("{i}")))
            .collect();
        let metrics = vec![
            Metric::new("z", i as f64, 5, 1),
            Metric::new("a", if i == 1 { f64::NAN } else { -(i as f64) }, 7, 2),
        ];
        s.log_batch(&id, &metrics, &params, &[Tag::new("t", format!("v{i}"))])
            .unwrap();
        let inputs = match i {
            0 => vec![
                dataset("b", &[("k", "0b")]),
                dataset("a", &[("k", "0a"), ("j", "x")]),
            ],
            1 => vec![dataset("a", &[])],
            _ => vec![],
        };
        s.log_inputs(&id, &inputs, &[format!("m-in-{i}"), "m-in".into()])
            .unwrap();
        let outputs: Vec<ModelOutput> = (0..i)
            .rev()
            .map(|step| ModelOutput {
                model_id: format!("m-out-{i}-{step}"),
                step,
            })
            .collect();
        s.log_outputs(&id, &outputs).unwrap();
        expected.push((
            id,
            params,
            metrics,
            inputs,
            vec![format!("m-in-{i}"), "m-in".into()],
            outputs,
        ));
    }
    let q = RunSearch {
        experiment_ids: vec![exp],
        filter: parse_filter(SearchKind::Runs, "").unwrap(),
        order_by: vec![],
        view: ViewType::ActiveOnly,
        max_results: 10,
        offset: 0,
    };
    let page = s.search_runs(&q).unwrap().items;
    assert_eq!(page.len(), 4);
    for (run, (id, params, metrics, inputs, model_inputs, outputs)) in page.iter().zip(&expected) {
        assert_eq!(&run.info.run_id, id, "newest first");
        assert_eq!(&run.data.params, params, "{id}: params by key");
        let got: Vec<(&str, i64, i64)> = run
            .data
            .metrics
            .iter()
            .map(|m| (m.key.as_str(), m.timestamp, m.step))
            .collect();
        let want: Vec<(&str, i64, i64)> = metrics
            .iter()
            .rev()
            .map(|m| (m.key.as_str(), m.timestamp, m.step))
            .collect();
        assert_eq!(got, want, "{id}: latest metrics by key");
        for (g, w) in run.data.metrics.iter().zip(metrics.iter().rev()) {
            assert!(
                g.value == w.value || (g.value.is_nan() && w.value.is_nan()),
                "{id}: {g:?}"
            );
        }
        let tag_t: Vec<&Tag> = run.data.tags.iter().filter(|t| t.key == "t").collect();
        assert_eq!(
            tag_t.len(),
            usize::from(!params.is_empty()),
            "{id}: its own tag only"
        );
        // Inputs by dataset id (the order they were logged), tags by key.
        let mut want_inputs = inputs.clone();
        for input in &mut want_inputs {
            input.tags.sort_by(|a, b| a.key.cmp(&b.key));
        }
        assert_eq!(&run.dataset_inputs, &want_inputs, "{id}: inputs");
        let mut want_models = model_inputs.clone();
        want_models.sort();
        assert_eq!(run.model_inputs, want_models, "{id}: model inputs by id");
        let mut want_outputs = outputs.clone();
        want_outputs.sort_by_key(|o| o.step);
        assert_eq!(&run.model_outputs, &want_outputs, "{id}: outputs by step");
        // Debug: a NaN is equal to itself there.
        assert_eq!(
            format!("{:?}", s.get_run(id).unwrap()),
            format!("{run:?}"),
            "{id}: as get_run loads it"
        );
    }
}

/// The UI's dataset search: each (dataset, context) once, an input without
/// a context once without one, only from the experiments asked for.
fn dataset_summaries(f: &Fixture) {
    let s = f.store.as_ref();
    let exp = s.create_experiment("datasets", None, &[]).unwrap();
    let input = |name: &str, context: Option<&str>| DatasetInput {
        dataset: Dataset {
            name: name.into(),
            digest: "d1".into(),
            source_type: "local".into(),
            source: "{}".into(),
            schema: None,
            profile: None,
        },
        tags: context
            .map(|c| vec![Tag::new("mlflow.data.context", c)])
            .unwrap_or_default(),
    };
    for (run, inputs) in [
        (
            new_run(s, exp),
            vec![input("train", Some("training")), input("test", None)],
        ),
        (
            new_run(s, exp),
            vec![
                input("train", Some("training")),
                input("train", Some("eval")),
            ],
        ),
        (new_run(s, 0), vec![input("elsewhere", Some("training"))]),
    ] {
        s.log_inputs(&run, &inputs, &[]).unwrap();
    }
    let summary = |name: &str, context: Option<&str>| DatasetSummary {
        experiment_id: exp,
        name: name.into(),
        digest: "d1".into(),
        context: context.map(str::to_string),
    };
    assert_eq!(
        s.search_dataset_summaries(&[exp]).unwrap(),
        vec![
            summary("test", None),
            summary("train", Some("eval")),
            summary("train", Some("training")),
        ]
    );
    assert_eq!(s.search_dataset_summaries(&[0, exp]).unwrap().len(), 4);
    assert!(s.search_dataset_summaries(&[]).unwrap().is_empty());
}

fn logged_models(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s, 0);
    let m = s
        .create_logged_model(&NewLoggedModel {
            experiment_id: 0,
            name: Some("model".into()),
            source_run_id: Some(run.clone()),
            params: vec![Tag::new("alpha", "0.5")],
            tags: vec![Tag::new("mlflow.user", "ada")],
            ..NewLoggedModel::default()
        })
        .unwrap();
    assert!(m.model_id.starts_with("m-"));
    assert_eq!(m.status, LoggedModelStatus::Pending);
    assert_eq!(
        m.artifact_uri,
        format!("mlflow-artifacts:/0/models/{}/artifacts", m.model_id)
    );
    let mut metric = Metric::new("rmse", 0.25, 5, 0);
    metric.model_id = Some(m.model_id.clone());
    s.log_batch(&run, &[metric], &[], &[]).unwrap();
    let ready = s
        .finalize_logged_model(&m.model_id, LoggedModelStatus::Ready)
        .unwrap();
    assert_eq!(ready.status, LoggedModelStatus::Ready);
    assert_eq!(ready.params, vec![Tag::new("alpha", "0.5")]);
    assert_eq!(ready.metrics.len(), 1);
    assert_eq!(ready.metrics[0].run_id.as_deref(), Some(run.as_str()));
    s.set_logged_model_tags(&m.model_id, &[Tag::new("k", "v")])
        .unwrap();
    s.delete_logged_model_tag(&m.model_id, "k").unwrap();
    assert!(matches!(
        domain(s.delete_logged_model_tag(&m.model_id, "k").unwrap_err()),
        Error::NotFound(_)
    ));
    s.log_logged_model_params(&m.model_id, &[Tag::new("beta", "1")])
        .unwrap();
    assert_eq!(
        s.get_logged_model(&m.model_id, false).unwrap().params.len(),
        2
    );

    let search = |flt: &str| {
        s.search_logged_models(&LoggedModelSearch {
            experiment_ids: vec![0],
            filter: parse_filter(SearchKind::LoggedModels, flt).unwrap(),
            max_results: 50,
            ..LoggedModelSearch::default()
        })
        .unwrap()
        .items
        .len()
    };
    assert_eq!(search("name = 'model'"), 1);
    assert_eq!(search("name = 'other'"), 0);
    assert_eq!(search("metrics.rmse < 0.5"), 1);
    s.delete_logged_model(&m.model_id).unwrap();
    assert!(matches!(
        domain(s.get_logged_model(&m.model_id, false).unwrap_err()),
        Error::NotFound(_)
    ));
    assert!(s.get_logged_model(&m.model_id, true).is_ok());
    assert_eq!(search("name = 'model'"), 0);
}

fn bulk_interval_samples(f: &Fixture) {
    let s = f.store.as_ref();
    let a = new_run(s, 0);
    let b = new_run(s, 0);
    let metrics: Vec<Metric> = (0..50)
        .map(|i| Metric::new("loss", i as f64, i, i))
        .collect();
    s.log_batch(&a, &metrics, &[], &[]).unwrap();
    s.log_batch(&b, &metrics[..5], &[], &[]).unwrap();
    let out = s
        .metric_history_bulk_interval(&[a.clone(), b.clone()], "loss", None, 10)
        .unwrap();
    let of = |r: &str| {
        out.iter()
            .filter(|m| m.run_id.as_deref() == Some(r))
            .map(|m| m.step)
            .collect::<Vec<_>>()
    };
    let steps_a = of(&a);
    assert_eq!(steps_a.len(), 10);
    assert_eq!((steps_a[0], steps_a[9]), (0, 49));
    assert_eq!(of(&b), vec![0, 1, 2, 3, 4]);
    let ranged = s
        .metric_history_bulk_interval(std::slice::from_ref(&a), "loss", Some((10, 20)), 100)
        .unwrap();
    assert_eq!(ranged.len(), 11);
    // Rows, not steps, are sampled (MLflow 3.17): by step, time, stored value (a NaN is
    // stored as 0) and NaN-ness, a row per bucket and the last row kept.
    let c = new_run(s, 0);
    let rows = [
        (2.0, 20, 1),
        (1.0, 10, 1),
        (f64::NAN, 10, 1),
        (0.5, 10, 0),
        (3.0, 30, 2),
    ];
    let rows: Vec<Metric> = rows
        .iter()
        .map(|&(v, ts, step)| Metric::new("loss", v, ts, step))
        .collect();
    s.log_batch(&c, &rows, &[], &[]).unwrap();
    let sampled = |max: u64| -> Vec<(i64, i64, String)> {
        s.metric_history_bulk_interval(std::slice::from_ref(&c), "loss", None, max)
            .unwrap()
            .iter()
            .map(|m| (m.step, m.timestamp, m.value.to_string()))
            .collect()
    };
    let at = |step, ts, v: &str| (step, ts, v.to_string());
    assert_eq!(sampled(1), [at(2, 30, "3")]);
    assert_eq!(sampled(2), [at(0, 10, "0.5"), at(2, 30, "3")]);
    assert_eq!(
        sampled(3),
        [at(0, 10, "0.5"), at(1, 10, "1"), at(2, 30, "3")]
    );
    assert_eq!(
        sampled(5),
        [
            at(0, 10, "0.5"),
            at(1, 10, "NaN"),
            at(1, 10, "1"),
            at(1, 20, "2"),
            at(2, 30, "3")
        ]
    );
    // A thousand values at step 0 (`log_metric` without a step) answer as many as asked.
    let d = new_run(s, 0);
    let zeros: Vec<Metric> = (0..1_000)
        .map(|i| Metric::new("loss", i as f64, 1_000 + i, 0))
        .collect();
    s.log_batch(&d, &zeros, &[], &[]).unwrap();
    let out = s
        .metric_history_bulk_interval(std::slice::from_ref(&d), "loss", None, 10)
        .unwrap();
    assert_eq!(out.len(), 10);
    assert_eq!(out.last().map(|m| m.timestamp), Some(1_999));
    // Runs answer in the order asked.
    let both = s
        .metric_history_bulk_interval(&[d.clone(), c.clone()], "loss", None, 2)
        .unwrap();
    let order: Vec<&str> = both.iter().filter_map(|m| m.run_id.as_deref()).collect();
    assert_eq!(order, [d.as_str(), d.as_str(), c.as_str(), c.as_str()]);
}

fn migrations_are_idempotent(f: &Fixture) {
    assert!(f.upgrade().is_empty(), "a second upgrade applies nothing");
}

fn experiment_keys_are_distinct_and_sorted(f: &Fixture) {
    use sextant_store::RunKeyKind;
    let s = f.store.as_ref();
    let exp = seed_runs(s);
    let other = s.create_experiment("elsewhere", None, &[]).unwrap();
    let run = new_run(s, other);
    s.log_batch(&run, &[Metric::new("loss", 1.0, 0, 0)], &[], &[])
        .unwrap();
    assert_eq!(
        s.experiment_keys(exp, RunKeyKind::Metrics, 100).unwrap(),
        ["rmse"]
    );
    assert_eq!(
        s.experiment_keys(exp, RunKeyKind::Params, 100).unwrap(),
        ["model", "my param"]
    );
    let tags = s.experiment_keys(exp, RunKeyKind::Tags, 100).unwrap();
    assert!(tags.starts_with(&["a.b".to_string()]), "{tags:?}");
    assert!(tags.contains(&"only123".to_string()), "{tags:?}");
    assert!(tags.windows(2).all(|w| w[0] < w[1]), "{tags:?}");
    assert_eq!(
        s.experiment_keys(exp, RunKeyKind::Params, 1).unwrap(),
        ["model"]
    );
    assert_eq!(
        s.experiment_keys(other, RunKeyKind::Metrics, 100).unwrap(),
        ["loss"]
    );
    let missing = s.experiment_keys(987_654, RunKeyKind::Metrics, 10);
    assert!(matches!(missing.map_err(domain), Err(Error::NotFound(_))));
}
