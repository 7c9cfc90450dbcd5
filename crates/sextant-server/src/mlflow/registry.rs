//! `ModelRegistryService`: registered models and model versions.
//!
//! The MetaStore applies every registry rule (names, aliases, tags, source
//! validation, stages); these handlers read the request, parse what the wire
//! carries as strings (versions, stages) and write the answer.

use axum::extract::State;
use axum::http::Method;
use axum::routing::on;
use serde_json::Value;
use sextant_core::entities::Tag;
use sextant_core::registry::{
    Approval, ApprovalStatus, FourEyes, ModelVersion, NewModelVersion, RegisteredModel, Stage,
};
use sextant_core::search::{SearchKind, parse_filter};
use sextant_core::validation::parse_model_version;
use sextant_store::{ModelVersionSearch, RegisteredModelSearch};

use super::registry_convert as convert;
use super::wire::{Fields, Obj, Reply, empty, invalid_value, reply};
use super::{next_page_token, order_by, page_offset};
use crate::auth::approvals::{self, Caller};
use crate::error::{ApiError, ErrorCode};
use crate::routes::{Capability as C, Resource as R, Route};
use crate::state::AppState;

/// `SearchRegisteredModels.max_results`: the proto default and the handler's cap.
const DEFAULT_MODELS_PAGE: u64 = 100;
const MAX_MODELS_PAGE: u64 = 1_000;
/// `SearchModelVersions.max_results`: the proto default is also the cap.
const MAX_VERSIONS_PAGE: u64 = 200_000;

pub(super) const ROUTES: &[Route] = &[
    // The client posts get-latest-versions first and falls back to GET on ENDPOINT_NOT_FOUND.
    Route::json(
        Method::POST,
        "/registered-models/create",
        R::RegisteredModel,
        C::Create,
        |m| on(m, create_model),
    ),
    Route::get("/registered-models/get", R::RegisteredModel, |m| {
        on(m, get_model)
    }),
    Route::json(
        Method::POST,
        "/registered-models/rename",
        R::RegisteredModel,
        C::Edit,
        |m| on(m, rename_model),
    ),
    Route::json(
        Method::PATCH,
        "/registered-models/update",
        R::RegisteredModel,
        C::Edit,
        |m| on(m, update_model),
    ),
    Route::json(
        Method::DELETE,
        "/registered-models/delete",
        R::RegisteredModel,
        C::Manage,
        |m| on(m, delete_model),
    ),
    Route::get("/registered-models/search", R::RegisteredModel, |m| {
        on(m, search_models)
    }),
    Route::json(
        Method::POST,
        "/registered-models/get-latest-versions",
        R::RegisteredModel,
        C::Read,
        |m| on(m, latest_versions),
    ),
    Route::get(
        "/registered-models/get-latest-versions",
        R::RegisteredModel,
        |m| on(m, latest_versions),
    ),
    Route::json(
        Method::POST,
        "/registered-models/set-tag",
        R::RegisteredModel,
        C::Edit,
        |m| on(m, set_model_tag),
    ),
    Route::json(
        Method::DELETE,
        "/registered-models/delete-tag",
        R::RegisteredModel,
        C::Edit,
        |m| on(m, delete_model_tag),
    ),
    Route::json(
        Method::POST,
        "/registered-models/alias",
        R::RegisteredModel,
        C::Manage,
        |m| on(m, set_alias),
    ),
    Route::json(
        Method::DELETE,
        "/registered-models/alias",
        R::RegisteredModel,
        C::Manage,
        |m| on(m, delete_alias),
    ),
    Route::get("/registered-models/alias", R::RegisteredModel, |m| {
        on(m, get_by_alias)
    }),
    Route::json(
        Method::POST,
        "/model-versions/create",
        R::RegisteredModel,
        C::Edit,
        |m| on(m, create_version),
    ),
    Route::get("/model-versions/get", R::ModelVersion, |m| {
        on(m, get_version)
    }),
    Route::json(
        Method::PATCH,
        "/model-versions/update",
        R::ModelVersion,
        C::Edit,
        |m| on(m, update_version),
    ),
    Route::json(
        Method::POST,
        "/model-versions/transition-stage",
        R::ModelVersion,
        C::Manage,
        |m| on(m, transition_stage),
    ),
    Route::json(
        Method::DELETE,
        "/model-versions/delete",
        R::ModelVersion,
        C::Manage,
        |m| on(m, delete_version),
    ),
    Route::get("/model-versions/search", R::ModelVersion, |m| {
        on(m, search_versions)
    }),
    Route::get("/model-versions/get-download-uri", R::ModelVersion, |m| {
        on(m, download_uri)
    }),
    Route::json(
        Method::POST,
        "/model-versions/set-tag",
        R::ModelVersion,
        C::Edit,
        |m| on(m, set_version_tag),
    ),
    Route::json(
        Method::DELETE,
        "/model-versions/delete-tag",
        R::ModelVersion,
        C::Edit,
        |m| on(m, delete_version_tag),
    ),
];

