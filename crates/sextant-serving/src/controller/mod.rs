//! The serving control plane: endpoint definitions applied through the
//! native API become gateways ([`crate::Gateway`]) with loaded models, and
//! model changes become rollouts that the controller drives — traffic
//! shifts, alarms, promotion or automatic rollback — persisting every step
//! in the store so a restarted server continues them.
//!
//! One lock serializes every change of an endpoint (API calls and the
//! controller's ticks), so the stored state and the installed gateway never
//! disagree for longer than one install. Models are loaded before anything
//! is stored: a model that does not load is a 400 and changes nothing.
//!
//! Here: [`Endpoints`] and what it loads and installs. `apply.rs` turns a
//! definition into a stored change, `tick.rs` moves rollouts on, `reports.rs`
//! keeps every gateway's counters and the alarms' windows, `plan.rs` gives the
//! gateway variants a state calls for, and [`remote`] follows an endpoint
//! from a separate `sextant gateway`.

mod apply;
mod error;
mod history;
mod plan;
pub mod remote;
mod reports;
mod tick;

pub use error::EndpointError;
pub use history::{
    KEPT as TRAFFIC_SAMPLES_KEPT, SAMPLE_EVERY_MS as TRAFFIC_SAMPLE_EVERY_MS, TrafficPoint,
};
pub use plan::{Plan, Planned, plan};
pub use tick::spawn;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use sextant_artifacts::ArtifactStore;
use sextant_artifacts::data_roots::DataRoots;
use sextant_core::clock::SharedClock;
use sextant_core::endpoints::{EndpointEvent, StoredEndpoint};
use sextant_store::MetaStore;
use tokio::sync::Mutex;

use crate::endpoints::config::{self, EndpointSpec, Runtime};
use crate::endpoints::resolve::{self, ResolveError};
use crate::endpoints::rollout::{self, RolloutStatus};
use crate::endpoints::{EndpointState, canary};
use crate::{
    CaptureConfig, CaptureMode, CaptureSettings, CaptureSink, Gateway, GatewaySettings, Gateways,
    LoadError, Predictor, ProcessPredictor, ProcessSettings, ShadowSpec, VariantSnapshot,
};
use reports::{Baselines, Reports};

/// Traffic changes and past rollouts kept in an endpoint's state.
const HISTORY: usize = 100;

/// An endpoint as the API shows it.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub name: String,
    pub spec: EndpointSpec,
    pub state: EndpointState,
    pub created_time: i64,
    pub updated_time: i64,
    /// The live counters of each variant the gateway serves now.
    pub stats: Vec<VariantSnapshot>,
    /// Until the rollout in progress moves by itself: its bake ends (canary, blue/green)
    /// or its next step (linear).
    pub time_left_ms: Option<i64>,
    /// What the caller should know about the change just applied (a version rolled out
    /// without approval); empty outside `apply`.
    pub warnings: Vec<String>,
}

/// What the controller works with: a plain value, no server state.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn MetaStore>,
    pub artifacts: Arc<ArtifactStore>,
    /// Where registry models are copied to (a temporary directory when `None`).
    pub data_dir: Option<Arc<PathBuf>>,
    /// Where a variant's local model directory may lie.
    pub data_roots: Arc<DataRoots>,
    /// Woken after every stored change (event long-polls wait on it).
    pub changes: Arc<tokio::sync::Notify>,
}

impl Deps {
    /// A store call on the blocking pool.
    async fn db<T, F>(&self, f: F) -> Result<T, EndpointError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn MetaStore) -> Result<T, sextant_store::StoreError> + Send + 'static,
    {
        sextant_store::call(&self.store, f)
            .await
            .map_err(EndpointError::from)
    }
}

