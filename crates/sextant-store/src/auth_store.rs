//! The [`AuthStore`] trait: users, roles, their grants and API tokens, in
//! the metadata store's database (so a team's servers on one PostgreSQL
//! share them). Reached through [`crate::MetaStore::auth`]. Password and
//! token hashing happen in the server; this stores hashes only.
//!
//! Errors follow MLflow's auth app: an unknown user, role, grant or token
//! is `NotFound`; a duplicate user name, role name (per workspace), grant
//! or assignment is `AlreadyExists` (its message never holds a hash).

use sextant_core::auth::{
    ApiToken, Assignment, NewApiToken, Permission, PermissionRow, Role, RolePermission, StoredUser,
    User,
};

use crate::StoreError;

pub trait AuthStore: Send + Sync {
    /// Creates a user. Refuses a taken name.
    fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<User, StoreError>;
    /// The user with that exact name.
    fn get_user(&self, username: &str) -> Result<StoredUser, StoreError>;
    /// The user with that id.
    fn get_user_by_id(&self, user_id: i64) -> Result<StoredUser, StoreError>;
    /// Every user, by name.
    fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// How many users exist (a server with `--auth` and none refuses to start).
    fn count_users(&self) -> Result<u64, StoreError>;
    /// Replaces a user's password hash.
    fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<(), StoreError>;
    /// Makes a user an admin or not.
    fn set_admin(&self, username: &str, is_admin: bool) -> Result<(), StoreError>;
    /// Deletes a user, their assignments, their hidden role and their tokens.
    fn delete_user(&self, username: &str) -> Result<(), StoreError>;

    /// Creates a role (no grants yet). Names starting with `__user_` are
    /// refused (`InvalidParameter`), as are empty names.
    fn create_role(
        &self,
        workspace: &str,
        name: &str,
        description: Option<&str>,
    ) -> Result<Role, StoreError>;
    /// A role with its grants.
    fn get_role(&self, role_id: i64) -> Result<Role, StoreError>;
    /// Roles (with grants) of the given workspaces, or of all when `None`,
    /// by workspace and name; hidden per-user roles included.
    fn list_roles(&self, workspaces: Option<&[String]>) -> Result<Vec<Role>, StoreError>;
    /// Renames a role and/or changes its description (`Some("")` clears it).
    fn update_role(
        &self,
        role_id: i64,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Role, StoreError>;
    /// Deletes a role with its grants and assignments.
    fn delete_role(&self, role_id: i64) -> Result<(), StoreError>;

    /// Adds a grant to a role (validated with `validate_grant`).
    fn add_role_permission(
        &self,
        role_id: i64,
        resource_type: &str,
        resource_pattern: &str,
        permission: Permission,
    ) -> Result<RolePermission, StoreError>;
    /// Changes a grant's level.
    fn update_role_permission(
        &self,
        id: i64,
        permission: Permission,
    ) -> Result<RolePermission, StoreError>;
    /// Removes a grant.
    fn remove_role_permission(&self, id: i64) -> Result<(), StoreError>;

    /// Gives a user a role.
    fn assign_role(&self, user_id: i64, role_id: i64) -> Result<Assignment, StoreError>;
    /// Takes a role from a user (`NotFound` if they did not hold it).
    fn unassign_role(&self, user_id: i64, role_id: i64) -> Result<(), StoreError>;
    /// Who holds a role.
    fn role_assignments(&self, role_id: i64) -> Result<Vec<Assignment>, StoreError>;
    /// The roles (with grants) a user holds, hidden role included.
    fn roles_of_user(&self, user_id: i64) -> Result<Vec<Role>, StoreError>;
    /// Every grant a user holds through any role, in one query: what each
    /// request's authorization reads (cached by the server).
    fn permissions_of_user(&self, user_id: i64) -> Result<Vec<PermissionRow>, StoreError>;

    /// Grants a user a level on one resource directly: a row of their
    /// hidden role in the default workspace, created on first use. A grant
    /// of the same (type, id) exists already ⇒ `AlreadyExists`.
    fn grant_user_permission(
        &self,
        user_id: i64,
        resource_type: &str,
        resource_id: &str,
        permission: Permission,
    ) -> Result<(), StoreError>;
    /// Revokes a direct grant (`NotFound` if there is none).
    fn revoke_user_permission(
        &self,
        user_id: i64,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<(), StoreError>;
    /// Points every grant on (type, `old`) in hidden per-user roles at `new`
    /// (a registered model renamed; roles an admin wrote keep their pattern,
    /// as in MLflow).
    fn rename_resource_grants(
        &self,
        resource_type: &str,
        old: &str,
        new: &str,
    ) -> Result<(), StoreError>;
    /// Drops every grant on (type, id) in hidden per-user roles (a
    /// registered model deleted: a new one of that name starts clean).
    fn delete_resource_grants(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<(), StoreError>;

    /// Stores a new token (its SHA-256 only).
    fn create_token(&self, new: &NewApiToken) -> Result<ApiToken, StoreError>;
    /// The token with that SHA-256 and its user, revoked or expired ones
    /// included (the caller decides; `NotFound` if none).
    fn token_by_hash(&self, token_sha256: &str) -> Result<(ApiToken, StoredUser), StoreError>;
    /// A user's tokens, newest first.
    fn list_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>, StoreError>;
    /// Revokes a user's token (`NotFound` if it is not theirs).
    fn revoke_token(&self, user_id: i64, token_id: i64) -> Result<(), StoreError>;
    /// Records that a token was used at `now_ms`, unless a use at most
    /// `every_ms` before is recorded already (by any server of the store);
    /// answers whether it wrote. Callers also ask only that often, so a
    /// token in constant use costs one write per interval, not per request.
    fn record_token_use(
        &self,
        token_id: i64,
        now_ms: i64,
        every_ms: i64,
    ) -> Result<bool, StoreError>;
}