/// The required `version`, an integer carried as a string.
fn version(f: &Fields) -> Result<i64, ApiError> {
    Ok(parse_model_version(&f.req_str("version")?)?)
}

/// `max_results` of the registry searches. MLflow names the value as sent
/// (`"1001"`, a string, when it came in a query string).
fn page_size(f: &Fields, default: u64, max: u64) -> Result<u64, ApiError> {
    match f.opt_i64("max_results")? {
        None => Ok(default),
        Some(n) if n < 1 => Err(ApiError::invalid(format!(
            "Invalid value for max_results. It must be a positive integer, but got {n}"
        ))),
        Some(n) if n as u64 > max => {
            let raw = f.raw("max_results").cloned().unwrap_or(Value::from(n));
            Err(invalid_value("max_results", &raw))
        }
        Some(n) => Ok(n as u64),
    }
}

fn model_reply(m: &RegisteredModel) -> Reply {
    reply(Obj::new().set("registered_model", convert::registered_model(m)))
}

fn version_reply(v: &ModelVersion) -> Reply {
    reply(Obj::new().set("model_version", convert::model_version(v)))
}

async fn create_model(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let description = f.opt_str("description")?;
    let tags = f.tags("tags")?;
    let model = st
        .db(move |s| s.create_registered_model(&name, description.as_deref(), &tags))
        .await?;
    model_reply(&model)
}

async fn get_model(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let model = st.db(move |s| s.get_registered_model(&name)).await?;
    model_reply(&model)
}

async fn rename_model(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let new_name = f.req_str("new_name")?;
    let model = st
        .db(move |s| s.rename_registered_model(&name, &new_name))
        .await?;
    model_reply(&model)
}

/// MLflow writes the field as given, so an absent description clears it.
async fn update_model(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let description = f.opt_str("description")?.unwrap_or_default();
    let model = st
        .db(move |s| s.update_registered_model(&name, Some(&description)))
        .await?;
    model_reply(&model)
}

async fn delete_model(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    st.db(move |s| s.delete_registered_model(&name)).await?;
    empty()
}

async fn search_models(State(st): State<AppState>, f: Fields) -> Reply {
    let q = RegisteredModelSearch {
        filter: parse_filter(
            SearchKind::RegisteredModels,
            &f.opt_str("filter")?.unwrap_or_default(),
        )?,
        order_by: order_by(SearchKind::RegisteredModels, &f.str_list("order_by")?)?,
        max_results: page_size(&f, DEFAULT_MODELS_PAGE, MAX_MODELS_PAGE)?,
        offset: page_offset(&f)?,
    };
    let page = st.db(move |s| s.search_registered_models(&q)).await?;
    reply(
        Obj::new()
            .list(
                "registered_models",
                page.items
                    .iter()
                    .map(|m| convert::registered_model(m).into())
                    .collect(),
            )
            .opt("next_page_token", next_page_token(page.next_offset)),
    )
}

