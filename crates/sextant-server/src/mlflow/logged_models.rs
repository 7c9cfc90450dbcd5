//! MLflow 3 logged-model RPCs (`/logged-models…`), which every
//! `mlflow.<flavor>.log_model` call needs.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::on;
use sextant_core::entities::{LoggedModelStatus, NewLoggedModel};
use sextant_core::search::{SearchKind, parse_filter};
use sextant_store::LoggedModelSearch;

use super::convert;
use super::wire::{Fields, Obj, Reply, empty, invalid_value, reply};
use super::{experiment_id, max_results, next_page_token, page_offset};
use crate::error::ApiError;
use crate::routes::{Capability as C, Resource as R, Route};
use crate::state::AppState;

/// The REST default of `max_results` (proto2 default of the request message).
const DEFAULT_MODELS_PAGE: u64 = 50;
/// The largest page of logged models.
const MAX_MODELS_PAGE: u64 = 50_000;

pub(super) const ROUTES: &[Route] = &[
    Route::json(
        Method::POST,
        "/logged-models",
        R::Experiment,
        C::Edit,
        |m| on(m, create),
    ),
    Route::json(
        Method::POST,
        "/logged-models/search",
        R::LoggedModel,
        C::Read,
        |m| on(m, search),
    ),
    Route::get("/logged-models/{model_id}", R::LoggedModel, |m| {
        on(m, get_model)
    }),
    Route::json(
        Method::PATCH,
        "/logged-models/{model_id}",
        R::LoggedModel,
        C::Edit,
        |m| on(m, finalize),
    ),
    Route::json(
        Method::DELETE,
        "/logged-models/{model_id}",
        R::LoggedModel,
        C::Manage,
        |m| on(m, delete_model),
    ),
    Route::json(
        Method::PATCH,
        "/logged-models/{model_id}/tags",
        R::LoggedModel,
        C::Edit,
        |m| on(m, set_tags),
    ),
    Route::json(
        Method::DELETE,
        "/logged-models/{model_id}/tags/{tag_key}",
        R::LoggedModel,
        C::Edit,
        |m| on(m, delete_tag),
    ),
    Route::json(
        Method::POST,
        "/logged-models/{model_id}/params",
        R::LoggedModel,
        C::Edit,
        |m| on(m, log_params),
    ),
];

async fn create(State(st): State<AppState>, f: Fields) -> Reply {
    let new = NewLoggedModel {
        experiment_id: experiment_id(&f.req_str("experiment_id")?)?,
        name: f.opt_str("name")?.filter(|n| !n.is_empty()),
        model_type: f.opt_str("model_type")?.filter(|n| !n.is_empty()),
        source_run_id: f.opt_str("source_run_id")?.filter(|n| !n.is_empty()),
        params: f.tags("params")?,
        tags: f.tags("tags")?,
    };
    let model = st.db(move |s| s.create_logged_model(&new)).await?;
    reply(Obj::new().set("model", convert::logged_model(&model)))
}

async fn get_model(State(st): State<AppState>, Path(id): Path<String>, f: Fields) -> Reply {
    let allow_deleted = f.opt_bool("allow_deleted")?.unwrap_or(false);
    let model = st
        .db(move |s| s.get_logged_model(&id, allow_deleted))
        .await?;
    reply(Obj::new().set("model", convert::logged_model(&model)))
}

async fn finalize(State(st): State<AppState>, Path(id): Path<String>, f: Fields) -> Reply {
    let raw = f
        .opt_enum("status")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| f.missing("status"))?;
    let status = LoggedModelStatus::parse(&raw)
        .ok_or_else(|| invalid_value("status", &serde_json::Value::from(raw.as_str())))?;
    let model = st.db(move |s| s.finalize_logged_model(&id, status)).await?;
    reply(Obj::new().set("model", convert::logged_model(&model)))
}

async fn delete_model(State(st): State<AppState>, Path(id): Path<String>) -> Reply {
    st.db(move |s| s.delete_logged_model(&id)).await?;
    empty()
}

async fn set_tags(State(st): State<AppState>, Path(id): Path<String>, f: Fields) -> Reply {
    let tags = f.tags("tags")?;
    st.db(move |s| s.set_logged_model_tags(&id, &tags)).await?;
    empty()
}

async fn delete_tag(State(st): State<AppState>, Path((id, key)): Path<(String, String)>) -> Reply {
    st.db(move |s| s.delete_logged_model_tag(&id, &key)).await?;
    empty()
}

async fn log_params(State(st): State<AppState>, Path(id): Path<String>, f: Fields) -> Reply {
    let params = f.tags("params")?;
    st.db(move |s| s.log_logged_model_params(&id, &params))
        .await?;
    empty()
}

async fn search(State(st): State<AppState>, f: Fields) -> Reply {
    let experiment_ids: Vec<i64> = f
        .str_list("experiment_ids")?
        .iter()
        .map(|e| experiment_id(e))
        .collect::<Result<_, _>>()?;
    if experiment_ids.is_empty() {
        return Err(ApiError::missing("experiment_ids"));
    }
    if f.has("datasets") && !f.messages("datasets")?.is_empty() {
        return Err(ApiError::not_implemented(
            "Scoping logged-model metric filters by dataset",
        ));
    }
    let order_by = f
        .messages("order_by")?
        .iter()
        .map(|o| {
            Ok((
                o.req_str("field_name")?,
                o.opt_bool("ascending")?.unwrap_or(true),
            ))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let q = LoggedModelSearch {
        experiment_ids,
        filter: parse_filter(
            SearchKind::LoggedModels,
            &f.opt_str("filter")?.unwrap_or_default(),
        )
        .map_err(ApiError::from)?,
        order_by,
        max_results: max_results(&f, "max_results", DEFAULT_MODELS_PAGE, MAX_MODELS_PAGE)?,
        offset: page_offset(&f)?,
    };
    let page = st.db(move |s| s.search_logged_models(&q)).await?;
    reply(
        Obj::new()
            .list(
                "models",
                page.items
                    .iter()
                    .map(|m| convert::logged_model(m).into())
                    .collect(),
            )
            .opt("next_page_token", next_page_token(page.next_offset)),
    )
}
