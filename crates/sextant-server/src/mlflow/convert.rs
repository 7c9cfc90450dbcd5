//! Domain entities to MLflow proto-JSON, field by field, as 3.17.2 writes them.

use serde_json::Value;
use sextant_core::entities::{
    DatasetInput, DatasetSummary, Experiment, LoggedModel, Metric, Run, RunInfo, Tag,
};

use super::wire::{Obj, double};

/// `[{key, value}]`.
pub fn tags(tags: &[Tag]) -> Vec<Value> {
    tags.iter()
        .map(|t| {
            Obj::new()
                .set("key", t.key.as_str())
                .set("value", t.value.as_str())
                .into()
        })
        .collect()
}

pub fn experiment(e: &Experiment) -> Obj {
    Obj::new()
        .set("experiment_id", e.experiment_id.to_string())
        .set("name", e.name.as_str())
        .set("artifact_location", e.artifact_location.as_str())
        .set("lifecycle_stage", e.lifecycle_stage.as_str())
        .set("last_update_time", e.last_update_time)
        .set("creation_time", e.creation_time)
        .list("tags", tags(&e.tags))
}

pub fn metric(m: &Metric) -> Obj {
    Obj::new()
        .set("key", m.key.as_str())
        .set("value", double(m.value))
        .set("timestamp", m.timestamp)
        .set("step", m.step)
        .opt("dataset_name", m.dataset_name.as_deref())
        .opt("dataset_digest", m.dataset_digest.as_deref())
        .opt("model_id", m.model_id.as_deref())
        .opt("run_id", m.run_id.as_deref())
}

pub fn metrics(ms: &[Metric]) -> Vec<Value> {
    ms.iter().map(|m| metric(m).into()).collect()
}

pub fn run_info(i: &RunInfo) -> Obj {
    Obj::new()
        .set("run_id", i.run_id.as_str())
        .set("run_uuid", i.run_id.as_str())
        .set("run_name", i.run_name.as_str())
        .set("experiment_id", i.experiment_id.to_string())
        .set("user_id", i.user_id.as_str())
        .set("status", i.status.as_str())
        .opt("start_time", i.start_time)
        .opt("end_time", i.end_time)
        .set("artifact_uri", i.artifact_uri.as_str())
        .set("lifecycle_stage", i.lifecycle_stage.as_str())
}

fn dataset_input(d: &DatasetInput) -> Value {
    let ds = &d.dataset;
    let dataset = Obj::new()
        .set("name", ds.name.as_str())
        .set("digest", ds.digest.as_str())
        .set("source_type", ds.source_type.as_str())
        .set("source", ds.source.as_str())
        .opt("schema", ds.schema.as_deref())
        .opt("profile", ds.profile.as_deref());
    Obj::new()
        .list("tags", tags(&d.tags))
        .set("dataset", dataset)
        .into()
}

/// A whole run. `with_outputs` adds `"outputs": {}` as GetRun does (CreateRun does not).
pub fn run(r: &Run, with_outputs: bool) -> Obj {
    let data = Obj::new()
        .list("metrics", metrics(&r.data.metrics))
        .list("params", tags(&r.data.params))
        .list("tags", tags(&r.data.tags));
    let inputs = Obj::new()
        .list(
            "dataset_inputs",
            r.dataset_inputs.iter().map(dataset_input).collect(),
        )
        .list(
            "model_inputs",
            r.model_inputs
                .iter()
                .map(|id| Obj::new().set("model_id", id.as_str()).into())
                .collect(),
        );
    let outputs = Obj::new().list(
        "model_outputs",
        r.model_outputs
            .iter()
            .map(|o| {
                Obj::new()
                    .set("model_id", o.model_id.as_str())
                    .set("step", o.step)
                    .into()
            })
            .collect(),
    );
    let mut obj = Obj::new()
        .set("info", run_info(&r.info))
        .set("data", data)
        .set("inputs", inputs);
    if with_outputs {
        obj = obj.set("outputs", outputs);
    }
    obj
}

/// A `DatasetSummary` of `SearchDatasets`.
pub fn dataset_summary(d: &DatasetSummary) -> Value {
    Obj::new()
        .set("experiment_id", d.experiment_id.to_string())
        .set("name", d.name.as_str())
        .set("digest", d.digest.as_str())
        .opt("context", d.context.as_deref())
        .into()
}

pub fn logged_model(m: &LoggedModel) -> Obj {
    let info = Obj::new()
        .set("model_id", m.model_id.as_str())
        .set("experiment_id", m.experiment_id.to_string())
        .set("name", m.name.as_str())
        .set("creation_timestamp_ms", m.creation_timestamp)
        .set("last_updated_timestamp_ms", m.last_updated_timestamp)
        .set("artifact_uri", m.artifact_uri.as_str())
        .set("status", m.status.as_str())
        .opt("model_type", m.model_type.as_deref())
        .opt("source_run_id", m.source_run_id.as_deref())
        .opt("status_message", m.status_message.as_deref())
        .list("tags", tags(&m.tags));
    let data = Obj::new()
        .list("params", tags(&m.params))
        .list("metrics", metrics(&m.metrics));
    Obj::new().set("info", info).set("data", data)
}
