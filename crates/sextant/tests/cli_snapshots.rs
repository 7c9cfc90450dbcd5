//! Snapshots of what the CLI prints for its main commands, as text and as
//! `--json`, and for the common mistakes: exit code, stdout and stderr, with
//! temporary paths, ports, ids and times replaced by placeholders. A change
//! to any output shows up as a diff of its `.snap` file to review.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::server::Server;
use common::{BIN, http};
use serde_json::{Value, json};
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;

/// A temporary directory whose path has the same length on every machine
/// (whatever `TMPDIR` says), so tables that print a path keep their widths.
fn fixed_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("snap")
        .rand_bytes(6)
        .tempdir_in("/tmp")
        .unwrap()
}

/// Exit code, stdout and stderr as one reviewable text.
fn shown(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the snapshot `name` of `out`, with what differs from run to run
/// replaced: temporary directories, ports, ids and times.
fn check(name: &str, out: &Output) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"/tmp/snap[A-Za-z0-9]{6}", "[TMP]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings.add_filter(r"\b[0-9a-f]{32}\b", "[ID]");
    settings.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[UUID]",
    );
    settings.add_filter(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?( UTC)?",
        "[TIME]",
    );
    settings.add_filter(r"\b1\d{12}\b", "[MS]");
    settings.bind(|| insta::assert_snapshot!(name, shown(out)));
}

/// The CLI with `args`, plain (no colour, no log lines).
fn sextant(args: &[&str]) -> Output {
    cli(args).output().unwrap()
}

fn cli(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env("SEXTANT_LOG", "warn")
        .env_remove("SEXTANT_SERVER")
        .env_remove("SEXTANT_ACTOR");
    cmd
}

fn against(server: &Server, args: &[&str]) -> Output {
    cli(args)
        .args(["--server", &server.url()])
        .output()
        .unwrap()
}

