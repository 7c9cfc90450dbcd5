//! Sextant's native API under `/api/v1/`: what MLflow lacks (approvals, the
//! events feed), as plain JSON with `{"error_code", "message"}` errors and an
//! OpenAPI document at `/api/v1/openapi.json`.
//!
//! Wire conventions: snake_case fields, integers as JSON numbers, every time
//! twice (`<name>` in epoch milliseconds and `<name>_rfc3339`), absent values
//! as `null` rather than missing fields.

mod convert;
mod endpoints;
mod events;
mod filters;
mod models;
mod monitors;
mod openapi;
mod pipelines;
mod runs;
mod tasks;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderMap, Method};
use axum::routing::on;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::routes::{Body, Capability as C, Resource as R, Route};

/// The header naming who makes a change when the body does not say.
pub const ACTOR_HEADER: &str = "x-sextant-actor";

/// Every native route: the router and the OpenAPI check are both built from
/// this table (see `crate::routes`).
pub(crate) const ROUTES: &[Route] = &[
    Route::get("/api/v1/openapi.json", R::Server, |m| {
        on(m, openapi::document)
    }),
    Route::get("/api/v1/models", R::RegisteredModel, |m| {
        on(m, models::list)
    }),
    Route::get("/api/v1/models/{name}", R::RegisteredModel, |m| {
        on(m, models::show)
    }),
    Route::get(
        "/api/v1/models/{name}/versions/{version}",
        R::ModelVersion,
        |m| on(m, models::version),
    ),
    Route::get(
        "/api/v1/models/{name}/versions/{version}/lineage",
        R::ModelVersion,
        |m| on(m, models::lineage),
    ),
    Route::json(
        Method::POST,
        "/api/v1/models/{name}/versions/{version}/approval",
        R::ModelVersion,
        C::Manage,
        |m| on(m, models::approve),
    ),
    Route::json(
        Method::PATCH,
        "/api/v1/models/{name}/approval-settings",
        R::RegisteredModel,
        C::Manage,
        |m| on(m, models::set_approval_settings),
    ),
    Route::json(
        Method::PUT,
        "/api/v1/models/{name}/aliases/{alias}",
        R::RegisteredModel,
        C::Manage,
        |m| on(m, models::set_alias),
    ),
    Route::json(
        Method::DELETE,
        "/api/v1/models/{name}/aliases/{alias}",
        R::RegisteredModel,
        C::Manage,
        |m| on(m, models::delete_alias),
    ),
    Route::get("/api/v1/runs/keys", R::Experiment, |m| on(m, runs::keys)),
    Route::get("/api/v1/filters/check", R::Server, |m| {
        on(m, filters::check)
    }),
    Route::get("/api/v1/runs/metric-summaries", R::Run, |m| {
        on(m, runs::metric_summaries)
    }),
    Route::get("/api/v1/events", R::Event, |m| on(m, events::list)),
    Route::get("/api/v1/pipelines", R::Pipeline, |m| on(m, pipelines::list)),
    Route::json(
        Method::PUT,
        "/api/v1/pipelines/{name}",
        R::Pipeline,
        C::Edit,
        |m| on(m, pipelines::put),
    )
    .with_body(Body::JsonOrYaml),
    Route::get("/api/v1/pipelines/{name}", R::Pipeline, |m| {
        on(m, pipelines::show)
    }),
    Route::json(
        Method::POST,
        "/api/v1/pipelines/{name}/runs",
        R::Pipeline,
        C::Edit,
        |m| on(m, pipelines::start),
    ),
    Route::get("/api/v1/pipeline-runs", R::PipelineRun, |m| {
        on(m, pipelines::list_runs)
    }),
    Route::get("/api/v1/pipeline-runs/{id}", R::PipelineRun, |m| {
        on(m, pipelines::show_run)
    }),
    Route::json(
        Method::POST,
        "/api/v1/pipeline-runs/{id}/cancel",
        R::PipelineRun,
        C::Edit,
        |m| on(m, pipelines::cancel),
    ),
    Route::get(
        "/api/v1/pipeline-runs/{id}/steps/{step}/cache",
        R::PipelineRun,
        |m| on(m, pipelines::explain_cache),
    ),
    Route::json(
        Method::POST,
        "/api/v1/pipeline-runs/{id}/retry",
        R::PipelineRun,
        C::Edit,
        |m| on(m, pipelines::retry),
    ),
    Route::get("/api/v1/pipeline-runs/{id}/logs", R::PipelineRun, |m| {
        on(m, pipelines::logs)
    }),
    Route::get("/api/v1/endpoints", R::Endpoint, |m| on(m, endpoints::list)),
    Route::json(
        Method::PUT,
        "/api/v1/endpoints/{name}",
        R::Endpoint,
        C::Edit,
        |m| on(m, endpoints::put),
    )
    .with_body(Body::JsonOrYaml),
    Route::get("/api/v1/endpoints/{name}", R::Endpoint, |m| {
        on(m, endpoints::show)
    }),
    Route::json(
        Method::DELETE,
        "/api/v1/endpoints/{name}",
        R::Endpoint,
        C::Manage,
        |m| on(m, endpoints::delete),
    ),
    Route::json(
        Method::POST,
        "/api/v1/endpoints/{name}/promote",
        R::Endpoint,
        C::Manage,
        |m| on(m, endpoints::promote),
    ),
    Route::json(
        Method::POST,
        "/api/v1/endpoints/{name}/rollback",
        R::Endpoint,
        C::Manage,
        |m| on(m, endpoints::rollback),
    ),
    Route::get("/api/v1/endpoints/{name}/traffic", R::Endpoint, |m| {
        on(m, endpoints::traffic)
    }),
    Route::json(
        Method::POST,
        "/api/v1/endpoints/{name}/gateway-stats",
        R::Endpoint,
        C::Work,
        |m| on(m, endpoints::gateway_stats),
    ),
    Route::json(
        Method::POST,
        "/api/v1/endpoints/{name}/ground-truth",
        R::Endpoint,
        C::Edit,
        |m| on(m, monitors::ground_truth),
    ),
    Route::get("/api/v1/monitors", R::Monitor, |m| on(m, monitors::list)),
    Route::json(
        Method::PUT,
        "/api/v1/monitors/{name}",
        R::Monitor,
        C::Edit,
        |m| on(m, monitors::put),
    )
    .with_body(Body::JsonOrYaml),
    Route::get("/api/v1/monitors/{name}", R::Monitor, |m| {
        on(m, monitors::show)
    }),
    Route::json(
        Method::DELETE,
        "/api/v1/monitors/{name}",
        R::Monitor,
        C::Manage,
        |m| on(m, monitors::delete),
    ),
    Route::json(
        Method::POST,
        "/api/v1/monitors/{name}/runs",
        R::Monitor,
        C::Edit,
        |m| on(m, monitors::run),
    ),
    Route::get("/api/v1/monitors/{name}/runs", R::Monitor, |m| {
        on(m, monitors::runs)
    }),
    Route::get("/api/v1/monitor-runs/{id}", R::Monitor, |m| {
        on(m, monitors::show_run)
    }),
    Route::get("/api/v1/monitor-runs/{id}/files/{file}", R::Monitor, |m| {
        on(m, monitors::file)
    }),
    Route::json(Method::POST, "/api/v1/tasks/claim", R::Task, C::Work, |m| {
        on(m, tasks::claim)
    }),
    Route::json(
        Method::POST,
        "/api/v1/tasks/{id}/heartbeat",
        R::Task,
        C::Work,
        |m| on(m, tasks::heartbeat),
    ),
    Route::json(
        Method::POST,
        "/api/v1/tasks/{id}/outcome",
        R::Task,
        C::Work,
        |m| on(m, tasks::outcome),
    ),
];

