//! The MLflow model registry REST surface in-process: exact JSON of models
//! and versions, string versions, bodies on DELETE, GET searches, errors.
//! (tests/python/test_registry.py drives the same RPCs with the real client.)

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

/// One request under `/api/2.0/mlflow/`; a body is sent as JSON.
async fn call(app: &Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let uri = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/api/2.0/mlflow/{path}")
    };
    let body = body.map(|b| b.to_string());
    support::send(app, method, &uri, body.as_deref(), &[]).await
}

async fn ok(app: &Router, method: &str, path: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, method, path, body).await;
    assert_eq!(s, StatusCode::OK, "{method} {path}: {v}");
    v
}

async fn get(app: &Router, path_and_query: &str) -> (StatusCode, Value) {
    call(app, "GET", path_and_query, None).await
}

fn assert_error(got: (StatusCode, Value), status: StatusCode, code: &str, message: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error_code"], code, "{}", got.1);
    assert_eq!(got.1["message"], message, "{}", got.1);
}

/// A finished logged model in a fresh run, as `log_model` leaves it:
/// (run_id, model_id, artifact_uri).
async fn logged_model(app: &Router) -> (String, String, String) {
    let run = ok(
        app,
        "POST",
        "runs/create",
        Some(json!({"experiment_id": "0", "start_time": 1})),
    )
    .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let model = ok(
        app,
        "POST",
        "logged-models",
        Some(json!({"experiment_id": "0", "name": "model", "source_run_id": run_id})),
    )
    .await;
    let info = &model["model"]["info"];
    let model_id = info["model_id"].as_str().unwrap().to_string();
    ok(
        app,
        "PATCH",
        &format!("logged-models/{model_id}"),
        Some(json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"})),
    )
    .await;
    (
        run_id,
        model_id,
        info["artifact_uri"].as_str().unwrap().into(),
    )
}

/// Registers a version of `name` from a new logged model; returns the answer's
/// `model_version` and the logged model's (run_id, model_id, artifact_uri).
async fn register(app: &Router, name: &str) -> (Value, (String, String, String)) {
    let lm = logged_model(app).await;
    let v = ok(
        app,
        "POST",
        "model-versions/create",
        Some(json!({"name": name, "source": format!("models:/{}", lm.1), "model_id": lm.1})),
    )
    .await;
    (v["model_version"].clone(), lm)
}

/// The message without its timestamps, for comparing whole objects.
fn untimed(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("creation_timestamp");
        o.remove("last_updated_timestamp");
        for key in ["latest_versions"] {
            if let Some(Value::Array(items)) = o.get_mut(key) {
                for item in items.iter_mut() {
                    *item = untimed(item.take());
                }
            }
        }
    }
    v
}

