//! Four-eyes, checked in the transaction that records a decision: with a
//! model's `require_distinct_approver` on, an authenticated user may not
//! approve a version they created — registered it, or a pipeline run
//! acting for them did.
//!
//! The check and the write share one transaction, and the model's row is
//! locked before its settings are read (`FOR UPDATE` on PostgreSQL, whose
//! `UPDATE` of the settings takes the same lock; SQLite's write
//! transactions are serialized anyway), so turning the setting on cannot
//! land between the check and the decision.

use sextant_core::Error;
use sextant_core::registry::{ApprovalSettings, ApprovalStatus, ModelVersion, self_approval};

use super::{pipelines, registry};
use crate::StoreError;
use crate::backend::{Conn, Dialect, SqlValue};

/// The tag naming the pipeline run that registered a version (on the
/// version, or on the run it was registered from).
const PIPELINE_RUN_TAG: &str = "sextant.pipelineRun";

/// A model's approval settings, read under its row lock.
pub fn settings_locked(c: &mut dyn Conn, name: &str) -> Result<ApprovalSettings, StoreError> {
    let lock = match c.dialect() {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let rows = c.query(
        &format!(
            "SELECT require_distinct_approver, allow_pipeline_approval FROM registered_models \
             WHERE name = ?{lock}"
        ),
        &[name.into()],
    )?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| registry::model_not_found(name))?;
    let [distinct, pipeline]: [SqlValue; 2] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short approval settings row".into()))?;
    Ok(ApprovalSettings {
        require_distinct_approver: distinct.int()? != 0,
        allow_pipeline_approval: pipeline.int()? != 0,
    })
}

/// Refuses `user` deciding `status` on version `v` of a model whose
/// settings are `settings`, when that is approving a version they created.
pub fn check_decision(
    c: &mut dyn Conn,
    settings: ApprovalSettings,
    user: &str,
    v: &ModelVersion,
    status: ApprovalStatus,
) -> Result<(), StoreError> {
    if status != ApprovalStatus::Approved || !settings.require_distinct_approver {
        return Ok(());
    }
    match creators(c, v)?.into_iter().find(|(u, _)| u == user) {
        None => Ok(()),
        Some((_, how)) => {
            Err(self_approval(user, &v.name, &format!("version {}", v.version), &how).into())
        }
    }
}

/// Refuses `user` approving the version they register, when the model
/// (`settings`) requires a distinct approver: its registrant created it.
pub fn check_registration(
    settings: ApprovalSettings,
    user: &str,
    name: &str,
    status: ApprovalStatus,
) -> Result<(), StoreError> {
    if status != ApprovalStatus::Approved || !settings.require_distinct_approver {
        return Ok(());
    }
    Err(self_approval(user, name, "the version it registers", "they register it").into())
}

/// Who created a version: the user who registered it and, when a pipeline
/// run registered it (the version's or its run's `sextant.pipelineRun`
/// tag), the user that run acts for — each with how they count.
fn creators(c: &mut dyn Conn, v: &ModelVersion) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    if let Some(user) = &v.user_id {
        out.push((user.clone(), "registered it".to_string()));
    }
    let mut pipeline_run = v
        .tags
        .iter()
        .find(|t| t.key == PIPELINE_RUN_TAG)
        .map(|t| t.value.clone());
    if pipeline_run.is_none()
        && let Some(run) = &v.run_id
    {
        pipeline_run = c
            .query(
                "SELECT t.value FROM run_tags t JOIN runs r ON r.rid = t.rid \
                 WHERE r.run_uuid = ? AND t.key = ?",
                &[run.as_str().into(), PIPELINE_RUN_TAG.into()],
            )?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .map(SqlValue::text)
            .transpose()?;
    }
    let run = match pipeline_run {
        None => None,
        Some(id) => match pipelines::get_run(c, &id) {
            Ok(run) => Some(run),
            // The tag names a run this store does not hold (copied data).
            Err(StoreError::Domain(Error::NotFound(_))) => None,
            Err(e) => return Err(e),
        },
    };
    if let Some(run) = run
        && let Some(user) = run.started_by
    {
        let id = run.id;
        out.push((
            user,
            format!("pipeline run {id}, which registered it, acts for them"),
        ));
    }
    Ok(out)
}
