//! The audit log in process (issue 17): what one request leaves in it — a
//! state change, a login, a failed login, a denial, a token or permission
//! change named as such — and that a flood of anonymous denials from one
//! source within a minute leaves one counted row.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use sextant_artifacts::ArtifactStore;
use sextant_core::audit::AuditRow;
use sextant_core::clock::ManualClock;
use sextant_server::auth::{AuditLog, Auth, AuthSettings, audit_checkpoints, secrets};
use sextant_server::{AppState, SecurityConfig, router};
use sextant_store::MetaStore;
use tower::ServiceExt;

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const BOB: (&str, &str) = ("bob", "bob-password-0001");

struct Server {
    app: Router,
    store: Arc<dyn MetaStore>,
    artifacts: Arc<ArtifactStore>,
    audit: Arc<AuditLog>,
    clock: Arc<ManualClock>,
    /// The last row seen by `new_rows`.
    seen: i64,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
    for (user, admin) in [(ADMIN, true), (BOB, false)] {
        store
            .auth()
            .create_user(user.0, &secrets::hash_password(user.1), admin)
            .unwrap();
    }
    let artifacts = Arc::new(ArtifactStore::from_uri(dir.path().to_str().unwrap()).unwrap());
    let clock = ManualClock::now();
    let st = AppState::new(store.clone(), artifacts.clone(), SecurityConfig::loopback())
        .with_auth(Auth::new(AuthSettings::on(), clock.clone()));
    let audit = st.audit.clone().expect("auditing with auth on");
    Server {
        app: router(st),
        store,
        artifacts,
        audit,
        clock,
        seen: 0,
        _dir: dir,
    }
}

