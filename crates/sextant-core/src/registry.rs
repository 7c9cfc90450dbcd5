//! Model registry entities: registered models, their versions, stages,
//! aliases and approval decisions; and the events every lifecycle change
//! appends. Times are milliseconds since the Unix epoch.

use std::fmt;

use crate::Error;
use crate::entities::Tag;

/// MLflow's (deprecated but still used) model version stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    /// The wire and storage name (`None`, `Staging`, `Production`, `Archived`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Parses a stage case-insensitively, with MLflow's message on failure.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Stage::None),
            "staging" => Ok(Stage::Staging),
            "production" => Ok(Stage::Production),
            "archived" => Ok(Stage::Archived),
            _ => Err(Error::invalid(format!(
                "Invalid Model Version stage: {s}. Value must be one of None, Staging, \
                 Production, Archived."
            ))),
        }
    }

    /// Every stage, in MLflow's order.
    pub const ALL: [Stage; 4] = [
        Stage::None,
        Stage::Staging,
        Stage::Production,
        Stage::Archived,
    ];
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The registration state of a version (MLflow's `ModelVersionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelVersionStatus {
    PendingRegistration,
    FailedRegistration,
    Ready,
}

impl ModelVersionStatus {
    /// The MLflow enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelVersionStatus::PendingRegistration => "PENDING_REGISTRATION",
            ModelVersionStatus::FailedRegistration => "FAILED_REGISTRATION",
            ModelVersionStatus::Ready => "READY",
        }
    }

    /// Parses the MLflow enum name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING_REGISTRATION" => Some(ModelVersionStatus::PendingRegistration),
            "FAILED_REGISTRATION" => Some(ModelVersionStatus::FailedRegistration),
            "READY" => Some(ModelVersionStatus::Ready),
            _ => None,
        }
    }
}

/// A governance decision on a version, separate from stages and aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalStatus {
    #[default]
    Pending,
    Approved,
    Rejected,
}

impl ApprovalStatus {
    /// The wire and storage name (`pending`, `approved`, `rejected`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
        }
    }

    /// Parses a status case-insensitively.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "pending" => Ok(ApprovalStatus::Pending),
            "approved" => Ok(ApprovalStatus::Approved),
            "rejected" => Ok(ApprovalStatus::Rejected),
            _ => Err(Error::invalid(format!(
                "Invalid approval status '{s}'. Value must be one of pending, approved, rejected."
            ))),
        }
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The current approval decision of a version: who decided, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Approval {
    pub status: ApprovalStatus,
    pub actor: Option<String>,
    pub time: Option<i64>,
    pub comment: Option<String>,
}

/// One version of a registered model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    /// The source as the client gave it (`models:/m-…`, `runs:/…/path`, a URI).
    pub source: String,
    /// Where the files are: the source resolved to an artifact URI.
    pub storage_location: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub user_id: Option<String>,
    pub current_stage: Stage,
    pub status: ModelVersionStatus,
    pub status_message: Option<String>,
    pub approval: Approval,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub tags: Vec<Tag>,
    /// Aliases pointing at this version.
    pub aliases: Vec<String>,
}

/// What a client gives to register a version.
#[derive(Debug, Clone, Default)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub user_id: Option<String>,
    pub tags: Vec<Tag>,
    /// The initial approval (default `pending`), with its actor and comment.
    pub approval: Option<Approval>,
    /// Whether the initial approval's actor is held to four-eyes.
    pub four_eyes: FourEyes,
}

/// Whether the store holds a decision's actor to four-eyes, in the
/// transaction that records the decision (so a settings change cannot land
/// between the check and the write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FourEyes {
    /// No check: the actor is declared rather than authenticated
    /// (authentication off), or is a pipeline's gate, which has rules of
    /// its own.
    #[default]
    Off,
    /// The actor is the authenticated caller: while the model's
    /// `require_distinct_approver` is on, approving a version they created
    /// (registered it, or a pipeline run acting for them did) is refused
    /// with [`crate::Error::PermissionDenied`] ([`self_approval`]).
    Held,
    /// The actor is a pipeline's `register_model:` gate: its decision
    /// stands only while the model's `allow_pipeline_approval` is on, read
    /// under the model's row lock in the transaction that registers the
    /// version. Otherwise the version is registered pending, its comment
    /// saying why ([`pipeline_approval_off`]).
    Gate,
}

/// Why a pipeline's gate did not record `status` on a new version of
/// model `name`, whose `allow_pipeline_approval` is off.
pub fn pipeline_approval_off(name: &str, status: ApprovalStatus) -> String {
    format!(
        "the version is left pending, not {status}: model '{name}' does not take decisions \
         from pipelines (allow_pipeline_approval is off); a user with MANAGE on it must decide"
    )
}

/// The refusal of `user` approving `what` (a version of model `name`)
/// they created (`how`).
pub fn self_approval(user: &str, name: &str, what: &str, how: &str) -> crate::Error {
    crate::Error::PermissionDenied(format!(
        "four-eyes: {user} may not approve {what} of model '{name}' because they created it \
         ({how}); another user with MANAGE on the model must approve it. To let creators \
         approve their own versions of this model, a user with MANAGE on it sets \
         require_distinct_approver to false (PATCH /api/v1/models/{name}/approval-settings)"
    ))
}

/// An alias of a registered model and the version it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub alias: String,
    pub version: i64,
}

/// A registered model's rules for deciding approvals, both on unless
/// turned off for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// Four-eyes: nobody approves a version they created (with
    /// authentication on, where "who" is known rather than declared).
    pub require_distinct_approver: bool,
    /// A pipeline's `register_model: {approval: approved}` may approve the
    /// version it registers.
    pub allow_pipeline_approval: bool,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            require_distinct_approver: true,
            allow_pipeline_approval: true,
        }
    }
}

/// A change of [`ApprovalSettings`]: the settings given change, the others
/// keep their value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApprovalSettingsUpdate {
    pub require_distinct_approver: Option<bool>,
    pub allow_pipeline_approval: Option<bool>,
}

/// A named, versioned model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredModel {
    pub name: String,
    pub description: Option<String>,
    pub user_id: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub approval_settings: ApprovalSettings,
    pub tags: Vec<Tag>,
    pub aliases: Vec<Alias>,
    /// The newest version in each stage that has one (MLflow's `latest_versions`).
    pub latest_versions: Vec<ModelVersion>,
}

/// One appended lifecycle change. `kind` is `<entity>.<change>` such as
/// `run.created` or `model_version.approved`; `subject` names the entity
/// (`run:<id>`, `model_version:<name>/<version>`, …); `payload` is a JSON
/// object as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    pub time: i64,
    pub kind: String,
    pub subject: String,
    pub actor: Option<String>,
    pub payload: String,
}
