//! Every answer carries an `x-request-id`: the client's when it is a sane
//! token, else a generated one; error answers and the data plane's included.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use sextant_artifacts::ArtifactStore;
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

fn request_id(a: &Answer) -> &str {
    a.headers
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on a {} answer", a.status))
        .to_str()
        .unwrap()
}

/// Whether `id` looks like one the server made: 32 lowercase hex digits.
fn generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_one() {
    let app = app();
    let a = request(&app, "GET", "/health", None, &[]).await;
    let b = request(&app, "GET", "/health", None, &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(generated(request_id(&a)), "{}", request_id(&a));
    assert_ne!(request_id(&a), request_id(&b), "one id per request");
}

#[tokio::test]
async fn the_clients_id_is_echoed() {
    let id = "3f2a9c1e-7b44-4c55-9d0e-1a2b3c4d5e6f";
    let a = request(
        &app(),
        "GET",
        "/api/2.0/mlflow/experiments/search?max_results=1",
        None,
        &[("x-request-id", id)],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(request_id(&a), id);
}

#[tokio::test]
async fn an_id_that_is_not_a_plain_token_is_replaced() {
    let long = "a".repeat(129);
    for bad in ["has space", "quote\"d", "<script>", long.as_str()] {
        let a = request(&app(), "GET", "/health", None, &[("x-request-id", bad)]).await;
        assert!(generated(request_id(&a)), "{bad:?} → {}", request_id(&a));
    }
}

#[tokio::test]
async fn error_answers_carry_the_id_too() {
    let app = app();
    let id = "req-42";
    let cases = [
        // A handler's 404.
        (
            "GET",
            "/api/2.0/mlflow/experiments/get?experiment_id=4242",
            None,
            None,
        ),
        // The fallback's 404.
        ("GET", "/no/such/route", None, None),
        // The request guard's refusal, before any handler.
        (
            "POST",
            "/api/2.0/mlflow/experiments/create",
            Some("name=x"),
            Some("text/plain"),
        ),
        // The data plane, merged into the same router.
        ("POST", "/endpoints/ghost/invocations", Some("{}"), None),
    ];
    for (method, uri, body, ctype) in cases {
        let mut headers = vec![("x-request-id", id)];
        if let Some(c) = ctype {
            headers.push(("content-type", c));
        }
        let a = request(&app, method, uri, body, &headers).await;
        assert!(a.status.is_client_error(), "{method} {uri}: {}", a.status);
        assert_eq!(request_id(&a), id, "{method} {uri}");
    }
}
