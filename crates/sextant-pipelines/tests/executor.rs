//! The local executor through its public surface: real child processes, process groups,
//! timeouts, cancellation and the concurrency limit. Readiness is always a file the child
//! writes, never a sleep.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sextant_pipelines::executor::{
    ExecError, ExecHandle, Executor, Exit, LocalExecutor, LogLine, LogStream, StepCommand, StepExec,
};
use support::eventually;
use tokio::sync::broadcast;

const GRACE: Duration = Duration::from_secs(5);

fn exec(dir: &Path, command: StepCommand) -> StepExec {
    StepExec {
        command,
        env: BTreeMap::new(),
        cwd: Some(dir.to_owned()),
        timeout: None,
        stdout_path: dir.join("stdout.log"),
        stderr_path: dir.join("stderr.log"),
        tee: None,
        record: None,
    }
}

fn shell(dir: &Path, line: &str) -> StepExec {
    exec(dir, StepCommand::Shell(line.to_owned()))
}

/// Polls for a file the child writes, up to a generous deadline.
async fn wait_for_file(path: &Path) -> String {
    let what = format!("{} to appear", path.display());
    eventually(Duration::from_secs(30), &what, || async {
        let text = std::fs::read_to_string(path).ok()?;
        text.ends_with('\n').then(|| text.trim().to_owned())
    })
    .await
}

/// `kill -0 ARG` succeeds: the process (or, with `-PGID`, some process of the group) exists.
fn exists(arg: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("kill -0 -- {arg} 2>/dev/null")])
        .status()
        .unwrap()
        .success()
}

/// A shell line that starts a background grandchild, records its pid and the group id
/// (the shell's own pid), then waits.
const WITH_GRANDCHILD: &str = "sleep 1000 & echo $! > grandchild; echo $$ > ready; wait";

fn assert_all_gone(dir: &Path) {
    let pgid = std::fs::read_to_string(dir.join("ready")).unwrap();
    let grandchild = std::fs::read_to_string(dir.join("grandchild")).unwrap();
    assert!(
        !exists(&format!("-{}", pgid.trim())),
        "group {pgid} survived"
    );
    assert!(
        !exists(grandchild.trim()),
        "grandchild {grandchild} survived"
    );
}

#[tokio::test]
async fn reports_exit_codes_and_spawn_failures() {
    let dir = tempfile::tempdir().unwrap();
    let ex = LocalExecutor::new(4, GRACE);
    let ok = ex
        .start(exec(dir.path(), StepCommand::Argv(vec!["true".into()])))
        .wait()
        .await
        .unwrap();
    assert_eq!(ok.exit, Some(Exit::Code(0)));
    assert!(ok.success());

    let failed = ex.start(shell(dir.path(), "exit 3")).wait().await.unwrap();
    assert_eq!(failed.exit, Some(Exit::Code(3)));
    assert!(!failed.success() && !failed.timed_out && !failed.cancelled);

    let killed = ex
        .start(shell(dir.path(), "kill -9 $$"))
        .wait()
        .await
        .unwrap();
    assert_eq!(killed.exit, Some(Exit::Signal(9)));

    let missing = ex
        .start(exec(
            dir.path(),
            StepCommand::Argv(vec!["/no/such/program".into()]),
        ))
        .wait()
        .await
        .unwrap_err();
    assert!(matches!(missing, ExecError::Spawn { .. }), "{missing:?}");
    assert!(
        missing.to_string().contains("/no/such/program"),
        "{missing}"
    );

    let empty = ex
        .start(exec(dir.path(), StepCommand::Argv(vec![])))
        .wait()
        .await
        .unwrap_err();
    assert!(matches!(empty, ExecError::EmptyCommand), "{empty:?}");
}

