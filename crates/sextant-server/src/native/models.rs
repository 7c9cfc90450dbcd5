//! `/api/v1/models…`: registered models, their versions, approvals and aliases.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use sextant_core::registry::{
    Approval, ApprovalSettingsUpdate, ApprovalStatus, FourEyes, ModelVersion,
};
use sextant_core::search::{
    Comparator, Comparison, Entity, Filter, Identifier, SearchKind, Value, parse_filter,
};
use sextant_store::{MetaStore, ModelVersionSearch, RegisteredModelSearch, StoreError, token};

use super::convert::{self, Model, ModelDetail, Version};
use super::{actor, body, path, query, version_number};
use crate::auth::approvals::{self, Caller};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The page size of a model listing unless the client asks otherwise.
const DEFAULT_PAGE: u64 = 100;
/// The largest page of a model listing.
const MAX_PAGE: u64 = 1000;
/// Versions are read in pages of this size when a model is shown whole.
const VERSION_BATCH: u64 = 1000;

#[derive(Deserialize)]
pub struct ListQuery {
    filter: Option<String>,
    max_results: Option<u64>,
    page_token: Option<String>,
}

#[derive(Serialize)]
pub struct ModelPage {
    models: Vec<Model>,
    next_page_token: Option<String>,
}

/// `GET /api/v1/models`: one page of registered models, by name.
pub async fn list(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ModelPage>, ApiError> {
    let q = query(q)?;
    let max_results = match q.max_results {
        None => DEFAULT_PAGE,
        Some(n @ 1..=MAX_PAGE) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "invalid max_results {n}: it must be between 1 and {MAX_PAGE}"
            )));
        }
    };
    let search = RegisteredModelSearch {
        filter: match q.filter.as_deref() {
            Some(f) if !f.trim().is_empty() => parse_filter(SearchKind::RegisteredModels, f)?,
            _ => Filter::default(),
        },
        order_by: Vec::new(),
        max_results,
        offset: match q.page_token.as_deref() {
            Some(t) if !t.is_empty() => token::decode_offset(t)?,
            _ => 0,
        },
    };
    let page = st.db(move |s| s.search_registered_models(&search)).await?;
    Ok(Json(ModelPage {
        models: page.items.into_iter().map(convert::model).collect(),
        next_page_token: page.next_offset.map(token::encode_offset),
    }))
}

