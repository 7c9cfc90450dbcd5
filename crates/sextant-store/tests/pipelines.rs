//! Conformance of stored pipelines, pipeline runs and the task queue: every
//! test runs against SQLite and PostgreSQL through the public `MetaStore`.

#[macro_use]
mod support;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sextant_core::Error;
use sextant_core::clock::{Clock, ManualClock};
use sextant_core::pipeline_runs::{
    Applied, NewPipelineRun, PipelineRun, PipelineRunStatus, TaskStatus, TriggerKind,
};
use sextant_store::{MetaStore, PipelineRunSearch, StoreError};

use support::Fixture;

conformance!(
    pipelines_and_runs,
    appliers_and_starters_are_recorded,
    claims_in_order_and_respects_not_before,
    expired_lease_is_reclaimed_under_a_new_token,
    a_lease_is_judged_by_the_callers_clock,
    failures_retry_at_their_time_or_end_the_task,
    cancelling_a_run_cancels_its_tasks,
    a_failed_run_resumes_in_place_with_fresh_tasks,
    a_resumed_run_acts_for_who_resumed_it,
    concurrent_claimers_take_each_task_once,
);

const LEASE: i64 = 600_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn invalid_state(r: Result<impl std::fmt::Debug, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Domain(Error::InvalidState(_)))),
        "{r:?}"
    );
}

fn run_of(s: &dyn MetaStore, pipeline: &str) -> PipelineRun {
    if s.get_pipeline(pipeline).is_err() {
        s.put_pipeline(pipeline, "name: p\nsteps: {}\n", None)
            .unwrap();
    }
    s.create_pipeline_run_at(
        &NewPipelineRun {
            pipeline: pipeline.into(),
            params: r#"{"n": 1}"#.into(),
            trigger_kind: TriggerKind::Manual,
            trigger_event: None,
            run_uuid: None,
            no_cache: false,
            started_by: None,
        },
        now(),
    )
    .unwrap()
}

