//! Who may decide a model version's approval, with authentication on.
//!
//! The route table already asks MANAGE on the model of whoever decides
//! (`POST /api/v1/models/{name}/versions/{version}/approval`). On top of
//! it, four-eyes: with the model's `require_distinct_approver` on (the
//! default), nobody approves a version they created — the user who
//! registered it, or, for a version a pipeline run registered, the user
//! that run acts for. Admins are held to it too: separation of duties is
//! the point, and an admin who must approve alone turns the setting off
//! for that model, which the events feed records. Rejecting, or resetting
//! to pending, stays open to the creator: it grants nothing.
//!
//! The four-eyes check itself runs in the store, in the transaction that
//! records the decision (`FourEyes::Held`), so a settings change cannot
//! land between check and write.
//!
//! The decision is recorded as the caller, never as a name the request
//! declares. This server's own pipeline steps (the internal token) decide
//! nothing through the API: a pipeline decides only through its
//! `register_model:` gate, under the model's `allow_pipeline_approval`
//! (`sextant-control`'s register step, which asks [`ServerRegistryAuthz`]).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sextant_control::pipelines::RegistryAuthz;
use sextant_core::auth::Permission;
use sextant_store::{MetaStore, StoreError};

use super::policy::Grants;
use super::{Auth, Method, Principal};
use crate::error::{ApiError, ErrorCode};

/// The authenticated caller of a request: `None` with authentication off.
pub struct Caller(pub Option<Arc<Principal>>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(parts.extensions.get::<Arc<Principal>>().cloned()))
    }
}

impl Caller {
    /// The caller's user name, with authentication on.
    pub fn username(&self) -> Option<String> {
        self.0.as_ref().map(|p| p.user.username.clone())
    }
}

fn refused(message: String) -> ApiError {
    ApiError::new(ErrorCode::PermissionDenied, message)
}

/// Whether these grants hold MANAGE on a registered model's versions: the
/// check the route table makes of an approval (MANAGE on the model, and no
/// DENY on the versions' tier).
fn manages(grants: &Grants, model: &str) -> bool {
    grants.level("registered_model", model).can_manage()
        && grants.explicit("registered_model_version", "*") != Some(Permission::Deny)
}

/// Whether the caller holds MANAGE on `model` (admins do).
pub fn caller_manages(auth: &Auth, p: &Principal, model: &str) -> bool {
    p.user.is_admin
        || manages(
            &Grants {
                rows: &p.rows,
                default: auth.settings.default_permission,
            },
            model,
        )
}

/// The name a decision is recorded under: the caller's. This server's own
/// pipeline steps are refused.
pub fn decider(p: &Principal) -> Result<String, ApiError> {
    if p.method == Method::Internal {
        return Err(refused(
            "a pipeline step may not decide approvals through the API: a pipeline decides \
             only through its register_model step's `approval:`, where the model allows it \
             (allow_pipeline_approval)"
                .into(),
        ));
    }
    Ok(p.user.username.clone())
}

/// The server's answers to the register step (`sextant-control`), from
/// the same grants and rules that decide requests.
pub struct ServerRegistryAuthz {
    auth: Arc<Auth>,
}

impl ServerRegistryAuthz {
    pub fn new(auth: Arc<Auth>) -> Self {
        ServerRegistryAuthz { auth }
    }

    fn user(s: &dyn MetaStore, name: &str) -> Result<Option<sextant_core::auth::User>, StoreError> {
        match s.auth().get_user(name) {
            Ok(u) => Ok(Some(u.user)),
            Err(StoreError::Domain(sextant_core::Error::NotFound(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl RegistryAuthz for ServerRegistryAuthz {
    fn manages_model(
        &self,
        s: &dyn MetaStore,
        user: &str,
        model: &str,
    ) -> Result<bool, StoreError> {
        let Some(u) = Self::user(s, user)? else {
            return Ok(false);
        };
        if u.is_admin {
            return Ok(true);
        }
        let rows = s.auth().permissions_of_user(u.id)?;
        Ok(manages(
            &Grants {
                rows: &rows,
                default: self.auth.settings.default_permission,
            },
            model,
        ))
    }

    fn may_register(
        &self,
        s: &dyn MetaStore,
        user: &str,
        model: &str,
        exists: bool,
    ) -> Result<bool, StoreError> {
        let Some(u) = Self::user(s, user)? else {
            return Ok(false);
        };
        if u.is_admin {
            return Ok(true);
        }
        let rows = s.auth().permissions_of_user(u.id)?;
        let grants = Grants {
            rows: &rows,
            default: self.auth.settings.default_permission,
        };
        // The checks `authz.rs` makes of `model-versions/create` (EDIT)
        // and `registered-models/create`.
        Ok(if exists {
            grants.level("registered_model", model).can_update()
        } else {
            grants.may_create("registered_model", model)
        })
    }

    fn grant_model_creator(
        &self,
        s: &dyn MetaStore,
        user: &str,
        model: &str,
    ) -> Result<(), StoreError> {
        let Some(u) = Self::user(s, user)? else {
            return Ok(());
        };
        match s
            .auth()
            .grant_user_permission(u.id, "registered_model", model, Permission::Manage)
        {
            Ok(()) | Err(StoreError::Domain(sextant_core::Error::AlreadyExists(_))) => {}
            Err(e) => return Err(e),
        }
        self.auth.changed();
        Ok(())
    }
}
