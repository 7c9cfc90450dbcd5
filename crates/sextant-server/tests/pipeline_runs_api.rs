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
use sextant_core::pipeline_runs::TaskStatus;
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::MetaStore;
use support::call;

const PIPELINE: &str =
    "name: chain\nsteps:\n  a:\n    run: \"true\"\n  b:\n    run: \"true\"\n    needs: [a]\n";

struct Fixture {
    app: Router,
    store: Arc<dyn MetaStore>,
}

fn fixture() -> Fixture {
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
    let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
    let app = router(AppState::new(
        store.clone(),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    ));
    Fixture { app, store }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    call(app, "GET", uri, "").await
}

fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error_code"], code, "{}", got.1);
}

impl Fixture {
    /// Stores the pipeline and starts `n` runs of it; returns their ids, oldest first.
    async fn runs(&self, n: usize) -> Vec<String> {
        let (s, body) = call(&self.app, "PUT", "/api/v1/pipelines/chain", PIPELINE).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let mut ids = Vec::new();
        for _ in 0..n {
            let (s, run) = call(&self.app, "POST", "/api/v1/pipelines/chain/runs", "").await;
            assert_eq!(s, StatusCode::CREATED, "{run}");
            ids.push(run["id"].as_str().unwrap().to_string());
        }
        ids
    }
}

fn ids(page: &Value) -> Vec<&str> {
    page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn runs_are_listed_newest_first_by_pipeline_and_status_in_pages() {
    let f = fixture();
    let runs = f.runs(3).await;
    let (s, _) = call(
        &f.app,
        "POST",
        &format!("/api/v1/pipeline-runs/{}/cancel", runs[1]),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let (s, all) = get(&f.app, "/api/v1/pipeline-runs").await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let listed = ids(&all);
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    let mut created: Vec<&str> = runs.iter().map(String::as_str).collect();
    created.sort_unstable();
    assert_eq!(sorted, created);
    // Newest first (runs started within one millisecond tie).
    let times: Vec<i64> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["created_time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(all["runs"][0]["trigger"], "manual");
    assert_eq!(all["next_offset"], Value::Null);

    let (_, page) = get(&f.app, "/api/v1/pipeline-runs?max_results=2").await;
    assert_eq!(ids(&page), &listed[..2]);
    assert_eq!(page["next_offset"], 2);
    let (_, rest) = get(&f.app, "/api/v1/pipeline-runs?max_results=2&offset=2").await;
    assert_eq!(ids(&rest), &listed[2..]);

    let (_, cancelled) = get(&f.app, "/api/v1/pipeline-runs?status=cancelled").await;
    assert_eq!(ids(&cancelled), [runs[1].as_str()]);
    let (_, pending) = get(
        &f.app,
        "/api/v1/pipeline-runs?pipeline=chain&status=PENDING",
    )
    .await;
    assert_eq!(ids(&pending).len(), 2);
    let (_, none) = get(&f.app, "/api/v1/pipeline-runs?pipeline=other").await;
    assert!(ids(&none).is_empty());

    for bad in [
        "status=asleep",
        "max_results=0",
        "max_results=1001",
        "offset=-1",
    ] {
        let got = get(&f.app, &format!("/api/v1/pipeline-runs?{bad}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    }
}

#[tokio::test]
async fn retry_takes_only_ended_unsuccessful_runs_and_queues_what_is_ready() {
    let f = fixture();
    let id = f.runs(1).await.remove(0);
    let retry = format!("/api/v1/pipeline-runs/{id}/retry");

    let got = call(&f.app, "POST", &retry, "").await;
    assert_error(&got, StatusCode::CONFLICT, "RESOURCE_CONFLICT");
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .contains("is PENDING: only a FAILED or CANCELLED run can be retried"),
        "{}",
        got.1
    );
    let got = call(&f.app, "POST", "/api/v1/pipeline-runs/nope/retry", "").await;
    assert_error(&got, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");

    // Cancelled before any step was queued: its first step is ready, and
    // that is what a retry queues.
    let (s, _) = call(
        &f.app,
        "POST",
        &format!("/api/v1/pipeline-runs/{id}/cancel"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, run) = call(&f.app, "POST", &retry, "").await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(
        (&run["id"], &run["status"]),
        (&Value::from(id.as_str()), &"RUNNING".into())
    );
    let tasks = f.store.tasks_of_run(&id).unwrap();
    let queued: Vec<(&str, TaskStatus)> =
        tasks.iter().map(|t| (t.step.as_str(), t.status)).collect();
    assert_eq!(queued, [("a", TaskStatus::Queued)]);
    let (_, detail) = get(&f.app, &format!("/api/v1/pipeline-runs/{id}")).await;
    assert_eq!(detail["steps"][0]["status"], "queued", "{detail}");
    assert_eq!(detail["steps"][1]["status"], "waiting", "{detail}");

    let got = call(&f.app, "POST", &retry, "").await;
    assert_error(&got, StatusCode::CONFLICT, "RESOURCE_CONFLICT");
}

#[tokio::test]
async fn logs_of_steps_that_have_not_run_are_empty_until_the_run_ends() {
    let f = fixture();
    let id = f.runs(1).await.remove(0);
    let logs = format!("/api/v1/pipeline-runs/{id}/logs");

    let (s, piece) = get(&f.app, &format!("{logs}?step=b&stream=stderr")).await;
    assert_eq!(s, StatusCode::OK, "{piece}");
    assert_eq!(piece["data"], "");
    assert_eq!(
        (&piece["attempt"], &piece["attempts"]),
        (&0.into(), &0.into())
    );
    assert_eq!(
        (&piece["complete"], &piece["finished"]),
        (&true.into(), &false.into())
    );
    assert_eq!(piece["stream"], "stderr");

    let (s, _) = call(
        &f.app,
        "POST",
        &format!("/api/v1/pipeline-runs/{id}/cancel"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, piece) = get(&f.app, &format!("{logs}?step=b")).await;
    assert_eq!(
        piece["finished"], true,
        "a step of an ended run never writes: {piece}"
    );

    let got = get(&f.app, &format!("{logs}?step=c")).await;
    assert_error(&got, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
    assert!(
        got.1["message"]
            .as_str()
            .unwrap()
            .contains("its steps: a, b"),
        "{}",
        got.1
    );
    let got = get(&f.app, "/api/v1/pipeline-runs/nope/logs?step=a").await;
    assert_error(&got, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
    for bad in [
        "",
        "?step=a&stream=all",
        "?step=a&offset=x",
        "?step=a&attempt=1",
        "?step=a&max_bytes=1048577",
    ] {
        let got = get(&f.app, &format!("{logs}{bad}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    }
}
