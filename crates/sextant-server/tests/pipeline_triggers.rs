//! Event triggers in-process: approving a model version through the native
//! API starts the pipeline that listens for it, recording the event.
//! Through the typed client, as the CLI talks to a server.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Approval, Decision};
use sextant_control::pipelines;
use sextant_core::entities::NewRun;
use sextant_core::pipeline_runs::{PipelineRun, PipelineRunStatus, TriggerKind};
use sextant_core::registry::NewModelVersion;
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::{MetaStore, PipelineRunSearch};
use support::{eventually, serve};

fn runs_of(store: &dyn MetaStore, pipeline: &str) -> Vec<PipelineRun> {
    store
        .list_pipeline_runs(&PipelineRunSearch {
            pipeline: Some(pipeline.to_string()),
            status: None,
            max_results: 100,
            offset: 0,
        })
        .unwrap()
        .items
}

/// How long a triggered run may take to appear or to end.
const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_version_starts_the_listening_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
    let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
    let state = AppState::new(
        store.clone(),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    );
    let orchestrator = controllers::spawn_pipelines(
        &state,
        pipelines::Settings {
            data_dir: dir.path().to_path_buf(),
            tracking_uri: "http://127.0.0.1:9".into(),
            concurrency: 2,
            worker_id: "test".into(),
            lease: sextant_control::pipelines::DEFAULT_LEASE,
            tracking_token: None,
            tracking_insecure_tls: false,
        },
    );
    let served = serve(router(state)).await;
    let c = &served.client;

    let source = store
        .create_run(&NewRun {
            experiment_id: 0,
            user_id: "tester".into(),
            run_name: None,
            start_time: Some(1),
            tags: vec![],
        })
        .unwrap();
    store.create_registered_model("fraud", None, &[]).unwrap();
    store
        .create_model_version(&NewModelVersion {
            name: "fraud".into(),
            source: format!("{}/model", source.info.artifact_uri),
            run_id: Some(source.info.run_id),
            ..Default::default()
        })
        .unwrap();
    let deploy = "name: deploy\nparams:\n  model: {type: string}\n  version: {type: int}\n\
                  on:\n  - event: model_version.approved\n    where: {name: fraud}\n    \
                  params: {model: \"${event.payload.name}\", version: \"${event.payload.version}\"}\n\
                  steps:\n  check:\n    run: \"true\"\n";
    // Sorted before `deploy`, so it has seen the event once `deploy` reacted.
    let other = "name: audit\non:\n  - event: model_version.approved\n    where: {name: churn}\n\
                 steps:\n  check:\n    run: \"true\"\n";
    let nightly = "name: nightly\nschedule: \"0 3 * * *\"\nsteps:\n  a:\n    run: \"true\"\n  \
                   b:\n    run: \"true\"\n";
    for (name, text) in [("deploy", deploy), ("audit", other), ("nightly", nightly)] {
        c.put_pipeline(name, text.into()).await.unwrap();
    }
    // The listing says what starts each, read from its spec by the server.
    let listed = c.list_pipelines(10, 0).await.unwrap().items;
    let starts: Vec<Value> = listed
        .iter()
        .map(|p| json!([p["name"], p["steps"], p["schedule"], p["triggers"]]))
        .collect();
    assert_eq!(
        starts,
        vec![
            json!(["audit", ["check"], null, ["model_version.approved"]]),
            json!(["deploy", ["check"], null, ["model_version.approved"]]),
            json!(["nightly", ["a", "b"], "0 3 * * *", []]),
        ]
    );

    let approve = Decision {
        status: Approval::Approved,
        force: false,
        comment: None,
        actor: Some("alice".into()),
    };
    c.decide("fraud", 1, &approve).await.unwrap();
    let approved = store
        .events_after(0, &["model_version.approved".to_string()], 10)
        .unwrap();
    assert_eq!(approved.len(), 1);

    let run = eventually(MINUTE, "the triggered run", || async {
        runs_of(store.as_ref(), "deploy").pop()
    })
    .await;
    assert_eq!(run.trigger_kind, TriggerKind::Event);
    assert_eq!(run.trigger_event, Some(approved[0].id));
    let params: Value = serde_json::from_str(&run.params).unwrap();
    assert_eq!(params, json!({"model": "fraud", "version": 1}));
    assert!(
        runs_of(store.as_ref(), "audit").is_empty(),
        "its where does not match"
    );

    let done = eventually(MINUTE, "the triggered run to end", || async {
        let r = store.get_pipeline_run(&run.id).unwrap();
        r.status.is_terminal().then_some(r)
    })
    .await;
    assert_eq!(done.status, PipelineRunStatus::Succeeded);
    assert_eq!(
        runs_of(store.as_ref(), "deploy").len(),
        1,
        "one event, one run"
    );
    orchestrator.abort();
}
