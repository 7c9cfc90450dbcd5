//! Running one step execution somewhere: the [`Executor`] trait and the [`LocalExecutor`]
//! that runs steps as child processes of this one.
//!
//! The executor only runs a command and reports how it ended. Retries, caching and the
//! queue belong to the orchestrator, so that every back end (local, remote worker,
//! Kubernetes) behaves the same under them.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, broadcast, oneshot, watch};

/// What to run for one step execution.
#[derive(Clone, Debug)]
pub struct StepExec {
    /// The program and its arguments, or a shell line.
    pub command: StepCommand,
    /// Variables added to the environment this process inherits.
    pub env: BTreeMap<String, String>,
    /// Working directory; the executor's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Wall-clock limit from the moment the process starts (queueing not counted).
    pub timeout: Option<Duration>,
    /// File that receives the process's standard output (created or truncated).
    pub stdout_path: PathBuf,
    /// File that receives the process's standard error (created or truncated).
    pub stderr_path: PathBuf,
    /// Also sends every output line here, for `pipelines logs --follow`. A slow or absent
    /// follower never blocks the step: a lagging receiver loses lines, the files keep all.
    pub tee: Option<broadcast::Sender<LogLine>>,
}

/// The command of a [`StepExec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepCommand {
    /// Executed directly: the first element is the program.
    Argv(Vec<String>),
    /// Run by `sh -c`, as a `run:` step is written.
    Shell(String),
}

/// Which output stream a [`LogLine`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a step's output, without its line ending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The stream it was written to.
    pub stream: LogStream,
    /// The text, lossily decoded as UTF-8.
    pub line: String,
}

/// How the process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal number.
    Signal(i32),
}

/// The result of a step execution that ran, or was cancelled before it could.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// How the process ended; `None` when it was cancelled before it started.
    pub exit: Option<Exit>,
    /// Time from start to exit (zero when it never started).
    pub duration: Duration,
    /// The timeout fired and the executor killed the process group.
    pub timed_out: bool,
    /// [`ExecHandle::cancel`] was called and the executor killed the process group.
    pub cancelled: bool,
}

impl Outcome {
    /// Whether the step succeeded: exit code 0, neither timed out nor cancelled.
    pub fn success(&self) -> bool {
        self.exit == Some(Exit::Code(0)) && !self.timed_out && !self.cancelled
    }
}

/// Why a step execution could not run at all (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The command is empty.
    #[error("empty command")]
    EmptyCommand,
    /// The process could not be started.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program that was to run.
        program: String,
        /// Why the OS refused.
        #[source]
        source: std::io::Error,
    },
    /// A log file could not be created or written.
    #[error("cannot write log {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The IO failure.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the process failed.
    #[error("cannot wait for process {pid}: {source}")]
    Wait {
        /// The process id.
        pid: u32,
        /// The IO failure.
        #[source]
        source: std::io::Error,
    },
    /// The executor dropped the execution without reporting (a bug, or shutdown).
    #[error("the executor stopped before the step ended")]
    Lost,
}

/// Where steps run. Object safe, so the orchestrator holds a `dyn Executor` chosen at
/// start-up.
pub trait Executor: Send + Sync {
    /// Starts (or queues) `exec` and returns at once with a handle to await or cancel it.
    /// Failures to start are reported by [`ExecHandle::wait`].
    fn start(&self, exec: StepExec) -> ExecHandle;
}

/// A running or queued step execution.
#[derive(Debug)]
pub struct ExecHandle {
    outcome: oneshot::Receiver<Result<Outcome, ExecError>>,
    cancel: Canceller,
}

impl ExecHandle {
    /// A handle for a back end: the back end sends the outcome on the returned sender and
    /// watches the returned receiver, which turns `true` on cancellation.
    pub fn new() -> (
        ExecHandle,
        oneshot::Sender<Result<Outcome, ExecError>>,
        watch::Receiver<bool>,
    ) {
        let (outcome_tx, outcome) = oneshot::channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let handle = ExecHandle {
            outcome,
            cancel: Canceller(Arc::new(cancel_tx)),
        };
        (handle, outcome_tx, cancel_rx)
    }