/// An MLflow RPC, which must succeed.
fn mlflow(server: &Server, rpc: &str, body: Value) -> Value {
    let path = format!("/api/2.0/mlflow/{rpc}");
    let (status, body) = http(server.port, "POST", &path, &body.to_string()).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Registers `name` with `versions` versions logged by one run.
fn register(server: &Server, name: &str, versions: usize) {
    let run = mlflow(server, "runs/create", json!({"experiment_id": "0"}));
    let info = &run["run"]["info"];
    mlflow(
        server,
        "registered-models/create",
        json!({"name": name, "description": "flags fraudulent payments"}),
    );
    for _ in 0..versions {
        mlflow(
            server,
            "model-versions/create",
            json!({
                "name": name,
                "source": format!("{}/model", info["artifact_uri"].as_str().unwrap()),
                "run_id": info["run_id"],
            }),
        );
    }
}

#[test]
fn pipelines_validate_a_broken_file() {
    let dir = fixed_tempdir();
    let file = dir.path().join("bad.yml");
    std::fs::write(
        &file,
        "name: p\nsteps:\n  a:\n    run: echo ${params.x}\n    retyr: {attempts: 2}\n  b:\n    needs: [c]\n    run: \"true\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    check(
        "pipelines_validate_broken",
        &sextant(&["pipelines", "validate", file]),
    );
    check(
        "pipelines_validate_broken_json",
        &sextant(&["pipelines", "validate", file, "--json"]),
    );
    check(
        "pipelines_validate_missing_file",
        &sextant(&["pipelines", "validate", "/tmp/snap000000/nowhere.yml"]),
    );
}

#[test]
fn usage_mistakes() {
    check("models_show_without_a_name", &sextant(&["models", "show"]));
    check(
        "unknown_subcommand",
        &sextant(&["modles", "list", "--server", "http://127.0.0.1:9"]),
    );
}

#[test]
fn no_server_listening() {
    let port = common::free_port().to_string();
    check(
        "no_server_listening",
        &sextant(&[
            "models",
            "list",
            "--server",
            &format!("http://127.0.0.1:{port}"),
        ]),
    );
}

#[test]
fn models_list_and_show() {
    let dir = fixed_tempdir();
    let server = Server::start(dir.path());
    register(&server, "fraud", 2);
    register(&server, "churn", 1);
    let (status, body) = http(
        server.port,
        "POST",
        "/api/v1/models/fraud/versions/2/approval",
        r#"{"status": "approved", "actor": "alice", "comment": "auc 0.93"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        server.port,
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        r#"{"name": "fraud", "alias": "champion", "version": "2"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    check("models_list", &against(&server, &["models", "list"]));
    check(
        "models_list_json",
        &against(&server, &["models", "list", "--json"]),
    );
    check(
        "models_show",
        &against(&server, &["models", "show", "fraud"]),
    );
    check(
        "models_show_json",
        &against(&server, &["models", "show", "fraud", "--json"]),
    );
    check(
        "models_show_unknown",
        &against(&server, &["models", "show", "ghost"]),
    );
    check(
        "models_approve_unknown_version",
        &against(&server, &["models", "approve", "fraud", "9"]),
    );
}

#[test]
fn models_approval_settings() {
    let dir = fixed_tempdir();
    let server = Server::start(dir.path());
    register(&server, "fraud", 1);
    check(
        "models_approval_settings",
        &against(&server, &["models", "approval-settings", "fraud"]),
    );
    check(
        "models_approval_settings_changed",
        &against(
            &server,
            &[
                "models",
                "approval-settings",
                "fraud",
                "--require-distinct-approver",
                "false",
            ],
        ),
    );
    // The change stays, and the other setting kept its value.
    check(
        "models_approval_settings_json",
        &against(&server, &["models", "approval-settings", "fraud", "--json"]),
    );
    check(
        "models_approval_settings_unknown",
        &against(
            &server,
            &[
                "models",
                "approval-settings",
                "ghost",
                "--allow-pipeline-approval",
                "false",
            ],
        ),
    );
    check(
        "models_approval_settings_not_a_bool",
        &sextant(&[
            "models",
            "approval-settings",
            "fraud",
            "--allow-pipeline-approval",
            "maybe",
        ]),
    );
}

fn linear_model(dir: &Path) -> String {
    let dir = dir.join("v1");
    let model = LinearModel {
        coefficients: vec![1.0, 1.0, 1.0],
        intercept: 10.0,
    };
    let names = ["a", "b", "c"].map(String::from).to_vec();
    let example = Matrix::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
    mlflow_model::save_linear(&dir, &model, &names, &example).unwrap();
    dir.display().to_string()
}

#[test]
fn endpoints_show_and_a_broken_definition() {
    let dir = fixed_tempdir();
    let server = Server::start(dir.path());
    let model = linear_model(dir.path());
    let out = against(
        &server,
        &["endpoints", "create", "churn", "--model", &model],
    );
    assert!(out.status.success(), "{}", shown(&out));
    check(
        "endpoints_show",
        &against(&server, &["endpoints", "show", "churn"]),
    );
    check(
        "endpoints_show_json",
        &against(&server, &["endpoints", "show", "churn", "--json"]),
    );
    check(
        "endpoints_show_unknown",
        &against(&server, &["endpoints", "show", "ghost"]),
    );
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        format!("variants:\n  - model: {model}\n    wieght: 2\nrollout:\n  strategy: yolo\n"),
    )
    .unwrap();
    check(
        "endpoints_apply_broken",
        &against(&server, &["endpoints", "apply", file.to_str().unwrap()]),
    );
}

#[test]
fn monitors_show_and_a_broken_definition() {
    let dir = fixed_tempdir();
    let server = Server::start(dir.path());
    let data = dir.path().join("window.csv");
    let mut csv = String::from("x,c\n");
    for i in 0..300 {
        csv.push_str(&format!("{},{}\n", i % 13, ["a", "b", "c"][i % 3]));
    }
    std::fs::write(&data, csv).unwrap();
    let baseline = dir.path().join("baseline");
    let out = against(
        &server,
        &[
            "monitors",
            "baseline",
            "--data",
            data.to_str().unwrap(),
            "--out",
            baseline.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", shown(&out));
    let out = against(
        &server,
        &[
            "monitors",
            "create",
            "nightly",
            "--data",
            data.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap(),
            "--drift-share",
            "0.3",
        ],
    );
    assert!(out.status.success(), "{}", shown(&out));
    check(
        "monitors_show",
        &against(&server, &["monitors", "show", "nightly"]),
    );
    check(
        "monitors_show_json",
        &against(&server, &["monitors", "show", "nightly", "--json"]),
    );
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: bad\nendpoint: x\nwindoww: 1h\nmin_rows: many\n",
    )
    .unwrap();
    check(
        "monitors_apply_broken",
        &against(&server, &["monitors", "apply", file.to_str().unwrap()]),
    );
}
