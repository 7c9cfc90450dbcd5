//! Limits that keep one search from pinning the store: filters past the
//! clause limit are a 400 on every searched entity (SQLite used to answer
//! 500 from about 990 clauses), a read past the store's time limit is a 400
//! asking to narrow it, and an abandoned request cancels its reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_core::search::MAX_FILTER_CLAUSES;
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::{Cancel, StoreError};
use tower::ServiceExt;

/// A server over a SQLite file, as `sextant server` runs by default.
fn state(dir: &std::path::Path) -> AppState {
    let uri = format!("sqlite:///{}", dir.join("s.db").display());
    sextant_store::upgrade(&uri, "mlflow-artifacts:").unwrap();
    let store = sextant_store::open(&uri, "mlflow-artifacts:").unwrap();
    let artifacts = ArtifactStore::from_uri("memory://").unwrap();
    AppState::new(
        Arc::from(store),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    )
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(format!("/api/2.0/mlflow/{path}"))
        .header("host", "127.0.0.1:5000")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

async fn get(app: &Router, path: &str, filter: &str) -> (StatusCode, Value) {
    let query: String = url_encode(filter);
    let req = Request::builder()
        .uri(format!("/api/2.0/mlflow/{path}?filter={query}"))
        .header("host", "127.0.0.1:5000")
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn clauses(n: usize, clause: impl Fn(usize) -> String) -> String {
    (0..n).map(clause).collect::<Vec<_>>().join(" AND ")
}

fn assert_clause_limit(what: &str, (status, body): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{what}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("more than {MAX_FILTER_CLAUSES} clauses")),
        "{what}: {msg}"
    );
}

#[tokio::test]
async fn a_filter_of_990_clauses_is_a_400_naming_the_limit_on_every_search() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(state(dir.path()));
    let metrics = clauses(990, |k| format!("metrics.m{k} > 0"));
    let tags = clauses(990, |k| format!("tags.t{k} = 'x'"));
    assert_clause_limit(
        "runs",
        post(
            &app,
            "runs/search",
            json!({"experiment_ids": ["0"], "filter": metrics}),
        )
        .await,
    );
    assert_clause_limit(
        "experiments",
        post(&app, "experiments/search", json!({"filter": tags})).await,
    );
    assert_clause_limit(
        "registered models",
        get(&app, "registered-models/search", &tags).await,
    );
    assert_clause_limit(
        "model versions",
        get(&app, "model-versions/search", &tags).await,
    );
    // At the limit, the same searches answer.
    let at = clauses(MAX_FILTER_CLAUSES, |k| format!("metrics.m{k} > 0"));
    let (s, v) = post(
        &app,
        "runs/search",
        json!({"experiment_ids": ["0"], "filter": at}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let at = clauses(MAX_FILTER_CLAUSES, |k| format!("tags.t{k} = 'x'"));
    let (s, v) = get(&app, "model-versions/search", &at).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[test]
fn a_read_past_the_time_limit_is_a_400_that_says_the_limit() {
    let e = sextant_server::ApiError::from(StoreError::Timeout { limit_ms: 250 });
    assert_eq!(e.code.status(), StatusCode::BAD_REQUEST);
    assert_eq!(e.code.as_str(), "INVALID_PARAMETER_VALUE");
    assert!(e.message.contains("time limit of 250 ms"), "{}", e.message);
}

#[tokio::test]
async fn dropping_a_store_call_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let (started_tx, started) = std::sync::mpsc::channel();
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let call = tokio::spawn(async move {
        state
            .db(move |_store| {
                let cancel = Cancel::current().expect("store calls run in a cancel scope");
                started_tx.send(()).unwrap();
                // Stands for a long query: waits until cancelled, or gives up.
                let deadline = Instant::now() + Duration::from_secs(60);
                while !cancel.is_cancelled() && Instant::now() < deadline {
                    std::thread::yield_now();
                }
                seen_tx.send(cancel.is_cancelled()).unwrap();
                Ok(())
            })
            .await
    });
    tokio::task::spawn_blocking(move || started.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the store call started");
    // A client that goes away: its request's future is dropped.
    call.abort();
    let cancelled = tokio::task::spawn_blocking(move || seen.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the store call ended");
    assert!(cancelled, "the store call was not cancelled");
}
