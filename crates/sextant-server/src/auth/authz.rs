//! What a caller may do: the one place that decides every routed request.
//! Each route of the table carries its resource type and capability
//! ([`AuthRoute`]); this layer finds the instance the request names (from
//! the path, the query or the JSON body), resolves the caller's level on
//! it as MLflow does (`policy.rs`), and refuses with MLflow's 403 — or lets
//! the handler run, then records what creating gave its creator (MANAGE on
//! a new experiment, registered model, pipeline, endpoint or monitor).
//!
//! Admins skip every check, as in MLflow. A route whose resource this layer
//! does not know how to resolve is refused to non-admins (fail closed).

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use sextant_core::auth::Permission;
use sextant_store::StoreError;

use super::Principal;
use super::authn::{Authn, denied, is_public, unauthenticated};
use super::policy::Grants;
use crate::error::{ApiError, ErrorCode};
use crate::routes::{Api, Body, Capability, Resource};

/// The largest JSON body read to find the resource a request names; a
/// larger one is refused before its handler (which would refuse it too).
const MAX_INSPECTED_BODY: usize = 64 << 20;

/// What the table says of one route, for the layer in front of it.
#[derive(Debug, Clone)]
pub struct AuthRoute {
    pub api: Api,
    pub method: Method,
    /// The full path template (`/api/2.0/mlflow/runs/get`).
    pub path: String,
    pub resource: Resource,
    pub capability: Capability,
    pub body: Body,
}

/// The identifiers a request may carry in its query or JSON body, numbers
/// or strings alike; everything else is skipped unread.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Ids {
    experiment_id: Option<Value>,
    experiment_name: Option<Value>,
    experiment_ids: Option<Vec<Value>>,
    run_id: Option<Value>,
    run_uuid: Option<Value>,
    model_id: Option<Value>,
    name: Option<Value>,
    /// Every `run_id` / `run_ids` of the query (bulk metric histories).
    #[serde(skip)]
    runs: Vec<String>,
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

impl Ids {
    fn run(&self) -> Option<String> {
        text(&self.run_id).or_else(|| text(&self.run_uuid))
    }

    fn merge_query(&mut self, query: Option<&str>) {
        let Some(q) = query else { return };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
        for (k, v) in pairs {
            if k == "run_id" || k == "run_ids" {
                self.runs.push(v.clone());
            }
            let slot = match k.as_str() {
                "experiment_id" => &mut self.experiment_id,
                "experiment_name" => &mut self.experiment_name,
                "run_id" => &mut self.run_id,
                "run_uuid" => &mut self.run_uuid,
                "model_id" => &mut self.model_id,
                "name" => &mut self.name,
                "experiment_ids" => {
                    self.experiment_ids
                        .get_or_insert_with(Vec::new)
                        .push(Value::String(v));
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(Value::String(v));
            }
        }
    }
}

/// What the request names, once looked up.
struct Request2 {
    method: Method,
    ids: Ids,
    params: Vec<(String, String)>,
}

impl Request2 {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The verdict on one request.
enum Verdict {
    Allow,
    /// Allowed; the caller then gets MANAGE on what the request creates.
    AllowCreating(Created),
    Deny(&'static str),
    /// Allowed; the answer's rows the caller may not read are dropped.
    AllowFiltered(Search),
    /// The request lacks what the decision needs (the handler would refuse it too).
    Invalid(String),
}

/// The listings whose answers are filtered per row: MLflow's searches, as
/// MLflow's after-request handlers filter them, and the native API's
/// listings of Sextant's own resources, filtered the same way.
#[derive(Debug, Clone, Copy)]
enum Search {
    Experiments,
    Runs,
    LoggedModels,
    RegisteredModels,
    ModelVersions,
    /// `GET /api/v1/models`.
    Models,
    Pipelines,
    PipelineRuns,
    Endpoints,
    Monitors,
    Events,
    /// A model version's lineage: one answer whose links (run, pipeline
    /// run, event, monitor run) and serving endpoints are each judged on
    /// their own.
    Lineage,
}

impl Search {
    /// The answer's list of rows.
    fn key(self) -> &'static str {
        match self {
            Search::Experiments => "experiments",
            Search::Runs => "runs",
            Search::LoggedModels => "models",
            Search::RegisteredModels => "registered_models",
            Search::ModelVersions => "model_versions",
            Search::Models => "models",
            Search::Pipelines => "pipelines",
            Search::PipelineRuns => "runs",
            Search::Endpoints => "endpoints",
            Search::Monitors => "monitors",
            Search::Events => "events",
            Search::Lineage => "endpoints",
        }
    }

