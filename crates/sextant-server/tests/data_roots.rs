//! Files the server reads on a caller's behalf — a monitor's data and
//! baseline, a built-in step's data, an endpoint's local model directory — must lie under its data roots once
//! symlinks are resolved; otherwise a 400 (or, when the path is only known
//! while the step runs, a failed step) naming the rule. Through the typed
//! client, as the CLI talks to a server.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use serde_json::{Map, Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_artifacts::data_roots::DataRoots;
use sextant_client::{Applied, Client, ClientError, Definition, RunRequest};
use sextant_server::{AppState, SecurityConfig, router};
use support::{eventually, refused, serve};

const RULE: &str = "outside the directories the server reads from";

struct Dirs {
    data: tempfile::TempDir,
    outside: tempfile::TempDir,
    _artifacts: tempfile::TempDir,
}

/// A server whose data directory (also its working directory here) and
/// `extra` roots are the only places it reads from.
fn server(extra: &[&Path]) -> (Router, AppState, Dirs) {
    let dirs = Dirs {
        data: tempfile::tempdir().unwrap(),
        outside: tempfile::tempdir().unwrap(),
        _artifacts: tempfile::tempdir().unwrap(),
    };
    let app = app(&dirs, extra);
    (app.0, app.1, dirs)
}

fn app(dirs: &Dirs, extra: &[&Path]) -> (Router, AppState) {
    let store: Arc<dyn sextant_store::MetaStore> =
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
    let artifacts =
        Arc::new(ArtifactStore::from_uri(dirs._artifacts.path().to_str().unwrap()).unwrap());
    let extra: Vec<_> = extra.iter().map(|p| p.to_path_buf()).collect();
    let roots = DataRoots::new(dirs.data.path(), dirs.data.path(), &extra).unwrap();
    let st = AppState::new(store, artifacts, SecurityConfig::loopback())
        .with_data_dir(dirs.data.path().to_path_buf())
        .with_data_roots(roots);
    (router(st.clone()), st)
}

