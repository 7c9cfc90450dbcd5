//! `MlflowService` run, logging and metric-history RPCs.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::on;
use sextant_core::entities::{
    Dataset, DatasetInput, Metric, ModelOutput, NewRun, RunStatus, Tag, ViewType,
};
use sextant_core::search::{SearchKind, parse_filter};
use sextant_store::RunSearch;

use super::convert::{self, MetricPage, RunPage};
use super::wire::{
    Fields, JsonBody, LenientF64, LenientI64, Obj, Reply, empty, invalid_value, reply,
};
use super::{experiment_id, max_results, next_page_token, order_by, page_offset, view_type};
use crate::error::ApiError;
use crate::routes::{Capability as C, Resource as R, Route};
use crate::state::AppState;

/// The largest `max_results` of run search.
const MAX_RUNS_PAGE: u64 = 50_000;
/// The largest page of one metric's history.
const MAX_HISTORY_PAGE: u64 = 25_000;
/// The most runs one bulk history request may name.
const MAX_BULK_RUNS: usize = 100;
/// The most sampled steps per run of a bulk-interval request.
const MAX_BULK_INTERVAL_RESULTS: u64 = 2_500;
/// The run tag where the legacy LogModel RPC appends model metadata.
const LOG_MODEL_HISTORY_TAG: &str = "mlflow.log-model.history";

pub(super) const ROUTES: &[Route] = &[
    Route::json(Method::POST, "/runs/create", R::Experiment, C::Edit, |m| {
        on(m, create)
    }),
    Route::get("/runs/get", R::Run, |m| on(m, get_run)),
    Route::json(Method::POST, "/runs/update", R::Run, C::Edit, |m| {
        on(m, update)
    }),
    Route::json(Method::POST, "/runs/delete", R::Run, C::Manage, |m| {
        on(m, delete)
    }),
    Route::json(Method::POST, "/runs/restore", R::Run, C::Manage, |m| {
        on(m, restore)
    }),
    Route::json(Method::POST, "/runs/log-metric", R::Run, C::Edit, |m| {
        on(m, log_metric)
    })
    .eventless(),
    Route::json(Method::POST, "/runs/log-parameter", R::Run, C::Edit, |m| {
        on(m, log_param)
    })
    .eventless(),
    Route::json(Method::POST, "/runs/set-tag", R::Run, C::Edit, |m| {
        on(m, set_tag)
    })
    .eventless(),
    Route::json(Method::POST, "/runs/delete-tag", R::Run, C::Edit, |m| {
        on(m, delete_tag)
    })
    .eventless(),
    Route::json(Method::POST, "/runs/log-batch", R::Run, C::Edit, |m| {
        on(m, log_batch)
    })
    .eventless(),
    Route::json(Method::POST, "/runs/log-inputs", R::Run, C::Edit, |m| {
        on(m, log_inputs)
    }),
    Route::json(Method::POST, "/runs/outputs", R::Run, C::Edit, |m| {
        on(m, log_outputs)
    }),
    Route::json(Method::POST, "/runs/log-model", R::Run, C::Edit, |m| {
        on(m, log_model)
    }),
    Route::json(Method::POST, "/runs/search", R::Run, C::Read, |m| {
        on(m, search)
    }),
    Route::get("/runs/search", R::Run, |m| on(m, search)),
    Route::get("/metrics/get-history", R::Run, |m| on(m, history)),
    Route::get("/metrics/get-history-bulk", R::Run, |m| on(m, history_bulk)),
    Route::get("/metrics/get-history-bulk-interval", R::Run, |m| {
        on(m, history_bulk_interval)
    }),
];

fn run_id(f: &Fields) -> Result<String, ApiError> {
    f.req_str_any(&["run_id", "run_uuid"])
}

async fn create(State(st): State<AppState>, f: Fields) -> Reply {
    let new = NewRun {
        experiment_id: experiment_id(&f.opt_str("experiment_id")?.unwrap_or_else(|| "0".into()))?,
        user_id: f.opt_str("user_id")?.unwrap_or_default(),
        run_name: f.opt_str("run_name")?,
        start_time: f.opt_i64("start_time")?,
        tags: f.tags("tags")?,
    };
    let run = st.db(move |s| s.create_run(&new)).await?;
    reply(Obj::new().set("run", convert::run(&run, false)))
}