fn kinds_after(s: &dyn MetaStore, after: i64) -> Vec<String> {
    s.events_after(after, &["pipeline_run.*".into()], 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Who applied a pipeline and who a run acts for (issue 17's four-eyes):
/// a known applier is recorded even when the text is unchanged, an unknown
/// one (authentication off) leaves the record.
fn appliers_and_starters_are_recorded(f: &Fixture) {
    let s = f.store.as_ref();
    s.put_pipeline("housing", "a", None).unwrap();
    assert_eq!(s.get_pipeline("housing").unwrap().applied_by, None);
    assert_eq!(
        s.put_pipeline("housing", "a", Some("alice")).unwrap(),
        Applied::Unchanged
    );
    assert_eq!(
        s.get_pipeline("housing").unwrap().applied_by.as_deref(),
        Some("alice")
    );
    assert_eq!(
        s.put_pipeline("housing", "b", None).unwrap(),
        Applied::Updated
    );
    let p = s.get_pipeline("housing").unwrap();
    assert_eq!(
        (p.spec.as_str(), p.applied_by.as_deref()),
        ("b", Some("alice"))
    );
    s.put_pipeline("housing", "c", Some("bob")).unwrap();
    assert_eq!(
        s.list_pipelines(10, 0).unwrap().items[0]
            .applied_by
            .as_deref(),
        Some("bob")
    );

    let run = s
        .create_pipeline_run_at(
            &NewPipelineRun {
                pipeline: "housing".into(),
                params: "{}".into(),
                trigger_kind: TriggerKind::Manual,
                trigger_event: None,
                run_uuid: None,
                no_cache: false,
                started_by: Some("carol".into()),
            },
            now(),
        )
        .unwrap();
    assert_eq!(run.started_by.as_deref(), Some("carol"));
    assert_eq!(s.get_pipeline_run(&run.id).unwrap(), run);
    let listed = s
        .list_pipeline_runs(&PipelineRunSearch {
            pipeline: Some("housing".into()),
            status: None,
            max_results: 10,
            offset: 0,
        })
        .unwrap();
    assert_eq!(listed.items[0].started_by.as_deref(), Some("carol"));
    assert_eq!(run_of(s, "churn").started_by, None);
}

fn pipelines_and_runs(f: &Fixture) {
    let s = f.store.as_ref();
    assert_eq!(
        s.put_pipeline("housing", "a", None).unwrap(),
        Applied::Created
    );
    assert_eq!(
        s.put_pipeline("housing", "a", None).unwrap(),
        Applied::Unchanged
    );
    assert_eq!(
        s.put_pipeline("housing", "b", None).unwrap(),
        Applied::Updated
    );
    assert_eq!(
        s.put_pipeline("churn", "c", None).unwrap(),
        Applied::Created
    );
    assert!(matches!(
        s.put_pipeline("a/b", "c", None),
        Err(StoreError::Domain(Error::InvalidParameter(_)))
    ));
    assert_eq!(s.get_pipeline("housing").unwrap().spec, "b");
    assert!(matches!(
        s.get_pipeline("nope"),
        Err(StoreError::Domain(Error::NotFound(_)))
    ));
    let p1 = s.list_pipelines(1, 0).unwrap();
    let p2 = s.list_pipelines(1, p1.next_offset.unwrap()).unwrap();
    assert_eq!(p1.items[0].name, "churn");
    assert_eq!(p2.items[0].name, "housing");
    assert_eq!(p2.next_offset, None);

    let start = s.last_event_id().unwrap();
    let new = NewPipelineRun {
        pipeline: "housing".into(),
        params: r#"{"threshold": 0.35}"#.into(),
        trigger_kind: TriggerKind::Event,
        trigger_event: Some(start),
        run_uuid: Some("abc".into()),
        no_cache: false,
        started_by: None,
    };
    let run = s.create_pipeline_run_at(&new, now()).unwrap();
    assert_eq!(run.status, PipelineRunStatus::Pending);
    assert_eq!(s.get_pipeline_run(&run.id).unwrap(), run);
    assert!(matches!(
        s.create_pipeline_run_at(
            &NewPipelineRun {
                pipeline: "nope".into(),
                ..new.clone()
            },
            now()
        ),
        Err(StoreError::Domain(Error::NotFound(_)))
    ));
    assert!(matches!(
        s.create_pipeline_run_at(
            &NewPipelineRun {
                params: "[1]".into(),
                ..new.clone()
            },
            now()
        ),
        Err(StoreError::Domain(Error::InvalidParameter(_)))
    ));
    let other = run_of(s, "churn");

    let running = s
        .set_pipeline_run_status_at(&run.id, PipelineRunStatus::Running, now())
        .unwrap();
    assert_eq!(running.status, PipelineRunStatus::Running);
    // Setting the same status again is a no-op without an event.
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Running, now())
        .unwrap();
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Succeeded, now())
        .unwrap();
    invalid_state(s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Running, now()));
    assert_eq!(
        kinds_after(s, start),
        [
            "pipeline_run.created",
            "pipeline_run.created",
            "pipeline_run.started",
            "pipeline_run.succeeded"
        ]
    );

    let by_pipeline = s
        .list_pipeline_runs(&PipelineRunSearch {
            pipeline: Some("housing".into()),
            max_results: 10,
            ..PipelineRunSearch::default()
        })
        .unwrap();
    assert_eq!(by_pipeline.items.len(), 1);
    assert_eq!(by_pipeline.items[0].status, PipelineRunStatus::Succeeded);
    let pending = s
        .list_pipeline_runs(&PipelineRunSearch {
            status: Some(PipelineRunStatus::Pending),
            max_results: 10,
            ..PipelineRunSearch::default()
        })
        .unwrap();
    assert_eq!(pending.items, [other]);
    let all = s
        .list_pipeline_runs(&PipelineRunSearch {
            max_results: 1,
            ..PipelineRunSearch::default()
        })
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert_eq!(all.next_offset, Some(1));
}