/// Query parameters, with a malformed query answered as a JSON 400.
fn query<T>(q: Result<axum::extract::Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|q| q.0)
        .map_err(|e| ApiError::invalid(format!("invalid query: {}", e.body_text())))
}

/// Path parameters, with undecodable ones answered as a JSON 400.
fn path<T>(p: Result<axum::extract::Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|p| p.0)
        .map_err(|e| ApiError::invalid(format!("invalid path: {}", e.body_text())))
}

/// A JSON request body, read as bytes so that every mistake is a JSON 400.
/// (The request guard has checked its `Content-Type` already.)
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))
}

/// A version number from the path: a positive integer.
fn version_number(s: &str) -> Result<i64, ApiError> {
    match s.parse::<i64>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(ApiError::invalid(format!(
            "invalid version '{s}': a version is a positive integer"
        ))),
    }
}

/// Who makes a change with authentication off: the body's `actor`, else
/// the `X-Sextant-Actor` header, else `anonymous`. (With it on, the
/// authenticated caller is, and both are ignored.)
fn actor(from_body: Option<String>, headers: &HeaderMap) -> Result<String, ApiError> {
    let given = match from_body {
        Some(a) => Some(a),
        None => match headers.get(ACTOR_HEADER) {
            None => None,
            Some(h) => Some(
                h.to_str()
                    .map_err(|_| ApiError::invalid("the X-Sextant-Actor header is not ASCII"))?
                    .to_string(),
            ),
        },
    };
    let actor = given.as_deref().map(str::trim).unwrap_or_default();
    if actor.len() > 256 {
        return Err(ApiError::invalid("actor is longer than 256 characters"));
    }
    Ok(if actor.is_empty() {
        "anonymous".to_string()
    } else {
        actor.to_string()
    })
}

/// Moved to `sextant-core` (webhook payloads use it too).
pub(crate) use sextant_core::clock::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_prefers_body_then_header_then_anonymous() {
        let mut h = HeaderMap::new();
        assert_eq!(actor(None, &h).unwrap(), "anonymous");
        h.insert(ACTOR_HEADER, "carol".parse().unwrap());
        assert_eq!(actor(None, &h).unwrap(), "carol");
        assert_eq!(actor(Some("dave".into()), &h).unwrap(), "dave");
        assert_eq!(actor(Some("  ".into()), &h).unwrap(), "anonymous");
        assert!(actor(Some("x".repeat(257)), &h).is_err());
    }

    #[test]
    fn versions_are_positive_integers() {
        assert_eq!(version_number("3").unwrap(), 3);
        for bad in ["0", "-1", "x", "1.5", ""] {
            assert!(version_number(bad).is_err(), "{bad}");
        }
    }
}