async fn get_run(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    let run = st.db(move |s| s.get_run(&id)).await?;
    reply(Obj::new().set("run", convert::run(&run, true)))
}

async fn update(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    let status = match f.opt_enum("status")? {
        None => None,
        Some(s) => Some(RunStatus::parse(&s).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value \"{s}\" for parameter 'status' supplied: must be one of RUNNING, \
                 SCHEDULED, FINISHED, FAILED, KILLED."
            ))
        })?),
    };
    let end_time = f.opt_i64("end_time")?;
    let name = f.opt_str("run_name")?;
    let info = st
        .db(move |s| s.update_run(&id, status, end_time, name.as_deref()))
        .await?;
    reply(Obj::new().set("run_info", convert::run_info(&info)))
}

async fn delete(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    st.db(move |s| s.delete_run(&id)).await?;
    empty()
}

async fn restore(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    st.db(move |s| s.restore_run(&id)).await?;
    empty()
}

async fn log_metric(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    let metric = f.metric()?;
    st.db(move |s| s.log_batch(&id, &[metric], &[], &[]))
        .await?;
    empty()
}

async fn log_param(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    let param = Tag::new(f.req_str("key")?, f.opt_str("value")?.unwrap_or_default());
    st.db(move |s| s.log_batch(&id, &[], &[param], &[])).await?;
    empty()
}

async fn set_tag(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    let tag = Tag::new(f.req_str("key")?, f.opt_str("value")?.unwrap_or_default());
    st.db(move |s| s.log_batch(&id, &[], &[], &[tag])).await?;
    empty()
}

async fn delete_tag(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    let key = f.req_str("key")?;
    st.db(move |s| s.delete_tag(&id, &key)).await?;
    empty()
}

/// LogBatch, the hot path: the body is deserialized straight into typed
/// structs. A body that does not fit them (a wrong type, a missing field) is
/// read again the general way, which names the offending field as MLflow does.
async fn log_batch(State(st): State<AppState>, JsonBody(body): JsonBody) -> Reply {
    let (id, metrics, params, tags) = match serde_json::from_slice::<BatchBody>(&body) {
        Ok(b) => match b
            .run_id
            .clone()
            .or(b.run_uuid.clone())
            .filter(|id| !id.is_empty())
        {
            Some(id) => {
                b.check_keys()?;
                (
                    id,
                    b.metrics
                        .into_iter()
                        .map(BatchMetric::into_metric)
                        .collect(),
                    b.params.into_iter().map(BatchTag::into_tag).collect(),
                    b.tags.into_iter().map(BatchTag::into_tag).collect(),
                )
            }
            None => return Err(ApiError::missing("run_id")),
        },
        Err(_) => {
            let f = if body.is_empty() {
                Fields::default()
            } else {
                Fields::from_json(&body)?
            };
            // MLflow's order: the run, then every metric, param and tag.
            let id = run_id(&f)?;
            let metrics: Vec<Metric> = f
                .messages("metrics")?
                .iter()
                .map(Fields::metric)
                .collect::<Result<_, _>>()?;
            (id, metrics, f.tags("params")?, f.tags("tags")?)
        }
    };
    st.db(move |s| s.log_batch(&id, &metrics, &params, &tags))
        .await?;
    empty()
}

#[derive(serde::Deserialize)]
struct BatchBody {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Vec<BatchMetric>,
    #[serde(default)]
    params: Vec<BatchTag>,
    #[serde(default)]
    tags: Vec<BatchTag>,
}

