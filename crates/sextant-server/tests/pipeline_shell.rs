//! Parameters meet `run:` commands through the orchestrator and a real `sh`:
//! whatever a string parameter holds (quotes, spaces, `$`, backticks, line
//! breaks, globs), the command receives exactly that string as one argument,
//! in a command line as in an argument list, and nothing in it runs.
//! Through the typed client, as the CLI talks to a server.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Client, ClientError, RunRequest};
use sextant_control::pipelines;
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use support::{Served, eventually, refused, serve};

/// In the run's own directory (so that an injected `touch` would leave a
/// file there), each step writes the arguments `printf` receives,
/// NUL-terminated: from a command line (`argv-line`), from an argument list
/// that no shell of ours parses (`argv-list`, through `sh -c '…' dir "$x"`),
/// and with the value inside a word (`argv-embedded`); `env` is the value of
/// `SEXTANT_PARAM_X`.
const ECHO: &str = r#"
name: echo
params:
  x: {type: string}
  dir: {type: string}
steps:
  line:
    run: cd ${params.dir} && printf '%s\0' ${params.x} > argv-line && printf '%s' "$SEXTANT_PARAM_X" > env
  list:
    run: [sh, -c, 'cd "$0" && printf "%s\0" "$@" > argv-list', "${params.dir}", "${params.x}"]
  embedded:
    run: cd ${params.dir} && printf '%s\0' pre${params.x}/post > argv-embedded
"#;

