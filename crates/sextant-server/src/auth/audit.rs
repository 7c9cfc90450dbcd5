//! The audit layer: what goes into the audit log. It sits just outside the
//! authentication layer, so it sees every answer (the handler's,
//! authorization's 403, authentication's 401 and 429) and, carried out on
//! the answer by `authenticate`, who called or which login failed.
//!
//! Recorded, with authentication on: every request to a route that changes
//! state (the route table's word; by method for unrouted paths), every
//! denied request (401, 403), every failed login, and every login: a
//! browser session's sign-in, and a Basic login whenever its credentials
//! were checked against the store because none was verified within the
//! credential cache's window (`AuthSettings::cache_ttl`): at most one per
//! credential, window and server — a row of its own, beside the request's. A handler names
//! what a successful request did with an [`Action`] on its answer (token
//! created or revoked, permission or role changed, …): its row then carries
//! the action and the resource acted on. Denied anonymous
//! requests — no credentials, a malformed header, a throttled login — are
//! only counted per source and minute (`audit_log.rs`). Rows are queued to
//! the writer; the request does not wait for the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::{Body, HttpBody as _};
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use sextant_core::audit::NewAuditRow;

use super::audit_log::AuditLog;
use super::authn::{LoginFailure, source_address};
use super::{Auth, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::routes::Resource;
use crate::telemetry::RequestId;

/// The largest JSON body read for the ids it names; a larger one (a big
/// log-batch) is recorded with the route's resource type only.
const MAX_INSPECTED_BODY: usize = 64 << 10;
/// The longest path of an unrouted request, or resource, kept.
const MAX_TEXT_CHARS: usize = 256;

/// What a successful request did, named by its handler for its audit row.
#[derive(Debug, Clone)]
pub struct Action {
    /// `login`, `token.create`, `permission.grant`, …
    pub name: &'static str,
    /// What it acted on (`token:17`, `user:bob registered_model:churn EDIT`).
    pub resource: String,
}

impl Action {
    /// `resp` carrying the action `name` on `resource`.
    pub fn on(mut resp: Response, name: &'static str, resource: String) -> Response {
        resp.extensions_mut().insert(Action { name, resource });
        resp
    }
}

/// Set on an answer whose request logged in with HTTP Basic: its
/// credentials checked against the store, none verified within the
/// credential cache's window.
#[derive(Debug, Clone, Copy)]
pub struct BasicLogin;

/// What the table says of one route.
#[derive(Debug, Clone, Copy)]
struct RouteFacts {
    resource: Resource,
    changes_state: bool,
}

/// The layer's state.
pub struct Audit {
    log: Arc<AuditLog>,
    auth: Arc<Auth>,
    /// By path template, then method: looked up without allocating.
    routes: HashMap<String, Vec<(Method, RouteFacts)>>,
}

impl Audit {
    pub fn new(log: Arc<AuditLog>, auth: Arc<Auth>) -> Self {
        let mut routes: HashMap<String, Vec<(Method, RouteFacts)>> = HashMap::new();
        for r in crate::routes::table() {
            routes.entry(r.path).or_default().push((
                r.method,
                RouteFacts {
                    resource: r.resource,
                    changes_state: r.changes_state,
                },
            ));
        }
        Audit { log, auth, routes }
    }
}

/// The identifiers a query or JSON body may carry; everything else is
/// skipped unread.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Ids {
    experiment_id: Option<Value>,
    experiment_name: Option<Value>,
    name: Option<Value>,
    version: Option<Value>,
    run_id: Option<Value>,
    run_uuid: Option<Value>,
    model_id: Option<Value>,
    username: Option<Value>,
    role_id: Option<Value>,
    webhook_id: Option<Value>,
    id: Option<Value>,
}

impl Ids {
    fn slot(&mut self, key: &str) -> Option<&mut Option<Value>> {
        Some(match key {
            "experiment_id" => &mut self.experiment_id,
            "experiment_name" => &mut self.experiment_name,
            "name" => &mut self.name,
            "version" => &mut self.version,
            "run_id" => &mut self.run_id,
            "run_uuid" => &mut self.run_uuid,
            "model_id" => &mut self.model_id,
            "username" => &mut self.username,
            "role_id" => &mut self.role_id,
            "webhook_id" => &mut self.webhook_id,
            "id" => &mut self.id,
            _ => return None,
        })
    }

