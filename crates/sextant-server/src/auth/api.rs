//! MLflow 3.17's auth REST API (users, roles, grants; reference §4), under
//! `/api/2.0|3.0/mlflow` and their `/ajax-api` mirrors, and Sextant's API
//! tokens under `/api/v1/tokens`. Each handler applies MLflow's rule of who
//! may call it (admins everything; users themselves; holders of workspace
//! MANAGE the user and role administration). With authentication off the
//! routes answer 404, as a plain `mlflow server` does.
//!
//! Deliberately stricter than MLflow: `users/list` needs an admin (MLflow
//! lists every user to anyone, §10), and a duplicate user answers a plain
//! "already exists" (MLflow's answer held the new password's hash).

// Every helper's error is the response the handler answers; boxing it
// would only add an allocation to the refusal path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use serde_json::{Map, Value, json};
use sextant_core::auth::{
    self as model, DEFAULT_WORKSPACE, NewApiToken, Permission, PermissionRow, Role, RolePermission,
    User,
};

use super::audit::Action;
use super::authn::denied;
use super::policy::Grants;
use super::{Principal, secrets};
use crate::error::{ApiError, ErrorCode};
use crate::routes::{Api, Capability as C, Group, Resource as R, Route};
use crate::state::AppState;

/// MLflow's 2.0 user routes.
pub(crate) const USERS: Group = Group {
    api: Api::Mlflow,
    mounts: &["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"],
    routes: &[
        Route::json(Method::POST, "/users/create", R::User, C::Manage, |m| {
            on(m, create_user)
        }),
        Route::get("/users/get", R::User, |m| on(m, get_user)),
        Route::get("/users/current", R::User, |m| on(m, current_user)),
        Route::get("/users/list", R::User, |m| on(m, list_users)),
        Route::json(
            Method::PATCH,
            "/users/update-password",
            R::User,
            C::Edit,
            |m| on(m, update_password),
        ),
        Route::json(
            Method::PATCH,
            "/users/update-admin",
            R::User,
            C::Manage,
            |m| on(m, update_admin),
        ),
        Route::json(Method::DELETE, "/users/delete", R::User, C::Manage, |m| {
            on(m, delete_user)
        }),
    ],
};

/// MLflow's 3.0 grant and role routes.
pub(crate) const RBAC: Group = Group {
    api: Api::Mlflow,
    mounts: &["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"],
    routes: &[
        Route::get("/users/current/permissions", R::User, |m| {
            on(m, current_permissions)
        }),
        Route::get("/users/permissions/list", R::User, |m| {
            on(m, user_permissions)
        }),
        Route::get("/users/roles/list", R::User, |m| on(m, user_roles)),
        Route::json(
            Method::POST,
            "/users/permissions/grant",
            R::User,
            C::Manage,
            |m| on(m, grant),
        ),
        Route::json(
            Method::POST,
            "/users/permissions/revoke",
            R::User,
            C::Manage,
            |m| on(m, revoke),
        ),
        Route::get("/users/permissions/get", R::User, |m| on(m, get_permission)),
        Route::json(Method::POST, "/roles/create", R::User, C::Manage, |m| {
            on(m, create_role)
        }),
        Route::get("/roles/get", R::User, |m| on(m, get_role)),
        Route::get("/roles/list", R::User, |m| on(m, list_roles)),
        Route::json(Method::PATCH, "/roles/update", R::User, C::Manage, |m| {
            on(m, update_role)
        }),
        Route::json(Method::DELETE, "/roles/delete", R::User, C::Manage, |m| {
            on(m, delete_role)
        }),
        Route::json(
            Method::POST,
            "/roles/permissions/add",
            R::User,
            C::Manage,
            |m| on(m, add_role_permission),
        ),
        Route::json(
            Method::PATCH,
            "/roles/permissions/update",
            R::User,
            C::Manage,
            |m| on(m, update_role_permission),
        ),
        Route::json(
            Method::DELETE,
            "/roles/permissions/remove",
            R::User,
            C::Manage,
            |m| on(m, remove_role_permission),
        ),
        Route::get("/roles/permissions/list", R::User, |m| {
            on(m, list_role_permissions)
        }),
        Route::json(Method::POST, "/roles/assign", R::User, C::Manage, |m| {
            on(m, assign)
        }),
        Route::json(Method::DELETE, "/roles/unassign", R::User, C::Manage, |m| {
            on(m, unassign)
        }),
        Route::get("/roles/users/list", R::User, |m| on(m, role_users)),
    ],
};

