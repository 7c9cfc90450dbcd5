//! The client against a real server on a loopback socket (the router over
//! an in-memory store): each family of calls, and errors that carry the
//! server's status, `error_code` and message.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{
    Approval, ApprovalSettings, ApprovalSettingsUpdate, Claim, Client, ClientError, Decision,
    Definition, EventsQuery, Heartbeat, LogQuery, Metric, NewVersion, RunRequest, RunSearch,
    WebhookChanges, WebhookEvent, WebhookRequest,
};
use sextant_control::pipelines;
use sextant_core::entities::NewRun;
use sextant_core::registry::NewModelVersion;
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;

/// A server on a free loopback port; its orchestrator leaves every work
/// step to remote workers, so tests can claim them.
struct Served {
    client: Client,
    store: Arc<dyn MetaStore>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn serve() -> Served {
    let (data, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
    let artifacts = ArtifactStore::from_uri(art.path().to_str().unwrap()).unwrap();
    let state = AppState::new(
        store.clone(),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    controllers::spawn_pipelines(
        &state,
        pipelines::Settings {
            data_dir: data.path().to_path_buf(),
            tracking_uri: format!("http://{addr}"),
            concurrency: 0,
            worker_id: "server".into(),
            lease: pipelines::DEFAULT_LEASE,
            tracking_token: None,
            tracking_insecure_tls: false,
        },
    );
    let app = router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    // `host:port` without a scheme, as a user may give `--server`.
    let client = Client::new(&addr.to_string()).unwrap();
    Served {
        client,
        store,
        _dirs: vec![data, art],
    }
}

impl Served {
    /// Registers `name` with one version.
    fn model(&self, name: &str) {
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

/// The server's refusal, or a failure naming what came instead.
fn refusal(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Server {
            status,
            code,
            message,
        } => (status, code, message),
        other => panic!("not the server's refusal: {other}"),
    }
}

#[tokio::test]
async fn models_approvals_and_aliases() {
    let s = serve().await;
    s.model("churn");
    let c = &s.client;

    let page = c.list_models(None, 1000, None).await.unwrap();
    assert_eq!(page.models.len(), 1);
    assert_eq!(page.models[0]["name"], "churn");
    assert_eq!(page.next_page_token, None);
    let none = c
        .list_models(Some("name LIKE 'x%'"), 1000, None)
        .await
        .unwrap();
    assert!(none.models.is_empty());

    let decision = Decision {
        status: Approval::Approved,
        force: false,
        comment: Some("looks good".into()),
        actor: Some("alice".into()),
    };
    let version = c.decide("churn", 1, &decision).await.unwrap();
    assert_eq!(version["approval"]["actor"], "alice", "{version}");
    // A second decision without force is a conflict the caller can name.
    let e = c.decide("churn", 1, &decision).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    let forced = Decision {
        status: Approval::Rejected,
        force: true,
        ..decision
    };
    let version = c.decide("churn", 1, &forced).await.unwrap();
    assert_eq!(version["approval"]["status"], "rejected", "{version}");

    // Forced back to undecided.
    let pending = Decision {
        status: Approval::Pending,
        force: true,
        comment: None,
        actor: None,
    };
    let version = c.decide("churn", 1, &pending).await.unwrap();
    assert_eq!(version["approval"]["status"], "pending", "{version}");

    c.set_alias("churn", "champion", 1).await.unwrap();
    let model = c.get_model("churn").await.unwrap();
    assert_eq!(model["aliases"]["champion"], 1, "{model}");
    c.delete_alias("churn", "champion").await.unwrap();
    let model = c.get_model("churn").await.unwrap();
    assert_eq!(model["aliases"], json!({}), "{model}");
    let v1 = c.get_model_version("churn", 1).await.unwrap();
    assert_eq!(v1["version"], 1, "{v1}");

    // Approval settings: read, changed one at a time, answered whole.
    let on = ApprovalSettings {
        require_distinct_approver: true,
        allow_pipeline_approval: true,
    };
    assert_eq!(c.approval_settings("churn").await.unwrap(), on);
    let off = ApprovalSettingsUpdate {
        allow_pipeline_approval: Some(false),
        ..ApprovalSettingsUpdate::default()
    };
    let changed = c.set_approval_settings("churn", &off).await.unwrap();
    assert_eq!(
        changed,
        ApprovalSettings {
            allow_pipeline_approval: false,
            ..on
        }
    );
    assert_eq!(c.approval_settings("churn").await.unwrap(), changed);
    let e = c.set_approval_settings("nope", &off).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");

    let uri = c.model_version_download_uri("churn", 1).await.unwrap();
    assert!(uri.starts_with("mlflow-artifacts:"), "{uri}");

    // A 404 and a 400 carry the server's code and message.
    let (status, code, message) = refusal(c.get_model("nope").await.unwrap_err());
    assert_eq!(
        (status, code.as_str()),
        (404, "RESOURCE_DOES_NOT_EXIST"),
        "{message}"
    );
    assert!(message.contains("nope"), "{message}");
    let (status, code, message) = refusal(
        c.list_models(Some("name ~~ 'x'"), 1000, None)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status, code.as_str()),
        (400, "INVALID_PARAMETER_VALUE"),
        "{message}"
    );
}

#[tokio::test]
async fn endpoints_and_monitors_refuse_with_codes() {
    let s = serve().await;
    let c = &s.client;
    assert_eq!(
        c.list_endpoints().await.unwrap()["endpoints"],
        json!([]),
        "no endpoints yet"
    );
    let e = c.get_endpoint("nope").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    assert_eq!(e.error_code(), Some("RESOURCE_DOES_NOT_EXIST"), "{e}");
    let e = c.promote("nope").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    let (status, code, message) = refusal(
        c.put_endpoint(
            "bad",
            Definition::Yaml("variants: []\n".into()),
            Duration::ZERO,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (status, code.as_str()),
        (400, "INVALID_PARAMETER_VALUE"),
        "{message}"
    );
    let e = c
        .upload_ground_truth("nope", &[json!({"inference_id": "a", "label": 1})])
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");

    assert_eq!(c.list_monitors().await.unwrap()["monitors"], json!([]));
    let e = c.get_monitor("nope").await.unwrap_err();
    assert_eq!(e.error_code(), Some("RESOURCE_DOES_NOT_EXIST"), "{e}");
    let e = c.run_monitor("nope", &json!({})).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    let e = c
        .put_monitor("bad", Definition::Json(json!({"window": "forever"})))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert_eq!(e.error_code(), Some("INVALID_PARAMETER_VALUE"), "{e}");
}

const PIPELINE: &str = r#"
name: remote
params:
  threshold: {type: float, default: 0.5}
steps:
  work:
    run: "echo never runs here"
  gate:
    condition: "steps.work.metrics.score > params.threshold"
    then: [after]
    else: fail
  after:
    run: "echo after"
"#;

/// A work order as far as these tests read it.
#[derive(serde::Deserialize)]
struct Order {
    task_id: i64,
    fencing: i64,
    step: String,
    pipeline_run: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_runs_and_the_worker_protocol() {
    let s = serve().await;
    let c = &s.client;
    let stored = c.put_pipeline("remote", PIPELINE.into()).await.unwrap();
    assert!(stored["result"].is_string(), "{stored}");
    let listed = c.list_pipelines(1000, 0).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.next_offset, None);

    let run = c.start_run("remote", &RunRequest::default()).await.unwrap();
    let id = run["id"].as_str().unwrap().to_string();
    let runs = c
        .list_pipeline_runs(&[("pipeline", "remote".into())], 10, 0)
        .await
        .unwrap();
    assert_eq!(runs.items[0]["id"], id.as_str());

    // A worker claims the work step, renews it, and reports it done.
    let claim = Claim {
        worker: "w1".into(),
        lease_ms: 30_000,
        wait_ms: 10_000,
    };
    let order: Order = c.claim_task(&claim).await.unwrap().expect("a work order");
    assert_eq!(
        (order.step.as_str(), order.pipeline_run.as_str()),
        ("work", id.as_str())
    );
    let beat = Heartbeat {
        fencing: order.fencing,
        lease_ms: 30_000,
    };
    c.heartbeat(order.task_id, &beat).await.unwrap();
    let stale = Heartbeat {
        fencing: order.fencing + 1,
        lease_ms: 30_000,
    };
    let e = c.heartbeat(order.task_id, &stale).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert!(!e.is_transport());
    let outcome = json!({"status": "succeeded", "result": {"metrics": {"score": 0.9}}});
    c.report_outcome(order.task_id, order.fencing, &outcome)
        .await
        .unwrap();
    let next: Order = c.claim_task(&claim).await.unwrap().expect("the next order");
    assert_eq!(next.step, "after");

    // The step's log exists once it started; nothing was written to it here.
    let chunk = c
        .step_log(
            &id,
            &LogQuery {
                step: "after".into(),
                stream: "stdout".into(),
                attempt: Some(1),
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(chunk.attempts, 1, "{chunk:?}");
    assert_eq!(chunk.data, "");

    let detail = c.get_pipeline_run(&id).await.unwrap();
    assert_eq!(detail["steps"][0]["name"], "work", "{detail}");
    let e = c.explain_cache(&id, "nope").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    let cancelled = c.cancel_run(&id).await.unwrap();
    assert_eq!(cancelled["id"], id.as_str());
    let e = c.get_pipeline_run("nope").await.unwrap_err();
    assert_eq!(e.error_code(), Some("RESOURCE_DOES_NOT_EXIST"), "{e}");

    // The events feed saw the run start; a long-poll answers with it.
    let page = c
        .events(&EventsQuery {
            after: Some("0".into()),
            limit: 1000,
            wait: Duration::from_secs(5),
            kinds: Some("pipeline_run.*".into()),
        })
        .await
        .unwrap();
    let kinds: Vec<&Value> = page.events.iter().map(|e| &e["kind"]).collect();
    assert!(kinds.contains(&&json!("pipeline_run.created")), "{kinds:?}");
    assert!(page.cursor > 0);
    let e = c
        .events(&EventsQuery {
            after: Some("yesterday".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
}

#[tokio::test]
async fn artifacts_round_trip_through_the_proxy() {
    let s = serve().await;
    let c = &s.client;
    c.put_artifact("outputs/a/data.txt", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"streamed"))]);
    c.put_artifact_stream("outputs/a/b/more.txt", chunks)
        .await
        .unwrap();
    let listing = c.list_artifacts("outputs/a").await.unwrap();
    let mut names: Vec<(String, bool)> = listing
        .files
        .iter()
        .map(|f| (f.path.clone(), f.is_dir))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [("b".to_string(), true), ("data.txt".to_string(), false)]
    );
    let got = c.artifact_bytes("outputs/a/data.txt").await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    let mut stream = c
        .artifact_stream("outputs/a/b/more.txt")
        .await
        .unwrap()
        .expect("stored");
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(all, b"streamed");
    assert!(c.artifact_bytes("outputs/none").await.unwrap().is_none());
    assert!(c.artifact_stream("outputs/none").await.unwrap().is_none());
}

#[tokio::test]
async fn experiments_and_runs_through_the_mlflow_api() {
    let s = serve().await;
    let c = &s.client;
    assert_eq!(c.experiment_by_name("churn").await.unwrap(), None);
    let id = c.create_experiment("churn").await.unwrap();
    let found = c
        .experiment_by_name("churn")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(found["experiment_id"], id.as_str());
    let e = c.create_experiment("churn").await.unwrap_err();
    assert_eq!(e.error_code(), Some("RESOURCE_ALREADY_EXISTS"), "{e}");

    let run = c.create_run(&id, Some("first")).await.unwrap();
    let run_id = run["info"]["run_id"].as_str().unwrap().to_string();
    let metric = Metric {
        key: "rmse".into(),
        value: 0.25,
        timestamp: 1,
        step: 0,
    };
    c.log_metric(&run_id, &metric).await.unwrap();
    let got = c.get_run(&run_id).await.unwrap();
    assert_eq!(got["data"]["metrics"][0]["key"], "rmse", "{got}");
    assert_eq!(got["info"]["run_name"], "first", "{got}");
    let e = c.get_run("nope").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");

    let search = RunSearch {
        experiment_ids: vec![id.clone()],
        filter: "attributes.run_name = 'first'".into(),
        max_results: 10,
    };
    let found = c.search_runs(&search).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["info"]["run_id"], run_id.as_str());
    let none = RunSearch {
        filter: "attributes.run_name = 'second'".into(),
        ..search
    };
    assert!(c.search_runs(&none).await.unwrap().is_empty());
}

#[tokio::test]
async fn registered_models_and_versions_through_the_mlflow_api() {
    let s = serve().await;
    let c = &s.client;
    let model = c
        .create_registered_model("churn", Some("churn risk"))
        .await
        .unwrap();
    assert_eq!(model["description"], "churn risk", "{model}");
    let e = c.create_registered_model("churn", None).await.unwrap_err();
    assert_eq!(e.error_code(), Some("RESOURCE_ALREADY_EXISTS"), "{e}");

    let run = c.create_run("0", None).await.unwrap();
    let version = NewVersion {
        name: "churn".into(),
        source: format!("{}/model", run["info"]["artifact_uri"].as_str().unwrap()),
        run_id: run["info"]["run_id"].as_str().map(str::to_string),
    };
    let v = c.create_model_version(&version).await.unwrap();
    assert_eq!(v["version"], "1", "{v}");
    let outside = NewVersion {
        source: "/etc".into(),
        ..version
    };
    let e = c.create_model_version(&outside).await.unwrap_err();
    assert_eq!(e.error_code(), Some("INVALID_PARAMETER_VALUE"), "{e}");
}

#[tokio::test]
async fn webhooks_through_the_mlflow_api() {
    let s = serve().await;
    let c = &s.client;
    // Without `--webhook-allow-private`, a public address; no secret, as
    // this server has no key to seal one with.
    let hook = WebhookRequest {
        name: "h1".into(),
        url: "https://93.184.215.14/x".into(),
        events: vec![
            WebhookEvent::Mlflow {
                entity: "REGISTERED_MODEL".into(),
                action: "CREATED".into(),
            },
            WebhookEvent::Kind("run.*".into()),
        ],
        secret: None,
    };
    let created = c.create_webhook(&hook).await.unwrap();
    assert_eq!(
        created["events"],
        json!([{"entity": "REGISTERED_MODEL", "action": "CREATED"}]),
        "{created}"
    );
    assert_eq!(created["sextant_events"], json!(["run.*"]), "{created}");
    let id = created["webhook_id"].as_str().unwrap().to_string();
    let moved = WebhookChanges {
        url: Some("https://93.184.215.15/y".into()),
        ..WebhookChanges::default()
    };
    let updated = c.update_webhook(&id, &moved).await.unwrap();
    assert_eq!(updated["url"], "https://93.184.215.15/y", "{updated}");
    let private = WebhookChanges {
        url: Some("http://127.0.0.1/".into()),
        ..WebhookChanges::default()
    };
    let e = c.update_webhook(&id, &private).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(c.webhook_deliveries(&id).await.unwrap().is_empty());
}

#[tokio::test]
async fn transport_errors_are_told_apart() {
    // Nothing listens on the discard port of the loopback.
    let c = Client::new("http://127.0.0.1:9").unwrap();
    let e = c.get_model("churn").await.unwrap_err();
    assert!(e.is_transport(), "{e}");
    assert_eq!(e.status(), None);
    assert!(
        e.to_string()
            .starts_with("cannot reach the Sextant server at http://127.0.0.1:9/: "),
        "{e}"
    );
}
