//! The step cache in-process: a repeated run reuses cached steps and says
//! so; a changed parameter, input, named file or `--no-cache` makes a miss
//! that `explain-cache` attributes to the part of the key that changed;
//! outputs are content-addressed (an unchanged output from a changed step
//! still hits downstream); vanished outputs and expired entries are misses.
//! Through the typed client, as the CLI talks to a server.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Client, RunRequest};
use sextant_control::pipelines;
use sextant_core::clock::{Clock, ManualClock};
use sextant_core::pipeline_runs::PipelineRunStatus;
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use support::{Served, eventually, serve};

struct Harness {
    served: Served,
    store: Arc<dyn MetaStore>,
    /// Where the artifact store keeps its files.
    artifacts: PathBuf,
    /// Scripts and execution counters, outside the data directory.
    work: PathBuf,
    /// The orchestrator's clock: cache expiry reads it, and only the test
    /// moves it.
    clock: Arc<ManualClock>,
    _dirs: Vec<tempfile::TempDir>,
    _orchestrator: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn new() -> Harness {
        let (data, art, work) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let store: Arc<dyn MetaStore> =
            Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
        let artifacts = ArtifactStore::from_uri(art.path().to_str().unwrap()).unwrap();
        // Every write whose time the queue compares takes it from this
        // clock, so a task queued now is due now.
        let clock = ManualClock::now();
        let state = AppState::new(
            store.clone(),
            Arc::new(artifacts),
            SecurityConfig::loopback(),
        )
        .with_clock(clock.clone());
        let orchestrator = controllers::spawn_pipelines(
            &state,
            pipelines::Settings {
                data_dir: data.path().to_path_buf(),
                tracking_uri: "http://127.0.0.1:9".into(),
                concurrency: 2,
                worker_id: "test".into(),
                lease: sextant_control::pipelines::DEFAULT_LEASE,
                tracking_token: None,
                tracking_insecure_tls: false,
            },
        );
        Harness {
            served: serve(router(state)).await,
            store,
            artifacts: art.path().to_path_buf(),
            work: work.path().to_path_buf(),
            clock,
            _dirs: vec![data, art, work],
            _orchestrator: orchestrator,
        }
    }

    fn client(&self) -> &Client {
        &self.served.client
    }

    async fn apply(&self, name: &str, text: &str) {
        self.client().put_pipeline(name, text.into()).await.unwrap();
    }

    /// Runs `pipeline` to its end (started with `201 Created`: `serve`
    /// holds the status to the document's); returns the run as the API
    /// shows it.
    async fn run(&self, pipeline: &str, request: RunRequest) -> Value {
        let v = self.client().start_run(pipeline, &request).await.unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let run = eventually(
            Duration::from_secs(60),
            &format!("run {id} to end"),
            || async {
                let run = self.store.get_pipeline_run(&id).unwrap();
                run.status.is_terminal().then_some(run)
            },
        )
        .await;
        let detail = self.client().get_pipeline_run(&id).await.unwrap();
        assert_eq!(
            run.status,
            PipelineRunStatus::Succeeded,
            "run {id} ended {detail}"
        );
        detail
    }

    async fn explain(&self, run: &Value, step: &str) -> Value {
        let id = run["id"].as_str().unwrap();
        self.client().explain_cache(id, step).await.unwrap()
    }