/// Sextant's API tokens: for workers, gateways and scripts.
pub(crate) const TOKENS: Group = Group {
    api: Api::Native,
    mounts: &["/api/v1"],
    routes: &[
        Route::json(Method::POST, "/tokens", R::User, C::Edit, |m| {
            on(m, create_token)
        }),
        Route::get("/tokens", R::User, |m| on(m, list_tokens)),
        Route::json(Method::DELETE, "/tokens/{id}", R::User, C::Edit, |m| {
            on(m, revoke_token)
        }),
    ],
};

/// One auth API call: who calls, and its parameters (the query for GET, the
/// JSON body otherwise; DELETE's from either, as MLflow reads them).
struct Call {
    path: String,
    caller: Arc<Principal>,
    params: Map<String, Value>,
}

/// What a handler answers.
type Answer = Result<Response, Response>;

async fn call(st: &AppState, req: Request) -> Result<Call, Response> {
    let path = req.uri().path().to_string();
    if !st.auth.enabled() {
        return Err(ApiError::new(
            ErrorCode::EndpointNotFound,
            "authentication is not enabled on this server (start it with --auth)",
        )
        .into_response());
    }
    let caller = req
        .extensions()
        .get::<Arc<Principal>>()
        .cloned()
        .ok_or_else(|| super::authn::unauthenticated(&path))?;
    let mut params = Map::new();
    if let Some(q) = req.uri().query() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
        for (k, v) in pairs {
            // Repeated keys (roles/list?workspace=a&workspace=b) become a list.
            match params.get_mut(&k) {
                Some(Value::Array(a)) => a.push(Value::String(v)),
                Some(prev) => {
                    let first = prev.take();
                    *prev = Value::Array(vec![first, Value::String(v)]);
                }
                None => {
                    params.insert(k, Value::String(v));
                }
            }
        }
    }
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if req.method() != Method::GET && json_body {
        let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .map_err(|_| invalid("request body too large"))?;
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&bytes) {
            params.extend(body);
        }
    }
    Ok(Call {
        path,
        caller,
        params,
    })
}

fn invalid(message: impl Into<String>) -> Response {
    ApiError::new(ErrorCode::InvalidParameterValue, message).into_response()
}

fn from_store(e: sextant_store::CallError) -> Response {
    ApiError::from(e).into_response()
}

impl Call {
    fn text(&self, name: &str) -> Result<String, Response> {
        match self.params.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(invalid(format!(
                "Missing value for required parameter '{name}'."
            ))),
        }
    }

    fn opt_text(&self, name: &str) -> Option<String> {
        match self.params.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// An id given as a number or a numeric string (MLflow's rule).
    fn int(&self, name: &str) -> Result<i64, Response> {
        match self.params.get(name) {
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| invalid(format!("Parameter '{name}' must be an integer. Got: '{s}'"))),
            Some(other) => Err(invalid(format!(
                "Parameter '{name}' must be an integer. Got: '{other}'"
            ))),
            None => Err(invalid(format!(
                "Missing value for required parameter '{name}'."
            ))),
        }
    }

    fn permission(&self, name: &str) -> Result<Permission, Response> {
        Permission::parse(&self.text(name)?).map_err(|e| invalid(e.to_string()))
    }

    fn is_admin(&self) -> bool {
        self.caller.user.is_admin
    }

    /// An admin, or a holder of workspace MANAGE (MLflow's workspace admin).
    fn administers(&self, st: &AppState) -> bool {
        self.is_admin() || self.grants(st).manages_workspace()
    }

    fn grants<'a>(&'a self, st: &AppState) -> Grants<'a> {
        Grants {
            rows: &self.caller.rows,
            default: st.auth.settings.default_permission,
        }
    }

    fn is_self(&self, username: &str) -> bool {
        self.caller.user.username == username
    }

    fn denied(&self) -> Response {
        denied(&self.path, "this call needs an admin")
    }
}

async fn db<T, F>(st: &AppState, f: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&dyn sextant_store::MetaStore) -> Result<T, sextant_store::StoreError>
        + Send
        + 'static,
{
    sextant_store::call(&st.store, f).await.map_err(from_store)
}

