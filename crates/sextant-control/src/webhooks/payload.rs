//! Delivery bodies: MLflow's `{entity, action, timestamp, data}` for
//! MLflow-named events (data as in `mlflow/webhooks/types.py`), Sextant's
//! event envelope (as `/api/v1/events` shows it) for the others.
//!
//! Bodies are built at fan-out, right after the change, from the event and
//! the registry as it is then; a model deleted in between leaves the fields
//! the event itself carries.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sextant_core::registry::Event;
use sextant_core::webhooks::PROMPT_TAG;
use sextant_store::MetaStore;

use sextant_core::clock::rfc3339;

/// MLflow keeps these tags out of prompt payloads.
const PROMPT_INTERNAL_TAGS: [&str; 3] = [PROMPT_TAG, "_mlflow_prompt_type", "mlflow.prompt.text"];

/// The event payload as a JSON object.
pub fn payload(e: &Event) -> Value {
    match serde_json::from_str::<Value>(&e.payload) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => json!({ "raw": e.payload }),
    }
}

/// The registered model an event concerns, if it is a registry event.
pub fn model_name(e: &Event) -> Option<String> {
    payload(e)["name"].as_str().map(str::to_string)
}

/// Whether the registered model is an MLflow prompt.
pub fn is_prompt(store: &dyn MetaStore, name: &str) -> bool {
    store.get_registered_model(name).is_ok_and(|m| {
        m.tags
            .iter()
            .any(|t| t.key == PROMPT_TAG && t.value.eq_ignore_ascii_case("true"))
    })
}

/// Sextant's envelope of an event.
pub fn envelope(e: &Event) -> String {
    json!({
        "id": e.id,
        "kind": e.kind,
        "time": e.time,
        "time_rfc3339": rfc3339(e.time),
        "subject": e.subject,
        "actor": e.actor,
        "payload": payload(e),
    })
    .to_string()
}

/// MLflow's body for `event` (`entity.action`) with `data`.
pub fn mlflow_body(event: &str, data: Value, time_ms: i64) -> String {
    let (entity, action) = event.split_once('.').unwrap_or((event, ""));
    json!({
        "entity": entity,
        "action": action,
        "timestamp": rfc3339(time_ms),
        "data": data,
    })
    .to_string()
}

fn tag_map<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>, prompt: bool) -> Value {
    let map: BTreeMap<&str, &str> = tags
        .filter(|(k, _)| !prompt || !PROMPT_INTERNAL_TAGS.contains(k))
        .collect();
    json!(map)
}

/// The `data` of MLflow event `event` for the Sextant event `e`.
pub fn mlflow_data(store: &dyn MetaStore, event: &str, e: &Event) -> Value {
    let p = payload(e);
    let name = p["name"].as_str().unwrap_or_default().to_string();
    let version = p["version"].as_i64();
    let version_str = version.map(|v| v.to_string());
    let prompt = event.starts_with("prompt");
    match event {
        "registered_model.created" | "prompt.created" => {
            let m = store.get_registered_model(&name).ok();
            json!({
                "name": name,
                "tags": m.as_ref().map_or(json!({}), |m| tag_map(
                    m.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())), prompt)),
                "description": m.and_then(|m| m.description).filter(|d| !d.is_empty()),
            })
        }
        "model_version.created" | "prompt_version.created" => {
            let v = version.and_then(|n| store.get_model_version(&name, n).ok());
            let tags = v.as_ref().map_or(json!({}), |v| {
                tag_map(
                    v.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())),
                    prompt,
                )
            });
            let description = v
                .as_ref()
                .and_then(|v| v.description.clone())
                .filter(|d| !d.is_empty());
            if prompt {
                let template = v.as_ref().and_then(|v| {
                    v.tags
                        .iter()
                        .find(|t| t.key == "mlflow.prompt.text")
                        .map(|t| t.value.clone())
                });
                json!({ "name": name, "version": version_str, "template": template,
                        "tags": tags, "description": description })
            } else {
                json!({ "name": name, "version": version_str, "source": p["source"],
                        "run_id": p["run_id"], "tags": tags, "description": description })
            }
        }
        "model_version_tag.set" | "prompt_version_tag.set" => json!({
            "name": name, "version": version_str, "key": p["key"], "value": p["value"],
        }),
        "model_version_tag.deleted" | "prompt_version_tag.deleted" => json!({
            "name": name, "version": version_str, "key": p["key"],
        }),
        "model_version_alias.created" | "prompt_alias.created" => json!({
            "name": name, "alias": p["alias"], "version": version_str,
        }),
        "model_version_alias.deleted" | "prompt_alias.deleted" => json!({
            "name": name, "alias": p["alias"],
        }),
        _ => p,
    }
}

/// MLflow's example `data` of an event, sent by the test endpoint.
pub fn example_data(event: &str) -> Value {
    let tags = json!({ "example_key": "example_value" });
    match event {
        "registered_model.created" => json!({
            "name": "example_model", "tags": tags, "description": "An example registered model",
        }),
        "model_version.created" => json!({
            "name": "example_model", "version": "1", "source": "models:/123",
            "run_id": "abcd1234abcd5678", "tags": tags, "description": "An example model version",
        }),
        "model_version_tag.set" => json!({
            "name": "example_model", "version": "1", "key": "example_key", "value": "example_value",
        }),
        "model_version_tag.deleted" => json!({
            "name": "example_model", "version": "1", "key": "example_key",
        }),
        "model_version_alias.created" => json!({
            "name": "example_model", "alias": "example_alias", "version": "1",
        }),
        "model_version_alias.deleted" => {
            json!({ "name": "example_model", "alias": "example_alias" })
        }
        "prompt.created" => json!({
            "name": "example_prompt", "tags": tags, "description": "An example prompt",
        }),
        "prompt_version.created" => json!({
            "name": "example_prompt", "version": "1", "template": "Hello {{name}}!",
            "tags": tags, "description": "An example prompt version",
        }),
        "prompt_tag.set" => json!({
            "name": "example_prompt", "key": "example_key", "value": "example_value",
        }),
        "prompt_tag.deleted" => json!({ "name": "example_prompt", "key": "example_key" }),
        "prompt_version_tag.set" => json!({
            "name": "example_prompt", "version": "1", "key": "example_key", "value": "example_value",
        }),
        "prompt_version_tag.deleted" => json!({
            "name": "example_prompt", "version": "1", "key": "example_key",
        }),
        "prompt_alias.created" => json!({
            "name": "example_prompt", "alias": "example_alias", "version": "1",
        }),
        "prompt_alias.deleted" => json!({ "name": "example_prompt", "alias": "example_alias" }),
        "budget_policy.exceeded" => json!({
            "budget_policy_id": "bp-abc123", "budget_unit": "USD", "budget_amount": 100.0,
            "current_spend": 105.5, "duration_unit": "MONTHS", "duration_value": 1,
            "target_scope": "ENDPOINT", "workspace": "default", "target_value": "ep-abc123",
            "window_start": 1_704_067_200_000_i64,
        }),
        _ => json!({}),
    }
}

/// An example envelope for a Sextant kind (or pattern), for the test endpoint.
pub fn example_envelope(kind: &str, time_ms: i64) -> String {
    let kind = kind.trim_end_matches(".*").trim_end_matches('*');
    let kind = if kind.is_empty() {
        "webhook.test"
    } else {
        kind
    };
    envelope(&Event {
        id: 0,
        time: time_ms,
        kind: kind.to_string(),
        subject: "webhook:test".into(),
        actor: None,
        payload: "{\"test\":true}".into(),
    })
}
