//! Browser sessions for the web UI: `POST /api/v1/session` signs in with a
//! user name and password and sets an HttpOnly, SameSite=Strict cookie
//! (`Secure` over TLS); `GET` says who is signed in and hands out the CSRF
//! token every change must carry in `X-CSRF-Token`; `DELETE` signs out.
//!
//! A session is an API token of the user (named [`SESSION_TOKEN_NAME`],
//! expiring after [`SESSION_TTL_MS`]): it is stored, cached, revoked and
//! listed like any token, so signing out, revoking it on the tokens page or
//! deleting the user ends it on every server of a shared store within the
//! credential cache's bound. The CSRF token is derived from the session's
//! secret, which scripts of other origins cannot read.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use serde::Deserialize;
use serde_json::{Value, json};
use sextant_core::auth::NewApiToken;
use sha2::{Digest, Sha256};

use super::audit::Action;
use super::authn::{LoginFailure, PasswordLogin, password_login, source_address, throttled};
use super::{Method as AuthMethod, Principal, secrets};
use crate::error::{ApiError, ErrorCode};
use crate::routes::{Api, Capability as C, Group, Resource as R, Route};
use crate::state::AppState;
use axum::http::Method;

/// The cookie holding the session's token.
pub const COOKIE: &str = "sextant_session";
/// The header a session's changes carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after signing in.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// The name of the API tokens that back sessions.
pub const SESSION_TOKEN_NAME: &str = "web UI session";
/// The largest login body read.
const MAX_LOGIN_BODY: usize = 64 << 10;

pub(crate) const ROUTES: Group = Group {
    api: Api::Native,
    mounts: &["/api/v1"],
    routes: &[
        Route::get("/session", R::User, |m| on(m, current)),
        Route::json(Method::POST, "/session", R::User, C::Create, |m| {
            on(m, login)
        }),
        Route::json(Method::DELETE, "/session", R::User, C::Edit, |m| {
            on(m, logout)
        }),
        Route::get("/session/permissions", R::User, |m| on(m, permissions)),
    ],
};