#[tokio::test]
async fn passes_env_and_cwd_and_captures_both_streams() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    let mut step = shell(dir.path(), "echo \"$GREETING\"; pwd; echo oops >&2");
    step.env.insert("GREETING".into(), "hello world".into());
    step.cwd = Some(cwd.clone());
    let outcome = LocalExecutor::new(1, GRACE)
        .start(step)
        .wait()
        .await
        .unwrap();
    assert!(outcome.success(), "{outcome:?}");
    let stdout = std::fs::read_to_string(dir.path().join("stdout.log")).unwrap();
    let cwd = cwd.canonicalize().unwrap();
    assert_eq!(stdout, format!("hello world\n{}\n", cwd.display()));
    let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert_eq!(stderr, "oops\n");
}

#[tokio::test]
async fn tee_sends_lines_and_a_background_leftover_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = broadcast::channel(16);
    // The grandchild keeps the pipes open: the step only ends because the executor kills
    // what the leader left in its group.
    let mut step = shell(
        dir.path(),
        "sleep 1000 & echo $! > grandchild; echo $$ > ready; echo one; echo two >&2",
    );
    step.tee = Some(tx);
    let outcome = LocalExecutor::new(1, GRACE)
        .start(step)
        .wait()
        .await
        .unwrap();
    assert!(outcome.success(), "{outcome:?}");
    assert_all_gone(dir.path());

    let mut lines = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    lines.sort_by_key(|l| l.line.clone());
    let expected = [
        LogLine {
            stream: LogStream::Stdout,
            line: "one".into(),
        },
        LogLine {
            stream: LogStream::Stderr,
            line: "two".into(),
        },
    ];
    assert_eq!(lines, expected);
    let stdout = std::fs::read_to_string(dir.path().join("stdout.log")).unwrap();
    assert_eq!(stdout, "one\n");
}

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut step = shell(dir.path(), WITH_GRANDCHILD);
    step.timeout = Some(Duration::from_secs(2));
    let outcome = LocalExecutor::new(1, GRACE)
        .start(step)
        .wait()
        .await
        .unwrap();
    assert!(outcome.timed_out && !outcome.cancelled, "{outcome:?}");
    assert_eq!(outcome.exit, Some(Exit::Signal(15)));
    assert!(!outcome.success());
    assert_all_gone(dir.path());
}

#[tokio::test]
async fn cancel_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let handle = LocalExecutor::new(1, GRACE).start(shell(dir.path(), WITH_GRANDCHILD));
    wait_for_file(&dir.path().join("ready")).await;
    handle.cancel();
    let outcome = handle.wait().await.unwrap();
    assert!(outcome.cancelled && !outcome.timed_out, "{outcome:?}");
    assert_eq!(outcome.exit, Some(Exit::Signal(15)));
    assert_all_gone(dir.path());
}

#[tokio::test]
async fn sigterm_ignored_escalates_to_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("trap '' TERM; {WITH_GRANDCHILD}");
    let ex = LocalExecutor::new(1, Duration::from_millis(100));
    let handle = ex.start(shell(dir.path(), &line));
    let canceller = handle.canceller();
    wait_for_file(&dir.path().join("ready")).await;
    canceller.cancel();
    let outcome = handle.wait().await.unwrap();
    assert!(outcome.cancelled, "{outcome:?}");
    assert_eq!(outcome.exit, Some(Exit::Signal(9)));
    assert_all_gone(dir.path());
}

#[tokio::test]
async fn cancel_while_queued_never_starts() {
    let dir = tempfile::tempdir().unwrap();
    let ex = LocalExecutor::new(1, GRACE);
    let blocker = ex.start(shell(
        dir.path(),
        "echo $$ > ready; while [ ! -e release ]; do sleep 0.01; done",
    ));
    wait_for_file(&dir.path().join("ready")).await;
    let queued = ex.start(shell(dir.path(), "touch started"));
    queued.cancel();
    let outcome = queued.wait().await.unwrap();
    assert_eq!(outcome.exit, None);
    assert!(outcome.cancelled);
    std::fs::write(dir.path().join("release"), "").unwrap();
    assert!(blocker.wait().await.unwrap().success());
    assert!(!dir.path().join("started").exists());
}