fn user_json(u: &User) -> Value {
    json!({"id": u.id, "username": u.username, "is_admin": u.is_admin})
}

fn grant_json(p: &RolePermission) -> Value {
    json!({
        "id": p.id,
        "role_id": p.role_id,
        "resource_type": p.resource_type,
        "resource_pattern": p.resource_pattern,
        "permission": p.permission.as_str(),
    })
}

fn role_json(r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "workspace": r.workspace,
        "description": r.description,
        "permissions": r.permissions.iter().map(grant_json).collect::<Vec<_>>(),
    })
}

fn row_json(r: &PermissionRow) -> Value {
    json!({
        "role_id": r.role_id,
        "role_name": r.role_name,
        "workspace": r.workspace,
        "resource_type": r.resource_type,
        "resource_pattern": r.resource_pattern,
        "permission": r.permission.as_str(),
    })
}

fn ok(v: Value) -> Answer {
    Ok(Json(v).into_response())
}

fn done(st: &AppState) -> Answer {
    st.auth.changed();
    ok(json!({}))
}

/// `answer`, naming for the audit log what the request did (on success).
fn acted(answer: Answer, name: &'static str, resource: String) -> Answer {
    answer.map(|r| Action::on(r, name, resource))
}

macro_rules! handler {
    ($name:ident, $body:expr) => {
        async fn $name(State(st): State<AppState>, req: Request) -> Response {
            let c = match call(&st, req).await {
                Ok(c) => c,
                Err(r) => return r,
            };
            let f: fn(AppState, Call) -> futures::future::BoxFuture<'static, Answer> = $body;
            match f(st, c).await {
                Ok(r) | Err(r) => r,
            }
        }
    };
}

handler!(create_user, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let username = c.text("username")?;
    let password = c.text("password")?;
    model::validate_username(&username).map_err(|e| invalid(e.to_string()))?;
    model::validate_password(&password).map_err(|e| invalid(e.to_string()))?;
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()).into_response())?;
    let user = db(&st, move |s| s.auth().create_user(&username, &hash, false)).await?;
    let who = format!("user:{}", user.username);
    acted(ok(json!({"user": user_json(&user)})), "user.create", who)
}));

handler!(get_user, |st, c| Box::pin(async move {
    let username = c.text("username")?;
    if !c.is_self(&username) && !c.administers(&st) {
        return Err(c.denied());
    }
    let u = db(&st, move |s| s.auth().get_user(&username)).await?;
    ok(json!({"user": user_json(&u.user)}))
}));

handler!(current_user, |_st, c| Box::pin(async move {
    ok(json!({
        "user": user_json(&c.caller.user),
        "is_basic_auth": c.caller.method == super::Method::Basic,
    }))
}));

handler!(list_users, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let users = db(&st, |s| {
        let mut out = Vec::new();
        for u in s.auth().list_users()? {
            let roles = s.auth().roles_of_user(u.id)?;
            out.push((u, roles));
        }
        Ok(out)
    })
    .await?;
    let users: Vec<Value> = users
        .iter()
        .map(|(u, roles)| {
            let mut v = user_json(u);
            v["roles"] = roles.iter().map(role_json).collect();
            v
        })
        .collect();
    ok(json!({ "users": users }))
}));

handler!(update_password, |st, c| Box::pin(async move {
    let username = c.text("username")?;
    let password = c.text("password")?;
    let own = c.is_self(&username);
    if !own && !c.is_admin() {
        return Err(c.denied());
    }
    model::validate_password(&password).map_err(|e| invalid(e.to_string()))?;
    if own {
        // A stolen session must not be enough to take the account over.
        let current = c
            .opt_text("current_password")
            .ok_or_else(|| invalid("Changing your own password needs 'current_password'."))?;
        if current == password {
            return Err(invalid(
                "The new password must differ from the current one.",
            ));
        }
        let name = username.clone();
        let stored = db(&st, move |s| s.auth().get_user(&name)).await?;
        let good = tokio::task::spawn_blocking(move || {
            secrets::verify_password(&current, &stored.password_hash)
        })
        .await
        .unwrap_or(false);
        if !good {
            return Err(invalid("'current_password' is not the current password."));
        }
    }
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()).into_response())?;
    let who = format!("user:{username}");
    db(&st, move |s| s.auth().set_password_hash(&username, &hash)).await?;
    acted(done(&st), "user.password", who)
}));