/// The endpoints this server hosts.
pub struct Endpoints {
    /// The live gateways, which `/endpoints/{name}/…` reaches.
    pub gateways: Arc<Gateways>,
    /// Per endpoint and rollout id: each variant's counters when the rollout
    /// began (or when this process took it over), so alarms judge only the
    /// rollout's traffic.
    baselines: std::sync::Mutex<Baselines>,
    /// What separate gateways serve, for the alarms.
    reports: std::sync::Mutex<Reports>,
    /// Each endpoint's sampled counters, for its traffic over time.
    history: std::sync::Mutex<history::History>,
    /// Serializes every change of endpoints.
    changing: Mutex<()>,
    /// Loaded models by (resolved model, runtime), shared by variants. Weak: a model lives
    /// as long as a gateway serves it (or a request still runs on it), so replacing a
    /// variant or deleting its endpoint stops a `process` model's children.
    models: Mutex<HashMap<(String, Runtime), Weak<dyn Predictor>>>,
    capture: std::sync::OnceLock<Arc<CaptureSink>>,
    /// Settings of the `process` runtime.
    pub process: ProcessSettings,
    /// Where rollouts, bakes and alarm windows read the time.
    pub clock: SharedClock,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            gateways: Gateways::new(),
            baselines: Default::default(),
            reports: Default::default(),
            history: Default::default(),
            changing: Mutex::new(()),
            models: Mutex::new(HashMap::new()),
            capture: std::sync::OnceLock::new(),
            process: ProcessSettings::default(),
            clock: sextant_core::clock::system(),
        }
    }
}

fn resolve_error(e: ResolveError) -> EndpointError {
    match e {
        ResolveError::Invalid(m) | ResolveError::NotFound(m) => EndpointError::Invalid(m),
        e @ (ResolveError::Store(_)
        | ResolveError::Task(_)
        | ResolveError::NotServed { .. }
        | ResolveError::Artifacts(_)
        | ResolveError::List { .. }
        | ResolveError::Read { .. }
        | ResolveError::Path(_)
        | ResolveError::Create { .. }
        | ResolveError::Write { .. }
        | ResolveError::MoveIntoPlace { .. }) => EndpointError::Internal(e.to_string()),
    }
}

fn event(kind: &str, payload: serde_json::Value) -> EndpointEvent {
    EndpointEvent {
        kind: kind.to_string(),
        payload: payload.to_string(),
    }
}

fn parse_stored(e: &StoredEndpoint) -> Result<(EndpointSpec, EndpointState), EndpointError> {
    crate::endpoints::parse_stored(e).map_err(|err| EndpointError::Internal(err.to_string()))
}

impl Endpoints {
    /// No endpoints yet, reading time from `clock`.
    pub fn with_clock(clock: SharedClock) -> Self {
        Endpoints {
            clock,
            ..Endpoints::default()
        }
    }

    /// The gateway of a hosted endpoint.
    pub fn gateway(&self, name: &str) -> Option<Arc<Gateway>> {
        self.gateways.get(name)
    }

    /// Writes every capture record buffered so far (monitors call it before reading a window).
    pub async fn flush_capture(&self) {
        if let Some(sink) = self.capture.get() {
            sink.flush().await;
        }
    }

    fn capture_sink(&self, deps: &Deps) -> Arc<CaptureSink> {
        self.capture
            .get_or_init(|| CaptureSink::start(deps.artifacts.clone(), CaptureSettings::default()))
            .clone()
    }

    /// A loaded model, loading it (and copying a registry version's files) once.
    async fn load(&self, deps: &Deps, p: &Planned) -> Result<Arc<dyn Predictor>, EndpointError> {
        let d = &p.deployed;
        let key = p.model_key();
        if let Some(p) = self.models.lock().await.get(&key).and_then(Weak::upgrade) {
            return Ok(p);
        }
        let data_dir = deps
            .data_dir
            .as_deref()
            .cloned()
            .unwrap_or_else(|| std::env::temp_dir().join("sextant-serving"));
        let dir = resolve::materialize(&deps.store, &deps.artifacts, &data_dir, d)
            .await
            .map_err(resolve_error)?;
        let predictor: Arc<dyn Predictor> = match d.runtime {
            Runtime::Onnx => {
                let dir2 = dir.clone();
                tokio::task::spawn_blocking(move || crate::load_model(&dir2))
                    .await
                    .map_err(|e| EndpointError::Internal(e.to_string()))?
                    .map_err(|e| {
                        EndpointError::Invalid(format!("model {} does not load: {e}", d.resolved))
                    })?
            }
            Runtime::Process => start_process(&dir, self.process.clone(), p.instances.as_ref())
                .await
                .map_err(|e| {
                    EndpointError::Invalid(format!("model {} does not start: {e}", d.resolved))
                })?,
        };
        let mut models = self.models.lock().await;
        models.retain(|_, m| m.strong_count() > 0);
        models.insert(key, Arc::downgrade(&predictor));
        Ok(predictor)
    }

