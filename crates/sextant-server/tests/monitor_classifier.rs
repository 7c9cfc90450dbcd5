//! A monitor's model quality on an endpoint serving the built-in logistic classifier: the
//! captured answers (`label` and ZipMap's `{"0": p0, "1": p1}` per row) are decoded into
//! labels and positive-class probabilities, joined with uploaded ground truth, and judged
//! by accuracy (and AUC from the probabilities).

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Client, Definition};
use sextant_server::{AppState, SecurityConfig, controllers, router};
use sextant_store::MetaStore;
use sextant_train::data::Matrix;
use sextant_train::{logistic, mlflow_model};
use support::{Served, serve};

/// Deterministic, well-mixed values in [0, 1) (splitmix64 of `i`).
fn unit(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / 2f64.powi(64)
}

fn row(i: u64) -> [f64; 3] {
    [unit(3 * i), unit(3 * i + 1), unit(3 * i + 2)]
}

/// The rule the classifier learns: class 1 when `a + b > 1`.
fn truth(r: [f64; 3]) -> i64 {
    i64::from(r[0] + r[1] > 1.0)
}

struct Harness {
    served: Served,
    model: String,
    _controller: tokio::task::JoinHandle<()>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Harness {
    /// The built-in logistic classifier fitted on `truth`, with a baseline of its data.
    async fn new() -> Harness {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let store: Arc<dyn MetaStore> =
            Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap());
        let artifacts =
            Arc::new(ArtifactStore::from_uri(dirs[1].path().to_str().unwrap()).unwrap());
        let st = AppState::new(store, artifacts, SecurityConfig::loopback())
            .with_data_dir(dirs[0].path().to_path_buf());
        let rows: Vec<Vec<f64>> = (10_000..12_000).map(|i| row(i).to_vec()).collect();
        let x = Matrix::from_rows(&rows).unwrap();
        let y: Vec<f64> = rows
            .iter()
            .map(|r| truth([r[0], r[1], r[2]]) as f64)
            .collect();
        let params = logistic::LogisticParams {
            c: 100.0,
            ..Default::default()
        };
        let model = logistic::fit(&x, &y, &params).unwrap();
        let dir = dirs[2].path().join("model");
        let names = ["a", "b", "c"].map(String::from).to_vec();
        mlflow_model::save_logistic(&dir, &model, &names, &x).unwrap();
        let mut csv = String::from("a,b,c\n");
        for r in &rows {
            csv.push_str(&format!("{},{},{}\n", r[0], r[1], r[2]));
        }
        let data = dirs[2].path().join("train.csv");
        std::fs::write(&data, csv).unwrap();
        sextant_monitor::sagemaker::write_baseline(&data, &dir.join("baseline"), &[]).unwrap();
        Harness {
            _controller: controllers::spawn_endpoints(&st),
            served: serve(router(st)).await,
            model: dir.display().to_string(),
            _dirs: dirs,
        }
    }

    fn client(&self) -> &Client {
        &self.served.client
    }

    async fn invoke(&self, id: &str, r: [f64; 3]) -> Value {
        let body =
            json!({"dataframe_split": {"columns": ["c", "a", "b"], "data": [[r[2], r[0], r[1]]]}});
        self.client().invoke("clf", Some(id), &body).await.unwrap()
    }

    /// Sends rows `from..from + n` and uploads their true class, or the other one when
    /// `flip`.
    async fn traffic(&self, from: u64, n: u64, flip: bool) {
        let mut labels = Vec::new();
        for i in from..from + n {
            let r = row(i);
            let answer = self.invoke(&format!("id-{i}"), r).await;
            let record = &answer["predictions"][0];
            let (p0, p1) = (
                record["probabilities"]["0"].as_f64().unwrap(),
                record["probabilities"]["1"].as_f64().unwrap(),
            );
            assert!((p0 + p1 - 1.0).abs() < 1e-5, "{answer}");
            assert_eq!(record["label"], i64::from(p1 > p0), "{answer}");
            let label = if flip { 1 - truth(r) } else { truth(r) };
            labels.push(json!({"inference_id": format!("id-{i}"), "label": label}));
        }
        let v = self
            .client()
            .upload_ground_truth("clf", &labels)
            .await
            .unwrap();
        assert_eq!(v["stored"].as_u64(), Some(n), "{v}");
    }

    /// Runs `clf-watch` over its own window (`201 Created`: `serve` holds
    /// the status to the document's).
    async fn run(&self) -> Value {
        self.client()
            .run_monitor("clf-watch", &json!({}))
            .await
            .unwrap()
    }
}

fn metric(run: &Value, name: &str) -> f64 {
    let m = &run["summary"]["model_quality"]["metrics"]["binary_classification_metrics"];
    m[name]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {name} in {run}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_quality_judges_the_builtin_classifier_by_accuracy() {
    let h = Harness::new().await;
    let c = h.client();
    let spec = json!({"variants": [{"model": h.model}], "capture": {"sampling_percent": 100}});
    let v = c
        .put_endpoint("clf", Definition::Json(spec), Duration::ZERO)
        .await
        .unwrap();
    assert!(v.created, "{v:?}");
    let monitor = "endpoint: clf\nwindow: 1h\nmodel_quality:\n  problem_type: BinaryClassification\n  label: label\n  constraints: {accuracy: {threshold: 0.8, comparison_operator: LessThanThreshold}}\n";
    let v = c
        .put_monitor("clf-watch", Definition::Yaml(monitor.into()))
        .await
        .unwrap();
    assert!(v.created, "{v:?}");

    // True labels: the classifier is right on nearly every row, and its probabilities
    // (ZipMap's maps) rank the classes.
    h.traffic(0, 200, false).await;
    let clean = h.run().await;
    assert_eq!(clean["status"], "Completed", "{clean}");
    assert_eq!(clean["summary"]["model_quality"]["joined"], 200, "{clean}");
    assert!(metric(&clean, "accuracy") > 0.95, "{clean}");
    assert!(metric(&clean, "auc") > 0.99, "{clean}");

    // Every label flipped: accuracy collapses and breaks the constraint.
    h.traffic(200, 200, true).await;
    let bad = h.run().await;
    assert_eq!(bad["status"], "CompletedWithViolations", "{bad}");
    assert!(metric(&bad, "accuracy") < 0.6, "{bad}");
    let violations = bad["summary"]["violations"].as_array().unwrap();
    assert!(
        violations.iter().any(|v| v["feature_name"] == "accuracy"
            && v["constraint_check_type"] == "model_quality_check"),
        "{bad}"
    );
}
