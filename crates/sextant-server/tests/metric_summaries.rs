//! Per-run metric ranges over HTTP: `/api/v1/runs/metric-summaries` through
//! the typed client (values, limits, refusals, and with authentication a
//! 403 for a run the caller cannot read), and MLflow's runs search with
//! Sextant's `min(metrics.…)` / `max(metrics.…)` in `order_by` and `filter`.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_core::auth::Permission;
use sextant_core::clock::ManualClock;
use sextant_server::auth::{Auth, AuthSettings, secrets};
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::MetaStore;
use support::{as_user, call, refused, serve};

fn store() -> Arc<dyn MetaStore> {
    Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap())
}

fn open_app(store: Arc<dyn MetaStore>) -> Router {
    let artifacts = ArtifactStore::from_uri("memory://").unwrap();
    router(AppState::new(
        store,
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    ))
}

/// Creates a run named `name` in `exp` and logs `values` of `loss` at steps 0, 1, ….
async fn logged(app: &Router, exp: &str, name: &str, values: &[Value]) -> String {
    let (status, run) = call(
        app,
        "POST",
        "/api/2.0/mlflow/runs/create",
        &json!({"experiment_id": exp, "run_name": name, "start_time": 1}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    if values.is_empty() {
        return id;
    }
    let metrics: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"key": "loss", "value": v, "timestamp": 5, "step": i}))
        .collect();
    let (status, body) = call(
        app,
        "POST",
        "/api/2.0/mlflow/runs/log-batch",
        &json!({"run_id": id, "metrics": metrics}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

async fn search(app: &Router, order: &str, filter: &str) -> (StatusCode, Value) {
    call(
        app,
        "POST",
        "/api/2.0/mlflow/runs/search",
        &json!({"experiment_ids": ["0"], "order_by": [order], "filter": filter}).to_string(),
    )
    .await
}

fn names(answer: &Value) -> Vec<&str> {
    answer["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .map(|r| r["info"]["run_name"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_give_last_min_and_max_of_the_runs_named() {
    let app = open_app(store());
    let served = serve(app.clone()).await;
    let a = logged(
        &app,
        "0",
        "a",
        &[json!(3.0), json!("NaN"), json!(-1.5), json!(2.0)],
    )
    .await;
    let b = logged(&app, "0", "b", &[json!("NaN")]).await;
    let c = logged(&app, "0", "c", &[json!("-Infinity"), json!("Infinity")]).await;
    let client = &served.client;

    let got = client
        .metric_summaries(&[&c, &a, &b], &["loss"])
        .await
        .unwrap();
    let by_run = |id: &str| got.iter().find(|m| m.run_id == id).unwrap().clone();
    let ra = by_run(&a);
    assert_eq!(
        (ra.last, ra.min, ra.max, ra.step, ra.timestamp),
        (2.0, -1.5, 3.0, 3, 5)
    );
    let rb = by_run(&b);
    assert!(
        rb.last.is_nan() && rb.min.is_nan() && rb.max.is_nan(),
        "{rb:?}"
    );
    let rc = by_run(&c);
    assert_eq!(
        (rc.min, rc.max, rc.last),
        (f64::NEG_INFINITY, f64::INFINITY, f64::INFINITY)
    );
    // Every key when none is named; a key a run lacks has no entry.
    assert_eq!(client.metric_summaries(&[&a], &[]).await.unwrap().len(), 1);
    assert!(
        client
            .metric_summaries(&[&a], &["acc"])
            .await
            .unwrap()
            .is_empty()
    );
    // On the wire, doubles MLflow's way.
    let (status, body) = call(
        &app,
        "GET",
        &format!("/api/v1/runs/metric-summaries?run_id={b}&run_id={c}"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["summaries"].as_array().unwrap();
    let row_b = rows.iter().find(|r| r["run_id"] == b.as_str()).unwrap();
    assert_eq!(
        (&row_b["min"], &row_b["last"]),
        (&json!("NaN"), &json!("NaN"))
    );
    let row_c = rows.iter().find(|r| r["run_id"] == c.as_str()).unwrap();
    assert_eq!(
        (&row_c["min"], &row_c["max"]),
        (&json!("-Infinity"), &json!("Infinity"))
    );

    let no = refused(client.metric_summaries(&["nope"], &[]).await);
    assert_eq!(
        (no.status, no.code.as_str()),
        (404, "RESOURCE_DOES_NOT_EXIST"),
        "{no:?}"
    );
    let ids: Vec<String> = (0..101).map(|i| format!("run{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let many = refused(client.metric_summaries(&refs, &[]).await);
    assert_eq!(many.status, 400);
    assert!(
        many.message.contains("limit of 100 run_id"),
        "{}",
        many.message
    );
    let keys: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let many = refused(client.metric_summaries(&[&a], &key_refs).await);
    assert!(
        many.message.contains("limit of 100 key"),
        "{}",
        many.message
    );
    let none = refused(client.metric_summaries(&[], &["loss"]).await);
    assert!(none.message.contains("run_id"), "{}", none.message);
    let (status, body) = call(
        &app,
        "GET",
        &format!("/api/v1/runs/metric-summaries?run_id={a}&keys=x"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("'keys'"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_search_orders_and_filters_by_min_and_max() {
    let app = open_app(store());
    logged(&app, "0", "a", &[json!(5.0), json!(1.0), json!(3.0)]).await;
    logged(&app, "0", "b", &[json!(0.0), json!(9.0), json!(2.0)]).await;
    logged(&app, "0", "c", &[json!(4.0)]).await;
    logged(&app, "0", "nan", &[json!("NaN")]).await;
    logged(&app, "0", "none", &[]).await;
    for (order, filter, want) in [
        (
            "min(metrics.loss) ASC",
            "",
            vec!["b", "a", "c", "nan", "none"],
        ),
        (
            "min(metrics.loss) DESC",
            "",
            vec!["c", "a", "b", "nan", "none"],
        ),
        (
            "max(metrics.loss) ASC",
            "",
            vec!["c", "a", "b", "nan", "none"],
        ),
        (
            "max(metrics.loss) DESC",
            "",
            vec!["b", "a", "c", "nan", "none"],
        ),
        ("metrics.loss DESC", "", vec!["c", "a", "b", "nan", "none"]),
        (
            "max(metrics.loss) ASC",
            "min(metrics.loss) < 1.5",
            vec!["a", "b"],
        ),
        (
            "min(metrics.loss) ASC",
            "max(metrics.loss) >= 5 and metrics.loss > 2",
            vec!["a"],
        ),
    ] {
        let (status, body) = search(&app, order, filter).await;
        assert_eq!(status, StatusCode::OK, "{order} {filter}: {body}");
        assert_eq!(names(&body), want, "{order} where {filter}");
    }
    // Grammar mistakes are 400s that quote the bad token and its position.
    let (status, body) = search(&app, "avg(metrics.loss) DESC", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Invalid function 'avg' at position 1"),
        "{body}"
    );
    let (status, body) = search(&app, "metrics.loss", "min(params.lr) = 'x'").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("min() takes a metric"),
        "{body}"
    );
}

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const CAROL: (&str, &str) = ("carol", "carol-password-1");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authentication_every_run_named_must_be_readable() {
    let store = store();
    store
        .auth()
        .create_user(ADMIN.0, &secrets::hash_password(ADMIN.1), true)
        .unwrap();
    let settings = AuthSettings {
        default_permission: Permission::NoPermissions,
        ..AuthSettings::on()
    };
    let artifacts = ArtifactStore::from_uri("memory://").unwrap();
    let app = router(
        AppState::new(store, Arc::new(artifacts), SecurityConfig::loopback())
            .with_auth(Auth::new(settings, ManualClock::now())),
    );
    let admin = |method: &'static str, uri: String, body: Value| {
        let app = app.clone();
        async move {
            let a = as_user(&app, ADMIN, method, &uri, Some(&body.to_string())).await;
            assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.text);
            a.json
        }
    };
    admin(
        "POST",
        "/api/2.0/mlflow/users/create".into(),
        json!({"username": CAROL.0, "password": CAROL.1}),
    )
    .await;
    let mut runs = Vec::new();
    for name in ["open", "closed"] {
        let exp = admin(
            "POST",
            "/api/2.0/mlflow/experiments/create".into(),
            json!({"name": name}),
        )
        .await["experiment_id"]
            .as_str()
            .unwrap()
            .to_string();
        let run = admin(
            "POST",
            "/api/2.0/mlflow/runs/create".into(),
            json!({"experiment_id": exp, "start_time": 1}),
        )
        .await["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        admin(
            "POST",
            "/api/2.0/mlflow/runs/log-metric".into(),
            json!({"run_id": run, "key": "loss", "value": 1.0, "timestamp": 1, "step": 0}),
        )
        .await;
        runs.push((exp, run));
    }
    admin(
        "POST",
        "/api/3.0/mlflow/users/permissions/grant".into(),
        json!({"username": CAROL.0, "resource_type": "experiment", "resource_id": runs[0].0, "permission": "READ"}),
    )
    .await;
    let uri = |ids: &[&str]| {
        let q: Vec<String> = ids.iter().map(|id| format!("run_id={id}")).collect();
        format!("/api/v1/runs/metric-summaries?{}", q.join("&"))
    };
    let readable = as_user(&app, CAROL, "GET", &uri(&[&runs[0].1]), None).await;
    assert_eq!(readable.status, StatusCode::OK, "{}", readable.text);
    assert_eq!(readable.json["summaries"][0]["min"], 1.0);
    // Whichever place the unreadable run takes in the query.
    for both in [[&runs[0].1, &runs[1].1], [&runs[1].1, &runs[0].1]] {
        let a = as_user(&app, CAROL, "GET", &uri(&[both[0], both[1]]), None).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    }
    let hidden = as_user(&app, CAROL, "GET", &uri(&[&runs[1].1]), None).await;
    assert_eq!(hidden.status, StatusCode::FORBIDDEN, "{}", hidden.text);
    let admins = as_user(&app, ADMIN, "GET", &uri(&[&runs[0].1, &runs[1].1]), None).await;
    assert_eq!(admins.status, StatusCode::OK, "{}", admins.text);
    assert_eq!(admins.json["summaries"].as_array().unwrap().len(), 2);
}
