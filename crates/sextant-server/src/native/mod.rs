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
mod models;
mod monitors;
mod openapi;
mod pipelines;
mod tasks;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderMap, Method};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// The header naming who makes a change when the body does not say.
pub const ACTOR_HEADER: &str = "x-sextant-actor";

/// One native route. The table below is the only place routes are declared,
/// so the OpenAPI document can be checked against it.
pub(crate) struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

/// Every native route.
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/api/v1/openapi.json",
        handler: |m| on(m, openapi::document),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/models",
        handler: |m| on(m, models::list),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/models/{name}",
        handler: |m| on(m, models::show),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/models/{name}/versions/{version}",
        handler: |m| on(m, models::version),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/models/{name}/versions/{version}/approval",
        handler: |m| on(m, models::approve),
    },
    Route {
        method: Method::PUT,
        path: "/api/v1/models/{name}/aliases/{alias}",
        handler: |m| on(m, models::set_alias),
    },
    Route {
        method: Method::DELETE,
        path: "/api/v1/models/{name}/aliases/{alias}",
        handler: |m| on(m, models::delete_alias),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/events",
        handler: |m| on(m, events::list),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/pipelines",
        handler: |m| on(m, pipelines::list),
    },
    Route {
        method: Method::PUT,
        path: "/api/v1/pipelines/{name}",
        handler: |m| on(m, pipelines::put),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/pipelines/{name}",
        handler: |m| on(m, pipelines::show),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/pipelines/{name}/runs",
        handler: |m| on(m, pipelines::start),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/pipeline-runs",
        handler: |m| on(m, pipelines::list_runs),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/pipeline-runs/{id}",
        handler: |m| on(m, pipelines::show_run),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/pipeline-runs/{id}/cancel",
        handler: |m| on(m, pipelines::cancel),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/pipeline-runs/{id}/steps/{step}/cache",
        handler: |m| on(m, pipelines::explain_cache),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/pipeline-runs/{id}/retry",
        handler: |m| on(m, pipelines::retry),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/pipeline-runs/{id}/logs",
        handler: |m| on(m, pipelines::logs),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/endpoints",
        handler: |m| on(m, endpoints::list),
    },
    Route {
        method: Method::PUT,
        path: "/api/v1/endpoints/{name}",
        handler: |m| on(m, endpoints::put),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/endpoints/{name}",
        handler: |m| on(m, endpoints::show),
    },
    Route {
        method: Method::DELETE,
        path: "/api/v1/endpoints/{name}",
        handler: |m| on(m, endpoints::delete),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/endpoints/{name}/promote",
        handler: |m| on(m, endpoints::promote),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/endpoints/{name}/rollback",
        handler: |m| on(m, endpoints::rollback),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/endpoints/{name}/gateway-stats",
        handler: |m| on(m, endpoints::gateway_stats),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/endpoints/{name}/ground-truth",
        handler: |m| on(m, monitors::ground_truth),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/monitors",
        handler: |m| on(m, monitors::list),
    },
    Route {
        method: Method::PUT,
        path: "/api/v1/monitors/{name}",
        handler: |m| on(m, monitors::put),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/monitors/{name}",
        handler: |m| on(m, monitors::show),
    },
    Route {
        method: Method::DELETE,
        path: "/api/v1/monitors/{name}",
        handler: |m| on(m, monitors::delete),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/monitors/{name}/runs",
        handler: |m| on(m, monitors::run),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/monitors/{name}/runs",
        handler: |m| on(m, monitors::runs),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/monitor-runs/{id}",
        handler: |m| on(m, monitors::show_run),
    },
    Route {
        method: Method::GET,
        path: "/api/v1/monitor-runs/{id}/files/{file}",
        handler: |m| on(m, monitors::file),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/tasks/claim",
        handler: |m| on(m, tasks::claim),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/tasks/{id}/heartbeat",
        handler: |m| on(m, tasks::heartbeat),
    },
    Route {
        method: Method::POST,
        path: "/api/v1/tasks/{id}/outcome",
        handler: |m| on(m, tasks::outcome),
    },
];

/// Every native route, mounted.
pub fn routes() -> Router<AppState> {
    ROUTES.iter().fold(Router::new(), |router, r| {
        let filter = MethodFilter::try_from(r.method.clone())
            .unwrap_or_else(|_| panic!("{} is not a routable method", r.method));
        router.route(r.path, (r.handler)(filter))
    })
}

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

/// A JSON request body. Read as bytes so that a missing `Content-Type` (curl
/// without `-H`) is not an error and every mistake is a JSON 400.
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

/// Who makes a change: the body's `actor`, else the `X-Sextant-Actor`
/// header, else `anonymous`. (Authentication will replace both.)
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

/// Milliseconds since the Unix epoch as RFC 3339 in UTC, with milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    // Howard Hinnant's civil_from_days: exact for the proleptic Gregorian calendar.
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

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
