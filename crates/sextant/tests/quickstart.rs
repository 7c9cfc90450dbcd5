//! `sextant quickstart` end to end: the loop closes by itself, no inference
//! request fails, and what it leaves in its data directory is linked up —
//! the retrained version points at its pipeline run, the trigger event and
//! the monitor run whose violation caused it.

mod common;

use common::{BIN, free_port, http, wait_healthy};

use std::path::Path;
use std::process::{Command, Output};

/// `sextant quickstart` with its default arguments in `cwd`, as a user
/// runs it there; no `SEXTANT_*` setting from the caller's shell.
fn quickstart_in(cwd: &Path) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("quickstart").current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SEXTANT_") {
            cmd.env_remove(key);
        }
    }
    cmd.output().unwrap()
}

/// A child process, killed when dropped (also when a test fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asserts the quickstart succeeded with no failed request; returns its stdout.
fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    stdout
}

#[test]
fn the_loop_closes_unattended_and_leaves_its_lineage() {
    // Default arguments in two fresh working directories: each run keeps its
    // data in its own ./sextant-quickstart, so the second starts afresh too.
    let root_dir_existed = Path::new("/sextant-quickstart").exists();
    let dir = tempfile::tempdir().unwrap();
    let stdout = succeeded(&quickstart_in(dir.path()));
    let data = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("sextant-quickstart");
    assert!(
        stdout.contains(&format!("sextant server --data-dir {}", data.display())),
        "{stdout}"
    );
    let second = tempfile::tempdir().unwrap();
    let second_stdout = succeeded(&quickstart_in(second.path()));
    assert!(
        second
            .path()
            .join("sextant-quickstart/sextant.db")
            .is_file()
    );
    if !root_dir_existed {
        assert!(!Path::new("/sextant-quickstart").exists());
    }

    // The server command it prints serves what it registered.
    let line = second_stdout
        .lines()
        .find(|l| l.trim_start().starts_with("sextant server"))
        .unwrap_or_else(|| panic!("no server command in {second_stdout}"));
    let args: Vec<&str> = line
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    let port = free_port();
    let server = Killed(
        Command::new(BIN)
            .args(&args)
            .args(["--port", &port.to_string()])
            .current_dir(second.path())
            .env_remove("SEXTANT_LOG")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(port);
    let served = http(port, "GET", "/api/v1/models/quickstart-spend", "");
    drop(server);
    let (status, body) = served.unwrap();
    assert_eq!(status, 200, "{body}");
    let model: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(model["versions"].as_array().unwrap().len(), 2, "{model}");

    let store = sextant_store::open(
        &sextant_store::sqlite_uri::sqlite_uri(&data.join("sextant.db")).unwrap(),
        "mlflow-artifacts:",
    )
    .unwrap();
    let v2 = store.get_model_version("quickstart-spend", 2).unwrap();
    let tag = |key: &str| {
        v2.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.clone())
            .unwrap_or_else(|| panic!("v2 has no tag {key}: {:?}", v2.tags))
    };
    let event_id: i64 = tag("sextant.triggerEvent").parse().unwrap();
    assert_eq!(tag("sextant.triggerEventKind"), "monitor.violation");
    assert_eq!(tag("sextant.monitor"), "quickstart-drift");
    let run = store.get_pipeline_run(&tag("sextant.pipelineRun")).unwrap();
    assert_eq!(run.trigger_event, Some(event_id));

    // The violation came from the monitor run the tag names, which flagged drift.
    let monitor_run = store.get_monitor_run(&tag("sextant.monitorRun")).unwrap();
    assert_eq!(monitor_run.status.as_str(), "CompletedWithViolations");
    let summary: serde_json::Value = serde_json::from_str(&monitor_run.summary).unwrap();
    let drifted: Vec<&str> = summary["drift"]["drifted_features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in ["usage", "price", "discount"] {
        assert!(drifted.contains(&f), "{f} not among {drifted:?}");
    }
    assert!(!drifted.contains(&"age"), "{drifted:?}");
    let report = data
        .join("artifacts")
        .join(summary["files"]["report.html"].as_str().unwrap());
    assert!(std::fs::read_to_string(report).unwrap().contains("usage"));

    // The endpoint ended on v2, every bit of traffic on it.
    let endpoint = store.get_endpoint("quickstart").unwrap();
    let state: serde_json::Value = serde_json::from_str(&endpoint.state).unwrap();
    assert_eq!(state["deployed"]["primary"]["version"], 2, "{state}");
    assert!(state["rollout"].is_null(), "{state}");
}

#[test]
fn a_used_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
    let out = Command::new(BIN)
        .args(["quickstart", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "mine"
    );
}
