//! `sextant models …` and `sextant events tail` as processes against a real
//! `sextant server`: approvals, aliases, JSON and table output, errors.

mod common;

use common::{BIN, eventually, free_port, http, wait_healthy};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let port = free_port();
        let child = Command::new(BIN)
            .args(["server", "--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .env_remove("SEXTANT_LOG")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, port };
        wait_healthy(port);
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An MLflow RPC, which must succeed.
    fn mlflow(&self, rpc: &str, body: Value) -> Value {
        let path = format!("/api/2.0/mlflow/{rpc}");
        let (status, body) = http(self.port, "POST", &path, &body.to_string()).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Registers `name` with one version logged by a fresh run.
    fn register(&self, name: &str) {
        let run = self.mlflow("runs/create", json!({"experiment_id": "0"}));
        let info = &run["run"]["info"];
        self.mlflow("registered-models/create", json!({"name": name}));
        self.mlflow(
            "model-versions/create",
            json!({
                "name": name,
                "source": format!("{}/model", info["artifact_uri"].as_str().unwrap()),
                "run_id": info["run_id"],
            }),
        );
    }

    /// Runs the CLI against this server.
    fn cli(&self, args: &[&str]) -> Output {
        cli(&self.url(), args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(server: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .args(["--server", server])
        .env_remove("SEXTANT_LOG")
        .env_remove("SEXTANT_SERVER")
        .env_remove("SEXTANT_ACTOR");
    c
}

fn cli(server: &str, args: &[&str]) -> Output {
    command(server, args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn succeeded(out: &Output) -> &Output {
    assert!(out.status.success(), "stderr: {}", stderr(out));
    out
}

#[test]
fn approve_reject_and_alias_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.register("fraud");
    server.register("churn");

    let out = server.cli(&[
        "models",
        "approve",
        "fraud",
        "1",
        "--comment",
        "auc 0.93",
        "--actor",
        "alice",
    ]);
    assert!(
        stderr(succeeded(&out)).contains("fraud version 1: approved by alice"),
        "{}",
        stderr(&out)
    );

    let out = server.cli(&["models", "show", "fraud", "--json"]);
    let model: Value = serde_json::from_str(&stdout(succeeded(&out))).unwrap();
    let approval = &model["versions"][0]["approval"];
    assert_eq!(approval["status"], "approved", "{model}");
    assert_eq!(approval["actor"], "alice");
    assert_eq!(approval["comment"], "auc 0.93");

    let out = server.cli(&["models", "reject", "churn", "1", "--json"]);
    let version: Value = serde_json::from_str(&stdout(succeeded(&out))).unwrap();
    assert_eq!(version["approval"]["status"], "rejected");

    succeeded(&server.cli(&["models", "alias", "fraud", "champion", "1"]));
    let out = server.cli(&["models", "list", "--json"]);
    let models: Value = serde_json::from_str(&stdout(succeeded(&out))).unwrap();
    let names: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["churn", "fraud"]);
    assert_eq!(models[1]["aliases"], json!({"champion": 1}));

    // Tables: a header, then one row per model or version.
    let list = stdout(succeeded(&server.cli(&["models", "list"])));
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{list}");
    assert!(
        lines[2].starts_with("fraud") && lines[2].contains("champion=1"),
        "{list}"
    );
    let show = stdout(succeeded(&server.cli(&["models", "show", "fraud"])));
    let row = show.lines().last().unwrap();
    assert!(
        row.starts_with('1') && row.contains("approved") && row.contains("alice"),
        "{show}"
    );

    let out = server.cli(&["events", "tail", "--kinds", "model_version.*", "--json"]);
    let kinds: Vec<String> = stdout(succeeded(&out))
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        kinds.contains(&"model_version.approved".into()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"model_version.rejected".into()),
        "{kinds:?}"
    );
}

#[test]
fn a_decided_version_is_a_conflict_unless_forced_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.register("fraud");

    // A fresh version is pending: nobody decided it, at no time.
    let show = stdout(succeeded(&server.cli(&["models", "show", "fraud"])));
    let pending: Vec<&str> = show.lines().last().unwrap().split_whitespace().collect();
    assert_eq!(&pending[..4], ["1", "pending", "-", "-"], "{show}");

    succeeded(&server.cli(&["models", "approve", "fraud", "1", "--actor", "alice"]));
    let out = server.cli(&["models", "reject", "fraud", "1", "--actor", "bob"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("already approved by alice"), "{err}");
    assert!(err.contains("HTTP 409"), "{err}");
    assert!(err.contains("hint: pass --force"), "{err}");
    let out = server.cli(&["models", "show", "fraud", "--json"]);
    let model: Value = serde_json::from_str(&stdout(succeeded(&out))).unwrap();
    assert_eq!(model["versions"][0]["approval"]["status"], "approved");
    assert_eq!(model["versions"][0]["approval"]["actor"], "alice");

    let out = server.cli(&[
        "models", "reject", "fraud", "1", "--actor", "bob", "--force", "--json",
    ]);
    let version: Value = serde_json::from_str(&stdout(succeeded(&out))).unwrap();
    assert_eq!(version["approval"]["status"], "rejected");
    assert_eq!(version["approval"]["actor"], "bob");

    // Both decisions are in the feed, the second naming the first.
    let out = server.cli(&[
        "events",
        "tail",
        "--kinds",
        "model_version.approved,model_version.rejected",
        "--json",
    ]);
    let decisions: Vec<Value> = stdout(succeeded(&out))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert_eq!(decisions[0]["actor"], "alice");
    assert_eq!(decisions[1]["actor"], "bob");
    assert_eq!(decisions[1]["payload"]["previous_status"], "approved");
    assert_eq!(decisions[1]["payload"]["previous_actor"], "alice");
}

#[test]
fn errors_exit_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.register("fraud");

    let out = server.cli(&["models", "approve", "fraud", "9"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("RESOURCE_DOES_NOT_EXIST"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());

    let out = server.cli(&["models", "alias", "fraud", "latest", "1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("INVALID_PARAMETER_VALUE"),
        "{}",
        stderr(&out)
    );

    let out = server.cli(&["models", "show", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let out = cli(&nobody, &["models", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the Sextant server"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
}

#[test]
fn events_tail_follow_prints_new_events_as_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.register("fraud");

    let mut tail = command(
        &server.url(),
        &[
            "events",
            "tail",
            "--follow",
            "--after",
            "latest",
            "--kinds",
            "model_version.*",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(tail.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // The tail may start after the approval: `--after latest` is resolved
    // when its first request arrives. So approve until a line appears.
    let line = eventually(
        Duration::from_secs(60),
        "events tail --follow to print a line",
        || {
            succeeded(&server.cli(&[
                "models", "approve", "fraud", "1", "--actor", "bob", "--force",
            ]));
            rx.recv_timeout(Duration::from_secs(5)).ok()
        },
    );
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(line.contains("model_version.approved"), "{line}");
    assert!(line.contains("model_version:fraud/1"), "{line}");
    assert!(line.contains("bob"), "{line}");
}
