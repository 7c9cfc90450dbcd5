//! Where a monitor's baseline and data come from: a directory on this host
//! (confined to the data roots), a `models:/` URI, or the model the watched
//! endpoint serves.

use std::path::{Path, PathBuf};

use sextant_artifacts::data_roots::OutsideRoots;
use sextant_core::endpoints::StoredEndpoint;
use sextant_monitor::engine::BaselineFiles;

use super::config::MonitorSpec;
use super::{MonitorError, Monitors};
use sextant_serving::endpoints::config::{EndpointSpec, Runtime};
use sextant_serving::endpoints::rollout::Deployed;
use sextant_serving::endpoints::{self, EndpointState, resolve};

/// A stored endpoint's definition and state, decoded once.
pub(super) fn parse_endpoint(
    stored: &StoredEndpoint,
) -> Result<(EndpointSpec, EndpointState), MonitorError> {
    endpoints::parse_stored(stored).map_err(|e| MonitorError::Corrupt(e.to_string()))
}

/// Reads `dir/statistics.json` and `dir/constraints.json`.
fn read_baseline(dir: &Path, source: &str) -> Result<BaselineFiles, MonitorError> {
    let statistics = std::fs::read(dir.join("statistics.json")).map_err(|e| {
        MonitorError::Baseline(format!(
            "baseline {source}: cannot read {}: {e} (write one with `sextant monitors baseline` or `uses: builtin/baseline`)",
            dir.join("statistics.json").display()
        ))
    })?;
    let constraints = match std::fs::read(dir.join("constraints.json")) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(MonitorError::Baseline(format!(
                "baseline {source}: constraints.json: {e}"
            )));
        }
    };
    Ok(BaselineFiles {
        source: source.to_string(),
        statistics,
        constraints,
    })
}

impl Monitors {
    /// The monitor's baseline files: `spec.baseline` (a directory holding
    /// `statistics.json` and `constraints.json`, or a `models:/` URI whose model
    /// directory carries `baseline/`), else the `baseline/` of the model that the
    /// endpoint's first variant serves.
    pub(super) async fn load_baseline(
        &self,
        spec: &MonitorSpec,
    ) -> Result<BaselineFiles, MonitorError> {
        let (deployed, source) = match (&spec.baseline, &spec.endpoint) {
            (Some(b), _) if !b.starts_with("models:/") => {
                let dir = self.host_path("monitor baseline", b)?;
                return read_baseline(&dir, b);
            }
            (Some(b), _) => (self.resolve(b.clone(), Runtime::Onnx).await?, b.clone()),
            (None, Some(endpoint)) => {
                let deployed = self.served_model(endpoint).await?;
                let source = deployed.resolved.clone();
                (deployed, source)
            }
            (None, None) => {
                return Err(MonitorError::Baseline("the monitor has no baseline".into()));
            }
        };
        let deps = &self.deps;
        let data_dir = deps.data_dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir = resolve::materialize(&deps.store, &deps.artifacts, &data_dir, &deployed)
            .await
            .map_err(|e| MonitorError::Baseline(e.to_string()))?
            .join("baseline");
        read_baseline(&dir, &source)
    }

    /// Resolves a model URI on the blocking pool (it reads the store).
    async fn resolve(&self, uri: String, runtime: Runtime) -> Result<Deployed, MonitorError> {
        let (store, roots) = (self.deps.store.clone(), self.deps.data_roots.clone());
        tokio::task::spawn_blocking(move || resolve::resolve(store.as_ref(), &uri, runtime, &roots))
            .await
            .map_err(|e| MonitorError::Baseline(e.to_string()))?
            .map_err(|e| MonitorError::Baseline(e.to_string()))
    }

    /// The model the first variant of `endpoint` serves, or, while none is
    /// deployed yet, the one its definition names.
    async fn served_model(&self, endpoint: &str) -> Result<Deployed, MonitorError> {
        let e = endpoint.to_string();
        let stored = self.db(move |s| s.get_endpoint(&e)).await?;
        let (espec, state) = parse_endpoint(&stored)?;
        let Some(first) = espec.variants.first() else {
            return Err(MonitorError::Baseline(format!(
                "endpoint '{endpoint}' has no variant"
            )));
        };
        if let Some(d) = state.deployed.get(&first.name) {
            return Ok(d.clone());
        }
        self.resolve(first.model.clone(), first.runtime)
            .await
            .map_err(|e| {
                MonitorError::Baseline(format!("endpoint '{endpoint}' serves no model yet: {e}"))
            })
    }

    /// A monitor's `data:` or `baseline:` directory on this host, confined to the
    /// server's data roots.
    pub(super) fn host_path(&self, what: &str, text: &str) -> Result<PathBuf, OutsideRoots> {
        let path = Path::new(text.strip_prefix("file://").unwrap_or(text));
        self.deps.data_roots.check(what, path)
    }
}
