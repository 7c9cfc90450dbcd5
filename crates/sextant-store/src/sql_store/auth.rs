//! Users, roles, grants and API tokens ([`AuthStore`]), stored as MLflow
//! 3.17's basic-auth app stores them (`../shared/reference/mlflow-auth.md`
//! §2): a user's direct grants are rows of their hidden role
//! `__user_<id>__` in the default workspace.
//!
//! Uniqueness is settled by `INSERT … ON CONFLICT DO NOTHING RETURNING`: no
//! returned row means the name, grant or assignment exists already, whoever
//! won a race, so a duplicate is always `AlreadyExists` and never a database
//! error (MLflow's message carried the SQL error, password hash included).
//! Messages are MLflow's, without that suffix.

use std::collections::HashMap;

use sextant_core::Error;
use sextant_core::auth::{
    ApiToken, Assignment, DEFAULT_WORKSPACE, NewApiToken, Permission, PermissionRow,
    RESOURCE_TYPES, Role, RolePermission, StoredUser, USER_ROLE_PREFIX, User, user_role_name,
    validate_grant, validate_username,
};

use super::{SqlStore, now_ms};
use crate::backend::{Backend, Conn, Row, SqlValue, placeholders};
use crate::{AuthStore, StoreError};

const USER_COLUMNS: &str = "id, username, is_admin, password_hash";
const ROLE_COLUMNS: &str = "r.id, r.name, r.workspace, r.description";
const GRANT_COLUMNS: &str = "p.id, p.role_id, p.resource_type, p.resource_pattern, p.permission";
const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.name, t.scopes, t.created_time, t.expires_time, \
     t.revoked_time, t.last_used_time";
/// How many columns `TOKEN_COLUMNS` names.
const TOKEN_FIELDS: usize = 8;

fn fields<const N: usize>(row: Row, what: &str) -> Result<[SqlValue; N], StoreError> {
    row.try_into()
        .map_err(|_| StoreError::Corrupt(format!("short {what} row")))
}

/// The one value of a one-column, at-most-one-row result.
fn single(rows: Vec<Row>) -> Option<SqlValue> {
    rows.into_iter().next().and_then(|r| r.into_iter().next())
}

fn count(c: &mut dyn Conn, sql: &str, params: &[SqlValue]) -> Result<i64, StoreError> {
    single(c.query(sql, params)?).map_or(Ok(0), |v| v.int())
}

/// Roles whose names carry the reserved prefix: users' hidden roles. A
/// prefix test, not `LIKE`, because `_` is a `LIKE` wildcard.
fn hidden_role_ids() -> String {
    format!(
        "SELECT id FROM roles WHERE substr(name, 1, {}) = '{USER_ROLE_PREFIX}'",
        USER_ROLE_PREFIX.len()
    )
}

fn is_hidden(name: &str) -> bool {
    name.starts_with(USER_ROLE_PREFIX)
}

fn permission(s: &str) -> Result<Permission, StoreError> {
    Permission::parse(s).map_err(|_| StoreError::Corrupt(format!("permission level {s}")))
}

fn decode_user(row: Row) -> Result<StoredUser, StoreError> {
    let [id, username, is_admin, hash] = fields(row, "user")?;
    Ok(StoredUser {
        user: User {
            id: id.int()?,
            username: username.text()?,
            is_admin: is_admin.int()? != 0,
        },
        password_hash: hash.text()?,
    })
}

fn decode_grant(row: Row) -> Result<RolePermission, StoreError> {
    let [id, role_id, resource_type, pattern, level] = fields(row, "role permission")?;
    Ok(RolePermission {
        id: id.int()?,
        role_id: role_id.int()?,
        resource_type: resource_type.text()?,
        resource_pattern: pattern.text()?,
        permission: permission(&level.text()?)?,
    })
}

