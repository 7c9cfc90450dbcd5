//! How MLflow 3.17 decides a user's level on a resource, with workspaces off
//! (`../shared/reference/mlflow-auth.md` §3), as pure functions of the
//! user's grants and the server's `default_permission`.

use sextant_core::auth::{Permission, PermissionRow};

/// One user's grants and the server's floor.
pub struct Grants<'a> {
    pub rows: &'a [PermissionRow],
    pub default: Permission,
}

impl Grants<'_> {
    /// A `(workspace, *, MANAGE)` grant: MANAGE on everything (with
    /// workspaces off, a de-facto admin of resources, as in MLflow).
    pub fn manages_workspace(&self) -> bool {
        self.rows.iter().any(|r| {
            r.resource_type == "workspace"
                && r.resource_pattern == "*"
                && r.permission == Permission::Manage
        })
    }

    /// What the grants on `(kind, id)` say, or `None` when none matches:
    /// DENY among the matching rows vetoes, else the highest.
    pub fn explicit(&self, kind: &str, id: &str) -> Option<Permission> {
        let mut out: Option<Permission> = None;
        for r in self.rows {
            if r.resource_type != kind || (r.resource_pattern != "*" && r.resource_pattern != id) {
                continue;
            }
            if r.permission == Permission::Deny {
                return Some(Permission::Deny);
            }
            out = Some(out.map_or(r.permission, |p| p.max(r.permission)));
        }
        out
    }

    /// The level on `(kind, id)`: a positive grant floored at the default,
    /// DENY a veto, no grant the default.
    pub fn level(&self, kind: &str, id: &str) -> Permission {
        if self.manages_workspace() {
            return Permission::Manage;
        }
        self.floor(self.explicit(kind, id))
    }

    fn floor(&self, explicit: Option<Permission>) -> Permission {
        match explicit {
            Some(Permission::Deny) => Permission::Deny,
            Some(p) => p.max(self.default),
            None => self.default,
        }
    }

    /// The level on a tier of a parent (runs and logged models of an
    /// experiment, versions of a registered model): the tier's `*` grant
    /// decides where there is one, else the parent's level.
    pub fn tier(&self, tier: &str, parent_kind: &str, parent_id: &str) -> Permission {
        if self.manages_workspace() {
            return Permission::Manage;
        }
        match self.explicit(tier, "*") {
            Some(p) => self.floor(Some(p)),
            None => self.level(parent_kind, parent_id),
        }
    }

    /// Whether creating a new resource of `kind` named `id` (or any, `*`)
    /// is allowed: always, unless a DENY matches (MLflow lets any user
    /// create experiments and registered models).
    pub fn may_create(&self, kind: &str, id: &str) -> bool {
        self.manages_workspace() || self.explicit(kind, id) != Some(Permission::Deny)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, pattern: &str, p: Permission) -> PermissionRow {
        PermissionRow {
            role_id: 1,
            role_name: "r".into(),
            workspace: "default".into(),
            resource_type: kind.into(),
            resource_pattern: pattern.into(),
            permission: p,
        }
    }

    #[test]
    fn a_grant_is_floored_at_the_default_and_deny_vetoes() {
        let rows = [
            row("experiment", "1", Permission::Edit),
            row("experiment", "2", Permission::Deny),
            row("experiment", "2", Permission::Manage),
        ];
        let g = Grants {
            rows: &rows,
            default: Permission::Read,
        };
        assert_eq!(g.level("experiment", "1"), Permission::Edit);
        assert_eq!(g.level("experiment", "2"), Permission::Deny);
        assert_eq!(g.level("experiment", "3"), Permission::Read);
        let none = Grants {
            rows: &rows,
            default: Permission::NoPermissions,
        };
        assert_eq!(none.level("experiment", "3"), Permission::NoPermissions);
        // Under a MANAGE default a READ grant cannot restrict: only DENY can.
        let read = [row("experiment", "1", Permission::Read)];
        let open = Grants {
            rows: &read,
            default: Permission::Manage,
        };
        assert_eq!(open.level("experiment", "1"), Permission::Manage);
    }

    #[test]
    fn a_tier_grant_decides_before_the_parent() {
        let rows = [
            row("experiment", "1", Permission::Manage),
            row("run", "*", Permission::Edit),
        ];
        let g = Grants {
            rows: &rows,
            default: Permission::Read,
        };
        // An experiment MANAGE holder may not delete runs under (run, *, EDIT).
        assert_eq!(g.tier("run", "experiment", "1"), Permission::Edit);
        let rows = [row("experiment", "1", Permission::Manage)];
        let g = Grants {
            rows: &rows,
            default: Permission::Read,
        };
        assert_eq!(g.tier("run", "experiment", "1"), Permission::Manage);
    }

    #[test]
    fn creating_is_open_unless_denied() {
        let rows = [row("registered_model", "secret", Permission::Deny)];
        let g = Grants {
            rows: &rows,
            default: Permission::NoPermissions,
        };
        assert!(g.may_create("registered_model", "open"));
        assert!(!g.may_create("registered_model", "secret"));
        let ws = [row("workspace", "*", Permission::Manage)];
        let g = Grants {
            rows: &ws,
            default: Permission::NoPermissions,
        };
        assert_eq!(g.level("experiment", "9"), Permission::Manage);
    }
}
