//! `sextant quickstart` end to end: the loop closes by itself, no inference
//! request fails, and what it leaves in its data directory is linked up —
//! the retrained version points at its pipeline run, the trigger event and
//! the monitor run whose violation caused it.

mod common;

use common::BIN;

use std::process::Command;

#[test]
fn the_loop_closes_unattended_and_leaves_its_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("qs");
    let out = Command::new(BIN)
        .args(["quickstart", "--data-dir"])
        .arg(&data)
        .env_remove("SEXTANT_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "sextant server --data-dir {}",
            data.canonicalize().unwrap().display()
        )),
        "{stdout}"
    );

    let store = sextant_store::open(
        &format!("sqlite:///{}", data.join("sextant.db").display()),
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
