//! Four-eyes approval of model versions with authentication on (issue 17):
//! approving needs MANAGE on the model, the creator of a version may not
//! approve it unless the model says so, a pipeline's gate approves as
//! `pipeline:<name>` only on the authority of whoever applied the
//! pipeline, a pipeline's register step registers only on the rights of
//! the user its run acts for (who retried it, after a retry), and every
//! event names the authenticated caller, never a name the request declares.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_control::pipelines;
use sextant_core::auth::Permission;
use sextant_core::clock::ManualClock;
use sextant_core::entities::NewRun;
use sextant_core::pipeline_runs::PipelineRunStatus;
use sextant_server::auth::{Auth, AuthSettings, secrets};
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use support::{as_user, basic, eventually, request};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const ALICE: (&str, &str) = ("alice", "alice-password-1");
const BOB: (&str, &str) = ("bob", "bob-password-01");
const CAROL: (&str, &str) = ("carol", "carol-password-1");
const DAVE: (&str, &str) = ("dave", "dave-password-01");

/// The token this server hands its own pipeline steps.
const INTERNAL: &str = "sxt_internal-token-of-this-test";

/// How long a pipeline run may take to end.
const MINUTE: Duration = Duration::from_secs(60);

struct Server {
    app: Router,
    store: Arc<dyn MetaStore>,
    _dir: tempfile::TempDir,
    _orchestrator: Option<tokio::task::JoinHandle<()>>,
}

/// A server with authentication on (`default_permission` READ, as MLflow
/// ships it), an admin and four users, and with `pipelines` an orchestrator.
fn server(pipelines: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
    store
        .auth()
        .create_user(ADMIN.0, &secrets::hash_password(ADMIN.1), true)
        .unwrap();
    for (name, password) in [ALICE, BOB, CAROL, DAVE] {
        store
            .auth()
            .create_user(name, &secrets::hash_password(password), false)
            .unwrap();
    }
    let artifacts =
        Arc::new(ArtifactStore::from_uri(dir.path().join("artifacts").to_str().unwrap()).unwrap());
    let settings = AuthSettings {
        default_permission: Permission::Read,
        ..AuthSettings::on()
    };
    let st = AppState::new(store.clone(), artifacts, SecurityConfig::loopback())
        .with_data_dir(dir.path().join("data"))
        .with_auth(Auth::new(settings, ManualClock::now()).with_internal_token(INTERNAL));
    let orchestrator = pipelines.then(|| {
        controllers::spawn_pipelines(
            &st,
            pipelines::Settings {
                data_dir: dir.path().join("data"),
                tracking_uri: "http://127.0.0.1:9".into(),
                concurrency: 2,
                worker_id: "test".into(),
                lease: pipelines::DEFAULT_LEASE,
                tracking_token: None,
                tracking_insecure_tls: false,
            },
        )
    });
    Server {
        app: router(st),
        store,
        _dir: dir,
        _orchestrator: orchestrator,
    }
}

/// `who` posts `body` as JSON and expects `status`; answers the JSON.
async fn expect(
    app: &Router,
    who: (&str, &str),
    method: &str,
    uri: &str,
    body: Value,
    status: StatusCode,
) -> Value {
    let a = as_user(app, who, method, uri, Some(&body.to_string())).await;
    assert_eq!(a.status, status, "{method} {uri} as {}: {}", who.0, a.text);
    a.json
}

async fn grant(app: &Router, user: &str, model: &str, level: &str) {
    expect(
        app,
        ADMIN,
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        json!({"username": user, "resource_type": "registered_model",
               "resource_id": model, "permission": level}),
        StatusCode::OK,
    )
    .await;
}

/// A tracking run whose artifact root a version's source may lie in.
fn source_run(store: &dyn MetaStore) -> String {
    store
        .create_run(&NewRun {
            experiment_id: 0,
            user_id: "someone".into(),
            ..NewRun::default()
        })
        .unwrap()
        .info
        .artifact_uri
}

