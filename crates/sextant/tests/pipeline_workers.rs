//! Crash tests of the pipeline queue with real processes: a server killed
//! (SIGKILL) mid-step, a remote worker killed mid-step, and two workers
//! sharing one queue. In each the run completes and every step's outcome is
//! recorded exactly once, by the holder of its latest fencing token.

mod common;

use common::eventually;
use common::server::Server;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// A `sextant worker` process, killed (SIGKILL) when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    /// Starts worker `id` (one step at a time, 1 s leases) for `server`; its
    /// steps see `SEXTANT_TEST_HOST=<id>`.
    fn start(server: &Server, dir: &Path, id: &str) -> Worker {
        let log = dir.join(format!("worker-{id}.log"));
        let child = Command::new(common::BIN)
            .args(["worker", "--server", &server.url(), "--id", id])
            .args(["--concurrency", "1", "--lease-ms", "1000", "--work-dir"])
            .arg(dir.join(format!("work-{id}")))
            .env("SEXTANT_TEST_HOST", id)
            .env("SEXTANT_LOG", "info")
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Worker { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `path` holds at least `n` whole lines; returns them.
fn wait_lines(path: &Path, n: usize, context: &dyn Fn() -> String) -> Vec<String> {
    let what = format!("{} to reach {n} lines", path.display());
    eventually(Duration::from_secs(90), &what, || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let whole: Vec<String> = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| l.trim_end().to_string())
            .collect();
        if whole.len() >= n {
            Ok(whole)
        } else {
            Err(format!("{text:?}\n{}", context()))
        }
    })
}

/// Whether process `pid` runs (a zombie, dead but not yet reaped by a PID 1
/// that may never reap, does not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// The pid at the end of a `started` line.
fn pid_of(started_line: &str) -> &str {
    started_line.rsplit(' ').next().unwrap()
}

/// The processes of the step attempt that wrote `started_line`: its shell
/// and the background children recorded in `children` so far (read while
/// that attempt is the only one).
fn attempt_pids(started_line: &str, children: &Path) -> Vec<String> {
    let mut pids = vec![pid_of(started_line).to_string()];
    pids.extend(
        std::fs::read_to_string(children)
            .unwrap_or_default()
            .lines()
            .map(str::to_string),
    );
    pids
}

/// Polls until none of `pids` runs.
fn wait_gone(pids: &[String], context: &dyn Fn() -> String) {
    let what = format!("the step's processes {pids:?} to end with their holder");
    eventually(Duration::from_secs(60), &what, || {
        if pids.iter().any(|p| alive(p)) {
            Err(context())
        } else {
            Ok(())
        }
    });
}

/// `blocker` checks that no earlier attempt of it still runs (else it
/// writes `overlap`), records who runs it and a background child, and waits
/// for the test's release file; `gate` (a control step) and `consume`
/// (reading blocker's output) follow.
const CRASHY: &str = r#"
name: crashy
params:
  dir: {type: string}
steps:
  blocker:
    run: >-
      for p in $(cut -d' ' -f2 ${params.dir}/started 2>/dev/null) $(cat ${params.dir}/children 2>/dev/null); do
      if [ -r /proc/$p/stat ] && ! grep -q ') Z' /proc/$p/stat; then
      echo "$p alive when $SEXTANT_TEST_HOST $$ started" >> ${params.dir}/overlap; fi; done;
      sleep 1000 & echo $! >> ${params.dir}/children;
      echo "$SEXTANT_TEST_HOST $$" >> ${params.dir}/started;
      until [ -f ${params.dir}/release ]; do sleep 0.02; done;
      echo "hello from $SEXTANT_TEST_HOST";
      echo done > ${outputs.out}/x;
      echo '{"m": 1}' > $SEXTANT_OUTPUT_DIR/metrics.json
    outputs: [out]
  gate:
    condition: "steps.blocker.metrics.m > 0"
    then: [consume]
    else: fail
  consume:
    run: >-
      cat ${steps.blocker.outputs.out}/x >> ${params.dir}/consumed;
      echo "$SEXTANT_TEST_HOST" >> ${params.dir}/consumed
