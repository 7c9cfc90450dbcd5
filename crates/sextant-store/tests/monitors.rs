//! Conformance of stored endpoints, monitors and monitor runs: every test runs
//! against SQLite and PostgreSQL through the public `MetaStore`.

#[macro_use]
mod support;

use sextant_core::Error;
use sextant_core::clock::now_ms;
use sextant_core::endpoints::EndpointEvent;
use sextant_core::monitors::{MonitorEvent, MonitorRun, MonitorRunStatus};
use sextant_store::StoreError;

use support::Fixture;

conformance!(
    endpoint_lifecycle,
    monitor_lifecycle,
    monitor_runs_end_once_with_their_events,
    a_due_time_fires_one_scheduled_run
);

fn domain<T: std::fmt::Debug>(r: Result<T, StoreError>) -> Error {
    match r {
        Err(StoreError::Domain(e)) => e,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

fn endpoint_lifecycle(f: &Fixture) {
    let s = f.store.as_ref();
    let before = s.last_event_id().unwrap();
    let created = EndpointEvent {
        kind: "endpoint.created".into(),
        payload: r#"{"name":"churn"}"#.into(),
    };
    let e = s
        .put_endpoint_at(
            "churn",
            r#"{"variants":[]}"#,
            "{}",
            Some(&created),
            now_ms(),
        )
        .unwrap();
    assert_eq!((e.name.as_str(), e.state.as_str()), ("churn", "{}"));
    let e = s
        .set_endpoint_state_at("churn", r#"{"rollout":null}"#, None, now_ms())
        .unwrap();
    assert_eq!(e.state, r#"{"rollout":null}"#);
    assert!(e.updated_time >= e.created_time);
    assert!(matches!(
        domain(s.put_endpoint_at("bad_name", "{}", "{}", None, now_ms())),
        Error::InvalidParameter(_)
    ));
    assert!(matches!(
        domain(s.put_endpoint_at("churn", "not json", "{}", None, now_ms())),
        Error::InvalidParameter(_)
    ));
    assert!(matches!(
        domain(s.set_endpoint_state_at("nope", "{}", None, now_ms())),
        Error::NotFound(_)
    ));
    s.put_endpoint_at("alpha", "{}", "{}", None, now_ms())
        .unwrap();
    let names: Vec<_> = s
        .list_endpoints()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["alpha", "churn"]);
    s.delete_endpoint("churn").unwrap();
    assert!(matches!(
        domain(s.get_endpoint("churn")),
        Error::NotFound(_)
    ));
    assert!(matches!(
        domain(s.delete_endpoint("churn")),
        Error::NotFound(_)
    ));
    let kinds: Vec<_> = s
        .events_after(before, &[], 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.subject))
        .collect();
    assert_eq!(
        kinds,
        [
            ("endpoint.created".to_string(), "endpoint:churn".to_string()),
            ("endpoint.deleted".into(), "endpoint:churn".into())
        ]
    );
}

fn monitor_lifecycle(f: &Fixture) {
    let s = f.store.as_ref();
    let m = s
        .put_monitor_at("drift", r#"{"endpoint":"churn"}"#, None, now_ms())
        .unwrap();
    assert_eq!(m.spec, r#"{"endpoint":"churn"}"#);
    let m2 = s
        .put_monitor_at("drift", r#"{"endpoint":"other"}"#, None, now_ms())
        .unwrap();
    assert_eq!(
        (m2.created_time, m2.spec.as_str()),
        (m.created_time, r#"{"endpoint":"other"}"#)
    );
    assert!(matches!(
        domain(s.put_monitor_at("a b", "{}", None, now_ms())),
        Error::InvalidParameter(_)
    ));
    assert!(matches!(
        domain(s.put_monitor_at("x", "{", None, now_ms())),
        Error::InvalidParameter(_)
    ));
    s.put_monitor_at("a-first", "{}", None, now_ms()).unwrap();
    let names: Vec<_> = s
        .list_monitors()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["a-first", "drift"]);
    s.delete_monitor("drift").unwrap();
    assert!(matches!(domain(s.get_monitor("drift")), Error::NotFound(_)));
    assert!(matches!(
        domain(s.delete_monitor("drift")),
        Error::NotFound(_)
    ));
}

fn run(id: &str, monitor: &str, started: i64) -> MonitorRun {
    MonitorRun {
        id: id.into(),
        monitor: monitor.into(),
        status: MonitorRunStatus::Running,
        trigger: "manual".into(),
        window_start: started - 3_600_000,
        window_end: started,
        started_time: started,
        ended_time: None,
        summary: "{}".into(),
        error: None,
    }
}

fn monitor_runs_end_once_with_their_events(f: &Fixture) {
    let s = f.store.as_ref();
    assert!(matches!(
        domain(s.start_monitor_run(&run("r0", "missing", 1))),
        Error::NotFound(_)
    ));
    s.put_monitor_at("drift", "{}", None, now_ms()).unwrap();
    let before = s.last_event_id().unwrap();
    let r1 = s.start_monitor_run(&run("r1", "drift", 1_000)).unwrap();
    assert_eq!(
        (r1.status, r1.ended_time),
        (MonitorRunStatus::Running, None)
    );
    s.start_monitor_run(&run("r2", "drift", 2_000)).unwrap();
    let violation = MonitorEvent {
        kind: "monitor.violation".into(),
        payload: r#"{"monitor":"drift","run":"r1"}"#.into(),
    };
    let done = s
        .finish_monitor_run_at(
            "r1",
            MonitorRunStatus::CompletedWithViolations,
            r#"{"violations":1}"#,
            None,
            std::slice::from_ref(&violation),
            now_ms(),
        )
        .unwrap();
    assert_eq!(done.status, MonitorRunStatus::CompletedWithViolations);
    assert_eq!(done.summary, r#"{"violations":1}"#);
    assert!(done.ended_time.is_some());
    // Ending twice changes nothing and appends nothing.
    let again = s.finish_monitor_run_at(
        "r1",
        MonitorRunStatus::Failed,
        "{}",
        Some("late"),
        &[violation],
        now_ms(),
    );
    assert!(matches!(domain(again), Error::InvalidState(_)));
    assert!(matches!(
        domain(s.finish_monitor_run_at("r2", MonitorRunStatus::Running, "{}", None, &[], now_ms())),
        Error::InvalidParameter(_)
    ));
    s.finish_monitor_run_at(
        "r2",
        MonitorRunStatus::Failed,
        "{}",
        Some("no data in the window"),
        &[],
        now_ms(),
    )
    .unwrap();
    let runs = s.list_monitor_runs("drift", 10).unwrap();
    let ids: Vec<_> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r2", "r1"]);
    assert_eq!(runs[0].error.as_deref(), Some("no data in the window"));
    assert_eq!(s.list_monitor_runs("drift", 1).unwrap().len(), 1);
    assert_eq!(s.get_monitor_run("r1").unwrap(), done);
    let events = s.events_after(before, &[], 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind.as_str(), events[0].subject.as_str()),
        ("monitor.violation", "monitor:drift")
    );
    s.delete_monitor("drift").unwrap();
    assert!(matches!(
        domain(s.get_monitor_run("r1")),
        Error::NotFound(_)
    ));
}

fn a_due_time_fires_one_scheduled_run(f: &Fixture) {
    let s = f.store.as_ref();
    s.put_monitor_at("drift", "{}", None, now_ms()).unwrap();
    let scheduled = |id: &str| MonitorRun {
        trigger: "schedule".into(),
        ..run(id, "drift", 3_600_000)
    };
    s.start_monitor_run(&scheduled("s1")).unwrap();
    // Another server firing the same due time is refused, by the store.
    assert!(matches!(
        domain(s.start_monitor_run(&scheduled("s2"))),
        Error::AlreadyExists(_)
    ));
    // The next due time, and manual runs over the same window, are not.
    s.start_monitor_run(&MonitorRun {
        window_end: 7_200_000,
        ..scheduled("s3")
    })
    .unwrap();
    s.start_monitor_run(&run("m1", "drift", 3_600_000)).unwrap();
    s.start_monitor_run(&run("m2", "drift", 3_600_000)).unwrap();
    let ids: Vec<String> = s
        .list_monitor_runs("drift", 10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(!ids.contains(&"s2".to_string()));
}