/// A CSV of two columns and a baseline of it in `dir/baseline`.
fn data_set(dir: &Path, name: &str) -> String {
    let mut csv = String::from("x,c\n");
    for i in 0..200 {
        csv.push_str(&format!("{},{}\n", i % 17, ["a", "b"][i % 2]));
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    path.display().to_string()
}

fn baseline(dir: &Path) -> String {
    let data = data_set(dir, "base.csv");
    let out = dir.join("baseline");
    sextant_monitor::sagemaker::write_baseline(Path::new(&data), &out, &[]).unwrap();
    out.display().to_string()
}

/// Creates or replaces monitor `name` reading `data` against `baseline`.
async fn monitor(
    c: &Client,
    name: &str,
    data: &str,
    baseline: &str,
) -> Result<Applied, ClientError> {
    let spec = json!({"data": data, "baseline": baseline});
    c.put_monitor(name, Definition::Json(spec)).await
}

/// Starts a run of `pipeline` with `params`.
async fn start(c: &Client, pipeline: &str, params: Value) -> Result<Value, ClientError> {
    let params: Map<String, Value> = serde_json::from_value(params).unwrap();
    let request = RunRequest {
        params,
        no_cache: false,
    };
    c.start_run(pipeline, &request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_reads_only_under_the_data_roots() {
    let (app, _st, dirs) = server(&[]);
    let served = serve(app).await;
    let c = &served.client;
    let base = baseline(dirs.data.path());
    let secret = data_set(dirs.outside.path(), "passwd.csv");
    let e = refused(monitor(c, "leak", &secret, &base).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(
        e.message.contains(RULE)
            && e.message.contains("--data-root")
            && e.message.contains(&secret),
        "{e:?}"
    );

    // A symlink inside the data directory that points out is followed before the check.
    let link = dirs.data.path().join("innocent.csv");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let e = refused(monitor(c, "leak", link.to_str().unwrap(), &base).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(e.message.contains(RULE), "{e:?}");

    // So is a baseline outside.
    let outside_base = baseline(dirs.outside.path());
    let inside = data_set(dirs.data.path(), "window.csv");
    let e = refused(monitor(c, "leak", &inside, &outside_base).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(e.message.contains("monitor baseline"), "{e:?}");

    // Inside the data directory: created, and it runs (each run `201
    // Created`: `serve` holds the status to the document's).
    let v = monitor(c, "fine", &inside, &base).await.unwrap();
    assert!(v.created, "{v:?}");
    let run = c.run_monitor("fine", &json!({})).await.unwrap();
    assert_eq!(run["status"].as_str(), Some("Completed"), "{run}");
    assert_eq!(run["summary"]["rows"], 200);

    // A file swapped for a symlink after the monitor was created fails its next run.
    std::fs::remove_file(&inside).unwrap();
    std::os::unix::fs::symlink(&secret, &inside).unwrap();
    let run = c.run_monitor("fine", &json!({})).await.unwrap();
    assert_eq!(run["status"].as_str(), Some("Failed"), "{run}");
    assert!(run["error"].as_str().unwrap().contains(RULE), "{run}");
    assert!(run["summary"]["rows"].is_null(), "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_root_lets_the_server_read_there() {
    let dirs = Dirs {
        data: tempfile::tempdir().unwrap(),
        outside: tempfile::tempdir().unwrap(),
        _artifacts: tempfile::tempdir().unwrap(),
    };
    let (app, _st) = app(&dirs, &[dirs.outside.path()]);
    let served = serve(app).await;
    let base = baseline(dirs.outside.path());
    let shared = data_set(dirs.outside.path(), "shared.csv");
    let link = dirs.data.path().join("shared.csv");
    std::os::unix::fs::symlink(&shared, &link).unwrap();
    for data in [shared.as_str(), link.to_str().unwrap()] {
        let got = monitor(&served.client, "shared", data, &base).await;
        assert!(got.is_ok(), "{data}: {got:?}");
    }
}

/// A pipeline whose built-in step reads `${params.data}`, and one whose
/// built-in reads what a `run:` step left: a symlink out of the data directory.
const SPLIT: &str = "name: split-it\nparams:\n  data: {type: string}\nsteps:\n  split:\n    uses: builtin/split\n    with: {data: \"${params.data}\"}\n    outputs: [train, test]\n";
const SNEAKY: &str = "name: sneaky\nparams:\n  secret: {type: string}\nsteps:\n  link:\n    run: mkdir -p \"$SEXTANT_OUTPUT_DIR/data\" && ln -s ${params.secret} \"$SEXTANT_OUTPUT_DIR/data/data.csv\"\n    outputs: [data]\n  split:\n    uses: builtin/split\n    with: {data: \"${steps.link.outputs.data}\"}\n    outputs: [train, test]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_steps_read_only_under_the_data_roots() {
    let (app, st, dirs) = server(&[]);
    let served = serve(app).await;
    let c = &served.client;
    let _orchestrator = sextant_server::controllers::spawn_pipelines(
        &st,
        sextant_control::pipelines::Settings {
            data_dir: dirs.data.path().to_path_buf(),
            tracking_uri: "http://127.0.0.1:9".into(),
            concurrency: 2,
            worker_id: "test".into(),
            lease: Duration::from_secs(30),
            tracking_token: None,
            tracking_insecure_tls: false,
        },
    );
    for (name, yaml) in [("split-it", SPLIT), ("sneaky", SNEAKY)] {
        c.put_pipeline(name, yaml.into()).await.unwrap();
    }
    let secret = data_set(dirs.outside.path(), "secret.csv");
    // Known at run start: refused then.
    let e = refused(start(c, "split-it", json!({"data": secret})).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(
        e.message.contains(RULE) && e.message.contains("with.data of step 'split'"),
        "{e:?}"
    );
    // Inside: runs (`201 Created`: `serve` holds the status to the document's).
    let inside = data_set(dirs.data.path(), "inside.csv");
    let v = start(c, "split-it", json!({"data": inside})).await.unwrap();
    let done = ended(c, v["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");

    // Known only when the step runs: the step fails, naming the rule.
    let v = start(c, "sneaky", json!({"secret": secret})).await.unwrap();
    let done = ended(c, v["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(done.to_string().contains(RULE), "{done}");
}

/// Polls pipeline run `id` until it ended (a minute at most).
async fn ended(c: &Client, id: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("run {id} to end"),
        || async {
            let run = c.get_pipeline_run(id).await.unwrap();
            match run["status"].as_str() {
                Some("SUCCEEDED" | "FAILED" | "CANCELLED") => Ok(run),
                _ => Err(run),
            }
        },
    )
    .await
}

/// An endpoint variant's local model directory is read by the server (loaded
/// in process, or served by a child it starts), so it is confined too.
#[tokio::test]
async fn an_endpoints_local_model_directory_lies_under_the_data_roots() {
    let (app, _st, dirs) = server(&[]);
    let served = serve(app).await;
    let endpoint = |model: &Path| {
        let yaml = format!("name: local\nvariants:\n  - model: {}\n", model.display());
        served
            .client
            .put_endpoint("local", Definition::Yaml(yaml), Duration::ZERO)
    };
    let outside = dirs.outside.path().join("model");
    std::fs::create_dir_all(&outside).unwrap();
    let e = refused(endpoint(&outside).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(
        e.message.contains(RULE) && e.message.contains("model directory"),
        "{e:?}"
    );

    // Inside the data directory the rule holds; this directory then fails
    // for what it is (no MLmodel), not for where it is.
    let inside = dirs.data.path().join("model");
    std::fs::create_dir_all(&inside).unwrap();
    let e = refused(endpoint(&inside).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(
        !e.message.contains(RULE) && e.message.contains("MLmodel"),
        "{e:?}"
    );

    // A file inside the model directory that links out is refused as well.
    std::os::unix::fs::symlink(
        data_set(dirs.outside.path(), "secret.csv"),
        inside.join("model.onnx"),
    )
    .unwrap();
    let e = refused(endpoint(&inside).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert!(e.message.contains(RULE), "{e:?}");
}
