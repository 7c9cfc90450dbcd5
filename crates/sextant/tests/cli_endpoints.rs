//! `sextant endpoints …` against a real server: apply a YAML definition,
//! predict through `/endpoints/{name}/invocations`, roll a new model out as
//! a canary that promotes itself after its bake, and the error of a bad file.

mod common;

use common::http;
use common::server::Server;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;

fn model(dir: &Path, name: &str, intercept: f64) -> String {
    let dir = dir.join(name);
    let model = LinearModel {
        coefficients: vec![1.0, 1.0, 1.0],
        intercept,
    };
    let names = ["a", "b", "c"].map(String::from).to_vec();
    let example = Matrix::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
    mlflow_model::save_linear(&dir, &model, &names, &example).unwrap();
    dir.display().to_string()
}

fn predict(server: &Server) -> f64 {
    let (status, body) = http(
        server.port,
        "POST",
        "/endpoints/churn/invocations",
        r#"{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    first_number(&v["predictions"]).unwrap_or_else(|| panic!("no prediction in {body}"))
}

/// The first number in a prediction, whatever its nesting.
fn first_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Array(items) => items.iter().find_map(first_number),
        Value::Object(m) => m.values().find_map(first_number),
        _ => None,
    }
}

#[test]
fn apply_predict_and_a_canary_that_promotes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    let (v1, v2) = (model(d, "v1", 10.0), model(d, "v2", 20.0));
    let file = d.join("churn.yaml");
    std::fs::write(
        &file,
        format!(
            "name: churn\nvariants:\n  - model: {v1}\nrollout:\n  strategy: canary\n  percent: 20\n  bake: 1h\n"
        ),
    )
    .unwrap();
    let out = server.sextant(&["endpoints", "apply", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("endpoint churn: in_service"), "{shown}");
    assert_eq!(predict(&server), 16.0);

    let out = server.sextant(&[
        "endpoints",
        "update",
        "churn",
        "--model",
        &v2,
        "--bake",
        "300ms",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("rollout: canary"), "{shown}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = server.get("/api/v1/endpoints/churn");
        if got["rollout"].is_null() {
            assert_eq!(got["past_rollouts"][0]["status"], "succeeded", "{got}");
            break;
        }
        assert!(Instant::now() < deadline, "no promotion: {got}");
        predict(&server);
    }
    assert_eq!(predict(&server), 26.0);
    let out = server.sextant(&["endpoints", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.contains("churn") && listed.contains("v2"),
        "{listed}"
    );

    std::fs::write(&file, "name: churn\nvariants: []\n").unwrap();
    let out = server.sextant(&["endpoints", "apply", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least one variant"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.sextant(&["endpoints", "delete", "churn"]);
    assert!(out.status.success());
    let (status, _) = http(server.port, "POST", "/endpoints/churn/invocations", "{}").unwrap();
    assert_eq!(status, 404);
}

/// `PUT path` with a binary body; returns the status.
fn put_bytes(port: u16, path: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw[9..12]).parse().unwrap()
}

/// Registers `dir` as a new version of `name` through the server's MLflow API.
fn register(server: &Server, name: &str, dir: &str) -> i64 {
    let (_, run) = http(
        server.port,
        "POST",
        "/api/2.0/mlflow/runs/create",
        r#"{"experiment_id": "0"}"#,
    )
    .unwrap();
    let run: Value = serde_json::from_str(&run).unwrap();
    let root = run["run"]["info"]["artifact_uri"].as_str().unwrap();
    let rel = root.strip_prefix("mlflow-artifacts:/").unwrap();
    for f in ["MLmodel", "model.onnx"] {
        let bytes = std::fs::read(Path::new(dir).join(f)).unwrap();
        let status = put_bytes(
            server.port,
            &format!("/api/2.0/mlflow-artifacts/artifacts/{rel}/model/{f}"),
            &bytes,
        );
        assert_eq!(status, 200);
    }
    http(
        server.port,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        &format!(r#"{{"name": "{name}"}}"#),
    )
    .unwrap();
    let (status, v) = http(
        server.port,
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        &serde_json::json!({"name": name, "source": format!("{root}/model"),
            "run_id": run["run"]["info"]["run_id"]})
        .to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    v["model_version"]["version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A `sextant gateway` process, killed when dropped.
struct GatewayProcess(std::process::Child);

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls the gateway until it answers `want` (60 s at most).
fn gateway_answers(port: u16, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, body)) = http(
            port,
            "POST",
            "/invocations",
            r#"{"inputs": [[1.0, 2.0, 3.0]]}"#,
        ) {
            let v: Value = serde_json::from_str(&body).unwrap();
            if first_number(&v["predictions"]) == Some(want) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never answered {want}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_separate_gateway_follows_the_endpoint_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    let first = register(&server, "churn", &model(d, "v1", 10.0));
    let out = server.sextant(&[
        "endpoints",
        "create",
        "churn",
        "--model",
        &format!("models:/churn/{first}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = common::free_port();
    let models = d.join("gateway-models");
    let child = std::process::Command::new(common::BIN)
        .args(["gateway", "--server", &server.url(), "--endpoint", "churn"])
        .args([
            "--port",
            &port.to_string(),
            "--poll-ms",
            "100",
            "--model-dir",
        ])
        .arg(&models)
        .env("SEXTANT_LOG", "warn")
        .spawn()
        .unwrap();
    let _gateway = GatewayProcess(child);
    gateway_answers(port, 16.0);

    let second = register(&server, "churn", &model(d, "v2", 20.0));
    let out = server.sextant(&[
        "endpoints",
        "update",
        "churn",
        "--model",
        &format!("models:/churn/{second}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    gateway_answers(port, 26.0);
    assert!(models.join("churn/1/MLmodel").is_file());
    assert!(models.join("churn/2/model.onnx").is_file());
    let (status, _) = http(port, "GET", "/ping", "").unwrap();
    assert_eq!(status, 200);
}
