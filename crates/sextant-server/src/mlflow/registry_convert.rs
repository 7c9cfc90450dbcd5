//! Registry entities to MLflow proto-JSON, as the 3.17.2 SQL registry writes
//! them (`RegisteredModel.to_proto`, `ModelVersion.to_proto`).
//!
//! Two asymmetries are MLflow's and kept on purpose: a version always carries
//! `description`, `run_id` and `run_link` (the handler stores `""` for an
//! unset field), while a registered model omits an empty description. The
//! OSS registry does not echo a version's `model_id`, nor Sextant's approval
//! (the native API serves that), so neither is written here.

use serde_json::Value;
use sextant_core::registry::{ModelVersion, RegisteredModel};

use super::convert::tags;
use super::wire::Obj;

/// A `RegisteredModel` message.
pub fn registered_model(m: &RegisteredModel) -> Obj {
    Obj::new()
        .set("name", m.name.as_str())
        .set("creation_timestamp", m.creation_timestamp)
        .set("last_updated_timestamp", m.last_updated_timestamp)
        .opt("user_id", m.user_id.as_deref())
        .opt(
            "description",
            m.description.as_deref().filter(|d| !d.is_empty()),
        )
        .list("latest_versions", model_versions(&m.latest_versions))
        .list("tags", tags(&m.tags))
        .list(
            "aliases",
            m.aliases
                .iter()
                .map(|a| {
                    Obj::new()
                        .set("alias", a.alias.as_str())
                        .set("version", a.version.to_string())
                        .into()
                })
                .collect(),
        )
}

/// A `ModelVersion` message; `version` is a string on the wire.
pub fn model_version(v: &ModelVersion) -> Obj {
    Obj::new()
        .set("name", v.name.as_str())
        .set("version", v.version.to_string())
        .set("creation_timestamp", v.creation_timestamp)
        .set("last_updated_timestamp", v.last_updated_timestamp)
        .opt("user_id", v.user_id.as_deref())
        .set("current_stage", v.current_stage.as_str())
        .set("description", v.description.as_deref().unwrap_or(""))
        .set("source", v.source.as_str())
        .set("run_id", v.run_id.as_deref().unwrap_or(""))
        .set("status", v.status.as_str())
        .opt(
            "status_message",
            v.status_message.as_deref().filter(|m| !m.is_empty()),
        )
        .list("tags", tags(&v.tags))
        .set("run_link", v.run_link.as_deref().unwrap_or(""))
        .list(
            "aliases",
            v.aliases.iter().map(|a| Value::from(a.as_str())).collect(),
        )
}

/// A repeated `ModelVersion` field.
pub fn model_versions(vs: &[ModelVersion]) -> Vec<Value> {
    vs.iter().map(|v| model_version(v).into()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sextant_core::entities::Tag;
    use sextant_core::registry::{Alias, Approval, ModelVersionStatus, Stage};

    use super::*;

    fn version() -> ModelVersion {
        ModelVersion {
            name: "m".into(),
            version: 2,
            source: "models:/m-1".into(),
            storage_location: "mlflow-artifacts:/0/models/m-1/artifacts".into(),
            run_id: Some("r1".into()),
            model_id: Some("m-1".into()),
            run_link: None,
            description: None,
            user_id: None,
            current_stage: Stage::Staging,
            status: ModelVersionStatus::Ready,
            status_message: None,
            approval: Approval::default(),
            creation_timestamp: 5,
            last_updated_timestamp: 6,
            tags: vec![],
            aliases: vec!["champion".into()],
        }
    }

    #[test]
    fn a_version_writes_what_the_sql_registry_writes() {
        let v: Value = model_version(&version()).into();
        assert_eq!(
            v,
            json!({
                "name": "m", "version": "2", "creation_timestamp": 5,
                "last_updated_timestamp": 6, "current_stage": "Staging",
                "description": "", "source": "models:/m-1", "run_id": "r1",
                "status": "READY", "run_link": "", "aliases": ["champion"]
            })
        );
    }

    #[test]
    fn a_model_omits_an_empty_description_and_writes_alias_versions_as_strings() {
        let m = RegisteredModel {
            name: "m".into(),
            description: Some(String::new()),
            user_id: None,
            creation_timestamp: 1,
            last_updated_timestamp: 2,
            approval_settings: Default::default(),
            tags: vec![Tag::new("k", "v")],
            aliases: vec![Alias {
                alias: "champion".into(),
                version: 2,
            }],
            latest_versions: vec![],
        };
        let v: Value = registered_model(&m).into();
        assert_eq!(
            v,
            json!({
                "name": "m", "creation_timestamp": 1, "last_updated_timestamp": 2,
                "tags": [{"key": "k", "value": "v"}],
                "aliases": [{"alias": "champion", "version": "2"}]
            })
        );
    }
}
