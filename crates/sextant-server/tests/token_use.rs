//! An API token's last use (issue 17): the token listing shows it, and it
//! is written at most once a minute per token — a token used on every
//! request costs one write a minute, on one server or on several sharing a
//! store.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::Value;
use sextant_artifacts::ArtifactStore;
use sextant_core::clock::{Clock, ManualClock};
use sextant_server::auth::{Auth, AuthSettings, secrets};
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::MetaStore;
use support::{as_user, request};

const ALICE: (&str, &str) = ("alice", "alice-password-1");

/// A server over `store` with authentication on, its time from `clock`.
fn server(store: &Arc<dyn MetaStore>, clock: &Arc<ManualClock>, dir: &tempfile::TempDir) -> Router {
    let artifacts = Arc::new(ArtifactStore::from_uri(dir.path().to_str().unwrap()).unwrap());
    let st = AppState::new(store.clone(), artifacts, SecurityConfig::loopback())
        .with_auth(Auth::new(AuthSettings::on(), clock.clone()));
    router(st)
}

async fn with_token(app: &Router, token: &str) -> StatusCode {
    request(
        app,
        "GET",
        "/api/2.0/mlflow/experiments/search?max_results=1",
        None,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .status
}

/// The listed `last_used_time` of alice's token `name`.
async fn last_used(app: &Router, name: &str) -> Value {
    let a = as_user(app, ALICE, "GET", "/api/v1/tokens", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no token {name}: {}", a.text))["last_used_time"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_last_use_is_listed_and_written_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
    store
        .auth()
        .create_user(ALICE.0, &secrets::hash_password(ALICE.1), false)
        .unwrap();
    let clock = ManualClock::now();
    let app = server(&store, &clock, &dir);
    let created = as_user(
        &app,
        ALICE,
        "POST",
        "/api/v1/tokens",
        Some(r#"{"name":"worker"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let token = created.json["token"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        created.json["token"]["last_used_time"],
        Value::Null,
        "never used"
    );
    assert_eq!(last_used(&app, "worker").await, Value::Null);

    let t0 = clock.now_ms();
    assert_eq!(with_token(&app, &token).await, StatusCode::OK);
    assert_eq!(last_used(&app, "worker").await, t0);
    // Used on and on within the minute (cache expiries included): no write.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(10));
        assert_eq!(with_token(&app, &token).await, StatusCode::OK);
    }
    assert_eq!(last_used(&app, "worker").await, t0);
    // Another server of the same store, which has not seen the token yet,
    // is held to the minute by the stored time.
    let other = server(&store, &clock, &dir);
    assert_eq!(with_token(&other, &token).await, StatusCode::OK);
    assert_eq!(last_used(&app, "worker").await, t0);
    // A minute on, the next use is written.
    clock.advance(Duration::from_secs(10));
    let t1 = clock.now_ms();
    assert_eq!(with_token(&app, &token).await, StatusCode::OK);
    assert_eq!(last_used(&app, "worker").await, t1);
    // Basic logins are not token uses.
    clock.advance(Duration::from_secs(120));
    assert_eq!(last_used(&app, "worker").await, t1);
}