"#;

/// What the blocker of the second attempt found of the first (nothing, when
/// the attempts did not overlap).
fn overlap(d: &Path) -> String {
    std::fs::read_to_string(d.join("overlap")).unwrap_or_default()
}

fn step<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

#[test]
fn a_server_killed_mid_step_resumes_the_run_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = |host: &'static str| {
        [
            ("SEXTANT_PIPELINE_LEASE_MS", "1000"),
            ("SEXTANT_TEST_HOST", host),
        ]
    };
    let server = Server::start_with_env(d, env("first"));
    let id = server.start_run(d, "crashy", CRASHY);
    let started = wait_lines(&d.join("started"), 1, &|| server.log());
    assert!(started[0].starts_with("first "), "{started:?}");
    let first = attempt_pids(&started[0], &d.join("children"));
    // SIGKILL: the server cannot clean up; its step dies with it all the same.
    drop(server);

    let server = Server::start_with_env(d, env("second"));
    // The restarted server re-claims the step once the dead one's lease expired.
    let started = wait_lines(&d.join("started"), 2, &|| server.log());
    assert!(started[1].starts_with("second "), "{started:?}");
    assert_eq!(overlap(d), "", "two attempts ran at once");
    wait_gone(&first, &|| server.log());
    std::fs::write(d.join("release"), "").unwrap();
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "SUCCEEDED", "{run}\n{}", server.log());
    let blocker = step(&run, "blocker");
    assert_eq!(blocker["fencing"], 2, "{blocker}");
    assert_eq!(blocker["attempts"], 2, "{blocker}");
    assert!(
        blocker["worker"].as_str().unwrap().starts_with("server-"),
        "{blocker}"
    );
    assert_eq!(step(&run, "consume")["fencing"], 1);
    assert_eq!(
        std::fs::read_to_string(d.join("consumed")).unwrap(),
        "done\nsecond\n"
    );
}

/// The watchdog `sh` that process `parent` started (the one guarding its step,
/// when it runs one step).
fn watchdog_of(parent: u32) -> Option<String> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().into_owned();
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let is_watchdog = cmdline.split(|&b| b == 0).any(|a| a == b"sextant-watchdog");
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let ppid = stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?;
        (is_watchdog && ppid == parent.to_string()).then_some(pid)
    })
}

#[test]
fn a_restarted_server_stops_an_attempt_that_outlived_its_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = |host: &'static str| {
        [
            ("SEXTANT_PIPELINE_LEASE_MS", "1000"),
            ("SEXTANT_TEST_HOST", host),
        ]
    };
    let server = Server::start_with_env(d, env("first"));
    let id = server.start_run(d, "crashy", CRASHY);
    let started = wait_lines(&d.join("started"), 1, &|| server.log());
    let first = pid_of(&started[0]).to_string();
    // The whole host side dies at once, watchdog first: nothing stops the step.
    let watchdog = watchdog_of(server.pid()).expect("the step runs under a watchdog");
    let status = Command::new("kill")
        .args(["-9", &watchdog])
        .status()
        .unwrap();
    assert!(status.success());
    drop(server);
    assert!(
        alive(&first),
        "the step should have outlived its holder here"
    );

    let server = Server::start_with_env(d, env("second"));
    let started = wait_lines(&d.join("started"), 2, &|| server.log());
    assert!(started[1].starts_with("second "), "{started:?}");
    // The restarted server found the first attempt's record and stopped its
    // group before starting the second.
    assert_eq!(overlap(d), "", "two attempts ran at once");
    assert!(!alive(&first));
    assert!(
        server
            .log()
            .contains("stopping a step process left by an earlier holder"),
        "{}",
        server.log()
    );
    std::fs::write(d.join("release"), "").unwrap();
    let run = server.terminal_run(&id);
    assert_eq!(run["status"], "SUCCEEDED", "{run}\n{}", server.log());
    assert_eq!(step(&run, "blocker")["attempts"], 2);
}

