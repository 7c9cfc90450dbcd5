//! The `register_model:` step: uploads a model directory to the step's
//! tracking run and registers it with the lineage of the run behind it.
//!
//! The version counts as created by the user the pipeline run acts for,
//! and, with authentication on, is registered only on their rights: EDIT
//! on an existing model, or the right to create a new one, as the API asks
//! of them; otherwise the step fails saying who lacks what.
//! Its gate (`approval: approved`, or `rejected`) decides only where the
//! model allows pipeline approval and, with authentication on, only on the
//! authority of the user who applied the pipeline: they must hold MANAGE on
//! the model, and the decision is recorded as `pipeline:<name>`. Otherwise
//! the version stays pending, and the version's comment and the step's
//! note say why.

use std::path::Path;

use sextant_core::entities::Tag;
use sextant_core::registry::{Approval, ApprovalStatus, FourEyes, NewModelVersion};
use sextant_pipelines::spec;
use sextant_store::{MetaStore, StoreError};

use super::Orchestrator;
use super::context::Context;
use super::deps::RegistryAuthz;
use super::failure::StepFailure;
use super::files::{upload_to_run, walk};
use super::service::USER;

/// What a register step did: the version, and why its gate's decision was
/// not applied, if it was not.
pub(super) struct Registered {
    pub(super) version: i64,
    pub(super) withheld: Option<String>,
}

impl Orchestrator {
    /// Uploads `dir` as `model/` of the step run and registers it.
    pub(super) async fn register(
        &self,
        ctx: &Context,
        step_run: &(String, String),
        name: &str,
        dir: &Path,
        approval: spec::Approval,
    ) -> Result<Registered, StepFailure> {
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
            .await?;
        }
        let authz = self.deps.authz.clone();
        let status = match approval {
            spec::Approval::Pending => ApprovalStatus::Pending,
            spec::Approval::Approved => ApprovalStatus::Approved,
            spec::Approval::Rejected => ApprovalStatus::Rejected,
        };
        let decider = match authz {
            Some(_) => format!("pipeline:{}", ctx.pipeline),
            None => USER.to_string(),
        };
        let mut new = NewModelVersion {
            name: name.to_string(),
            source: format!("{}/model", step_run.1.trim_end_matches('/')),
            run_id: Some(step_run.0.clone()),
            model_id: None,
            run_link: None,
            description: None,
            user_id: Some(ctx.started_by.clone().unwrap_or_else(|| USER.to_string())),
            tags: Vec::new(),
            approval: Some(Approval {
                status,
                actor: Some(decider),
                time: None,
                comment: Some("registered by a pipeline".to_string()),
            }),
            // The gate decides by its own rules, not four-eyes: the model's
            // `allow_pipeline_approval`, which the store reads in the
            // registering transaction, and its applier's rights (`withheld`).
            four_eyes: FourEyes::Gate,
        };
        let (model, pipeline, creator, run) = (
            name.to_string(),
            ctx.pipeline.clone(),
            ctx.started_by.clone(),
            ctx.run_id.clone(),
        );
        let registered = self
            .db(move |s| {
                new.tags = lineage(s, &new.run_id.clone().unwrap_or_default())?;
                let existing = match s.get_registered_model(&model) {
                    Ok(m) => Some(m),
                    Err(StoreError::Domain(sextant_core::Error::NotFound(_))) => None,
                    Err(e) => return Err(e),
                };
                if let Some(authz) = &authz
                    && let Some(refusal) = refused(
                        s,
                        authz.as_ref(),
                        creator.as_deref(),
                        &run,
                        &model,
                        existing.is_some(),
                    )?
                {
                    return Ok(Err(refusal));
                }
                if existing.is_none() {
                    s.create_registered_model(&model, None, &[])?;
                    if let (Some(authz), Some(user)) = (&authz, &creator) {
                        authz.grant_model_creator(s, user, &model)?;
                    }
                }
                let withheld = match status {
                    ApprovalStatus::Pending => None,
                    ApprovalStatus::Approved | ApprovalStatus::Rejected => {
                        withheld(s, authz.as_deref(), &pipeline, &model, status)?
                    }
                };
                if let Some(why) = &withheld {
                    new.approval = Some(Approval {
                        comment: Some(why.clone()),
                        ..Approval::default()
                    });
                }
                let v = s.create_model_version(&new)?;
                // The store left the decision out: the model does not take
                // pipelines' decisions, and the comment says so.
                let withheld = withheld.or_else(|| {
                    (status != ApprovalStatus::Pending
                        && v.approval.status == ApprovalStatus::Pending)
                        .then(|| v.approval.comment.clone().unwrap_or_default())
                });
                Ok(Ok(Registered {
                    version: v.version,
                    withheld,
                }))
            })
            .await?
            .map_err(StepFailure::permanent)?;
        if let Some(why) = &registered.withheld {
            tracing::warn!(model = name, version = registered.version, "{why}");
        }
        Ok(registered)
    }
}

/// Why the user a pipeline run acts for may not register a version of
/// `model` (`exists`: the model exists, else the step creates it), or
/// `None` when they may: the rights the API asks of them (EDIT on the
/// model; creating it), since the run registers on their behalf.
fn refused(
    s: &dyn MetaStore,
    authz: &dyn RegistryAuthz,
    user: Option<&str>,
    run: &str,
    model: &str,
    exists: bool,
) -> Result<Option<String>, StoreError> {
    let Some(user) = user else {
        return Ok(Some(format!(
            "pipeline run {run} acts for no user (its pipeline was applied without \
             authentication), so nobody's rights cover registering a version of model \
             '{model}'; apply the pipeline again, or retry the run, as a user with EDIT on it"
        )));
    };
    if authz.may_register(s, user, model, exists)? {
        return Ok(None);
    }
    Ok(Some(if exists {
        format!(
            "user '{user}', for whom pipeline run {run} runs, lacks EDIT on model '{model}', \
             which registering a version needs; a user with MANAGE on the model grants it, \
             then retry the run"
        )
    } else {
        format!(
            "user '{user}', for whom pipeline run {run} runs, may not create model '{model}' \
             (a DENY grant on registered models covers it), which registering its first \
             version needs"
        )
    }))
}

/// Why a pipeline's gate may not record `status` on a new version of
/// `model`, or `None` when it may as far as rights go: with authentication
/// on (`authz`), the user who applied the pipeline must hold MANAGE on the
/// model. (The model's `allow_pipeline_approval` is the store's to apply,
/// in the registering transaction: [`FourEyes::Gate`].)
fn withheld(
    s: &dyn MetaStore,
    authz: Option<&dyn RegistryAuthz>,
    pipeline: &str,
    model: &str,
    status: ApprovalStatus,
) -> Result<Option<String>, StoreError> {
    let left = format!("the version is left pending, not {status}");
    let Some(authz) = authz else {
        return Ok(None);
    };
    Ok(match s.get_pipeline(pipeline)?.applied_by {
        None => Some(format!(
            "{left}: pipeline '{pipeline}' was applied without authentication, so no user \
             vouches for its gate; apply it again as a user with MANAGE on model '{model}'"
        )),
        Some(user) if !authz.manages_model(s, &user, model)? => Some(format!(
            "{left}: '{user}', who applied pipeline '{pipeline}', lacks MANAGE on model \
             '{model}', and a pipeline decides only on its applier's authority"
        )),
        Some(_) => None,
    })
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