fn decode_token(row: Row) -> Result<ApiToken, StoreError> {
    let [
        id,
        user_id,
        name,
        scopes,
        created,
        expires,
        revoked,
        last_used,
    ]: [SqlValue; TOKEN_FIELDS] = fields(row, "api token")?;
    let scopes = scopes.text()?;
    Ok(ApiToken {
        id: id.int()?,
        user_id: user_id.int()?,
        name: name.text()?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|_| StoreError::Corrupt(format!("token scopes {scopes}")))?,
        created_ms: created.int()?,
        expires_ms: expires.opt_int()?,
        revoked_ms: revoked.opt_int()?,
        last_used_ms: last_used.opt_int()?,
    })
}

fn user_by(
    c: &mut dyn Conn,
    column: &str,
    key: SqlValue,
) -> Result<Option<StoredUser>, StoreError> {
    let rows = c.query(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?"),
        &[key],
    )?;
    rows.into_iter().next().map(decode_user).transpose()
}

fn user_named(c: &mut dyn Conn, username: &str) -> Result<StoredUser, StoreError> {
    user_by(c, "username", username.into())?
        .ok_or_else(|| Error::not_found(format!("User with username={username} not found")).into())
}

fn user_with_id(c: &mut dyn Conn, user_id: i64) -> Result<StoredUser, StoreError> {
    user_by(c, "id", user_id.into())?
        .ok_or_else(|| Error::not_found(format!("User with id={user_id} not found")).into())
}

fn create_user(
    c: &mut dyn Conn,
    username: &str,
    password_hash: &str,
    is_admin: bool,
) -> Result<User, StoreError> {
    validate_username(username)?;
    let id = single(c.query(
        "INSERT INTO users (username, password_hash, is_admin, created_time) VALUES (?, ?, ?, ?) \
         ON CONFLICT (username) DO NOTHING RETURNING id",
        &[
            username.into(),
            password_hash.into(),
            i64::from(is_admin).into(),
            now_ms().into(),
        ],
    )?)
    .ok_or_else(|| Error::AlreadyExists(format!("User (username={username}) already exists.")))?;
    Ok(User {
        id: id.int()?,
        username: username.to_string(),
        is_admin,
    })
}

/// Sets one column of a named user.
fn update_user(
    c: &mut dyn Conn,
    username: &str,
    column: &str,
    value: SqlValue,
) -> Result<(), StoreError> {
    let changed = c.exec(
        &format!("UPDATE users SET {column} = ? WHERE username = ?"),
        &[value, username.into()],
    )?;
    if changed == 0 {
        return Err(Error::not_found(format!("User with username={username} not found")).into());
    }
    Ok(())
}

fn delete_user(c: &mut dyn Conn, username: &str) -> Result<(), StoreError> {
    let user = user_named(c, username)?;
    // The hidden role is not the user's row's dependent, so no cascade
    // reaches it; its grants and assignment go with it.
    c.exec(
        "DELETE FROM roles WHERE name = ?",
        &[user_role_name(user.user.id).into()],
    )?;
    c.exec("DELETE FROM users WHERE id = ?", &[user.user.id.into()])?;
    Ok(())
}

fn check_role_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid("Role name cannot be empty."));
    }
    if is_hidden(name) {
        return Err(Error::invalid(format!(
            "Role name '{name}' uses the reserved '{USER_ROLE_PREFIX}' prefix, which is held \
             for the per-user permission representation. Choose a different name."
        )));
    }
    Ok(())
}

