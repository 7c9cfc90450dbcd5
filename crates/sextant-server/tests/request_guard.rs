//! The request guard, driven by the route table: every route that may change
//! state refuses a body not declared as JSON and a page of another origin
//! before its handler runs, and lets the server's own origin and
//! `--allowed-origins` through. A route added to the table is covered here
//! without a new line.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_core::entities::NewRun;
use sextant_core::registry::NewModelVersion;
use sextant_server::routes::{self, Api, RouteInfo};
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::MetaStore;
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:5000";
const OWN: &str = "http://127.0.0.1:5000";
const LISTED: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.com";

const MLFLOW_MISSING: &str = "Bad Request. Content-Type header is missing.";
const MLFLOW_WRONG: &str = "Bad Request. Content-Type must be one of ['application/json'].";
const MLFLOW_CROSS: &str = "Cross-origin request blocked";

struct Fixture {
    app: Router,
    store: Arc<dyn MetaStore>,
}

fn fixture() -> Fixture {
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
    let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
    let security = SecurityConfig::loopback()
        .with_allowed_origins(&[LISTED.to_string()])
        .unwrap();
    let app = router(AppState::new(store.clone(), Arc::new(artifacts), security));
    Fixture { app, store }
}

/// The answer: status, content type, body text.
struct Answer {
    status: StatusCode,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn send(
    app: &Router,
    method: &Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, HOST);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A concrete URI for a route pattern: every `{param}` and `{*rest}` filled.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{*path}" => "guard/file.txt",
            "{*rest}" => "create/guard",
            "{version}" | "{id}" => "1",
            s if s.starts_with('{') => "guard",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The routes the guard stands in front of: every method that may change
/// state, on every API but the data plane.
fn guarded() -> Vec<RouteInfo> {
    routes::table()
        .into_iter()
        .filter(|r| r.api != Api::Serving)
        .filter(|r| !matches!(r.method, Method::GET | Method::HEAD))
        .collect()
}

/// Whether `a` is the guard's refusal of a body of the wrong or no type.
fn is_type_refusal(r: &RouteInfo, a: &Answer) -> bool {
    match r.api {
        Api::Mlflow => {
            a.status == StatusCode::BAD_REQUEST
                && a.json()["error_code"] == "INVALID_PARAMETER_VALUE"
                && [MLFLOW_MISSING, MLFLOW_WRONG]
                    .contains(&a.json()["message"].as_str().unwrap_or(""))
        }
        Api::Native => {
            a.status == StatusCode::UNSUPPORTED_MEDIA_TYPE
                && a.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"
        }
        Api::Serving => false,
    }
}

/// Whether `a` is the guard's refusal of another origin.
fn is_origin_refusal(r: &RouteInfo, a: &Answer) -> bool {
    a.status == StatusCode::FORBIDDEN
        && match r.api {
            Api::Mlflow => a.text == MLFLOW_CROSS,
            Api::Native => {
                a.json()["error_code"] == "PERMISSION_DENIED"
                    && a.json()["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("cross-origin request blocked"))
            }
            Api::Serving => false,
        }
}

fn takes_json(r: &RouteInfo) -> bool {
    matches!(r.body, routes::Body::Json | routes::Body::JsonOrYaml)
}

#[tokio::test]
async fn the_table_guards_every_state_changing_route() {
    let all = routes::table();
    let changing: Vec<&RouteInfo> = all.iter().filter(|r| r.changes_state).collect();
    assert!(
        changing.len() > 60,
        "only {} state-changing routes",
        changing.len()
    );
    let guarded = guarded();
    for r in &changing {
        if r.api == Api::Serving {
            continue;
        }
        assert!(
            guarded
                .iter()
                .any(|g| g.method == r.method && g.path == r.path),
            "{} {} changes state but is not guarded",
            r.method,
            r.path
        );
    }
}

#[tokio::test]
async fn bodies_not_declared_as_json_are_refused_before_the_handler() {
    let f = fixture();
    let mut checked = 0;
    for r in guarded().iter().filter(|r| takes_json(r)) {
        let uri = concrete(&r.path);
        let what = format!("{} {uri}", r.method);
        // (a) a text/plain body, the type a page posts cross-site unasked.
        let a = send(
            &f.app,
            &r.method,
            &uri,
            &[("content-type", "text/plain")],
            "{}",
        )
        .await;
        assert!(
            is_type_refusal(r, &a),
            "{what} text/plain: {} {}",
            a.status,
            a.text
        );
        let a = send(
            &f.app,
            &r.method,
            &uri,
            &[("content-type", "application/x-www-form-urlencoded")],
            "{}",
        )
        .await;
        assert!(
            is_type_refusal(r, &a),
            "{what} form: {} {}",
            a.status,
            a.text
        );
        // (b) no content type at all.
        let a = send(&f.app, &r.method, &uri, &[], "{}").await;
        assert!(
            is_type_refusal(r, &a),
            "{what} untyped: {} {}",
            a.status,
            a.text
        );
        checked += 1;
    }
    assert!(checked > 60, "{checked}");
}

#[tokio::test]
async fn other_origins_are_refused_on_every_guarded_route() {
    let f = fixture();
    for r in guarded() {
        let uri = concrete(&r.path);
        let what = format!("{} {uri}", r.method);
        // (c) JSON, but from another site's page; also `null` (sandboxed frames).
        for origin in [
            EVIL,
            "null",
            "http://localhost:5000",
            "http://127.0.0.1:3000",
        ] {
            let a = send(
                &f.app,
                &r.method,
                &uri,
                &[("content-type", "application/json"), ("origin", origin)],
                "{}",
            )
            .await;
            assert!(
                is_origin_refusal(&r, &a),
                "{what} from {origin}: {} {}",
                a.status,
                a.text
            );
        }
    }
}

#[tokio::test]
async fn the_servers_own_and_allowed_origins_reach_the_handler() {
    let f = fixture();
    for r in guarded() {
        let uri = concrete(&r.path);
        let what = format!("{} {uri}", r.method);
        for origin in [Some(OWN), Some(LISTED), None] {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(o) = origin {
                headers.push(("origin", o));
            }
            let a = send(&f.app, &r.method, &uri, &headers, "{}").await;
            assert!(
                !is_origin_refusal(&r, &a) && !is_type_refusal(&r, &a),
                "{what} from {origin:?} was refused: {} {}",
                a.status,
                a.text
            );
            assert!(
                !a.status.is_server_error(),
                "{what}: {} {}",
                a.status,
                a.text
            );
        }
    }
}

/// Seeds model `m` with version 1 (pending approval).
fn seed_version(store: &dyn MetaStore) {
    let run = store
        .create_run(&NewRun {
            experiment_id: 0,
            user_id: "tester".into(),
            run_name: None,
            start_time: Some(1),
            tags: vec![],
        })
        .unwrap();
    store.create_registered_model("m", None, &[]).unwrap();
    store
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: format!("{}/model", run.info.artifact_uri),
            run_id: Some(run.info.run_id.clone()),
            ..Default::default()
        })
        .unwrap();
}