    fn get(&mut self, key: &str) -> Option<String> {
        match self.slot(key)? {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The body's ids, completed by the query's.
    fn merge_query(&mut self, uri: &Uri) {
        let Some(q) = uri.query() else { return };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
        for (k, v) in pairs {
            if let Some(slot) = self.slot(&k)
                && slot.is_none()
            {
                *slot = Some(Value::String(v));
            }
        }
    }
}

/// The name a resource type has in the audit log.
fn kind(r: Resource) -> Option<&'static str> {
    Some(match r {
        Resource::Server => return None,
        Resource::Experiment => "experiment",
        Resource::Run => "run",
        Resource::LoggedModel => "logged_model",
        Resource::RegisteredModel => "registered_model",
        Resource::ModelVersion => "model_version",
        Resource::Artifact => "artifact",
        Resource::Webhook => "webhook",
        Resource::Event => "event",
        Resource::Pipeline => "pipeline",
        Resource::PipelineRun => "pipeline_run",
        Resource::Endpoint | Resource::Inference => "endpoint",
        Resource::Monitor => "monitor",
        Resource::Task => "task",
        Resource::User => "user",
    })
}

/// The fields naming an instance of a resource type, in order of preference.
fn keys(r: Resource) -> &'static [&'static str] {
    match r {
        Resource::Experiment => &["experiment_id", "experiment_name", "name"],
        Resource::Run => &["run_id", "run_uuid"],
        Resource::LoggedModel => &["model_id"],
        Resource::RegisteredModel | Resource::ModelVersion => &["name"],
        Resource::User => &["username", "role_id"],
        Resource::Webhook => &["webhook_id"],
        _ => &["name", "id"],
    }
}

/// What the request names: `run:1f2e…`, `model_version:churn/3`, the path
/// parameters for native routes, or the bare type when nothing names one.
fn resource(r: Resource, params: &[(String, String)], ids: &mut Ids) -> Option<String> {
    let kind = kind(r)?;
    let id = if params.is_empty() {
        let mut id = keys(r).iter().find_map(|k| ids.get(k));
        if let (Resource::ModelVersion, Some(name), Some(v)) = (r, &id, ids.get("version")) {
            id = Some(format!("{name}/{v}"));
        }
        id
    } else {
        Some(
            params
                .iter()
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join("/"),
        )
    };
    Some(truncate(&match id {
        Some(id) => format!("{kind}:{id}"),
        None => kind.to_string(),
    }))
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT_CHARS) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// What the request was, taken before it goes in.
struct Seen {
    method: Method,
    route: String,
    facts: Option<RouteFacts>,
    changes: bool,
    request_id: Option<String>,
    source: Option<IpAddr>,
    uri: Uri,
    params: Vec<(String, String)>,
    ids: Ids,
}

/// The layer (only mounted with authentication on).
pub async fn record(State(audit): State<Option<Arc<Audit>>>, req: Request, next: Next) -> Response {
    let Some(a) = audit else {
        return next.run(req).await;
    };
    let (req, mut seen) = match look(&a, req).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let denied = matches!(status, 401 | 403);
    let principal = resp.extensions().get::<Arc<Principal>>();
    let failure = resp.extensions().get::<LoginFailure>();
    let action = resp.extensions().get::<Action>();
    if let Some(p) = principal
        && resp.extensions().get::<BasicLogin>().is_some()
    {
        // A row of its own: the request may be recorded too.
        let mut login = seen.row(
            &a,
            status,
            Some(p.user.username.clone()),
            Some(p.method.as_str()),
            Some(truncate(&format!("user:{}", p.user.username))),
        );
        login.action = Some("login".into());
        seen.route.clone_from(&login.route);
        seen.request_id.clone_from(&login.request_id);
        a.log.record(login);
    }
    match (principal, failure) {
        (Some(p), _) if seen.changes || denied || action.is_some() => {
            let named = match action {
                Some(act) => Some(truncate(&act.resource)),
                None => named(&mut seen),
            };
            let actor = Some(p.user.username.clone());
            let mut row = seen.row(&a, status, actor, Some(p.method.as_str()), named);
            row.action = action.map(|act| act.name.to_string());
            a.log.record(row);
        }
        (Some(_), _) => {}
        (None, Some(f)) if !f.throttled => {
            let claimed = f.username.as_ref().map(|u| truncate(&format!("user:{u}")));
            a.log
                .record(seen.row(&a, status, None, Some(f.method.as_str()), claimed));
        }
        (None, _) if denied || status == 429 => {
            a.log.deny_anonymous(
                seen.source.map(|ip| ip.to_string()),
                status,
                seen.request_id.take(),
            );
        }
        (None, _) if seen.changes => {
            let named = named(&mut seen);
            a.log.record(seen.row(&a, status, None, None, named));
        }
        (None, _) => {}
    }
    resp
}