    /// How many times the step that appends to `counter` ran.
    fn executions(&self, counter: &str) -> usize {
        std::fs::read_to_string(self.work.join(counter))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

/// A run with the pipeline's defaults.
fn defaults() -> RunRequest {
    RunRequest::default()
}

/// A run with parameter `n`.
fn with_n(n: i64) -> RunRequest {
    let mut params = serde_json::Map::new();
    params.insert("n".into(), json!(n));
    RunRequest {
        params,
        no_cache: false,
    }
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

fn hit(run: &Value, name: &str) -> bool {
    step(run, name)["cache"]["hit"].as_bool().unwrap()
}

fn digest(run: &Value, name: &str, output: &str) -> String {
    step(run, name)["outputs"][output]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `make` writes a file that depends only on `n`; `copy` copies it; `check`
/// (uncached) reads `copy`'s output, which a cache hit must bring back.
fn pipeline(work: &Path) -> String {
    let w = work.display();
    format!(
        r#"name: cached
params:
  n: {{type: int, default: 1}}
steps:
  make:
    run: "sh {w}/make.sh ${{params.n}} ${{outputs.data}}"
    outputs: [data]
    cache: {{}}
  copy:
    run: "echo x >> {w}/copy.count && cp ${{steps.make.outputs.data}}/out.txt ${{outputs.copy}}/out.txt"
    outputs: [copy]
    cache: {{expire_after: 30d}}
  check:
    run: "grep -q value ${{steps.copy.outputs.copy}}/out.txt"
"#
    )
}

const MAKE: &str =
    "echo x >> \"$(dirname \"$0\")/make.count\"\necho \"value $1\" > \"$2/out.txt\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_misses_and_their_explanations() {
    let h = Harness::new().await;
    std::fs::write(h.work.join("make.sh"), MAKE).unwrap();
    h.apply("cached", &pipeline(&h.work)).await;

    let first = h.run("cached", defaults()).await;
    assert_eq!(
        (h.executions("make.count"), h.executions("copy.count")),
        (1, 1)
    );
    assert!(!hit(&first, "make") && !hit(&first, "copy"));
    let e = h.explain(&first, "make").await;
    assert_eq!(
        e["summary"], "miss: no earlier execution of this step",
        "{e}"
    );
    let e = h.explain(&first, "check").await;
    assert_eq!(e["cacheable"], false, "{e}");

    // The same run again: both cached steps are reused, the uncached consumer
    // reads the reused output (fetched by digest into the new run).
    let second = h.run("cached", defaults()).await;
    assert_eq!(
        (h.executions("make.count"), h.executions("copy.count")),
        (1, 1)
    );
    assert!(hit(&second, "make") && hit(&second, "copy"), "{second}");
    assert_eq!(
        digest(&first, "make", "data"),
        digest(&second, "make", "data")
    );
    let e = h.explain(&second, "copy").await;
    assert_eq!(
        e["summary"],
        format!(
            "hit: reused the execution from run {}",
            first["id"].as_str().unwrap()
        ),
        "{e}"
    );
    assert_eq!(e["changes"], json!([]), "{e}");

    // A changed parameter: `make` misses on it, `copy` on its input digest.
    let third = h.run("cached", with_n(2)).await;
    assert_eq!(
        (h.executions("make.count"), h.executions("copy.count")),
        (2, 2)
    );
    let e = h.explain(&third, "make").await;
    assert_eq!(e["changes"], json!(["params.n: 1 → 2"]), "{e}");
    let e = h.explain(&third, "copy").await;
    let changes = e["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{e}");
    assert!(
        changes[0]
            .as_str()
            .unwrap()
            .starts_with("inputs.steps.make.outputs.data: sha256:"),
        "{e}"
    );

    // A changed script: `make` misses on the file's digest, but makes the
    // same bytes as the first run, so `copy` (keyed by content) hits.
    std::fs::write(h.work.join("make.sh"), format!("{MAKE}# edited\n")).unwrap();
    let fourth = h.run("cached", defaults()).await;
    assert_eq!(
        (h.executions("make.count"), h.executions("copy.count")),
        (3, 2)
    );
    assert!(!hit(&fourth, "make") && hit(&fourth, "copy"), "{fourth}");
    let e = h.explain(&fourth, "make").await;
    let script = h.work.join("make.sh").display().to_string();
    let changes = e["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{e}");
    assert!(
        changes[0]
            .as_str()
            .unwrap()
            .starts_with(&format!("files.{script}: sha256:")),
        "{e}"
    );

    // --no-cache runs everything and says why.
    let fifth = h
        .run(
            "cached",
            RunRequest {
                no_cache: true,
                ..defaults()
            },
        )
        .await;
    assert_eq!(
        (h.executions("make.count"), h.executions("copy.count")),
        (4, 3)
    );
    assert_eq!(fifth["no_cache"], true);
    let e = h.explain(&fifth, "copy").await;
    assert_eq!(
        e["summary"], "miss: the run was started with --no-cache",
        "{e}"
    );

    // Outputs gone from the artifact store: the entries are unusable.
    std::fs::remove_dir_all(h.artifacts.join("pipeline-outputs")).unwrap();
    let sixth = h.run("cached", defaults()).await;
    // `make` runs again and republishes its output; `copy`'s output holds
    // the same single file, so it has the same digest and is whole again:
    // `copy` hits.
    assert_eq!(
        (h.executions("make.count"), h.executions("copy.count")),
        (5, 3)
    );
    assert!(hit(&sixth, "copy"), "{sixth}");
    let e = h.explain(&sixth, "make").await;
    let summary = e["summary"].as_str().unwrap();
    assert!(
        summary.contains("lost its output 'data' (sha256:"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_entry_is_a_miss() {
    let h = Harness::new().await;
    let w = h.work.display();
    let text = format!(
        "name: expiring\nsteps:\n  s:\n    run: \"echo x >> {w}/s.count\"\n    cache: {{expire_after: 1ms}}\n"
    );
    h.apply("expiring", &text).await;
    let first = h.run("expiring", defaults()).await;
    // The clock passes the entry's expiry before the second run looks it up.
    let entry = h.store.cache_entries("expiring", "s", None, 0, 1).unwrap();
    assert_eq!(entry[0].created_time, h.clock.now_ms());
    h.clock.advance(Duration::from_millis(2));
    let second = h.run("expiring", defaults()).await;
    assert_eq!(h.executions("s.count"), 2);
    let e = h.explain(&second, "s").await;
    assert_eq!(
        e["summary"],
        format!(
            "miss: the cached execution from run {} expired (expire_after 1ms)",
            first["id"].as_str().unwrap()
        ),
        "{e}"
    );
}