    /// Asks the execution to stop; see [`Canceller::cancel`].
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A clonable way to cancel this execution from elsewhere while another task waits.
    pub fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    /// Waits for the execution to end.
    pub async fn wait(self) -> Result<Outcome, ExecError> {
        self.outcome.await.unwrap_or(Err(ExecError::Lost))
    }
}

/// Cancels one execution; cheap to clone.
#[derive(Clone, Debug)]
pub struct Canceller(Arc<watch::Sender<bool>>);

impl Canceller {
    /// A canceller for work that is not a process (the trials of a `tune:` step), with the
    /// receiver that turns `true` once it is cancelled.
    pub fn new() -> (Canceller, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (Canceller(Arc::new(tx)), rx)
    }

    /// Stops the execution: a queued one never starts, a running one's process group gets
    /// SIGTERM, then SIGKILL after the grace period. Idempotent.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// Runs steps as child processes, each in its own process group, at most a fixed number
/// at a time.
#[derive(Clone, Debug)]
pub struct LocalExecutor {
    slots: Arc<Semaphore>,
    grace: Duration,
}

/// How long a killed step's processes get between SIGTERM and SIGKILL by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How long to wait for the members of a killed process group to disappear before giving
/// up on them with a warning.
const REAP_DEADLINE: Duration = Duration::from_secs(10);

impl LocalExecutor {
    /// An executor running at most `max_concurrent` steps at once (at least one), giving
    /// cancelled or timed-out steps `grace` to exit after SIGTERM.
    ///
    /// On Linux this process becomes a child subreaper: the background processes a step
    /// leaves behind are re-parented here rather than to PID 1, so the executor can kill
    /// and reap them. Without that, a container whose PID 1 does not reap would collect
    /// a zombie per leftover process.
    pub fn new(max_concurrent: usize, grace: Duration) -> LocalExecutor {
        #[cfg(target_os = "linux")]
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::warn!(error = %e, "cannot become a child subreaper; orphaned step processes will be left to PID 1");
        }
        LocalExecutor {
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            grace,
        }
    }
}

impl Executor for LocalExecutor {
    fn start(&self, exec: StepExec) -> ExecHandle {
        let (handle, outcome_tx, cancel) = ExecHandle::new();
        let slots = Arc::clone(&self.slots);
        let grace = self.grace;
        tokio::spawn(async move {
            let result = run_local(exec, slots, grace, cancel).await;
            // The receiver may be gone; the step still ran to its end.
            let _ = outcome_tx.send(result);
        });
        handle
    }
}

async fn cancelled(rx: &mut watch::Receiver<bool>) {
    // An error means every canceller is gone, so cancellation can no longer come.
    if rx.wait_for(|&c| c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run_local(
    exec: StepExec,
    slots: Arc<Semaphore>,
    grace: Duration,
    mut cancel: watch::Receiver<bool>,
) -> Result<Outcome, ExecError> {
    let not_started = Outcome {
        exit: None,
        duration: Duration::ZERO,
        timed_out: false,
        cancelled: true,
    };
    let _permit = tokio::select! {
        biased;
        () = cancelled(&mut cancel) => return Ok(not_started),
        permit = slots.acquire_owned() => permit.expect("the executor never closes its semaphore"),
    };
    if *cancel.borrow() {
        return Ok(not_started);
    }

    let mut cmd = match &exec.command {
        StepCommand::Argv(argv) => {
            let (program, args) = argv.split_first().ok_or(ExecError::EmptyCommand)?;
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args);
            cmd
        }
        StepCommand::Shell(line) => {
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c").arg(line);
            cmd
        }
    };
    cmd.envs(&exec.env).stdin(Stdio::null()).process_group(0);
    if let Some(cwd) = &exec.cwd {
        cmd.current_dir(cwd);
    }
    let stdout = create_log(&exec.stdout_path).await?;
    let stderr = create_log(&exec.stderr_path).await?;
    if exec.tee.is_some() {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        cmd.stdout(
            stdout
                .try_clone()
                .map_err(|e| log_err(&exec.stdout_path, e))?,
        );
        cmd.stderr(
            stderr
                .try_clone()
                .map_err(|e| log_err(&exec.stderr_path, e))?,
        );
    }

    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        program: program_name(&exec.command),
        source,
    })?;
    let pid = child.id().expect("a child not yet waited for has a pid");
    let pgid = Pid::from_raw(pid as i32).expect("a child's pid is positive");
    tracing::debug!(pid, "step process started");

    let mut copiers = Vec::new();
    if let Some(tee) = &exec.tee {
        let out = child.stdout.take().expect("stdout was piped");
        let err = child.stderr.take().expect("stderr was piped");
        copiers.push(tokio::spawn(copy_lines(
            out,
            stdout,
            exec.stdout_path.clone(),
            LogStream::Stdout,
            tee.clone(),
        )));
        copiers.push(tokio::spawn(copy_lines(
            err,
            stderr,
            exec.stderr_path.clone(),
            LogStream::Stderr,
            tee.clone(),
        )));
    }

    let deadline = async {
        match exec.timeout {
            Some(t) => tokio::time::sleep_until((started + t).into()).await,
            None => std::future::pending().await,
        }
    };
    let wait_err = |source| ExecError::Wait { pid, source };
    let (status, timed_out, was_cancelled) = tokio::select! {
        status = child.wait() => (status.map_err(wait_err)?, false, false),
        () = deadline => (terminate(&mut child, pgid, grace).await.map_err(wait_err)?, true, false),
        () = cancelled(&mut cancel) => (terminate(&mut child, pgid, grace).await.map_err(wait_err)?, false, true),
    };
    let duration = started.elapsed();
    // Whatever the leader left running in its group (`cmd &`) must not outlive the step.
    let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
    reap_group(pgid).await;
    for copier in copiers {
        copier.await.expect("log copier panicked")?;
    }

    let exit = match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => unreachable!("a waited-for unix process has a code or a signal"),
    };
    tracing::debug!(
        pid,
        ?exit,
        timed_out,
        cancelled = was_cancelled,
        "step process ended"
    );
    Ok(Outcome {
        exit: Some(exit),
        duration,
        timed_out,
        cancelled: was_cancelled,
    })
}