    /// Installs the traffic split `state` calls for into the endpoint's
    /// gateway (creating it); returns the split by gateway variant.
    async fn install(
        &self,
        deps: &Deps,
        name: &str,
        spec: &EndpointSpec,
        state: &EndpointState,
    ) -> Result<BTreeMap<String, f64>, EndpointError> {
        let planned = plan(spec, state);
        let mut variants = Vec::new();
        for p in planned.variants {
            variants.push(p.install(self.load(deps, &p).await?));
        }
        let shadow = match planned.shadow {
            Some((p, sampling_percent)) => Some(ShadowSpec {
                variant: p.install(self.load(deps, &p).await?),
                sampling_percent,
            }),
            None => None,
        };
        let total: f64 = variants.iter().map(|v| v.weight).sum();
        let split = variants
            .iter()
            .map(|v| (v.name.clone(), (v.weight / total * 1000.0).round() / 10.0))
            .collect();
        let gateway = self.gateways.get(name);
        let capture = capture_config(spec);
        let gateway = match gateway {
            Some(g) if g.capture() == capture => g,
            old => {
                // A new capture setting needs a new gateway; its stats start over.
                if old.is_some() {
                    self.baselines().remove(name);
                }
                let g = Gateway::new(
                    name,
                    GatewaySettings {
                        capture: capture.clone(),
                        ..GatewaySettings::default()
                    },
                    capture.as_ref().map(|_| self.capture_sink(deps)),
                );
                self.gateways.insert(g.clone());
                g
            }
        };
        gateway.set_allowed_origins(spec.cors_origins());
        gateway
            .set_variants(variants, shadow)
            .map_err(|e| EndpointError::Invalid(e.to_string()))?;
        Ok(split)
    }