impl Seen {
    fn row(
        &mut self,
        a: &Audit,
        status: u16,
        actor: Option<String>,
        auth_method: Option<&str>,
        resource: Option<String>,
    ) -> NewAuditRow {
        NewAuditRow {
            time_ms: a.log.now_ms(),
            actor,
            auth_method: auth_method.map(str::to_string),
            source: self.source.map(|ip| ip.to_string()),
            method: self.method.to_string(),
            route: std::mem::take(&mut self.route),
            resource,
            status,
            request_id: self.request_id.take(),
            count: 1,
            action: None,
        }
    }
}

fn named(seen: &mut Seen) -> Option<String> {
    let facts = seen.facts?;
    seen.ids.merge_query(&seen.uri);
    resource(facts.resource, &seen.params, &mut seen.ids)
}

/// Notes what the request is and, for a small JSON body of a change, the
/// ids it names (the body is read and handed on).
async fn look(a: &Audit, req: Request) -> Result<(Request, Seen), Response> {
    let method = req.method().clone();
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let facts = template
        .and_then(|t| a.routes.get(t))
        .and_then(|methods| methods.iter().find(|(m, _)| *m == method))
        .map(|(_, f)| *f);
    let changes = match facts {
        Some(f) => f.changes_state,
        // Inference calls change nothing anyone audits.
        None => {
            !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
                && !req.uri().path().starts_with("/endpoints/")
        }
    };
    let route = template.map_or_else(|| truncate(req.uri().path()), str::to_string);
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let source = source_address(&a.auth, &req);
    let (mut parts, body) = req.into_parts();
    let params = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(p) => p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Err(_) => Vec::new(),
    };
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // Bounded by the body itself (hyper's from `Content-Length`): a body of
    // unknown length is never waited for here.
    let small = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_INSPECTED_BODY as u64);
    // Only for callers with credentials: an anonymous request is refused
    // unread, and so is not worth reading here either.
    let credentials = parts.headers.contains_key(header::AUTHORIZATION);
    let mut ids = Ids::default();
    let body = if changes && json && small && credentials && facts.is_some() {
        let bytes = axum::body::to_bytes(body, MAX_INSPECTED_BODY)
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("reading the request body: {e}"),
                )
                .into_response()
            })?;
        ids = serde_json::from_slice(&bytes).unwrap_or_default();
        Body::from(bytes)
    } else {
        body
    };
    let seen = Seen {
        method,
        route,
        facts,
        changes,
        request_id,
        source,
        uri: parts.uri.clone(),
        params,
        ids,
    };
    Ok((Request::from_parts(parts, body), seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_named_by_path_then_body_and_query() {
        let mut ids: Ids =
            serde_json::from_str(r#"{"run_id":"abc","metrics":[{"key":"x"}]}"#).unwrap();
        assert_eq!(
            resource(Resource::Run, &[], &mut ids).as_deref(),
            Some("run:abc")
        );
        let mut ids: Ids = serde_json::from_str(r#"{"name":"churn","version":3}"#).unwrap();
        assert_eq!(
            resource(Resource::ModelVersion, &[], &mut ids).as_deref(),
            Some("model_version:churn/3")
        );
        let mut ids = Ids::default();
        ids.merge_query(&Uri::from_static("/x?experiment_id=7&name=n"));
        assert_eq!(
            resource(Resource::Experiment, &[], &mut ids).as_deref(),
            Some("experiment:7")
        );
        let params = [("name".to_string(), "fraud".to_string())];
        assert_eq!(
            resource(Resource::Pipeline, &params, &mut Ids::default()).as_deref(),
            Some("pipeline:fraud")
        );
        assert_eq!(
            resource(Resource::Run, &[], &mut Ids::default()).as_deref(),
            Some("run")
        );
        assert_eq!(resource(Resource::Server, &[], &mut Ids::default()), None);
        assert_eq!(truncate(&"é".repeat(300)).chars().count(), MAX_TEXT_CHARS);
    }
}