    /// Whether the caller may read one row.
    fn readable(self, grants: &Grants, row: &Value) -> bool {
        let experiment = |v: Option<&Value>| text(&v.cloned());
        match self {
            Search::Experiments => experiment(row.get("experiment_id"))
                .is_some_and(|e| grants.level("experiment", &e).can_read()),
            Search::Runs | Search::LoggedModels => {
                let tier = match self {
                    Search::Runs => "run",
                    _ => "logged_model",
                };
                experiment(row.get("info").and_then(|i| i.get("experiment_id"))).is_some_and(|e| {
                    grants.level("experiment", &e).can_read()
                        && grants.tier(tier, "experiment", &e).can_read()
                })
            }
            Search::RegisteredModels | Search::ModelVersions => {
                let versions_ok =
                    matches!(self, Search::RegisteredModels) || versions_readable(grants);
                versions_ok && named(row, "name", |n| grants.level("registered_model", n))
            }
            Search::Models => named(row, "name", |n| grants.level("registered_model", n)),
            Search::Pipelines => named(row, "name", |n| grants.level("pipeline", n)),
            Search::PipelineRuns => named(row, "pipeline", |n| grants.level("pipeline", n)),
            Search::Endpoints => named(row, "name", |n| grants.level("endpoint", n)),
            Search::Monitors => named(row, "name", |n| grants.level("monitor", n)),
            Search::Events => event_readable(grants, row),
            Search::Lineage => named(row, "name", |n| grants.level("endpoint", n)),
        }
    }
}

/// Empties the links of a version's lineage that lead to what the caller
/// may not read, and names them in `withheld` (so a page says "not visible
/// to you" rather than "none"): READ on the model is not READ on the
/// experiment of the run that logged it, on the pipeline that trained it
/// or on the monitor that set it off. The run's step goes with the run.
/// The event keeps only a subject a restricted caller could read in the
/// feed, which its id alone does not tell, so it is judged with no payload.
/// Endpoints the caller may not read are left out of the list unnamed.
fn redact_lineage(doc: &mut Value, grants: &Grants) {
    let readable = |doc: &Value, link: &str| -> bool {
        let row = &doc[link];
        match link {
            "run" => text(&row.get("experiment_id").cloned()).is_some_and(|e| {
                grants.level("experiment", &e).can_read()
                    && grants.tier("run", "experiment", &e).can_read()
            }),
            "pipeline_run" => named(row, "pipeline", |n| grants.level("pipeline", n)),
            "event" => event_readable(grants, row),
            "monitor_run" => named(row, "monitor", |n| grants.level("monitor", n)),
            _ => false,
        }
    };
    let mut withheld = Vec::new();
    for link in ["run", "pipeline_run", "event", "monitor_run"] {
        if !doc[link].is_null() && !readable(doc, link) {
            doc[link] = Value::Null;
            if link == "run" {
                doc["step"] = Value::Null;
            }
            withheld.push(Value::from(link));
        }
    }
    doc["withheld"] = Value::Array(withheld);
}

/// Whether the row's `field` names a resource the caller may read.
fn named(row: &Value, field: &str, level: impl Fn(&str) -> Permission) -> bool {
    row.get(field)
        .and_then(Value::as_str)
        .is_some_and(|n| level(n).can_read())
}

fn versions_readable(grants: &Grants) -> bool {
    grants.explicit("registered_model_version", "*") != Some(Permission::Deny)
}

/// Whether the caller may read the resource an event names (its `subject`,
/// `<type>:<id>`, with the run's experiment or the pipeline run's pipeline
/// in its payload): the events feed shows what the caller could read
/// directly. Events of any other subject (an import) are for admins.
fn event_readable(grants: &Grants, row: &Value) -> bool {
    let Some((kind, id)) = row
        .get("subject")
        .and_then(Value::as_str)
        .and_then(|s| s.split_once(':'))
    else {
        return false;
    };
    let payload = |field: &str| text(&row.get("payload").and_then(|p| p.get(field)).cloned());
    let experiment = |tier: &str| {
        payload("experiment_id").is_some_and(|e| {
            grants.level("experiment", &e).can_read()
                && grants.tier(tier, "experiment", &e).can_read()
        })
    };
    match kind {
        "experiment" => grants.level("experiment", id).can_read(),
        "run" => experiment("run"),
        "logged_model" => experiment("logged_model"),
        "registered_model" => grants.level("registered_model", id).can_read(),
        "model_version" => {
            versions_readable(grants)
                && id
                    .rsplit_once('/')
                    .is_some_and(|(name, _)| grants.level("registered_model", name).can_read())
        }
        "pipeline" | "endpoint" | "monitor" => grants.level(kind, id).can_read(),
        "pipeline_run" => {
            payload("pipeline").is_some_and(|n| grants.level("pipeline", &n).can_read())
        }
        _ => grants.manages_workspace(),
    }
}

/// What a successful request creates for its caller.
enum Created {
    Experiment,
    Named(&'static str, String),
}

/// The layer: authorizes the request for the principal `authenticate` found.
pub async fn authorize(
    State((route, st)): State<(Arc<AuthRoute>, Authn)>,
    req: Request,
    next: Next,
) -> Response {
    if !st.auth.enabled() {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let Some(principal) = req.extensions().get::<Arc<Principal>>().cloned() else {
        if is_public(&path) {
            return next.run(req).await;
        }
        return unauthenticated(&path);
    };
    if let Some(why) = scope_refusal(&principal, &route) {
        return denied(&path, why);
    }
    if principal.user.is_admin {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let params = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(p) => p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut ids = Ids::default();
    let body = if matches!(route.body, Body::Json) && parts.method != Method::GET {
        let bytes = match axum::body::to_bytes(body, MAX_INSPECTED_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError::new(
                    ErrorCode::RequestLimitExceeded,
                    format!("request body larger than {MAX_INSPECTED_BODY} bytes"),
                )
                .into_response();
            }
        };
        ids = serde_json::from_slice(&bytes).unwrap_or_default();
        HttpBody::from(bytes)
    } else {
        body
    };
    ids.merge_query(parts.uri.query());
    let r = Request2 {
        method: parts.method.clone(),
        ids,
        params,
    };
    let verdict = match decide(&st, &principal, &route, &r, &path).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let req = Request::from_parts(parts, body);
    match verdict {
        Verdict::Allow => next.run(req).await,
        Verdict::AllowFiltered(search) => {
            let resp = next.run(req).await;
            let grants = Grants {
                rows: &principal.rows,
                default: st.auth.settings.default_permission,
            };
            if !resp.status().is_success() || !may_hide_rows(&grants) {
                return resp;
            }
            filter_rows(resp, search, &grants).await
        }
        Verdict::Deny(why) => denied(&path, why),
        Verdict::Invalid(message) => {
            ApiError::new(ErrorCode::InvalidParameterValue, message).into_response()
        }
        Verdict::AllowCreating(created) => {
            let resp = next.run(req).await;
            if !resp.status().is_success() {
                return resp;
            }
            grant_creator(&st, &principal, created, resp).await
        }
    }
}

/// A scoped token's limits, checked before the user's grants.
fn scope_refusal(p: &Principal, route: &AuthRoute) -> Option<&'static str> {
    if p.scopes.is_empty() {
        return None;
    }
    let ok = p.scopes.iter().any(|s| match s.as_str() {
        "read" => route.capability == Capability::Read,
        "invoke" => route.resource == Resource::Inference,
        "worker" => {
            route.resource == Resource::Task
                || (route.capability != Capability::Manage
                    && matches!(
                        route.resource,
                        Resource::Experiment
                            | Resource::Run
                            | Resource::LoggedModel
                            | Resource::RegisteredModel
                            | Resource::ModelVersion
                            | Resource::Artifact
                            | Resource::Pipeline
                            | Resource::PipelineRun
                    ))
        }
        "gateway" => {
            matches!(route.resource, Resource::Inference | Resource::Artifact)
                || (route.resource == Resource::Endpoint
                    && matches!(route.capability, Capability::Read | Capability::Work))
                || (matches!(
                    route.resource,
                    Resource::RegisteredModel | Resource::ModelVersion
                ) && route.capability == Capability::Read)
        }
        _ => false,
    });
    (!ok).then_some("this token's scopes do not cover this route")
}

/// The level check a capability makes.
fn allows(capability: Capability, p: Permission) -> bool {
    match capability {
        Capability::Read => p.can_read(),
        Capability::Create | Capability::Edit => p.can_update(),
        Capability::Manage => p.can_manage(),
        Capability::Invoke => p.can_use(),
        Capability::Work => false,
    }
}

fn verdict(ok: bool) -> Verdict {
    if ok {
        Verdict::Allow
    } else {
        Verdict::Deny("the caller lacks the permission this route needs")
    }
}

fn missing(name: &str) -> Verdict {
    Verdict::Invalid(format!("Missing value for required parameter '{name}'."))
}

async fn decide(
    st: &Authn,
    p: &Principal,
    route: &AuthRoute,
    r: &Request2,
    _path: &str,
) -> Result<Verdict, ApiError> {
    let grants = Grants {
        rows: &p.rows,
        default: st.auth.settings.default_permission,
    };
    let cap = route.capability;
    let tail = route.path.rsplit("/mlflow/").next().unwrap_or(&route.path);
    Ok(match route.resource {
        Resource::Server => verdict(cap == Capability::Read),
        Resource::Experiment => {
            if cap == Capability::Create {
                verdict(grants.may_create("experiment", "*"))
                    .and_then(|| Verdict::AllowCreating(Created::Experiment))
            } else if tail == "experiments/search" {
                Verdict::AllowFiltered(Search::Experiments)
            } else if tail == "experiments/search-datasets" {
                // The answer lists what the runs of every experiment named
                // used: each must be readable.
                let ids = r.ids.experiment_ids.as_deref().unwrap_or_default();
                if ids.is_empty() {
                    missing("experiment_ids")
                } else {
                    verdict(ids.iter().all(|id| {
                        text(&Some(id.clone()))
                            .is_some_and(|id| grants.level("experiment", &id).can_read())
                    }))
                }
            } else if let Some(name) =
                text(&r.ids.experiment_name).filter(|_| tail == "experiments/get-by-name")
            {
                match experiment_by_name(st, name).await? {
                    Some(id) => verdict(grants.level("experiment", &id.to_string()).can_read()),
                    None => verdict(grants.default.can_read()),
                }
            } else if let Some(id) = text(&r.ids.experiment_id) {
                let level = grants.level("experiment", &id);
                if tail == "runs/create" {
                    verdict(
                        level.can_update() && grants.explicit("run", "*") != Some(Permission::Deny),
                    )
                } else if route.path.ends_with("/logged-models") {
                    verdict(
                        level.can_update()
                            && grants.explicit("logged_model", "*") != Some(Permission::Deny),
                    )
                } else {
                    verdict(allows(cap, level))
                }
            } else {
                missing("experiment_id")
            }
        }
        Resource::Run => {
            if tail == "runs/search" {
                Verdict::AllowFiltered(Search::Runs)
            } else if tail.starts_with("metrics/get-history-bulk")
                || route.path == "/api/v1/runs/metric-summaries"
            {
                // Every run named must be readable.
                let runs = run_ids(r);
                if runs.is_empty() {
                    return Ok(missing("run_ids"));
                }
                let mut ok = true;
                for run in runs {
                    ok &= match run_experiment(st, &run).await? {
                        Some(e) => run_level(&grants, e, "run").can_read(),
                        None => false,
                    };
                }
                verdict(ok)
            } else if let Some(run) = r.ids.run() {
                match run_experiment(st, &run).await? {
                    // MLflow answers 403 for a run it cannot find.
                    None => Verdict::Deny("no such run"),
                    Some(e) => {
                        let exp = grants.level("experiment", &e.to_string());
                        verdict(exp.can_read() && allows(cap, run_level(&grants, e, "run")))
                    }
                }
            } else {
                missing("run_id")
            }
        }
        Resource::LoggedModel => {
            if tail == "logged-models/search" {
                Verdict::AllowFiltered(Search::LoggedModels)
            } else if let Some(id) = r
                .param("model_id")
                .map(str::to_string)
                .or_else(|| text(&r.ids.model_id))
            {
                match model_experiment(st, &id).await? {
                    None => Verdict::Deny("no such logged model"),
                    Some(e) => {
                        let exp = grants.level("experiment", &e.to_string());
                        verdict(
                            exp.can_read() && allows(cap, run_level(&grants, e, "logged_model")),
                        )
                    }
                }
            } else {
                missing("model_id")
            }
        }
        Resource::RegisteredModel | Resource::ModelVersion => {
            let name = r
                .param("name")
                .map(str::to_string)
                .or_else(|| text(&r.ids.name));
            if tail == "registered-models/search" {
                Verdict::AllowFiltered(Search::RegisteredModels)
            } else if tail == "model-versions/search" {
                Verdict::AllowFiltered(Search::ModelVersions)
            } else if route.path == "/api/v1/models" {
                Verdict::AllowFiltered(Search::Models)
            } else if let Some(name) = name {
                if cap == Capability::Create {
                    verdict(grants.may_create("registered_model", &name)).and_then(|| {
                        Verdict::AllowCreating(Created::Named("registered_model", name.clone()))
                    })
                } else {
                    let level = grants.level("registered_model", &name);
                    let versions_ok = route.resource == Resource::RegisteredModel
                        || grants.explicit("registered_model_version", "*")
                            != Some(Permission::Deny);
                    let ok = allows(cap, level) && versions_ok;
                    if ok && route.path.ends_with("/lineage") {
                        Verdict::AllowFiltered(Search::Lineage)
                    } else {
                        verdict(ok)
                    }
                }
            } else {
                missing("name")
            }
        }
        Resource::Artifact => {
            // `<experiment id>/<run id>/artifacts/…` under the proxied root;
            // anything else is judged by the default level, as in MLflow.
            let file = r.param("path").or_else(|| r.param("rest")).unwrap_or("");
            let level = match file.split('/').next().and_then(|s| s.parse::<i64>().ok()) {
                Some(e) => grants.level("experiment", &e.to_string()),
                None => grants.level("experiment", ""),
            };
            let need = match r.method {
                Method::GET | Method::HEAD => Capability::Read,
                Method::DELETE => Capability::Manage,
                _ => Capability::Edit,
            };
            verdict(allows(need, level))
        }
        Resource::Pipeline | Resource::Endpoint | Resource::Monitor | Resource::Inference => {
            let kind = match route.resource {
                Resource::Pipeline => "pipeline",
                Resource::Monitor => "monitor",
                _ => "endpoint",
            };
            let name = match (route.resource, r.param("name"), r.param("id")) {
                (_, Some(n), _) => Some(n.to_string()),
                (Resource::Monitor, None, Some(id)) => monitor_of_run(st, id).await?,
                _ => None,
            };
            let listing = match route.path.as_str() {
                "/api/v1/pipelines" => Some(Search::Pipelines),
                "/api/v1/endpoints" => Some(Search::Endpoints),
                "/api/v1/monitors" => Some(Search::Monitors),
                _ => None,
            };
            match name {
                None => match listing {
                    Some(search) if r.method == Method::GET => Verdict::AllowFiltered(search),
                    _ => Verdict::Deny("no such resource"),
                },
                // A gateway's reports: its token's scope was checked above.
                Some(name) if cap == Capability::Work => verdict(
                    p.scopes.iter().any(|s| s == "gateway")
                        && grants.level(kind, &name).can_update(),
                ),
                Some(name) => {
                    let creating = r.method == Method::PUT
                        && matches!(
                            route.resource,
                            Resource::Pipeline | Resource::Endpoint | Resource::Monitor
                        )
                        && !exists(st, kind, &name).await?;
                    if creating {
                        verdict(grants.may_create(kind, &name))
                            .and_then(|| Verdict::AllowCreating(Created::Named(kind, name.clone())))
                    } else {
                        verdict(allows(cap, grants.level(kind, &name)))
                    }
                }
            }
        }
        Resource::PipelineRun => match r.param("id") {
            None if route.path == "/api/v1/pipeline-runs" => {
                Verdict::AllowFiltered(Search::PipelineRuns)
            }
            None => Verdict::Deny("no such pipeline run"),
            Some(id) => match pipeline_of_run(st, id).await? {
                None => Verdict::Deny("no such pipeline run"),
                Some(name) => verdict(allows(cap, grants.level("pipeline", &name))),
            },
        },
        // Webhooks see every event: admins only, as in MLflow.
        Resource::Webhook => Verdict::Deny("webhooks are for admins only"),
        // Remote workers: admins, or a worker-scoped token of a user who
        // may edit every pipeline.
        Resource::Task => verdict(
            p.scopes.iter().any(|s| s == "worker") && grants.level("pipeline", "*").can_update(),
        ),
        Resource::Event => Verdict::AllowFiltered(Search::Events),
        // The auth API's handlers apply MLflow's per-route rules (self-service,
        // admins) with the principal themselves.
        Resource::User => Verdict::Allow,
    })
}

trait AndThen {
    fn and_then(self, f: impl FnOnce() -> Verdict) -> Verdict;
}

impl AndThen for Verdict {
    fn and_then(self, f: impl FnOnce() -> Verdict) -> Verdict {
        match self {
            Verdict::Allow => f(),
            other => other,
        }
    }
}

/// A run's (or logged model's) level: its tier's `*` grant, else its experiment's.
fn run_level(grants: &Grants, experiment: i64, tier: &str) -> Permission {
    grants.tier(tier, "experiment", &experiment.to_string())
}

/// The run ids a bulk history request names (`run_id` repeated, or `run_ids`).
fn run_ids(r: &Request2) -> Vec<String> {
    let mut out = r.ids.runs.clone();
    out.sort();
    out.dedup();
    out
}

async fn lookup<T, F>(st: &Authn, f: F) -> Result<Option<T>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn sextant_store::MetaStore) -> Result<T, StoreError> + Send + 'static,
{
    match sextant_store::call(&st.store, f).await {
        Ok(v) => Ok(Some(v)),
        Err(sextant_store::CallError::Store(StoreError::Domain(
            sextant_core::Error::NotFound(_) | sextant_core::Error::InvalidParameter(_),
        ))) => Ok(None),
        Err(e) => Err(ApiError::from(e)),
    }
}

async fn run_experiment(st: &Authn, run: &str) -> Result<Option<i64>, ApiError> {
    if let Some(e) = st.auth.parent(run) {
        return Ok(Some(e));
    }
    let id = run.to_string();
    let found = lookup(st, move |s| s.get_run(&id).map(|r| r.info.experiment_id)).await?;
    if let Some(e) = found {
        st.auth.remember_parent(run, e);
    }
    Ok(found)
}

async fn model_experiment(st: &Authn, model: &str) -> Result<Option<i64>, ApiError> {
    if let Some(e) = st.auth.parent(model) {
        return Ok(Some(e));
    }
    let id = model.to_string();
    let found = lookup(st, move |s| {
        s.get_logged_model(&id, true).map(|m| m.experiment_id)
    })
    .await?;
    if let Some(e) = found {
        st.auth.remember_parent(model, e);
    }
    Ok(found)
}

async fn experiment_by_name(st: &Authn, name: String) -> Result<Option<i64>, ApiError> {
    lookup(st, move |s| {
        s.get_experiment_by_name(&name).map(|e| e.experiment_id)
    })
    .await
}

async fn pipeline_of_run(st: &Authn, id: &str) -> Result<Option<String>, ApiError> {
    let id = id.to_string();
    lookup(st, move |s| s.get_pipeline_run(&id).map(|r| r.pipeline)).await
}

async fn monitor_of_run(st: &Authn, id: &str) -> Result<Option<String>, ApiError> {
    let id = id.to_string();
    lookup(st, move |s| s.get_monitor_run(&id).map(|r| r.monitor)).await
}

async fn exists(st: &Authn, kind: &'static str, name: &str) -> Result<bool, ApiError> {
    let name = name.to_string();
    let found = lookup(st, move |s| match kind {
        "pipeline" => s.get_pipeline(&name).map(|_| ()),
        "monitor" => s.get_monitor(&name).map(|_| ()),
        _ => s.get_endpoint(&name).map(|_| ()),
    })
    .await?;
    Ok(found.is_some())
}

/// Whether any row could be hidden from this caller: a default below READ,
/// or a DENY somewhere. Otherwise answers pass unread.
fn may_hide_rows(grants: &Grants) -> bool {
    !grants.manages_workspace()
        && (!grants.default.can_read()
            || grants.rows.iter().any(|r| r.permission == Permission::Deny))
}

/// The answer without the rows the caller may not read. A page may come
/// back shorter than asked (MLflow refills it; Sextant keeps the server's
/// page token, so paging still reaches every readable row).
async fn filter_rows(resp: Response, search: Search, grants: &Grants<'_>) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(ErrorCode::InternalError, format!("reading response: {e}"))
                .into_response();
        }
    };
    let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, HttpBody::from(bytes));
    };
    if let Some(Value::Array(rows)) = doc.get_mut(search.key()) {
        rows.retain(|row| search.readable(grants, row));
    }
    if let Search::Lineage = search {
        redact_lineage(&mut doc, grants);
    }
    let out = serde_json::to_vec(&doc).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, HttpBody::from(out))
}

/// Gives the caller MANAGE on what the request created (MLflow's
/// after-request handlers), then answers the handler's response.
async fn grant_creator(st: &Authn, p: &Principal, created: Created, resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(ErrorCode::InternalError, format!("reading response: {e}"))
                .into_response();
        }
    };
    let target = match created {
        Created::Experiment => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| text(&v.get("experiment_id").cloned()))
            .map(|id| ("experiment", id)),
        Created::Named(kind, name) => Some((kind, name)),
    };
    if let Some((kind, id)) = target {
        let user = p.user.id;
        let outcome = sextant_store::call(&st.store, move |s| {
            match s
                .auth()
                .grant_user_permission(user, kind, &id, Permission::Manage)
            {
                Err(StoreError::Domain(sextant_core::Error::AlreadyExists(_))) => Ok(()),
                other => other,
            }
        })
        .await;
        if let Err(e) = outcome {
            return ApiError::from(e).into_response();
        }
        st.auth.changed();
    }
    Response::from_parts(parts, HttpBody::from(bytes))
}