    /// Loads every stored endpoint at start-up; rollouts go on from their
    /// stored state.
    pub async fn resume(&self, deps: &Deps) {
        let stored = match deps.db(|s| s.list_endpoints()).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot list endpoints");
                return;
            }
        };
        let _guard = self.changing.lock().await;
        for e in stored {
            let result = async {
                let (spec, state) = parse_stored(&e)?;
                self.install(deps, &e.name, &spec, &state).await
            }
            .await;
            match result {
                Ok(split) => tracing::info!(endpoint = %e.name, ?split, "endpoint loaded"),
                Err(err) => {
                    tracing::error!(endpoint = %e.name, error = %err, "endpoint does not load")
                }
            }
        }
    }

    /// Deletes an endpoint and stops serving it.
    pub async fn delete(&self, deps: &Deps, name: &str) -> Result<(), EndpointError> {
        let _guard = self.changing.lock().await;
        let n = name.to_string();
        deps.db(move |s| s.delete_endpoint(&n)).await?;
        // The gateway's variants hold its models: dropping it stops a `process` model's
        // children once the requests still running on them end.
        self.gateways.remove(name);
        self.baselines().remove(name);
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        deps.changes.notify_waiters();
        Ok(())
    }

    /// An endpoint with its live counters.
    ///
    /// A change installs what the gateway serves, then stores the state that
    /// says so: a read in between would show a rollout in progress beside a
    /// gateway that no longer serves its canary (no canary, no counters).
    /// Such a read waits for the change to end and reads again.
    pub async fn view(&self, deps: &Deps, name: &str) -> Result<EndpointView, EndpointError> {
        let read = || {
            let n = name.to_string();
            deps.db(move |s| s.get_endpoint(&n))
        };
        let stored = read().await?;
        let (spec, state) = parse_stored(&stored)?;
        if !self.canary_gone(&stored.name, &state) {
            return Ok(self.view_parsed(&stored, spec, state));
        }
        let _changed = self.changing.lock().await;
        self.view_of(&read().await?)
    }

    /// Whether `state` has a rollout in progress whose canary this server's
    /// gateway of endpoint `name` does not serve.
    fn canary_gone(&self, name: &str, state: &EndpointState) -> bool {
        let Some(r) = state
            .rollout
            .as_ref()
            .filter(|r| r.status == RolloutStatus::InProgress)
        else {
            return false;
        };
        self.gateway(name)
            .is_some_and(|g| !g.installed().contains(&canary(&r.variant)))
    }

    fn view_of(&self, stored: &StoredEndpoint) -> Result<EndpointView, EndpointError> {
        let (spec, state) = parse_stored(stored)?;
        Ok(self.view_parsed(stored, spec, state))
    }

    fn view_parsed(
        &self,
        stored: &StoredEndpoint,
        spec: EndpointSpec,
        mut state: EndpointState,
    ) -> EndpointView {
        // Only the variants served now: a promoted canary's counters are the past
        // rollout's, not a variant's.
        let stats = self
            .gateway(&stored.name)
            .map(|g| {
                let installed = g.installed();
                g.stats()
                    .variants
                    .into_iter()
                    .filter(|v| installed.contains(&v.name))
                    .collect()
            })
            .unwrap_or_default();
        let mut time_left_ms = None;
        if let Some(r) = state
            .rollout
            .as_mut()
            .filter(|r| r.status == RolloutStatus::InProgress)
        {
            let (new, stable) = self.windows(&stored.name, r);
            r.counters = Some(rollout::RolloutCounters { new, stable });
            time_left_ms = rollout::time_left_ms(r, self.clock.now_ms());
        }
        EndpointView {
            name: stored.name.clone(),
            spec,
            state,
            created_time: stored.created_time,
            updated_time: stored.updated_time,
            stats,
            time_left_ms,
            warnings: Vec::new(),
        }
    }

    /// Every endpoint, with its live counters. A list that caught a change
    /// between its two steps (see [`Self::view`]) waits for the change to
    /// end and reads again.
    pub async fn list(&self, deps: &Deps) -> Result<Vec<EndpointView>, EndpointError> {
        let read = async || -> Result<Vec<_>, EndpointError> {
            let stored = deps.db(|s| s.list_endpoints()).await?;
            stored
                .into_iter()
                .map(|e| parse_stored(&e).map(|(spec, state)| (e, spec, state)))
                .collect()
        };
        let mut endpoints = read().await?;
        let _changed = if endpoints
            .iter()
            .any(|(e, _, state)| self.canary_gone(&e.name, state))
        {
            let changed = self.changing.lock().await;
            endpoints = read().await?;
            Some(changed)
        } else {
            None
        };
        Ok(endpoints
            .into_iter()
            .map(|(e, spec, state)| self.view_parsed(&e, spec, state))
            .collect())
    }
}

/// A `process` model: one child, or an autoscaled pool of them.
pub(crate) async fn start_process(
    dir: &std::path::Path,
    settings: ProcessSettings,
    instances: Option<&config::InstancesSpec>,
) -> Result<Arc<dyn Predictor>, LoadError> {
    let Some(i) = instances else {
        return Ok(ProcessPredictor::start(dir, settings).await?);
    };
    let dir = dir.to_path_buf();
    let factory: crate::pool::Factory = Arc::new(move || {
        let (dir, settings) = (dir.clone(), settings.clone());
        Box::pin(async move {
            let p: Arc<dyn Predictor> = ProcessPredictor::start(&dir, settings).await?;
            Ok(p)
        })
    });
    Ok(crate::PooledPredictor::start(i.policy(), factory).await?)
}

/// The data plane's capture setting for a definition.
pub(crate) fn capture_config(spec: &EndpointSpec) -> Option<CaptureConfig> {
    spec.capture.as_ref().map(|c| CaptureConfig {
        sampling_percent: c.sampling_percent,
        mode: match c.mode.as_str() {
            "input" => CaptureMode::Input,
            "output" => CaptureMode::Output,
            _ => CaptureMode::InputAndOutput,
        },
    })
}
