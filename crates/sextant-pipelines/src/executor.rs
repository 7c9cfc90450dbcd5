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
    /// File that names the running process (host, boot, pid, start time) until its group
    /// is gone, so that a restarted server or worker can stop an attempt that outlived
    /// its holder ([`stop_recorded`]).
    pub record: Option<PathBuf>,
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

    // The step's group must not outlive this process: the watchdog kills it when the
    // pipe's write end, which only this process holds, closes without a word. It starts
    // first, and the step's process names itself to it before it runs anything, so there
    // is no moment when a step runs unguarded (this process may be killed at any point).
    let watchdog = Watchdog::start(grace)
        .inspect_err(|e| tracing::warn!(error = %e, "cannot start the step's watchdog; the step may outlive this process"))
        .ok();
    if let Some(w) = &watchdog {
        w.announce_child(&mut cmd);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        program: program_name(&exec.command),
        source,
    })?;
    let pid = child.id().expect("a child not yet waited for has a pid");
    let pgid = Pid::from_raw(pid as i32).expect("a child's pid is positive");
    tracing::debug!(pid, "step process started");
    if let Some(path) = &exec.record
        && let Err(e) = write_record(path, pid)
    {
        tracing::warn!(error = %e, path = %path.display(), "cannot record the step's process");
    }

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
    if let Some(w) = watchdog {
        w.release().await;
    }
    if let Some(path) = &exec.record {
        let _ = std::fs::remove_file(path);
    }
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

/// What the watchdog runs (`sh -c`, with the grace period in whole seconds as `$1`): it
/// reads from its stdin, the read end of a pipe whose only lasting write end is in the
/// executor's process. The first line is the step's process group, written by the step's
/// own process before it runs anything; end of file before it means no step started. The
/// second line means the step ended and was reaped; end of file before it means the
/// executor's process died, and the watchdog kills the group, SIGTERM then SIGKILL after
/// the grace period. Terminal signals are ignored: a Ctrl-C meant for the server must not
/// take the watchdog first.
const WATCHDOG: &str = r#"trap '' INT HUP
read -r pgid || exit 0
case "$pgid" in ''|*[!0-9]*) exit 0 ;; esac
read -r _ && exit 0
kill -s TERM -- "-$pgid" 2>/dev/null || exit 0
n=0
while kill -s 0 -- "-$pgid" 2>/dev/null; do
  if [ "$n" -ge "$1" ]; then kill -s KILL -- "-$pgid" 2>/dev/null; exit 0; fi
  sleep 1
  n=$((n + 1))
done"#;

/// The name the watchdog runs under (its `$0`), as `ps` shows it.
pub const WATCHDOG_NAME: &str = "sextant-watchdog";

/// A small process that kills a step's process group once the process that started the
/// step is gone, however it died (`kill -9` included). `PR_SET_PDEATHSIG` cannot do this:
/// it fires when the spawning *thread* exits (tokio's blocking threads come and go) and
/// reaches only the shell, not what the shell started.
struct Watchdog {
    child: tokio::process::Child,
    alive: std::io::PipeWriter,
}

impl Watchdog {
    /// Starts a watchdog that guards nothing yet: [`Watchdog::announce_child`] tells it
    /// which group to guard.
    fn start(grace: Duration) -> std::io::Result<Watchdog> {
        // Both ends are close-on-exec: no step inherits the write end and keeps it open.
        let (read, alive) = std::io::pipe()?;
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(WATCHDOG_NAME)
            .arg(grace.as_secs_f64().ceil().to_string())
            .stdin(Stdio::from(read))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Watchdog { child, alive })
    }

    /// Makes the process `cmd` spawns (the leader of its own process group) write its pid
    /// to this watchdog before it executes the step's program. The write end is
    /// close-on-exec, so the step's program does not keep it.
    fn announce_child(&self, cmd: &mut tokio::process::Command) {
        use std::os::fd::AsRawFd;
        let fd = self.alive.as_raw_fd();
        // SAFETY: the hook runs in the forked child before exec, where only
        // async-signal-safe calls are allowed: it formats into a stack buffer and makes
        // two system calls (getpid, write), allocating nothing and taking no lock.
        unsafe {
            cmd.pre_exec(move || {
                let (line, len) = pid_line(rustix::process::getpid().as_raw_nonzero().get());
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                // One write of a few bytes to a pipe is atomic.
                rustix::io::write(fd, &line[..len])?;
                Ok(())
            });
        }
    }

    /// The step's group is gone: lets the watchdog exit without killing anything.
    async fn release(mut self) {
        use std::io::Write;
        // An error means the watchdog is gone already; there is nothing to release.
        let _ = self.alive.write_all(b"\n");
        drop(self.alive);
        let _ = self.child.wait().await;
    }
}

/// `pid` in decimal followed by a newline, in a stack buffer (no allocation: this runs
/// between fork and exec).
fn pid_line(pid: i32) -> ([u8; 12], usize) {
    let mut digits = [0u8; 12];
    let mut n = pid.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    let mut line = [0u8; 12];
    line[..len].copy_from_slice(&digits[i..]);
    line[len] = b'\n';
    (line, len + 1)
}

/// Who ran a step's process: enough to find it again after a restart, and to tell it from
/// a later process that reuses its pid.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessRecord {
    /// The host name.
    pub host: String,
    /// The kernel's boot id: pids of another boot mean nothing.
    pub boot_id: String,
    /// The step's leader, whose pid is also its process group id.
    pub pid: u32,
    /// The leader's start time in clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub start_time: u64,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The process group and start time of `pid`, from `/proc`.