handler!(update_admin, |st, c| Box::pin(async move {
    if !c.is_admin() {
        return Err(c.denied());
    }
    let username = c.text("username")?;
    let is_admin = match c.params.get("is_admin") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(invalid("Parameter 'is_admin' must be a boolean.")),
    };
    let what = format!("user:{username} admin={is_admin}");
    db(&st, move |s| s.auth().set_admin(&username, is_admin)).await?;
    acted(done(&st), "user.admin", what)
}));

handler!(delete_user, |st, c| Box::pin(async move {
    if !c.is_admin() {
        return Err(c.denied());
    }
    let username = c.text("username")?;
    if c.is_self(&username) {
        return Err(
            ApiError::new(ErrorCode::BadRequest, "An admin cannot delete themselves.")
                .into_response(),
        );
    }
    let who = format!("user:{username}");
    db(&st, move |s| s.auth().delete_user(&username)).await?;
    acted(done(&st), "user.delete", who)
}));

handler!(current_permissions, |_st, c| Box::pin(async move {
    ok(json!({
        "is_admin": c.caller.user.is_admin,
        "permissions": c.caller.rows.iter().map(row_json).collect::<Vec<_>>(),
    }))
}));

handler!(user_permissions, |st, c| Box::pin(async move {
    let username = c.text("username")?;
    if !c.is_self(&username) && !c.administers(&st) {
        return Err(c.denied());
    }
    let rows = db(&st, move |s| {
        let u = s.auth().get_user(&username)?;
        s.auth()
            .permissions_of_user(u.user.id)
            .map(|r| (u.user.is_admin, r))
    })
    .await?;
    ok(json!({
        "is_admin": rows.0,
        "permissions": rows.1.iter().map(row_json).collect::<Vec<_>>(),
    }))
}));

handler!(user_roles, |st, c| Box::pin(async move {
    let username = c.text("username")?;
    if !c.is_self(&username) && !c.administers(&st) {
        return Err(c.denied());
    }
    let roles = db(&st, move |s| {
        let u = s.auth().get_user(&username)?;
        s.auth().roles_of_user(u.user.id)
    })
    .await?;
    ok(json!({"roles": roles.iter().map(role_json).collect::<Vec<_>>()}))
}));

/// Who may grant or revoke on one resource: an admin, a workspace admin,
/// or (for one named resource) whoever may MANAGE it.
fn may_delegate(st: &AppState, c: &Call, kind: &str, id: &str) -> bool {
    c.administers(st) || (id != "*" && c.grants(st).level(kind, id).can_manage())
}

handler!(grant, |st, c| Box::pin(async move {
    let username = c.text("username")?;
    let kind = c.text("resource_type")?;
    let id = c.text("resource_id")?;
    let permission = c.permission("permission")?;
    if kind == "workspace" {
        return Err(invalid("Grant workspace permissions through a role."));
    }
    model::validate_grant(&kind, &id, permission).map_err(|e| invalid(e.to_string()))?;
    if !may_delegate(&st, &c, &kind, &id) {
        return Err(c.denied());
    }
    let what = format!("user:{username} {kind}:{id} {}", permission.as_str());
    db(&st, move |s| {
        let u = s.auth().get_user(&username)?;
        s.auth()
            .grant_user_permission(u.user.id, &kind, &id, permission)
    })
    .await?;
    acted(done(&st), "permission.grant", what)
}));

handler!(revoke, |st, c| Box::pin(async move {
    let username = c.text("username")?;
    let kind = c.text("resource_type")?;
    let id = c.text("resource_id")?;
    if !may_delegate(&st, &c, &kind, &id) {
        return Err(c.denied());
    }
    let what = format!("user:{username} {kind}:{id}");
    db(&st, move |s| {
        let u = s.auth().get_user(&username)?;
        s.auth().revoke_user_permission(u.user.id, &kind, &id)
    })
    .await?;
    acted(done(&st), "permission.revoke", what)
}));

