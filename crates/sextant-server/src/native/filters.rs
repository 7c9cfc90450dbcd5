//! `GET /api/v1/filters/check`: whether a search filter parses for an
//! entity, and if not, the message the search would answer and where in
//! the filter it points. The searches themselves (MLflow's REST API) answer
//! only MLflow's message; a filter box uses this to mark the spot.

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use serde::{Deserialize, Serialize};
use sextant_core::search::{SearchKind, parse_filter_located};

use super::query;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    kind: String,
    filter: String,
}

#[derive(Serialize)]
pub struct FilterCheck {
    valid: bool,
    /// The search's error message, as `runs/search` and its kin answer it.
    message: Option<String>,
    /// Where the filter is wrong: `start..end` in characters (code points) from 0.
    start: Option<usize>,
    end: Option<usize>,
}

/// `GET /api/v1/filters/check?kind=runs|experiments|registered_models|model_versions|logged_models&filter=`.
pub async fn check(
    q: Result<Query<CheckQuery>, QueryRejection>,
) -> Result<Json<FilterCheck>, ApiError> {
    let q = query(q)?;
    let kind = match q.kind.as_str() {
        "runs" => SearchKind::Runs,
        "experiments" => SearchKind::Experiments,
        "registered_models" => SearchKind::RegisteredModels,
        "model_versions" => SearchKind::ModelVersions,
        "logged_models" => SearchKind::LoggedModels,
        other => {
            return Err(ApiError::invalid(format!(
                "invalid kind '{other}': it must be runs, experiments, registered_models, \
                 model_versions or logged_models"
            )));
        }
    };
    Ok(Json(match parse_filter_located(kind, &q.filter) {
        Ok(_) => FilterCheck {
            valid: true,
            message: None,
            start: None,
            end: None,
        },
        Err(e) => FilterCheck {
            valid: false,
            message: Some(e.error.to_string()),
            start: Some(e.start),
            end: Some(e.end),
        },
    }))
}