#[tokio::test]
async fn registered_models_write_mlflow_json_and_refuse_duplicates() {
    let app = app();
    let created = ok(
        &app,
        "POST",
        "registered-models/create",
        Some(json!({"name": "rm", "tags": [{"key": "a", "value": "b"}], "description": "d"})),
    )
    .await;
    let rm = &created["registered_model"];
    assert!(rm["creation_timestamp"].is_i64(), "{rm}");
    assert_eq!(rm["creation_timestamp"], rm["last_updated_timestamp"]);
    assert_eq!(
        untimed(rm.clone()),
        json!({"name": "rm", "description": "d", "tags": [{"key": "a", "value": "b"}]})
    );

    let bare = ok(
        &app,
        "POST",
        "registered-models/create",
        Some(json!({"name": "bare"})),
    )
    .await;
    assert_eq!(
        untimed(bare["registered_model"].clone()),
        json!({"name": "bare"}),
        "an unset description is omitted"
    );

    assert_error(
        call(
            &app,
            "POST",
            "registered-models/create",
            Some(json!({"name": "rm"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "RESOURCE_ALREADY_EXISTS",
        "Registered Model (name=rm) already exists.",
    );
    assert_error(
        get(&app, "registered-models/get?name=nope").await,
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        "Registered Model with name=nope not found",
    );
    assert_error(
        call(
            &app,
            "POST",
            "registered-models/create",
            Some(json!({"name": ""})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'name'. See the API docs for more information \
         about request parameters.",
    );

    let updated = ok(
        &app,
        "PATCH",
        "registered-models/update",
        Some(json!({"name": "rm", "description": "dd"})),
    )
    .await;
    assert_eq!(updated["registered_model"]["description"], "dd");
    ok(
        &app,
        "POST",
        "registered-models/set-tag",
        Some(json!({"name": "rm", "key": "k", "value": "v"})),
    )
    .await;
    ok(
        &app,
        "DELETE",
        "registered-models/delete-tag",
        Some(json!({"name": "rm", "key": "a"})),
    )
    .await;
    let (_, got) = get(&app, "registered-models/get?name=rm").await;
    assert_eq!(
        got["registered_model"]["tags"],
        json!([{"key": "k", "value": "v"}])
    );

    ok(
        &app,
        "DELETE",
        "registered-models/delete",
        Some(json!({"name": "rm"})),
    )
    .await;
    assert_eq!(
        get(&app, "registered-models/get?name=rm").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn versions_carry_string_numbers_and_mlflow_fields_only() {
    let app = app();
    ok(
        &app,
        "POST",
        "registered-models/create",
        Some(json!({"name": "m"})),
    )
    .await;
    let (v1, (run_id, model_id, artifact_uri)) = register(&app, "m").await;
    assert!(v1["creation_timestamp"].is_i64(), "{v1}");
    assert_eq!(
        untimed(v1),
        json!({
            "name": "m", "version": "1", "current_stage": "None", "description": "",
            "source": format!("models:/{model_id}"), "run_id": run_id,
            "status": "READY", "run_link": ""
        }),
        "no model_id echo, no approval field"
    );
    let (v2, _) = register(&app, "m").await;
    assert_eq!(v2["version"], "2");

    let (_, got) = get(&app, "model-versions/get?name=m&version=1").await;
    assert_eq!(got["model_version"]["version"], "1");
    let (_, uri) = get(&app, "model-versions/get-download-uri?name=m&version=1").await;
    assert_eq!(uri, json!({"artifact_uri": artifact_uri}));

    let (_, lm) = get(&app, &format!("logged-models/{model_id}")).await;
    let tags = lm["model"]["info"]["tags"].as_array().unwrap().clone();
    assert!(
        tags.contains(
            &json!({"key": "mlflow.modelVersions", "value": "[{\"name\": \"m\", \"version\": 1}]"})
        ),
        "{tags:?}"
    );

    assert_error(
        get(&app, "model-versions/get?name=m&version=x").await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
        "Parameter 'version' must be an integer, got 'x'.",
    );
    assert_error(
        get(&app, "model-versions/get?name=m&version=99").await,
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        "Model Version (name=m, version=99) not found",
    );

    let updated = ok(
        &app,
        "PATCH",
        "model-versions/update",
        Some(json!({"name": "m", "version": "1", "description": "new"})),
    )
    .await;
    assert_eq!(updated["model_version"]["description"], "new");
    ok(
        &app,
        "POST",
        "model-versions/set-tag",
        Some(json!({"name": "m", "version": "1", "key": "k", "value": "v"})),
    )
    .await;
    let (_, got) = get(&app, "model-versions/get?name=m&version=1").await;
    assert_eq!(
        got["model_version"]["tags"],
        json!([{"key": "k", "value": "v"}])
    );
    ok(
        &app,
        "DELETE",
        "model-versions/delete-tag",
        Some(json!({"name": "m", "version": "1", "key": "k"})),
    )
    .await;
    let (_, got) = get(&app, "model-versions/get?name=m&version=1").await;
    assert!(got["model_version"].get("tags").is_none(), "{got}");

    ok(
        &app,
        "DELETE",
        "model-versions/delete",
        Some(json!({"name": "m", "version": "2"})),
    )
    .await;
    assert_eq!(
        get(&app, "model-versions/get?name=m&version=2").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn stages_latest_versions_and_aliases() {
    let app = app();
    ok(
        &app,
        "POST",
        "registered-models/create",
        Some(json!({"name": "m"})),
    )
    .await;
    register(&app, "m").await;
    register(&app, "m").await;

    let moved = ok(
        &app,
        "POST",
        "model-versions/transition-stage",
        Some(json!({"name": "m", "version": "1", "stage": "production",
                    "archive_existing_versions": true})),
    )
    .await;
    assert_eq!(moved["model_version"]["current_stage"], "Production");
    let moved = ok(
        &app,
        "POST",
        "model-versions/transition-stage",
        Some(json!({"name": "m", "version": "2", "stage": "Production",
                    "archive_existing_versions": true})),
    )
    .await;
    assert_eq!(moved["model_version"]["current_stage"], "Production");
    let (_, v1) = get(&app, "model-versions/get?name=m&version=1").await;
    assert_eq!(v1["model_version"]["current_stage"], "Archived");
    assert_error(
        call(
            &app,
            "POST",
            "model-versions/transition-stage",
            Some(json!({"name": "m", "version": "1", "stage": "Prod",
                        "archive_existing_versions": false})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
        "Invalid Model Version stage: Prod. Value must be one of None, Staging, Production, \
         Archived.",
    );

    let latest = ok(
        &app,
        "POST",
        "registered-models/get-latest-versions",
        Some(json!({"name": "m", "stages": ["Production"]})),
    )
    .await;
    let versions = latest["model_versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["version"], "2");
    let (s, all) = get(&app, "registered-models/get-latest-versions?name=m").await;
    assert_eq!(s, StatusCode::OK);
    let mut stages: Vec<&str> = all["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["current_stage"].as_str().unwrap())
        .collect();
    stages.sort_unstable();
    assert_eq!(stages, ["Archived", "Production"]);

    ok(
        &app,
        "POST",
        "registered-models/alias",
        Some(json!({"name": "m", "alias": "champion", "version": "1"})),
    )
    .await;
    let (_, by_alias) = get(&app, "registered-models/alias?name=m&alias=champion").await;
    assert_eq!(by_alias["model_version"]["version"], "1");
    assert_eq!(by_alias["model_version"]["aliases"], json!(["champion"]));
    let (_, rm) = get(&app, "registered-models/get?name=m").await;
    assert_eq!(
        rm["registered_model"]["aliases"],
        json!([{"alias": "champion", "version": "1"}])
    );
    for (alias, message) in [
        (
            "latest",
            "'latest' alias name (case insensitive) is reserved.",
        ),
        ("v1", "Version alias name 'v1' is reserved."),
    ] {
        assert_error(
            call(
                &app,
                "POST",
                "registered-models/alias",
                Some(json!({"name": "m", "alias": alias, "version": "1"})),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            message,
        );
    }
    let (s, latest) = get(&app, "registered-models/alias?name=m&alias=LATEST").await;
    assert_eq!(s, StatusCode::OK, "{latest}");
    assert_eq!(latest["model_version"]["version"], "2");

    ok(
        &app,
        "DELETE",
        "registered-models/alias",
        Some(json!({"name": "m", "alias": "champion"})),
    )
    .await;
    let (s, _) = get(&app, "registered-models/alias?name=m&alias=champion").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn searches_are_gets_with_paging_and_mlflow_limits() {
    let app = app();
    for name in ["rm-b", "rm-a", "other"] {
        ok(
            &app,
            "POST",
            "registered-models/create",
            Some(json!({"name": name})),
        )
        .await;
    }
    register(&app, "rm-a").await;
    register(&app, "rm-a").await;

    // What MlflowClient.search_registered_models sends.
    let (s, page) = get(
        &app,
        "registered-models/search?filter=name+LIKE+%27rm-%25%27+AND+tag.%60mlflow.prompt.is_prompt%60\
         +%21%3D+%27true%27&max_results=1&order_by=name+ASC",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["registered_models"][0]["name"], "rm-a");
    assert_eq!(
        page["registered_models"][0]["latest_versions"][0]["version"],
        "2"
    );
    let token = page["next_page_token"].as_str().unwrap();
    let (_, rest) = get(
        &app,
        &format!(
            "registered-models/search?filter=name+LIKE+%27rm-%25%27&max_results=1\
             &order_by=name+ASC&page_token={token}"
        ),
    )
    .await;
    assert_eq!(rest["registered_models"][0]["name"], "rm-b");
    assert!(rest.get("next_page_token").is_none(), "{rest}");

    let (_, none) = get(&app, "registered-models/search?filter=name+%3D+%27zzz%27").await;
    assert_eq!(none, json!({}));
    assert_error(
        get(&app, "registered-models/search?max_results=1001").await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
        "Invalid value \"1001\" for parameter 'max_results' supplied:  Hint: Value was of type \
         'str'. See the API docs for more information about request parameters.",
    );
    assert_eq!(
        get(&app, "model-versions/search?max_results=200001")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let (_, versions) = get(
        &app,
        "model-versions/search?filter=name+%3D+%27rm-a%27&order_by=version_number+DESC",
    )
    .await;
    let numbers: Vec<&str> = versions["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["2", "1"]);
    let (s, _) = get(&app, "model-versions/search?filter=bogus+%3D+1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rename_moves_versions_and_the_ajax_alias_serves_the_same_rpcs() {
    let app = app();
    ok(
        &app,
        "POST",
        "/ajax-api/2.0/mlflow/registered-models/create",
        Some(json!({"name": "old"})),
    )
    .await;
    register(&app, "old").await;
    let renamed = ok(
        &app,
        "POST",
        "registered-models/rename",
        Some(json!({"name": "old", "new_name": "new"})),
    )
    .await;
    assert_eq!(renamed["registered_model"]["name"], "new");
    let (s, v) = get(&app, "model-versions/get?name=new&version=1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["model_version"]["name"], "new");
    assert_eq!(
        get(&app, "registered-models/get?name=old").await.0,
        StatusCode::NOT_FOUND
    );
    let (s, _) = get(&app, "/ajax-api/2.0/mlflow/registered-models/get?name=new").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn create_version_reads_sextants_approval_field_without_echoing_it() {
    let app = app();
    ok(
        &app,
        "POST",
        "registered-models/create",
        Some(json!({"name": "m"})),
    )
    .await;
    let (_, model_id, _) = logged_model(&app).await;
    let v = ok(
        &app,
        "POST",
        "model-versions/create",
        Some(json!({"name": "m", "source": format!("models:/{model_id}"),
                    "model_id": model_id, "approval_status": "approved",
                    "some_future_field": 1})),
    )
    .await;
    assert!(v["model_version"].get("approval_status").is_none(), "{v}");
    let (s, err) = call(
        &app,
        "POST",
        "model-versions/create",
        Some(json!({"name": "m", "source": format!("models:/{model_id}"),
                    "model_id": model_id, "approval_status": "maybe"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn sources_outside_the_named_artifacts_are_refused() {
    let app = app();
    ok(
        &app,
        "POST",
        "registered-models/create",
        Some(json!({"name": "m"})),
    )
    .await;
    let (run_id, _, _) = logged_model(&app).await;
    for source in [
        "/etc/passwd".to_string(),
        "file:///etc/passwd".to_string(),
        format!("runs:/{run_id}/../../../etc"),
        "mlflow-artifacts:/0/../../etc/passwd".to_string(),
    ] {
        let (s, err) = call(
            &app,
            "POST",
            "model-versions/create",
            Some(json!({"name": "m", "source": source, "run_id": run_id})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{source}: {err}");
        assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE", "{source}");
    }
}
