//! The audit log's API, for admins: `GET /api/v1/audit/verify` recomputes
//! the chain, `GET /api/v1/audit?after=SEQ&limit=N` pages through it. With
//! authentication off the routes answer 404, as the auth API's do.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use serde_json::{Value, json};
use sextant_core::audit::{AuditReport, AuditRow};

use super::Principal;
use super::authn::{denied, unauthenticated};
use crate::error::{ApiError, ErrorCode};
use crate::routes::{Api, Group, Resource as R, Route};
use crate::state::AppState;

/// Rows a page holds unless the caller asks for fewer.
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1_000;

/// Sextant's audit routes (the handlers check for an admin: `Resource::User`).
pub(crate) const AUDIT: Group = Group {
    api: Api::Native,
    mounts: &["/api/v1"],
    routes: &[
        Route::get("/audit/verify", R::User, |m| on(m, verify)),
        Route::get("/audit", R::User, |m| on(m, tail)),
    ],
};

/// A row on the wire (the API, `sextant audit tail --json` and `export`).
pub fn row_json(r: &AuditRow) -> Value {
    let e = &r.entry;
    json!({
        "seq": r.seq,
        "time_ms": e.time_ms,
        "actor": e.actor,
        "auth_method": e.auth_method,
        "source": e.source,
        "method": e.method,
        "route": e.route,
        "resource": e.resource,
        "status": e.status,
        "request_id": e.request_id,
        "count": e.count,
        "action": e.action,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    })
}

/// A verification report on the wire.
pub fn report_json(r: &AuditReport) -> Value {
    json!({
        "ok": r.ok(),
        "rows": r.rows,
        "sealed": r.sealed,
        "unsealed_tail": r.unsealed_tail,
        "first_bad": r.first_bad.as_ref().map(|(seq, why)| json!({
            "seq": seq,
            "reason": why.to_string(),
        })),
        "head": r.head.as_ref().map(|(seq, hash)| json!({"seq": seq, "hash": hash})),
        "checkpoint": r.checkpoint.as_ref().map(|c| json!({
            "seq": c.seq,
            "hash": c.hash,
            "time_ms": c.time_ms,
        })),
    })
}

/// The refusal of anyone but an admin.
fn refusal(st: &AppState, req: &Request) -> Option<Response> {
    let path = req.uri().path();
    if !st.auth.enabled() {
        return Some(
            ApiError::new(
                ErrorCode::EndpointNotFound,
                "authentication is not enabled on this server (start it with --auth); \
                 use `sextant audit` against the store",
            )
            .into_response(),
        );
    }
    match req.extensions().get::<Arc<Principal>>() {
        None => Some(unauthenticated(path)),
        Some(p) if !p.user.is_admin => Some(denied(path, "the audit log is for admins only")),
        Some(_) => None,
    }
}

async fn verify(State(st): State<AppState>, req: Request) -> Response {
    if let Some(refused) = refusal(&st, &req) {
        return refused;
    }
    match st.db(|s| s.audit().verify()).await {
        Ok(report) => Json(report_json(&report)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `after` and `limit` of the query, each checked.
fn page(query: Option<&str>) -> Result<(i64, u64), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::new(ErrorCode::InvalidParameterValue, e.to_string()))?;
    let mut after = 0;
    let mut limit = DEFAULT_LIMIT;
    for (k, v) in pairs {
        let bad = |what: &str| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("'{k}' must be {what}; got '{v}'"),
            )
        };
        match k.as_str() {
            "after" => after = v.parse().map_err(|_| bad("an integer"))?,
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(&format!("an integer from 1 to {MAX_LIMIT}")))?;
            }
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterValue,
                    format!("unknown parameter '{k}': expected 'after' or 'limit'"),
                ));
            }
        }
    }
    Ok((after, limit))
}

async fn tail(State(st): State<AppState>, req: Request) -> Response {
    if let Some(refused) = refusal(&st, &req) {
        return refused;
    }
    let (after, limit) = match page(req.uri().query()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match st.db(move |s| s.audit().tail(after, limit)).await {
        Ok(rows) => {
            let next = rows.last().map_or(after, |r| r.seq);
            Json(json!({
                "rows": rows.iter().map(row_json).collect::<Vec<_>>(),
                "next_after": next,
            }))
            .into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_checked() {
        assert_eq!(page(None).unwrap(), (0, DEFAULT_LIMIT));
        assert_eq!(page(Some("after=41&limit=5")).unwrap(), (41, 5));
        for (q, says) in [
            ("after=x", "'after' must be an integer; got 'x'"),
            (
                "limit=0",
                "'limit' must be an integer from 1 to 1000; got '0'",
            ),
            ("limit=5000", "from 1 to 1000"),
            ("since=1", "unknown parameter 'since'"),
        ] {
            let e = page(Some(q)).unwrap_err();
            assert!(e.message.contains(says), "{q}: {}", e.message);
        }
    }
}
