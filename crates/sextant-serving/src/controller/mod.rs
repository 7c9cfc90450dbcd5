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

pub mod remote;

use crate::endpoints::{
    EndpointState, EndpointStatus, TICK, TrafficChange, apply, canary, config, resolve, rollout,
};

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::json;
use sextant_core::endpoints::{EndpointEvent, StoredEndpoint};
use tokio::sync::Mutex;

use crate::endpoints::apply::{Applied, ApplyError, ResolvedModels};
use crate::endpoints::config::{EndpointSpec, Runtime};
use crate::endpoints::resolve::ResolveError;
use crate::endpoints::rollout::{Decision, Deployed, Rollout, RolloutStatus, Window};
use crate::{
    CaptureConfig, CaptureMode, CaptureSettings, CaptureSink, Gateway, GatewaySettings, Gateways,
    LoadError, Predictor, ProcessPredictor, ProcessSettings, ShadowSpec, VariantSnapshot,
};
use sextant_artifacts::ArtifactStore;
use sextant_artifacts::data_roots::DataRoots;
use sextant_core::clock::SharedClock;
use sextant_store::MetaStore;

/// Traffic changes and past rollouts kept in an endpoint's state.
const HISTORY: usize = 100;

/// Why the controller refused or failed a change of an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A definition, model or request that cannot be served.
    #[error("{0}")]
    Invalid(String),
    /// A change the endpoint's state does not allow now (no rollout in progress).
    #[error("{0}")]
    Conflict(String),
    /// The definition cannot be applied over the endpoint as it is.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A domain error: a malformed endpoint name, an endpoint that does not exist.
    #[error(transparent)]
    Domain(#[from] sextant_core::Error),
    /// The metadata store failed or refused.
    #[error(transparent)]
    Store(#[from] sextant_store::CallError),
    /// Sextant failed; the message is for the log, not for clients.
    #[error("{0}")]
    Internal(String),
}

impl EndpointError {
    /// The wire name of the error code this error is answered with.
    pub fn error_code(&self) -> &'static str {
        use sextant_store::{CallError, StoreError};
        match self {
            EndpointError::Invalid(_) => "INVALID_PARAMETER_VALUE",
            EndpointError::Conflict(_) => "RESOURCE_CONFLICT",
            EndpointError::Apply(e) => e.error_code(),
            EndpointError::Domain(e) => domain_code(e),
            EndpointError::Store(CallError::Store(e)) => match e {
                StoreError::Domain(e) => domain_code(e),
                StoreError::Busy(_) | StoreError::Cancelled => "TEMPORARILY_UNAVAILABLE",
                StoreError::Timeout { .. } => "INVALID_PARAMETER_VALUE",
                StoreError::Sqlite(_)
                | StoreError::Postgres(_)
                | StoreError::Config(_)
                | StoreError::Migration(_)
                | StoreError::Corrupt(_) => "INTERNAL_ERROR",
            },
            EndpointError::Store(CallError::Task(_)) | EndpointError::Internal(_) => {
                "INTERNAL_ERROR"
            }
        }
    }
}

/// The wire name of a domain error's code.
fn domain_code(e: &sextant_core::Error) -> &'static str {
    use sextant_core::Error as E;
    match e {
        E::InvalidParameter(_) => "INVALID_PARAMETER_VALUE",
        E::NotFound(_) => "RESOURCE_DOES_NOT_EXIST",
        E::AlreadyExists(_) => "RESOURCE_ALREADY_EXISTS",
        E::InvalidState(_) => "INVALID_STATE",
    }
}

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

/// Per endpoint, per rollout id, each variant's counters at the start of the
/// rollout's window, by (gateway, variant): [`LOCAL`] for this server's own
/// gateway, a separate gateway's id for what it reported.
type Baselines = HashMap<String, HashMap<String, BTreeMap<(String, String), VariantSnapshot>>>;

/// The source name of this server's own gateway in [`Baselines`].
const LOCAL: &str = "";

/// A separate gateway's report is forgotten when it is older than this (the
/// gateway stopped); its counters then leave the rollout's window.
const REPORT_TTL: Duration = Duration::from_secs(300);

