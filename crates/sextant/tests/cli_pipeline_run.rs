//! `sextant pipelines run FILE --wait` against a real server process: a
//! built-in training pipeline with a condition, a registration and command
//! steps, and a failing step retried by policy.

mod common;

use common::server::Server;
use common::{eventually, http};

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// A CSV where y = 2·x1 − 3·x2 + 1 plus a little deterministic noise.
fn write_csv(path: &Path) {
    let mut text = String::from("x1,x2,y\n");
    let mut state: u64 = 42;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for _ in 0..200 {
        let (x1, x2) = (next() * 10.0, next() * 5.0);
        let y = 2.0 * x1 - 3.0 * x2 + 1.0 + (next() - 0.5) * 0.1;
        text.push_str(&format!("{x1},{x2},{y}\n"));
    }
    std::fs::write(path, text).unwrap();
}

const TRAINING: &str = r#"
name: housing-test
params:
  data: {type: string}
  threshold: {type: float, default: 0.9}
steps:
  split:
    uses: builtin/split
    with: {data: "${params.data}", test_fraction: 0.25, seed: 7}
    outputs: [train, test]
  train:
    uses: builtin/linear
    with: {train: "${steps.split.outputs.train}", target: y}
    outputs: [model]
  evaluate:
    uses: builtin/evaluate
    with: {model: "${steps.train.outputs.model}", data: "${steps.split.outputs.test}", target: y}
  gate:
    condition: "steps.evaluate.metrics.r2 >= params.threshold"
    then: [register]
    else: fail
  register:
    register_model: {name: housing-test, model: "${steps.train.outputs.model}", approval: pending}
  report:
    run: >-
      sh -c 'echo "{\"rows\": 3}" > "$SEXTANT_OUTPUT_DIR/metrics.json"
      && echo hello > "$SEXTANT_OUTPUT_SUMMARY/summary.txt" && echo to-stdout'
    outputs: [summary]
  consume:
    run: test "$(cat ${steps.report.outputs.summary}/summary.txt)" = hello && echo r2=${steps.evaluate.metrics.r2}
"#;

const FAILING: &str = r#"
name: always-fails
steps:
  broken:
    run: "exit 3"
    retry: {attempts: 2, backoff: 10ms}
"#;

#[test]
fn a_training_pipeline_runs_to_a_registered_model() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let csv = dir.path().join("data.csv");
    write_csv(&csv);
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, TRAINING).unwrap();
    let out = server.sextant(&[
        "pipelines",
        "run",
        file.to_str().unwrap(),
        "--param",
        &format!("data={}", csv.display()),
        "--wait",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stderr: {stderr}\nserver log:\n{}",
        server.log()
    );
    assert!(stderr.contains("register: succeeded"), "{stderr}");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 7);
    for step in steps {
        assert_eq!(step["status"], "succeeded", "{step}");
        assert_eq!(step["attempts"], 1, "{step}");
    }
    let step = |name: &str| steps.iter().find(|s| s["name"] == name).unwrap().clone();
    assert!(step("evaluate")["metrics"]["r2"].as_f64().unwrap() > 0.9);
    assert_eq!(step("report")["metrics"]["rows"], 3.0);
    assert_eq!(step("gate")["branch"], "then");
    assert_eq!(step("register")["model_version"], 1);

    let version = server.get("/api/v1/models/housing-test/versions/1");
    assert_eq!(version["approval"]["status"], "pending", "{version}");
    let parent = run["tracking_run_id"].as_str().unwrap();
    assert_eq!(version["run_id"], step("register")["tracking_run_id"]);

    for s in steps {
        let run_id = s["tracking_run_id"].as_str().unwrap();
        let got = server.get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"));
        let tags = got["run"]["data"]["tags"].as_array().unwrap();
        assert!(
            tags.iter()
                .any(|t| t["key"] == "mlflow.parentRunId" && t["value"] == parent),
            "{got}"
        );
        assert_eq!(got["run"]["info"]["run_name"], s["name"]);
        assert_eq!(got["run"]["info"]["status"], "FINISHED");
    }
    let report_run = step("report")["tracking_run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, stdout) = http(
        server.port,
        "GET",
        &format!("/get-artifact?run_id={report_run}&path=logs/stdout.txt"),
        "",
    )
    .unwrap();
    assert_eq!((status, stdout.trim()), (200, "to-stdout"));
    let (status, _) = http(
        server.port,
        "GET",
        &format!("/get-artifact?run_id={report_run}&path=logs/stderr.txt"),
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    let consume = step("consume")["tracking_run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, consumed) = http(
        server.port,
        "GET",
        &format!("/get-artifact?run_id={consume}&path=logs/stdout.txt"),
        "",
    )
    .unwrap();
    assert!(consumed.starts_with("r2=0.9"), "{consumed}");

    let shown = server.sextant(&["pipelines", "show", &id]);
    assert!(shown.status.success());
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(
        shown.contains("SUCCEEDED") && shown.contains("register"),
        "{shown}"
    );
    // A registered version is a whole number, not a float.
    let register = shown.lines().find(|l| l.starts_with("register")).unwrap();
    assert!(register.trim_end().ends_with(" version=1"), "{shown}");
}

#[test]
fn a_failing_step_is_retried_then_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let file = dir.path().join("fails.yaml");
    std::fs::write(&file, FAILING).unwrap();
    let out = server.sextant(&["pipelines", "run", file.to_str().unwrap(), "--wait"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("failed"), "{stderr}");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "FAILED", "{run}");
    let step = &run["steps"][0];
    assert_eq!(step["status"], "failed", "{step}");
    assert_eq!(step["attempts"], 2, "{step}");
    assert_eq!(step["error"], "step 'broken' exited with code 3", "{step}");
}

#[test]
fn an_invalid_file_is_refused_with_positions_and_a_run_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let bad = "name: bad\nsteps:\n  a:\n    run: echo\n    needs: [nope]\n";
    let (status, body) = http(server.port, "PUT", "/api/v1/pipelines/bad", bad).unwrap();
    assert_eq!(status, 400, "{body}");
    let message: Value = serde_json::from_str(&body).unwrap();
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .starts_with("bad.yaml:5:"),
        "{body}"
    );

    let slow = "name: slow\nsteps:\n  wait:\n    run: sleep 60\n";
    let (status, body) = http(server.port, "PUT", "/api/v1/pipelines/slow", slow).unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(server.port, "POST", "/api/v1/pipelines/slow/runs", "{}").unwrap();
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let step_run = eventually(Duration::from_secs(60), "the step to start", || {
        let run = server.get(&format!("/api/v1/pipeline-runs/{id}"));
        if run["steps"][0]["status"] == "running"
            && let Some(r) = run["steps"][0]["tracking_run_id"].as_str()
        {
            return Ok(r.to_string());
        }
        Err(run)
    });
    let (status, body) = http(
        server.port,
        "POST",
        &format!("/api/v1/pipeline-runs/{id}/cancel"),
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "CANCELLED", "{run}");
    // The killed step's tracking run ends long before `sleep 60` would.
    eventually(Duration::from_secs(30), "the step to be killed", || {
        let got = server.get(&format!("/api/2.0/mlflow/runs/get?run_id={step_run}"));
        if got["run"]["info"]["status"] != "RUNNING" {
            Ok(())
        } else {
            Err(got)
        }
    });
}
