//! `sextant gateway --server URL --endpoint NAME`: one endpoint's data plane
//! in its own process, for scale-out. It reads the endpoint from the server's
//! API every `poll`, plans the same traffic split as the server
//! ([`super::plan`]), loads each model once — a registry version's files
//! downloaded through the server's artifact API into its model directory —
//! and swaps the gateway's variants when the plan changes. It serves the
//! gateway at the root: `/invocations`, `/ping`, `/v2/…`, `/metrics`.
//!
//! After every poll it sends its cumulative counters to the server
//! (`POST /api/v1/endpoints/{name}/gateway-stats`), whose rollout alarms add
//! them to its own; capture records go to the server's artifact store through
//! its artifact API, next to the server's own, so monitors see this traffic too.
//!
//! Every call to the server goes through `sextant-client`, with its typed
//! answers and errors and the credentials it sends; nothing here knows
//! `sextant-server`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Deserialize;
use sextant_artifacts::{NotProxied, SafePath};
use sextant_client::{Client, ClientError};

use super::{Planned, plan};
use crate::capture::{CaptureSettings, CaptureSink, CaptureTarget, TargetError};
use crate::endpoints::config::{EndpointSpec, Runtime};
use crate::endpoints::rollout::{Deployed, Rollout};
use crate::endpoints::{EndpointState, EndpointStatus};
use crate::{
    ConfigError, Gateway, GatewaySettings, LoadError, Predictor, ProcessSettings, ShadowSpec,
};

/// How a separate gateway runs.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// The server that holds the endpoint.
    pub client: Client,
    pub endpoint: String,
    /// Where downloaded models go.
    pub model_dir: PathBuf,
    /// How often the endpoint is read.
    pub poll: Duration,
}

