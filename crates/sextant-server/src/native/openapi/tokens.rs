//! The API tokens' operations (`/api/v1/tokens`, served by `crate::auth::api`)
//! and schemas. They exist on a server started with `--auth`; without it
//! they answer 404 `ENDPOINT_NOT_FOUND`, as MLflow's auth routes do on a
//! plain `mlflow server`.

use serde_json::{Value, json};

use super::{epoch_ms, error, json_body, ok, path_param, schema_ref};

/// The 404 every token operation may answer.
const NOT_ENABLED: &str =
    "Authentication is off on this server (`ENDPOINT_NOT_FOUND`: start it with `--auth`)";

/// Adds the token operations and their schemas to `doc`.
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
        "/api/v1/tokens": {
            "post": {
                "operationId": "createToken",
                "summary": "Create an API token for the caller; the secret is in this answer only (the server keeps its SHA-256)",
                "requestBody": json_body("TokenRequest"),
                "responses": {
                    "200": ok("The token, with its secret", "TokenCreated"),
                    "400": error("Missing name, unknown scope or bad expiry"),
                    "403": error("The caller authenticated with a token: tokens are created after a password login (`PERMISSION_DENIED`)"),
                    "404": error(NOT_ENABLED)
                }
            },
            "get": {
                "operationId": "listTokens",
                "summary": "The caller's tokens, revoked and expired ones included, without their secrets",
                "responses": {
                    "200": ok("The tokens", "TokenList"),
                    "404": error(NOT_ENABLED)
                }
            }
        },
        "/api/v1/tokens/{id}": {
            "delete": {
                "operationId": "revokeToken",
                "summary": "Revoke one of the caller's tokens; it is refused from the next request on",
                "parameters": [path_param("id", "Token id", "integer")],
                "responses": {
                    "200": ok("Revoked", "Empty"),
                    "400": error("The id is not an integer"),
                    "404": error("Authentication is off (`ENDPOINT_NOT_FOUND`), or the caller has no token with this id (`RESOURCE_DOES_NOT_EXIST`)")
                }
            }
        }
    })
}

fn schemas_json() -> Value {
    json!({
        "TokenRequest": {
            "type": "object", "required": ["name"],
            "properties": {
                "name": { "type": "string", "minLength": 1, "description": "What the token is for, e.g. `ci`" },
                "scopes": { "type": "array", "items": { "enum": ["read", "invoke", "worker", "gateway"] },
                    "description": "Limits what the token may do (none: whatever its owner may); `worker` and `gateway` are for machines" },
                "expires_in_days": { "type": "integer", "minimum": 1, "maximum": 3650, "description": "Lifetime (default: none)" }
            }
        },
        "Token": {
            "type": "object", "required": ["id", "name", "scopes", "created_time", "expires_time", "revoked_time", "last_used_time"],
            "properties": {
                "id": { "type": "integer" },
                "name": { "type": "string" },
                "scopes": { "type": "array", "items": { "type": "string" } },
                "created_time": epoch_ms("Creation time"),
                "expires_time": { "type": ["integer", "null"], "description": "When it stops working, milliseconds since the Unix epoch; null: never" },
                "revoked_time": { "type": ["integer", "null"], "description": "When it was revoked, milliseconds since the Unix epoch" },
                "last_used_time": { "type": ["integer", "null"], "description": "When it last authenticated a request, to within a minute (recorded at most once a minute per token); null if never used" }
            }
        },
        "NewToken": {
            "allOf": [
                schema_ref("Token"),
                { "type": "object", "required": ["token"], "properties": {
                    "token": { "type": "string", "description": "The secret, for `Authorization: Bearer …` or MLFLOW_TRACKING_TOKEN; shown once" }
                } }
            ]
        },
        "TokenCreated": {
            "type": "object", "required": ["token"],
            "properties": { "token": schema_ref("NewToken") }
        },
        "TokenList": {
            "type": "object", "required": ["tokens"],
            "properties": { "tokens": { "type": "array", "items": schema_ref("Token") } }
        }
    })
}
