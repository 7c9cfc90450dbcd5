//! The MLflow REST surface in-process: wire encoding both ways, error codes
//! and the RPCs the Python client depends on. (The real client is exercised
//! by tests/python; these pin details it does not look at.)

mod support;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_server::{AppState, SecurityConfig, router};

fn app() -> Router {
    let store = sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store");
    let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
    router(AppState::new(
        Arc::from(store),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    ))
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    ctype: &str,
) -> (StatusCode, Value) {
    let headers: &[(&str, &str)] = match body {
        Some(_) => &[("content-type", ctype)],
        None => &[],
    };
    support::send(app, method, uri, body, headers).await
}

async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    call(
        app,
        "POST",
        &format!("/api/2.0/mlflow/{path}"),
        Some(&body.to_string()),
        "application/json",
    )
    .await
}

async fn get(app: &Router, path_and_query: &str) -> (StatusCode, Value) {
    call(
        app,
        "GET",
        &format!("/api/2.0/mlflow/{path_and_query}"),
        None,
        "",
    )
    .await
}

async fn new_run(app: &Router) -> String {
    let (s, v) = post(
        app,
        "runs/create",
        json!({"experiment_id": "0", "start_time": 7}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["run"]["info"]["run_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn create_run_answers_proto_json() {
    let app = app();
    let (s, v) = post(
        &app,
        "runs/create",
        json!({"experiment_id": "0", "start_time": 7, "run_name": "r1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let info = &v["run"]["info"];
    assert_eq!(info["run_id"], info["run_uuid"]);
    assert_eq!(info["experiment_id"], "0");
    assert_eq!(info["start_time"], 7);
    assert_eq!(info["status"], "RUNNING");
    assert!(
        info.get("end_time").is_none(),
        "unset end_time is omitted: {info}"
    );
    assert_eq!(v["run"]["inputs"], json!({}));
    assert!(
        v["run"].get("outputs").is_none(),
        "CreateRun has no outputs field"
    );
    let id = info["run_id"].as_str().unwrap();
    let (_, got) = get(&app, &format!("runs/get?run_id={id}")).await;
    assert_eq!(got["run"]["outputs"], json!({}));
    assert_eq!(
        got["run"]["data"]["tags"],
        json!([{"key": "mlflow.runName", "value": "r1"}])
    );
}

#[tokio::test]
async fn metrics_keep_int64_and_non_finite_values() {
    let app = app();
    let id = new_run(&app).await;
    let big = (1i64 << 53) + 1;
    let (s, v) = post(
        &app,
        "runs/log-metric",
        json!({"run_id": id, "key": "m", "value": 1.5, "timestamp": big, "step": 3}),
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    for (key, value) in [("nan", "NaN"), ("inf", "Infinity"), ("ninf", "-Infinity")] {
        let (s, _) = post(
            &app,
            "runs/log-metric",
            json!({"run_id": id, "key": key, "value": value, "timestamp": 1}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{key}");
    }
    let (_, h) = get(
        &app,
        &format!("metrics/get-history?run_id={id}&metric_key=m"),
    )
    .await;
    assert_eq!(
        h,
        json!({"metrics": [{"key": "m", "value": 1.5, "timestamp": big, "step": 3}]})
    );
    let (_, h) = get(
        &app,
        &format!("metrics/get-history?run_id={id}&metric_key=nan"),
    )
    .await;
    assert_eq!(h["metrics"][0]["value"], "NaN");
    let (_, h) = get(
        &app,
        &format!("metrics/get-history?run_id={id}&metric_key=ninf"),
    )
    .await;
    assert_eq!(h["metrics"][0]["value"], "-Infinity");
}

#[tokio::test]
async fn bad_input_is_a_named_400() {
    let app = app();
    let id = new_run(&app).await;
    let (s, v) = post(
        &app,
        "runs/log-metric",
        json!({"run_id": id, "key": "m", "value": "abc", "timestamp": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("for parameter 'value'"),
        "{v}"
    );

    let (s, v) = get(&app, "runs/get").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("'run_id'"), "{v}");

    let (s, v) = get(&app, "experiments/get?experiment_id=abc").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["message"],
        "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
    );

    let (s, v) = post(
        &app,
        "runs/search",
        json!({"experiment_ids": ["0"], "max_results": 50001}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let (s, v) = post(
        &app,
        "runs/search",
        json!({"experiment_ids": ["0"], "page_token": "!!"}),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Invalid page token, could not base64-decode")
        )
    );

    let (s, _) = call(
        &app,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some("name=x"),
        "text/plain",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(
        &app,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some("{nope"),
        "application/json",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = get(&app, "runs/get?run_id=ffffffffffffffffffffffffffffffff").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("RESOURCE_DOES_NOT_EXIST"))
    );
}

#[tokio::test]
async fn empty_search_is_an_empty_object_and_pages_carry_tokens() {
    let app = app();
    let (_, e) = post(&app, "experiments/create", json!({"name": "paging"})).await;
    let exp = e["experiment_id"].as_str().unwrap().to_string();
    let (s, v) = post(&app, "runs/search", json!({"experiment_ids": [exp]})).await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    for _ in 0..3 {
        post(&app, "runs/create", json!({"experiment_id": exp})).await;
    }
    let (_, first) = post(
        &app,
        "runs/search",
        json!({"experiment_ids": [exp], "max_results": 2}),
    )
    .await;
    assert_eq!(first["runs"].as_array().unwrap().len(), 2);
    let token = first["next_page_token"].as_str().unwrap();
    let (_, rest) = post(
        &app,
        "runs/search",
        json!({"experiment_ids": [exp], "max_results": 2, "page_token": token}),
    )
    .await;
    assert_eq!(rest["runs"].as_array().unwrap().len(), 1);
    assert!(rest.get("next_page_token").is_none());
}

#[tokio::test]
async fn get_requests_read_repeated_query_keys_and_the_ajax_alias_matches() {
    let app = app();
    let a = new_run(&app).await;
    let b = new_run(&app).await;
    for id in [&a, &b] {
        post(
            &app,
            "runs/log-batch",
            json!({"run_id": id, "metrics": [
            {"key": "loss", "value": 1.0, "timestamp": 1, "step": 0},
            {"key": "loss", "value": 0.5, "timestamp": 2, "step": 1}]}),
        )
        .await;
    }
    let (s, v) = get(
        &app,
        &format!("metrics/get-history-bulk-interval?run_ids={a}&run_ids={b}&metric_key=loss"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["metrics"].as_array().unwrap().len(), 4);
    let (_, x) = call(
        &app,
        "GET",
        &format!("/ajax-api/2.0/mlflow/runs/get?run_id={a}"),
        None,
        "",
    )
    .await;
    let (_, y) = get(&app, &format!("runs/get?run_id={a}")).await;
    assert_eq!(x, y);
}

#[tokio::test]
async fn log_model_appends_to_the_history_tag() {
    let app = app();
    let id = new_run(&app).await;
    for path in ["m1", "m2"] {
        let model = json!({"artifact_path": path, "flavors": {}}).to_string();
        let (s, v) = post(
            &app,
            "runs/log-model",
            json!({"run_id": id, "model_json": model}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, run) = get(&app, &format!("runs/get?run_id={id}")).await;
    let tags = run["run"]["data"]["tags"].as_array().unwrap();
    let history = tags
        .iter()
        .find(|t| t["key"] == "mlflow.log-model.history")
        .unwrap();
    let parsed: Vec<Value> = serde_json::from_str(history["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        parsed
            .iter()
            .map(|m| m["artifact_path"].clone())
            .collect::<Vec<_>>(),
        vec![json!("m1"), json!("m2")]
    );
}

#[tokio::test]
async fn logged_models_lifecycle() {
    let app = app();
    let run = new_run(&app).await;
    let (s, v) = post(
        &app,
        "logged-models",
        json!({"experiment_id": "0", "name": "model", "source_run_id": run,
        "params": [{"key": "alpha", "value": "0.5"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let info = &v["model"]["info"];
    let id = info["model_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("m-"));
    assert_eq!(info["status"], "LOGGED_MODEL_PENDING");
    assert!(
        info["artifact_uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/models/{id}/artifacts"))
    );

    let (s, v) = call(
        &app,
        "PATCH",
        &format!("/api/2.0/mlflow/logged-models/{id}"),
        Some(&json!({"model_id": id, "status": "LOGGED_MODEL_READY"}).to_string()),
        "application/json",
    )
    .await;
    assert_eq!(
        (s, v["model"]["info"]["status"].as_str()),
        (StatusCode::OK, Some("LOGGED_MODEL_READY"))
    );

    let (s, _) = call(
        &app,
        "PATCH",
        &format!("/api/2.0/mlflow/logged-models/{id}/tags"),
        Some(&json!({"tags": [{"key": "k", "value": "v"}]}).to_string()),
        "application/json",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/api/2.0/mlflow/logged-models/{id}/tags/k"),
        None,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(
        &app,
        "DELETE",
        &format!("/api/2.0/mlflow/logged-models/{id}/tags/k"),
        None,
        "",
    )
    .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("RESOURCE_DOES_NOT_EXIST"))
    );

    let (_, found) = post(
        &app,
        "logged-models/search",
        json!({"experiment_ids": ["0"], "filter": "name = 'model'"}),
    )
    .await;
    assert_eq!(found["models"][0]["info"]["model_id"], id.as_str());
    assert_eq!(
        found["models"][0]["data"]["params"],
        json!([{"key": "alpha", "value": "0.5"}])
    );

    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/api/2.0/mlflow/logged-models/{id}"),
        Some(&json!({"model_id": id}).to_string()),
        "application/json",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = get(&app, &format!("logged-models/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(&app, &format!("logged-models/{id}?allow_deleted=true")).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn log_batch_reads_lenient_numbers_and_names_bad_fields() {
    let app = app();
    let id = new_run(&app).await;
    let (s, v) = post(
        &app,
        "runs/log-batch",
        json!({"run_uuid": id, "metrics": [
            {"key": "a", "value": "1.5", "timestamp": "3", "step": "2"},
            {"key": "b", "value": "NaN", "timestamp": 4},
            {"key": "c", "value": 7, "timestamp": 5.0, "unknown_field": true}],
            "params": [{"key": "p", "value": "x"}], "tags": [{"key": "t"}]}),
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    let (_, run) = get(&app, &format!("runs/get?run_id={id}")).await;
    let metrics = &run["run"]["data"]["metrics"];
    assert_eq!(
        metrics,
        &json!([
            {"key": "a", "value": 1.5, "timestamp": 3, "step": 2},
            {"key": "b", "value": "NaN", "timestamp": 4, "step": 0},
            {"key": "c", "value": 7.0, "timestamp": 5, "step": 0}
        ])
    );
    assert_eq!(
        run["run"]["data"]["params"],
        json!([{"key": "p", "value": "x"}])
    );

    for (body, field) in [
        (
            json!({"run_id": id, "metrics": [{"key": "a", "value": "abc", "timestamp": 1}]}),
            "'metrics[0].value'",
        ),
        (
            json!({"run_id": id, "metrics": [{"key": "a", "value": 1.0}]}),
            "'metrics[0].timestamp'",
        ),
        (
            json!({"run_id": id, "params": [{"value": "v"}]}),
            "'params[0].key'",
        ),
        (
            json!({"run_id": id, "tags": [{"key": "k", "value": 1}]}),
            "'tags[0].value'",
        ),
        (json!({"metrics": []}), "'run_id'"),
    ] {
        let (s, v) = post(&app, "runs/log-batch", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error_code"], "INVALID_PARAMETER_VALUE");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
}

/// Logging to a run appends no event, so it wakes nobody waiting on the
/// change notifier (the events feed, webhooks, triggers); searching via
/// POST is a read and wakes nobody either; creating a run appends one and
/// wakes them.
#[tokio::test]
async fn only_changes_that_append_events_wake_the_waiters() {
    use futures::FutureExt as _;

    let store = sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store");
    let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
    let state = AppState::new(
        Arc::from(store),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    );
    let changes = state.changes.clone();
    let app = router(state);
    // Whether `call` rang the notifier while it ran.
    async fn wakes(changes: &tokio::sync::Notify, call: impl Future<Output = Value>) -> Value {
        let woken = changes.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let mut answer = call.await;
        answer["woken"] = woken.now_or_never().is_some().into();
        answer
    }
    let ok = |app: &Router, path: &'static str, body: Value| {
        let app = app.clone();
        async move {
            let body = body.to_string();
            let json = [("content-type", "application/json")];
            let (status, answer) = support::send(&app, "POST", path, Some(&body), &json).await;
            assert_eq!(status, StatusCode::OK, "{path}: {answer}");
            json!({"answer": answer})
        }
    };
    let created = wakes(
        &changes,
        ok(
            &app,
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": "0"}),
        ),
    )
    .await;
    assert_eq!(created["woken"], true);
    let run_id = created["answer"]["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let metric = json!({"run_id": run_id, "key": "loss", "value": 1.0, "timestamp": 1, "step": 0});
    let logged = wakes(
        &changes,
        ok(&app, "/api/2.0/mlflow/runs/log-metric", metric),
    )
    .await;
    assert_eq!(logged["woken"], false);
    let tag = json!({"run_id": run_id, "key": "team", "value": "red"});
    let tagged = wakes(&changes, ok(&app, "/ajax-api/2.0/mlflow/runs/set-tag", tag)).await;
    assert_eq!(tagged["woken"], false);
    let search = json!({"experiment_ids": ["0"]});
    let searched = wakes(&changes, ok(&app, "/api/2.0/mlflow/runs/search", search)).await;
    assert_eq!(searched["woken"], false);
    let ended = json!({"run_id": run_id, "status": "FINISHED"});
    let updated = wakes(&changes, ok(&app, "/api/2.0/mlflow/runs/update", ended)).await;
    assert_eq!(updated["woken"], true);
}
