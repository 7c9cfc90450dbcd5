//! The `register_model:` step: uploads a model directory to the step's
//! tracking run and registers it with the lineage of the run behind it.

use std::path::Path;

use sextant_core::entities::Tag;
use sextant_core::registry::{Approval, ApprovalStatus, NewModelVersion};
use sextant_pipelines::spec;
use sextant_store::{MetaStore, StoreError};

use super::Orchestrator;
use super::failure::StepFailure;
use super::files::{upload_to_run, walk};
use super::service::USER;

impl Orchestrator {
    /// Uploads `dir` as `model/` of the step run and registers it.
    pub(super) async fn register(
        &self,
        step_run: &(String, String),
        name: &str,
        dir: &Path,
        approval: spec::Approval,
    ) -> Result<i64, StepFailure> {
        if !dir.is_dir() {
            return Err(StepFailure::permanent(format!(
                "model directory {} does not exist",
                dir.display()
            )));
        }
        for file in walk(dir)
            .map_err(|e| StepFailure::retryable(format!("reading {}: {e}", dir.display())))?
        {
            let rel = file.strip_prefix(dir).unwrap_or(&file);
            let rel = rel.to_string_lossy().replace('\\', "/");
            upload_to_run(
                self.deps.artifacts.as_ref(),
                &step_run.1,
                &format!("model/{rel}"),
                &file,
            )
            .await
            .map_err(StepFailure::retryable)?;
        }
        let mut new = NewModelVersion {
            name: name.to_string(),
            source: format!("{}/model", step_run.1.trim_end_matches('/')),
            run_id: Some(step_run.0.clone()),
            model_id: None,
            run_link: None,
            description: None,
            user_id: Some(USER.to_string()),
            tags: Vec::new(),
            approval: Some(Approval {
                status: match approval {
                    spec::Approval::Pending => ApprovalStatus::Pending,
                    spec::Approval::Approved => ApprovalStatus::Approved,
                    spec::Approval::Rejected => ApprovalStatus::Rejected,
                },
                actor: Some(USER.to_string()),
                time: None,
                comment: Some("registered by a pipeline".to_string()),
            }),
        };
        let model = name.to_string();
        let version = self
            .db(move |s| {
                new.tags = lineage(s, &new.run_id.clone().unwrap_or_default())?;
                match s.get_registered_model(&model) {
                    Ok(_) => {}
                    Err(StoreError::Domain(sextant_core::Error::NotFound(_))) => {
                        s.create_registered_model(&model, None, &[])?;
                    }
                    Err(e) => return Err(e),
                }
                s.create_model_version(&new)
            })
            .await?;
        Ok(version.version)
    }
}

/// The lineage a registered version carries: its pipeline run and, from the
/// pipeline's tracking run, what triggered it (event, monitor run).
fn lineage(s: &dyn MetaStore, step_run: &str) -> Result<Vec<Tag>, StoreError> {
    let step = s.get_run(step_run)?;
    let tag = |run: &sextant_core::entities::Run, key: &str| {
        run.data
            .tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.clone())
    };
    let mut tags = Vec::new();
    if let Some(id) = tag(&step, "sextant.pipelineRun") {
        tags.push(Tag::new("sextant.pipelineRun", id));
    }
    if let Some(parent) = tag(&step, "mlflow.parentRunId") {
        let parent = s.get_run(&parent)?;
        tags.extend(parent.data.tags.into_iter().filter(|t| {
            t.key.starts_with("sextant.trigger") || t.key.starts_with("sextant.monitor")
        }));
    }
    Ok(tags)
}