fn claims_in_order_and_respects_not_before(f: &Fixture) {
    let s = f.store.as_ref();
    let run = run_of(s, "p");
    let t0 = now();
    let a = s.enqueue_task_at(&run.id, "a", "{}", None, t0).unwrap();
    let later = s
        .enqueue_task_at(&run.id, "later", "{}", Some(t0 + 60_000), t0)
        .unwrap();
    let b = s
        .enqueue_task_at(&run.id, "b", r#"{"x": 1}"#, None, t0)
        .unwrap();
    assert_eq!(a.status, TaskStatus::Queued);
    assert_eq!((a.attempt, a.fencing), (0, 0));
    invalid_parameter(s.enqueue_task_at(&run.id, "bad", "{not json", None, t0));

    let now = now();
    let first = s.claim_task("w1", LEASE, now).unwrap().unwrap();
    assert_eq!(first.task.id, a.id);
    assert_eq!(first.fencing, 1);
    assert_eq!(first.task.attempt, 1);
    assert_eq!(first.task.status, TaskStatus::Running);
    assert_eq!(first.task.lease_owner.as_deref(), Some("w1"));
    assert_eq!(first.task.lease_expires, Some(now + LEASE));
    let second = s.claim_task("w2", LEASE, now).unwrap().unwrap();
    assert_eq!(second.task.id, b.id);
    assert_eq!(second.task.payload, r#"{"x": 1}"#);
    assert_eq!(s.claim_task("w3", LEASE, now).unwrap(), None);

    let due = s.claim_task("w3", LEASE, t0 + 60_000).unwrap().unwrap();
    assert_eq!(due.task.id, later.id);
    let ids: Vec<i64> = s
        .tasks_of_run(&run.id)
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, [a.id, later.id, b.id]);
    // Claims append no events: only run status changes do.
    assert_eq!(kinds_after(s, 0), ["pipeline_run.created"]);
}

fn invalid_parameter(r: Result<impl std::fmt::Debug, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Domain(Error::InvalidParameter(_)))),
        "{r:?}"
    );
}

