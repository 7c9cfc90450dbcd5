//! `tune:` steps in-process: split → tuned builtin/gbdt → evaluate on a
//! generated CSV, with each strategy. Every trial is a tracking run nested
//! under the step's run, the step's best trial is the best by its held-out
//! metric, and evaluate scores the best trial's model. Cancelling the run
//! stops the search. Through the typed client, as the CLI talks to a
//! server.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Client, RunRequest, RunSearch};
use sextant_control::pipelines;
use sextant_pipelines::builtins::run_builtin;
use sextant_pipelines::tune::{self, Plan};
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use support::{Served, eventually, serve};

struct Harness {
    served: Served,
    dir: tempfile::TempDir,
    orchestrator: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.orchestrator.abort();
    }
}

impl Harness {
    /// An orchestrator with `slots` step slots on this host.
    async fn start(slots: usize) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetaStore> =
            Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store"));
        let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
        let state = AppState::new(store, Arc::new(artifacts), SecurityConfig::loopback());
        let orchestrator = controllers::spawn_pipelines(
            &state,
            pipelines::Settings {
                data_dir: dir.path().join("data"),
                tracking_uri: "http://127.0.0.1:9".into(),
                concurrency: slots,
                worker_id: "test".into(),
                lease: sextant_control::pipelines::DEFAULT_LEASE,
                tracking_token: None,
                tracking_insecure_tls: false,
            },
        );
        Harness {
            served: serve(router(state)).await,
            dir,
            orchestrator,
        }
    }

    fn client(&self) -> &Client {
        &self.served.client
    }

    /// Stores `spec` and starts a run on the generated CSV; returns the run id.
    async fn run(&self, name: &str, spec: &str) -> String {
        let data = self.dir.path().join("waves.csv");
        write_csv(&data);
        let c = self.client();
        c.put_pipeline(name, spec.into()).await.unwrap();
        let mut params = serde_json::Map::new();
        params.insert("data".into(), json!(data.display().to_string()));
        let request = RunRequest {
            params,
            no_cache: false,
        };
        let run = c.start_run(name, &request).await.unwrap();
        run["id"].as_str().unwrap().to_string()
    }

    async fn detail(&self, id: &str) -> Value {
        self.client().get_pipeline_run(id).await.unwrap()
    }

    async fn terminal(&self, id: &str) -> Value {
        eventually(WITHIN, &format!("run {id} to end"), || async move {
            let d = self.detail(id).await;
            matches!(
                d["status"].as_str(),
                Some("SUCCEEDED" | "FAILED" | "CANCELLED")
            )
            .then_some(d)
        })
        .await
    }

    async fn tracking_run(&self, id: &str) -> Value {
        self.client().get_run(id).await.unwrap()
    }

    /// The runs nested under the tracking run `parent`, by trial number.
    async fn trials(&self, parent: &str) -> Vec<TrialRun> {
        let experiment = self.tracking_run(parent).await["info"]["experiment_id"]
            .as_str()
            .unwrap()
            .to_string();
        let search = RunSearch {
            experiment_ids: vec![experiment],
            filter: format!("tags.`mlflow.parentRunId` = '{parent}'"),
            max_results: 1000,
        };
        let found = self.client().search_runs(&search).await.unwrap();
        let mut trials: Vec<TrialRun> = found.iter().map(TrialRun::from_json).collect();
        trials.sort_by_key(|t| t.number);
        trials
    }

    fn run_dir(&self, run: &str) -> PathBuf {
        self.dir.path().join("data/pipeline-runs").join(run)
    }
}

/// A nested trial run as the tracking API shows it.
#[derive(Debug, Clone)]
struct TrialRun {
    number: usize,
    rung: Option<usize>,
    status: String,
    step: String,
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
}

/// The `key`/`value` entries of a run's `data.<field>` (params, tags, metrics).
fn entries(run: &Value, field: &str) -> BTreeMap<String, Value> {
    run["data"][field]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p["key"].as_str().unwrap().to_string(), p["value"].clone()))
        .collect()
}

/// A run's params.
fn params(run: &Value) -> BTreeMap<String, String> {
    entries(run, "params")
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
        .collect()
}

