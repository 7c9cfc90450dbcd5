//! The route-table types every route of Sextant is declared with (the server's
//! control plane and this crate's data plane): what each route touches, the
//! capability a caller needs there and what body it takes, and the helpers
//! that build an axum router from a table, generic over its state. The server
//! assembles the one table of every group and puts its request guard in front
//! of each state-changing route (`sextant_server::routes`).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};

/// What a route acts on; authentication will resolve the instance (from the
/// path, the query or the body) and check the caller's capability on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The server itself: probes, capability flags, the OpenAPI document.
    Server,
    Experiment,
    /// Checked on the run's experiment, as MLflow does.
    Run,
    LoggedModel,
    RegisteredModel,
    ModelVersion,
    /// Files in the artifact store, addressed by path.
    Artifact,
    Webhook,
    /// The events feed.
    Event,
    Pipeline,
    PipelineRun,
    /// An endpoint's definition and rollout (control plane).
    Endpoint,
    /// An endpoint's models (data plane: inference, health, metadata).
    Inference,
    Monitor,
    /// The queue of pipeline tasks that remote workers claim.
    Task,
    /// Users, roles, grants and API tokens (the auth API; its handlers
    /// apply MLflow's self-service and admin rules).
    User,
}

/// What a caller must be allowed to do on the route's resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read it. The only capability of a route that changes nothing.
    Read,
    /// Create a new one (MLflow lets any user create experiments and models).
    Create,
    /// Change it: log to a run, update fields, tags, upload files, start runs.
    Edit,
    /// Delete it, or decide about it: approvals, aliases, promotions.
    Manage,
    /// Call its model (the data plane; applications, not people).
    Invoke,
    /// Act as a remote worker or gateway of this server.
    Work,
}

/// The request body a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// None (a `GET`).
    None,
    /// JSON, declared as `Content-Type: application/json`.
    Json,
    /// JSON or YAML (`application/yaml`): definitions a user writes by hand.
    JsonOrYaml,
    /// Whatever types the handler itself accepts (inference: JSON or CSV).
    Any,
    /// A file's bytes of any type, streamed to the artifact store without a
    /// size limit.
    Stream,
}

/// Whose conventions a route's refusals follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// MLflow's routes: its status codes and messages.
    Mlflow,
    /// `/api/v1`: JSON `{"error_code", "message"}`.
    Native,
    /// `/endpoints/{name}/…`: the data plane, called by applications
    /// across origins, so the request guard does not apply.
    Serving,
}

/// One route of a table, its path relative to where its group is mounted.
pub struct Route<S: 'static> {
    pub method: Method,
    pub path: &'static str,
    pub resource: Resource,
    pub capability: Capability,
    pub body: Body,
    /// It changes state but appends no event and changes nothing a waiter
    /// on the server's change notifier watches (logging to a run): the
    /// notifier is rung after it only if an event was appended after all.
    pub eventless: bool,
    pub(crate) handler: fn(MethodFilter) -> MethodRouter<S>,
}

impl<S> Route<S> {
    /// A read: `GET`, no body, `Read`.
    pub const fn get(
        path: &'static str,
        resource: Resource,
        handler: fn(MethodFilter) -> MethodRouter<S>,
    ) -> Self {
        Route {
            method: Method::GET,
            path,
            resource,
            capability: Capability::Read,
            body: Body::None,
            eventless: false,
            handler,
        }
    }

    /// A route with a JSON body.
    pub const fn json(
        method: Method,
        path: &'static str,
        resource: Resource,
        capability: Capability,
        handler: fn(MethodFilter) -> MethodRouter<S>,
    ) -> Self {
        Route {
            method,
            path,
            resource,
            capability,
            body: Body::Json,
            eventless: false,
            handler,
        }
    }

    /// The same route taking another kind of body.
    pub const fn with_body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// The same route, declared [`Route::eventless`].
    pub const fn eventless(mut self) -> Self {
        self.eventless = true;
        self
    }

    /// Whether calling it changes anything: every capability but reading
    /// and inference, which the data plane serves.
    pub fn changes_state(&self) -> bool {
        !matches!(self.capability, Capability::Read | Capability::Invoke)
    }
}

/// Routes mounted under each of several prefixes (MLflow's `/api/2.0/mlflow`
/// and its `/ajax-api/2.0/mlflow` mirror), refusing as `api` does.
pub struct Group<S: 'static> {
    pub api: Api,
    pub mounts: &'static [&'static str],
    pub routes: &'static [Route<S>],
}

/// Where one endpoint's serving routes are mounted on the server.
pub const ENDPOINT_MOUNT: &str = "/endpoints/{name}";

/// One row of the whole table, with its full path.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub api: Api,
    pub method: Method,
    pub path: String,
    pub resource: Resource,
    pub capability: Capability,
    pub body: Body,
    pub changes_state: bool,
}

/// `group`'s rows of the whole table, with their full paths, added to `out`.
pub fn rows<S>(group: &Group<S>, out: &mut Vec<RouteInfo>) {
    for mount in group.mounts {
        for r in group.routes {
            out.push(RouteInfo {
                api: group.api,
                method: r.method.clone(),
                path: format!("{mount}{}", r.path),
                resource: r.resource,
                capability: r.capability,
                body: r.body,
                changes_state: r.changes_state(),
            });
        }
    }
}

/// The data plane's rows of the whole table: one endpoint's routes under
/// [`ENDPOINT_MOUNT`] and the metrics of every endpoint.
pub fn serving_table(out: &mut Vec<RouteInfo>) {
    rows(
        &Group {
            api: Api::Serving,
            mounts: &[ENDPOINT_MOUNT],
            routes: crate::http::ROUTES,
        },
        out,
    );
    rows(&crate::gateways::ENDPOINTS_METRICS, out);
}

/// The data plane's `group` added to `router`: no request guard, since
/// applications call inference routes from anywhere.
pub fn mount_data_plane<S: Clone + Send + Sync + 'static>(
    mut router: Router<S>,
    group: &Group<S>,
) -> Router<S> {
    assert_eq!(
        group.api,
        Api::Serving,
        "only the data plane goes unguarded"
    );
    for mount in group.mounts {
        for r in group.routes {
            router = router.route(&format!("{mount}{}", r.path), handler(r));
        }
    }
    router
}

/// A route's handler with its body limit.
pub fn handler<S: Clone + Send + Sync + 'static>(r: &Route<S>) -> MethodRouter<S> {
    let filter = MethodFilter::try_from(r.method.clone())
        .unwrap_or_else(|_| panic!("{} is not a routable method", r.method));
    let handler = (r.handler)(filter);
    if r.body == Body::Stream {
        handler.layer(DefaultBodyLimit::disable())
    } else {
        handler
    }
}