fn expired_lease_is_reclaimed_under_a_new_token(f: &Fixture) {
    let s = f.store.as_ref();
    let run = run_of(s, "p");
    let task = s
        .enqueue_task_at(&run.id, "train", "{}", None, now())
        .unwrap();
    let t0 = now();
    let old = s.claim_task("w1", 1_000, t0).unwrap().unwrap();
    assert_eq!(s.claim_task("w2", 1_000, t0 + 999).unwrap(), None);

    let new = s.claim_task("w2", LEASE, t0 + 1_000).unwrap().unwrap();
    assert_eq!(new.task.id, task.id);
    assert_eq!(new.fencing, old.fencing + 1);
    assert_eq!(new.task.attempt, 2);
    assert_eq!(new.task.lease_owner.as_deref(), Some("w2"));

    // The old holder can neither renew, annotate, complete nor fail the task.
    invalid_state(s.heartbeat_task_at(task.id, old.fencing, LEASE, now()));
    invalid_state(s.set_task_step_run_at(task.id, old.fencing, "r-old", now()));
    invalid_state(s.complete_task_at(task.id, old.fencing, r#"{"by": "w1"}"#, now()));
    invalid_state(s.fail_task_at(task.id, old.fencing, "boom", None, now()));
    let held = s.get_task(task.id).unwrap();
    assert_eq!(held.status, TaskStatus::Running);
    assert_eq!(held.result, None);
    assert_eq!(held.lease_owner.as_deref(), Some("w2"));

    // The current holder can.
    s.heartbeat_task_at(task.id, new.fencing, LEASE, now())
        .unwrap();
    assert!(s.get_task(task.id).unwrap().heartbeat.is_some());
    s.set_task_step_run_at(task.id, new.fencing, "r-new", now())
        .unwrap();
    let done = s
        .complete_task_at(task.id, new.fencing, r#"{"by": "w2"}"#, now())
        .unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert_eq!(done.result.as_deref(), Some(r#"{"by": "w2"}"#));
    assert_eq!(done.step_run_uuid.as_deref(), Some("r-new"));
    // Repeating the same completion is answered with the recorded outcome;
    // a different one is refused.
    assert_eq!(
        s.complete_task_at(task.id, new.fencing, r#"{"by": "w2"}"#, now())
            .unwrap(),
        done
    );
    invalid_state(s.complete_task_at(task.id, new.fencing, r#"{"by": "other"}"#, now()));
    invalid_state(s.heartbeat_task_at(task.id, new.fencing, LEASE, now()));
    assert_eq!(s.claim_task("w3", LEASE, t0 + 10 * LEASE).unwrap(), None);
    assert!(matches!(
        s.heartbeat_task_at(9_999_999, 1, LEASE, now()),
        Err(StoreError::Domain(Error::NotFound(_)))
    ));
}

/// A lease is judged in one clock, the caller's. With a manual clock ten
/// years ahead of the store's machine (and then ten years behind it), a task
/// queued at the clock's time is due at once, a heartbeat under the clock
/// keeps it from another claimer, and only the clock passing the renewed
/// lease lets one take it. Stamped with the store's own clock, the task would
/// be taken at once (ahead) or never due (behind).
fn a_lease_is_judged_by_the_callers_clock(f: &Fixture) {
    const YEARS: i64 = 10 * 365 * 86_400_000;
    const LEASE_MS: i64 = 30_000;
    let s = f.store.as_ref();
    let ms = |n: u64| Duration::from_millis(n);
    for start in [now() + YEARS, now() - YEARS] {
        let clock = ManualClock::at(start);
        let run = run_of(s, "p");
        let task = s
            .enqueue_task_at(&run.id, "train", "{}", None, clock.now_ms())
            .unwrap();
        assert_eq!(task.not_before, start);
        let held = s
            .claim_task("w1", LEASE_MS, clock.now_ms())
            .unwrap()
            .expect("due at the clock's time");
        assert_eq!(held.task.id, task.id);
        clock.advance(ms(20_000));
        s.heartbeat_task_at(task.id, held.fencing, LEASE_MS, clock.now_ms())
            .unwrap();
        assert_eq!(
            s.get_task(task.id).unwrap().lease_expires,
            Some(start + 50_000)
        );
        // Past the first lease, within the renewed one.
        clock.advance(ms(29_999));
        assert_eq!(
            s.claim_task("w2", LEASE_MS, clock.now_ms()).unwrap(),
            None,
            "a claim stole a step whose heartbeat is fresh"
        );
        clock.advance(ms(1));
        let taken = s
            .claim_task("w2", LEASE_MS, clock.now_ms())
            .unwrap()
            .expect("the renewed lease ran out");
        assert_eq!((taken.task.id, taken.fencing), (task.id, held.fencing + 1));
        invalid_state(s.heartbeat_task_at(task.id, held.fencing, LEASE_MS, clock.now_ms()));
        clock.advance(ms(5));
        let done = s
            .complete_task_at(task.id, taken.fencing, "{}", clock.now_ms())
            .unwrap();
        assert_eq!(done.updated_time, start + 50_005);
    }
}

fn failures_retry_at_their_time_or_end_the_task(f: &Fixture) {
    let s = f.store.as_ref();
    let run = run_of(s, "p");
    let task = s
        .enqueue_task_at(&run.id, "train", "{}", None, now())
        .unwrap();
    let t0 = now();
    let c1 = s.claim_task("w1", LEASE, t0).unwrap().unwrap();
    let retry_at = t0 + 5_000;
    let queued = s
        .fail_task_at(task.id, c1.fencing, "exit status 1", Some(retry_at), now())
        .unwrap();
    assert_eq!(queued.status, TaskStatus::Queued);
    assert_eq!(queued.not_before, retry_at);
    assert_eq!(queued.error.as_deref(), Some("exit status 1"));
    assert_eq!(queued.lease_owner, None);
    assert_eq!(s.claim_task("w1", LEASE, retry_at - 1).unwrap(), None);

    let c2 = s.claim_task("w2", LEASE, retry_at).unwrap().unwrap();
    assert_eq!(c2.task.id, task.id);
    assert_eq!((c2.task.attempt, c2.fencing), (2, 2));
    let failed = s
        .fail_task_at(task.id, c2.fencing, "exit status 2", None, now())
        .unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("exit status 2"));
    assert_eq!(
        s.claim_task("w1", LEASE, retry_at + 10 * LEASE).unwrap(),
        None
    );
    invalid_state(s.fail_task_at(task.id, c2.fencing, "again", Some(retry_at), now()));
}

fn cancelling_a_run_cancels_its_tasks(f: &Fixture) {
    let s = f.store.as_ref();
    let run = run_of(s, "p");
    let keep = run_of(s, "p");
    let start = s.last_event_id().unwrap();
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Running, now())
        .unwrap();
    for step in ["a", "b", "c"] {
        s.enqueue_task_at(&run.id, step, "{}", None, now()).unwrap();
    }
    let other = s.enqueue_task_at(&keep.id, "x", "{}", None, now()).unwrap();
    let held = s.claim_task("w1", LEASE, now()).unwrap().unwrap();

    let cancelled = s
        .set_pipeline_run_status_at(&run.id, PipelineRunStatus::Cancelled, now())
        .unwrap();
    assert_eq!(cancelled.status, PipelineRunStatus::Cancelled);
    assert!(
        s.tasks_of_run(&run.id)
            .unwrap()
            .iter()
            .all(|t| t.status == TaskStatus::Cancelled)
    );
    // The holder learns of the cancellation from its next heartbeat.
    invalid_state(s.heartbeat_task_at(held.task.id, held.fencing, LEASE, now()));
    invalid_state(s.complete_task_at(held.task.id, held.fencing, "{}", now()));
    invalid_state(s.enqueue_task_at(&run.id, "d", "{}", None, now()));
    assert_eq!(s.cancel_run_tasks_at(&run.id, now()).unwrap(), 0);
    let next = s.claim_task("w2", LEASE, now()).unwrap().unwrap();
    assert_eq!(next.task.id, other.id);

    // cancel_run_tasks alone leaves the run's status to the caller.
    s.enqueue_task_at(&keep.id, "y", "{}", None, now()).unwrap();
    assert_eq!(s.cancel_run_tasks_at(&keep.id, now()).unwrap(), 2);
    assert_eq!(
        s.get_pipeline_run(&keep.id).unwrap().status,
        PipelineRunStatus::Pending
    );
    assert_eq!(s.claim_task("w2", LEASE, now()).unwrap(), None);

    // A cancelled run may be resumed, which appends its own event.
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Running, now())
        .unwrap();
    assert_eq!(
        kinds_after(s, start),
        [
            "pipeline_run.started",
            "pipeline_run.cancelled",
            "pipeline_run.resumed"
        ]
    );
    let e = s
        .events_after(start, &["pipeline_run.cancelled".into()], 10)
        .unwrap();
    assert_eq!(e[0].subject, format!("pipeline_run:{}", run.id));
    assert!(
        e[0].payload.contains(r#""status":"CANCELLED""#),
        "{}",
        e[0].payload
    );
}

fn a_failed_run_resumes_in_place_with_fresh_tasks(f: &Fixture) {
    let s = f.store.as_ref();
    let run = run_of(s, "p");
    let step = |name: &str| (name.to_string(), format!(r#"{{"step": "{name}"}}"#));
    // Only an ended, unsuccessful run can be resumed.
    invalid_state(s.resume_pipeline_run_at(&run.id, &[step("a")], None, now()));
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Running, now())
        .unwrap();
    invalid_state(s.resume_pipeline_run_at(&run.id, &[step("a")], None, now()));
    let a = s.enqueue_task_at(&run.id, "a", "{}", None, now()).unwrap();
    let b = s.enqueue_task_at(&run.id, "b", "{}", None, now()).unwrap();
    let ca = s.claim_task("w1", LEASE, now()).unwrap().unwrap();
    s.complete_task_at(a.id, ca.fencing, "{}", now()).unwrap();
    let cb = s.claim_task("w1", LEASE, now()).unwrap().unwrap();
    s.fail_task_at(b.id, cb.fencing, "exit status 1", None, now())
        .unwrap();
    let start = s.last_event_id().unwrap();
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Failed, now())
        .unwrap();
    invalid_parameter(s.resume_pipeline_run_at(&run.id, &[], None, now()));
    assert!(matches!(
        s.resume_pipeline_run_at("nope", &[step("b")], None, now()),
        Err(StoreError::Domain(Error::NotFound(_)))
    ));

    let (resumed, queued) = s
        .resume_pipeline_run_at(&run.id, &[step("b"), step("c")], None, now())
        .unwrap();
    assert_eq!(resumed.status, PipelineRunStatus::Running);
    assert_eq!(resumed.id, run.id);
    let steps: Vec<(&str, TaskStatus, i64)> = queued
        .iter()
        .map(|t| (t.step.as_str(), t.status, t.attempt))
        .collect();
    assert_eq!(
        steps,
        [("b", TaskStatus::Queued, 0), ("c", TaskStatus::Queued, 0)]
    );
    assert_eq!(queued[0].payload, r#"{"step": "b"}"#);
    // The earlier outcomes stay as they were recorded.
    let all = s.tasks_of_run(&run.id).unwrap();
    let statuses: Vec<(&str, TaskStatus)> =
        all.iter().map(|t| (t.step.as_str(), t.status)).collect();
    assert_eq!(
        statuses,
        [
            ("a", TaskStatus::Succeeded),
            ("b", TaskStatus::Failed),
            ("b", TaskStatus::Queued),
            ("c", TaskStatus::Queued)
        ]
    );
    assert_eq!(
        kinds_after(s, start),
        ["pipeline_run.failed", "pipeline_run.resumed"]
    );
    // Resuming is refused while the run is live, and the new tasks are
    // claimable like any other.
    invalid_state(s.resume_pipeline_run_at(&run.id, &[step("b")], None, now()));
    let next = s.claim_task("w2", LEASE, now()).unwrap().unwrap();
    assert_eq!(next.task.id, queued[0].id);

    // A run whose ending has not yet cancelled its open tasks is refused,
    // and nothing is queued.
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Failed, now())
        .unwrap();
    let before = s.tasks_of_run(&run.id).unwrap().len();
    invalid_state(s.resume_pipeline_run_at(&run.id, &[step("d")], None, now()));
    assert_eq!(s.tasks_of_run(&run.id).unwrap().len(), before);
    assert_eq!(
        s.get_pipeline_run(&run.id).unwrap().status,
        PipelineRunStatus::Failed
    );
    // A cancelled run resumes too; a succeeded one never does.
    s.cancel_run_tasks_at(&run.id, now()).unwrap();
    s.resume_pipeline_run_at(&run.id, &[step("b")], None, now())
        .unwrap();
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Cancelled, now())
        .unwrap();
    s.resume_pipeline_run_at(&run.id, &[step("b")], None, now())
        .unwrap();
    s.cancel_run_tasks_at(&run.id, now()).unwrap();
    s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Succeeded, now())
        .unwrap();
    invalid_state(s.resume_pipeline_run_at(&run.id, &[step("b")], None, now()));
}

const TASKS: usize = 200;
const THREADS: usize = 4;

fn concurrent_claimers_take_each_task_once(f: &Fixture) {
    let s = f.store.as_ref();
    let run = run_of(s, "p");
    let mut ids = HashSet::new();
    for i in 0..TASKS {
        let t = s
            .enqueue_task_at(&run.id, &format!("s{i}"), "{}", None, now())
            .unwrap();
        ids.insert(t.id);
    }
    // Half the claimers use a second store: other connections, as another
    // server or worker host would.
    let second = f.open_again();
    let completed = AtomicUsize::new(0);
    let claims = Mutex::new(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|scope| {
        for w in 0..THREADS {
            let store: &dyn MetaStore = if w % 2 == 0 { s } else { second.as_ref() };
            let (completed, claims) = (&completed, &claims);
            scope.spawn(move || {
                let worker = format!("w{w}");
                let mut mine = Vec::new();
                while completed.load(Ordering::SeqCst) < TASKS {
                    assert!(Instant::now() < deadline, "claims did not drain the queue");
                    // A `None` may only mean that the remaining rows were
                    // being taken by others at that moment: poll again.
                    let Some(c) = store.claim_task(&worker, 600_000, now()).unwrap() else {
                        std::thread::yield_now();
                        continue;
                    };
                    assert_eq!(c.fencing, 1, "task {} claimed twice", c.task.id);
                    store
                        .complete_task_at(
                            c.task.id,
                            c.fencing,
                            &format!(r#"{{"by":"{worker}"}}"#),
                            now(),
                        )
                        .unwrap();
                    completed.fetch_add(1, Ordering::SeqCst);
                    mine.push(c.task.id);
                }
                claims.lock().unwrap().extend(mine);
            });
        }
    });
    let claims = claims.into_inner().unwrap();
    assert_eq!(claims.len(), TASKS);
    assert_eq!(claims.iter().copied().collect::<HashSet<_>>(), ids);
    let tasks = s.tasks_of_run(&run.id).unwrap();
    assert!(
        tasks
            .iter()
            .all(|t| t.status == TaskStatus::Succeeded && t.fencing == 1 && t.attempt == 1)
    );
    assert_eq!(s.claim_task("late", LEASE, now()).unwrap(), None);
}

fn a_resumed_run_acts_for_who_resumed_it(f: &Fixture) {
    let s = f.store.as_ref();
    s.put_pipeline("p", "name: p\nsteps: {}\n", Some("alice"))
        .unwrap();
    let run = s
        .create_pipeline_run_at(
            &NewPipelineRun {
                pipeline: "p".into(),
                params: "{}".into(),
                trigger_kind: TriggerKind::Manual,
                trigger_event: None,
                run_uuid: None,
                no_cache: false,
                started_by: Some("alice".into()),
            },
            now(),
        )
        .unwrap();
    let step = vec![("a".to_string(), "{}".to_string())];
    let fail = || {
        s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Running, now())
            .unwrap();
        s.cancel_run_tasks_at(&run.id, now()).unwrap();
        s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Failed, now())
            .unwrap();
    };
    let resumed_payload = |after: i64| -> serde_json::Value {
        let e = s
            .events_after(after, &["pipeline_run.resumed".into()], 10)
            .unwrap();
        assert_eq!(e.len(), 1, "{e:?}");
        serde_json::from_str(&e[0].payload).unwrap()
    };
    fail();
    let mark = s.last_event_id().unwrap();
    let (resumed, _) = s
        .resume_pipeline_run_at(&run.id, &step, Some("bob"), now())
        .unwrap();
    assert_eq!(resumed.started_by.as_deref(), Some("bob"));
    assert_eq!(
        s.get_pipeline_run(&run.id).unwrap().started_by.as_deref(),
        Some("bob")
    );
    let p = resumed_payload(mark);
    assert_eq!(p["started_by"], "bob", "{p}");
    assert_eq!(p["previous_started_by"], "alice", "{p}");

    for again in [Some("bob"), None] {
        s.cancel_run_tasks_at(&run.id, now()).unwrap();
        s.set_pipeline_run_status_at(&run.id, PipelineRunStatus::Failed, now())
            .unwrap();
        let mark = s.last_event_id().unwrap();
        let (resumed, _) = s
            .resume_pipeline_run_at(&run.id, &step, again, now())
            .unwrap();
        assert_eq!(resumed.started_by.as_deref(), Some("bob"));
        let p = resumed_payload(mark);
        assert!(p.get("previous_started_by").is_none(), "{p}");
    }
    // A refused resume changes no user.
    invalid_state(s.resume_pipeline_run_at(&run.id, &step, Some("carol"), now()));
    assert_eq!(
        s.get_pipeline_run(&run.id).unwrap().started_by.as_deref(),
        Some("bob")
    );
}
