//! Shared state of every handler.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use sextant_artifacts::ArtifactStore;
use sextant_artifacts::data_roots::DataRoots;
use sextant_control::monitors::{FlushCapture, MonitorDeps, Monitors};
use sextant_control::pipelines::{self as control, Orchestrator};
use sextant_core::clock::SharedClock;
use sextant_serving::controller::{self as endpoints, Endpoints};
use sextant_store::{MetaStore, StoreError};

use crate::auth::{AuditLog, Auth};
use crate::error::ApiError;
use crate::security::SecurityConfig;

/// What handlers share: the stores and the server's settings.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn MetaStore>,
    pub artifacts: Arc<ArtifactStore>,
    pub security: Arc<SecurityConfig>,
    /// Woken after every request that may have changed state (and so
    /// appended events): event long-polls and webhook delivery wait on it.
    pub changes: Arc<tokio::sync::Notify>,
    /// Woken when a pipeline run is created or cancelled or a task is queued:
    /// the orchestrator waits on it.
    pub pipelines: Arc<tokio::sync::Notify>,
    /// Woken (all waiters) when steps are queued: remote workers' claims wait on it.
    pub queued: Arc<tokio::sync::Notify>,
    /// The server's data directory, under which the orchestrator writes run
    /// outputs and live step logs; `None` when there is none (in-process
    /// tests), and then only uploaded logs can be read.
    pub data_dir: Option<Arc<PathBuf>>,
    /// The orchestrator of this server once started (by
    /// [`crate::controllers::spawn_pipelines`]): remote workers' claims and outcomes go
    /// through it. The orchestrator itself holds no state.
    pub(crate) orchestrator: Arc<OnceLock<Arc<Orchestrator>>>,
    /// The serving endpoints this server hosts.
    pub endpoints: Arc<Endpoints>,
    /// The monitors this server runs (built from the fields above by
    /// [`AppState::new`] and the `with_*` methods).
    pub monitors: Arc<Monitors>,
    /// Where files read on a caller's behalf may lie (anywhere unless set).
    pub data_roots: Arc<DataRoots>,
    /// Where controllers read time (the machine's unless set).
    pub clock: SharedClock,
    /// Authentication: off unless set with [`AppState::with_auth`].
    pub auth: Arc<Auth>,
    /// The audit log's writer, with authentication on.
    pub audit: Option<Arc<AuditLog>>,
    /// Whether the proxied artifact service (`…/mlflow-artifacts/…`) is
    /// served; `sextant server --no-serve-artifacts` turns it off, as
    /// `mlflow server --no-serve-artifacts` does, for runs whose artifact
    /// roots clients reach directly.
    pub serve_artifacts: bool,
}

impl AppState {
    /// The state of a server over these stores.
    pub fn new(
        store: Arc<dyn MetaStore>,
        artifacts: Arc<ArtifactStore>,
        security: SecurityConfig,
    ) -> Self {
        let endpoints = Arc::new(Endpoints::default());
        let changes = Arc::new(tokio::sync::Notify::new());
        let data_roots = Arc::new(DataRoots::anywhere());
        let clock = sextant_core::clock::system();
        let monitors = Arc::new(Monitors::new(monitor_deps(
            &store,
            &artifacts,
            None,
            &data_roots,
            &clock,
            &endpoints,
            &changes,
        )));
        AppState {
            store,
            artifacts,
            security: Arc::new(security),
            changes,
            pipelines: Arc::new(tokio::sync::Notify::new()),
            queued: Arc::new(tokio::sync::Notify::new()),
            data_dir: None,
            orchestrator: Arc::new(OnceLock::new()),
            endpoints,
            monitors,
            data_roots,
            clock,
            auth: Arc::new(Auth::off()),
            audit: None,
            serve_artifacts: true,
        }
    }