/// One request from `source`, with credentials of `who` when given.
async fn send(
    app: &Router,
    source: &str,
    who: Option<(&str, &str)>,
    method: &str,
    uri: &str,
    body: Option<&str>,
    request_id: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:5000")
        .header("x-request-id", request_id);
    if let Some((user, password)) = who {
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        req = req.header("authorization", format!("Basic {creds}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let mut req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let peer: SocketAddr = format!("{source}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

impl Server {
    /// Rows written since the last call, once everything queued is written.
    async fn new_rows(&mut self) -> Vec<AuditRow> {
        self.audit.flush().await.unwrap();
        let rows = self.store.audit().tail(self.seen, 1_000).unwrap();
        if let Some(last) = rows.last() {
            self.seen = last.seq;
        }
        rows
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_a_failed_login_and_a_denial_each_leave_one_row() {
    let mut s = server();
    let (status, created) = send(
        &s.app,
        "10.1.1.1",
        Some(ADMIN),
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(r#"{"name":"audited"}"#),
        "req-create",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let exp = created["experiment_id"].as_str().unwrap().to_string();
    // Reads that are served leave nothing.
    let (status, _) = send(
        &s.app,
        "10.1.1.1",
        Some(ADMIN),
        "GET",
        &format!("/api/2.0/mlflow/experiments/get?experiment_id={exp}"),
        None,
        "req-read",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rows = s.new_rows().await;
    // The admin's first Basic use is a login, a row of its own; the read
    // after it, within the credential cache's window, is not.
    assert_eq!(rows.len(), 2, "{rows:?}");
    let login = &rows[0].entry;
    assert_eq!(
        (login.action.as_deref(), login.actor.as_deref()),
        (Some("login"), Some("admin"))
    );
    assert_eq!(login.resource.as_deref(), Some("user:admin"));
    assert_eq!(login.request_id.as_deref(), Some("req-create"));
    let e = &rows[1].entry;
    assert_eq!(e.action, None, "a plain request");
    assert_eq!(e.actor.as_deref(), Some("admin"));
    assert_eq!(e.auth_method.as_deref(), Some("basic"));
    assert_eq!(e.source.as_deref(), Some("10.1.1.1"));
    assert_eq!(
        (e.method.as_str(), e.route.as_str()),
        ("POST", "/api/2.0/mlflow/experiments/create")
    );
    assert_eq!(e.resource.as_deref(), Some("experiment:audited"));
    assert_eq!((e.status, e.count), (200, 1));
    assert_eq!(e.request_id.as_deref(), Some("req-create"));
    assert!(rows[1].hash.is_some(), "sealed right after the append");

    let (status, _) = send(
        &s.app,
        "10.2.2.2",
        Some((BOB.0, "not-bobs-password")),
        "GET",
        "/api/2.0/mlflow/experiments/search?max_results=1",
        None,
        "req-login",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let rows = s.new_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let e = &rows[0].entry;
    assert_eq!(e.actor, None, "a failed login names nobody as the actor");
    assert_eq!(e.auth_method.as_deref(), Some("basic"));
    assert_eq!(e.resource.as_deref(), Some("user:bob"));
    assert_eq!(
        (e.method.as_str(), e.route.as_str()),
        ("GET", "/api/2.0/mlflow/experiments/search")
    );
    assert_eq!((e.status, e.count), (401, 1));
    assert_eq!(e.request_id.as_deref(), Some("req-login"));

    // Bob may read the experiment (default READ), not rename it.
    let rename = format!(r#"{{"experiment_id":"{exp}","new_name":"bobs"}}"#);
    let (status, _) = send(
        &s.app,
        "10.3.3.3",
        Some(BOB),
        "POST",
        "/api/2.0/mlflow/experiments/update",
        Some(&rename),
        "req-denied",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A denied read is recorded too.
    let (status, _) = send(
        &s.app,
        "10.3.3.3",
        Some(BOB),
        "GET",
        "/api/2.0/mlflow/users/list",
        None,
        "req-list",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let rows = s.new_rows().await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].entry.action.as_deref(), Some("login"));
    let rows = &rows[1..];
    let e = &rows[0].entry;
    assert_eq!(e.actor.as_deref(), Some("bob"));
    assert_eq!(e.route, "/api/2.0/mlflow/experiments/update");
    assert_eq!(
        e.resource.as_deref(),
        Some(format!("experiment:{exp}").as_str())
    );
    assert_eq!((e.status, e.count), (403, 1));
    let e = &rows[1].entry;
    assert_eq!(
        (e.actor.as_deref(), e.method.as_str(), e.route.as_str()),
        (Some("bob"), "GET", "/api/2.0/mlflow/users/list")
    );
    assert_eq!(e.status, 403);

    let report = s.store.audit().verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.rows, report.unsealed_tail), (6, 0));
}

/// (action, actor, resource) of each row.
fn actions(rows: &[AuditRow]) -> Vec<(Option<&str>, Option<&str>, Option<&str>)> {
    rows.iter()
        .map(|r| {
            (
                r.entry.action.as_deref(),
                r.entry.actor.as_deref(),
                r.entry.resource.as_deref(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_tokens_and_permission_changes_are_named_actions() {
    let mut s = server();
    let ip = "10.4.4.4";
    // A Basic login is recorded once per credential cache window, even on
    // a read, which alone leaves nothing.
    let read = "/api/2.0/mlflow/experiments/search?max_results=1";
    for id in ["r1", "r2"] {
        let (status, _) = send(&s.app, ip, Some(ADMIN), "GET", read, None, id).await;
        assert_eq!(status, StatusCode::OK);
    }
    let rows = s.new_rows().await;
    assert_eq!(
        actions(&rows),
        [(Some("login"), Some("admin"), Some("user:admin"))]
    );
    let e = &rows[0].entry;
    assert_eq!(
        (e.method.as_str(), e.route.as_str(), e.status),
        ("GET", "/api/2.0/mlflow/experiments/search", 200)
    );
    assert_eq!(
        (e.request_id.as_deref(), e.source.as_deref()),
        (Some("r1"), Some(ip))
    );
    s.clock.advance(std::time::Duration::from_secs(6));
    send(&s.app, ip, Some(ADMIN), "GET", read, None, "r3").await;
    assert_eq!(
        actions(&s.new_rows().await),
        [(Some("login"), Some("admin"), Some("user:admin"))],
        "a new window, a new login"
    );

    // The web UI's sign-in and sign-out.
    let (status, _) = send(
        &s.app,
        ip,
        None,
        "POST",
        "/api/v1/session",
        Some(&format!(
            r#"{{"username":"{}","password":"{}"}}"#,
            BOB.0, BOB.1
        )),
        "signin",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rows = s.new_rows().await;
    assert_eq!(
        actions(&rows),
        [(Some("login"), Some("bob"), Some("user:bob"))]
    );
    assert_eq!(rows[0].entry.route, "/api/v1/session");

    // Tokens: created and revoked, each naming the token.
    let (status, created) = send(
        &s.app,
        ip,
        Some(ADMIN),
        "POST",
        "/api/v1/tokens",
        Some(r#"{"name":"ci","scopes":["worker"]}"#),
        "token",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["token"]["id"].as_i64().unwrap();
    let (status, _) = send(
        &s.app,
        ip,
        Some(ADMIN),
        "DELETE",
        &format!("/api/v1/tokens/{token}"),
        None,
        "revoke",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let named = format!("token:{token}");
    assert_eq!(
        actions(&s.new_rows().await),
        [
            (Some("token.create"), Some("admin"), Some(named.as_str())),
            (Some("token.revoke"), Some("admin"), Some(named.as_str())),
        ]
    );

    // Grants and roles.
    let calls: [(&str, &str, String); 5] = [
        (
            "POST",
            "/api/3.0/mlflow/users/permissions/grant",
            r#"{"username":"bob","resource_type":"registered_model","resource_id":"churn","permission":"EDIT"}"#.into(),
        ),
        (
            "POST",
            "/api/3.0/mlflow/users/permissions/revoke",
            r#"{"username":"bob","resource_type":"registered_model","resource_id":"churn"}"#.into(),
        ),
        (
            "POST",
            "/api/3.0/mlflow/roles/create",
            r#"{"name":"readers"}"#.into(),
        ),
        ("POST", "/api/3.0/mlflow/roles/assign", String::new()),
        ("POST", "/api/3.0/mlflow/roles/permissions/add", String::new()),
    ];
    let mut role = 0;
    for (method, uri, body) in calls {
        let body = if body.is_empty() {
            if uri.ends_with("assign") {
                format!(r#"{{"username":"bob","role_id":{role}}}"#)
            } else {
                format!(
                    r#"{{"role_id":{role},"resource_type":"experiment","resource_pattern":"*","permission":"READ"}}"#
                )
            }
        } else {
            body
        };
        let (status, answer) =
            send(&s.app, ip, Some(ADMIN), method, uri, Some(&body), "rbac").await;
        assert_eq!(status, StatusCode::OK, "{uri}: {answer}");
        if let Some(id) = answer["role"]["id"].as_i64() {
            role = id;
        }
    }
    let rows = s.new_rows().await;
    let role_named = format!("role:{role} readers");
    let assigned = format!("role:{role} user:bob");
    let added = format!("role:{role} experiment:* READ");
    assert_eq!(
        actions(&rows),
        [
            (
                Some("permission.grant"),
                Some("admin"),
                Some("user:bob registered_model:churn EDIT")
            ),
            (
                Some("permission.revoke"),
                Some("admin"),
                Some("user:bob registered_model:churn")
            ),
            (
                Some("role.create"),
                Some("admin"),
                Some(role_named.as_str())
            ),
            (Some("role.assign"), Some("admin"), Some(assigned.as_str())),
            (
                Some("role.permission.add"),
                Some("admin"),
                Some(added.as_str())
            ),
        ],
        "a change of grants makes no one log in again"
    );
    // A refused change is a plain denial, not an action.
    let (status, _) = send(
        &s.app,
        ip,
        Some(BOB),
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        Some(r#"{"username":"bob","resource_type":"registered_model","resource_id":"x","permission":"MANAGE"}"#),
        "self-grant",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let rows = s.new_rows().await;
    let denial = rows.last().unwrap();
    assert_eq!(
        (denial.entry.action.as_deref(), denial.entry.status),
        (None, 403)
    );
    let report = s.store.audit().verify().unwrap();
    assert!(report.ok(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_denials_from_one_source_in_a_minute_are_one_counted_row() {
    let mut s = server();
    for i in 0..100 {
        let (status, _) = send(
            &s.app,
            "192.0.2.9",
            None,
            if i % 2 == 0 { "GET" } else { "POST" },
            "/api/2.0/mlflow/experiments/search",
            None,
            &format!("anon-{i}"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Another source is counted apart.
    send(
        &s.app,
        "192.0.2.10",
        None,
        "GET",
        "/api/v1/endpoints",
        None,
        "other",
    )
    .await;
    let rows = s.new_rows().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let flood = rows
        .iter()
        .find(|r| r.entry.source.as_deref() == Some("192.0.2.9"))
        .unwrap();
    let e = &flood.entry;
    assert_eq!((e.count, e.status, e.actor.as_deref()), (100, 401, None));
    assert_eq!((e.method.as_str(), e.route.as_str()), ("*", "*"));
    assert_eq!(e.request_id.as_deref(), Some("anon-0"));
    assert_eq!(e.time_ms % 60_000, 0, "stamped with its minute");
    let other = rows
        .iter()
        .find(|r| r.entry.source.as_deref() == Some("192.0.2.10"))
        .unwrap();
    assert_eq!(other.entry.count, 1);
    assert!(s.store.audit().verify().unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_nothing_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
    let artifacts = Arc::new(ArtifactStore::from_uri(dir.path().to_str().unwrap()).unwrap());
    let st = AppState::new(store.clone(), artifacts, SecurityConfig::loopback());
    assert!(st.audit.is_none());
    let app = router(st);
    let (status, _) = send(
        &app,
        "127.0.0.1",
        None,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(r#"{"name":"open"}"#),
        "r",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    drop(app);
    assert!(store.audit().tail(0, 10).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_verify_and_page_through_the_log_over_http() {
    let mut s = server();
    for name in ["a", "b", "c"] {
        let body = format!(r#"{{"name":"{name}"}}"#);
        let (status, _) = send(
            &s.app,
            "10.0.0.1",
            Some(ADMIN),
            "POST",
            "/api/2.0/mlflow/experiments/create",
            Some(&body),
            name,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    // The admin's login, then the three creations.
    assert_eq!(s.new_rows().await.len(), 4);
    let (status, report) = send(
        &s.app,
        "10.0.0.1",
        Some(ADMIN),
        "GET",
        "/api/v1/audit/verify",
        None,
        "v",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(
        (report["rows"].as_u64(), report["sealed"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(report["head"]["seq"], 4);
    assert_eq!(report["first_bad"], serde_json::Value::Null);

    let (status, page) = send(
        &s.app,
        "10.0.0.1",
        Some(ADMIN),
        "GET",
        "/api/v1/audit?after=1&limit=1",
        None,
        "p",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["rows"].as_array().unwrap().len(), 1);
    assert_eq!(page["rows"][0]["seq"], 2);
    assert_eq!(page["rows"][0]["resource"], "experiment:a");
    assert_eq!(page["rows"][0]["action"], serde_json::Value::Null);
    assert_eq!(page["next_after"], 2);

    let (status, error) = send(
        &s.app,
        "10.0.0.1",
        Some(ADMIN),
        "GET",
        "/api/v1/audit?limit=0",
        None,
        "bad",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error_code"], "INVALID_PARAMETER_VALUE");

    // Users other than admins are refused, and the refusals are audited.
    for uri in ["/api/v1/audit/verify", "/api/v1/audit"] {
        let (status, error) = send(&s.app, "10.0.0.2", Some(BOB), "GET", uri, None, "bob").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(error["error_code"], "PERMISSION_DENIED");
    }
    let refusals = s.new_rows().await;
    assert_eq!(
        refusals
            .iter()
            .filter(|r| r.entry.action.is_none())
            .map(|r| (
                r.entry.actor.as_deref(),
                r.entry.route.as_str(),
                r.entry.status
            ))
            .collect::<Vec<_>>(),
        [
            (Some("bob"), "/api/v1/audit/verify", 403),
            (Some("bob"), "/api/v1/audit", 403)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_is_checkpointed_to_the_artifact_store() {
    let mut s = server();
    assert_eq!(
        s.audit.checkpoint().await.unwrap(),
        None,
        "nothing to anchor yet"
    );
    for name in ["x", "y"] {
        let body = format!(r#"{{"name":"{name}"}}"#);
        send(
            &s.app,
            "10.0.0.1",
            Some(ADMIN),
            "POST",
            "/api/2.0/mlflow/experiments/create",
            Some(&body),
            name,
        )
        .await;
    }
    assert_eq!(s.new_rows().await.len(), 3, "a login, two creations");
    // The writer anchors the first head it sees by itself; this anchors the
    // current one if the writer has not yet.
    s.audit.checkpoint().await.unwrap();
    let head = s.store.audit().head().unwrap().unwrap();
    let stored = audit_checkpoints::latest(&s.artifacts)
        .await
        .unwrap()
        .expect("a checkpoint");
    assert_eq!((stored.seq, stored.hash), head);
    assert_eq!(
        s.audit.checkpoint().await.unwrap(),
        None,
        "the head did not move"
    );
}

/// What is still queued when the server stops is written as the last
/// handle on the log goes (here no runtime ever started the writer).
#[test]
fn rows_still_queued_when_the_log_is_dropped_are_written() {
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
    let log = AuditLog::new(store.clone(), ManualClock::now(), None);
    log.record(sextant_core::audit::NewAuditRow {
        time_ms: 1,
        actor: Some("admin".into()),
        method: "POST".into(),
        route: "/api/v1/pipelines/{name}".into(),
        status: 200,
        count: 1,
        ..Default::default()
    });
    log.deny_anonymous(Some("192.0.2.1".into()), 401, None);
    drop(log);
    let rows = store.audit().tail(0, 10).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.hash.is_some()), "and sealed");
    assert_eq!(rows[1].entry.count, 1);
}