handler!(get_permission, |st, c| Box::pin(async move {
    let username = c.text("username")?;
    let kind = c.text("resource_type")?;
    let id = c.text("resource_id")?;
    if !c.is_self(&username) && !c.administers(&st) {
        return Err(c.denied());
    }
    let (is_admin, rows) = db(&st, move |s| {
        let u = s.auth().get_user(&username)?;
        s.auth()
            .permissions_of_user(u.user.id)
            .map(|r| (u.user.is_admin, r))
    })
    .await?;
    let level = if is_admin {
        Permission::Manage
    } else {
        Grants {
            rows: &rows,
            default: st.auth.settings.default_permission,
        }
        .level(&kind, &id)
    };
    ok(json!({"allowed": level.can_use(), "permission": level.as_str()}))
}));

handler!(create_role, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let workspace = c
        .opt_text("workspace")
        .unwrap_or_else(|| DEFAULT_WORKSPACE.into());
    let name = c.text("name")?;
    let description = c.opt_text("description");
    let role = db(&st, move |s| {
        s.auth()
            .create_role(&workspace, &name, description.as_deref())
    })
    .await?;
    st.auth.changed();
    let what = format!("role:{} {}", role.id, role.name);
    acted(ok(json!({"role": role_json(&role)})), "role.create", what)
}));

/// Whether the caller may read roles: admins, and holders of any role
/// (every role lives in the default workspace while workspaces are off).
fn may_read_roles(st: &AppState, c: &Call) -> bool {
    c.administers(st) || !c.caller.rows.is_empty()
}

handler!(get_role, |st, c| Box::pin(async move {
    let id = c.int("role_id")?;
    if !may_read_roles(&st, &c) {
        return Err(c.denied());
    }
    let role = db(&st, move |s| s.auth().get_role(id)).await?;
    ok(json!({"role": role_json(&role)}))
}));

handler!(list_roles, |st, c| Box::pin(async move {
    let workspaces: Option<Vec<String>> = match c.params.get("workspace") {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        ),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(_) => return Err(invalid("Parameter 'workspace' must be a string.")),
    };
    let allowed = match &workspaces {
        None => c.is_admin(),
        Some(_) => may_read_roles(&st, &c),
    };
    if !allowed {
        return Err(c.denied());
    }
    let roles = db(&st, move |s| s.auth().list_roles(workspaces.as_deref())).await?;
    ok(json!({"roles": roles.iter().map(role_json).collect::<Vec<_>>()}))
}));

handler!(update_role, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let id = c.int("role_id")?;
    let name = c.opt_text("name");
    let description = c.opt_text("description");
    if name.is_none() && description.is_none() {
        return Err(invalid("Give at least one of 'name' and 'description'."));
    }
    let role = db(&st, move |s| {
        s.auth()
            .update_role(id, name.as_deref(), description.as_deref())
    })
    .await?;
    st.auth.changed();
    let what = format!("role:{} {}", role.id, role.name);
    acted(ok(json!({"role": role_json(&role)})), "role.update", what)
}));

handler!(delete_role, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let id = c.int("role_id")?;
    db(&st, move |s| s.auth().delete_role(id)).await?;
    acted(done(&st), "role.delete", format!("role:{id}"))
}));

handler!(add_role_permission, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let id = c.int("role_id")?;
    let kind = c.text("resource_type")?;
    let pattern = c.text("resource_pattern")?;
    let permission = c.permission("permission")?;
    model::validate_grant(&kind, &pattern, permission).map_err(|e| invalid(e.to_string()))?;
    let p = db(&st, move |s| {
        s.auth()
            .add_role_permission(id, &kind, &pattern, permission)
    })
    .await?;
    st.auth.changed();
    let what = format!(
        "role:{id} {}:{} {}",
        p.resource_type,
        p.resource_pattern,
        p.permission.as_str()
    );
    acted(
        ok(json!({"role_permission": grant_json(&p)})),
        "role.permission.add",
        what,
    )
}));

handler!(update_role_permission, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let id = c.int("role_permission_id")?;
    let permission = c.permission("permission")?;
    if permission == Permission::NoPermissions {
        return Err(invalid(
            "NO_PERMISSIONS cannot be granted; remove the permission or grant DENY",
        ));
    }
    let p = db(&st, move |s| {
        s.auth().update_role_permission(id, permission)
    })
    .await?;
    st.auth.changed();
    let what = format!(
        "role:{} {}:{} {}",
        p.role_id,
        p.resource_type,
        p.resource_pattern,
        p.permission.as_str()
    );
    acted(
        ok(json!({"role_permission": grant_json(&p)})),
        "role.permission.update",
        what,
    )
}));