impl TrialRun {
    fn from_json(run: &Value) -> TrialRun {
        let tags = entries(run, "tags");
        let tag = |k: &str| tags.get(k).and_then(|v| v.as_str()).map(str::to_string);
        TrialRun {
            number: tag("sextant.trial").expect("a trial tag").parse().unwrap(),
            rung: tag("sextant.rung").map(|r| r.parse().unwrap()),
            status: run["info"]["status"].as_str().unwrap().to_string(),
            step: tag("sextant.step").unwrap_or_default(),
            params: params(run),
            metrics: entries(run, "metrics")
                .into_iter()
                .map(|(k, v)| (k, v.as_f64().unwrap()))
                .collect(),
        }
    }

    fn score(&self) -> f64 {
        self.metrics["valid_rmse"]
    }
}

/// How long a tuning run or one of its parts may take to get somewhere.
const WITHIN: Duration = Duration::from_secs(120);

/// A target trees must work for: a sine, a step and an interaction, plus noise.
fn write_csv(path: &Path) {
    let mut text = String::from("a,b,y\n");
    for i in 0..400u64 {
        let (a, b) = ((i % 40) as f64 / 4.0, (i * 7 % 11) as f64);
        let noise = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
        let y = 3.0 * a.sin() + 2.0 * f64::from(u8::from(b > 5.0)) + a * b / 10.0 + noise * 0.3;
        writeln!(text, "{a},{b},{y}").unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn spec(name: &str, n_trees: u32, tune: &str) -> String {
    let with = format!("n_trees: {n_trees}, min_samples_leaf: 5");
    spec_of(name, "gbdt", &with, tune)
}

/// Split → `builtin/<trainer>` with `with` (besides `train` and `target`) and `tune` →
/// evaluate on the test rows.
fn spec_of(name: &str, trainer: &str, with: &str, tune: &str) -> String {
    format!(
        r#"
name: {name}
params:
  data: {{type: string}}
steps:
  split:
    uses: builtin/split
    with: {{data: "${{params.data}}", test_fraction: 0.25, seed: 3}}
    outputs: [train, test]
  train:
    uses: builtin/{trainer}
    with: {{train: "${{steps.split.outputs.train}}", target: y, {with}}}
    outputs: [model]
    tune: {tune}
  evaluate:
    uses: builtin/evaluate
    with: {{model: "${{steps.train.outputs.model}}", data: "${{steps.split.outputs.test}}", target: y}}
"#
    )
}

fn step(detail: &Value, name: &str) -> Value {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {detail}"))
        .clone()
}

/// Every file under `dir` with its bytes, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The trial the step must have chosen among `finalists`: the lowest held-out
/// rmse, the earlier trial on a tie.
fn expected_best(finalists: &[&TrialRun]) -> usize {
    let mut best = finalists[0];
    for t in &finalists[1..] {
        if t.score() < best.score() {
            best = t;
        }
    }
    best.number
}

/// Checks what every strategy promises and returns the trials: all finished
/// under the step's run, the step's metrics and params those of the best of
/// `finalists`, its model the best trial's, and evaluate scoring that model.
async fn check_search(
    h: &Harness,
    run: &str,
    tuned: &[&str],
    finalists: impl Fn(&[TrialRun]) -> Vec<TrialRun>,
) -> Vec<TrialRun> {
    let detail = h.terminal(run).await;
    assert_eq!(detail["status"], "SUCCEEDED", "{detail}");
    let train = step(&detail, "train");
    let step_run = train["tracking_run_id"].as_str().unwrap();
    let trials = h.trials(step_run).await;
    let numbers: Vec<usize> = trials.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (1..=trials.len()).collect::<Vec<_>>());
    for t in &trials {
        assert_eq!(
            (t.status.as_str(), t.step.as_str()),
            ("FINISHED", "train"),
            "{t:?}"
        );
        assert!(t.metrics.contains_key("training_rmse"), "{t:?}");
        assert!(t.score().is_finite(), "{t:?}");
        assert_eq!(t.params["holdout"], "0.2", "scored on held-out rows: {t:?}");
    }

    let finals = finalists(&trials);
    let refs: Vec<&TrialRun> = finals.iter().collect();
    let best_number = expected_best(&refs);
    let best = &trials[best_number - 1];
    let metrics = &train["metrics"];
    assert_eq!(metrics["best_trial"], best_number as f64, "{train}");
    assert_eq!(metrics["trials"], trials.len() as f64, "{train}");
    assert_eq!(metrics["valid_rmse"], best.score(), "{train}");

    let step_params = params(&h.tracking_run(step_run).await);
    for key in tuned {
        assert_eq!(step_params[*key], best.params[*key], "param {key}");
    }
    assert_eq!(step_params["tune.metric"], "valid_rmse");

    // The step's model is the best trial's, and evaluate scored exactly it.
    let run_dir = h.run_dir(run);
    let trial_model = |n: usize| {
        run_dir
            .join(".trials/train")
            .join(n.to_string())
            .join("model")
    };
    assert_eq!(
        files(&run_dir.join("train/model")),
        files(&trial_model(best_number))
    );
    let test = run_dir.join("split/test");
    let score = |n: usize| {
        let out = h.dir.path().join(format!("check-{run}-{n}"));
        let with: BTreeMap<String, String> = [
            ("model", trial_model(n).display().to_string()),
            ("data", test.display().to_string()),
            ("target", "y".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        run_builtin("builtin/evaluate", &with, &out).unwrap()["rmse"]
    };
    let evaluated = step(&detail, "evaluate")["metrics"]["rmse"]
        .as_f64()
        .unwrap();
    assert_eq!(evaluated, score(best_number));
    assert!(
        trials.iter().any(|t| score(t.number) != evaluated),
        "the trials' models differ, so the comparison means something"
    );
    trials
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_runs_every_combination_and_keeps_the_best() {
    let h = Harness::start(2).await;
    let tune = "{params: {learning_rate: [0.05, 0.3], max_leaf_nodes: [2, 8]}, strategy: grid, parallel: 2, metric: rmse}";
    let run = h.run("grid", &spec("grid", 30, tune)).await;
    let trials = check_search(&h, &run, &["learning_rate", "max_leaf_nodes"], |t| {
        t.to_vec()
    })
    .await;
    let configs: Vec<(String, String)> = trials
        .iter()
        .map(|t| {
            (
                t.params["learning_rate"].clone(),
                t.params["max_leaf_nodes"].clone(),
            )
        })
        .collect();
    let pairs = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        configs,
        [
            pairs("0.05", "2"),
            pairs("0.05", "8"),
            pairs("0.3", "2"),
            pairs("0.3", "8")
        ]
    );
    assert!(
        trials
            .iter()
            .all(|t| t.rung.is_none() && !t.params.contains_key("n_trees"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_draws_reproducibly_from_the_run_id_within_bounds() {
    // One slot: the step holds it, so its trials run one at a time whatever
    // `parallel` says, and never wait for a slot that cannot come.
    let h = Harness::start(1).await;
    let tune = "{params: {learning_rate: {log_uniform: [0.02, 0.5]}, max_leaf_nodes: {int: [2, 16]}}, strategy: random, trials: 5, parallel: 2, metric: rmse, goal: minimize}";
    let text = spec("random", 20, tune);
    let run = h.run("random", &text).await;
    let trials = check_search(&h, &run, &["learning_rate", "max_leaf_nodes"], |t| {
        t.to_vec()
    })
    .await;
    assert_eq!(trials.len(), 5);
    for t in &trials {
        let lr: f64 = t.params["learning_rate"].parse().unwrap();
        let leaves: i64 = t.params["max_leaf_nodes"].parse().unwrap();
        assert!(
            (0.02..=0.5).contains(&lr) && (2..=16).contains(&leaves),
            "{t:?}"
        );
    }
    // The configurations are the plan seeded by this run's id, in trial order.
    let v = sextant_pipelines::load("random.yaml", &text).unwrap();
    let spec_tune = v.pipeline.step("train").unwrap().tune.clone().unwrap();
    let Plan::Fixed(planned) = tune::plan(&spec_tune, tune::seed(&run, "train")).unwrap() else {
        panic!("random plans fixed trials");
    };
    for (t, config) in trials.iter().zip(&planned) {
        for (key, value) in config {
            assert_eq!(t.params[key], tune::value_text(value), "trial {}", t.number);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halving_promotes_the_best_third_to_bigger_budgets() {
    let h = Harness::start(2).await;
    let tune = "{params: {learning_rate: {log_uniform: [0.02, 0.5]}, max_leaf_nodes: {int: [2, 16]}}, strategy: halving, trials: 9, parallel: 2, metric: rmse}";
    let run = h.run("halving", &spec("halving", 27, tune)).await;
    let last_rung = |t: &[TrialRun]| t.iter().filter(|t| t.rung == Some(3)).cloned().collect();
    let trials = check_search(&h, &run, &["learning_rate", "max_leaf_nodes"], last_rung).await;
    let rung =
        |r: usize| -> Vec<&TrialRun> { trials.iter().filter(|t| t.rung == Some(r)).collect() };
    let (first, second, third) = (rung(1), rung(2), rung(3));
    assert_eq!((first.len(), second.len(), third.len()), (9, 3, 1));
    assert_eq!(trials.len(), 13);
    // n_trees is the budget: 27 / 9, 27 / 3, then the step's own 27.
    assert!(first.iter().all(|t| t.params["n_trees"] == "3"));
    assert!(second.iter().all(|t| t.params["n_trees"] == "9"));
    assert!(!third[0].params.contains_key("n_trees"));

    let config = |t: &TrialRun| {
        (
            t.params["learning_rate"].clone(),
            t.params["max_leaf_nodes"].clone(),
        )
    };
    let best_of = |rung: &[&TrialRun], keep: usize| {
        let mut ranked = rung.to_vec();
        ranked.sort_by(|a, b| {
            a.score()
                .total_cmp(&b.score())
                .then(a.number.cmp(&b.number))
        });
        ranked
            .into_iter()
            .take(keep)
            .map(config)
            .collect::<Vec<_>>()
    };
    let promoted: Vec<_> = second.iter().map(|t| config(t)).collect();
    assert_eq!(
        promoted,
        best_of(&first, 3),
        "the best third of rung 1, best first"
    );
    assert_eq!(vec![config(third[0])], best_of(&second, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halving_a_linear_model_grows_its_training_rows() {
    let h = Harness::start(2).await;
    let tune = "{params: {l2: {log_uniform: [0.001, 1000]}}, strategy: halving, trials: 3, parallel: 3, metric: rmse}";
    let run = h
        .run("rows", &spec_of("rows", "linear", "l2: 0", tune))
        .await;
    let last_rung = |t: &[TrialRun]| t.iter().filter(|t| t.rung == Some(2)).cloned().collect();
    let trials = check_search(&h, &run, &["l2"], last_rung).await;
    let fractions: Vec<Option<f64>> = trials
        .iter()
        .map(|t| t.params.get("train_fraction").map(|f| f.parse().unwrap()))
        .collect();
    let third = Some(1.0 / 3.0);
    assert_eq!(
        fractions,
        [third, third, third, None],
        "a third of the rows, then all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_run_stops_the_search() {
    let h = Harness::start(2).await;
    let tune = "{params: {learning_rate: {uniform: [0.01, 0.3]}}, strategy: random, trials: 1000, metric: rmse}";
    let run = h.run("endless", &spec("endless", 200, tune)).await;
    let (h, id) = (&h, run.as_str());
    let step_run = eventually(WITHIN, "the tune step to start", || async move {
        let d = h.detail(id).await;
        step(&d, "train")["tracking_run_id"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    let parent = step_run.as_str();
    eventually(WITHIN, "a first trial", || async move {
        h.trials(parent).await.first().map(|_| ())
    })
    .await;
    h.client().cancel_run(&run).await.unwrap();
    let ended = eventually(WITHIN, "the step's run to end", || async move {
        let r = h.tracking_run(parent).await;
        (r["info"]["status"] != "RUNNING").then_some(r)
    })
    .await;
    assert_eq!(ended["info"]["status"], "FAILED", "{ended}");
    let detail = h.detail(&run).await;
    assert_eq!(detail["status"], "CANCELLED");
    assert_eq!(step(&detail, "train")["status"], "cancelled", "{detail}");
    // The search waited for its running trial before it ended: nothing runs on.
    let trials = h.trials(&step_run).await;
    assert!(trials.len() < 1000, "{} trials", trials.len());
    for t in &trials {
        assert!(matches!(t.status.as_str(), "FINISHED" | "KILLED"), "{t:?}");
    }
}