async fn approval_status(app: &Router) -> Value {
    let a = send(app, &Method::GET, "/api/v1/models/m/versions/1", &[], "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["approval"]["status"].clone()
}

#[tokio::test]
async fn a_cross_site_approval_changes_nothing() {
    let f = fixture();
    seed_version(f.store.as_ref());
    let uri = "/api/v1/models/m/versions/1/approval";
    let body = json!({"status": "approved", "actor": "attacker"}).to_string();
    // The reproduced attack: text/plain from another site's page.
    let a = send(
        &f.app,
        &Method::POST,
        uri,
        &[("content-type", "text/plain"), ("origin", EVIL)],
        &body,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(approval_status(&f.app).await, "pending");
    for headers in [
        vec![("content-type", "text/plain")],
        vec![],
        vec![("content-type", "application/json"), ("origin", EVIL)],
    ] {
        let a = send(&f.app, &Method::POST, uri, &headers, &body).await;
        assert!(
            a.status.is_client_error(),
            "{headers:?}: {} {}",
            a.status,
            a.text
        );
        assert_eq!(approval_status(&f.app).await, "pending", "{headers:?}");
    }
    // The same request as JSON from the server's own page is served.
    let a = send(
        &f.app,
        &Method::POST,
        uri,
        &[("content-type", "application/json"), ("origin", OWN)],
        &body,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(approval_status(&f.app).await, "approved");
}

#[tokio::test]
async fn an_untyped_experiment_delete_changes_nothing() {
    let f = fixture();
    let id = f
        .store
        .create_experiment("guarded", None, &[])
        .unwrap()
        .to_string();
    let body = json!({ "experiment_id": id }).to_string();
    let uri = "/api/2.0/mlflow/experiments/delete";
    let state = |app: Router| {
        let id = id.clone();
        async move {
            let a = send(
                &app,
                &Method::GET,
                &format!("/api/2.0/mlflow/experiments/get?experiment_id={id}"),
                &[],
                "",
            )
            .await;
            a.json()["experiment"]["lifecycle_stage"].clone()
        }
    };
    let a = send(&f.app, &Method::POST, uri, &[], &body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.json()["message"], MLFLOW_MISSING);
    let a = send(
        &f.app,
        &Method::POST,
        uri,
        &[("content-type", "text/plain")],
        &body,
    )
    .await;
    assert_eq!(a.json()["message"], MLFLOW_WRONG);
    let a = send(
        &f.app,
        &Method::POST,
        uri,
        &[("content-type", "application/json"), ("origin", EVIL)],
        &body,
    )
    .await;
    assert_eq!(
        (a.status, a.text.as_str()),
        (StatusCode::FORBIDDEN, MLFLOW_CROSS)
    );
    assert_eq!(state(f.app.clone()).await, "active");
    let a = send(
        &f.app,
        &Method::POST,
        uri,
        &[("content-type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(state(f.app.clone()).await, "deleted");
}

#[tokio::test]
async fn inference_routes_are_not_guarded() {
    let f = fixture();
    let a = send(
        &f.app,
        &Method::POST,
        "/endpoints/nowhere/invocations",
        &[("content-type", "text/plain"), ("origin", EVIL)],
        "1,2",
    )
    .await;
    // No such endpoint: the data plane answered, not the guard.
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(a.json()["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn reads_need_no_content_type_and_accept_any_origin() {
    let f = fixture();
    let a = send(
        &f.app,
        &Method::GET,
        "/api/2.0/mlflow/experiments/get?experiment_id=0",
        &[("origin", EVIL)],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // …but no CORS header lets that page read the answer.
    let a = f
        .app
        .clone()
        .oneshot(
            Request::get("/api/v1/models")
                .header(header::HOST, HOST)
                .header(header::ORIGIN, EVIL)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        a.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn allowed_origins_get_cors_answers() {
    let f = fixture();
    let preflight = |origin: &'static str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/models/m/versions/1/approval")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let resp = f.app.clone().oneshot(preflight(LISTED)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], LISTED);
    assert_eq!(
        resp.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "content-type"
    );
    let resp = f.app.clone().oneshot(preflight(EVIL)).await.unwrap();
    assert!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}