handler!(remove_role_permission, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let id = c.int("role_permission_id")?;
    db(&st, move |s| s.auth().remove_role_permission(id)).await?;
    acted(
        done(&st),
        "role.permission.remove",
        format!("role_permission:{id}"),
    )
}));

handler!(list_role_permissions, |st, c| Box::pin(async move {
    let id = c.int("role_id")?;
    if !may_read_roles(&st, &c) {
        return Err(c.denied());
    }
    let role = db(&st, move |s| s.auth().get_role(id)).await?;
    ok(json!({"role_permissions": role.permissions.iter().map(grant_json).collect::<Vec<_>>()}))
}));

handler!(assign, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let username = c.text("username")?;
    let id = c.int("role_id")?;
    let what = format!("role:{id} user:{username}");
    let a = db(&st, move |s| {
        let u = s.auth().get_user(&username)?;
        s.auth().assign_role(u.user.id, id)
    })
    .await?;
    st.auth.changed();
    acted(
        ok(json!({"assignment": {"id": a.id, "user_id": a.user_id, "role_id": a.role_id}})),
        "role.assign",
        what,
    )
}));

handler!(unassign, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let username = c.text("username")?;
    let id = c.int("role_id")?;
    let what = format!("role:{id} user:{username}");
    db(&st, move |s| {
        let u = s.auth().get_user(&username)?;
        s.auth().unassign_role(u.user.id, id)
    })
    .await?;
    acted(done(&st), "role.unassign", what)
}));

handler!(role_users, |st, c| Box::pin(async move {
    if !c.administers(&st) {
        return Err(c.denied());
    }
    let id = c.int("role_id")?;
    let list = db(&st, move |s| s.auth().role_assignments(id)).await?;
    let list: Vec<Value> = list
        .iter()
        .map(|a| json!({"id": a.id, "user_id": a.user_id, "role_id": a.role_id}))
        .collect();
    ok(json!({ "assignments": list }))
}));

/// The scopes a token may carry (see `authz::scope_refusal`).
const SCOPES: &[&str] = &["read", "invoke", "worker", "gateway"];

fn token_json(t: &model::ApiToken) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "scopes": t.scopes,
        "created_time": t.created_ms,
        "expires_time": t.expires_ms,
        "revoked_time": t.revoked_ms,
        "last_used_time": t.last_used_ms,
    })
}

handler!(create_token, |st, c| Box::pin(async move {
    if c.caller.method == super::Method::Bearer {
        return Err(denied(
            &c.path,
            "a token cannot create tokens: log in with a password",
        ));
    }
    let name = c.text("name")?;
    let scopes: Vec<String> = match c.params.get("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("'scopes' must be a list of strings"))?,
        Some(_) => return Err(invalid("'scopes' must be a list of strings")),
    };
    if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(invalid(format!(
            "unknown scope '{bad}': use {}",
            SCOPES.join(", ")
        )));
    }
    let expires_ms = match c.params.get("expires_in_days") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|d| (1..=3650).contains(&d)) => {
            Some(st.clock.now_ms() + n.as_u64().unwrap_or_default() as i64 * 86_400_000)
        }
        Some(_) => {
            return Err(invalid(
                "'expires_in_days' must be a whole number from 1 to 3650",
            ));
        }
    };
    let secret = secrets::new_token();
    let new = NewApiToken {
        user_id: c.caller.user.id,
        name,
        token_sha256: secrets::token_sha256(&secret),
        scopes,
        expires_ms,
    };
    let t = db(&st, move |s| s.auth().create_token(&new)).await?;
    let mut v = token_json(&t);
    v["token"] = Value::String(secret);
    acted(
        ok(json!({ "token": v })),
        "token.create",
        format!("token:{}", t.id),
    )
}));

handler!(list_tokens, |st, c| Box::pin(async move {
    let user = c.caller.user.id;
    let list = db(&st, move |s| s.auth().list_tokens(user)).await?;
    ok(json!({"tokens": list.iter().map(token_json).collect::<Vec<_>>()}))
}));

handler!(revoke_token, |st, c| Box::pin(async move {
    let id = c
        .path
        .rsplit('/')
        .next()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| invalid("the token id must be an integer"))?;
    let user = c.caller.user.id;
    db(&st, move |s| s.auth().revoke_token(user, id)).await?;
    acted(done(&st), "token.revoke", format!("token:{id}"))
}));
