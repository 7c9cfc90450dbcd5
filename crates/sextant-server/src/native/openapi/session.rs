//! The web UI's session operations (`/api/v1/session`, served by
//! `crate::auth::session`) and schemas.

use serde_json::{Value, json};

use super::{error, json_body, ok};

/// Adds the session operations and their schemas to `doc`.
pub(super) fn add(doc: &mut Value) {
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.extend(paths_json().as_object().cloned().unwrap_or_default());
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(schemas_json().as_object().cloned().unwrap_or_default());
    }
}

fn paths_json() -> Value {
    json!({
        "/api/v1/session/permissions": {
            "get": {
                "operationId": "getMyPermissions",
                "summary": "The caller's permission level on each named resource, decided as requests are (admins, and everyone with authentication off: MANAGE), so a page shows only what the server would accept",
                "parameters": [{
                    "name": "resource", "in": "query", "required": false,
                    "description": "`TYPE:NAME`, e.g. `endpoint:churn` or `registered_model:fraud`; repeat for more (at most 100)",
                    "schema": { "type": "array", "items": { "type": "string" } }, "style": "form", "explode": true
                }],
                "responses": {
                    "200": ok("Levels by resource", "MyPermissions"),
                    "400": error("A resource not written TYPE:NAME, an unknown type, or more than 100")
                }
            }
        },
        "/api/v1/session": {
            "get": {
                "operationId": "getSession",
                "summary": "Who is calling and how, with the CSRF token of a browser session; with authentication off, `auth: false`",
                "responses": {
                    "200": ok("The caller", "Session")
                }
            },
            "post": {
                "operationId": "signIn",
                "summary": "Sign in with a user name and password: sets the session cookie (HttpOnly, SameSite=Strict, Secure over TLS) and answers the CSRF token that every change from the session must send in X-CSRF-Token. Throttled like HTTP Basic.",
                "requestBody": json_body("Login"),
                "responses": {
                    "200": ok("Signed in", "Session"),
                    "400": error("Not a login body, or authentication is off on this server")
                }
            },
            "delete": {
                "operationId": "signOut",
                "summary": "Sign out: the session's token is revoked and the cookie cleared (without a session, only the cookie)",
                "responses": {
                    "204": { "description": "Signed out" }
                }
            }
        }
    })
}

fn schemas_json() -> Value {
    json!({
        "MyPermissions": {
            "type": "object", "required": ["permissions"],
            "properties": { "permissions": { "type": "object", "additionalProperties": { "enum": ["READ", "USE", "EDIT", "MANAGE", "DENY", "NO_PERMISSIONS"] } } }
        },
        "Login": {
            "type": "object", "additionalProperties": false, "required": ["username", "password"],
            "properties": {
                "username": { "type": "string" },
                "password": { "type": "string" }
            }
        },
        "Session": {
            "type": "object", "required": ["auth", "method", "user", "csrf_token", "expires_time"],
            "properties": {
                "auth": { "type": "boolean", "description": "Whether the server authenticates requests" },
                "method": { "enum": ["none", "basic", "bearer", "session", "internal"], "description": "How the caller authenticated" },
                "user": {
                    "type": ["object", "null"], "required": ["username", "is_admin"],
                    "properties": { "username": { "type": "string" }, "is_admin": { "type": "boolean" } }
                },
                "csrf_token": { "type": ["string", "null"], "description": "For X-CSRF-Token on every change from this browser session" },
                "expires_time": { "type": ["integer", "null"], "description": "When a new session ends, milliseconds since the Unix epoch" }
            }
        }
    })
}
