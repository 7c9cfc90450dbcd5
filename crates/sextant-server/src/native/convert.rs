//! Registry and event domain types as native wire JSON, converted by hand.

use std::collections::BTreeMap;

use serde::Serialize;
use sextant_core::entities::Tag;
use sextant_core::registry::{Approval, ApprovalSettings, Event, ModelVersion, RegisteredModel};

use super::rfc3339;

/// A registered model as listed: no versions beyond the latest per stage.
#[derive(Serialize)]
pub struct Model {
    name: String,
    description: Option<String>,
    user_id: Option<String>,
    creation_time: i64,
    creation_time_rfc3339: String,
    last_updated_time: i64,
    last_updated_time_rfc3339: String,
    tags: BTreeMap<String, String>,
    /// Alias → version number.
    aliases: BTreeMap<String, i64>,
    /// The newest version in each stage that has one, newest first.
    latest_versions: Vec<Version>,
    approval_settings: ApprovalSettingsWire,
}

/// A model's rules for approving its versions.
#[derive(Serialize)]
pub struct ApprovalSettingsWire {
    require_distinct_approver: bool,
    allow_pipeline_approval: bool,
}

/// The wire form of a model's approval settings.
pub fn approval_settings(s: ApprovalSettings) -> ApprovalSettingsWire {
    ApprovalSettingsWire {
        require_distinct_approver: s.require_distinct_approver,
        allow_pipeline_approval: s.allow_pipeline_approval,
    }
}

/// A registered model with every version, newest first.
#[derive(Serialize)]
pub struct ModelDetail {
    #[serde(flatten)]
    model: Model,
    versions: Vec<Version>,
}

/// One model version with its approval.
#[derive(Serialize)]
pub struct Version {
    name: String,
    version: i64,
    description: Option<String>,
    source: String,
    storage_location: String,
    run_id: Option<String>,
    model_id: Option<String>,
    run_link: Option<String>,
    user_id: Option<String>,
    stage: &'static str,
    status: &'static str,
    status_message: Option<String>,
    approval: ApprovalWire,
    aliases: Vec<String>,
    tags: BTreeMap<String, String>,
    creation_time: i64,
    creation_time_rfc3339: String,
    last_updated_time: i64,
    last_updated_time_rfc3339: String,
}

/// The current approval decision of a version.
#[derive(Serialize)]
pub struct ApprovalWire {
    status: &'static str,
    actor: Option<String>,
    comment: Option<String>,
    time: Option<i64>,
    time_rfc3339: Option<String>,
}

/// One event of the feed; `payload` is a JSON object.
#[derive(Serialize)]
pub struct EventWire {
    id: i64,
    time: i64,
    time_rfc3339: String,
    kind: String,
    subject: String,
    actor: Option<String>,
    payload: serde_json::Value,
}

fn tags(tags: Vec<Tag>) -> BTreeMap<String, String> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

/// The wire form of a model as listed.
pub fn model(m: RegisteredModel) -> Model {
    let mut latest: Vec<Version> = m.latest_versions.into_iter().map(version).collect();
    latest.sort_by_key(|v| std::cmp::Reverse(v.version));
    Model {
        name: m.name,
        description: m.description,
        user_id: m.user_id,
        creation_time: m.creation_timestamp,
        creation_time_rfc3339: rfc3339(m.creation_timestamp),
        last_updated_time: m.last_updated_timestamp,
        last_updated_time_rfc3339: rfc3339(m.last_updated_timestamp),
        tags: tags(m.tags),
        aliases: m
            .aliases
            .into_iter()
            .map(|a| (a.alias, a.version))
            .collect(),
        latest_versions: latest,
        approval_settings: approval_settings(m.approval_settings),
    }
}

/// The wire form of a model with all its versions.
pub fn model_detail(m: RegisteredModel, mut versions: Vec<ModelVersion>) -> ModelDetail {
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    ModelDetail {
        model: model(m),
        versions: versions.into_iter().map(version).collect(),
    }
}

/// The wire form of a version.
pub fn version(v: ModelVersion) -> Version {
    Version {
        name: v.name,
        version: v.version,
        description: v.description,
        source: v.source,
        storage_location: v.storage_location,
        run_id: v.run_id,
        model_id: v.model_id,
        run_link: v.run_link,
        user_id: v.user_id,
        stage: v.current_stage.as_str(),
        status: v.status.as_str(),
        status_message: v.status_message,
        approval: approval(v.approval),
        aliases: v.aliases,
        tags: tags(v.tags),
        creation_time: v.creation_timestamp,
        creation_time_rfc3339: rfc3339(v.creation_timestamp),
        last_updated_time: v.last_updated_timestamp,
        last_updated_time_rfc3339: rfc3339(v.last_updated_timestamp),
    }
}

fn approval(a: Approval) -> ApprovalWire {
    ApprovalWire {
        status: a.status.as_str(),
        actor: a.actor,
        comment: a.comment,
        time: a.time,
        time_rfc3339: a.time.map(rfc3339),
    }
}

/// The wire form of an event. A payload that is not a JSON object (which
/// the store never writes) is wrapped rather than failing the whole page.
pub fn event(e: Event) -> EventWire {
    let payload = match serde_json::from_str::<serde_json::Value>(&e.payload) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            tracing::warn!(event_id = e.id, "event payload is not a JSON object");
            serde_json::json!({ "raw": e.payload })
        }
    };
    EventWire {
        id: e.id,
        time: e.time,
        time_rfc3339: rfc3339(e.time),
        kind: e.kind,
        subject: e.subject,
        actor: e.actor,
        payload,
    }
}