struct Harness {
    served: Served,
    store: Arc<dyn MetaStore>,
    _dirs: Vec<tempfile::TempDir>,
    _orchestrator: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn new() -> Harness {
        let (data, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store: Arc<dyn MetaStore> =
            Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
        let artifacts = ArtifactStore::from_uri(art.path().to_str().unwrap()).unwrap();
        let state = AppState::new(
            store.clone(),
            Arc::new(artifacts),
            SecurityConfig::loopback(),
        );
        let orchestrator = controllers::spawn_pipelines(
            &state,
            pipelines::Settings {
                data_dir: data.path().to_path_buf(),
                tracking_uri: "http://127.0.0.1:9".into(),
                concurrency: 3,
                worker_id: "test".into(),
                lease: sextant_control::pipelines::DEFAULT_LEASE,
                tracking_token: None,
                tracking_insecure_tls: false,
            },
        );
        let h = Harness {
            served: serve(router(state)).await,
            store,
            _dirs: vec![data, art],
            _orchestrator: orchestrator,
        };
        h.apply("echo", ECHO).await;
        h
    }

    fn client(&self) -> &Client {
        &self.served.client
    }

    async fn apply(&self, name: &str, text: &str) {
        self.client().put_pipeline(name, text.into()).await.unwrap();
    }

    /// Starts a run of `pipeline` with `params`.
    async fn start(&self, pipeline: &str, params: Value) -> Result<Value, ClientError> {
        let request = RunRequest {
            params: serde_json::from_value(params).unwrap(),
            no_cache: false,
        };
        self.client().start_run(pipeline, &request).await
    }

    /// Runs `pipeline` with `params` to its end (started with `201
    /// Created`: `serve` holds the status to the document's); returns the
    /// run as the API shows it.
    async fn run_to_end(&self, pipeline: &str, params: Value) -> Value {
        let v = self.start(pipeline, params).await.unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        eventually(
            Duration::from_secs(60),
            &format!("run {id} to end"),
            || async {
                let run = self.store.get_pipeline_run(&id).unwrap();
                run.status.is_terminal().then_some(())
            },
        )
        .await;
        self.client().get_pipeline_run(&id).await.unwrap()
    }

    /// Runs `echo` with `x` in a fresh directory under `root`; returns the
    /// directory once the run succeeded.
    async fn run(&self, root: &Path, x: &str) -> PathBuf {
        let dir = tempfile::tempdir_in(root).unwrap().keep();
        let params = json!({"x": x, "dir": dir.to_str().unwrap()});
        let detail = self.run_to_end("echo", params).await;
        assert_eq!(detail["status"], "SUCCEEDED", "{x:?}: {detail}");
        dir
    }
}

/// The NUL-terminated arguments in `file`.
fn args(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let text = String::from_utf8(bytes).unwrap();
    let mut args: Vec<String> = text.split('\0').map(str::to_string).collect();
    assert_eq!(args.pop().as_deref(), Some(""), "{text:?} ends with a NUL");
    args
}

/// Everything but the files the steps write: what an injected command would leave.
fn others(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["argv-line", "argv-list", "argv-embedded", "env"].contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

async fn check(h: &Harness, root: &Path, x: &str) {
    let dir = h.run(root, x).await;
    assert_eq!(args(&dir.join("argv-line")), [x], "command line, {x:?}");
    assert_eq!(args(&dir.join("argv-list")), [x], "argument list, {x:?}");
    assert_eq!(
        args(&dir.join("argv-embedded")),
        [format!("pre{x}/post")],
        "inside a word, {x:?}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("env")).unwrap(), x);
    assert_eq!(others(&dir), Vec::<String>::new(), "{x:?} ran something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_that_tries_to_inject_a_command_is_one_argument() {
    let h = Harness::new().await;
    let root = tempfile::tempdir().unwrap();
    // The payload of the report: it ran `id` as root before.
    for x in [
        "hi; touch INJECTED; id > INJECTED",
        "$(touch INJECTED)",
        "`touch INJECTED`",
        "'; touch INJECTED; '",
        "\"; touch INJECTED; \"",
        "a b\tc\nd",
        "*",
        "",
        "$HOME ${HOME} \\ \\' $$",
        "-n",
    ] {
        check(&h, root.path(), x).await;
    }
}

/// Shell-significant characters, mixed with arbitrary ones.
fn nasty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("'".to_string()),
        Just("\"".to_string()),
        Just(" ".to_string()),
        Just("$".to_string()),
        Just("`".to_string()),
        Just("\n".to_string()),
        Just("*".to_string()),
        Just("?".to_string()),
        Just("[a]".to_string()),
        Just("\\".to_string()),
        Just(";".to_string()),
        Just("|".to_string()),
        Just("&".to_string()),
        Just("$(touch X)".to_string()),
        Just("${IFS}".to_string()),
        Just("~".to_string()),
        Just("#".to_string()),
        Just("'\\''".to_string()),
        any::<char>()
            .prop_filter("no process receives a NUL", |c| *c != '\0')
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_string_parameter_reaches_the_command_as_exactly_one_argument(x in nasty()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let h = Harness::new().await;
            let root = tempfile::tempdir().unwrap();
            check(&h, root.path(), &x).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_holding_a_nul_is_refused() {
    let h = Harness::new().await;
    let e = refused(
        h.start("echo", json!({"x": "a\u{0}b", "dir": "/tmp"}))
            .await,
    );
    assert_eq!(e.status, 400, "{e:?}");
    assert!(e.message.contains("NUL"), "{e:?}");
}

/// The error of step `name` in a run as the API shows it.
fn error_of(run: &Value, name: &str) -> String {
    let step = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run}"));
    step["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_missing_from_the_path_is_named_as_such() {
    let h = Harness::new().await;
    h.apply(
        "missing-line",
        "name: missing-line\nsteps:\n  line: {run: 'no-such-tool-xyz --help'}\n",
    )
    .await;
    h.apply(
        "missing-list",
        "name: missing-list\nsteps:\n  list: {run: [no-such-program-xyz, --help]}\n",
    )
    .await;
    let run = h.run_to_end("missing-line", json!({})).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    let line = error_of(&run, "line");
    assert!(
        line.starts_with(
            "step 'line' exited with code 127: a command was not found on the PATH of host '"
        ),
        "{line}"
    );
    assert!(line.contains("no-such-tool-xyz: not found"), "{line}");
    let run = h.run_to_end("missing-list", json!({})).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    let list = error_of(&run, "list");
    assert!(
        list.starts_with(
            "step 'list': program 'no-such-program-xyz' was not found on the PATH of host '"
        ),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gate_names_the_values_it_compared() {
    let h = Harness::new().await;
    h.apply(
        "gated",
        r#"
name: gated
params:
  min_r2: {type: float, default: 0.9}
steps:
  evaluate:
    run: "echo '{\"r2\": 0.5}' > $SEXTANT_OUTPUT_DIR/metrics.json"
    outputs: [o]
  gate:
    condition: "steps.evaluate.metrics.r2 >= params.min_r2"
    then: [register]
    else: fail
  register:
    run: "true"
"#,
    )
    .await;
    let run = h.run_to_end("gated", json!({})).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(
        error_of(&run, "gate"),
        "condition 'steps.evaluate.metrics.r2 >= params.min_r2' is false (steps.evaluate.metrics.r2 = 0.5, params.min_r2 = 0.9): the pipeline fails on this branch"
    );
}
