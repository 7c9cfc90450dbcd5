//! `pipelines run --wait` on a long step: it reports the step's time so far
//! and the last line it wrote, while the step runs.

mod common;

use common::server::Server;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn a_long_step_shows_its_elapsed_time_and_last_output() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // The step writes a line, then waits until the test has seen it reported.
    let go = dir.path().join("go");
    let yaml = format!(
        "name: slow\nsteps:\n  crunch:\n    run: \"echo epoch 3 of 10; while [ ! -f {} ]; do sleep 0.1; done\"\n",
        go.display()
    );
    let file = dir.path().join("slow.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut wait = server
        .command(&["pipelines", "run", file.to_str().unwrap(), "--wait"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(wait.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    let report = loop {
        let now = Instant::now();
        assert!(now < deadline, "no progress report in {seen:#?}");
        if let Ok(line) = rx.recv_timeout(deadline - now) {
            if line.contains("crunch: running for") && line.contains("epoch 3 of 10") {
                break line;
            }
            seen.push(line);
        }
    };
    std::fs::write(&go, "").unwrap();
    let status = wait.wait().unwrap();
    assert!(status.success(), "{seen:#?}");
    assert!(report.contains(" s | epoch 3 of 10"), "{report}");
}
