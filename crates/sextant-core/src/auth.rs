//! Users, roles and permissions, as MLflow 3.17's basic-auth app models them
//! (`../shared/reference/mlflow-auth.md` §2–3): every grant is a row of a
//! role; a user's direct grants sit on a hidden per-user role
//! (`__user_<id>__`); levels are ordered DENY < NO_PERMISSIONS < READ < USE <
//! EDIT < MANAGE, DENY being a veto.

use crate::Error;

/// The workspace every role lives in while workspaces are off (always, in
/// Sextant so far).
pub const DEFAULT_WORKSPACE: &str = "default";

/// Role names starting with this are reserved for users' direct grants.
pub const USER_ROLE_PREFIX: &str = "__user_";

/// The minimum password length MLflow enforces (Python `len`: characters).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The hidden role holding `user_id`'s direct grants.
pub fn user_role_name(user_id: i64) -> String {
    format!("{USER_ROLE_PREFIX}{user_id}__")
}

/// A permission level. The derived order is MLflow's: `Deny` lowest, and a
/// veto wherever it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Deny,
    NoPermissions,
    Read,
    Use,
    Edit,
    Manage,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Use,
        Permission::Edit,
        Permission::Manage,
        Permission::NoPermissions,
        Permission::Deny,
    ];

    /// MLflow's name of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Deny => "DENY",
            Permission::NoPermissions => "NO_PERMISSIONS",
            Permission::Read => "READ",
            Permission::Use => "USE",
            Permission::Edit => "EDIT",
            Permission::Manage => "MANAGE",
        }
    }

    /// The level named `s` (MLflow's names, exactly).
    pub fn parse(s: &str) -> Result<Self, Error> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "Invalid permission '{s}'. Valid permissions are: {}",
                    Permission::ALL.map(Permission::as_str).join(", ")
                ))
            })
    }

    pub fn can_read(self) -> bool {
        self >= Permission::Read
    }
    pub fn can_use(self) -> bool {
        self >= Permission::Use
    }
    pub fn can_update(self) -> bool {
        self >= Permission::Edit
    }
    pub fn can_delete(self) -> bool {
        self >= Permission::Manage
    }
    pub fn can_manage(self) -> bool {
        self >= Permission::Manage
    }
}

/// The resource types a grant may name. MLflow's tracking and registry types
/// first, then Sextant's own.
pub const RESOURCE_TYPES: &[&str] = &[
    "experiment",
    "registered_model",
    "prompt",
    "scorer",
    "gateway_secret",
    "gateway_endpoint",
    "gateway_model_definition",
    "mcp_server",
    "workspace",
    "run",
    "trace",
    "assessment",
    "logged_model",
    "review_queue",
    "registered_model_version",
    "prompt_version",
    "scorer_version",
    "mcp_server_version",
    // Sextant's own resources, addressed by name.
    "pipeline",
    "endpoint",
    "monitor",
    "webhook",
];

/// Types whose grants may only name every instance (`*`), as in MLflow.
pub const WILDCARD_ONLY_TYPES: &[&str] = &[
    "workspace",
    "run",
    "trace",
    "assessment",
    "logged_model",
    "review_queue",
    "registered_model_version",
    "prompt_version",
    "scorer_version",
    "mcp_server_version",
];

/// Checks a role permission's type, pattern and level as MLflow does:
/// known type, `*` on wildcard-only types, no NO_PERMISSIONS, `workspace`
/// only with USE or MANAGE.
pub fn validate_grant(
    resource_type: &str,
    pattern: &str,
    permission: Permission,
) -> Result<(), Error> {
    if !RESOURCE_TYPES.contains(&resource_type) {
        return Err(Error::invalid(format!(
            "Invalid resource type '{resource_type}'. Valid resource types are: {}",
            RESOURCE_TYPES.join(", ")
        )));
    }
    if pattern.is_empty() {
        return Err(Error::invalid("resource_pattern must not be empty"));
    }
    if WILDCARD_ONLY_TYPES.contains(&resource_type) && pattern != "*" {
        return Err(Error::invalid(format!(
            "Resource type '{resource_type}' only supports the '*' pattern, got '{pattern}'"
        )));
    }
    if permission == Permission::NoPermissions {
        return Err(Error::invalid(
            "NO_PERMISSIONS cannot be granted; revoke the permission or grant DENY",
        ));
    }
    if resource_type == "workspace" && !matches!(permission, Permission::Use | Permission::Manage) {
        return Err(Error::invalid(format!(
            "The workspace resource type only supports USE or MANAGE, got {}",
            permission.as_str()
        )));
    }
    Ok(())
}