/// SIGTERM to the group, SIGKILL after `grace` if the leader is still running; returns the
/// leader's status.
async fn terminate(
    child: &mut tokio::process::Child,
    pgid: Pid,
    grace: Duration,
) -> std::io::Result<std::process::ExitStatus> {
    let _ = rustix::process::kill_process_group(pgid, Signal::TERM);
    if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
        return status;
    }
    let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
    child.wait().await
}

/// Waits until no process of group `pgid` exists, reaping those re-parented to us.
async fn reap_group(pgid: Pid) {
    let give_up = Instant::now() + REAP_DEADLINE;
    let mut pause = Duration::from_millis(1);
    loop {
        // Reap every member that has become our child and died (only possible as a
        // subreaper; otherwise this finds none).
        while let Ok(Some(_)) =
            rustix::process::waitpgid(pgid, rustix::process::WaitOptions::NOHANG)
        {}
        if rustix::process::test_kill_process_group(pgid).is_err() {
            return;
        }
        if Instant::now() >= give_up {
            tracing::warn!(
                pgid = pgid.as_raw_nonzero().get(),
                "processes of a killed step are still present"
            );
            return;
        }
        // A SIGKILLed process takes a moment to die and be re-parented; poll, backing off.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

async fn create_log(path: &Path) -> Result<std::fs::File, ExecError> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| log_err(path, e))?;
    Ok(file.into_std().await)
}

fn log_err(path: &Path, source: std::io::Error) -> ExecError {
    ExecError::Log {
        path: path.to_owned(),
        source,
    }
}

fn program_name(command: &StepCommand) -> String {
    match command {
        StepCommand::Argv(argv) => argv.first().cloned().unwrap_or_default(),
        StepCommand::Shell(_) => "sh".to_owned(),
    }
}

/// Copies `from` into `file` line by line, also sending each line to `tee`.
async fn copy_lines(
    from: impl AsyncRead + Unpin,
    file: std::fs::File,
    path: PathBuf,
    stream: LogStream,
    tee: broadcast::Sender<LogLine>,
) -> Result<(), ExecError> {
    let mut reader = BufReader::new(from);
    let mut file = tokio::fs::File::from_std(file);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| log_err(&path, e))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf).await.map_err(|e| log_err(&path, e))?;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        // No receiver is not an error: nobody follows the logs right now.
        let _ = tee.send(LogLine {
            stream,
            line: String::from_utf8_lossy(line).into_owned(),
        });
    }
    file.flush().await.map_err(|e| log_err(&path, e))
}
