//! A `run:` step's process: its environment, starting it with its logs in
//! files, stopping what an earlier attempt left, and its exit as a result.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;
use sextant_pipelines::executor::{
    DEFAULT_GRACE, ExecError, Executor, Exit, RECORD_FILE, StepCommand, StepExec, stop_recorded,
};
use sextant_pipelines::spec::{Step, StepKind};

use super::context::Context;
use super::failure::StepFailure;
use super::plan::StepResult;

/// `NAME-x` as `NAME_X`, for environment variable names.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// The environment of a `run:` step's process; `insecure_tls` as
/// [`super::Settings::tracking_insecure_tls`].
pub(super) fn command_env(
    tracking_uri: &str,
    tracking_token: Option<&str>,
    insecure_tls: bool,
    step_run_id: &str,
    ctx: &Context,
    step: &Step,
    out: &Path,
) -> Result<BTreeMap<String, String>, StepFailure> {
    let mut env = BTreeMap::new();
    env.insert("MLFLOW_TRACKING_URI".into(), tracking_uri.to_string());
    if let Some(token) = tracking_token {
        env.insert("MLFLOW_TRACKING_TOKEN".into(), token.to_string());
    }
    if insecure_tls {
        env.insert("MLFLOW_TRACKING_INSECURE_TLS".into(), "true".into());
    }
    env.insert("MLFLOW_RUN_ID".into(), step_run_id.to_string());
    env.insert("SEXTANT_PIPELINE_RUN_ID".into(), ctx.run_id.clone());
    env.insert("SEXTANT_OUTPUT_DIR".into(), out.display().to_string());
    for o in &step.outputs {
        env.insert(
            format!("SEXTANT_OUTPUT_{}", env_name(&o.value)),
            out.join(&o.value).display().to_string(),
        );
    }
    for (k, v) in &step.inputs {
        env.insert(
            format!("SEXTANT_INPUT_{}", env_name(&k.value)),
            ctx.resolve(&v.value)?,
        );
    }
    for (k, v) in &ctx.params {
        let text = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        env.insert(format!("SEXTANT_PARAM_{}", env_name(k)), text);
    }
    for (k, v) in &step.env {
        env.insert(k.value.clone(), ctx.resolve(&v.value)?);
    }
    Ok(env)
}

/// Starts a `run:` step's command with its stdout and stderr in `logs`.
pub(super) fn start_command(
    executor: &impl Executor,
    logs: &Path,
    env: BTreeMap<String, String>,
    command: StepCommand,
    step: &Step,
) -> Result<sextant_pipelines::executor::ExecHandle, StepFailure> {
    std::fs::create_dir_all(logs)
        .map_err(|e| StepFailure::retryable(format!("cannot create {}: {e}", logs.display())))?;
    Ok(executor.start(StepExec {
        command,
        env,
        cwd: None,
        timeout: step.timeout.as_ref().map(|t| t.value),
        stdout_path: logs.join("stdout.txt"),
        stderr_path: logs.join("stderr.txt"),
        tee: None,
        record: Some(logs.join(RECORD_FILE)),
    }))
}

/// Stops what an earlier attempt of the step left running on this host (a
/// holder killed together with its step's watchdog), before this attempt
/// touches the step's outputs: two attempts never run at once on one host.
pub(super) async fn stop_leftovers(ctx: &Context, step: &Step) {
    if !matches!(step.kind, StepKind::Run { .. }) {
        return;
    }
    let dir = ctx.run_dir.join(".logs").join(&step.name.value);
    for r in stop_recorded(&dir, DEFAULT_GRACE).await {
        tracing::warn!(
            pid = r.pid,
            "stopped an earlier attempt of the step that was still running"
        );
    }
}

/// This host's name, for messages about what it lacks.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Why a `run:` step's process could not be awaited or started.
pub(super) fn exec_failure(step: &Step, e: ExecError) -> StepFailure {
    match e {
        ExecError::Spawn { program, source } if source.kind() == std::io::ErrorKind::NotFound => {
            StepFailure::retryable(format!(
                "step '{}': program '{program}' was not found on the PATH of host '{}', which runs the step",
                step.name.value,
                host_name()
            ))
        }
        other => StepFailure::retryable(other.to_string()),
    }
}

/// A `run:` step's process outcome as the attempt's result; `logs` holds
/// its stdout and stderr.
pub(super) fn command_outcome(
    step: &Step,
    outcome: &sextant_pipelines::executor::Outcome,
    logs: &Path,
) -> Result<StepResult, StepFailure> {
    if outcome.success() {
        return Ok(StepResult::default());
    }
    if outcome.exit == Some(Exit::Code(127)) && !outcome.cancelled && !outcome.timed_out {
        // `sh` exits 127 when it cannot find a command; its own words name it.
        let said = std::fs::read_to_string(logs.join("stderr.txt"))
            .unwrap_or_default()
            .lines()
            .rev()
            .find(|l| l.contains("not found"))
            .map(|l| format!(" ({})", l.trim()))
            .unwrap_or_default();
        return Err(StepFailure::retryable(format!(
            "step '{}' exited with code 127: a command was not found on the PATH of host '{}', which runs the step{said}",
            step.name.value,
            host_name()
        )));
    }
    let why = if outcome.cancelled {
        "cancelled".to_string()
    } else if outcome.timed_out {
        format!("timed out after {:?}", outcome.duration)
    } else {
        match outcome.exit {
            Some(Exit::Code(c)) => format!("exited with code {c}"),
            Some(Exit::Signal(n)) => format!("was killed by signal {n}"),
            None => "did not start".to_string(),
        }
    };
    Err(StepFailure::retryable(format!(
        "step '{}' {why}",
        step.name.value
    )))
}

/// Merges the numbers of the step's `metrics.json` into `result`, if it
/// wrote one.
pub(super) async fn read_metrics_file(
    file: &Path,
    result: &mut StepResult,
) -> Result<(), StepFailure> {
    let Ok(text) = tokio::fs::read_to_string(file).await else {
        return Ok(());
    };
    let parsed: BTreeMap<String, Json> = serde_json::from_str(&text).map_err(|e| {
        StepFailure::retryable(format!(
            "{}: not a JSON object of numbers: {e}",
            file.display()
        ))
    })?;
    for (k, v) in parsed {
        if let Some(f) = v.as_f64() {
            result.metrics.insert(k, f);
        }
    }
    Ok(())
}
