//! The one table of every route the server mounts: MLflow's RPCs and their
//! `/ajax-api` mirrors, the artifact service, the native API, the probes and
//! the serving data plane (whose routes `sextant_serving` declares, with the
//! table types re-exported here). Each route says which resource it touches,
//! the capability a caller needs there, and what body it takes; the router is
//! built from the table, so the request guard (`security::guard_request`)
//! sits in front of every state-changing handler, and a route added to a
//! table is guarded (and tested, `tests/request_guard.rs`) without more code.
//!
//! The capability is not enforced yet: it is what authentication will check.

use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;

use crate::auth::{AuthRoute, Authn};
use crate::security::{self, Guard, SecurityConfig};
use crate::state::AppState;
pub use sextant_serving::routes::{
    Api, Body, Capability, ENDPOINT_MOUNT, Resource, RouteInfo, handler, mount_data_plane, rows,
};

/// One route of a table; the control plane's are served with [`AppState`].
pub type Route<S = AppState> = sextant_serving::routes::Route<S>;
/// Routes mounted under each of several prefixes; the control plane's are
/// served with [`AppState`].
pub type Group<S = AppState> = sextant_serving::routes::Group<S>;

/// The groups of the control plane: everything served with [`AppState`].
fn groups() -> Vec<Group> {
    vec![
        crate::misc::ROUTES,
        crate::mlflow::EXPERIMENTS,
        crate::mlflow::RUNS,
        crate::mlflow::LOGGED_MODELS,
        crate::mlflow::REGISTRY,
        crate::mlflow::WEBHOOKS,
        crate::mlflow::AJAX_ONLY,
        crate::mlflow::artifacts::PROXY,
        crate::mlflow::artifacts::LISTINGS,
        crate::mlflow::artifacts::UI,
        crate::auth::api::USERS,
        crate::auth::api::RBAC,
        crate::auth::api::TOKENS,
        crate::auth::session::ROUTES,
        crate::auth::audit_api::AUDIT,
        crate::ui::ROUTES,
        Group {
            api: Api::Native,
            mounts: &[""],
            routes: crate::native::ROUTES,
        },
    ]
}

/// Every route the server mounts, as `(method, full path)` with what the
/// tables say of it; the serving routes appear under [`ENDPOINT_MOUNT`].
pub fn table() -> Vec<RouteInfo> {
    let mut out = Vec::new();
    for g in groups() {
        rows(&g, &mut out);
    }
    sextant_serving::routes::serving_table(&mut out);
    out
}

/// What the answer of a state-changing route asks of the change notifier
/// (`announce_changes` in `lib.rs`); a route that only reads, or a path
/// no route serves, asks nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    Always,
    /// The route is declared [`Route::eventless`].
    IfEventsAppended,
}

/// The control plane's router, built from the tables: every route behind
/// the authorization layer (`crate::auth::authorize`), and every route whose
/// method may carry a change (all but `GET` and `HEAD`) behind the guard.
pub fn router(security: Arc<SecurityConfig>, authn: &Authn) -> Router<AppState> {
    groups().iter().fold(Router::new(), |router, g| {
        mount(router, g, &security, authn)
    })
}

/// `group`'s routes added to `router`, guarded as their group's API refuses.
pub fn mount<S: Clone + Send + Sync + 'static>(
    mut router: Router<S>,
    group: &Group<S>,
    security: &Arc<SecurityConfig>,
    authn: &Authn,
) -> Router<S> {
    for mount in group.mounts {
        for r in group.routes {
            let path = format!("{mount}{}", r.path);
            let decide = AuthRoute {
                api: group.api,
                method: r.method.clone(),
                path: path.clone(),
                resource: r.resource,
                capability: r.capability,
                body: r.body,
            };
            let mut route = method_router(group.api, r, security).route_layer(
                axum::middleware::from_fn_with_state(
                    (Arc::new(decide), authn.clone()),
                    crate::auth::authorize,
                ),
            );
            if r.changes_state() {
                let announce = if r.eventless {
                    Announce::IfEventsAppended
                } else {
                    Announce::Always
                };
                route = route.route_layer(axum::middleware::map_response(
                    move |mut resp: axum::response::Response| async move {
                        resp.extensions_mut().insert(announce);
                        resp
                    },
                ));
            }
            router = router.route(&path, route);
        }
    }
    router
}

/// The data plane's routes, each behind the authorization layer as an
/// inference call on the endpoint its path names (the table declares them
/// all `Invoke`; their metrics `Read`).
pub fn guard_data_plane(router: Router, authn: &Authn) -> Router {
    let decide = AuthRoute {
        api: Api::Serving,
        method: Method::POST,
        path: ENDPOINT_MOUNT.to_string(),
        resource: Resource::Inference,
        capability: Capability::Invoke,
        body: Body::Any,
    };
    router.route_layer(axum::middleware::from_fn_with_state(
        (Arc::new(decide), authn.clone()),
        crate::auth::authorize,
    ))
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
