//! `/api/v1/pipeline-runs…` in-process, without an orchestrator: listing
//! with filters and pages, what retry accepts and queues, and the logs of
//! steps that never ran. (Runs that execute are covered by the process
//! tests of the `sextant` crate.)

mod support;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use serde_json::Value;
use sextant_artifacts::ArtifactStore;
use sextant_client::{Client, LogQuery, OffsetPage, RunRequest};
use sextant_core::pipeline_runs::TaskStatus;
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::MetaStore;
use support::{Refusal, Served, call, refused, serve};

const PIPELINE: &str =
    "name: chain\nsteps:\n  a:\n    run: \"true\"\n  b:\n    run: \"true\"\n    needs: [a]\n";

/// The server's page size when none is asked for.
const DEFAULT_PAGE: u64 = 100;

struct Fixture {
    app: Router,
    store: Arc<dyn MetaStore>,
    served: Served,
}

async fn fixture() -> Fixture {
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
    let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
    let app = router(AppState::new(
        store.clone(),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    ));
    let served = serve(app.clone()).await;
    Fixture { app, store, served }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    call(app, "GET", uri, "").await
}

fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error_code"], code, "{}", got.1);
}

#[track_caller]
fn assert_refused(got: &Refusal, status: StatusCode, code: &str) {
    assert_eq!(got.status, status.as_u16(), "{got:?}");
    assert_eq!(got.code, code, "{got:?}");
}

impl Fixture {
    fn client(&self) -> &Client {
        &self.served.client
    }

    /// Stores the pipeline and starts `n` runs of it; returns their ids, oldest first.
    async fn runs(&self, n: usize) -> Vec<String> {
        let c = self.client();
        c.put_pipeline("chain", PIPELINE.into()).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..n {
            let run = c.start_run("chain", &RunRequest::default()).await.unwrap();
            ids.push(run["id"].as_str().unwrap().to_string());
        }
        ids
    }

    /// A page of runs matching `filter`.
    async fn list(&self, filter: &[(&str, &str)], max_results: u64, offset: u64) -> OffsetPage {
        let filter: Vec<(&str, String)> = filter.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.client()
            .list_pipeline_runs(&filter, max_results, offset)
            .await
            .unwrap()
    }
}

fn ids(page: &OffsetPage) -> Vec<&str> {
    page.items
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn runs_are_listed_newest_first_by_pipeline_and_status_in_pages() {
    let f = fixture().await;
    let c = f.client();
    let runs = f.runs(3).await;
    c.cancel_run(&runs[1]).await.unwrap();

    let all = f.list(&[], DEFAULT_PAGE, 0).await;
    let listed = ids(&all);
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    let mut created: Vec<&str> = runs.iter().map(String::as_str).collect();
    created.sort_unstable();
    assert_eq!(sorted, created);
    // Newest first (runs started within one millisecond tie).
    let times: Vec<i64> = all
        .items
        .iter()
        .map(|r| r["created_time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(all.items[0]["trigger"], "manual");
    assert_eq!(all.next_offset, None);

    let page = f.list(&[], 2, 0).await;
    assert_eq!(ids(&page), &listed[..2]);
    assert_eq!(page.next_offset, Some(2));
    let rest = f.list(&[], 2, 2).await;
    assert_eq!(ids(&rest), &listed[2..]);

    let cancelled = f.list(&[("status", "cancelled")], DEFAULT_PAGE, 0).await;
    assert_eq!(ids(&cancelled), [runs[1].as_str()]);
    let pending = f
        .list(
            &[("pipeline", "chain"), ("status", "PENDING")],
            DEFAULT_PAGE,
            0,
        )
        .await;
    assert_eq!(ids(&pending).len(), 2);
    let none = f.list(&[("pipeline", "other")], DEFAULT_PAGE, 0).await;
    assert!(ids(&none).is_empty());

    for (filter, max_results) in [
        (vec![("status", "asleep".to_string())], DEFAULT_PAGE),
        (vec![], 0),
        (vec![], 1001),
    ] {
        let got = refused(c.list_pipeline_runs(&filter, max_results, 0).await);
        assert_refused(&got, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    }
    // A negative offset: only the wire can carry one.
    let got = get(&f.app, "/api/v1/pipeline-runs?offset=-1").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn retry_takes_only_ended_unsuccessful_runs_and_queues_what_is_ready() {
    let f = fixture().await;
    let c = f.client();
    let id = f.runs(1).await.remove(0);

    let got = refused(c.retry_run(&id).await);
    assert_refused(&got, StatusCode::CONFLICT, "RESOURCE_CONFLICT");
    assert!(
        got.message
            .contains("is PENDING: only a FAILED or CANCELLED run can be retried"),
        "{got:?}"
    );
    let got = refused(c.retry_run("nope").await);
    assert_refused(&got, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");

    // Cancelled before any step was queued: its first step is ready, and
    // that is what a retry queues.
    c.cancel_run(&id).await.unwrap();
    let run = c.retry_run(&id).await.unwrap();
    assert_eq!(
        (&run["id"], &run["status"]),
        (&Value::from(id.as_str()), &"RUNNING".into())
    );
    let tasks = f.store.tasks_of_run(&id).unwrap();
    let queued: Vec<(&str, TaskStatus)> =
        tasks.iter().map(|t| (t.step.as_str(), t.status)).collect();
    assert_eq!(queued, [("a", TaskStatus::Queued)]);
    let detail = c.get_pipeline_run(&id).await.unwrap();
    assert_eq!(detail["steps"][0]["status"], "queued", "{detail}");
    assert_eq!(detail["steps"][1]["status"], "waiting", "{detail}");

    let got = refused(c.retry_run(&id).await);
    assert_refused(&got, StatusCode::CONFLICT, "RESOURCE_CONFLICT");
}

/// A read of `step`'s `stream` from its start, of no attempt in particular.
fn log(step: &str, stream: &str) -> LogQuery {
    LogQuery {
        step: step.into(),
        stream: stream.into(),
        attempt: None,
        offset: 0,
    }
}

#[tokio::test]
async fn logs_of_steps_that_have_not_run_are_empty_until_the_run_ends() {
    let f = fixture().await;
    let c = f.client();
    let id = f.runs(1).await.remove(0);
    let logs = format!("/api/v1/pipeline-runs/{id}/logs");

    let piece = c.step_log(&id, &log("b", "stderr")).await.unwrap();
    assert_eq!(piece.data, "");
    assert_eq!((piece.attempt, piece.attempts), (0, 0));
    assert_eq!((piece.complete, piece.finished), (true, false));
    assert_eq!(piece.stream, "stderr");

    c.cancel_run(&id).await.unwrap();
    let piece = c.step_log(&id, &log("b", "stdout")).await.unwrap();
    assert!(
        piece.finished,
        "a step of an ended run never writes: {piece:?}"
    );

    let got = refused(c.step_log(&id, &log("c", "stdout")).await);
    assert_refused(&got, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
    assert!(got.message.contains("its steps: a, b"), "{got:?}");
    let got = refused(c.step_log("nope", &log("a", "stdout")).await);
    assert_refused(&got, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
    for query in [
        log("a", "all"),
        LogQuery {
            attempt: Some(1),
            ..log("a", "stdout")
        },
    ] {
        let got = refused(c.step_log(&id, &query).await);
        assert_refused(&got, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    }
    // No step, an offset that is not a number, more than a chunk: only the
    // wire can carry these.
    for bad in ["", "?step=a&offset=x", "?step=a&max_bytes=1048577"] {
        let got = get(&f.app, &format!("{logs}{bad}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    }
}
