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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::plan;
use crate::capture::{CaptureSettings, CaptureSink};
use crate::endpoints::config::{EndpointSpec, Runtime};
use crate::endpoints::{EndpointState, EndpointStatus};
use crate::{Gateway, GatewaySettings, Predictor, ProcessSettings, ShadowSpec};

/// How a separate gateway runs.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// The server's base URL.
    pub server: String,
    pub endpoint: String,
    /// Where downloaded models go.
    pub model_dir: PathBuf,
    /// How often the endpoint is read.
    pub poll: Duration,
}

/// Keeps `gateway` in line with the server's endpoint until dropped, and reports
/// its counters after every poll.
pub async fn follow(settings: RemoteSettings, gateway: Arc<Gateway>) {
    let http = reqwest::Client::new();
    let base = settings.server.trim_end_matches('/').to_string();
    let mut loaded: HashMap<(String, Runtime), Arc<dyn Predictor>> = HashMap::new();
    let mut installed: Option<Vec<(String, String, u64)>> = None;
    // Unique per process: a restarted gateway's counters start again from zero.
    let id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    loop {
        match sync(
            &http,
            &base,
            &settings,
            &gateway,
            &mut loaded,
            &mut installed,
        )
        .await
        {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(endpoint = %settings.endpoint, error = %e, "cannot follow the endpoint")
            }
        }
        if let Err(e) = report(&http, &base, &settings.endpoint, &id, &gateway).await {
            tracing::warn!(endpoint = %settings.endpoint, error = %e, "cannot report the gateway's counters");
        }
        tokio::time::sleep(settings.poll).await;
    }
}

/// Sends the gateway's cumulative counters to the server.
async fn report(
    http: &reqwest::Client,
    base: &str,
    endpoint: &str,
    id: &str,
    gateway: &Gateway,
) -> Result<(), String> {
    let url = format!("{base}/api/v1/endpoints/{endpoint}/gateway-stats");
    let body = serde_json::json!({"gateway": id, "variants": gateway.stats().variants});
    let resp = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(format!(
            "POST {url}: {status}: {}",
            resp.text().await.unwrap_or_default()
        ));
    }
    Ok(())
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}"))
}

async fn sync(
    http: &reqwest::Client,
    base: &str,
    settings: &RemoteSettings,
    gateway: &Gateway,
    loaded: &mut HashMap<(String, Runtime), Arc<dyn Predictor>>,
    installed: &mut Option<Vec<(String, String, u64)>>,
) -> Result<(), String> {
    let v = get_json(
        http,
        &format!("{base}/api/v1/endpoints/{}", settings.endpoint),
    )
    .await?;
    let spec: EndpointSpec =
        serde_json::from_value(v["spec"].clone()).map_err(|e| format!("endpoint spec: {e}"))?;
    let state = EndpointState {
        // Only the plan matters here, not the status.
        status: serde_json::from_value(v["status"].clone()).unwrap_or(EndpointStatus::InService),
        deployed: serde_json::from_value(v["deployed"].clone()).map_err(|e| e.to_string())?,
        shadow: serde_json::from_value(v["shadow"].clone()).map_err(|e| e.to_string())?,
        rollout: serde_json::from_value(v["rollout"].clone()).map_err(|e| e.to_string())?,
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
        variants.push(p.install(load(http, base, settings, loaded, p).await?));
    }
    let shadow = match &planned.shadow {
        Some((p, sampling_percent)) => Some(ShadowSpec {
            variant: p.install(load(http, base, settings, loaded, p).await?),
            sampling_percent: *sampling_percent,
        }),
        None => None,
    };
    gateway
        .set_variants(variants, shadow)
        .map_err(|e| e.to_string())?;
    // Models the plan no longer names are released: a `process` model's children stop
    // once the gateway's last request on them ends.
    let wanted: Vec<_> = planned
        .variants
        .iter()
        .chain(planned.shadow.iter().map(|(p, _)| p))
        .map(super::Planned::model_key)
        .collect();
    loaded.retain(|k, _| wanted.contains(k));
    tracing::info!(endpoint = %settings.endpoint, variants = ?key, "installed the endpoint's traffic split");
    *installed = Some(key);
    Ok(())
}