/// The latest counters each separate gateway (`sextant gateway`) reported, by
/// endpoint and gateway id.
type Reports = HashMap<String, HashMap<String, (std::time::Instant, Vec<VariantSnapshot>)>>;

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
        ResolveError::Storage(m) => EndpointError::Internal(m),
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

    fn baselines(&self) -> std::sync::MutexGuard<'_, Baselines> {
        self.baselines.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Creates or updates an endpoint from its definition. A changed model
    /// of a variant starts a rollout by the definition's policy.
    pub async fn apply(
        &self,
        deps: &Deps,
        name: &str,
        spec: EndpointSpec,
    ) -> Result<(bool, EndpointView), EndpointError> {
        sextant_core::endpoints::validate_endpoint_name(name)?;
        spec.check().map_err(EndpointError::Invalid)?;
        if let Some(n) = &spec.name
            && n != name
        {
            return Err(EndpointError::Invalid(format!(
                "the definition names endpoint '{n}' but was applied to '{name}'"
            )));
        }
        let guard = self.changing.lock().await;
        let n = name.to_string();
        let existing = deps
            .db(move |s| match s.get_endpoint(&n) {
                Ok(e) => Ok(Some(e)),
                Err(sextant_store::StoreError::Domain(sextant_core::Error::NotFound(_))) => {
                    Ok(None)
                }
                Err(e) => Err(e),
            })
            .await?;
        let resolved = self.resolve_all(deps, &spec).await?;
        let now = self.clock.now_ms();
        let existing = match &existing {
            Some(e) => Some(parse_stored(e)?.1),
            None => None,
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let Applied {
            created,
            mut state,
            event: kind,
            fresh,
        } = apply::plan_apply(name, existing, &resolved.models, &spec, now, id)?;
        let warnings = self.approval_warnings(deps, &fresh).await;
        let split = self.install(deps, name, &spec, &state).await?;
        self.take_baseline(name, &state);
        let reason = match &state.rollout {
            Some(r) if r.status == RolloutStatus::InProgress && r.started_ms == now => format!(
                "{:?} rollout of {} into variant {} started",
                r.policy.strategy, r.to.resolved, r.variant
            ),
            _ if created => "endpoint created".into(),
            _ => "endpoint updated".into(),
        };
        push_traffic(&mut state, now, split, reason);
        let stored = self
            .store(
                deps,
                name,
                Some(&spec),
                &state,
                event(kind, json!({"name": name})),
            )
            .await?;
        drop(guard);
        // An all-at-once rollout completes on the spot.
        if state
            .rollout
            .as_ref()
            .is_some_and(|r| r.status == RolloutStatus::InProgress)
        {
            self.tick_one(deps, name).await;
        }
        let mut view = self
            .view(deps, name)
            .await
            .unwrap_or_else(|_| EndpointView {
                name: name.to_string(),
                spec,
                state,
                created_time: stored.created_time,
                updated_time: stored.updated_time,
                stats: Vec::new(),
                time_left_ms: None,
                warnings: Vec::new(),
            });
        view.warnings = warnings;
        Ok((created, view))
    }

    /// A warning for each registry version among `fresh` that is not approved: it is
    /// served all the same (approval gates `follow`, not a person's explicit change).
    async fn approval_warnings(&self, deps: &Deps, fresh: &[Deployed]) -> Vec<String> {
        let mut warnings = Vec::new();
        for d in fresh {
            let (Some(model), Some(version)) = (d.model.clone(), d.version) else {
                continue;
            };
            let Ok(v) = deps.db(move |s| s.get_model_version(&model, version)).await else {
                continue;
            };
            let status = v.approval.status;
            if status != sextant_core::registry::ApprovalStatus::Approved {
                tracing::warn!(model = %d.resolved, approval = %status, "rolling out a version that is not approved");
                warnings.push(format!(
                    "{} is not approved (its approval is {status}); it is served anyway",
                    d.resolved
                ));
            }
        }
        warnings
    }

    /// Resolves every model the definition names (validating them).
    async fn resolve_all(
        &self,
        deps: &Deps,
        spec: &EndpointSpec,
    ) -> Result<Resolved, EndpointError> {
        let mut variants = BTreeMap::new();
        let mut loaded = Vec::new();
        for v in &spec.variants {
            let (uri, rt, roots) = (v.model.clone(), v.runtime, deps.data_roots.clone());
            let d = deps
                .db(move |s| Ok(resolve::resolve(s, &uri, rt, &roots)))
                .await?
                .map_err(resolve_error)?;
            // Loading now makes a broken model a 400 before anything changes.
            loaded.push(self.load(deps, &Planned::of(v, &d)).await?);
            variants.insert(v.name.clone(), d);
        }
        let shadow = match &spec.shadow {
            Some(s) => {
                let (uri, rt, roots) = (s.model.clone(), s.runtime, deps.data_roots.clone());
                let d = deps
                    .db(move |s| Ok(resolve::resolve(s, &uri, rt, &roots)))
                    .await?
                    .map_err(resolve_error)?;
                loaded.push(
                    self.load(
                        deps,
                        &Planned {
                            name: s.name.clone(),
                            deployed: d.clone(),
                            weight: 0.0,
                            max_concurrency: 64,
                            instances: None,
                        },
                    )
                    .await?,
                );
                Some(d)
            }
            None => None,
        };
        Ok(Resolved {
            models: ResolvedModels { variants, shadow },
            _loaded: loaded,
        })
    }

    async fn store(
        &self,
        deps: &Deps,
        name: &str,
        spec: Option<&EndpointSpec>,
        state: &EndpointState,
        ev: EndpointEvent,
    ) -> Result<StoredEndpoint, EndpointError> {
        let name = name.to_string();
        let state = serde_json::to_string(state).expect("state serializes");
        let spec = spec.map(|s| serde_json::to_string(s).expect("spec serializes"));
        let stored = deps
            .db(move |s| match spec {
                Some(spec) => s.put_endpoint(&name, &spec, &state, Some(&ev)),
                None => s.set_endpoint_state(&name, &state, Some(&ev)),
            })
            .await?;
        deps.changes.notify_waiters();
        Ok(stored)
    }

    /// Keeps what a separate gateway serving `endpoint` reports: its cumulative counters
    /// per variant. Reports older than [`REPORT_TTL`] are dropped.
    pub fn report(&self, endpoint: &str, gateway: &str, variants: Vec<VariantSnapshot>) {
        let now = self.clock.instant();
        let mut all = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        for of in all.values_mut() {
            of.retain(|_, (at, _)| now.duration_since(*at) < REPORT_TTL);
        }
        all.entry(endpoint.to_string())
            .or_default()
            .insert(gateway.to_string(), (now, variants));
    }

    /// Every source's counters for `name`: this server's gateway, then each separate one.
    fn sources(&self, name: &str) -> Vec<(String, Vec<VariantSnapshot>)> {
        let mut out = Vec::new();
        if let Some(g) = self.gateways.get(name) {
            out.push((LOCAL.to_string(), g.stats().variants));
        }
        let all = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(of) = all.get(name) {
            let now = self.clock.instant();
            out.extend(
                of.iter()
                    .filter(|(_, (at, _))| now.duration_since(*at) < REPORT_TTL)
                    .map(|(id, (_, v))| (id.clone(), v.clone())),
            );
        }
        out
    }

    /// Records each source's variant counters as the start of the rollout's window.
    fn take_baseline(&self, name: &str, state: &EndpointState) {
        let Some(r) = &state.rollout else { return };
        if self
            .baselines()
            .get(name)
            .is_some_and(|of| of.contains_key(&r.id))
        {
            return;
        }
        let base = self
            .sources(name)
            .into_iter()
            .flat_map(|(source, variants)| {
                variants
                    .into_iter()
                    .map(move |v| ((source.clone(), v.name.clone()), v))
            })
            .collect();
        self.baselines()
            .entry(name.to_string())
            .or_default()
            .entry(r.id.clone())
            .or_insert(base);
    }

    /// What the stable and the new model did since the rollout began, on this server
    /// and on every separate gateway that reports. A counter without a baseline counts
    /// from zero: its variant or gateway appeared after the rollout began.
    fn windows(&self, name: &str, r: &Rollout) -> (Window, Window) {
        self.take_baseline_for(name, r);
        let sources = self.sources(name);
        let all = self.baselines();
        let base = all.get(name).and_then(|b| b.get(&r.id));
        let window = |variant: &str| {
            let mut total: Option<VariantSnapshot> = None;
            for (source, variants) in &sources {
                let Some(now) = variants.iter().find(|v| v.name == variant) else {
                    continue;
                };
                let key = (source.clone(), variant.to_string());
                let w = match base.and_then(|b| b.get(&key)) {
                    Some(b) => now.since(b),
                    None => now.clone(),
                };
                total = Some(match total {
                    Some(t) => t.plus(&w),
                    None => w,
                });
            }
            let Some(w) = total else {
                return Window::default();
            };
            Window {
                requests: w.requests,
                errors: w.errors,
                rejected: w.rejected,
                p99_ms: w.latency.quantile(0.99).map(|s| s * 1000.0),
            }
        };
        (window(&canary(&r.variant)), window(&r.variant))
    }

    fn take_baseline_for(&self, name: &str, r: &Rollout) {
        let state = EndpointState {
            status: EndpointStatus::InService,
            deployed: BTreeMap::new(),
            shadow: None,
            rollout: Some(r.clone()),
            past_rollouts: Vec::new(),
            traffic: Vec::new(),
            message: None,
        };
        self.take_baseline(name, &state);
    }

    /// Evaluates every rollout in progress.
    pub async fn tick(&self, deps: &Deps) {
        let names = self.gateways.names();
        for name in names {
            self.tick_one(deps, &name).await;
        }
    }

    async fn tick_one(&self, deps: &Deps, name: &str) {
        if let Err(e) = self.advance(deps, name, None).await {
            tracing::warn!(endpoint = %name, error = %e, "cannot advance the endpoint's rollout");
        }
    }

    /// Moves a rollout on: by its policy and alarms, or as `manual` says
    /// (`Some(true)` promote, `Some(false)` roll back).
    async fn advance(
        &self,
        deps: &Deps,
        name: &str,
        manual: Option<bool>,
    ) -> Result<Option<String>, EndpointError> {
        let _guard = if manual.is_some() {
            Some(self.changing.lock().await)
        } else {
            match self.changing.try_lock() {
                Ok(g) => Some(g),
                // An API change is in progress; the next tick looks again.
                Err(_) => return Ok(None),
            }
        };
        let n = name.to_string();
        let stored = deps.db(move |s| s.get_endpoint(&n)).await?;
        let (spec, mut state) = parse_stored(&stored)?;
        let Some(mut r) = state
            .rollout
            .clone()
            .filter(|r| r.status == RolloutStatus::InProgress)
        else {
            return match manual {
                Some(_) => Err(EndpointError::Conflict(format!(
                    "endpoint '{name}' has no rollout in progress"
                ))),
                None => Ok(None),
            };
        };
        let now = self.clock.now_ms();
        let (new, stable) = self.windows(name, &r);
        let decision = match manual {
            Some(true) => Decision::Promote,
            Some(false) => Decision::RollBack("rolled back by hand".into()),
            None => rollout::decide(&r, now, &new, &stable),
        };
        let (kind, reason) = match decision {
            Decision::Hold => return Ok(None),
            Decision::Shift(p) => {
                r.traffic_percent = p;
                r.step_started_ms = now;
                ("endpoint.traffic_shifted", format!("new model at {p}%"))
            }
            Decision::Promote => {
                r.traffic_percent = 100.0;
                r.status = RolloutStatus::Succeeded;
                r.ended_ms = Some(now);
                state.deployed.insert(r.variant.clone(), r.to.clone());
                let why = if manual.is_some() {
                    "promoted by hand"
                } else {
                    "promoted"
                };
                r.reason = Some(why.to_string());
                (
                    "endpoint.rollout_succeeded",
                    format!("{} {why}", r.to.resolved),
                )
            }
            Decision::RollBack(why) => {
                r.traffic_percent = 0.0;
                r.status = if manual.is_some() {
                    RolloutStatus::Aborted
                } else {
                    RolloutStatus::RolledBack
                };
                r.ended_ms = Some(now);
                r.reason = Some(why.clone());
                ("endpoint.rolled_back", format!("rolled back: {why}"))
            }
        };
        let ended = r.status != RolloutStatus::InProgress;
        if ended {
            // The window's counters stay with the rollout; the gateway's canary counters
            // are not shown once it is gone.
            r.counters = Some(rollout::RolloutCounters { new, stable });
            state.rollout = None;
            state.status = EndpointStatus::InService;
            state.past_rollouts.push(r.clone());
            let extra = state.past_rollouts.len().saturating_sub(HISTORY);
            state.past_rollouts.drain(..extra);
        } else {
            state.rollout = Some(r.clone());
        }
        let split = self.install(deps, name, &spec, &state).await?;
        push_traffic(&mut state, now, split, reason.clone());
        tracing::info!(endpoint = %name, %reason, "rollout moved");
        let payload = json!({
            "name": name,
            "rollout": r.id,
            "variant": r.variant,
            "from": r.from.resolved,
            "to": r.to.resolved,
            "traffic_percent": r.traffic_percent,
            "reason": reason,
        });
        self.store(deps, name, None, &state, event(kind, payload))
            .await?;
        if ended && let Some(b) = self.baselines().get_mut(name) {
            b.remove(&r.id);
        }
        Ok(Some(reason))
    }

    /// Promotes the rollout in progress now.
    pub async fn promote(&self, deps: &Deps, name: &str) -> Result<EndpointView, EndpointError> {
        self.advance(deps, name, Some(true)).await?;
        self.view(deps, name).await
    }

    /// Rolls the rollout in progress back now.
    pub async fn rollback(&self, deps: &Deps, name: &str) -> Result<EndpointView, EndpointError> {
        self.advance(deps, name, Some(false)).await?;
        self.view(deps, name).await
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
    pub async fn view(&self, deps: &Deps, name: &str) -> Result<EndpointView, EndpointError> {
        let n = name.to_string();
        let stored = deps.db(move |s| s.get_endpoint(&n)).await?;
        self.view_of(&stored)
    }

    fn view_of(&self, stored: &StoredEndpoint) -> Result<EndpointView, EndpointError> {
        let (spec, mut state) = parse_stored(stored)?;
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
        Ok(EndpointView {
            name: stored.name.clone(),
            spec,
            state,
            created_time: stored.created_time,
            updated_time: stored.updated_time,
            stats,
            time_left_ms,
            warnings: Vec::new(),
        })
    }

    /// Every endpoint.
    pub async fn list(&self, deps: &Deps) -> Result<Vec<EndpointView>, EndpointError> {
        let stored = deps.db(|s| s.list_endpoints()).await?;
        stored.iter().map(|e| self.view_of(e)).collect()
    }

    /// Reacts to a registry event: endpoints that follow the model deploy
    /// the version it names.
    async fn follow(&self, deps: &Deps, e: &sextant_core::registry::Event) {
        let approved = e.kind == "model_version.approved";
        if !(approved || e.kind == "model_version.alias_set") {
            return;
        }
        let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
        let (Some(model), Some(version)) = (
            payload["name"].as_str().map(str::to_string),
            payload["version"].as_i64(),
        ) else {
            return;
        };
        let Ok(all) = self.list(deps).await else {
            return;
        };
        for ep in all {
            let Some(f) = &ep.spec.follow else { continue };
            let wanted = f.model == model
                && match &f.alias {
                    Some(alias) => !approved && payload["alias"].as_str() == Some(alias.as_str()),
                    None => approved,
                };
            let first = &ep.spec.variants[0];
            let current = ep.state.deployed.get(&first.name);
            if !wanted
                || current.and_then(|d| d.version) == Some(version)
                    && current.and_then(|d| d.model.as_deref()) == Some(model.as_str())
            {
                continue;
            }
            let mut spec = ep.spec.clone();
            if f.alias.is_none() {
                spec.variants[0].model = format!("models:/{model}/{version}");
            }
            tracing::info!(endpoint = %ep.name, %model, version, "deploying a followed model version");
            if let Err(err) = self.apply(deps, &ep.name, spec).await {
                tracing::warn!(endpoint = %ep.name, error = %err, "cannot deploy the followed version");
            }
        }
    }
}

/// One gateway variant the state calls for, before its model is loaded.
pub struct Planned {
    /// The gateway variant: the definition's name, or `<name>-canary`.
    pub name: String,
    pub deployed: Deployed,
    pub weight: f64,
    pub max_concurrency: usize,
    /// Autoscaled instances of a `process` model.
    pub instances: Option<config::InstancesSpec>,
}

impl Planned {
    /// Variant `v` serving `deployed` with all its traffic.
    fn of(v: &config::VariantSpec, deployed: &Deployed) -> Planned {
        Planned {
            name: v.name.clone(),
            deployed: deployed.clone(),
            weight: v.weight,
            max_concurrency: v.max_concurrency,
            instances: v.instances.clone(),
        }
    }

    /// The key a loaded model is shared by: the same model with another instance
    /// policy is another pool.
    pub fn model_key(&self) -> (String, Runtime) {
        let resolved = match &self.instances {
            None => self.deployed.resolved.clone(),
            Some(i) => format!(
                "{} [instances {}..{} at {} in flight, in after {:?}]",
                self.deployed.resolved, i.min, i.max, i.target_in_flight, i.scale_in_after
            ),
        };
        (resolved, self.deployed.runtime)
    }

    /// The data plane's variant over the loaded model.
    pub fn install(&self, predictor: Arc<dyn Predictor>) -> crate::VariantSpec {
        crate::VariantSpec {
            name: self.name.clone(),
            predictor,
            weight: self.weight,
            max_concurrency: self.max_concurrency,
            model_version: self.deployed.version.map(|n| n.to_string()),
        }
    }
}

/// The gateway variants (and shadow with its sampling) a state calls for:
/// each variant's stable model, split with its canary while a rollout runs.
pub struct Plan {
    pub variants: Vec<Planned>,
    pub shadow: Option<(Planned, f64)>,
}

pub fn plan(spec: &EndpointSpec, state: &EndpointState) -> Plan {
    let mut variants = Vec::new();
    for v in &spec.variants {
        let Some(stable) = state.deployed.get(&v.name) else {
            continue;
        };
        let rolling = state
            .rollout
            .as_ref()
            .filter(|r| r.status == RolloutStatus::InProgress && r.variant == v.name);
        let new_share = rolling.map_or(0.0, |r| r.traffic_percent / 100.0);
        if new_share < 1.0 {
            variants.push(Planned {
                name: v.name.clone(),
                deployed: stable.clone(),
                weight: v.weight * (1.0 - new_share),
                max_concurrency: v.max_concurrency,
                instances: v.instances.clone(),
            });
        }
        if let Some(r) = rolling {
            variants.push(Planned {
                name: canary(&v.name),
                deployed: r.to.clone(),
                weight: v.weight * new_share,
                max_concurrency: v.max_concurrency,
                instances: v.instances.clone(),
            });
        }
    }
    let shadow = match (&spec.shadow, &state.shadow) {
        (Some(s), Some(d)) => Some((
            Planned {
                name: s.name.clone(),
                deployed: d.clone(),
                weight: 0.0,
                max_concurrency: 64,
                instances: None,
            },
            s.sampling_percent,
        )),
        _ => None,
    };
    Plan { variants, shadow }
}

struct Resolved {
    models: ResolvedModels,
    /// The models, loaded: held until they are installed, so they are not started twice.
    _loaded: Vec<Arc<dyn Predictor>>,
}

fn push_traffic(
    state: &mut EndpointState,
    time: i64,
    split: BTreeMap<String, f64>,
    reason: String,
) {
    state.traffic.push(TrafficChange {
        time,
        split,
        reason,
    });
    let extra = state.traffic.len().saturating_sub(HISTORY);
    state.traffic.drain(..extra);
}

/// Starts the controller: loads stored endpoints, then evaluates rollouts
/// every [`TICK`] and follows registry events.
pub fn spawn(eps: Arc<Endpoints>, deps: Deps) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        eps.resume(&deps).await;
        let mut cursor = deps.db(|s| s.last_event_id()).await.unwrap_or_default();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            eps.tick(&deps).await;
            let after = cursor;
            let kinds = vec![
                "model_version.approved".to_string(),
                "model_version.alias_set".to_string(),
            ];
            match deps.db(move |s| s.events_after(after, &kinds, 100)).await {
                Ok(events) => {
                    for e in events {
                        cursor = cursor.max(e.id);
                        eps.follow(&deps, &e).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read events"),
            }
        }
    })
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