/// The session token of the request's cookie, if it has one.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: a digest of its secret.
pub fn csrf_token(session: &str) -> String {
    let digest = Sha256::digest(format!("sextant-csrf:{session}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the request carries its session's CSRF token.
pub fn csrf_ok(headers: &HeaderMap) -> bool {
    let (Some(session), Some(sent)) = (
        cookie(headers),
        headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let want = csrf_token(&session);
    // Compared in constant time: no early exit on the first difference.
    want.len() == sent.len()
        && want
            .bytes()
            .zip(sent.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn set_cookie(secure: bool, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("cookie text is ASCII")
}

fn session_json(p: &Principal, csrf: Option<String>, expires: Option<i64>) -> Value {
    json!({
        "auth": true,
        "method": p.method.as_str(),
        "user": { "username": p.user.username, "is_admin": p.user.is_admin },
        "csrf_token": csrf,
        "expires_time": expires,
    })
}

/// `GET /api/v1/session`: who is calling, and the CSRF token of their
/// session; with authentication off, that there is none to have.
async fn current(State(st): State<AppState>, req: Request) -> Response {
    if !st.auth.enabled() {
        return Json(json!({
            "auth": false, "method": "none", "user": null, "csrf_token": null, "expires_time": null,
        }))
        .into_response();
    }
    let Some(p) = req.extensions().get::<Arc<Principal>>().cloned() else {
        return super::authn::unauthenticated(req.uri().path());
    };
    let csrf = (p.method == AuthMethod::Session)
        .then(|| cookie(req.headers()).map(|t| csrf_token(&t)))
        .flatten();
    Json(session_json(&p, csrf, None)).into_response()
}

/// The most resources one permissions question may name.
const MAX_ASKED: usize = 100;

/// `GET /api/v1/session/permissions?resource=endpoint:quickstart&…`: the
/// caller's level on each named resource (`type:name`), decided as every
/// request is, so a page shows only the buttons the server would accept.
/// With authentication off, and for admins, every level is MANAGE.
async fn permissions(State(st): State<AppState>, req: Request) -> Response {
    let asked: Vec<String> = req
        .uri()
        .query()
        .map(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k == "resource")
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default();
    if asked.len() > MAX_ASKED {
        return ApiError::invalid(format!(
            "at most {MAX_ASKED} resources per question, got {}",
            asked.len()
        ))
        .into_response();
    }
    let principal = req.extensions().get::<Arc<Principal>>().cloned();
    if st.auth.enabled() && principal.is_none() {
        return super::authn::unauthenticated(req.uri().path());
    }
    let mut out = serde_json::Map::new();
    for r in asked {
        let Some((kind, name)) = r
            .split_once(':')
            .filter(|(k, n)| !k.is_empty() && !n.is_empty())
        else {
            return ApiError::invalid(format!(
                "invalid resource '{r}': it must be TYPE:NAME, e.g. endpoint:churn"
            ))
            .into_response();
        };
        if !sextant_core::auth::RESOURCE_TYPES.contains(&kind) {
            return ApiError::invalid(format!(
                "invalid resource type '{kind}': it must be one of {}",
                sextant_core::auth::RESOURCE_TYPES.join(", ")
            ))
            .into_response();
        }
        let level = match &principal {
            Some(p) if !p.user.is_admin => super::policy::Grants {
                rows: &p.rows,
                default: st.auth.settings.default_permission,
            }
            .level(kind, name),
            _ => sextant_core::auth::Permission::Manage,
        };
        out.insert(r.clone(), Value::String(level.as_str().to_string()));
    }
    Json(json!({ "permissions": out })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

/// `POST /api/v1/session`: signs in; throttled like HTTP Basic.
async fn login(State(st): State<AppState>, req: Request) -> Response {
    if !st.auth.enabled() {
        return ApiError::invalid(
            "authentication is off on this server: there is nothing to sign in to",
        )
        .into_response();
    }
    let path = req.uri().path().to_string();
    let source = source_address(&st.auth, &req);
    let bytes = match axum::body::to_bytes(req.into_body(), MAX_LOGIN_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                ErrorCode::RequestLimitExceeded,
                format!("a login body is at most {MAX_LOGIN_BODY} bytes"),
            )
            .into_response();
        }
    };
    let body: Login = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::invalid(format!(
                "a login is {{\"username\": …, \"password\": …}}: {e}"
            ))
            .into_response();
        }
    };
    let username = body.username.clone();
    let failure = |throttled: bool| LoginFailure {
        method: AuthMethod::Session,
        username: Some(username.clone()),
        throttled,
    };
    let principal = match password_login(&st.authn(), body.username, body.password, source).await {
        PasswordLogin::Accepted(p) => p,
        PasswordLogin::Refused => {
            let mut r = ApiError::new(ErrorCode::Unauthenticated, "wrong user name or password")
                .into_response();
            r.extensions_mut().insert(failure(false));
            return r;
        }
        PasswordLogin::Throttled(wait) => {
            let mut r = throttled(&path, wait);
            r.extensions_mut().insert(failure(true));
            return r;
        }
        PasswordLogin::Store(e) => return e.into_response(),
    };
    let secret = secrets::new_token();
    let expires = st.clock.now_ms() + SESSION_TTL_MS;
    let new = NewApiToken {
        user_id: principal.user.id,
        name: SESSION_TOKEN_NAME.to_string(),
        token_sha256: secrets::token_sha256(&secret),
        scopes: Vec::new(),
        expires_ms: Some(expires),
    };
    if let Err(e) = st.db(move |s| s.auth().create_token(&new)).await {
        return e.into_response();
    }
    let principal = Arc::new(Principal {
        method: AuthMethod::Session,
        ..principal
    });
    let mut r = Json(session_json(
        &principal,
        Some(csrf_token(&secret)),
        Some(expires),
    ))
    .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            st.auth.settings.secure_cookies,
            &secret,
            SESSION_TTL_MS / 1000,
        ),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The audit log records the sign-in under the user who signed in.
    let user = format!("user:{}", principal.user.username);
    r.extensions_mut().insert(principal);
    Action::on(r, "login", user)
}

/// `DELETE /api/v1/session`: signs out (revokes the session's token) and
/// clears the cookie; without a session there is nothing to end.
async fn logout(State(st): State<AppState>, req: Request) -> Response {
    let principal = req.extensions().get::<Arc<Principal>>().cloned();
    let mut ended = None;
    if let (Some(p), Some(token)) = (&principal, cookie(req.headers()))
        && p.method == AuthMethod::Session
    {
        ended = Some(format!("user:{}", p.user.username));
        let sha = secrets::token_sha256(&token);
        let user = p.user.id;
        let revoked = st
            .db(move |s| {
                let (t, _) = s.auth().token_by_hash(&sha)?;
                s.auth().revoke_token(user, t.id)
            })
            .await;
        if let Err(e) = revoked {
            return e.into_response();
        }
        st.auth.changed();
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(st.auth.settings.secure_cookies, "", 0),
    );
    match ended {
        Some(user) => Action::on(r, "logout", user),
        None => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sextant_session=sxt_abc ; b=2"),
        );
        assert_eq!(cookie(&h).as_deref(), Some("sxt_abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("sextant_session="));
        assert_eq!(cookie(&h), None);
    }

    #[test]
    fn csrf_needs_the_token_of_this_very_session() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("sextant_session=sxt_one"),
        );
        assert!(!csrf_ok(&h));
        h.insert(
            CSRF_HEADER,
            HeaderValue::from_str(&csrf_token("sxt_two")).unwrap(),
        );
        assert!(!csrf_ok(&h));
        h.insert(
            CSRF_HEADER,
            HeaderValue::from_str(&csrf_token("sxt_one")).unwrap(),
        );
        assert!(csrf_ok(&h));
    }
}
