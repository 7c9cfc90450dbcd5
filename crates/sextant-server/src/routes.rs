//! The one table of every route the server mounts: MLflow's RPCs and their
//! `/ajax-api` mirrors, the artifact service, the native API, the probes and
//! the serving data plane. Each route says which resource it touches, the
//! capability a caller needs there, and what body it takes; the router is
//! built from the table, so the request guard (`security::guard_request`)
//! sits in front of every state-changing handler, and a route added to a
//! table is guarded (and tested, `tests/request_guard.rs`) without more code.
//!
//! The capability is not enforced yet: it is what authentication will check.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};

use crate::security::{self, Guard, SecurityConfig};
use crate::state::AppState;

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
pub struct Route<S: 'static = AppState> {
    pub method: Method,
    pub path: &'static str,
    pub resource: Resource,
    pub capability: Capability,
    pub body: Body,
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
            handler,
        }
    }

    /// The same route taking another kind of body.
    pub const fn with_body(mut self, body: Body) -> Self {
        self.body = body;
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
pub struct Group<S: 'static = AppState> {
    pub api: Api,
    pub mounts: &'static [&'static str],
    pub routes: &'static [Route<S>],
}

/// The groups of the control plane: everything served with [`AppState`].
fn groups() -> Vec<Group> {
    vec![
        crate::misc::ROUTES,
        crate::mlflow::EXPERIMENTS,
        crate::mlflow::RUNS,
        crate::mlflow::LOGGED_MODELS,
        crate::mlflow::REGISTRY,
        crate::mlflow::WEBHOOKS,
        crate::mlflow::artifacts::PROXY,
        crate::mlflow::artifacts::LISTINGS,
        crate::mlflow::artifacts::UI,
        Group {
            api: Api::Native,
            mounts: &[""],
            routes: crate::native::ROUTES,
        },
    ]
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

/// Every route the server mounts, as `(method, full path)` with what the
/// tables say of it; the serving routes appear under [`ENDPOINT_MOUNT`].
pub fn table() -> Vec<RouteInfo> {
    fn rows<S>(group: &Group<S>, out: &mut Vec<RouteInfo>) {
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
    let mut out = Vec::new();
    for g in groups() {
        rows(&g, &mut out);
    }
    rows(
        &Group {
            api: Api::Serving,
            mounts: &[ENDPOINT_MOUNT],
            routes: crate::serving::http::ROUTES,
        },
        &mut out,
    );
    rows(&crate::serving::endpoints::ENDPOINTS_METRICS, &mut out);
    out
}

/// The control plane's router, built from the tables: every route whose
/// method may carry a change (all but `GET` and `HEAD`) behind the guard.
pub fn router(security: Arc<SecurityConfig>) -> Router<AppState> {
    groups()
        .iter()
        .fold(Router::new(), |router, g| mount(router, g, &security))
}

/// `group`'s routes added to `router`, guarded as their group's API refuses.
pub fn mount<S: Clone + Send + Sync + 'static>(
    mut router: Router<S>,
    group: &Group<S>,
    security: &Arc<SecurityConfig>,
) -> Router<S> {
    for mount in group.mounts {
        for r in group.routes {
            router = router.route(
                &format!("{mount}{}", r.path),
                method_router(group.api, r, security),
            );
        }
    }
    router
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
fn handler<S: Clone + Send + Sync + 'static>(r: &Route<S>) -> MethodRouter<S> {
    let filter = MethodFilter::try_from(r.method.clone())
        .unwrap_or_else(|_| panic!("{} is not a routable method", r.method));
    let handler = (r.handler)(filter);
    if r.body == Body::Stream {
        handler.layer(DefaultBodyLimit::disable())
    } else {
        handler
    }
}

/// One route's handler with its body limit and guard.
fn method_router<S: Clone + Send + Sync + 'static>(
    api: Api,
    r: &Route<S>,
    security: &Arc<SecurityConfig>,
) -> MethodRouter<S> {
    let mut handler = handler(r);
    // MLflow guards every POST, PUT, PATCH and DELETE of its API, reads by
    // POST (`runs/search`) included; so does Sextant.
    let unsafe_method = !matches!(r.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && api != Api::Serving {
        let guard = Guard {
            security: security.clone(),
            api,
            body: r.body,
        };
        // `route_layer`: a method the path does not serve still answers 405.
        handler = handler.route_layer(axum::middleware::from_fn_with_state(
            Arc::new(guard),
            security::guard_request,
        ));
    }
    handler
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn reads_change_nothing_and_take_no_body() {
        for r in table() {
            let what = format!("{} {}", r.method, r.path);
            if r.method == Method::GET {
                assert!(!r.changes_state, "a GET must not change state: {what}");
                assert_eq!(r.body, Body::None, "{what}");
                assert!(
                    matches!(r.capability, Capability::Read | Capability::Invoke),
                    "{what}"
                );
            } else {
                assert_ne!(r.body, Body::None, "{what} takes a body");
            }
        }
    }

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = BTreeSet::new();
        for r in table() {
            assert!(
                seen.insert((r.method.to_string(), r.path.clone())),
                "{} {} twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn every_mlflow_rpc_has_its_ajax_mirror() {
        let all: BTreeSet<(String, String)> = table()
            .into_iter()
            .map(|r| (r.method.to_string(), r.path))
            .collect();
        for (m, p) in &all {
            if let Some(rest) = p.strip_prefix("/api/2.0/") {
                assert!(
                    all.contains(&(m.clone(), format!("/ajax-api/2.0/{rest}"))),
                    "{m} {p} has no /ajax-api mirror"
                );
            }
        }
    }
}