/// Checks a new password: at least [`MIN_PASSWORD_CHARS`] characters.
pub fn validate_password(password: &str) -> Result<(), Error> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!(
            "Password must be at least {MIN_PASSWORD_CHARS} characters."
        )));
    }
    Ok(())
}

/// Checks a new username: non-empty, at most 255 characters, no control
/// characters and no `:` (Basic credentials split on the first one).
pub fn validate_username(username: &str) -> Result<(), Error> {
    if username.is_empty() {
        return Err(Error::invalid("Username cannot be empty."));
    }
    if username.chars().count() > 255 {
        return Err(Error::invalid("Username must be at most 255 characters."));
    }
    if username.chars().any(|c| c.is_control() || c == ':') {
        return Err(Error::invalid(
            "Username must not contain ':' or control characters.",
        ));
    }
    Ok(())
}

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

/// A user with the stored hash of their password (never leaves the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

/// One grant of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePermission {
    pub id: i64,
    pub role_id: i64,
    pub resource_type: String,
    pub resource_pattern: String,
    pub permission: Permission,
}

/// A role with its grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub workspace: String,
    pub description: Option<String>,
    pub permissions: Vec<RolePermission>,
}

/// A user holding a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub id: i64,
    pub user_id: i64,
    pub role_id: i64,
}

/// One grant a user holds through one of their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRow {
    pub role_id: i64,
    pub role_name: String,
    pub workspace: String,
    pub resource_type: String,
    pub resource_pattern: String,
    pub permission: Permission,
}

/// An API token of a user (the secret itself is never stored: only its
/// SHA-256). `scopes` empty means everything the user may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_ms: i64,
    /// Unusable from this time on; `None`: no expiry.
    pub expires_ms: Option<i64>,
    /// Set when revoked; a revoked token authenticates nobody.
    pub revoked_ms: Option<i64>,
    /// When it last authenticated a request, to within a minute (recorded
    /// at most once a minute); `None`: never used.
    pub last_used_ms: Option<i64>,
}

/// A new API token: its hash, never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub user_id: i64,
    pub name: String,
    pub token_sha256: String,
    pub scopes: Vec<String>,
    pub expires_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_as_mlflow_orders_them() {
        assert!(Permission::Deny < Permission::NoPermissions);
        assert!(Permission::NoPermissions < Permission::Read);
        assert!(Permission::Edit < Permission::Manage);
        assert!(!Permission::Read.can_use());
        assert!(Permission::Manage.can_delete());
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()).unwrap(), p);
        }
        assert!(Permission::parse("read").is_err());
    }

    #[test]
    fn grants_are_checked_as_mlflow_checks_them() {
        assert!(validate_grant("experiment", "1", Permission::Read).is_ok());
        assert!(validate_grant("run", "1", Permission::Read).is_err());
        assert!(validate_grant("run", "*", Permission::Edit).is_ok());
        assert!(validate_grant("experiment", "1", Permission::NoPermissions).is_err());
        assert!(validate_grant("workspace", "*", Permission::Read).is_err());
        assert!(validate_grant("workspace", "*", Permission::Manage).is_ok());
        assert!(validate_grant("nonsense", "*", Permission::Read).is_err());
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert!(validate_password("elevenchars").is_err());
        assert!(validate_password("twelve-chars").is_ok());
        assert!(validate_password("ääääääääääää").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("a:b").is_err());
        assert!(validate_username("alice").is_ok());
    }
}