/// Roles matching `filter` (a condition on `r`), by workspace and name,
/// each with its grants.
fn roles_where(
    c: &mut dyn Conn,
    filter: &str,
    params: &[SqlValue],
) -> Result<Vec<Role>, StoreError> {
    let mut roles = c
        .query(
            &format!(
                "SELECT {ROLE_COLUMNS} FROM roles r WHERE {filter} ORDER BY r.workspace, r.name"
            ),
            params,
        )?
        .into_iter()
        .map(|row| {
            let [id, name, workspace, description] = fields(row, "role")?;
            Ok(Role {
                id: id.int()?,
                name: name.text()?,
                workspace: workspace.text()?,
                description: description.opt_text()?,
                permissions: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if roles.is_empty() {
        return Ok(roles);
    }
    let mut grants: HashMap<i64, Vec<RolePermission>> = HashMap::new();
    for row in c.query(
        &format!(
            "SELECT {GRANT_COLUMNS} FROM role_permissions p JOIN roles r ON r.id = p.role_id \
             WHERE {filter} ORDER BY p.id"
        ),
        params,
    )? {
        let grant = decode_grant(row)?;
        grants.entry(grant.role_id).or_default().push(grant);
    }
    for role in &mut roles {
        role.permissions = grants.remove(&role.id).unwrap_or_default();
    }
    Ok(roles)
}

fn role(c: &mut dyn Conn, role_id: i64) -> Result<Role, StoreError> {
    roles_where(c, "r.id = ?", &[role_id.into()])?
        .pop()
        .ok_or_else(|| Error::not_found(format!("Role with id={role_id} not found")).into())
}

fn create_role(
    c: &mut dyn Conn,
    workspace: &str,
    name: &str,
    description: Option<&str>,
) -> Result<Role, StoreError> {
    check_role_name(name)?;
    if workspace.trim().is_empty() {
        return Err(Error::invalid("Workspace cannot be empty.").into());
    }
    let id = single(c.query(
        "INSERT INTO roles (name, workspace, description) VALUES (?, ?, ?) \
         ON CONFLICT (workspace, name) DO NOTHING RETURNING id",
        &[
            name.into(),
            workspace.into(),
            description.filter(|d| !d.is_empty()).into(),
        ],
    )?)
    .ok_or_else(|| {
        Error::AlreadyExists(format!(
            "Role (name={name}, workspace={workspace}) already exists."
        ))
    })?;
    role(c, id.int()?)
}

fn update_role(
    c: &mut dyn Conn,
    role_id: i64,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<Role, StoreError> {
    let current = role(c, role_id)?;
    if let Some(name) = name {
        check_role_name(name)?;
        // Renamed, a hidden role would stop receiving its user's grants
        // while still granting the old ones.
        if is_hidden(&current.name) {
            return Err(Error::invalid(format!(
                "Role '{}' holds a user's direct permissions and cannot be renamed.",
                current.name
            ))
            .into());
        }
        let taken = count(
            c,
            "SELECT COUNT(*) FROM roles WHERE workspace = ? AND name = ? AND id <> ?",
            &[
                current.workspace.as_str().into(),
                name.into(),
                role_id.into(),
            ],
        )?;
        if taken > 0 {
            return Err(Error::AlreadyExists(format!(
                "Role with name={name} already exists in workspace={}",
                current.workspace
            ))
            .into());
        }
        c.exec(
            "UPDATE roles SET name = ? WHERE id = ?",
            &[name.into(), role_id.into()],
        )?;
    }
    if let Some(description) = description {
        c.exec(
            "UPDATE roles SET description = ? WHERE id = ?",
            &[
                Some(description).filter(|d| !d.is_empty()).into(),
                role_id.into(),
            ],
        )?;
    }
    role(c, role_id)
}

fn delete_role(c: &mut dyn Conn, role_id: i64) -> Result<(), StoreError> {
    if c.exec("DELETE FROM roles WHERE id = ?", &[role_id.into()])? == 0 {
        return Err(Error::not_found(format!("Role with id={role_id} not found")).into());
    }
    Ok(())
}

fn grant(c: &mut dyn Conn, id: i64) -> Result<RolePermission, StoreError> {
    c.query(
        &format!("SELECT {GRANT_COLUMNS} FROM role_permissions p WHERE p.id = ?"),
        &[id.into()],
    )?
    .into_iter()
    .next()
    .map(decode_grant)
    .transpose()?
    .ok_or_else(|| Error::not_found(format!("Role permission with id={id} not found")).into())
}

/// Inserts a grant; `None` when the role holds one on that resource already.
fn insert_grant(
    c: &mut dyn Conn,
    role_id: i64,
    resource_type: &str,
    pattern: &str,
    level: Permission,
) -> Result<Option<i64>, StoreError> {
    single(c.query(
        "INSERT INTO role_permissions (role_id, resource_type, resource_pattern, permission) \
         VALUES (?, ?, ?, ?) \
         ON CONFLICT (role_id, resource_type, resource_pattern) DO NOTHING RETURNING id",
        &[
            role_id.into(),
            resource_type.into(),
            pattern.into(),
            level.as_str().into(),
        ],
    )?)
    .map(|v| v.int())
    .transpose()
}

fn add_role_permission(
    c: &mut dyn Conn,
    role_id: i64,
    resource_type: &str,
    pattern: &str,
    level: Permission,
) -> Result<RolePermission, StoreError> {
    validate_grant(resource_type, pattern, level)?;
    role(c, role_id)?;
    let id = insert_grant(c, role_id, resource_type, pattern, level)?.ok_or_else(|| {
        Error::AlreadyExists(format!(
            "Role permission (role_id={role_id}, resource_type={resource_type}, \
             resource_pattern={pattern}) already exists."
        ))
    })?;
    grant(c, id)
}

fn update_role_permission(
    c: &mut dyn Conn,
    id: i64,
    level: Permission,
) -> Result<RolePermission, StoreError> {
    let current = grant(c, id)?;
    validate_grant(&current.resource_type, &current.resource_pattern, level)?;
    c.exec(
        "UPDATE role_permissions SET permission = ? WHERE id = ?",
        &[level.as_str().into(), id.into()],
    )?;
    grant(c, id)
}

fn remove_role_permission(c: &mut dyn Conn, id: i64) -> Result<(), StoreError> {
    if c.exec("DELETE FROM role_permissions WHERE id = ?", &[id.into()])? == 0 {
        return Err(Error::not_found(format!("Role permission with id={id} not found")).into());
    }
    Ok(())
}

/// Gives `user_id` the role; `None` when they hold it already.
fn insert_assignment(
    c: &mut dyn Conn,
    user_id: i64,
    role_id: i64,
) -> Result<Option<i64>, StoreError> {
    single(c.query(
        "INSERT INTO user_role_assignments (user_id, role_id) VALUES (?, ?) \
         ON CONFLICT (user_id, role_id) DO NOTHING RETURNING id",
        &[user_id.into(), role_id.into()],
    )?)
    .map(|v| v.int())
    .transpose()
}

fn assign_role(c: &mut dyn Conn, user_id: i64, role_id: i64) -> Result<Assignment, StoreError> {
    user_with_id(c, user_id)?;
    let r = role(c, role_id)?;
    // Holding another user's hidden role would mean holding their direct
    // grants.
    if is_hidden(&r.name) && r.name != user_role_name(user_id) {
        return Err(Error::invalid(format!(
            "Role '{}' holds another user's direct permissions and cannot be assigned.",
            r.name
        ))
        .into());
    }
    let id = insert_assignment(c, user_id, role_id)?.ok_or_else(|| {
        Error::AlreadyExists(format!(
            "User role assignment (user_id={user_id}, role_id={role_id}) already exists"
        ))
    })?;
    Ok(Assignment {
        id,
        user_id,
        role_id,
    })
}

fn unassign_role(c: &mut dyn Conn, user_id: i64, role_id: i64) -> Result<(), StoreError> {
    let removed = c.exec(
        "DELETE FROM user_role_assignments WHERE user_id = ? AND role_id = ?",
        &[user_id.into(), role_id.into()],
    )?;
    if removed == 0 {
        return Err(Error::not_found(format!(
            "User role assignment (user_id={user_id}, role_id={role_id}) not found"
        ))
        .into());
    }
    Ok(())
}

fn role_assignments(c: &mut dyn Conn, role_id: i64) -> Result<Vec<Assignment>, StoreError> {
    role(c, role_id)?;
    c.query(
        "SELECT id, user_id, role_id FROM user_role_assignments WHERE role_id = ? ORDER BY id",
        &[role_id.into()],
    )?
    .into_iter()
    .map(|row| {
        let [id, user_id, role_id] = fields(row, "assignment")?;
        Ok(Assignment {
            id: id.int()?,
            user_id: user_id.int()?,
            role_id: role_id.int()?,
        })
    })
    .collect()
}

fn permissions_of_user(c: &mut dyn Conn, user_id: i64) -> Result<Vec<PermissionRow>, StoreError> {
    c.query(
        "SELECT r.id, r.name, r.workspace, p.resource_type, p.resource_pattern, p.permission \
         FROM user_role_assignments a JOIN roles r ON r.id = a.role_id \
         JOIN role_permissions p ON p.role_id = r.id \
         WHERE a.user_id = ? ORDER BY r.workspace, r.name, p.id",
        &[user_id.into()],
    )?
    .into_iter()
    .map(|row| {
        let [role_id, name, workspace, resource_type, pattern, level] = fields(row, "permission")?;
        Ok(PermissionRow {
            role_id: role_id.int()?,
            role_name: name.text()?,
            workspace: workspace.text()?,
            resource_type: resource_type.text()?,
            resource_pattern: pattern.text()?,
            permission: permission(&level.text()?)?,
        })
    })
    .collect()
}

/// Direct grants go through dedicated workspace routes in MLflow; the
/// per-user APIs refuse the type, so a resource MANAGE holder cannot
/// make someone a workspace admin.
fn check_direct_type(resource_type: &str) -> Result<(), Error> {
    if resource_type == "workspace" {
        return Err(Error::invalid(
            "resource_type 'workspace' is not supported by the per-user permission APIs; \
             grant it through a role",
        ));
    }
    if !RESOURCE_TYPES.contains(&resource_type) {
        return Err(Error::invalid(format!(
            "Invalid resource type '{resource_type}'. Valid resource types are: {}",
            RESOURCE_TYPES.join(", ")
        )));
    }
    Ok(())
}

fn grant_user_permission(
    c: &mut dyn Conn,
    user_id: i64,
    resource_type: &str,
    resource_id: &str,
    level: Permission,
) -> Result<(), StoreError> {
    check_direct_type(resource_type)?;
    validate_grant(resource_type, resource_id, level)?;
    let user = user_with_id(c, user_id)?.user;
    let name = user_role_name(user_id);
    // Created on first use; a concurrent first grant may have won the race.
    c.exec(
        "INSERT INTO roles (name, workspace, description) VALUES (?, ?, NULL) \
         ON CONFLICT (workspace, name) DO NOTHING",
        &[name.as_str().into(), DEFAULT_WORKSPACE.into()],
    )?;
    let role_id = single(c.query(
        "SELECT id FROM roles WHERE workspace = ? AND name = ?",
        &[DEFAULT_WORKSPACE.into(), name.into()],
    )?)
    .ok_or_else(|| StoreError::Corrupt(format!("hidden role of user {user_id} vanished")))?
    .int()?;
    insert_assignment(c, user_id, role_id)?;
    if insert_grant(c, role_id, resource_type, resource_id, level)?.is_none() {
        return Err(Error::AlreadyExists(format!(
            "Permission for user={} on resource_type={resource_type}, \
             resource_id={resource_id} already exists.",
            user.username
        ))
        .into());
    }
    Ok(())
}

fn revoke_user_permission(
    c: &mut dyn Conn,
    user_id: i64,
    resource_type: &str,
    resource_id: &str,
) -> Result<(), StoreError> {
    check_direct_type(resource_type)?;
    let user = user_with_id(c, user_id)?.user;
    let removed = c.exec(
        "DELETE FROM role_permissions WHERE resource_type = ? AND resource_pattern = ? \
         AND role_id IN (SELECT id FROM roles WHERE workspace = ? AND name = ?)",
        &[
            resource_type.into(),
            resource_id.into(),
            DEFAULT_WORKSPACE.into(),
            user_role_name(user_id).into(),
        ],
    )?;
    if removed == 0 {
        return Err(Error::not_found(format!(
            "Permission for user={} on resource_type={resource_type}, \
             resource_id={resource_id} not found.",
            user.username
        ))
        .into());
    }
    Ok(())
}

/// Only hidden roles' grants follow the resource, as in MLflow: an admin's
/// role naming a model by pattern keeps naming that pattern.
fn rename_resource_grants(
    c: &mut dyn Conn,
    resource_type: &str,
    old: &str,
    new: &str,
) -> Result<(), StoreError> {
    if old == new {
        return Ok(());
    }
    let hidden = hidden_role_ids();
    // A stale grant on the new name in a role that also holds the old one
    // would collide; the renamed resource's own grant wins.
    c.exec(
        &format!(
            "DELETE FROM role_permissions WHERE resource_type = ? AND resource_pattern = ? \
             AND role_id IN ({hidden}) AND role_id IN (SELECT role_id FROM role_permissions \
             WHERE resource_type = ? AND resource_pattern = ?)"
        ),
        &[
            resource_type.into(),
            new.into(),
            resource_type.into(),
            old.into(),
        ],
    )?;
    c.exec(
        &format!(
            "UPDATE role_permissions SET resource_pattern = ? WHERE resource_type = ? \
             AND resource_pattern = ? AND role_id IN ({hidden})"
        ),
        &[new.into(), resource_type.into(), old.into()],
    )?;
    Ok(())
}

fn delete_resource_grants(
    c: &mut dyn Conn,
    resource_type: &str,
    resource_id: &str,
) -> Result<(), StoreError> {
    c.exec(
        &format!(
            "DELETE FROM role_permissions WHERE resource_type = ? AND resource_pattern = ? \
             AND role_id IN ({})",
            hidden_role_ids()
        ),
        &[resource_type.into(), resource_id.into()],
    )?;
    Ok(())
}

fn token(c: &mut dyn Conn, id: i64) -> Result<ApiToken, StoreError> {
    c.query(
        &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.id = ?"),
        &[id.into()],
    )?
    .into_iter()
    .next()
    .map(decode_token)
    .transpose()?
    .ok_or_else(|| Error::not_found(format!("API token with id={id} not found")).into())
}

fn create_token(c: &mut dyn Conn, new: &NewApiToken) -> Result<ApiToken, StoreError> {
    if new.name.trim().is_empty() {
        return Err(Error::invalid("Token name cannot be empty.").into());
    }
    if new.token_sha256.is_empty() {
        return Err(Error::invalid("Token hash cannot be empty.").into());
    }
    user_with_id(c, new.user_id)?;
    let scopes = serde_json::to_string(&new.scopes)
        .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?;
    let id = single(c.query(
        "INSERT INTO api_tokens (user_id, name, token_sha256, scopes, created_time, expires_time) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (token_sha256) DO NOTHING RETURNING id",
        &[
            new.user_id.into(),
            new.name.as_str().into(),
            new.token_sha256.as_str().into(),
            scopes.into(),
            now_ms().into(),
            new.expires_ms.into(),
        ],
    )?)
    // Only a reused secret collides; the hash stays out of the message.
    .ok_or_else(|| Error::AlreadyExists("An API token with this secret already exists.".into()))?;
    token(c, id.int()?)
}

fn token_by_hash(
    c: &mut dyn Conn,
    token_sha256: &str,
) -> Result<(ApiToken, StoredUser), StoreError> {
    let row = c
        .query(
            &format!(
                "SELECT {TOKEN_COLUMNS}, u.id, u.username, u.is_admin, u.password_hash \
                 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ?"
            ),
            &[token_sha256.into()],
        )?
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("API token not found"))?;
    let mut token = row;
    let user = token.split_off(TOKEN_FIELDS);
    Ok((decode_token(token)?, decode_user(user)?))
}

fn list_tokens(c: &mut dyn Conn, user_id: i64) -> Result<Vec<ApiToken>, StoreError> {
    c.query(
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = ? \
             ORDER BY t.created_time DESC, t.id DESC"
        ),
        &[user_id.into()],
    )?
    .into_iter()
    .map(decode_token)
    .collect()
}

/// Revoking twice keeps the first revocation's time.
fn revoke_token(c: &mut dyn Conn, user_id: i64, token_id: i64) -> Result<(), StoreError> {
    let theirs = count(
        c,
        "SELECT COUNT(*) FROM api_tokens WHERE id = ? AND user_id = ?",
        &[token_id.into(), user_id.into()],
    )?;
    if theirs == 0 {
        return Err(Error::not_found(format!("API token with id={token_id} not found")).into());
    }
    c.exec(
        "UPDATE api_tokens SET revoked_time = ? WHERE id = ? AND revoked_time IS NULL",
        &[now_ms().into(), token_id.into()],
    )?;
    Ok(())
}

/// Records a use of a token at `now`, unless one at most `every_ms` old is
/// recorded (by this server or another); answers whether it wrote.
fn record_token_use(
    c: &mut dyn Conn,
    token_id: i64,
    now: i64,
    every_ms: i64,
) -> Result<bool, StoreError> {
    let changed = c.exec(
        "UPDATE api_tokens SET last_used_time = ? WHERE id = ? \
         AND (last_used_time IS NULL OR last_used_time <= ?)",
        &[now.into(), token_id.into(), (now - every_ms).into()],
    )?;
    Ok(changed > 0)
}

impl<B: Backend> AuthStore for SqlStore<B> {
    fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<User, StoreError> {
        self.db
            .write(|c| create_user(c, username, password_hash, is_admin))
    }
    fn get_user(&self, username: &str) -> Result<StoredUser, StoreError> {
        self.db.read(|c| user_named(c, username))
    }
    fn get_user_by_id(&self, user_id: i64) -> Result<StoredUser, StoreError> {
        self.db.read(|c| user_with_id(c, user_id))
    }
    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.db.read(|c| {
            c.query(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
                &[],
            )?
            .into_iter()
            .map(|row| decode_user(row).map(|u| u.user))
            .collect()
        })
    }
    fn count_users(&self) -> Result<u64, StoreError> {
        let n = self
            .db
            .read(|c| count(c, "SELECT COUNT(*) FROM users", &[]))?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("user count {n}")))
    }
    fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        self.db
            .write(|c| update_user(c, username, "password_hash", password_hash.into()))
    }
    fn set_admin(&self, username: &str, is_admin: bool) -> Result<(), StoreError> {
        self.db
            .write(|c| update_user(c, username, "is_admin", i64::from(is_admin).into()))
    }
    fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        self.db.write(|c| delete_user(c, username))
    }

    fn create_role(
        &self,
        workspace: &str,
        name: &str,
        description: Option<&str>,
    ) -> Result<Role, StoreError> {
        self.db
            .write(|c| create_role(c, workspace, name, description))
    }
    fn get_role(&self, role_id: i64) -> Result<Role, StoreError> {
        self.db.read(|c| role(c, role_id))
    }
    fn list_roles(&self, workspaces: Option<&[String]>) -> Result<Vec<Role>, StoreError> {
        match workspaces {
            None => self.db.read(|c| roles_where(c, "1 = 1", &[])),
            Some([]) => Ok(Vec::new()),
            Some(names) => {
                let params: Vec<SqlValue> = names.iter().map(Into::into).collect();
                let filter = format!("r.workspace IN ({})", placeholders(names.len()));
                self.db.read(|c| roles_where(c, &filter, &params))
            }
        }
    }
    fn update_role(
        &self,
        role_id: i64,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Role, StoreError> {
        self.db
            .write(|c| update_role(c, role_id, name, description))
    }
    fn delete_role(&self, role_id: i64) -> Result<(), StoreError> {
        self.db.write(|c| delete_role(c, role_id))
    }

    fn add_role_permission(
        &self,
        role_id: i64,
        resource_type: &str,
        resource_pattern: &str,
        permission: Permission,
    ) -> Result<RolePermission, StoreError> {
        self.db
            .write(|c| add_role_permission(c, role_id, resource_type, resource_pattern, permission))
    }
    fn update_role_permission(
        &self,
        id: i64,
        permission: Permission,
    ) -> Result<RolePermission, StoreError> {
        self.db.write(|c| update_role_permission(c, id, permission))
    }
    fn remove_role_permission(&self, id: i64) -> Result<(), StoreError> {
        self.db.write(|c| remove_role_permission(c, id))
    }

    fn assign_role(&self, user_id: i64, role_id: i64) -> Result<Assignment, StoreError> {
        self.db.write(|c| assign_role(c, user_id, role_id))
    }
    fn unassign_role(&self, user_id: i64, role_id: i64) -> Result<(), StoreError> {
        self.db.write(|c| unassign_role(c, user_id, role_id))
    }
    fn role_assignments(&self, role_id: i64) -> Result<Vec<Assignment>, StoreError> {
        self.db.read(|c| role_assignments(c, role_id))
    }
    fn roles_of_user(&self, user_id: i64) -> Result<Vec<Role>, StoreError> {
        self.db.read(|c| {
            roles_where(
                c,
                "r.id IN (SELECT role_id FROM user_role_assignments WHERE user_id = ?)",
                &[user_id.into()],
            )
        })
    }
    fn permissions_of_user(&self, user_id: i64) -> Result<Vec<PermissionRow>, StoreError> {
        self.db.read(|c| permissions_of_user(c, user_id))
    }

    fn grant_user_permission(
        &self,
        user_id: i64,
        resource_type: &str,
        resource_id: &str,
        permission: Permission,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| grant_user_permission(c, user_id, resource_type, resource_id, permission))
    }
    fn revoke_user_permission(
        &self,
        user_id: i64,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| revoke_user_permission(c, user_id, resource_type, resource_id))
    }
    fn rename_resource_grants(
        &self,
        resource_type: &str,
        old: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| rename_resource_grants(c, resource_type, old, new))
    }
    fn delete_resource_grants(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<(), StoreError> {
        self.db
            .write(|c| delete_resource_grants(c, resource_type, resource_id))
    }

    fn create_token(&self, new: &NewApiToken) -> Result<ApiToken, StoreError> {
        self.db.write(|c| create_token(c, new))
    }
    fn token_by_hash(&self, token_sha256: &str) -> Result<(ApiToken, StoredUser), StoreError> {
        self.db.read(|c| token_by_hash(c, token_sha256))
    }
    fn list_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>, StoreError> {
        self.db.read(|c| list_tokens(c, user_id))
    }
    fn revoke_token(&self, user_id: i64, token_id: i64) -> Result<(), StoreError> {
        self.db.write(|c| revoke_token(c, user_id, token_id))
    }
    fn record_token_use(
        &self,
        token_id: i64,
        now_ms: i64,
        every_ms: i64,
    ) -> Result<bool, StoreError> {
        self.db
            .write(|c| record_token_use(c, token_id, now_ms, every_ms))
    }
}
