//! The gateways a process hosts, by endpoint name, and the router that reaches each at
//! `/endpoints/{name}/…` (so endpoints come and go without rebuilding the app's router),
//! plus one `/metrics` for all of them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, on};
use serde_json::json;
use tower::ServiceExt;

use super::gateway::Gateway;
use super::{http, metrics};
use crate::routes::{self, Api, Group, Resource, Route};

/// The hosted gateways.
#[derive(Default)]
pub struct Gateways {
    map: RwLock<BTreeMap<String, (Arc<Gateway>, Router)>>,
}

impl std::fmt::Debug for Gateways {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Gateways {
    /// No gateways.
    pub fn new() -> Arc<Gateways> {
        Arc::new(Gateways::default())
    }

    /// Hosts `gateway` under its name, replacing one of the same name.
    pub fn insert(&self, gateway: Arc<Gateway>) {
        let router = http::router(gateway.clone());
        self.write()
            .insert(gateway.name().to_owned(), (gateway, router));
    }

    /// Stops hosting `name`; requests already running finish.
    pub fn remove(&self, name: &str) -> Option<Arc<Gateway>> {
        self.write().remove(name).map(|(g, _)| g)
    }

    /// The gateway of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Gateway>> {
        self.read().get(name).map(|(g, _)| g.clone())
    }

    /// Hosted endpoint names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// The Prometheus exposition of every hosted gateway.
    pub fn render_metrics(&self) -> String {
        let all: Vec<Arc<Gateway>> = self.read().values().map(|(g, _)| g.clone()).collect();
        let refs: Vec<&Gateway> = all.iter().map(Arc::as_ref).collect();
        metrics::render(&refs)
    }

    fn router_of(&self, name: &str) -> Option<Router> {
        self.read().get(name).map(|(_, r)| r.clone())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, (Arc<Gateway>, Router)>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, (Arc<Gateway>, Router)>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// `/endpoints-metrics`, the one route of the data plane outside an endpoint.
pub(crate) const ENDPOINTS_METRICS: Group<Arc<Gateways>> = Group {
    api: Api::Serving,
    mounts: &[""],
    routes: &[Route::get("/endpoints-metrics", Resource::Inference, |m| {
        on(m, all_metrics)
    })],
};

/// `/endpoints/{name}/…` for every hosted gateway (each endpoint's routes are
/// `http::ROUTES`), and `/endpoints-metrics` for all.
pub fn endpoints_router(gateways: Arc<Gateways>) -> Router {
    let router = Router::new().route(
        &format!("{}/{{*rest}}", routes::ENDPOINT_MOUNT),
        any(dispatch),
    );
    routes::mount_data_plane(router, &ENDPOINTS_METRICS).with_state(gateways)
}

async fn dispatch(
    State(gateways): State<Arc<Gateways>>,
    Path((name, rest)): Path<(String, String)>,
    mut req: Request,
) -> Response {
    let Some(router) = gateways.router_of(&name) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "error_code": "RESOURCE_DOES_NOT_EXIST",
                "message": format!("endpoint {name:?} does not exist"),
            })),
        )
            .into_response();
    };
    let path = match req.uri().query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    match path.parse::<Uri>() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    }
    match router.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn all_metrics(State(gateways): State<Arc<Gateways>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        gateways.render_metrics(),
    )
        .into_response()
}
