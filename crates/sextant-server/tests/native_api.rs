//! The native API (`/api/v1/…`) in-process: approvals, aliases, the events
//! feed with its long-poll, error bodies, and the OpenAPI document against
//! the routes actually served.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_core::entities::NewRun;
use sextant_core::registry::NewModelVersion;
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::MetaStore;

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

impl Fixture {
    /// Registers `name` with `versions` versions, all from one run.
    fn model(&self, name: &str, versions: usize) {
        let run = self
            .store
            .create_run(&NewRun {
                experiment_id: 0,
                user_id: "tester".into(),
                run_name: None,
                start_time: Some(1),
                tags: vec![],
            })
            .unwrap();
        self.store
            .create_registered_model(name, Some("a test model"), &[])
            .unwrap();
        for _ in 0..versions {
            self.store
                .create_model_version(&NewModelVersion {
                    name: name.into(),
                    source: format!("{}/model", run.info.artifact_uri),
                    run_id: Some(run.info.run_id.clone()),
                    ..Default::default()
                })
                .unwrap();
        }
    }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    support::send(app, "GET", uri, None, &[]).await
}

async fn send(app: &Router, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    support::send(app, method, uri, Some(&body.to_string()), &[]).await
}

/// Asserts a JSON error with this status and code.
fn assert_error(got: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error_code"], code, "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

#[tokio::test]
async fn approval_is_recorded_with_actor_time_and_comment() {
    let f = fixture();
    f.model("fraud", 2);
    let (s, v) = get(&f.app, "/api/v1/models/fraud/versions/2").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["version"], 2);
    assert_eq!(v["approval"]["status"], "pending");
    assert!(v["run_id"].is_string());
    assert_eq!(v["stage"], "None");

    let (s, v) = support::send(
        &f.app,
        "POST",
        "/api/v1/models/fraud/versions/2/approval",
        Some(r#"{"status": "approved", "comment": "auc 0.93 on holdout"}"#),
        &[("x-sextant-actor", "alice")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["approval"]["status"], "approved");
    assert_eq!(v["approval"]["actor"], "alice");
    assert_eq!(v["approval"]["comment"], "auc 0.93 on holdout");
    assert!(v["approval"]["time"].as_i64().is_some_and(|t| t > 0), "{v}");
    assert!(
        v["approval"]["time_rfc3339"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // The body's actor wins over the header; without either it is anonymous.
    let (s, v) = support::send(
        &f.app,
        "POST",
        "/api/v1/models/fraud/versions/1/approval",
        Some(r#"{"status": "rejected", "actor": "bob"}"#),
        &[("x-sextant-actor", "alice")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["approval"]["actor"], "bob");
    // A decision stands: another one (or a reset) is a 409 naming it, and
    // changes nothing, unless forced.
    for status in ["approved", "Pending"] {
        let got = send(
            &f.app,
            "POST",
            "/api/v1/models/fraud/versions/1/approval",
            json!({"status": status, "actor": "carol"}),
        )
        .await;
        assert!(
            got.1["message"]
                .as_str()
                .unwrap()
                .contains("already rejected by bob"),
            "{}",
            got.1
        );
        assert_error(got, StatusCode::CONFLICT, "RESOURCE_CONFLICT");
    }
    let (_, v) = get(&f.app, "/api/v1/models/fraud/versions/1").await;
    assert_eq!(v["approval"]["status"], "rejected");
    assert_eq!(v["approval"]["actor"], "bob");
    // Forced back to pending: nobody decided, at no time.
    let (s, v) = send(
        &f.app,
        "POST",
        "/api/v1/models/fraud/versions/1/approval",
        json!({"status": "Pending", "force": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["approval"]["status"], "pending");
    assert!(v["approval"]["actor"].is_null(), "{v}");
    assert!(v["approval"]["time"].is_null(), "{v}");
    assert!(v["approval"]["time_rfc3339"].is_null(), "{v}");

    let (s, m) = get(&f.app, "/api/v1/models/fraud").await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["name"], "fraud");
    assert_eq!(m["description"], "a test model");
    let versions = m["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2, "newest first");
    assert_eq!(versions[0]["approval"]["status"], "approved");
    assert_eq!(versions[1]["approval"]["status"], "pending");

    let (_, e) = get(&f.app, "/api/v1/events?kinds=model_version.*").await;
    let kinds: Vec<&str> = e["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"model_version.approved"), "{kinds:?}");
    assert!(kinds.contains(&"model_version.rejected"), "{kinds:?}");
    let approved = e["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "model_version.approved")
        .unwrap();
    assert_eq!(approved["actor"], "alice");
    assert!(approved["payload"].is_object());
}

#[tokio::test]
async fn models_list_pages_filters_and_shows_aliases() {
    let f = fixture();
    f.model("alpha", 1);
    f.model("beta", 3);
    f.store
        .set_registered_model_alias("beta", "champion", 2)
        .unwrap();

    let (s, p) = get(&f.app, "/api/v1/models?max_results=1").await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["models"].as_array().unwrap().len(), 1);
    assert_eq!(p["models"][0]["name"], "alpha");
    let token = p["next_page_token"].as_str().expect("a second page");
    let (_, p) = get(
        &f.app,
        &format!("/api/v1/models?max_results=1&page_token={token}"),
    )
    .await;
    assert_eq!(p["models"][0]["name"], "beta");
    assert_eq!(p["models"][0]["aliases"], json!({"champion": 2}));
    assert_eq!(p["models"][0]["latest_versions"][0]["version"], 3);
    assert!(p["next_page_token"].is_null(), "{p}");

    let (_, p) = get(&f.app, "/api/v1/models?filter=name%20%3D%20%27beta%27").await;
    let names: Vec<&Value> = p["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["name"])
        .collect();
    assert_eq!(names, [&json!("beta")]);
}

#[tokio::test]
async fn aliases_are_set_moved_and_deleted() {
    let f = fixture();
    f.model("fraud", 2);
    let (s, v) = send(
        &f.app,
        "PUT",
        "/api/v1/models/fraud/aliases/champion",
        json!({"version": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"name": "fraud", "alias": "champion", "version": 1})
    );
    send(
        &f.app,
        "PUT",
        "/api/v1/models/fraud/aliases/champion",
        json!({"version": 2}),
    )
    .await;
    let (_, m) = get(&f.app, "/api/v1/models/fraud").await;
    assert_eq!(m["aliases"], json!({"champion": 2}));
    assert_eq!(m["versions"][0]["aliases"], json!(["champion"]));
    assert_eq!(m["versions"][1]["aliases"], json!([]));

    let (s, _) = support::send(
        &f.app,
        "DELETE",
        "/api/v1/models/fraud/aliases/champion",
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, m) = get(&f.app, "/api/v1/models/fraud").await;
    assert_eq!(m["aliases"], json!({}));

    assert_error(
        send(
            &f.app,
            "PUT",
            "/api/v1/models/fraud/aliases/latest",
            json!({"version": 1}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    assert_error(
        send(
            &f.app,
            "PUT",
            "/api/v1/models/fraud/aliases/champion",
            json!({"version": 9}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
    );
    assert_error(
        send(
            &f.app,
            "PUT",
            "/api/v1/models/fraud/aliases/champion",
            json!({"version": "one"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
}

#[tokio::test]
async fn client_mistakes_are_json_4xx() {
    let f = fixture();
    f.model("fraud", 1);
    let bad = StatusCode::BAD_REQUEST;
    let invalid = "INVALID_PARAMETER_VALUE";
    let approval = "/api/v1/models/fraud/versions/1/approval";
    for (got, status, code) in [
        (
            get(&f.app, "/api/v1/models/nope").await,
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            get(&f.app, "/api/v1/models/fraud/versions/7").await,
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            get(&f.app, "/api/v1/models/fraud/versions/abc").await,
            bad,
            invalid,
        ),
        (
            get(&f.app, "/api/v1/models/fraud/versions/0").await,
            bad,
            invalid,
        ),
        (
            get(&f.app, "/api/v1/models?max_results=0").await,
            bad,
            invalid,
        ),
        (
            get(&f.app, "/api/v1/models?max_results=many").await,
            bad,
            invalid,
        ),
        (
            get(&f.app, "/api/v1/models?filter=name%20%3D%3D%3D").await,
            bad,
            invalid,
        ),
        (
            get(&f.app, "/api/v1/models?page_token=garbage").await,
            bad,
            invalid,
        ),
        (
            send(&f.app, "POST", approval, json!({"status": "maybe"})).await,
            bad,
            invalid,
        ),
        (
            send(&f.app, "POST", approval, json!({"comment": "no status"})).await,
            bad,
            invalid,
        ),
        (
            send(
                &f.app,
                "POST",
                approval,
                json!({"status": "approved", "colour": 1}),
            )
            .await,
            bad,
            invalid,
        ),
        (
            support::send(&f.app, "POST", approval, Some("{not json"), &[]).await,
            bad,
            invalid,
        ),
        (
            send(
                &f.app,
                "POST",
                "/api/v1/models/nope/versions/1/approval",
                json!({"status": "approved"}),
            )
            .await,
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (get(&f.app, "/api/v1/events?wait=61").await, bad, invalid),
        (get(&f.app, "/api/v1/events?limit=0").await, bad, invalid),
        (get(&f.app, "/api/v1/events?after=-1").await, bad, invalid),
        (
            get(&f.app, "/api/v1/events?after=yesterday").await,
            bad,
            invalid,
        ),
        (
            get(&f.app, "/api/v1/events?kinds=Run.Created").await,
            bad,
            invalid,
        ),
        (
            get(&f.app, "/api/v1/nothing-here").await,
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
        ),
    ] {
        assert_error(got, status, code);
    }
}

/// The ids of a page of events.
fn ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn events_page_by_cursor_in_order() {
    let f = fixture();
    f.model("fraud", 3);
    let (_, all) = get(&f.app, "/api/v1/events?limit=1000").await;
    let every = ids(&all);
    assert!(every.len() >= 5, "{all}");
    assert!(every.windows(2).all(|w| w[0] < w[1]), "{every:?}");
    assert_eq!(all["cursor"], *every.last().unwrap());
    assert_eq!(all["has_more"], false);

    let mut paged: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let (s, p) = get(&f.app, &format!("/api/v1/events?after={after}&limit=2")).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let page = ids(&p);
        assert!(page.len() <= 2);
        paged.extend(&page);
        after = p["cursor"].as_i64().unwrap();
        if p["has_more"] == false {
            break;
        }
    }
    assert_eq!(paged, every);

    let (_, p) = get(&f.app, "/api/v1/events?after=latest").await;
    assert_eq!(ids(&p), Vec::<i64>::new());
    assert_eq!(p["cursor"], *every.last().unwrap());

    let (_, p) = get(&f.app, "/api/v1/events?kinds=registered_model.*").await;
    let kinds: Vec<&str> = p["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| k.starts_with("registered_model.")),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_long_poll_returns_when_a_change_is_made() {
    let f = fixture();
    f.model("fraud", 1);
    let (_, p) = get(&f.app, "/api/v1/events?after=latest").await;
    let cursor = p["cursor"].as_i64().unwrap();

    let app = f.app.clone();
    let poll = tokio::spawn(async move {
        get(
            &app,
            &format!("/api/v1/events?after={cursor}&wait=60&kinds=model_version.approved"),
        )
        .await
    });
    let (s, _) = send(
        &f.app,
        "POST",
        "/api/v1/models/fraud/versions/1/approval",
        json!({"status": "approved"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, p) = poll.await.unwrap();
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["events"][0]["kind"], "model_version.approved", "{p}");
    assert_eq!(p["events"][0]["subject"], "model_version:fraud/1", "{p}");
    assert!(p["cursor"].as_i64().unwrap() > cursor);
}

#[tokio::test]
async fn a_long_poll_without_changes_ends_empty_at_its_deadline() {
    let f = fixture();
    let (s, p) = get(&f.app, "/api/v1/events?after=latest&wait=1").await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(ids(&p), Vec::<i64>::new());
}

#[tokio::test]
async fn openapi_document_matches_the_served_routes() {
    let f = fixture();
    f.model("fraud", 1);
    let (s, doc) = get(&f.app, "/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for required in [
        "/api/v1/models",
        "/api/v1/events",
        "/api/v1/models/{name}/versions/{version}/approval",
    ] {
        assert!(paths.contains_key(required), "{required} undocumented");
    }
    for (path, ops) in paths {
        let uri = path
            .replace("{name}", "fraud")
            .replace("{version}", "1")
            .replace("{alias}", "champion");
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let documented = ops.get(method.to_lowercase()).is_some();
            let body = match method {
                "POST" => Some(r#"{"status": "approved"}"#),
                "PUT" => Some(r#"{"version": 1}"#),
                _ => None,
            };
            let (status, v) = support::send(&f.app, method, &uri, body, &[]).await;
            // The API tokens' routes are mounted with authentication off
            // too, and answer that it is off (as documented).
            let auth_off = v["message"]
                .as_str()
                .is_some_and(|m| m.contains("authentication is not enabled"));
            if documented {
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED
                        && (v["error_code"] != "ENDPOINT_NOT_FOUND" || auth_off),
                    "{method} {path} is documented but not served: {status} {v}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
}
