//! The `process` runtime: a child process speaking the MLflow scoring protocol (by default
//! `mlflow models serve --env-manager local`, for any pyfunc model) behind the gateway.
//!
//! A supervisor task health-checks the child (`GET /ping`) and restarts it when it exits
//! or stops answering; while it restarts, predictions answer 503 (`Unavailable`). MLflow
//! bodies are forwarded unchanged; OIP requests are re-encoded as `{"inputs": …}`.
//!
//! The child runs in a process group of its own, and the whole group is killed when the
//! predictor is dropped (its variant replaced or its endpoint deleted) or the child is
//! restarted: `mlflow models serve` runs uvicorn as a child of its own, which killing the
//! leader alone would leave running and answering. Its output is forwarded to the log:
//! access-log lines at DEBUG (`/ping` at TRACE), the rest at INFO.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::error::{InputError, LoadError, PredictError};
use super::model::{BoxFuture, MlModel, ModelInfo, Predictor, TensorMeta};
use super::protocol::{JsonTensor, ModelRequest, Payload, Prediction};
use super::signature::{ColType, Schema};

/// How the child is started and watched.
#[derive(Debug, Clone)]
pub struct ProcessSettings {
    /// The command; `{model}` and `{port}` are replaced by the model directory and a free
    /// loopback port.
    pub command: Vec<String>,
    /// How long a (re)started child has to answer `/ping`.
    pub startup_timeout: Duration,
    /// Time between health checks.
    pub health_interval: Duration,
    /// Failed health checks in a row after which the child is restarted.
    pub unhealthy_after: u32,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        ProcessSettings {
            command: [
                "mlflow",
                "models",
                "serve",
                "-m",
                "{model}",
                "-p",
                "{port}",
                "-h",
                "127.0.0.1",
                "--env-manager",
                "local",
            ]
            .map(String::from)
            .to_vec(),
            startup_timeout: Duration::from_secs(120),
            health_interval: Duration::from_secs(2),
            unhealthy_after: 3,
        }
    }
}

/// State shared by the predictor and its supervisor.
#[derive(Debug)]
struct Shared {
    ready: AtomicBool,
    base: RwLock<String>,
    pid: AtomicU32,
    restarts: AtomicU64,
}

/// A model served by a child process.
#[derive(Debug)]
pub struct ProcessPredictor {
    info: ModelInfo,
    shared: Arc<Shared>,
    client: reqwest::Client,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Drop for ProcessPredictor {
    fn drop(&mut self) {
        // Dropping the supervisor's future drops its `Group`, which kills the child's
        // whole process group, and ends the health checks.
        self.supervisor.abort();
    }
}

/// A started child and its process group, every process of which is killed on drop.
#[derive(Debug)]
struct Group {
    child: tokio::process::Child,
    pgid: Option<rustix::process::Pid>,
}

impl Group {
    fn pid(&self) -> u32 {
        self.pgid.map_or(0, |p| p.as_raw_nonzero().get() as u32)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        // The leader is reaped by tokio's orphan queue (`kill_on_drop`); the others were
        // re-parented to init when the leader died.
    }
}

impl ProcessPredictor {
    /// Starts the child for the model directory `dir` and waits until it is healthy.
    pub async fn start(
        dir: &Path,
        settings: ProcessSettings,
    ) -> Result<Arc<ProcessPredictor>, LoadError> {
        let started = Instant::now();
        let mlmodel = {
            let dir = dir.to_owned();
            tokio::task::spawn_blocking(move || MlModel::read(&dir))
                .await
                .map_err(|e| LoadError::Process(e.to_string()))??
        };
        if settings.command.is_empty() {
            return Err(LoadError::Process("the command is empty".into()));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| LoadError::Process(format!("building the HTTP client: {e}")))?;
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let (child, base) = spawn(&dir, &settings, &client)
            .await
            .map_err(LoadError::Process)?;
        let shared = Arc::new(Shared {
            ready: AtomicBool::new(true),
            base: RwLock::new(base),
            pid: AtomicU32::new(child.pid()),
            restarts: AtomicU64::new(0),
        });
        let supervisor = tokio::spawn(supervise(
            child,
            dir,
            settings,
            client.clone(),
            shared.clone(),
        ));
        let info = ModelInfo {
            runtime: "process",
            platform: "mlflow_pyfunc".into(),
            inputs: schema_meta(&mlmodel.signature.inputs, "input"),
            outputs: schema_meta(&mlmodel.signature.outputs, "output"),
            signature: mlmodel.signature,
            load_seconds: started.elapsed().as_secs_f64(),
            model_uuid: mlmodel.model_uuid,
        };
        Ok(Arc::new(ProcessPredictor {
            info,
            shared,
            client,
            supervisor,
        }))
    }