fn proc_stat(pid: u32) -> Option<(u32, u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let state = fields.first()?.chars().next()?;
    Some((
        fields.get(2)?.parse().ok()?,
        fields.get(19)?.parse().ok()?,
        state,
    ))
}

/// This host's identity and `pid`'s, when `/proc` tells them.
fn record_of(pid: u32) -> Option<ProcessRecord> {
    let (_, start_time, _) = proc_stat(pid)?;
    Some(ProcessRecord {
        host: read_trimmed("/proc/sys/kernel/hostname"),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        pid,
        start_time,
    })
}

fn write_record(path: &Path, pid: u32) -> std::io::Result<()> {
    let Some(record) = record_of(pid) else {
        return Ok(());
    };
    let json = serde_json::to_vec(&record).expect("a record serializes");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

/// Whether the process group a record names may still hold processes of that step: its
/// leader still runs (same start time), or the leader is gone but the group is not (a
/// pid that leads a live group is never handed out again, so the group is the step's).
fn still_running(r: &ProcessRecord) -> bool {
    let Some(me) = record_of(std::process::id()) else {
        return false;
    };
    // Never our own group (`kill(0, …)`) nor init's, whatever a damaged file says.
    if r.host != me.host || r.boot_id != me.boot_id || r.pid <= 1 || r.pid == me.pid {
        return false;
    }
    match proc_stat(r.pid) {
        Some((_, start, _)) if start != r.start_time => false,
        Some((_, _, state)) if state != 'Z' => true,
        _ => group_has_live_member(r.pid),
    }
}

/// Whether a process of group `pgid` other than a zombie exists (a zombie's group holds
/// until its parent reaps it, which a PID 1 that does not reap never does).
fn group_has_live_member(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(proc_stat)
            .is_some_and(|(group, _, state)| group == pgid && state != 'Z')
    })
}

/// Stops every step process recorded under `dir` (any depth) that still runs on this
/// host — the attempts of a holder that died with its watchdog — SIGTERM, then SIGKILL
/// after `grace`, and waits until each group is gone. Returns the records it stopped.
pub async fn stop_recorded(dir: &Path, grace: Duration) -> Vec<ProcessRecord> {
    let mut stopped = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut found = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == RECORD_FILE) {
                found.push(path);
            }
        }
    }
    for path in found {
        let record = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<ProcessRecord>(&b).ok());
        if let Some(r) = record.filter(still_running) {
            let Some(pgid) = Pid::from_raw(r.pid as i32) else {
                continue;
            };
            tracing::warn!(pid = r.pid, record = %path.display(), "stopping a step process left by an earlier holder");
            for (signal, wait) in [(Signal::TERM, grace), (Signal::KILL, REAP_DEADLINE)] {
                let _ = rustix::process::kill_process_group(pgid, signal);
                let give_up = Instant::now() + wait;
                while group_has_live_member(r.pid) && Instant::now() < give_up {
                    reap_group_once(pgid);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if !group_has_live_member(r.pid) {
                    break;
                }
            }
            reap_group_once(pgid);
            stopped.push(r);
        }
        let _ = std::fs::remove_file(&path);
    }
    stopped
}

/// The name of the file [`StepExec::record`] conventionally points to.
pub const RECORD_FILE: &str = "process.json";

fn reap_group_once(pgid: Pid) {
    while let Ok(Some(_)) = rustix::process::waitpgid(pgid, rustix::process::WaitOptions::NOHANG) {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_lines_are_decimal_with_a_newline() {
        for (pid, text) in [(1, "1\n"), (42, "42\n"), (4_194_304, "4194304\n")] {
            let (line, len) = pid_line(pid);
            assert_eq!(&line[..len], text.as_bytes());
        }
    }

    /// The executor's process may die right after it spawned a step, before it did
    /// anything else: the step named itself to the watchdog, which stops its group.
    #[tokio::test]
    async fn a_step_is_guarded_from_before_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let watchdog = Watchdog::start(Duration::from_secs(1)).unwrap();
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "sleep 1000 & echo $! > sleeper; wait"])
            .current_dir(dir.path())
            .process_group(0);
        watchdog.announce_child(&mut cmd);
        let mut step = cmd.spawn().unwrap();
        // The executor "dies": its end of the pipe closes without a word.
        let Watchdog {
            child: mut dog,
            alive,
        } = watchdog;
        drop(alive);

        let status = step.wait().await.unwrap();
        assert_eq!(status.signal(), Some(Signal::TERM.as_raw()), "{status:?}");
        assert!(dog.wait().await.unwrap().success());
        // The background `sleep`, if the shell got as far as starting it, went with its
        // group (a zombie left to a PID 1 that may never reap it does not run).
        if let Ok(sleeper) = std::fs::read_to_string(dir.path().join("sleeper")) {
            let pid: u32 = sleeper.trim().parse().unwrap();
            let state = proc_stat(pid).map(|(_, _, state)| state);
            assert!(matches!(state, None | Some('Z')), "{pid} is {state:?}");
        }
    }

    /// A watchdog whose executor dies before any step started kills nothing.
    #[tokio::test]
    async fn a_watchdog_with_no_step_exits_quietly() {
        let Watchdog {
            child: mut dog,
            alive,
        } = Watchdog::start(Duration::from_secs(1)).unwrap();
        drop(alive);
        assert!(dog.wait().await.unwrap().success());
    }
}
