//! `MlflowService` experiment RPCs.

use axum::extract::State;
use axum::http::Method;
use axum::routing::on;
use sextant_core::entities::ViewType;
use sextant_core::search::{SearchKind, parse_filter};
use sextant_store::ExperimentSearch;

use super::convert;
use super::wire::{Fields, Obj, Reply, empty, reply};
use super::{experiment_id, max_results, next_page_token, order_by, page_offset, view_type};
use crate::error::ApiError;
use crate::routes::{Capability as C, Resource as R, Route};
use crate::state::AppState;

/// The largest `max_results` of experiment search.
const MAX_EXPERIMENTS_PAGE: u64 = 50_000;
/// The most experiments one dataset search may name (MLflow's limit).
const MAX_DATASET_SEARCH_EXPERIMENTS: usize = 20;

/// The UI's routes MLflow serves under `/ajax-api` only.
pub(super) const AJAX_ROUTES: &[Route] = &[Route::json(
    Method::POST,
    "/experiments/search-datasets",
    R::Experiment,
    C::Read,
    |m| on(m, search_datasets),
)];

pub(super) const ROUTES: &[Route] = &[
    Route::json(
        Method::POST,
        "/experiments/create",
        R::Experiment,
        C::Create,
        |m| on(m, create),
    ),
    Route::get("/experiments/get", R::Experiment, |m| on(m, get_experiment)),
    Route::get("/experiments/get-by-name", R::Experiment, |m| {
        on(m, get_by_name)
    }),
    Route::json(
        Method::POST,
        "/experiments/search",
        R::Experiment,
        C::Read,
        |m| on(m, search),
    ),
    Route::get("/experiments/search", R::Experiment, |m| on(m, search)),
    Route::json(
        Method::POST,
        "/experiments/update",
        R::Experiment,
        C::Edit,
        |m| on(m, update),
    ),
    Route::json(
        Method::POST,
        "/experiments/delete",
        R::Experiment,
        C::Manage,
        |m| on(m, delete),
    ),
    Route::json(
        Method::POST,
        "/experiments/restore",
        R::Experiment,
        C::Manage,
        |m| on(m, restore),
    ),
    Route::json(
        Method::POST,
        "/experiments/set-experiment-tag",
        R::Experiment,
        C::Edit,
        |m| on(m, set_tag),
    ),
    Route::json(
        Method::POST,
        "/experiments/delete-experiment-tag",
        R::Experiment,
        C::Edit,
        |m| on(m, delete_tag),
    ),
];

async fn create(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let location = f
        .opt_str("artifact_location")?
        .filter(|l| !l.is_empty())
        .map(|l| resolve_if_local(&l))
        .transpose()?;
    let tags = f.tags("tags")?;
    let id = st
        .db(move |s| s.create_experiment(&name, location.as_deref(), &tags))
        .await?;
    reply(Obj::new().set("experiment_id", id.to_string()))
}

async fn get_experiment(State(st): State<AppState>, f: Fields) -> Reply {
    let id = experiment_id(&f.req_str("experiment_id")?)?;
    let e = st.db(move |s| s.get_experiment(id)).await?;
    reply(Obj::new().set("experiment", convert::experiment(&e)))
}

async fn get_by_name(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("experiment_name")?;
    let e = st.db(move |s| s.get_experiment_by_name(&name)).await?;
    reply(Obj::new().set("experiment", convert::experiment(&e)))
}

async fn search(State(st): State<AppState>, f: Fields) -> Reply {
    let max = max_results(&f, "max_results", 1000, MAX_EXPERIMENTS_PAGE)?;
    let q = ExperimentSearch {
        filter: parse_filter(
            SearchKind::Experiments,
            &f.opt_str("filter")?.unwrap_or_default(),
        )
        .map_err(ApiError::from)?,
        order_by: order_by(SearchKind::Experiments, &f.str_list("order_by")?)?,
        view: view_type(&f, "view_type")?.unwrap_or(ViewType::ActiveOnly),
        max_results: max,
        offset: page_offset(&f)?,
    };
    let page = st.db(move |s| s.search_experiments(&q)).await?;
    reply(
        Obj::new()
            .list(
                "experiments",
                page.items
                    .iter()
                    .map(|e| convert::experiment(e).into())
                    .collect(),
            )
            .opt("next_page_token", next_page_token(page.next_offset)),
    )
}

async fn update(State(st): State<AppState>, f: Fields) -> Reply {
    let id = experiment_id(&f.req_str("experiment_id")?)?;
    let new_name = f.req_str("new_name")?;
    st.db(move |s| s.rename_experiment(id, &new_name)).await?;
    empty()
}

async fn delete(State(st): State<AppState>, f: Fields) -> Reply {
    let id = experiment_id(&f.req_str("experiment_id")?)?;
    st.db(move |s| s.delete_experiment(id)).await?;
    empty()
}

async fn restore(State(st): State<AppState>, f: Fields) -> Reply {
    let id = experiment_id(&f.req_str("experiment_id")?)?;
    st.db(move |s| s.restore_experiment(id)).await?;
    empty()
}

async fn set_tag(State(st): State<AppState>, f: Fields) -> Reply {
    let id = experiment_id(&f.req_str("experiment_id")?)?;
    let tag = sextant_core::entities::Tag::new(
        f.req_str("key")?,
        f.opt_str("value")?.unwrap_or_default(),
    );
    st.db(move |s| s.set_experiment_tag(id, &tag)).await?;
    empty()
}

async fn delete_tag(State(st): State<AppState>, f: Fields) -> Reply {
    let id = experiment_id(&f.req_str("experiment_id")?)?;
    let key = f.req_str("key")?;
    st.db(move |s| s.delete_experiment_tag(id, &key)).await?;
    empty()
}

/// A relative local `artifact_location` made absolute against the server's
/// working directory, as MLflow's `resolve_uri_if_local` does; URIs and
/// absolute paths are kept as given. (The server never reads such a
/// location: only roots of its own store are served.)
fn resolve_if_local(location: &str) -> Result<String, ApiError> {
    let (scheme, _, _) = sextant_core::validation::split_uri(location);
    if !scheme.is_empty() || location.starts_with('/') {
        return Ok(location.to_string());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| ApiError::internal(format!("the working directory is unreadable: {e}")))?;
    Ok(format!("{}/{location}", cwd.display()))
}

/// `SearchDatasets`: the datasets the runs of some experiments used, each
/// with a context it was used in, with MLflow's checks and messages.
async fn search_datasets(State(st): State<AppState>, f: Fields) -> Reply {
    let ids = f.str_list("experiment_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "SearchDatasets request must specify at least one experiment_id.",
        ));
    }
    if ids.len() > MAX_DATASET_SEARCH_EXPERIMENTS {
        return Err(ApiError::invalid(format!(
            "SearchDatasets request cannot specify more than {MAX_DATASET_SEARCH_EXPERIMENTS} \
             experiment_ids. Received {} experiment_ids.",
            ids.len()
        )));
    }
    let ids = ids
        .iter()
        .map(|e| experiment_id(e))
        .collect::<Result<Vec<_>, _>>()?;
    let summaries = st.db(move |s| s.search_dataset_summaries(&ids)).await?;
    reply(Obj::new().list(
        "dataset_summaries",
        summaries.iter().map(convert::dataset_summary).collect(),
    ))
}