    /// The same state authenticating and authorizing as `auth` says.
    /// With authentication on, requests are also audited (see
    /// `crate::auth::audit`), on `auth`'s clock.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.audit = auth.enabled().then(|| {
            Arc::new(AuditLog::new(
                self.store.clone(),
                auth.clock().clone(),
                Some(self.artifacts.clone()),
            ))
        });
        self.auth = Arc::new(auth);
        self
    }

    /// What the authentication layers work with.
    pub(crate) fn authn(&self) -> crate::auth::Authn {
        crate::auth::Authn {
            auth: self.auth.clone(),
            store: self.store.clone(),
        }
    }

    /// The same state with the monitor controller built again from its fields.
    fn rewire_monitors(mut self) -> Self {
        self.monitors = Arc::new(Monitors::new(monitor_deps(
            &self.store,
            &self.artifacts,
            self.data_dir.as_deref(),
            &self.data_roots,
            &self.clock,
            &self.endpoints,
            &self.changes,
        )));
        self
    }

    /// The same state reading time from `clock` (tests drive a manual one):
    /// every controller; before they start.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.endpoints = Arc::new(Endpoints::with_clock(clock.clone()));
        self.clock = clock;
        self.rewire_monitors()
    }

    /// What the pipeline controllers work with, taken from this state.
    pub fn pipeline_deps(&self) -> control::Deps {
        control::Deps {
            store: self.store.clone(),
            artifacts: self.artifacts.clone(),
            pipelines: self.pipelines.clone(),
            queued: self.queued.clone(),
            changes: self.changes.clone(),
            data_dir: self.data_dir.clone(),
            data_roots: self.data_roots.clone(),
            clock: self.clock.clone(),
            authz: self.auth.enabled().then(|| {
                Arc::new(crate::auth::approvals::ServerRegistryAuthz::new(
                    self.auth.clone(),
                )) as Arc<dyn control::RegistryAuthz>
            }),
        }
    }

    /// This server's orchestrator, if it runs one.
    pub(crate) fn orchestrator(&self) -> Option<&Arc<Orchestrator>> {
        self.orchestrator.get()
    }

    /// What the endpoint controller works with.
    pub fn endpoint_deps(&self) -> endpoints::Deps {
        endpoints::Deps {
            store: self.store.clone(),
            artifacts: self.artifacts.clone(),
            data_dir: self.data_dir.clone(),
            data_roots: self.data_roots.clone(),
            changes: self.changes.clone(),
        }
    }

    /// The same state with the server's data directory (see [`AppState::data_dir`]).
    pub fn with_data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(Arc::new(dir));
        self.rewire_monitors()
    }

    /// The same state reading files for callers only under `roots`.
    pub fn with_data_roots(mut self, roots: DataRoots) -> Self {
        self.data_roots = Arc::new(roots);
        self.rewire_monitors()
    }

    /// Runs a store call on the blocking pool, so SQL never blocks the async
    /// runtime. Dropping the returned future (a client that disconnected)
    /// cancels the call's reads: they would otherwise run to the end for
    /// nobody.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn MetaStore) -> Result<T, StoreError> + Send + 'static,
    {
        sextant_store::call(&self.store, f)
            .await
            .map_err(ApiError::from)
    }
}

/// The monitor controller's dependencies out of the state's parts.
fn monitor_deps(
    store: &Arc<dyn MetaStore>,
    artifacts: &Arc<ArtifactStore>,
    data_dir: Option<&PathBuf>,
    data_roots: &Arc<DataRoots>,
    clock: &SharedClock,
    endpoints: &Arc<Endpoints>,
    changes: &Arc<tokio::sync::Notify>,
) -> MonitorDeps {
    MonitorDeps {
        store: store.clone(),
        artifacts: artifacts.clone(),
        data_dir: data_dir.cloned(),
        data_roots: data_roots.clone(),
        clock: clock.clone(),
        capture: Arc::new(FlushEndpoints(endpoints.clone())),
        changes: changes.clone(),
    }
}

/// The endpoints' capture sinks, flushed before a monitor reads a window.
struct FlushEndpoints(Arc<Endpoints>);

impl FlushCapture for FlushEndpoints {
    fn flush(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.0.flush_capture())
    }
}