/// Why one poll could not follow the endpoint; the next poll tries again.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The server refused a call, or could not be reached.
    #[error(transparent)]
    Server(#[from] ClientError),
    /// A registry version's files are not where the server's artifact API serves them.
    #[error("{model}/{version} at {uri}: {reason}")]
    NotProxied {
        model: String,
        version: i64,
        uri: String,
        reason: String,
    },
    /// A name from the server (a model's, or a file it listed) would lead
    /// out of the model directory: refused, never written.
    #[error("refusing {what} '{name}': not a plain relative path")]
    UnsafeName { what: &'static str, name: String },
    /// A file the server listed was gone when it was read.
    #[error("{path} is listed but the server does not serve it")]
    Vanished { path: String },
    /// The model directory could not be written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A model did not load (`onnx`) or did not start (`process`).
    #[error("model {model} does not {verb}: {source}")]
    Load {
        model: String,
        verb: &'static str,
        source: LoadError,
    },
    /// Loading a model panicked.
    #[error("loading a model: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The planned variants do not make a gateway.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A closure that tells an IO failure on `path`.
fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FollowError {
    let path = path.to_path_buf();
    move |source| FollowError::Io {
        action,
        path,
        source,
    }
}

/// What the gateway reads of its endpoint: the definition and the models the
/// server deployed, in the controller's own types. The rest of the server's
/// answer (status, history, counters) is not the gateway's business.
#[derive(Deserialize)]
struct Followed {
    spec: EndpointSpec,
    deployed: BTreeMap<String, Deployed>,
    #[serde(default)]
    shadow: Option<Deployed>,
    #[serde(default)]
    rollout: Option<Rollout>,
}

/// Models loaded by (resolved model, runtime), kept while the plan names them.
type Loaded = HashMap<(String, Runtime), Arc<dyn Predictor>>;

/// Keeps `gateway` in line with the server's endpoint until dropped, and reports
/// its counters after every poll.
pub async fn follow(settings: RemoteSettings, gateway: Arc<Gateway>) {
    let mut loaded = Loaded::new();
    let mut installed: Option<Vec<(String, String, u64)>> = None;
    // Unique per process: a restarted gateway's counters start again from zero.
    let id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    loop {
        if let Err(e) = sync(&settings, &gateway, &mut loaded, &mut installed).await {
            tracing::warn!(endpoint = %settings.endpoint, error = %e, "cannot follow the endpoint");
        }
        let variants = gateway.stats().variants;
        if let Err(e) = settings
            .client
            .report_gateway_stats(&settings.endpoint, &id, &variants)
            .await
        {
            tracing::warn!(endpoint = %settings.endpoint, error = %e, "cannot report the gateway's counters");
        }
        tokio::time::sleep(settings.poll).await;
    }
}

async fn sync(
    settings: &RemoteSettings,
    gateway: &Gateway,
    loaded: &mut Loaded,
    installed: &mut Option<Vec<(String, String, u64)>>,
) -> Result<(), FollowError> {
    let followed: Followed = settings.client.get_endpoint_as(&settings.endpoint).await?;
    let spec = followed.spec;
    let state = EndpointState {
        // Only the plan matters here, not the status.
        status: EndpointStatus::InService,
        deployed: followed.deployed,
        shadow: followed.shadow,
        rollout: followed.rollout,
        past_rollouts: Vec::new(),
        traffic: Vec::new(),
        message: None,
    };
    // Capture as the definition says, into the server's store.
    gateway.set_capture(super::capture_config(&spec));
    // CORS for browsers as the definition lists them.
    gateway.set_allowed_origins(spec.cors_origins());
    let planned = plan(&spec, &state);
    // The same plan twice is not installed again (weights to 0.1 %).
    let key: Vec<(String, String, u64)> = planned
        .variants
        .iter()
        .chain(planned.shadow.iter().map(|(p, _)| p))
        .map(|p| {
            (
                p.name.clone(),
                p.deployed.resolved.clone(),
                (p.weight * 1000.0) as u64,
            )
        })
        .collect();
    if installed.as_ref() == Some(&key) {
        return Ok(());
    }
    let mut variants = Vec::new();
    for p in &planned.variants {
        variants.push(p.install(load(settings, loaded, p).await?));
    }
    let shadow = match &planned.shadow {
        Some((p, sampling_percent)) => Some(ShadowSpec {
            variant: p.install(load(settings, loaded, p).await?),
            sampling_percent: *sampling_percent,
        }),
        None => None,
    };
    gateway.set_variants(variants, shadow)?;
    // Models the plan no longer names are released: a `process` model's children stop
    // once the gateway's last request on them ends.
    let wanted: Vec<_> = planned
        .variants
        .iter()
        .chain(planned.shadow.iter().map(|(p, _)| p))
        .map(Planned::model_key)
        .collect();
    loaded.retain(|k, _| wanted.contains(k));
    tracing::info!(endpoint = %settings.endpoint, variants = ?key, "installed the endpoint's traffic split");
    *installed = Some(key);
    Ok(())
}

async fn load(
    settings: &RemoteSettings,
    loaded: &mut Loaded,
    p: &Planned,
) -> Result<Arc<dyn Predictor>, FollowError> {
    let d = &p.deployed;
    let key = p.model_key();
    if let Some(p) = loaded.get(&key) {
        return Ok(p.clone());
    }
    let dir = match (&d.model, d.version) {
        (Some(name), Some(version)) => {
            download(&settings.client, &settings.model_dir, name, version).await?
        }
        _ => PathBuf::from(&d.resolved),
    };
    let failed = |verb| {
        move |source| FollowError::Load {
            model: d.resolved.clone(),
            verb,
            source,
        }
    };
    let predictor: Arc<dyn Predictor> = match d.runtime {
        Runtime::Onnx => tokio::task::spawn_blocking(move || crate::load_model(&dir))
            .await?
            .map_err(failed("load"))?,
        Runtime::Process => {
            super::start_process(&dir, ProcessSettings::default(), p.instances.as_ref())
                .await
                .map_err(failed("start"))?
        }
    };
    loaded.insert(key, predictor.clone());
    Ok(predictor)
}

/// `name` as a path below a directory: only plain components (no `..`,
/// no root, no `.`), so nothing the server says can write outside it.
fn relative(name: &str) -> Option<&Path> {
    let path = Path::new(name);
    let plain = !name.is_empty()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then_some(path)
}

/// [`relative`], or the error naming what was refused.
fn inside<'a>(what: &'static str, name: &'a str) -> Result<&'a Path, Box<FollowError>> {
    relative(name).ok_or_else(|| {
        Box::new(FollowError::UnsafeName {
            what,
            name: name.to_string(),
        })
    })
}

/// A registry version's files, through the server's MLflow APIs, into
/// `<root>/<name>/<version>/`.
async fn download(
    client: &Client,
    root: &Path,
    name: &str,
    version: i64,
) -> Result<PathBuf, FollowError> {
    let dir = root
        .join(inside("model name", name).map_err(|e| *e)?)
        .join(version.to_string());
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    let uri = client.model_version_download_uri(name, version).await?;
    let root_path = sextant_artifacts::proxied_root(&uri)
        .map_err(|e| FollowError::NotProxied {
            model: name.to_string(),
            version,
            uri: uri.clone(),
            reason: match e {
                // The words the server's artifact routes refuse such a path with.
                NotProxied::InvalidPath(_) => "Invalid path".to_string(),
                e @ NotProxied::Elsewhere(_) => e.to_string(),
            },
        })?
        .to_string();
    let staging = dir.with_extension(format!("partial-{}", uuid::Uuid::new_v4().simple()));
    let mut stack = vec![(root_path, staging.clone())];
    while let Some((remote, local)) = stack.pop() {
        std::fs::create_dir_all(&local).map_err(io("creating", &local))?;
        for f in client.list_artifacts(&remote).await?.files {
            let target = local.join(inside("listed file", &f.path).map_err(|e| *e)?);
            let child_remote = format!("{remote}/{}", f.path);
            if f.is_dir {
                stack.push((child_remote, target));
                continue;
            }
            let Some(body) = client.artifact_stream(&child_remote).await? else {
                return Err(FollowError::Vanished { path: child_remote });
            };
            write_stream(body, &target).await?;
        }
    }
    let complete = staging.join(".complete");
    std::fs::write(&complete, "").map_err(io("writing", &complete))?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
    }
    std::fs::rename(&staging, &dir).map_err(io("moving into place", &dir))?;
    Ok(dir)
}

/// A gateway for `endpoint` whose capture records go to the server `client`
/// talks to, through its artifact API, a file at least every `capture_flush`
/// (capture itself is switched on by the endpoint's definition).
pub fn gateway(endpoint: &str, client: Client, capture_flush: Duration) -> Arc<Gateway> {
    let sink = CaptureSink::start(
        Arc::new(ServerCapture(client)),
        CaptureSettings {
            prefix: crate::endpoints::capture_prefix()
                .to_string_lossy()
                .into_owned(),
            // One PUT per file, held in memory until it is sent.
            max_bytes_per_file: 4 << 20,
            flush_interval: capture_flush,
            ..CaptureSettings::default()
        },
    );
    Gateway::new(endpoint, GatewaySettings::default(), Some(sink))
}

/// Capture files stored in a server's artifact store through its artifact API.
struct ServerCapture(Client);

/// Retries of a capture file after the first try…
const CAPTURE_RETRIES: u32 = 10;
/// …within this long, backing off from [`CAPTURE_BACKOFF`] to [`CAPTURE_BACKOFF_CAP`]:
/// a server restarting loses no capture file.
const CAPTURE_RETRY_FOR: Duration = Duration::from_secs(180);
const CAPTURE_BACKOFF: Duration = Duration::from_millis(100);
const CAPTURE_BACKOFF_CAP: Duration = Duration::from_secs(15);

impl CaptureTarget for ServerCapture {
    fn put<'a>(
        &'a self,
        path: &'a SafePath,
        data: Bytes,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            let path = path.to_string();
            let started = tokio::time::Instant::now();
            let mut wait = CAPTURE_BACKOFF;
            let mut retries = 0;
            loop {
                let e = match self.0.put_artifact(&path, data.clone()).await {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                };
                // Only a failure that may pass: no answer, or the server's own fault.
                let passing = e.is_transport() || e.status().is_some_and(|s| s >= 500);
                if !passing
                    || retries == CAPTURE_RETRIES
                    || started.elapsed() + wait > CAPTURE_RETRY_FOR
                {
                    return Err(e.into());
                }
                tracing::debug!(file = %path, error = %e, retry_in = ?wait, "storing a capture file failed; trying again");
                tokio::time::sleep(wait).await;
                retries += 1;
                wait = (wait * 2).min(CAPTURE_BACKOFF_CAP);
            }
        })
    }
}