/// `who` registers a version of `model` through the MLflow API.
async fn register(s: &Server, who: (&str, &str), model: &str, extra: Value) -> i64 {
    let mut body =
        json!({"name": model, "source": format!("{}/model", source_run(s.store.as_ref()))});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let v = expect(
        &s.app,
        who,
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        body,
        StatusCode::OK,
    )
    .await;
    v["model_version"]["version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn approval_uri(model: &str, version: i64) -> String {
    format!("/api/v1/models/{model}/versions/{version}/approval")
}

/// The actor of the last event of `kind`.
fn last_actor(store: &dyn MetaStore, kind: &str) -> Option<String> {
    store
        .events_after(0, &[kind.to_string()], 1000)
        .unwrap()
        .pop()
        .unwrap_or_else(|| panic!("no {kind} event"))
        .actor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_another_manager_may_approve_a_version() {
    let s = server(false);
    let app = &s.app;
    // Alice creates the model (and so manages it) and registers version 1.
    expect(
        app,
        ALICE,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "fraud"}),
        StatusCode::OK,
    )
    .await;
    let v1 = register(&s, ALICE, "fraud", json!({})).await;
    let v = expect(
        app,
        ALICE,
        "GET",
        "/api/v1/models/fraud/versions/1",
        json!({}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(v["user_id"], "alice", "the caller registered it: {v}");
    assert_eq!(
        last_actor(s.store.as_ref(), "model_version.created").as_deref(),
        Some("alice")
    );
    grant(app, "bob", "fraud", "MANAGE").await;
    grant(app, "carol", "fraud", "EDIT").await;

    // The creator is refused, whatever actor the body declares.
    let refused = expect(
        app,
        ALICE,
        "POST",
        &approval_uri("fraud", v1),
        json!({"status": "approved", "actor": "bob"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["error_code"], "PERMISSION_DENIED");
    let message = refused["message"].as_str().unwrap();
    for part in [
        "four-eyes",
        "alice may not approve version 1 of model 'fraud'",
        "require_distinct_approver",
        "/api/v1/models/fraud/approval-settings",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    // The server's own pipeline steps (an admin principal) decide nothing
    // through the API.
    let a = request(
        app,
        "POST",
        &approval_uri("fraud", v1),
        Some(r#"{"status": "approved"}"#),
        &[("authorization", &format!("Bearer {INTERNAL}"))],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert!(
        a.json["message"]
            .as_str()
            .unwrap()
            .contains("pipeline step"),
        "{}",
        a.text
    );
    // EDIT and READ are not enough to decide at all, approving or rejecting.
    for who in [CAROL, DAVE] {
        for status in ["approved", "rejected"] {
            let a = expect(
                app,
                who,
                "POST",
                &approval_uri("fraud", v1),
                json!({"status": status}),
                StatusCode::FORBIDDEN,
            )
            .await;
            assert_eq!(a["error_code"], "PERMISSION_DENIED");
        }
    }
    let pending = s.store.get_model_version("fraud", v1).unwrap().approval;
    assert_eq!(
        (pending.status.as_str(), pending.actor),
        ("pending", None),
        "no refusal decided anything"
    );

    // Another manager approves; the decision and its event name the caller,
    // not the declared actor.
    let v = expect(
        app,
        BOB,
        "POST",
        &approval_uri("fraud", v1),
        json!({"status": "approved", "actor": "mallory", "comment": "holdout auc 0.93"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(v["approval"]["status"], "approved");
    assert_eq!(v["approval"]["actor"], "bob");
    assert_eq!(
        last_actor(s.store.as_ref(), "model_version.approved").as_deref(),
        Some("bob")
    );
    // The creator may still reject: that grants nothing.
    let v = expect(
        app,
        ALICE,
        "POST",
        &approval_uri("fraud", v1),
        json!({"status": "rejected", "force": true}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(v["approval"]["actor"], "alice");

    // Admins are held to four-eyes too.
    let v2 = register(&s, ADMIN, "fraud", json!({})).await;
    let a = expect(
        app,
        ADMIN,
        "POST",
        &approval_uri("fraud", v2),
        json!({"status": "approved"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(a["message"].as_str().unwrap().contains("four-eyes"), "{a}");
    // Registering a version as approved is approving it as its creator.
    let a = expect(
        app,
        ALICE,
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        json!({"name": "fraud", "source": format!("{}/model", source_run(s.store.as_ref())),
               "approval_status": "approved"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(a["message"].as_str().unwrap().contains("four-eyes"), "{a}");
    // And deciding at registration needs MANAGE, like deciding later.
    let a = expect(
        app,
        CAROL,
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        json!({"name": "fraud", "source": format!("{}/model", source_run(s.store.as_ref())),
               "approval_status": "rejected"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(a["message"].as_str().unwrap().contains("MANAGE"), "{a}");
    assert_eq!(
        s.store
            .get_registered_model("fraud")
            .unwrap()
            .latest_versions[0]
            .version,
        v2,
        "no refused registration left a version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_four_eyes_off_lets_a_creator_approve() {
    let s = server(false);
    let app = &s.app;
    expect(
        app,
        ALICE,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "churn"}),
        StatusCode::OK,
    )
    .await;
    grant(app, "carol", "churn", "EDIT").await;
    let v1 = register(&s, ALICE, "churn", json!({})).await;
    let model = expect(
        app,
        DAVE,
        "GET",
        "/api/v1/models/churn",
        json!({}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        model["approval_settings"],
        json!({"require_distinct_approver": true, "allow_pipeline_approval": true})
    );

    // Changing the settings needs MANAGE; a wrong body is a 400.
    for who in [CAROL, DAVE] {
        expect(
            app,
            who,
            "PATCH",
            "/api/v1/models/churn/approval-settings",
            json!({"require_distinct_approver": false}),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    for bad in [
        json!({"require_distinct_approver": "no"}),
        json!({"four_eyes": false}),
    ] {
        let a = expect(
            app,
            ALICE,
            "PATCH",
            "/api/v1/models/churn/approval-settings",
            bad,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(a["error_code"], "INVALID_PARAMETER_VALUE");
    }
    let settings = expect(
        app,
        ALICE,
        "PATCH",
        "/api/v1/models/churn/approval-settings",
        json!({"require_distinct_approver": false}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        settings,
        json!({"require_distinct_approver": false, "allow_pipeline_approval": true})
    );
    assert_eq!(
        last_actor(
            s.store.as_ref(),
            "registered_model.approval_settings_updated"
        )
        .as_deref(),
        Some("alice")
    );
    let v = expect(
        app,
        ALICE,
        "POST",
        &approval_uri("churn", v1),
        json!({"status": "approved"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(v["approval"]["actor"], "alice");
    // Registering as approved is then the creator's call too.
    let v2 = register(&s, ALICE, "churn", json!({"approval_status": "approved"})).await;
    let v = s.store.get_model_version("churn", v2).unwrap();
    assert_eq!(v.approval.status.as_str(), "approved");
    assert_eq!(v.approval.actor.as_deref(), Some("alice"));
    assert_eq!(
        last_actor(s.store.as_ref(), "model_version.approved").as_deref(),
        Some("alice")
    );
    // Unknown model: 404.
    let a = expect(
        app,
        ADMIN,
        "PATCH",
        "/api/v1/models/nope/approval-settings",
        json!({}),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(a["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_name_the_caller_not_a_declared_user() {
    let s = server(false);
    // MLflow's runs/create carries a user_id of the client's choosing.
    let exp = expect(
        &s.app,
        BOB,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        json!({"name": "bobs"}),
        StatusCode::OK,
    )
    .await;
    let run = expect(
        &s.app,
        BOB,
        "POST",
        "/api/2.0/mlflow/runs/create",
        json!({"experiment_id": exp["experiment_id"], "user_id": "mallory"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(run["run"]["info"]["user_id"], "mallory", "the run keeps it");
    assert_eq!(
        last_actor(s.store.as_ref(), "run.created").as_deref(),
        Some("bob")
    );
    // The X-Sextant-Actor header is ignored too.
    expect(
        &s.app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "m"}),
        StatusCode::OK,
    )
    .await;
    grant(&s.app, "bob", "m", "EDIT").await;
    register(&s, BOB, "m", json!({})).await;
    let auth = basic("admin", "admin-password-1");
    let a = request(
        &s.app,
        "POST",
        &approval_uri("m", 1),
        Some(r#"{"status": "approved"}"#),
        &[("authorization", &auth), ("x-sextant-actor", "mallory")],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["approval"]["actor"], "admin");
    assert_eq!(
        last_actor(s.store.as_ref(), "model_version.approved").as_deref(),
        Some("admin")
    );
}

/// A pipeline that writes a model directory and registers it approved.
fn trainer(name: &str, model: &str) -> String {
    format!(
        "name: {name}\nsteps:\n  train:\n    run: \"echo fake > $SEXTANT_OUTPUT_MODEL/MLmodel\"\n    \
         outputs: [model]\n  register:\n    register_model: {{name: {model}, model: \
         \"${{steps.train.outputs.model}}\", approval: approved}}\n"
    )
}

/// `who` applies and runs pipeline `name`, which succeeds; answers the
/// finished run's detail.
async fn run_pipeline(s: &Server, who: (&str, &str), name: &str, model: &str) -> Value {
    let (_, status, detail) = run_to_end(s, who, name, model).await;
    assert_eq!(
        status,
        PipelineRunStatus::Succeeded,
        "a withheld approval fails nothing: {detail}"
    );
    detail
}

fn register_step(detail: &Value) -> &Value {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "register")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_gate_approves_only_on_its_appliers_authority() {
    let s = server(true);
    let app = &s.app;

    // Alice's pipeline creates `housing`, which makes her its manager, so
    // its gate approves, as the pipeline; the version is hers.
    let detail = run_pipeline(&s, ALICE, "trainer", "housing").await;
    let step = register_step(&detail);
    assert_eq!(step["model_version"], 1, "{detail}");
    assert!(step["note"].is_null(), "{step}");
    let v = s.store.get_model_version("housing", 1).unwrap();
    assert_eq!(v.approval.status.as_str(), "approved");
    assert_eq!(v.approval.actor.as_deref(), Some("pipeline:trainer"));
    assert_eq!(v.user_id.as_deref(), Some("alice"));
    assert_eq!(
        last_actor(s.store.as_ref(), "model_version.approved").as_deref(),
        Some("pipeline:trainer")
    );
    let stored = expect(
        app,
        DAVE,
        "GET",
        "/api/v1/pipelines/trainer",
        json!({}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["applied_by"], "alice");

    // A model alice does not manage: the version stays pending, and the
    // step and the version say why.
    expect(
        app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "churn"}),
        StatusCode::OK,
    )
    .await;
    // Registering into it takes EDIT (the step runs on her rights), the
    // gate's decision MANAGE.
    grant(app, "alice", "churn", "EDIT").await;
    let detail = run_pipeline(&s, ALICE, "churner", "churn").await;
    let note = register_step(&detail)["note"].as_str().unwrap().to_string();
    for part in [
        "left pending",
        "'alice', who applied pipeline 'churner', lacks MANAGE on model 'churn'",
    ] {
        assert!(note.contains(part), "{part:?} not in {note}");
    }
    let v = s.store.get_model_version("churn", 1).unwrap();
    assert_eq!(
        (v.approval.status.as_str(), v.approval.actor),
        ("pending", None)
    );
    assert_eq!(v.approval.comment.as_deref(), Some(note.as_str()));

    // Granted MANAGE in place of EDIT, her next run's gate approves.
    expect(
        app,
        ADMIN,
        "POST",
        "/api/3.0/mlflow/users/permissions/revoke",
        json!({"username": "alice", "resource_type": "registered_model", "resource_id": "churn"}),
        StatusCode::OK,
    )
    .await;
    grant(app, "alice", "churn", "MANAGE").await;
    run_pipeline(&s, ALICE, "churner", "churn").await;
    let v = s.store.get_model_version("churn", 2).unwrap();
    assert_eq!(v.approval.actor.as_deref(), Some("pipeline:churner"));

    // A model that takes no decisions from pipelines: pending, with why.
    expect(
        app,
        ALICE,
        "PATCH",
        "/api/v1/models/housing/approval-settings",
        json!({"allow_pipeline_approval": false}),
        StatusCode::OK,
    )
    .await;
    let detail = run_pipeline(&s, ALICE, "trainer", "housing").await;
    let note = register_step(&detail)["note"].as_str().unwrap().to_string();
    assert!(note.contains("allow_pipeline_approval is off"), "{note}");
    let v2 = s.store.get_model_version("housing", 2).unwrap();
    assert_eq!(v2.approval.status.as_str(), "pending");

    // The run acted for alice, so the version is hers: four-eyes refuses
    // her, another manager approves.
    let a = expect(
        app,
        ALICE,
        "POST",
        &approval_uri("housing", 2),
        json!({"status": "approved"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(a["message"].as_str().unwrap().contains("four-eyes"), "{a}");
    grant(app, "bob", "housing", "MANAGE").await;
    expect(
        app,
        BOB,
        "POST",
        &approval_uri("housing", 2),
        json!({"status": "approved"}),
        StatusCode::OK,
    )
    .await;
}

/// Grants `user` `level` on pipeline `name`.
async fn grant_pipeline(app: &Router, user: &str, name: &str, level: &str) {
    expect(
        app,
        ADMIN,
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        json!({"username": user, "resource_type": "pipeline",
               "resource_id": name, "permission": level}),
        StatusCode::OK,
    )
    .await;
}

/// Waits for pipeline run `id` to end; answers its status and its detail
/// as `reader` reads it.
async fn ended(s: &Server, reader: (&str, &str), id: &str) -> (PipelineRunStatus, Value) {
    let store = s.store.clone();
    let done = eventually(MINUTE, "the pipeline run to end", || {
        let (store, id) = (store.clone(), id.to_string());
        async move {
            let r = store.get_pipeline_run(&id).unwrap();
            r.status.is_terminal().then_some(r)
        }
    })
    .await;
    let detail = expect(
        &s.app,
        reader,
        "GET",
        &format!("/api/v1/pipeline-runs/{id}"),
        json!({}),
        StatusCode::OK,
    )
    .await;
    (done.status, detail)
}

/// `who` applies and starts pipeline `name` registering into `model`, the
/// run acting for `who`; answers the run's id once it ended, with its
/// status and its detail as `who` reads it.
async fn run_to_end(
    s: &Server,
    who: (&str, &str),
    name: &str,
    model: &str,
) -> (String, PipelineRunStatus, Value) {
    let a = as_user(
        &s.app,
        who,
        "PUT",
        &format!("/api/v1/pipelines/{name}"),
        Some(&trainer(name, model)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let run = expect(
        &s.app,
        who,
        "POST",
        &format!("/api/v1/pipelines/{name}/runs"),
        json!({}),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(run["started_by"], who.0, "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    let (status, detail) = ended(s, who, &id).await;
    (id, status, detail)
}

/// The register step's error.
fn register_error(detail: &Value) -> String {
    register_step(detail)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("the register step has no error: {detail}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_step_registers_on_its_runs_users_rights() {
    let s = server(true);
    let app = &s.app;
    expect(
        app,
        ADMIN,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "churn"}),
        StatusCode::OK,
    )
    .await;

    // Alice may read `churn` (the default), not add versions to it: her
    // run's register step fails saying so, and registers nothing.
    let (id, status, detail) = run_to_end(&s, ALICE, "churner", "churn").await;
    assert_eq!(status, PipelineRunStatus::Failed, "{detail}");
    let error = register_error(&detail);
    for part in [
        "user 'alice'",
        &format!("pipeline run {id}"),
        "lacks EDIT on model 'churn'",
    ] {
        assert!(error.contains(part), "{part:?} not in {error}");
    }
    assert!(s.store.get_model_version("churn", 1).is_err());

    // Bob may retry the run (EDIT on the pipeline) but holds nothing on the
    // model: the retried run acts for him, and fails naming him.
    grant_pipeline(app, "bob", "churner", "EDIT").await;
    let mark = s.store.last_event_id().unwrap();
    let retried = expect(
        app,
        BOB,
        "POST",
        &format!("/api/v1/pipeline-runs/{id}/retry"),
        json!({}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(retried["started_by"], "bob", "{retried}");
    let resumed = s
        .store
        .events_after(mark, &["pipeline_run.resumed".into()], 10)
        .unwrap();
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0].actor.as_deref(), Some("bob"));
    let payload: Value = serde_json::from_str(&resumed[0].payload).unwrap();
    assert_eq!(
        (&payload["started_by"], &payload["previous_started_by"]),
        (&json!("bob"), &json!("alice")),
        "{payload}"
    );
    let (status, detail) = ended(&s, ADMIN, &id).await;
    assert_eq!(status, PipelineRunStatus::Failed, "{detail}");
    let error = register_error(&detail);
    assert!(
        error.contains("user 'bob'") && error.contains("lacks EDIT on model 'churn'"),
        "{error}"
    );

    // Granted EDIT on the model, alice retries: the version is registered,
    // hers, and pending (her gate needs MANAGE).
    grant(app, "alice", "churn", "EDIT").await;
    let retried = expect(
        app,
        ALICE,
        "POST",
        &format!("/api/v1/pipeline-runs/{id}/retry"),
        json!({}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(retried["started_by"], "alice");
    let (status, detail) = ended(&s, ADMIN, &id).await;
    assert_eq!(status, PipelineRunStatus::Succeeded, "{detail}");
    let v = s.store.get_model_version("churn", 1).unwrap();
    assert_eq!(v.user_id.as_deref(), Some("alice"));
    assert_eq!(v.approval.status.as_str(), "pending");

    // Creating a model is open to anyone a DENY does not cover.
    expect(
        app,
        ADMIN,
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        json!({"username": "dave", "resource_type": "registered_model",
               "resource_id": "secret", "permission": "DENY"}),
        StatusCode::OK,
    )
    .await;
    let (_, status, detail) = run_to_end(&s, DAVE, "maker", "secret").await;
    assert_eq!(status, PipelineRunStatus::Failed, "{detail}");
    let error = register_error(&detail);
    assert!(
        error.contains("user 'dave'") && error.contains("may not create model 'secret'"),
        "{error}"
    );
    assert!(s.store.get_registered_model("secret").is_err());
    let (_, status, detail) = run_to_end(&s, DAVE, "maker2", "open").await;
    assert_eq!(status, PipelineRunStatus::Succeeded, "{detail}");
    assert_eq!(
        s.store
            .get_model_version("open", 1)
            .unwrap()
            .user_id
            .as_deref(),
        Some("dave")
    );
}
