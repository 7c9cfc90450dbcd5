//! `/api/v1/endpoints…`: serving endpoints — apply a definition (a changed
//! model starts a rollout), show, list, delete, promote, roll back. Their
//! data plane is `/endpoints/{name}/…` (`serving::endpoints_router`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{path, rfc3339};
use crate::error::ApiError;
use crate::state::AppState;
use sextant_serving::controller::EndpointView;
use sextant_serving::endpoints::config::EndpointSpec;

fn body(v: EndpointView) -> Value {
    let stats: Vec<Value> = v
        .stats
        .iter()
        .map(|s| {
            let ms = |q: f64| s.latency.quantile(q).map(|x| x * 1000.0);
            json!({
                "variant": s.name,
                "shadow": s.shadow,
                "requests": s.requests,
                "errors": s.errors,
                "client_errors": s.client_errors,
                "rejected": s.rejected,
                "in_flight": s.in_flight,
                "p50_ms": ms(0.5),
                "p99_ms": ms(0.99),
            })
        })
        .collect();
    // The rollout in progress with its live counters and the time until it moves.
    let mut rollout = json!(v.state.rollout);
    if let (Some(r), Some(left)) = (rollout.as_object_mut(), v.time_left_ms) {
        r.insert("time_left_ms".into(), json!(left));
    }
    let traffic: Vec<Value> = v
        .state
        .traffic
        .iter()
        .map(|t| {
            let mut entry = json!(t);
            entry["time_rfc3339"] = json!(rfc3339(t.time));
            entry
        })
        .collect();
    let mut out = json!({
        "name": v.name,
        "status": v.state.status,
        "spec": v.spec,
        "deployed": v.state.deployed,
        "shadow": v.state.shadow,
        "rollout": rollout,
        "past_rollouts": v.state.past_rollouts,
        "traffic": traffic,
        "message": v.state.message,
        "stats": stats,
        "url": format!("/endpoints/{}/invocations", v.name),
        "created_time": v.created_time,
        "created_time_rfc3339": rfc3339(v.created_time),
        "updated_time": v.updated_time,
        "updated_time_rfc3339": rfc3339(v.updated_time),
    });
    if !v.warnings.is_empty() {
        out["warnings"] = json!(v.warnings);
    }
    out
}

/// `GET /api/v1/endpoints`.
pub async fn list(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = st.endpoints.list(&st.endpoint_deps()).await?;
    Ok(Json(
        json!({ "endpoints": all.into_iter().map(body).collect::<Vec<_>>() }),
    ))
}

/// `PUT /api/v1/endpoints/{name}`: creates (201) or updates (200) from a JSON definition.
pub async fn put(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = path(p)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::invalid("the endpoint definition is not UTF-8"))?;
    let spec = EndpointSpec::parse(&format!("{name}.yaml"), text)?;
    let (created, view) = st.endpoints.apply(&st.endpoint_deps(), &name, spec).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body(view))))
}

/// `GET /api/v1/endpoints/{name}`.
pub async fn show(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    Ok(Json(body(
        st.endpoints.view(&st.endpoint_deps(), &name).await?,
    )))
}

/// `DELETE /api/v1/endpoints/{name}`.
pub async fn delete(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    st.endpoints.delete(&st.endpoint_deps(), &name).await?;
    Ok(Json(json!({})))
}

/// A separate gateway's report: its id and each variant's cumulative counters.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayReport {
    gateway: String,
    variants: Vec<sextant_serving::VariantSnapshot>,
}

/// `POST /api/v1/endpoints/{name}/gateway-stats`: what a `sextant gateway` serving the
/// endpoint answered, so the rollout alarms judge its traffic too.
pub async fn gateway_stats(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let name = path(p)?;
    let report: GatewayReport = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("gateway stats: {e}")))?;
    st.endpoints
        .report(&st.endpoint_deps(), &name, &report.gateway, report.variants)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/endpoints/{name}/traffic`: each variant's requests, error
/// and rejected rates and latency between consecutive samples of the last
/// hour (kept by this server's controller, every gateway's counters summed).
pub async fn traffic(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    let (since, variants) = st.endpoints.traffic(&st.endpoint_deps(), &name).await?;
    let variants: Vec<Value> = variants
        .into_iter()
        .map(|(variant, points)| {
            let shadow = points.last().is_some_and(|p| p.counters.shadow);
            let points: Vec<Value> = points
                .iter()
                .map(|p| {
                    let c = &p.counters;
                    let secs = (p.end_ms - p.start_ms) as f64 / 1000.0;
                    let answered = c.answered();
                    let ratio = |n: u64, of: u64| (of > 0).then(|| n as f64 / of as f64);
                    let ms = |q: f64| c.latency.quantile(q).map(|x| x * 1000.0);
                    json!({
                        "start_ms": p.start_ms,
                        "end_ms": p.end_ms,
                        "end_rfc3339": rfc3339(p.end_ms),
                        "requests": c.requests,
                        "errors": c.errors,
                        "client_errors": c.client_errors,
                        "rejected": c.rejected,
                        "requests_per_s": if secs > 0.0 { c.requests as f64 / secs } else { 0.0 },
                        "error_rate": ratio(c.errors, answered),
                        "rejected_rate": ratio(c.rejected, c.requests),
                        "p50_ms": ms(0.5),
                        "p99_ms": ms(0.99),
                    })
                })
                .collect();
            json!({ "variant": variant, "shadow": shadow, "points": points })
        })
        .collect();
    Ok(Json(json!({
        "name": name,
        "sample_every_ms": sextant_serving::controller::TRAFFIC_SAMPLE_EVERY_MS,
        "samples_kept": sextant_serving::controller::TRAFFIC_SAMPLES_KEPT,
        "since": since,
        "since_rfc3339": since.map(rfc3339),
        "variants": variants,
    })))
}

/// `POST /api/v1/endpoints/{name}/promote`.
pub async fn promote(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    Ok(Json(body(
        st.endpoints.promote(&st.endpoint_deps(), &name).await?,
    )))
}

/// `POST /api/v1/endpoints/{name}/rollback`.
pub async fn rollback(
    State(st): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = path(p)?;
    Ok(Json(body(
        st.endpoints.rollback(&st.endpoint_deps(), &name).await?,
    )))
}