/// `GET /api/v1/models/{name}`: a model with every version.
pub async fn show(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<ModelDetail>, ApiError> {
    let name = path(p)?;
    let (model, versions) = st
        .db(move |s| Ok((s.get_registered_model(&name)?, all_versions(s, &name)?)))
        .await?;
    Ok(Json(convert::model_detail(model, versions)))
}

/// Every version of a model, read page by page.
fn all_versions(s: &dyn MetaStore, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
    let mut search = ModelVersionSearch {
        filter: Filter {
            clauses: vec![Comparison {
                ident: Identifier::new(Entity::Attribute, "name"),
                op: Comparator::Eq,
                value: Value::Str(name.into()),
            }],
        },
        order_by: Vec::new(),
        max_results: VERSION_BATCH,
        offset: 0,
    };
    let mut versions = Vec::new();
    loop {
        let page = s.search_model_versions(&search)?;
        versions.extend(page.items);
        match page.next_offset {
            Some(next) => search.offset = next,
            None => return Ok(versions),
        }
    }
}

/// `GET /api/v1/models/{name}/versions/{version}`.
pub async fn version(
    State(st): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Version>, ApiError> {
    let (name, version) = path(p)?;
    let version = version_number(&version)?;
    let v = st.db(move |s| s.get_model_version(&name, version)).await?;
    Ok(Json(convert::version(v)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalRequest {
    status: String,
    comment: Option<String>,
    /// Who decides, with authentication off; ignored with it on (the
    /// caller decides).
    actor: Option<String>,
    /// Replace a decision already made (approved or rejected).
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/models/{name}/versions/{version}/approval`: records a
/// decision; a version already decided is a 409 unless `force`. With
/// authentication on the decision is the caller's, and four-eyes applies
/// (`auth::approvals`).
pub async fn approve(
    State(st): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    caller: Caller,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Json<Version>, ApiError> {
    let (name, version) = path(p)?;
    let version = version_number(&version)?;
    let req: ApprovalRequest = body(&raw)?;
    let status = ApprovalStatus::parse(&req.status)?;
    let decider = match &caller.0 {
        Some(p) => approvals::decider(p)?,
        None => actor(req.actor, &headers)?,
    };
    // The store checks four-eyes in the transaction that records the decision.
    let four_eyes = match caller.0 {
        Some(_) => FourEyes::Held,
        None => FourEyes::Off,
    };
    let approval = Approval {
        status,
        actor: Some(decider),
        time: None,
        comment: req.comment.filter(|c| !c.trim().is_empty()),
    };
    let v = st
        .db(move |s| s.set_model_version_approval(&name, version, &approval, req.force, four_eyes))
        .await
        .map_err(|e| match e.code {
            ErrorCode::InvalidState => ApiError::new(ErrorCode::ResourceConflict, e.message),
            _ => e,
        })?;
    Ok(Json(convert::version(v)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalSettingsRequest {
    require_distinct_approver: Option<bool>,
    allow_pipeline_approval: Option<bool>,
}

/// `PATCH /api/v1/models/{name}/approval-settings`: changes the settings
/// the body names, keeps the others; answers them all.
pub async fn set_approval_settings(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    raw: Bytes,
) -> Result<Json<convert::ApprovalSettingsWire>, ApiError> {
    let name = path(p)?;
    let req: ApprovalSettingsRequest = body(&raw)?;
    let update = ApprovalSettingsUpdate {
        require_distinct_approver: req.require_distinct_approver,
        allow_pipeline_approval: req.allow_pipeline_approval,
    };
    let m = st
        .db(move |s| s.set_registered_model_approval_settings(&name, &update))
        .await?;
    Ok(Json(convert::approval_settings(m.approval_settings)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasRequest {
    version: i64,
}

#[derive(Serialize)]
pub struct AliasWire {
    name: String,
    alias: String,
    version: i64,
}

/// `PUT /api/v1/models/{name}/aliases/{alias}`: points an alias at a version.
pub async fn set_alias(
    State(st): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    raw: Bytes,
) -> Result<Json<AliasWire>, ApiError> {
    let (name, alias) = path(p)?;
    let req: AliasRequest = body(&raw)?;
    let version = version_number(&req.version.to_string())?;
    let (n, a) = (name.clone(), alias.clone());
    st.db(move |s| s.set_registered_model_alias(&n, &a, version))
        .await?;
    Ok(Json(AliasWire {
        name,
        alias,
        version,
    }))
}

/// `DELETE /api/v1/models/{name}/aliases/{alias}`: removes an alias.
pub async fn delete_alias(
    State(st): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let (name, alias) = path(p)?;
    st.db(move |s| s.delete_registered_model_alias(&name, &alias))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/models/{name}/versions/{version}/lineage`: where a version
/// came from and where it serves, in one answer — the run that logged it,
/// the pipeline run and step behind that run, the event that started the
/// pipeline, the monitor run behind that event, and the endpoints whose
/// variants (stable, in rollout, or shadow) serve it now.
pub async fn lineage(
    State(st): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (name, version) = path(p)?;
    let version = version_number(&version)?;
    let n = name.clone();
    let found = st.db(move |s| origins(s, &n, version)).await?;
    let serving: Vec<serde_json::Value> = st
        .endpoints
        .list(&st.endpoint_deps())
        .await?
        .into_iter()
        .filter_map(|e| {
            let serves = |d: &sextant_serving::endpoints::rollout::Deployed| {
                d.model.as_deref() == Some(name.as_str()) && d.version == Some(version)
            };
            let mut variants: Vec<String> = e
                .state
                .deployed
                .iter()
                .filter(|(_, d)| serves(d))
                .map(|(v, _)| v.clone())
                .collect();
            if let Some(r) = e.state.rollout.as_ref().filter(|r| serves(&r.to)) {
                variants.push(format!("{} (rollout to {}%)", r.variant, r.traffic_percent));
            }
            if e.state.shadow.as_ref().is_some_and(serves) {
                variants.push("shadow".into());
            }
            (!variants.is_empty()).then(|| {
                serde_json::json!({
                    "name": e.name, "status": e.state.status, "variants": variants,
                })
            })
        })
        .collect();
    let mut out = found;
    out["endpoints"] = serde_json::Value::Array(serving);
    // Links a caller may not read are emptied by the authorization layer,
    // which names them here.
    out["withheld"] = serde_json::json!([]);
    Ok(Json(out))
}

/// The store's half of a version's lineage. Links that no longer resolve
/// (a deleted run, a pruned event) are left out rather than failing.
fn origins(s: &dyn MetaStore, name: &str, version: i64) -> Result<serde_json::Value, StoreError> {
    use serde_json::json;
    let v = s.get_model_version(name, version)?;
    let vtag = |k: &str| v.tags.iter().find(|t| t.key == k).map(|t| t.value.clone());
    let run = v.run_id.as_deref().and_then(|id| s.get_run(id).ok());
    let rtag = |k: &str| {
        run.as_ref()
            .and_then(|r| r.data.tags.iter().find(|t| t.key == k))
            .map(|t| t.value.clone())
    };
    let pipeline_run = vtag("sextant.pipelineRun")
        .or_else(|| rtag("sextant.pipelineRun"))
        .and_then(|id| s.get_pipeline_run(&id).ok());
    let event_id = pipeline_run
        .as_ref()
        .and_then(|p| p.trigger_event)
        .or_else(|| vtag("sextant.triggerEvent").and_then(|e| e.parse().ok()));
    let event = match event_id {
        Some(id) => s
            .events_after(id - 1, &[], 1)?
            .into_iter()
            .find(|e| e.id == id),
        None => None,
    };
    let monitor_run = vtag("sextant.monitorRun")
        .or_else(|| {
            let e = event.as_ref().filter(|e| e.kind.starts_with("monitor."))?;
            let payload: serde_json::Value = serde_json::from_str(&e.payload).ok()?;
            payload["run"].as_str().map(str::to_string)
        })
        .and_then(|id| s.get_monitor_run(&id).ok());
    Ok(json!({
        "model_version": { "name": v.name, "version": v.version },
        "run": run.as_ref().map(|r| json!({
            "run_id": r.info.run_id,
            "experiment_id": r.info.experiment_id.to_string(),
            "run_name": r.info.run_name,
        })),
        "step": rtag("sextant.step"),
        "pipeline_run": pipeline_run.map(|p| json!({
            "id": p.id,
            "pipeline": p.pipeline,
            "status": p.status.as_str(),
            "trigger": p.trigger_kind.as_str(),
        })),
        "event": event.map(|e| json!({
            "id": e.id, "kind": e.kind, "subject": e.subject, "time": e.time,
        })),
        "monitor_run": monitor_run.map(|m| json!({
            "id": m.id,
            "monitor": m.monitor,
            "status": m.status.as_str(),
            "started_time": m.started_time,
        })),
    }))
}