    /// The child's process id (0 while none runs).
    pub fn pid(&self) -> u32 {
        self.shared.pid.load(Ordering::SeqCst)
    }

    /// How many times the child was restarted.
    pub fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::SeqCst)
    }
}

impl Predictor for ProcessPredictor {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn ready(&self) -> bool {
        self.shared.ready.load(Ordering::SeqCst)
    }

    fn predict(
        self: Arc<Self>,
        request: ModelRequest,
    ) -> BoxFuture<Result<Prediction, PredictError>> {
        Box::pin(async move {
            if !self.ready() {
                return Err(PredictError::Unavailable(
                    "the model process is restarting; retry later".into(),
                ));
            }
            let base = self
                .shared
                .base
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let (content_type, body) = match request.raw {
                Some(raw) => (raw.content_type, raw.body.to_vec()),
                None => (
                    "application/json".to_owned(),
                    mlflow_body(request.payload, request.params, &self.info.signature.inputs)
                        .to_string()
                        .into_bytes(),
                ),
            };
            let response = self
                .client
                .post(format!("{base}/invocations"))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    PredictError::Unavailable(format!("the model process did not answer: {e}"))
                })?;
            let status = response.status();
            let text = response.text().await.map_err(|e| {
                PredictError::Unavailable(format!("reading the model process's answer: {e}"))
            })?;
            let doc: Option<Value> = serde_json::from_str(&text).ok();
            let message = || {
                doc.as_ref()
                    .and_then(|d| d.get("message"))
                    .and_then(Value::as_str)
                    .map_or_else(|| text.trim().to_owned(), str::to_owned)
            };
            match status.as_u16() {
                200..=299 => match doc {
                    Some(Value::Object(mut map)) if map.contains_key("predictions") => Ok(
                        Prediction::Json(map.remove("predictions").unwrap_or(Value::Null)),
                    ),
                    Some(other) => Ok(Prediction::Json(other)),
                    None => Err(PredictError::Model(format!(
                        "the model process answered {status} with a body that is not JSON"
                    ))),
                },
                415 => Err(InputError::UnsupportedMediaType(message()).into()),
                400..=499 => Err(InputError::Invalid(message()).into()),
                _ => Err(PredictError::Model(message())),
            }
        })
    }
}

