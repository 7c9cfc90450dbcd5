//! The audit log's operations (`/api/v1/audit…`, served by
//! `crate::auth::audit_api`) and schemas: for admins, on a server started
//! with `--auth`; without it they answer 404 `ENDPOINT_NOT_FOUND`.

use serde_json::{Value, json};

use super::{epoch_ms, error, ok, query_param, schema_ref};

const NOT_ENABLED: &str =
    "Authentication is off on this server (`ENDPOINT_NOT_FOUND`: start it with `--auth`)";

/// Adds the audit operations and their schemas to `doc`.
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
        "/api/v1/audit": {
            "get": {
                "operationId": "listAuditRows",
                "summary": "Rows of the audit log after a sequence number, in order (admins)",
                "parameters": [
                    query_param("after", "Rows after this sequence number (default 0)", json!({"type": "integer"})),
                    query_param("limit", "At most this many rows (default 100)", json!({"type": "integer", "minimum": 1, "maximum": 1000}))
                ],
                "responses": {
                    "200": ok("A page of rows", "AuditPage"),
                    "400": error("`after` or `limit` is not a valid integer, or an unknown parameter"),
                    "403": error("The caller is not an admin (`PERMISSION_DENIED`)"),
                    "404": error(NOT_ENABLED)
                }
            }
        },
        "/api/v1/audit/verify": {
            "get": {
                "operationId": "verifyAuditLog",
                "summary": "Recompute the audit log's hash chain and name the first row edited, deleted, inserted or reordered (admins)",
                "responses": {
                    "200": ok("The report (a broken chain is a report with `ok: false`, not an error)", "AuditReport"),
                    "403": error("The caller is not an admin (`PERMISSION_DENIED`)"),
                    "404": error(NOT_ENABLED)
                }
            }
        }
    })
}

fn schemas_json() -> Value {
    let text = json!({"type": ["string", "null"]});
    json!({
        "AuditRow": {
            "type": "object",
            "required": ["seq", "time_ms", "method", "route", "status", "count", "prev_hash", "hash"],
            "properties": {
                "seq": { "type": "integer", "description": "Position in the chain (commit order; gaps are rolled-back appends)" },
                "time_ms": epoch_ms("When the request was answered (an aggregate: the start of its minute)"),
                "actor": { "type": ["string", "null"], "description": "The authenticated user; null for anonymous callers and failed logins" },
                "auth_method": { "type": ["string", "null"], "enum": ["basic", "bearer", "session", "internal", null] },
                "source": text,
                "method": { "type": "string", "description": "HTTP method; `*` for an aggregate of anonymous denials" },
                "route": { "type": "string", "description": "Route template, the path of an unrouted request, or `*`" },
                "resource": { "type": ["string", "null"], "description": "What the request named, e.g. `run:…`, `user:alice` for a failed login" },
                "status": { "type": "integer" },
                "request_id": text,
                "count": { "type": "integer", "minimum": 1, "description": "Requests the row stands for (anonymous denials of one source and minute)" },
                "action": { "type": ["string", "null"], "description": "What the row records beyond its request: `login`, `logout`, `token.create`, `token.revoke`, `user.create`, `user.password`, `user.admin`, `user.delete`, `permission.grant`, `permission.revoke`, `role.create`, `role.update`, `role.delete`, `role.permission.add`, `role.permission.update`, `role.permission.remove`, `role.assign`, `role.unassign`; `resource` then names what it acted on. Null for a plain request" },
                "prev_hash": { "type": ["string", "null"], "description": "Hex SHA-256 of the row before; null until sealed" },
                "hash": { "type": ["string", "null"], "description": "Hex SHA-256(prev_hash ‖ canonical JSON of the row); null until sealed" }
            }
        },
        "AuditPage": {
            "type": "object", "required": ["rows", "next_after"],
            "properties": {
                "rows": { "type": "array", "items": schema_ref("AuditRow") },
                "next_after": { "type": "integer", "description": "`after` for the next page" }
            }
        },
        "AuditReport": {
            "type": "object", "required": ["ok", "rows", "sealed", "unsealed_tail", "first_bad", "head", "checkpoint"],
            "properties": {
                "ok": { "type": "boolean" },
                "rows": { "type": "integer" },
                "sealed": { "type": "integer" },
                "unsealed_tail": { "type": "integer", "description": "Rows after the last sealed one, waiting for the sealer" },
                "first_bad": { "type": ["object", "null"], "properties": {
                    "seq": { "type": "integer" }, "reason": { "type": "string" } } },
                "head": { "type": ["object", "null"], "description": "The last sealed row: what an outside copy anchors",
                    "properties": { "seq": { "type": "integer" }, "hash": { "type": "string" } } },
                "checkpoint": { "type": ["object", "null"], "description": "Where the chain starts after a prune",
                    "properties": { "seq": { "type": "integer" }, "hash": { "type": "string" }, "time_ms": epoch_ms("When the prune happened") } }
            }
        }
    })
}