#[test]
fn a_worker_killed_mid_step_loses_the_step_to_another_worker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start_with_env(
        d,
        [
            ("SEXTANT_PIPELINE_CONCURRENCY", "0"),
            ("SEXTANT_PIPELINE_LEASE_MS", "1000"),
        ],
    );
    let wa = Worker::start(&server, d, "wa");
    let id = server.start_run(d, "crashy", CRASHY);
    let started = wait_lines(&d.join("started"), 1, &|| wa.log());
    assert!(started[0].starts_with("wa "), "{started:?}");
    let first = attempt_pids(&started[0], &d.join("children"));
    // SIGKILL: the worker's step dies with it.
    drop(wa);
    wait_gone(&first, &|| server.log());

    let wb = Worker::start(&server, d, "wb");
    let started = wait_lines(&d.join("started"), 2, &|| {
        format!("{}\n{}", wb.log(), server.log())
    });
    assert!(started[1].starts_with("wb "), "{started:?}");
    assert_eq!(overlap(d), "", "two attempts ran at once");
    std::fs::write(d.join("release"), "").unwrap();
    let run = server.terminal_run(&id);
    assert_eq!(
        run["status"],
        "SUCCEEDED",
        "{run}\n{}\n{}",
        wb.log(),
        server.log()
    );
    let blocker = step(&run, "blocker");
    assert_eq!(blocker["fencing"], 2, "{blocker}");
    assert_eq!(blocker["worker"], "wb", "{blocker}");
    assert_eq!(blocker["metrics"]["m"], 1.0, "{blocker}");
    // The condition was claimed by the worker and run by the server.
    assert_eq!(step(&run, "gate")["branch"], "then");
    assert_eq!(step(&run, "consume")["worker"], "wb");
    // The output crossed hosts by digest: written in wb's work directory,
    // published to the server, read back by the next step.
    assert_eq!(
        std::fs::read_to_string(d.join("consumed")).unwrap(),
        "done\nwb\n"
    );
    assert!(
        d.join("work-wb/pipeline-runs")
            .join(&id)
            .join("blocker/out/x")
            .is_file()
    );
    // Its stdout was uploaded to the step's tracking run, where `logs` finds it.
    let log = server.get(&format!("/api/v1/pipeline-runs/{id}/logs?step=blocker"));
    assert_eq!(log["data"], "hello from wb\n", "{log}");
}

/// Two fan-out steps that each wait until both have started: the run can
/// only finish if two workers run them at the same time.
const PAIR: &str = r#"
name: pair
params:
  dir: {type: string}
steps:
  left:
    run: >-
      echo "$SEXTANT_TEST_HOST" >> ${params.dir}/started;
      until [ "$(wc -l < ${params.dir}/started)" -ge 2 ]; do sleep 0.02; done
  right:
    run: >-
      echo "$SEXTANT_TEST_HOST" >> ${params.dir}/started;
      until [ "$(wc -l < ${params.dir}/started)" -ge 2 ]; do sleep 0.02; done
  join:
    needs: [left, right]
    run: echo "$SEXTANT_TEST_HOST" >> ${params.dir}/joined
"#;

#[test]
fn two_workers_share_one_queue() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start_with_env(d, [("SEXTANT_PIPELINE_CONCURRENCY", "0")]);
    let wa = Worker::start(&server, d, "wa");
    let wb = Worker::start(&server, d, "wb");
    let id = server.start_run(d, "pair", PAIR);
    let run = server.terminal_run(&id);
    assert_eq!(
        run["status"],
        "SUCCEEDED",
        "{run}\n{}\n{}",
        wa.log(),
        wb.log()
    );
    let mut holders: Vec<&str> = ["left", "right"]
        .iter()
        .map(|s| step(&run, s)["worker"].as_str().unwrap())
        .collect();
    holders.sort();
    assert_eq!(holders, ["wa", "wb"], "{run}");
    for s in ["left", "right", "join"] {
        assert_eq!(step(&run, s)["fencing"], 1, "{run}");
    }
    let joined = std::fs::read_to_string(d.join("joined")).unwrap();
    assert_eq!(joined.lines().count(), 1, "{joined}");
}
