//! Operating pipeline runs from the CLI against a real server process:
//! `pipelines list`, `cancel` (the step's whole process group dies),
//! `retry` (a failed or cancelled run resumes in place) and
//! `logs [--follow]` (live and finished steps, from files and uploads).

mod common;

use common::server::Server;
use common::{eventually, http};

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls until `path` holds a whole line that parses as a process id.
fn read_pid(path: &Path) -> i32 {
    eventually(
        Duration::from_secs(60),
        &format!("{} to be written", path.display()),
        || {
            let text = std::fs::read_to_string(path).ok()?;
            text.strip_suffix('\n')?.trim().parse().ok()
        },
    )
}

fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

const SLEEPER: &str = r#"
name: sleeper
params:
  dir: {type: string}
steps:
  nap:
    # The shell leads the step's process group and starts a second sleeper
    # in the background; cancelling must kill both.
    run: >-
      if [ -f ${params.dir}/quick ]; then exit 0; fi;
      sleep 600 & echo $! > ${params.dir}/child.pid;
      echo $$ > ${params.dir}/shell.pid; sleep 600
"#;

#[test]
fn cancel_kills_the_steps_process_group_and_retry_resumes_the_cancelled_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let id = server.start_run(dir.path(), "sleeper", SLEEPER);
    let shell = read_pid(&dir.path().join("shell.pid"));
    let child = read_pid(&dir.path().join("child.pid"));
    assert!(process_exists(shell) && process_exists(child));

    let out = server.sextant(&["pipelines", "cancel", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{id}: CANCELLED\n"));
    eventually(
        Duration::from_secs(60),
        "the step's processes to end after the cancellation",
        || {
            if process_exists(shell) || process_exists(child) {
                Err(format!("still running; server log:\n{}", server.log()))
            } else {
                Ok(())
            }
        },
    );
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "CANCELLED", "{run}");
    let run = server.run_until(&id, |r| r["steps"][0]["status"] == "cancelled");
    let killed = run["steps"][0]["tracking_run_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Cancelling is idempotent.
    let again = server.sextant(&["pipelines", "cancel", &id]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again), format!("{id}: CANCELLED\n"));

    // A cancelled run resumes in place; this time the step ends at once.
    std::fs::write(dir.path().join("quick"), "").unwrap();
    let out = server.sextant(&["pipelines", "retry", &id, "--wait"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    assert_eq!(stdout(&out).trim(), id);
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let step = &run["steps"][0];
    assert_eq!(step["status"], "succeeded", "{step}");
    assert_ne!(step["tracking_run_id"].as_str(), Some(killed.as_str()));
    let parent = run["tracking_run_id"].as_str().unwrap();
    let got = server.get(&format!("/api/2.0/mlflow/runs/get?run_id={parent}"));
    assert_eq!(got["run"]["info"]["status"], "FINISHED", "{got}");
}

const FLAKY: &str = r#"
name: flaky
params:
  dir: {type: string}
steps:
  prepare:
    run: echo ran >> ${params.dir}/prepare.count
  train:
    # Fails without the marker, after leaving a file in its output that a
    # later attempt must not find.
    run: >-
      test ! -e ${outputs.model}/partial && touch ${outputs.model}/partial
      && test -f ${params.dir}/marker
    outputs: [model]
    needs: [prepare]
  report:
    run: echo ran >> ${params.dir}/report.count
    needs: [train]
"#;

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn retry_reruns_only_what_failed_and_list_shows_runs_and_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let file = dir.path().join("flaky.yaml");
    std::fs::write(&file, FLAKY).unwrap();
    let param = format!("dir={}", dir.path().display());
    let args = [
        "pipelines",
        "run",
        file.to_str().unwrap(),
        "--param",
        &param,
    ];
    let out = server.sextant(&[&args[..], &["--wait"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "FAILED", "{run}");
    let states: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["succeeded", "failed", "waiting"]);

    // A second run of the pipeline, failing the same way, to list with it.
    let other = server.sextant(&args);
    assert!(other.status.success(), "{}", stderr(&other));
    let other = stdout(&other).trim().to_string();
    server.terminal_run(&other);
    let out = server.sextant(&["pipelines", "list", "--status", "failed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let mut rows = table.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["RUN", "PIPELINE", "STATUS", "TRIGGER", "STARTED", "ENDED"]
    );
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{table}");
    // Newest first.
    assert_eq!(rows[0][0], other);
    assert_eq!(rows[1][0], id);
    assert_eq!(&rows[1][1..4], ["flaky", "FAILED", "manual"]);
    assert_eq!(rows[1].len(), 6, "a failed run has an end time: {table}");
    let none = server.sextant(&["pipelines", "list", "--pipeline", "nope"]);
    assert_eq!(stdout(&none).lines().count(), 1, "{}", stdout(&none));
    let bad = server.sextant(&["pipelines", "list", "--status", "sleeping"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("invalid pipeline run status 'sleeping'"),
        "{}",
        stderr(&bad)
    );

    // The marker makes `train` pass: the retried run finishes under the
    // same id, `train` starts from an empty output, and `prepare`, which had
    // succeeded, does not run again.
    std::fs::write(dir.path().join("marker"), "").unwrap();
    let out = server.sextant(&["pipelines", "retry", &id, "--wait"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), server.log());
    assert_eq!(stdout(&out).trim(), id);
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    for step in run["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "succeeded", "{step}");
        assert_eq!(step["attempts"], 1, "{step}");
    }
    assert_eq!(lines(&dir.path().join("prepare.count")), 2, "one per run");
    assert_eq!(lines(&dir.path().join("report.count")), 1);
    let events = server.get("/api/v1/events?kinds=pipeline_run.resumed");
    let resumed: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["id"] == id.as_str())
        .collect();
    assert_eq!(resumed.len(), 1, "{events}");

    // A succeeded run cannot be retried, and says why.
    let again = server.sextant(&["pipelines", "retry", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains(&format!(
            "pipeline run '{id}' is SUCCEEDED: only a FAILED or CANCELLED run can be retried \
             (RESOURCE_CONFLICT, HTTP 409)"
        )),
        "{}",
        stderr(&again)
    );
    let (status, body) = http(
        server.port,
        "POST",
        "/api/v1/pipeline-runs/no-such-run/retry",
        "",
    )
    .unwrap();
    assert_eq!(status, 404, "{body}");

    let out = server.sextant(&["pipelines", "list", "--json"]);
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    let limited = server.sextant(&["pipelines", "list", "--json", "--limit", "1"]);
    let limited: Value = serde_json::from_slice(&limited.stdout).unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1, "{limited}");
    let out = server.sextant(&["pipelines", "list", "--pipelines"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|r| r.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NAME", "STEPS", "SCHEDULE", "TRIGGERS", "UPDATED"]
    );
    assert_eq!(&rows[1][..4], ["flaky", "3", "-", "0"], "{table}");
    let clash = server.sextant(&["pipelines", "list", "--pipelines", "--status", "failed"]);
    assert_eq!(clash.status.code(), Some(2), "{}", stderr(&clash));
}

const TALKER: &str = r#"
name: talker
params:
  dir: {type: string}
steps:
  talk:
    # Prints a line, then waits for the test to have seen it.
    run: >-
      echo first; echo warn-1 >&2;
      while [ ! -f ${params.dir}/go ]; do sleep 0.05; done;
      echo second; printf 'no newline'
  after:
    run: echo after-line
    needs: [talk]
"#;

/// Lines of `reader` sent to a channel from a thread, so the test can wait
/// for each with a deadline.
fn line_channel(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn next_line(rx: &mpsc::Receiver<String>, server: &Server) -> Option<String> {
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => Some(line),
        Err(mpsc::RecvTimeoutError::Disconnected) => None,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no log line within a minute:\n{}", server.log())
        }
    }
}

fn log_piece(server: &Server, id: &str, query: &str) -> Value {
    server.get(&format!("/api/v1/pipeline-runs/{id}/logs?{query}"))
}

#[test]
fn logs_follow_a_live_step_and_read_finished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let id = server.start_run(dir.path(), "talker", TALKER);

    let mut follower = server
        .command(&["pipelines", "logs", &id, "talk", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = line_channel(follower.stdout.take().unwrap());
    let err = line_channel(follower.stderr.take().unwrap());
    assert_eq!(next_line(&out, &server).as_deref(), Some("first"));
    assert_eq!(next_line(&err, &server).as_deref(), Some("warn-1"));
    // The step is still waiting for us, so the follower saw it live.
    let live = log_piece(&server, &id, "step=talk");
    assert_eq!(live["status"], "running", "{live}");
    assert_eq!(live["complete"], false, "{live}");
    std::fs::write(dir.path().join("go"), "").unwrap();
    assert_eq!(next_line(&out, &server).as_deref(), Some("second"));
    assert_eq!(next_line(&out, &server).as_deref(), Some("no newline"));
    assert_eq!(
        next_line(&out, &server),
        None,
        "the follower ends with the step"
    );
    assert!(follower.wait().unwrap().success());

    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let done = log_piece(&server, &id, "step=talk&offset=6");
    assert_eq!(done["data"], "second\nno newline", "{done}");
    assert_eq!(
        (&done["complete"], &done["finished"], &done["attempt"]),
        (&Value::Bool(true), &Value::Bool(true), &Value::from(1)),
        "{done}"
    );
    let part = log_piece(&server, &id, "step=talk&offset=6&max_bytes=3");
    assert_eq!(
        (&part["data"], &part["next_offset"]),
        (&"sec".into(), &9.into())
    );
    let err_piece = log_piece(&server, &id, "step=talk&stream=stderr");
    assert_eq!(err_piece["data"], "warn-1\n");

    // Every step at once, each line behind its step's name.
    let all = server.sextant(&["pipelines", "logs", &id]);
    assert!(all.status.success(), "{}", stderr(&all));
    assert_eq!(
        stdout(&all),
        "talk  | first\ntalk  | second\ntalk  | no newline\nafter | after-line\n"
    );
    assert_eq!(stderr(&all), "talk  | warn-1\n");

    // Without the local files, the copies uploaded to the step's tracking
    // run answer the same.
    let logs_dir = dir
        .path()
        .join("data/pipeline-runs")
        .join(&id)
        .join(".logs");
    assert!(logs_dir.is_dir(), "{}", logs_dir.display());
    std::fs::remove_dir_all(&logs_dir).unwrap();
    let uploaded = log_piece(&server, &id, "step=talk&offset=6");
    assert_eq!(uploaded["data"], "second\nno newline", "{uploaded}");
    assert_eq!(uploaded["finished"], true);
    let one = server.sextant(&["pipelines", "logs", &id, "after"]);
    assert_eq!(stdout(&one), "after-line\n");

    for (query, status) in [
        ("step=nope", 404),
        ("stream=stdout", 400),
        ("step=talk&stream=both", 400),
        ("step=talk&attempt=2", 400),
        ("step=talk&max_bytes=0", 400),
    ] {
        let (got, body) = http(
            server.port,
            "GET",
            &format!("/api/v1/pipeline-runs/{id}/logs?{query}"),
            "",
        )
        .unwrap();
        assert_eq!(got, status, "{query}: {body}");
    }
}

#[test]
fn logs_of_a_silent_step_say_so_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let yaml = "name: silent\nparams:\n  dir: {type: string}\nsteps:\n  quiet: {run: 'true'}\n  broken: {run: 'exit 1', needs: [quiet]}\n  later: {run: 'true', needs: [broken]}\n";
    let id = server.start_run(dir.path(), "silent", yaml);
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "FAILED", "{run}");

    let quiet = server.sextant(&["pipelines", "logs", &id, "quiet"]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(stdout(&quiet), "");
    assert_eq!(
        stderr(&quiet),
        format!(
            "step 'quiet' of run {id} wrote no output (attempt 1 of 1: succeeded; nothing on stdout or stderr)\n"
        )
    );
    let later = server.sextant(&["pipelines", "logs", &id, "later"]);
    assert_eq!(stdout(&later), "");
    assert!(
        stderr(&later).starts_with(&format!("step 'later' of run {id} has not run (it is ")),
        "{}",
        stderr(&later)
    );
}