async fn load(
    http: &reqwest::Client,
    base: &str,
    settings: &RemoteSettings,
    loaded: &mut HashMap<(String, Runtime), Arc<dyn Predictor>>,
    p: &super::Planned,
) -> Result<Arc<dyn Predictor>, String> {
    let d = &p.deployed;
    let key = p.model_key();
    if let Some(p) = loaded.get(&key) {
        return Ok(p.clone());
    }
    let dir = match (&d.model, d.version) {
        (Some(name), Some(version)) => {
            download(http, base, &settings.model_dir, name, version).await?
        }
        _ => PathBuf::from(&d.resolved),
    };
    let predictor: Arc<dyn Predictor> = match d.runtime {
        Runtime::Onnx => tokio::task::spawn_blocking(move || crate::load_model(&dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("model {} does not load: {e}", d.resolved))?,
        Runtime::Process => {
            super::start_process(&dir, ProcessSettings::default(), p.instances.as_ref())
                .await
                .map_err(|e| format!("model {} does not start: {e}", d.resolved))?
        }
    };
    loaded.insert(key, predictor.clone());
    Ok(predictor)
}

/// A registry version's files, through the server's MLflow APIs, into
/// `<root>/<name>/<version>/`.
async fn download(
    http: &reqwest::Client,
    base: &str,
    root: &Path,
    name: &str,
    version: i64,
) -> Result<PathBuf, String> {
    let dir = root.join(name).join(version.to_string());
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    let mut url = reqwest::Url::parse(&format!(
        "{base}/api/2.0/mlflow/model-versions/get-download-uri"
    ))
    .map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("name", name)
        .append_pair("version", &version.to_string());
    let uri = get_json(http, url.as_str()).await?["artifact_uri"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no download URI for {name}/{version}"))?;
    let root_path = sextant_artifacts::proxied_root(&uri)
        .map_err(|e| {
            let why = match e {
                // The words the server's artifact routes refuse such a path with.
                sextant_artifacts::NotProxied::InvalidPath(_) => "Invalid path".to_string(),
                e @ sextant_artifacts::NotProxied::Elsewhere(_) => e.to_string(),
            };
            format!("{name}/{version} at {uri}: {why}")
        })?
        .to_string();
    let staging = dir.with_extension(format!("partial-{}", uuid::Uuid::new_v4().simple()));
    let mut stack = vec![(root_path, staging.clone())];
    while let Some((remote, local)) = stack.pop() {
        std::fs::create_dir_all(&local)
            .map_err(|e| format!("creating {}: {e}", local.display()))?;
        let mut url = reqwest::Url::parse(&format!("{base}/api/2.0/mlflow-artifacts/artifacts"))
            .map_err(|e| e.to_string())?;
        url.query_pairs_mut().append_pair("path", &remote);
        let listing = get_json(http, url.as_str()).await?;
        for f in listing["files"].as_array().into_iter().flatten() {
            let Some(child) = f["path"].as_str() else {
                continue;
            };
            let target = local.join(child);
            let child_remote = format!("{remote}/{child}");
            if f["is_dir"].as_bool() == Some(true) {
                stack.push((child_remote, target));
                continue;
            }
            let mut url =
                reqwest::Url::parse(&format!("{base}/api/2.0/mlflow-artifacts/artifacts/"))
                    .map_err(|e| e.to_string())?;
            url.path_segments_mut()
                .map_err(|_| "bad server URL".to_string())?
                .pop_if_empty()
                .extend(child_remote.split('/'));
            let resp = http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("GET {url}: {}", resp.status()));
            }
            write_stream(resp.bytes_stream().boxed(), &target).await?;
        }
    }
    std::fs::write(staging.join(".complete"), "").map_err(|e| e.to_string())?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::rename(&staging, &dir)
        .map_err(|e| format!("moving {} into place: {e}", dir.display()))?;
    Ok(dir)
}

/// A gateway for `endpoint` whose capture records go to the server at `server`
/// through its artifact API, a file at least every `capture_flush` (capture itself is
/// switched on by the endpoint's definition).
pub fn gateway(
    endpoint: &str,
    server: &str,
    capture_flush: Duration,
) -> Result<Arc<Gateway>, String> {
    let url = format!(
        "{}/api/2.0/mlflow-artifacts/artifacts",
        server.trim_end_matches('/')
    );
    let store = sextant_artifacts::ArtifactStore::http(&url).map_err(|e| e.to_string())?;
    let sink = CaptureSink::start(
        Arc::new(store),
        CaptureSettings {
            prefix: crate::endpoints::capture_prefix()
                .to_string_lossy()
                .into_owned(),
            // One PUT per file: the artifact API takes no multipart from here.
            max_bytes_per_file: 4 << 20,
            flush_interval: capture_flush,
            ..CaptureSettings::default()
        },
    );
    Ok(Gateway::new(
        endpoint,
        GatewaySettings::default(),
        Some(sink),
    ))
}

/// Writes a stream of chunks into the local file `target`.
async fn write_stream<S, E>(mut stream: S, target: &Path) -> Result<(), String>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(target)
        .await
        .map_err(|e| format!("creating {}: {e}", target.display()))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("writing {}: {e}", target.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("writing {}: {e}", target.display()))
}