/// Watches the child and restarts it when it exits or fails `unhealthy_after` checks.
async fn supervise(
    mut child: Group,
    dir: PathBuf,
    settings: ProcessSettings,
    client: reqwest::Client,
    shared: Arc<Shared>,
) {
    let mut failures = 0;
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::time::sleep(settings.health_interval).await;
        let exited = match child.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        };
        let healthy = exited.is_none() && {
            let base = shared
                .base
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            ping(&client, &base).await
        };
        if healthy {
            failures = 0;
            continue;
        }
        failures += 1;
        if exited.is_none() && failures < settings.unhealthy_after {
            continue;
        }
        tracing::warn!(model = %dir.display(), exited = ?exited, "restarting the model process");
        shared.ready.store(false, Ordering::SeqCst);
        shared.pid.store(0, Ordering::SeqCst);
        // Kill the old group first, stragglers included: they may hold resources the new
        // child needs.
        kill_group(&child);
        loop {
            match spawn(&dir, &settings, &client).await {
                Ok((new_child, base)) => {
                    child = new_child;
                    *shared.base.write().unwrap_or_else(|e| e.into_inner()) = base;
                    shared.pid.store(child.pid(), Ordering::SeqCst);
                    shared.restarts.fetch_add(1, Ordering::SeqCst);
                    shared.ready.store(true, Ordering::SeqCst);
                    failures = 0;
                    backoff = Duration::from_millis(200);
                    break;
                }
                Err(error) => {
                    tracing::warn!(model = %dir.display(), %error, "the model process did not start");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Kills every process of the group now (the group itself is dropped later).
fn kill_group(group: &Group) {
    if let Some(pgid) = group.pgid {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// Starts the command on a free port, in a process group of its own, and waits for
/// `/ping`. On any failure the group is killed.
async fn spawn(
    dir: &Path,
    settings: &ProcessSettings,
    client: &reqwest::Client,
) -> Result<(Group, String), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    let model = dir.to_string_lossy();
    let args: Vec<String> = settings
        .command
        .iter()
        .map(|a| {
            a.replace("{model}", &model)
                .replace("{port}", &port.to_string())
        })
        .collect();
    // The child's output goes to the log, never to our stdout (which is for data).
    let mut child = tokio::process::Command::new(&args[0])
        .args(&args[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("running {:?}: {e}", args[0]))?;
    let model_dir = dir.display().to_string();
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_output(out, model_dir.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_output(err, model_dir));
    }
    let pgid = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let mut child = Group { child, pgid };
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + settings.startup_timeout;
    loop {
        if let Ok(Some(status)) = child.child.try_wait() {
            return Err(format!(
                "{:?} exited with {status} before answering /ping",
                args[0]
            ));
        }
        if ping(client, &base).await {
            return Ok((child, base));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{:?} did not answer /ping within {:?}",
                args[0], settings.startup_timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Forwards a child's output to the log line by line until the pipe closes (every process
/// of the group exited). Bytes that are not UTF-8 are replaced, never a reason to stop
/// reading: a full pipe would block the child.
async fn forward_output(stream: impl tokio::io::AsyncRead + Unpin, model: String) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        match level_of(line) {
            tracing::Level::TRACE => tracing::trace!(model = %model, "{line}"),
            tracing::Level::DEBUG => tracing::debug!(model = %model, "{line}"),
            tracing::Level::WARN => tracing::warn!(model = %model, "{line}"),
            _ => tracing::info!(model = %model, "{line}"),
        }
    }
}

/// The level a child's output line is logged at: an access-log line (uvicorn's or
/// gunicorn's `"GET /ping HTTP/1.1" 200`) at DEBUG, the health checks' own at TRACE (one
/// every `health_interval`), uvicorn's `WARNING:`/`ERROR:` lines at WARN, the rest at INFO.
fn level_of(line: &str) -> tracing::Level {
    const METHODS: [&str; 7] = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"];
    let request = line.match_indices('"').find_map(|(i, _)| {
        let rest = &line[i + 1..];
        let (method, target) = rest.split_once(' ')?;
        let (path, tail) = target.split_once(' ')?;
        (METHODS.contains(&method) && tail.starts_with("HTTP/")).then_some(path)
    });
    match request {
        Some("/ping" | "/health") => tracing::Level::TRACE,
        Some(_) => tracing::Level::DEBUG,
        None if line.starts_with("ERROR") || line.starts_with("WARNING") => tracing::Level::WARN,
        None => tracing::Level::INFO,
    }
}

async fn ping(client: &reqwest::Client, base: &str) -> bool {
    client
        .get(format!("{base}/ping"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// A decoded request as an MLflow JSON body again (for OIP requests).
/// One tensor for a model whose signature has a single unnamed tensor (or none) goes
/// bare, since MLflow refuses a dict for such a model.
fn mlflow_body(
    payload: Payload,
    params: Option<serde_json::Map<String, Value>>,
    inputs: &Schema,
) -> Value {
    let unnamed = match inputs {
        Schema::None => true,
        Schema::Tensors(specs) => specs.len() == 1 && specs[0].name.is_none(),
        Schema::Columns(_) => false,
    };
    let payload = match payload {
        Payload::Named(mut named) if unnamed && named.len() == 1 => {
            Payload::Tensor(named.remove(0).1)
        }
        other => other,
    };
    let mut body = match payload {
        Payload::Frame(f) => {
            let mut split = json!({"data": f.rows});
            if let Some(columns) = f.columns {
                split["columns"] = json!(columns);
            }
            json!({ "dataframe_split": split })
        }
        Payload::Tensor(t) => json!({ "inputs": nested(t) }),
        Payload::Named(named) => {
            let inputs: serde_json::Map<String, Value> =
                named.into_iter().map(|(n, t)| (n, nested(t))).collect();
            json!({ "inputs": inputs })
        }
    };
    if let Some(params) = params {
        body["params"] = Value::Object(params);
    }
    body
}

/// A flat tensor as nested lists.
fn nested(t: JsonTensor) -> Value {
    fn build(shape: &[usize], data: &mut std::vec::IntoIter<Value>) -> Value {
        match shape.split_first() {
            None => data.next().unwrap_or(Value::Null),
            Some((&n, rest)) => Value::Array((0..n).map(|_| build(rest, data)).collect()),
        }
    }
    build(&t.shape, &mut t.data.into_iter())
}

/// OIP metadata from a signature.
fn schema_meta(schema: &Schema, prefix: &str) -> Vec<TensorMeta> {
    match schema {
        Schema::None => Vec::new(),
        Schema::Columns(cols) => cols
            .iter()
            .enumerate()
            .map(|(i, c)| TensorMeta {
                name: c.name.clone().unwrap_or_else(|| format!("{prefix}-{i}")),
                datatype: match c.ty {
                    ColType::Boolean => "BOOL",
                    ColType::Integer => "INT32",
                    ColType::Long => "INT64",
                    ColType::Float => "FP32",
                    ColType::Double => "FP64",
                    ColType::String => "BYTES",
                }
                .into(),
                shape: vec![-1],
            })
            .collect(),
        Schema::Tensors(specs) => specs
            .iter()
            .enumerate()
            .map(|(i, s)| TensorMeta {
                name: s.name.clone().unwrap_or_else(|| format!("{prefix}-{i}")),
                datatype: match s.dtype.as_str() {
                    "float32" => "FP32",
                    "float64" => "FP64",
                    "int32" => "INT32",
                    "int64" => "INT64",
                    "bool" => "BOOL",
                    _ => "BYTES",
                }
                .into(),
                shape: s.shape.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Frame;

    #[test]
    fn access_log_lines_are_demoted_below_info() {
        use tracing::Level;
        for (line, level) in [
            (
                r#"INFO:     127.0.0.1:50412 - "GET /ping HTTP/1.1" 200 OK"#,
                Level::TRACE,
            ),
            (
                r#"127.0.0.1 - - [06/Dec/2026:07:00:00 +0000] "GET /health HTTP/1.0" 200 1"#,
                Level::TRACE,
            ),
            (
                r#"INFO:     127.0.0.1:50414 - "POST /invocations HTTP/1.1" 200 OK"#,
                Level::DEBUG,
            ),
            (
                "INFO:     Uvicorn running on http://127.0.0.1:5001 (Press CTRL+C to quit)",
                Level::INFO,
            ),
            (r#"loaded "model" from /tmp/m"#, Level::INFO),
            ("ERROR:    Exception in ASGI application", Level::WARN),
            ("WARNING:  the model has no signature", Level::WARN),
        ] {
            assert_eq!(level_of(line), level, "{line}");
        }
    }

    #[test]
    fn oip_requests_become_mlflow_bodies() {
        let t = JsonTensor {
            shape: vec![2, 2],
            data: vec![json!(1), json!(2), json!(3), json!(4)],
        };
        let named = Payload::Named(vec![("x".into(), t)]);
        let body = mlflow_body(named.clone(), None, &Schema::Columns(vec![]));
        assert_eq!(body, json!({"inputs": {"x": [[1, 2], [3, 4]]}}));
        let body = mlflow_body(named, None, &Schema::None);
        assert_eq!(body, json!({"inputs": [[1, 2], [3, 4]]}));
        let frame = Frame {
            columns: Some(vec!["a".into()]),
            rows: vec![vec![json!(1)]],
            text_cells: false,
        };
        let mut params = serde_json::Map::new();
        params.insert("k".into(), json!(1));
        let body = mlflow_body(Payload::Frame(frame), Some(params), &Schema::None);
        assert_eq!(
            body,
            json!({"dataframe_split": {"columns": ["a"], "data": [[1]]}, "params": {"k": 1}})
        );
    }
}