impl BatchBody {
    /// Every key present and not empty, named by its path as MLflow does
    /// (`tags[1].key`); the typed parse has already seen the rest.
    fn check_keys(&self) -> Result<(), ApiError> {
        let lists = [
            (
                "metrics",
                self.metrics.iter().map(|m| &m.key).collect::<Vec<_>>(),
            ),
            ("params", self.params.iter().map(|t| &t.key).collect()),
            ("tags", self.tags.iter().map(|t| &t.key).collect()),
        ];
        for (field, keys) in lists {
            if let Some(i) = keys.iter().position(|k| k.is_empty()) {
                return Err(ApiError::missing(&format!("{field}[{i}].key")));
            }
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct BatchMetric {
    key: String,
    value: LenientF64,
    timestamp: LenientI64,
    step: Option<LenientI64>,
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

impl BatchMetric {
    fn into_metric(self) -> Metric {
        let mut m = Metric::new(
            self.key,
            self.value.0,
            self.timestamp.0,
            self.step.map_or(0, |s| s.0),
        );
        m.model_id = self.model_id.filter(|s| !s.is_empty());
        m.dataset_name = self.dataset_name.filter(|s| !s.is_empty());
        m.dataset_digest = self.dataset_digest.filter(|s| !s.is_empty());
        m
    }
}

#[derive(serde::Deserialize)]
struct BatchTag {
    key: String,
    value: Option<String>,
}

impl BatchTag {
    fn into_tag(self) -> Tag {
        Tag::new(self.key, self.value.unwrap_or_default())
    }
}

fn dataset_input(f: &Fields) -> Result<DatasetInput, ApiError> {
    let d = f.message("dataset")?.ok_or_else(|| f.missing("dataset"))?;
    Ok(DatasetInput {
        dataset: Dataset {
            name: d.req_str("name")?,
            digest: d.req_str("digest")?,
            source_type: d.req_str("source_type")?,
            source: d.req_str("source")?,
            schema: d.opt_str("schema")?,
            profile: d.opt_str("profile")?,
        },
        tags: f.tags("tags")?,
    })
}

async fn log_inputs(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    let datasets: Vec<DatasetInput> = f
        .messages("datasets")?
        .iter()
        .map(dataset_input)
        .collect::<Result<_, _>>()?;
    let models: Vec<String> = f
        .messages("models")?
        .iter()
        .map(|m| m.req_str("model_id"))
        .collect::<Result<_, _>>()?;
    st.db(move |s| s.log_inputs(&id, &datasets, &models))
        .await?;
    empty()
}

async fn log_outputs(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    if !f.has("models") {
        return Err(ApiError::missing("models"));
    }
    let models: Vec<ModelOutput> = f
        .messages("models")?
        .iter()
        .map(|m| {
            Ok(ModelOutput {
                model_id: m.req_str("model_id")?,
                step: m.opt_i64("step")?.unwrap_or(0),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    st.db(move |s| s.log_outputs(&id, &models)).await?;
    empty()
}

/// The legacy LogModel RPC: appends the model's JSON to the run's
/// `mlflow.log-model.history` tag, as MLflow's SQL store does.
async fn log_model(State(st): State<AppState>, f: Fields) -> Reply {
    let id = run_id(&f)?;
    let model_json = f.req_str("model_json")?;
    let model: serde_json::Value = serde_json::from_str(&model_json)
        .map_err(|_| invalid_value("model_json", &serde_json::Value::from(model_json.as_str())))?;
    st.db(move |s| {
        let run = s.get_run(&id)?;
        let mut history = run
            .data
            .tags
            .iter()
            .find(|t| t.key == LOG_MODEL_HISTORY_TAG)
            .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t.value).ok())
            .unwrap_or_default();
        history.push(model);
        let value = serde_json::Value::from(history).to_string();
        s.log_batch(&id, &[], &[], &[Tag::new(LOG_MODEL_HISTORY_TAG, value)])
    })
    .await?;
    empty()
}

async fn search(State(st): State<AppState>, f: Fields) -> Result<Json<RunPage>, ApiError> {
    let experiment_ids = f
        .str_list("experiment_ids")?
        .iter()
        .map(|e| experiment_id(e))
        .collect::<Result<_, _>>()?;
    let q = RunSearch {
        experiment_ids,
        filter: parse_filter(SearchKind::Runs, &f.opt_str("filter")?.unwrap_or_default())
            .map_err(ApiError::from)?,
        order_by: order_by(SearchKind::Runs, &f.str_list("order_by")?)?,
        view: view_type(&f, "run_view_type")?.unwrap_or(ViewType::ActiveOnly),
        max_results: max_results(&f, "max_results", 1000, MAX_RUNS_PAGE)?,
        offset: page_offset(&f)?,
    };
    let page = st.db(move |s| s.search_runs(&q)).await?;
    Ok(Json(RunPage {
        next_page_token: next_page_token(page.next_offset),
        runs: page.items,
    }))
}

async fn history(State(st): State<AppState>, f: Fields) -> Result<Json<MetricPage>, ApiError> {
    let id = run_id(&f)?;
    let key = f.req_str("metric_key")?;
    let max = max_results(&f, "max_results", MAX_HISTORY_PAGE, MAX_HISTORY_PAGE)?;
    let offset = page_offset(&f)?;
    let page = st
        .db(move |s| s.metric_history(&id, &key, max, offset))
        .await?;
    Ok(Json(MetricPage {
        next_page_token: next_page_token(page.next_offset),
        metrics: page.items,
    }))
}

/// The UI's bulk history: full histories of one metric for several runs.
/// Its checks and messages are MLflow's own for this route, which reads the
/// query string by hand rather than through the message parser: a
/// `max_results` above the page size is cut to it, not refused.
async fn history_bulk(State(st): State<AppState>, f: Fields) -> Result<Json<MetricPage>, ApiError> {
    let ids = f.str_list("run_id")?;
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "GetMetricHistoryBulk request must specify at least one run_id.",
        ));
    }
    if ids.len() > MAX_BULK_RUNS {
        return Err(ApiError::invalid(format!(
            "GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUNS} run_ids. \
             Received {} run_ids.",
            ids.len()
        )));
    }
    let key = f.opt_str("metric_key")?.ok_or_else(|| {
        ApiError::invalid("GetMetricHistoryBulk request must specify a metric_key.")
    })?;
    let max = max_results(&f, "max_results", MAX_HISTORY_PAGE, u64::MAX)?.min(MAX_HISTORY_PAGE);
    let metrics = st
        .db(move |s| {
            let mut ids = ids;
            ids.sort();
            ids.dedup();
            let mut out = Vec::new();
            for id in ids {
                let room = max.saturating_sub(out.len() as u64);
                if room == 0 {
                    break;
                }
                let page = s.metric_history(&id, &key, room, 0)?;
                out.extend(page.items.into_iter().map(|mut m| {
                    m.run_id = Some(id.clone());
                    m
                }));
            }
            Ok(out)
        })
        .await?;
    Ok(Json(MetricPage {
        metrics,
        next_page_token: None,
    }))
}

/// The UI's sampled histories; checks and messages as MLflow's schema for
/// `GetMetricHistoryBulkInterval` gives them.
async fn history_bulk_interval(
    State(st): State<AppState>,
    f: Fields,
) -> Result<Json<MetricPage>, ApiError> {
    let ids = f.str_list("run_ids")?;
    if ids.is_empty() {
        return Err(f.missing("run_ids"));
    }
    if ids.len() > MAX_BULK_RUNS {
        return Err(ApiError::invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. \
             Received {} run_ids. See the API docs for more information about request parameters.",
            ids.len()
        )));
    }
    let key = f.req_str("metric_key")?;
    let steps = match (f.opt_i64("start_step")?, f.opt_i64("end_step")?) {
        (None, None) => None,
        (Some(a), Some(b)) if a <= b => Some((a, b)),
        (Some(a), Some(b)) => {
            return Err(ApiError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={a} and end_step={b}."
            )));
        }
        _ => {
            return Err(ApiError::invalid(
                "If either start step or end step are specified, both must be specified.",
            ));
        }
    };
    let max = match f.opt_i64("max_results")? {
        None => MAX_BULK_INTERVAL_RESULTS,
        Some(n) if n >= 1 && n as u64 <= MAX_BULK_INTERVAL_RESULTS => n as u64,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "max_results must be between 1 and {MAX_BULK_INTERVAL_RESULTS}. See the API \
                 docs for more information about request parameters."
            )));
        }
    };
    let metrics = st
        .db(move |s| s.metric_history_bulk_interval(&ids, &key, steps, max))
        .await?;
    Ok(Json(MetricPage {
        metrics,
        next_page_token: None,
    }))
}