async fn latest_versions(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let stages = f
        .str_list("stages")?
        .iter()
        .map(|s| Stage::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let versions = st
        .db(move |s| s.get_latest_versions(&name, &stages))
        .await?;
    reply(Obj::new().list("model_versions", convert::model_versions(&versions)))
}

async fn set_model_tag(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let tag = Tag::new(f.req_str("key")?, f.opt_str("value")?.unwrap_or_default());
    st.db(move |s| s.set_registered_model_tag(&name, &tag))
        .await?;
    empty()
}

async fn delete_model_tag(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let key = f.req_str("key")?;
    st.db(move |s| s.delete_registered_model_tag(&name, &key))
        .await?;
    empty()
}

async fn set_alias(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let alias = f.req_str("alias")?;
    let version = version(&f)?;
    st.db(move |s| s.set_registered_model_alias(&name, &alias, version))
        .await?;
    empty()
}

async fn delete_alias(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let alias = f.req_str("alias")?;
    st.db(move |s| s.delete_registered_model_alias(&name, &alias))
        .await?;
    empty()
}

async fn get_by_alias(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let alias = f.req_str("alias")?;
    let v = st
        .db(move |s| s.get_model_version_by_alias(&name, &alias))
        .await?;
    version_reply(&v)
}

/// CreateModelVersion. Besides MLflow's fields Sextant reads an optional
/// `approval_status` (`pending`, the default, `approved` or `rejected`);
/// other unknown fields are ignored, as protobuf's parser does.
///
/// With authentication on, the caller is the version's `user_id`, and a
/// decision made at registration is the caller's: it needs MANAGE on the
/// model, and approving is refused under four-eyes (`auth::approvals`).
async fn create_version(State(st): State<AppState>, caller: Caller, f: Fields) -> Reply {
    let non_empty = |field: &str| -> Result<Option<String>, ApiError> {
        Ok(f.opt_str(field)?.filter(|s| !s.is_empty()))
    };
    let name = f.req_str("name")?;
    let mut approval = match f.opt_str("approval_status")? {
        Some(s) if !s.is_empty() => Some(Approval {
            status: ApprovalStatus::parse(&s)?,
            ..Approval::default()
        }),
        _ => None,
    };
    if let (Some(p), Some(a)) = (&caller.0, approval.as_mut())
        && a.status != ApprovalStatus::Pending
    {
        a.actor = Some(approvals::decider(p)?);
        if !approvals::caller_manages(&st.auth, p, &name) {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "registering a version as {} decides its approval, which needs MANAGE on \
                     model '{name}'; register it pending instead",
                    a.status
                ),
            ));
        }
    }
    let new = NewModelVersion {
        name,
        source: f.req_str("source")?,
        run_id: non_empty("run_id")?,
        model_id: non_empty("model_id")?,
        run_link: f.opt_str("run_link")?,
        description: f.opt_str("description")?,
        user_id: caller.username(),
        tags: f.tags("tags")?,
        approval,
        // The store checks four-eyes in the transaction that registers it.
        four_eyes: match caller.0 {
            Some(_) => FourEyes::Held,
            None => FourEyes::Off,
        },
    };
    let v = st.db(move |s| s.create_model_version(&new)).await?;
    version_reply(&v)
}

async fn get_version(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let version = version(&f)?;
    let v = st.db(move |s| s.get_model_version(&name, version)).await?;
    version_reply(&v)
}

/// Only a description that is present changes (MLflow checks `HasField`).
async fn update_version(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let version = version(&f)?;
    let description = f.opt_str("description")?;
    let v = st
        .db(move |s| s.update_model_version(&name, version, description.as_deref()))
        .await?;
    version_reply(&v)
}

async fn transition_stage(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let version = version(&f)?;
    let stage = Stage::parse(&f.req_str("stage")?)?;
    let archive = f.opt_bool("archive_existing_versions")?.unwrap_or(false);
    let v = st
        .db(move |s| s.transition_model_version_stage(&name, version, stage, archive))
        .await?;
    version_reply(&v)
}

async fn delete_version(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let version = version(&f)?;
    st.db(move |s| s.delete_model_version(&name, version))
        .await?;
    empty()
}

async fn search_versions(State(st): State<AppState>, f: Fields) -> Reply {
    let q = ModelVersionSearch {
        filter: parse_filter(
            SearchKind::ModelVersions,
            &f.opt_str("filter")?.unwrap_or_default(),
        )?,
        order_by: order_by(SearchKind::ModelVersions, &f.str_list("order_by")?)?,
        max_results: page_size(&f, MAX_VERSIONS_PAGE, MAX_VERSIONS_PAGE)?,
        offset: page_offset(&f)?,
    };
    let mut page = st.db(move |s| s.search_model_versions(&q)).await?;
    // MLflow 3.17.2's SQL store answers searches without the versions'
    // aliases (GetModelVersion has them); do the same.
    for v in &mut page.items {
        v.aliases.clear();
    }
    reply(
        Obj::new()
            .list("model_versions", convert::model_versions(&page.items))
            .opt("next_page_token", next_page_token(page.next_offset)),
    )
}

/// Where the files are: the resolved storage location (the source itself
/// when it needed no resolving), as `storage_location or source` in MLflow.
async fn download_uri(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let version = version(&f)?;
    let v = st.db(move |s| s.get_model_version(&name, version)).await?;
    let uri = if v.storage_location.is_empty() {
        v.source
    } else {
        v.storage_location
    };
    reply(Obj::new().set("artifact_uri", uri))
}

async fn set_version_tag(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let version = version(&f)?;
    let tag = Tag::new(f.req_str("key")?, f.opt_str("value")?.unwrap_or_default());
    st.db(move |s| s.set_model_version_tag(&name, version, &tag))
        .await?;
    empty()
}

async fn delete_version_tag(State(st): State<AppState>, f: Fields) -> Reply {
    let name = f.req_str("name")?;
    let version = version(&f)?;
    let key = f.req_str("key")?;
    st.db(move |s| s.delete_model_version_tag(&name, version, &key))
        .await?;
    empty()
}
