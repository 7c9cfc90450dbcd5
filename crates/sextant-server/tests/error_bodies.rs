//! Snapshots of the answers to the main mistakes a client makes: status and
//! body, exactly as sent. A change to any of them shows up as a diff of its
//! `.snap` file under `tests/snapshots/` to review, not as a silent drift.

mod support;

use std::sync::Arc;

use axum::Router;
use serde_json::json;
use sextant_artifacts::ArtifactStore;
use sextant_core::search::MAX_FILTER_CLAUSES;
use sextant_server::{AppState, SecurityConfig, router};
use support::{Answer, request};

fn app() -> Router {
    let store = sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store");
    let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
    router(AppState::new(
        Arc::from(store),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    ))
}

/// The answer as a reviewer reads it: status line, content type, then the
/// body (pretty JSON when it is JSON). The request id is left out: it is
/// generated per request.
fn shown(a: &Answer) -> String {
    let ctype = a
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let body = if a.json.is_null() {
        a.text.clone()
    } else {
        serde_json::to_string_pretty(&a.json).unwrap()
    };
    format!("{}\ncontent-type: {ctype}\n\n{body}", a.status)
}

async fn post_json(app: &Router, uri: &str, body: serde_json::Value) -> Answer {
    request(app, "POST", uri, Some(&body.to_string()), &[]).await
}

#[tokio::test]
async fn unknown_experiment() {
    let a = request(
        &app(),
        "GET",
        "/api/2.0/mlflow/experiments/get?experiment_id=4242",
        None,
        &[],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn unknown_run() {
    let a = request(
        &app(),
        "GET",
        "/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef",
        None,
        &[],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn bad_search_filter() {
    let a = post_json(
        &app(),
        "/api/2.0/mlflow/runs/search",
        json!({"experiment_ids": ["0"], "filter": "metrics.rmse >>> 1"}),
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn filter_with_too_many_clauses() {
    let filter = (0..=MAX_FILTER_CLAUSES)
        .map(|k| format!("metrics.m{k} > 0"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let a = post_json(
        &app(),
        "/api/2.0/mlflow/runs/search",
        json!({"experiment_ids": ["0"], "filter": filter}),
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn missing_required_parameter() {
    let a = post_json(&app(), "/api/2.0/mlflow/experiments/create", json!({})).await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn malformed_json_body() {
    let a = request(
        &app(),
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some("{nope"),
        &[],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn invalid_endpoint_definition_at_its_line_and_column() {
    let yaml = "variants:\n  - model: /nowhere\n    colour: blue\nrollout:\n  strategy: yolo\n";
    let a = request(
        &app(),
        "PUT",
        "/api/v1/endpoints/churn",
        Some(yaml),
        &[("content-type", "application/yaml")],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn cross_origin_refusal_mlflow() {
    let a = request(
        &app(),
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(r#"{"name": "x"}"#),
        &[("origin", "https://evil.example.com")],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn cross_origin_refusal_native() {
    let a = request(
        &app(),
        "PUT",
        "/api/v1/pipelines/demo",
        Some("{}"),
        &[("origin", "https://evil.example.com")],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn body_not_declared_as_json_mlflow() {
    let a = request(
        &app(),
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some("name=x"),
        &[("content-type", "text/plain")],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn unsupported_media_type_native() {
    let a = request(
        &app(),
        "PUT",
        "/api/v1/pipelines/demo",
        Some("steps: {}"),
        &[("content-type", "text/plain")],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn unknown_route() {
    let a = request(&app(), "GET", "/api/2.0/mlflow/nothing-here", None, &[]).await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn unknown_endpoint_invocation() {
    let a = request(
        &app(),
        "POST",
        "/endpoints/ghost/invocations",
        Some(r#"{"inputs": [[1.0]]}"#),
        &[],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}

#[tokio::test]
async fn invalid_pipeline_definition_at_its_line_and_column() {
    let yaml = "name: demo\nsteps:\n  train:\n    run: echo ${params.missing}\n    retries: many\n";
    let a = request(
        &app(),
        "PUT",
        "/api/v1/pipelines/demo",
        Some(yaml),
        &[("content-type", "application/yaml")],
    )
    .await;
    insta::assert_snapshot!(shown(&a));
}