/// Writes a stream of chunks into the local file `target`.
async fn write_stream(
    mut body: BoxStream<'static, Result<Bytes, ClientError>>,
    target: &Path,
) -> Result<(), FollowError> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(target)
        .await
        .map_err(io("creating", target))?;
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk?)
            .await
            .map_err(io("writing", target))?;
    }
    file.flush().await.map_err(io("writing", target))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::http::{Method, StatusCode, Uri};

    use super::*;

    /// A server that answers each request with the next of `statuses` (then 200),
    /// recording what it was asked.
    async fn server(statuses: Vec<u16>) -> (Client, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(statuses.into_iter()));
        let app = axum::Router::new().fallback({
            let seen = seen.clone();
            move |method: Method, uri: Uri| async move {
                seen.lock().unwrap().push(format!("{method} {uri}"));
                let status = answers.lock().unwrap().next().unwrap_or(200);
                StatusCode::from_u16(status).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (Client::new(&addr.to_string()).unwrap(), seen)
    }

    #[tokio::test]
    async fn a_capture_file_is_put_again_after_a_server_error() {
        let (client, seen) = server(vec![503, 502]).await;
        let path = SafePath::parse("datacapture/churn/blue/a.jsonl").unwrap();
        ServerCapture(client)
            .put(&path, Bytes::from_static(b"{}\n"))
            .await
            .unwrap();
        let put = "PUT /api/2.0/mlflow-artifacts/artifacts/datacapture/churn/blue/a.jsonl";
        assert_eq!(*seen.lock().unwrap(), vec![put; 3]);
    }

    #[tokio::test]
    async fn a_refused_capture_file_is_not_put_again() {
        let (client, seen) = server(vec![403]).await;
        let path = SafePath::parse("datacapture/churn/blue/a.jsonl").unwrap();
        let e = ServerCapture(client)
            .put(&path, Bytes::from_static(b"{}\n"))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("permission denied: PUT "), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn names_from_the_server_stay_inside_the_model_directory() {
        for ok in ["model.onnx", "sub/dir/file.bin", "churn"] {
            assert!(relative(ok).is_some(), "{ok}");
        }
        for bad in ["", "..", "../x", "a/../../x", "/etc/passwd", "./x"] {
            assert!(relative(bad).is_none(), "{bad}");
            let refused = inside("listed file", bad).map_err(|e| *e);
            assert!(
                matches!(refused, Err(FollowError::UnsafeName { .. })),
                "{bad}"
            );
        }
    }
}
