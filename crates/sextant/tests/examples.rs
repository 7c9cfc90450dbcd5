//! The pipelines in `examples/`: the shipped CSV is exactly what its
//! generator writes, every example file validates, and the built-in one runs
//! against a real server to a registered model. (The Python example runs in
//! `tests/python/test_pipeline_examples.py`, which has scikit-learn.)
//!
//! `SEXTANT_REGENERATE_EXAMPLES=1 cargo test -p sextant --test examples`
//! rewrites `examples/builtin/housing.csv` from the generator.

mod common;

use common::server::Server;

use std::path::{Path, PathBuf};

/// Rows of the generated housing data.
const ROWS: usize = 4000;

fn examples() -> PathBuf {
    Path::new(&manifest_dir()).join("../../examples")
}

/// SplitMix64: a fixed integer generator, so the data never changes with a
/// dependency upgrade or a platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A synthetic housing market: the price (in thousands) grows with area and
/// rooms, falls with age (old houses recover a little) and with the square
/// root of the distance to the centre, gains with a garden, and large
/// central houses carry a premium a linear model cannot see; plus noise.
/// Only `+ - * /` and `sqrt`, which IEEE 754 rounds exactly, so every
/// platform writes the same bytes.
fn housing_csv() -> String {
    let mut rng = Rng(20_240_607);
    let mut csv = String::from("area,rooms,age,distance,garden,price\n");
    for _ in 0..ROWS {
        let area = 30.0 + 170.0 * rng.uniform();
        let rooms = (1.0 + (area / 40.0 + 1.5 * rng.uniform()).floor()).min(8.0);
        let age = (90.0 * rng.uniform()).floor();
        let u = rng.uniform();
        let distance = 0.5 + 24.5 * u * u;
        let garden = if rng.uniform() < 0.35 { 1.0 } else { 0.0 };
        let noise = (rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0) * 15.0;
        let premium = if distance < 4.0 && area > 110.0 {
            55.0
        } else {
            0.0
        };
        let price = 80.0 + 2.6 * area + 14.0 * rooms - 1.1 * age + 0.008 * age * age
            - 22.0 * distance.sqrt()
            + 30.0 * garden
            + premium
            + noise;
        csv.push_str(&format!(
            "{area:.1},{rooms},{age},{distance:.2},{garden},{:.1}\n",
            price.max(20.0)
        ));
    }
    csv
}

#[test]
fn the_shipped_csv_is_what_the_generator_writes() {
    let path = examples().join("builtin/housing.csv");
    let generated = housing_csv();
    if std::env::var_os("SEXTANT_REGENERATE_EXAMPLES").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "{} differs from its generator; rewrite it with \
         SEXTANT_REGENERATE_EXAMPLES=1 cargo test -p sextant --test examples",
        path.display()
    );
    assert!(shipped.len() <= 300 * 1024, "{} bytes", shipped.len());
}

#[test]
fn every_example_pipeline_validates() {
    for file in [
        "builtin/pipeline.yaml",
        "python/pipeline.yaml",
        "pipelines/housing.yml",
    ] {
        let out = std::process::Command::new(common::BIN)
            .args(["pipelines", "validate"])
            .arg(examples().join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_builtin_example_trains_evaluates_and_registers_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let file = examples().join("builtin/pipeline.yaml");
    let data = examples().join("builtin/housing.csv");
    let out = server.sextant(&[
        "pipelines",
        "run",
        file.to_str().unwrap(),
        "--param",
        &format!("data={}", data.display()),
        "--wait",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\nserver log:\n{}",
        server.log()
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let steps = run["steps"].as_array().unwrap();
    let step = |name: &str| steps.iter().find(|s| s["name"] == name).unwrap();
    for s in steps {
        assert_eq!(s["status"], "succeeded", "{s}");
    }
    assert_eq!(step("split")["metrics"]["train_rows"], 3200.0);
    assert_eq!(step("split")["metrics"]["test_rows"], 800.0);
    let r2 = step("evaluate")["metrics"]["r2"].as_f64().unwrap();
    let rmse = step("evaluate")["metrics"]["rmse"].as_f64().unwrap();
    // The noise alone has a standard deviation of about 8.7.
    assert!(r2 >= 0.9 && rmse < 20.0, "r2 {r2}, rmse {rmse}");
    assert!(step("train")["metrics"]["training_rmse"].as_f64().unwrap() < rmse);
    assert_eq!(step("gate")["branch"], "then");
    assert_eq!(step("register")["model_version"], 1);

    let version = server.get("/api/v1/models/housing-gbdt/versions/1");
    assert_eq!(version["approval"]["status"], "pending", "{version}");
    assert_eq!(version["run_id"], step("register")["tracking_run_id"]);
    let listing = server.get(&format!(
        "/api/2.0/mlflow/artifacts/list?run_id={}&path=model",
        version["run_id"].as_str().unwrap()
    ));
    let files: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"model/MLmodel") && files.contains(&"model/model.onnx"),
        "{files:?}"
    );
}

/// This crate's directory, read when the test runs (cargo and nextest set it):
/// a binary built from another checkout of the same sources is reused by
/// cargo, and the compile-time value would point at that checkout.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
