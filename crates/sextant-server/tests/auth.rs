//! Authentication and authorization in process (issue 17): MLflow's 401 and
//! 403 answers, grants and their floor, creators' MANAGE, tokens, throttled
//! logins, and every route of the table refusing anonymous callers.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::json;
use sextant_artifacts::ArtifactStore;
use sextant_core::auth::Permission;
use sextant_core::clock::ManualClock;
use sextant_server::auth::{Auth, AuthSettings, secrets};
use sextant_server::{AppState, SecurityConfig, router, routes};
use support::{Answer, as_user, basic, request};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");

struct Server {
    app: Router,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

fn server(default: Permission) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn sextant_store::MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
    store
        .auth()
        .create_user(ADMIN.0, &secrets::hash_password(ADMIN.1), true)
        .unwrap();
    let artifacts = Arc::new(ArtifactStore::from_uri(dir.path().to_str().unwrap()).unwrap());
    let clock = ManualClock::now();
    let settings = AuthSettings {
        default_permission: default,
        ..AuthSettings::on()
    };
    let st = AppState::new(store, artifacts, SecurityConfig::loopback())
        .with_auth(Auth::new(settings, clock.clone()));
    Server {
        app: router(st),
        clock,
        _dir: dir,
    }
}

async fn create_user(app: &Router, name: &str, password: &str) {
    let body = format!(r#"{{"username":"{name}","password":"{password}"}}"#);
    let a = as_user(
        app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/users/create",
        Some(&body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["user"]["username"], name);
    assert_eq!(a.json["user"]["is_admin"], false);
}

/// The admin grants `user` `level` on `kind` `id`.
async fn admin_grant(app: &Router, user: &str, kind: &str, id: &str, level: &str) {
    let body = format!(
        r#"{{"username":"{user}","resource_type":"{kind}","resource_id":"{id}","permission":"{level}"}}"#
    );
    let a = as_user(
        app,
        ADMIN,
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        Some(&body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

/// The admin creates registered model `name`.
async fn admin_creates_model(app: &Router, name: &str) {
    let body = format!(r#"{{"name":"{name}"}}"#);
    let a = as_user(
        app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        Some(&body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

/// The admin creates experiment `name`; answers its id.
async fn admin_creates_experiment(app: &Router, name: &str) -> String {
    let body = format!(r#"{{"name":"{name}"}}"#);
    let a = as_user(
        app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(&body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json["experiment_id"].as_str().unwrap().to_string()
}

/// The admin stores pipeline `name` (one step) and starts a run of it;
/// answers the run's id.
async fn admin_runs_pipeline(app: &Router, name: &str) -> String {
    let spec = format!("name: {name}\nsteps:\n  a:\n    run: \"true\"\n");
    let path = format!("/api/v1/pipelines/{name}");
    let a = as_user(app, ADMIN, "PUT", &path, Some(&spec)).await;
    assert_eq!(a.json["result"], "created", "{}", a.text);
    let a = as_user(app, ADMIN, "POST", &format!("{path}/runs"), Some("{}")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    a.json["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_and_wrong_callers_get_mlflows_401() {
    let s = server(Permission::Read);
    let a = request(
        &s.app,
        "GET",
        "/api/2.0/mlflow/experiments/search",
        None,
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.text.starts_with("You are not authenticated."),
        "{}",
        a.text
    );
    assert_eq!(a.headers["www-authenticate"], "Basic realm=\"mlflow\"");
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Unknown paths too: authentication comes before routing.
    let a = request(&s.app, "GET", "/no/such/page", None, &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let wrong = basic(ADMIN.0, "not-the-password");
    let a = request(
        &s.app,
        "GET",
        "/api/2.0/mlflow/experiments/search",
        None,
        &[("authorization", &wrong)],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // The native API answers JSON.
    let a = request(&s.app, "GET", "/api/v1/endpoints", None, &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.json["error_code"], "UNAUTHENTICATED");
    // The probes stay open.
    let a = request(&s.app, "GET", "/health", None, &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = request(&s.app, "GET", "/api/2.0/mlflow/server-info", None, &[]).await;
    assert_ne!(a.status, StatusCode::UNAUTHORIZED);
    let a = as_user(
        &s.app,
        ADMIN,
        "GET",
        "/api/2.0/mlflow/experiments/search?max_results=1",
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creators_manage_what_they_create_and_others_only_read_it() {
    let s = server(Permission::Read);
    create_user(&s.app, "alice", "alice-password-1").await;
    create_user(&s.app, "bob", "bob-password-001").await;
    let alice = ("alice", "alice-password-1");
    let bob = ("bob", "bob-password-001");
    let a = as_user(
        &s.app,
        alice,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(r#"{"name":"alices"}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let exp = a.json["experiment_id"].as_str().unwrap().to_string();
    let rename = format!(r#"{{"experiment_id":"{exp}","new_name":"renamed"}}"#);
    // Bob reads (default READ) but may not change it.
    let a = as_user(
        &s.app,
        bob,
        "GET",
        &format!("/api/2.0/mlflow/experiments/get?experiment_id={exp}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = as_user(
        &s.app,
        bob,
        "POST",
        "/api/2.0/mlflow/experiments/update",
        Some(&rename),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.text, "Permission denied");
    let run = format!(r#"{{"experiment_id":"{exp}"}}"#);
    let a = as_user(
        &s.app,
        bob,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(&run),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Alice, its creator, may.
    let a = as_user(
        &s.app,
        alice,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(&run),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let run_id = a.json["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let metric = format!(r#"{{"run_id":"{run_id}","key":"m","value":1,"timestamp":1,"step":0}}"#);
    let a = as_user(
        &s.app,
        alice,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Some(&metric),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = as_user(
        &s.app,
        bob,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Some(&metric),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Granting EDIT lets bob log, at once (this server's own change).
    let grant = format!(
        r#"{{"username":"bob","resource_type":"experiment","resource_id":"{exp}","permission":"EDIT"}}"#
    );
    let a = as_user(
        &s.app,
        alice,
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        Some(&grant),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = as_user(
        &s.app,
        bob,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Some(&metric),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // But bob may not grant further: delegating needs MANAGE.
    let a = as_user(
        &s.app,
        bob,
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        Some(&grant),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Non-admins may not create users or list them.
    let a = as_user(
        &s.app,
        bob,
        "POST",
        "/api/2.0/mlflow/users/create",
        Some(r#"{"username":"eve","password":"eve-password-01"}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = as_user(&s.app, bob, "GET", "/api/2.0/mlflow/users/list", None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = as_user(&s.app, bob, "GET", "/api/2.0/mlflow/users/current", None).await;
    assert_eq!(a.json["user"]["username"], "bob");
    assert_eq!(a.json["is_basic_auth"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_no_permissions_only_grants_open_a_resource() {
    let s = server(Permission::NoPermissions);
    create_user(&s.app, "carol", "carol-password-1").await;
    let carol = ("carol", "carol-password-1");
    let exp = admin_creates_experiment(&s.app, "private").await;
    let get = format!("/api/2.0/mlflow/experiments/get?experiment_id={exp}");
    assert_eq!(
        as_user(&s.app, carol, "GET", &get, None).await.status,
        StatusCode::FORBIDDEN
    );
    admin_grant(&s.app, "carol", "experiment", &exp, "READ").await;
    assert_eq!(
        as_user(&s.app, carol, "GET", &get, None).await.status,
        StatusCode::OK
    );
    // A DENY on the run tier vetoes even what the experiment grant allows.
    let role = as_user(
        &s.app,
        ADMIN,
        "POST",
        "/api/3.0/mlflow/roles/create",
        Some(r#"{"workspace":"default","name":"no-runs"}"#),
    )
    .await;
    assert_eq!(role.status, StatusCode::OK, "{}", role.text);
    let role_id = role.json["role"]["id"].as_i64().unwrap();
    let add = format!(
        r#"{{"role_id":{role_id},"resource_type":"run","resource_pattern":"*","permission":"DENY"}}"#
    );
    let a = as_user(
        &s.app,
        ADMIN,
        "POST",
        "/api/3.0/mlflow/roles/permissions/add",
        Some(&add),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let assign = format!(r#"{{"username":"carol","role_id":"{role_id}"}}"#);
    let a = as_user(
        &s.app,
        ADMIN,
        "POST",
        "/api/3.0/mlflow/roles/assign",
        Some(&assign),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = as_user(
        &s.app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(&format!(r#"{{"experiment_id":"{exp}"}}"#)),
    )
    .await;
    let run_id = a.json["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = as_user(
        &s.app,
        carol,
        "GET",
        &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Searches show only what she may read: the granted experiment, none of its runs.
    admin_creates_experiment(&s.app, "hidden").await;
    let a = as_user(
        &s.app,
        carol,
        "GET",
        "/api/2.0/mlflow/experiments/search?max_results=100",
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let seen: Vec<&str> = a.json["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["experiment_id"].as_str().unwrap())
        .collect();
    assert_eq!(seen, vec![exp.as_str()], "{}", a.text);
    let search = format!(r#"{{"experiment_ids":["{exp}"]}}"#);
    let a = as_user(
        &s.app,
        carol,
        "POST",
        "/api/2.0/mlflow/runs/search",
        Some(&search),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        a.json
            .get("runs")
            .is_none_or(|r| r.as_array().unwrap().is_empty()),
        "{}",
        a.text
    );
    // The admin sees the run.
    let a = as_user(
        &s.app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/runs/search",
        Some(&search),
    )
    .await;
    assert_eq!(a.json["runs"].as_array().unwrap().len(), 1, "{}", a.text);
    // Registered models likewise.
    for name in ["visible-model", "secret-model"] {
        admin_creates_model(&s.app, name).await;
    }
    admin_grant(&s.app, "carol", "registered_model", "visible-model", "READ").await;
    let a = as_user(
        &s.app,
        carol,
        "GET",
        "/api/2.0/mlflow/registered-models/search",
        None,
    )
    .await;
    let names: Vec<&str> = a.json["registered_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["visible-model"], "{}", a.text);
    // Native listings are filtered the same way.
    let a = as_user(&s.app, carol, "GET", "/api/v1/models", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(names_in(&a, "models", "name"), vec!["visible-model"]);
    let a = as_user(
        &s.app,
        carol,
        "GET",
        "/api/3.0/mlflow/users/current/permissions",
        None,
    )
    .await;
    assert_eq!(
        a.json["permissions"].as_array().unwrap().len(),
        3,
        "{}",
        a.text
    );
}

/// The values of `field` in the rows of the answer's list `key`.
fn names_in(a: &Answer, key: &str, field: &str) -> Vec<String> {
    let mut out: Vec<String> = a.json[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {}", a.text))
        .iter()
        .map(|row| row[field].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_listings_and_the_events_feed_show_only_readable_rows() {
    let s = server(Permission::NoPermissions);
    create_user(&s.app, "erin", "erin-password-1").await;
    let erin = ("erin", "erin-password-1");
    for name in ["open", "closed"] {
        admin_runs_pipeline(&s.app, name).await;
        admin_creates_model(&s.app, &format!("{name}-model")).await;
    }
    admin_grant(&s.app, "erin", "pipeline", "open", "READ").await;
    admin_grant(&s.app, "erin", "registered_model", "open-model", "READ").await;

    let list = async |who: (&str, &str), path: &str| {
        let a = as_user(&s.app, who, "GET", path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        a
    };
    let a = list(erin, "/api/v1/pipelines").await;
    assert_eq!(names_in(&a, "pipelines", "name"), vec!["open"]);
    let a = list(erin, "/api/v1/pipeline-runs").await;
    assert_eq!(names_in(&a, "runs", "pipeline"), vec!["open"]);
    let a = list(erin, "/api/v1/pipeline-runs?pipeline=closed").await;
    assert!(names_in(&a, "runs", "pipeline").is_empty(), "{}", a.text);
    let a = list(erin, "/api/v1/models").await;
    assert_eq!(names_in(&a, "models", "name"), vec!["open-model"]);
    for path in ["/api/v1/endpoints", "/api/v1/monitors"] {
        let a = list(erin, path).await;
        let key = path.rsplit('/').next().unwrap();
        assert!(names_in(&a, key, "name").is_empty(), "{}", a.text);
    }
    // The feed: what she may read, by subject, and nothing of the rest.
    let a = list(erin, "/api/v1/events?limit=1000").await;
    let subjects = names_in(&a, "events", "subject");
    assert!(
        subjects.contains(&"pipeline:open".to_string()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"registered_model:open-model".to_string()),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.starts_with("pipeline_run:")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().all(|s| !s.contains("closed")),
        "{subjects:?}"
    );
    // The admin sees both.
    let all = list(ADMIN, "/api/v1/events?limit=1000").await;
    let all = names_in(&all, "events", "subject");
    assert_eq!(
        all.iter()
            .filter(|s| s.starts_with("pipeline_run:"))
            .count(),
        2,
        "{all:?}"
    );
    assert!(all.contains(&"pipeline:closed".to_string()), "{all:?}");
    let a = list(ADMIN, "/api/v1/pipelines").await;
    assert_eq!(names_in(&a, "pipelines", "name"), vec!["closed", "open"]);
}

/// READ on a model shows its versions' lineage, but each link only to a
/// caller who may read what it leads to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lineage_names_only_what_the_caller_may_read() {
    let s = server(Permission::NoPermissions);
    create_user(&s.app, "erin", "erin-password-1").await;
    let erin = ("erin", "erin-password-1");
    let pipeline_run = admin_runs_pipeline(&s.app, "closed").await;
    let experiment = admin_creates_experiment(&s.app, "hidden").await;
    let body = format!(r#"{{"experiment_id":"{experiment}"}}"#);
    let a = as_user(
        &s.app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(&body),
    )
    .await;
    let run = &a.json["run"]["info"];
    let (run_id, artifacts) = (
        run["run_id"].as_str().unwrap(),
        run["artifact_uri"].as_str().unwrap(),
    );
    let body = format!(r#"{{"run_id":"{run_id}","key":"sextant.step","value":"train"}}"#);
    let a = as_user(
        &s.app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/runs/set-tag",
        Some(&body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    admin_creates_model(&s.app, "open-model").await;
    let body = format!(
        r#"{{"name":"open-model","source":"{artifacts}/model","run_id":"{run_id}",
            "tags":[{{"key":"sextant.pipelineRun","value":"{pipeline_run}"}}]}}"#
    );
    let a = as_user(
        &s.app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        Some(&body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    admin_grant(&s.app, "erin", "registered_model", "open-model", "READ").await;

    let lineage = async |who: (&str, &str)| {
        let path = "/api/v1/models/open-model/versions/1/lineage";
        let a = as_user(&s.app, who, "GET", path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.json
    };
    let all = lineage(ADMIN).await;
    assert_eq!(all["run"]["run_id"], run_id, "{all}");
    assert_eq!(all["step"], "train", "{all}");
    assert_eq!(all["pipeline_run"]["id"], pipeline_run.as_str(), "{all}");

    let seen = lineage(erin).await;
    assert_eq!(seen["model_version"]["name"], "open-model", "{seen}");
    assert!(seen["run"].is_null(), "{seen}");
    assert!(seen["step"].is_null(), "{seen}");
    assert!(seen["pipeline_run"].is_null(), "{seen}");
    assert_eq!(seen["withheld"], json!(["run", "pipeline_run"]), "{seen}");
    assert_eq!(all["withheld"], json!([]), "{all}");

    // Grants open each link on its own.
    admin_grant(&s.app, "erin", "pipeline", "closed", "READ").await;
    let seen = lineage(erin).await;
    assert_eq!(seen["pipeline_run"]["id"], pipeline_run.as_str(), "{seen}");
    assert!(seen["run"].is_null(), "{seen}");
    admin_grant(&s.app, "erin", "experiment", &experiment, "READ").await;
    let seen = lineage(erin).await;
    assert_eq!(seen["run"]["run_id"], run_id, "{seen}");
    assert_eq!(seen["step"], "train", "{seen}");
    assert_eq!(seen["withheld"], json!([]), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_authenticate_until_revoked() {
    let s = server(Permission::Read);
    create_user(&s.app, "dave", "dave-password-1").await;
    let dave = ("dave", "dave-password-1");
    let a = as_user(
        &s.app,
        dave,
        "POST",
        "/api/v1/tokens",
        Some(r#"{"name":"ci","scopes":["read"]}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let token = a.json["token"]["token"].as_str().unwrap().to_string();
    let id = a.json["token"]["id"].as_i64().unwrap();
    let bearer = format!("Bearer {token}");
    let h = [("authorization", bearer.as_str())];
    let a = request(
        &s.app,
        "GET",
        "/api/2.0/mlflow/experiments/search",
        None,
        &h,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // A read-scoped token changes nothing, even what its user may change.
    let a = request(
        &s.app,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(r#"{"name":"x"}"#),
        &h,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Tokens do not mint tokens.
    let a = request(
        &s.app,
        "POST",
        "/api/v1/tokens",
        Some(r#"{"name":"more"}"#),
        &h,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = as_user(
        &s.app,
        dave,
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        Some("{}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = request(
        &s.app,
        "GET",
        "/api/2.0/mlflow/experiments/search",
        None,
        &h,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = request(
        &s.app,
        "GET",
        "/api/2.0/mlflow/experiments/search",
        None,
        &[("authorization", "Bearer sxt_made-up")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_with_growing_delays() {
    let s = server(Permission::Read);
    let wrong = basic(ADMIN.0, "guess-guess-guess");
    let h = [("authorization", wrong.as_str())];
    let uri = "/api/2.0/mlflow/experiments/search";
    for _ in 0..5 {
        assert_eq!(
            request(&s.app, "GET", uri, None, &h).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let a = request(&s.app, "GET", uri, None, &h).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key("retry-after"));
    // The right password waits too (the attacker cannot tell), for a while only.
    let right = basic(ADMIN.0, ADMIN.1);
    let ok = [("authorization", right.as_str())];
    assert_eq!(
        request(&s.app, "GET", uri, None, &ok).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(
        request(&s.app, "GET", uri, None, &ok).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_anonymous_callers() {
    let s = server(Permission::Read);
    for r in routes::table() {
        let path = r
            .path
            .replace("{*path}", "0/abc/artifacts/f")
            .replace("{*rest}", "0/abc/artifacts/f")
            .replace(['{', '}'], "");
        // Signing in and out is for callers without credentials; reading the session is not.
        let session = path == "/api/v1/session" && r.method != axum::http::Method::GET;
        let public = path == "/health"
            || session
            || path == "/"
            || path.starts_with("/static/")
            || path.ends_with("/mlflow/server-info");
        let body = (r.method != axum::http::Method::GET).then_some("{}");
        let a = request(&s.app, r.method.as_str(), &path, body, &[]).await;
        if public {
            assert_ne!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{} {}",
                r.method,
                r.path
            );
        } else {
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{} {} answered {}",
                r.method,
                r.path,
                a.text
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_grants_changes_nothing_but_may_create() {
    let s = server(Permission::NoPermissions);
    create_user(&s.app, "erin", "erin-password-1").await;
    let erin = ("erin", "erin-password-1");
    for r in routes::table() {
        // Anyone may create (MLflow's rule: only DENY stops it), and manage
        // their own password and tokens.
        let creates = r.capability == routes::Capability::Create
            || (r.method == axum::http::Method::PUT
                && r.path.starts_with("/api/v1/")
                && r.path.ends_with("/{name}"));
        if !r.changes_state
            || creates
            || r.path.contains("/tokens")
            || r.path == "/api/v1/session"
            || r.path.contains("/users/update-password")
        {
            continue;
        }
        let path = r
            .path
            .replace("{*path}", "0/abc/artifacts/f")
            .replace("{*rest}", "0/abc/artifacts/f")
            .replace(['{', '}'], "");
        let a = as_user(
            &s.app,
            erin,
            r.method.as_str(),
            &path,
            Some(r#"{"name":"n","experiment_id":"0","run_id":"r","username":"erin"}"#),
        )
        .await;
        assert!(
            matches!(
                a.status,
                StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
            ),
            "{} {} answered {} {}",
            r.method,
            r.path,
            a.status,
            a.text
        );
        assert!(!a.status.is_success(), "{} {}", r.method, r.path);
    }
}

/// The session cookie of a sign-in answer (`sextant_session=…`).
fn session_cookie(a: &Answer) -> String {
    let set = a.headers["set-cookie"].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_signs_in_needs_its_csrf_token_for_changes_and_signs_out() {
    let s = server(Permission::Read);
    // Wrong password: refused like Basic, and no cookie.
    let a = request(
        &s.app,
        "POST",
        "/api/v1/session",
        Some(r#"{"username":"admin","password":"wrong"}"#),
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    assert!(!a.headers.contains_key("set-cookie"));

    let body = format!(r#"{{"username":"{}","password":"{}"}}"#, ADMIN.0, ADMIN.1);
    let a = request(&s.app, "POST", "/api/v1/session", Some(&body), &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["method"], "session");
    assert_eq!(a.json["user"]["username"], ADMIN.0);
    let csrf = a.json["csrf_token"].as_str().unwrap().to_string();
    let cookie = session_cookie(&a);

    // The cookie alone reads, and the session hands out the same CSRF token again.
    let a = request(
        &s.app,
        "GET",
        "/api/v1/session",
        None,
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["csrf_token"], csrf.as_str());
    let create = r#"{"name":"from-the-ui"}"#;
    let uri = "/api/2.0/mlflow/experiments/create";
    // A change without the token (what a forged cross-site request would be) is refused…
    let a = request(&s.app, "POST", uri, Some(create), &[("cookie", &cookie)]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = request(
        &s.app,
        "POST",
        uri,
        Some(create),
        &[
            ("cookie", &cookie),
            ("x-csrf-token", "0".repeat(64).as_str()),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    // …and goes through with it.
    let a = request(
        &s.app,
        "POST",
        uri,
        Some(create),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    // Signing out revokes the session: the cookie no longer works.
    let a = request(
        &s.app,
        "DELETE",
        "/api/v1/session",
        Some("{}"),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    assert!(
        a.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let a = request(
        &s.app,
        "GET",
        "/api/v1/session",
        None,
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_sign_ins_are_throttled_like_basic() {
    let s = server(Permission::Read);
    let wrong = r#"{"username":"admin","password":"wrong"}"#;
    let mut last = StatusCode::OK;
    for _ in 0..8 {
        last = request(&s.app, "POST", "/api/v1/session", Some(wrong), &[])
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // The right password waits too, for a while only.
    let body = format!(r#"{{"username":"{}","password":"{}"}}"#, ADMIN.0, ADMIN.1);
    let a = request(&s.app, "POST", "/api/v1/session", Some(&body), &[]).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    s.clock.advance(Duration::from_secs(120));
    let a = request(&s.app, "POST", "/api/v1/session", Some(&body), &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_the_session_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn sextant_store::MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
    let artifacts = Arc::new(ArtifactStore::from_uri(dir.path().to_str().unwrap()).unwrap());
    let app = router(AppState::new(store, artifacts, SecurityConfig::loopback()));
    let a = request(&app, "GET", "/api/v1/session", None, &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["auth"], false);
    let a = request(
        &app,
        "POST",
        "/api/v1/session",
        Some(r#"{"username":"a","password":"b"}"#),
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_asks_which_levels_the_caller_holds() {
    let s = server(Permission::Read);
    create_user(&s.app, "dana", "dana-password-1").await;
    let dana = ("dana", "dana-password-1");
    let uri = "/api/v1/session/permissions?resource=endpoint:churn&resource=registered_model:fraud";
    let a = as_user(&s.app, ADMIN, "GET", uri, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["permissions"]["endpoint:churn"], "MANAGE");
    let a = as_user(&s.app, dana, "GET", uri, None).await;
    assert_eq!(
        a.json["permissions"]["endpoint:churn"], "READ",
        "{}",
        a.text
    );
    assert_eq!(a.json["permissions"]["registered_model:fraud"], "READ");
    // A grant raises the level the page sees, exactly as the server will decide.
    admin_grant(&s.app, "dana", "endpoint", "churn", "MANAGE").await;
    let a = as_user(&s.app, dana, "GET", uri, None).await;
    assert_eq!(
        a.json["permissions"]["endpoint:churn"], "MANAGE",
        "{}",
        a.text
    );
    assert_eq!(a.json["permissions"]["registered_model:fraud"], "READ");
    for bad in ["churn", "endpoint:", "nosuchtype:x"] {
        let a = as_user(
            &s.app,
            dana,
            "GET",
            &format!("/api/v1/session/permissions?resource={bad}"),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    let a = request(&s.app, "GET", uri, None, &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}