#[tokio::test]
async fn concurrency_limit_is_honored() {
    let dir = tempfile::tempdir().unwrap();
    let running = dir.path().join("running");
    std::fs::create_dir(&running).unwrap();
    let ex = LocalExecutor::new(2, GRACE);
    // Each job marks itself running, records how many are running, waits for the test's
    // go-ahead, then unmarks itself: the largest count recorded is the peak concurrency.
    let handles: Vec<ExecHandle> = (0..5)
        .map(|i| {
            let line = format!(
                "touch running/{i}; ls running | wc -l >> counts; \
                 while [ ! -e release ]; do sleep 0.01; done; rm running/{i}"
            );
            let mut step = shell(dir.path(), &line);
            step.stdout_path = dir.path().join(format!("out-{i}.log"));
            step.stderr_path = dir.path().join(format!("err-{i}.log"));
            ex.start(step)
        })
        .collect();
    eventually(Duration::from_secs(30), "two jobs to start", || async {
        (std::fs::read_dir(&running).unwrap().count() >= 2).then_some(())
    })
    .await;
    std::fs::write(dir.path().join("release"), "").unwrap();
    for handle in handles {
        assert!(handle.wait().await.unwrap().success());
    }
    let counts: Vec<usize> = std::fs::read_to_string(dir.path().join("counts"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert_eq!(counts.iter().max(), Some(&2), "{counts:?}");
}

#[test]
fn local_executor_is_usable_as_dyn_executor() {
    let ex: Box<dyn Executor> = Box::new(LocalExecutor::new(1, GRACE));
    drop(ex);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_step_can_be_stopped_by_whoever_finds_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join(sextant_pipelines::executor::RECORD_FILE);
    let mut step = shell(dir.path(), WITH_GRANDCHILD);
    step.record = Some(record.clone());
    let handle = LocalExecutor::new(1, GRACE).start(step);
    wait_for_file(&dir.path().join("ready")).await;
    eventually(
        Duration::from_secs(30),
        "a record to be written",
        || async { record.is_file().then_some(()) },
    )
    .await;
    // What a restarted holder finds: a copy, as the live executor still owns the original.
    let found = tempfile::tempdir().unwrap();
    let attempt = found.path().join("task-1/attempt-1");
    std::fs::create_dir_all(&attempt).unwrap();
    let text = std::fs::read(&record).unwrap();
    std::fs::write(
        attempt.join(sextant_pipelines::executor::RECORD_FILE),
        &text,
    )
    .unwrap();

    let stopped = sextant_pipelines::executor::stop_recorded(found.path(), GRACE).await;
    let pgid = std::fs::read_to_string(dir.path().join("ready")).unwrap();
    assert_eq!(
        stopped
            .iter()
            .map(|r| r.pid.to_string())
            .collect::<Vec<_>>(),
        [pgid.trim().to_string()]
    );
    let outcome = handle.wait().await.unwrap();
    assert_eq!(outcome.exit, Some(Exit::Signal(15)), "{outcome:?}");
    assert_all_gone(dir.path());
    // The records are gone: the executor's once its group was, the copy once stopped.
    assert!(!record.exists());
    assert!(
        !attempt
            .join(sextant_pipelines::executor::RECORD_FILE)
            .exists()
    );
    // A record of a process that ended stops nothing, and is cleared.
    std::fs::write(
        attempt.join(sextant_pipelines::executor::RECORD_FILE),
        &text,
    )
    .unwrap();
    assert!(
        sextant_pipelines::executor::stop_recorded(found.path(), GRACE)
            .await
            .is_empty()
    );
    assert!(
        !attempt
            .join(sextant_pipelines::executor::RECORD_FILE)
            .exists()
    );
}
