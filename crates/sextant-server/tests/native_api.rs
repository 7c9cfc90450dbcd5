//! The native API (`/api/v1/…`) in-process, through the typed client:
//! approvals, aliases, the events feed with its long-poll, refusals with
//! their codes; and, on the wire, what a typed client cannot send (the actor
//! header, malformed values) and the OpenAPI document against the routes
//! actually served.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Approval, Client, Decision, EventsPage, EventsQuery};
use sextant_core::entities::NewRun;
use sextant_core::registry::NewModelVersion;
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::MetaStore;
use support::{Refusal, Served, refused, serve};

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

impl Fixture {
    fn client(&self) -> &Client {
        &self.served.client
    }

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

/// The server's page size when none is asked for.
const DEFAULT_PAGE: u32 = 100;

/// A read of the events feed after `after` (from the first when `None`),
/// of `kinds` (all when `None`), a page of the server's default size, no wait.
fn feed(after: Option<&str>, kinds: Option<&str>) -> EventsQuery {
    EventsQuery {
        after: after.map(str::to_string),
        limit: DEFAULT_PAGE,
        wait: Duration::ZERO,
        kinds: kinds.map(str::to_string),
    }
}

/// A decision without a comment.
fn decision(status: Approval, force: bool, actor: Option<&str>) -> Decision {
    Decision {
        status,
        force,
        comment: None,
        actor: actor.map(str::to_string),
    }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    support::send(app, "GET", uri, None, &[]).await
}

async fn send(app: &Router, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    support::send(app, method, uri, Some(&body.to_string()), &[]).await
}

/// Asserts a JSON error with this status and code, and a message.
fn assert_error(got: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error_code"], code, "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

/// Asserts the client's refusal has this status and code, and a message.
#[track_caller]
fn assert_refused(got: Refusal, status: StatusCode, code: &str) {
    assert_eq!(got.status, status.as_u16(), "{got:?}");
    assert_eq!(got.code, code, "{got:?}");
    assert!(!got.message.is_empty(), "{got:?}");
}

#[tokio::test]
async fn approval_is_recorded_with_actor_time_and_comment() {
    let f = fixture().await;
    let c = f.client();
    f.model("fraud", 2);
    let v = c.get_model_version("fraud", 2).await.unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(v["approval"]["status"], "pending");
    assert!(v["run_id"].is_string());
    assert_eq!(v["stage"], "None");

    // The actor may come in a header, which only the wire shows.
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
    for status in [Approval::Approved, Approval::Pending] {
        let got = refused(
            c.decide("fraud", 1, &decision(status, false, Some("carol")))
                .await,
        );
        assert!(got.message.contains("already rejected by bob"), "{got:?}");
        assert_refused(got, StatusCode::CONFLICT, "RESOURCE_CONFLICT");
    }
    let v = c.get_model_version("fraud", 1).await.unwrap();
    assert_eq!(v["approval"]["status"], "rejected");
    assert_eq!(v["approval"]["actor"], "bob");
    // Forced back to pending: nobody decided, at no time. (The status is
    // read without regard to case, which only the wire shows.)
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

    let m = c.get_model("fraud").await.unwrap();
    assert_eq!(m["name"], "fraud");
    assert_eq!(m["description"], "a test model");
    let versions = m["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2, "newest first");
    assert_eq!(versions[0]["approval"]["status"], "approved");
    assert_eq!(versions[1]["approval"]["status"], "pending");

    let e = c
        .events(&feed(None, Some("model_version.*")))
        .await
        .unwrap();
    let kinds: Vec<&str> = e
        .events
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"model_version.approved"), "{kinds:?}");
    assert!(kinds.contains(&"model_version.rejected"), "{kinds:?}");
    let approved = e
        .events
        .iter()
        .find(|e| e["kind"] == "model_version.approved")
        .unwrap();
    assert_eq!(approved["actor"], "alice");
    assert!(approved["payload"].is_object());
}

#[tokio::test]
async fn models_list_pages_filters_and_shows_aliases() {
    let f = fixture().await;
    let c = f.client();
    f.model("alpha", 1);
    f.model("beta", 3);
    f.store
        .set_registered_model_alias("beta", "champion", 2)
        .unwrap();

    let p = c.list_models(None, 1, None).await.unwrap();
    assert_eq!(p.models.len(), 1);
    assert_eq!(p.models[0]["name"], "alpha");
    let token = p.next_page_token.expect("a second page");
    let p = c.list_models(None, 1, Some(&token)).await.unwrap();
    assert_eq!(p.models[0]["name"], "beta");
    assert_eq!(p.models[0]["aliases"], json!({"champion": 2}));
    assert_eq!(p.models[0]["latest_versions"][0]["version"], 3);
    assert!(p.next_page_token.is_none(), "{p:?}");

    let p = c
        .list_models(Some("name = 'beta'"), DEFAULT_PAGE, None)
        .await
        .unwrap();
    let names: Vec<&Value> = p.models.iter().map(|m| &m["name"]).collect();
    assert_eq!(names, [&json!("beta")]);
}

#[tokio::test]
async fn aliases_are_set_moved_and_deleted() {
    let f = fixture().await;
    let c = f.client();
    f.model("fraud", 2);
    let v = c.set_alias("fraud", "champion", 1).await.unwrap();
    assert_eq!(
        v,
        json!({"name": "fraud", "alias": "champion", "version": 1})
    );
    c.set_alias("fraud", "champion", 2).await.unwrap();
    let m = c.get_model("fraud").await.unwrap();
    assert_eq!(m["aliases"], json!({"champion": 2}));
    assert_eq!(m["versions"][0]["aliases"], json!(["champion"]));
    assert_eq!(m["versions"][1]["aliases"], json!([]));

    // 204 No Content: `serve` holds the status to the document's.
    c.delete_alias("fraud", "champion").await.unwrap();
    let m = c.get_model("fraud").await.unwrap();
    assert_eq!(m["aliases"], json!({}));

    assert_refused(
        refused(c.set_alias("fraud", "latest", 1).await),
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    assert_refused(
        refused(c.set_alias("fraud", "champion", 9).await),
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
    );
    // A version that is not a number: only the wire can carry one.
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
    let f = fixture().await;
    let c = f.client();
    f.model("fraud", 1);
    let bad = StatusCode::BAD_REQUEST;
    let invalid = "INVALID_PARAMETER_VALUE";
    let approve = decision(Approval::Approved, false, None);
    let events = |q: EventsQuery| async move { c.events(&q).await.map(drop) };
    for (got, status, code) in [
        (
            refused(c.get_model("nope").await),
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            refused(c.get_model_version("fraud", 7).await),
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (refused(c.get_model_version("fraud", 0).await), bad, invalid),
        (refused(c.list_models(None, 0, None).await), bad, invalid),
        (
            refused(c.list_models(Some("name ==="), DEFAULT_PAGE, None).await),
            bad,
            invalid,
        ),
        (
            refused(c.list_models(None, DEFAULT_PAGE, Some("garbage")).await),
            bad,
            invalid,
        ),
        (
            refused(c.decide("nope", 1, &approve).await),
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            refused(
                events(EventsQuery {
                    wait: Duration::from_secs(61),
                    ..feed(None, None)
                })
                .await,
            ),
            bad,
            invalid,
        ),
        (
            refused(
                events(EventsQuery {
                    limit: 0,
                    ..feed(None, None)
                })
                .await,
            ),
            bad,
            invalid,
        ),
        (refused(events(feed(Some("-1"), None)).await), bad, invalid),
        (
            refused(events(feed(Some("yesterday"), None)).await),
            bad,
            invalid,
        ),
        (
            refused(events(feed(None, Some("Run.Created"))).await),
            bad,
            invalid,
        ),
    ] {
        assert_refused(got, status, code);
    }
    // What a typed client cannot send: values of the wrong type, unknown
    // fields, a body that is not JSON, a route that does not exist.
    let approval = "/api/v1/models/fraud/versions/1/approval";
    for (got, status, code) in [
        (
            get(&f.app, "/api/v1/models/fraud/versions/abc").await,
            bad,
            invalid,
        ),
        (
            get(&f.app, "/api/v1/models?max_results=many").await,
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
            get(&f.app, "/api/v1/nothing-here").await,
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
        ),
    ] {
        assert_error(got, status, code);
    }
}

/// The ids of a page of events.
fn ids(page: &EventsPage) -> Vec<i64> {
    page.events
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn events_page_by_cursor_in_order() {
    let f = fixture().await;
    let c = f.client();
    f.model("fraud", 3);
    let all = c
        .events(&EventsQuery {
            limit: 1000,
            ..feed(None, None)
        })
        .await
        .unwrap();
    let every = ids(&all);
    assert!(every.len() >= 5, "{all:?}");
    assert!(every.windows(2).all(|w| w[0] < w[1]), "{every:?}");
    assert_eq!(all.cursor, *every.last().unwrap());
    assert!(!all.has_more);

    let mut paged: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let p = c
            .events(&EventsQuery {
                limit: 2,
                ..feed(Some(&after.to_string()), None)
            })
            .await
            .unwrap();
        let page = ids(&p);
        assert!(page.len() <= 2);
        paged.extend(&page);
        after = p.cursor;
        if !p.has_more {
            break;
        }
    }
    assert_eq!(paged, every);

    let p = c.events(&feed(Some("latest"), None)).await.unwrap();
    assert_eq!(ids(&p), Vec::<i64>::new());
    assert_eq!(p.cursor, *every.last().unwrap());

    let p = c
        .events(&feed(None, Some("registered_model.*")))
        .await
        .unwrap();
    let kinds: Vec<&str> = p
        .events
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
    let f = fixture().await;
    let c = f.client();
    f.model("fraud", 1);
    let cursor = c.events(&feed(Some("latest"), None)).await.unwrap().cursor;

    let poller = c.clone();
    let poll = tokio::spawn(async move {
        poller
            .events(&EventsQuery {
                wait: Duration::from_secs(60),
                ..feed(Some(&cursor.to_string()), Some("model_version.approved"))
            })
            .await
    });
    c.decide("fraud", 1, &decision(Approval::Approved, false, None))
        .await
        .unwrap();
    let p = poll.await.unwrap().unwrap();
    assert_eq!(p.events[0]["kind"], "model_version.approved", "{p:?}");
    assert_eq!(p.events[0]["subject"], "model_version:fraud/1", "{p:?}");
    assert!(p.cursor > cursor);
}

#[tokio::test]
async fn a_long_poll_without_changes_ends_empty_at_its_deadline() {
    let f = fixture().await;
    let p = f
        .client()
        .events(&EventsQuery {
            wait: Duration::from_secs(1),
            ..feed(Some("latest"), None)
        })
        .await
        .unwrap();
    assert_eq!(ids(&p), Vec::<i64>::new());
}

#[tokio::test]
async fn openapi_document_matches_the_served_routes() {
    let f = fixture().await;
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

/// `serve` holds every success to the statuses its API declares, so a typed
/// call (which sees no status) still fails on a `201` where `200` is due.
#[tokio::test]
async fn a_success_the_document_does_not_declare_fails_the_call() {
    let doc = json!({"paths": {"/api/v1/models/{name}": {"get": {"responses": {"200": {}}}}}});
    let app = Router::new()
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || async move { axum::Json(doc) }),
        )
        .route(
            "/api/v1/models/{name}",
            axum::routing::get(|| async { (StatusCode::CREATED, axum::Json(json!({}))) }),
        );
    let served = serve(app).await;
    let got = refused(served.client.get_model("fraud").await);
    assert_eq!((got.status, got.code.as_str()), (500, "UNDECLARED_STATUS"));
    assert_eq!(
        got.message,
        "GET /api/v1/models/fraud answered 201; its API declares [200]"
    );
}

/// A filter's check answers the search's own message and where in the filter
/// it points; a good filter is valid; an unknown entity is refused.
#[tokio::test]
async fn a_filter_check_locates_the_error_the_search_answers() {
    let f = fixture().await;
    let filter = "params.model = 'a' and params.model == 'b'";
    let (status, search) = send(
        &f.app,
        "POST",
        "/api/2.0/mlflow/runs/search",
        json!({"experiment_ids": ["0"], "filter": filter}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{search}");
    let uri = format!(
        "/api/v1/filters/check?kind=runs&filter={}",
        urlencoding(filter)
    );
    let (status, check) = get(&f.app, &uri).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["valid"], false, "{check}");
    assert_eq!(check["message"], search["message"], "{check}");
    // The second `==`, not the `=` of the first clause.
    assert_eq!(
        (check["start"].as_u64(), check["end"].as_u64()),
        (Some(36), Some(38))
    );

    let (_, check) = get(
        &f.app,
        "/api/v1/filters/check?kind=experiments&filter=name%20%3D%20%27x%27",
    )
    .await;
    assert_eq!(
        check,
        json!({"valid": true, "message": null, "start": null, "end": null})
    );
    assert_error(
        get(&f.app, "/api/v1/filters/check?kind=datasets&filter=").await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
}

/// Percent-encodes a query value.
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
