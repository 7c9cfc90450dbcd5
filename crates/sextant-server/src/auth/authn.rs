//! Who is calling: the layer in front of every route. It takes HTTP Basic
//! or a Bearer token exactly as MLflow's client sends them, or the web UI's
//! session cookie (whose changes must carry the session's CSRF token), puts the
//! [`Principal`] into the request's extensions, and refuses anonymous
//! requests everywhere but the public probes — before routing, so unknown
//! paths answer 401 too, as MLflow's do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sextant_core::auth::StoredUser;
use sextant_store::{MetaStore, StoreError};

use super::{Auth, Cached, Method, Principal, secrets};
use crate::error::{ApiError, ErrorCode};

/// MLflow's 401 body, word for word: its client shows it to the user.
pub const UNAUTHENTICATED_TEXT: &str = "You are not authenticated. Please see \
    https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to \
    authenticate.";

/// MLflow's 403 body.
pub const DENIED_TEXT: &str = "Permission denied";

/// Paths served without credentials (MLflow's exemptions, and Sextant's
/// liveness probe).
pub fn is_public(path: &str) -> bool {
    // `/` is the UI's shell: it holds no data, and it draws the login page,
    // which signs in at `/api/v1/session` (its handler refuses the rest).
    path == "/"
        || path == "/api/v1/session"
        || path == "/health"
        || path == "/favicon.ico"
        || path.starts_with("/static/")
        || ["/api/", "/ajax-api/"].iter().any(|p| {
            path.strip_prefix(p)
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(_, rest)| rest == "mlflow/server-info")
        })
}

/// Whether refusals on `path` follow the native API's JSON conventions
/// rather than MLflow's plain text.
fn native(path: &str) -> bool {
    path.starts_with("/api/v1/") || path == "/api/v1"
}

/// A 401 in the convention of the path's API.
pub fn unauthenticated(path: &str) -> Response {
    if native(path) {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "authentication required: send HTTP Basic credentials or an API token \
             (Authorization: Bearer …)",
        )
        .into_response();
    }
    let mut resp = (StatusCode::UNAUTHORIZED, UNAUTHENTICATED_TEXT).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"mlflow\""),
    );
    resp
}

/// A 403 in the convention of the path's API.
pub fn denied(path: &str, why: &str) -> Response {
    if native(path) {
        return ApiError::new(ErrorCode::PermissionDenied, why).into_response();
    }
    let mut resp = (StatusCode::FORBIDDEN, DENIED_TEXT).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// A 429 for a throttled login.
pub(super) fn throttled(path: &str, wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let message = format!("too many failed logins: retry in {secs} s");
    let mut resp = if native(path) {
        ApiError::new(ErrorCode::TooManyRequests, message).into_response()
    } else {
        (StatusCode::TOO_MANY_REQUESTS, message).into_response()
    };
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// Why a request carrying credentials was not authenticated.
enum Failure {
    /// Unknown user, wrong password, bad or revoked token, malformed header.
    Refused,
    /// Too many recent failures of this user or address.
    Throttled(Duration),
    /// The store failed: not the caller's fault.
    Store(ApiError),
}

/// State of the authentication layer.
#[derive(Clone)]
pub struct Authn {
    pub auth: Arc<Auth>,
    pub store: Arc<dyn MetaStore>,
}

/// The layer: authenticates when credentials are sent; refuses anonymous
/// requests to anything but the public paths when authentication is on.
pub async fn authenticate(State(st): State<Authn>, mut req: Request, next: Next) -> Response {
    if !st.auth.enabled() {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let source = source_address(&st.auth, &req);
    // The principal and a failed login also go out with the answer, for the
    // audit layer outside this one.
    let mut outcome = None;
    let mut failure = None;
    let mut logged_in = false;
    match principal(&st, req.headers(), source).await {
        Ok(Some((p, fresh))) => {
            logged_in = fresh && p.method == Method::Basic;
            if p.method == Method::Session
                && !matches!(
                    *req.method(),
                    HttpMethod::GET | HttpMethod::HEAD | HttpMethod::OPTIONS
                )
                && !super::session::csrf_ok(req.headers())
            {
                let mut refusal = denied(
                    &path,
                    "a change from a browser session needs the session's CSRF token in \
                     X-CSRF-Token (from GET /api/v1/session)",
                );
                refusal.extensions_mut().insert(p);
                return refusal;
            }
            if let Some(id) = p.token_id {
                record_token_use(&st, id).await;
            }
            req.extensions_mut().insert(p.clone());
            outcome = Some(p);
        }
        Ok(None) if is_public(&path) => {}
        Ok(None) => return unauthenticated(&path),
        // Wrong credentials on a public probe still get the probe.
        Err(Failure::Refused) if is_public(&path) => failure = login_failure(req.headers(), false),
        Err(Failure::Refused) => {
            let mut refusal = unauthenticated(&path);
            // An ended browser session: the page shows its own sign-in form,
            // so no `WWW-Authenticate` to pop the browser's Basic dialog over it.
            if req.headers().get(header::AUTHORIZATION).is_none() {
                refusal.headers_mut().remove(header::WWW_AUTHENTICATE);
            }
            return with_failure(refusal, login_failure(req.headers(), false));
        }
        Err(Failure::Throttled(wait)) => {
            return with_failure(throttled(&path, wait), login_failure(req.headers(), true));
        }
        Err(Failure::Store(e)) => return e.into_response(),
    }
    // Events the request's store calls append name the caller, whatever
    // the request declares (`sextant_store::actor`).
    let mut resp = match &outcome {
        Some(p) => {
            let actor: Arc<str> = p.user.username.as_str().into();
            sextant_store::actor::acting_as(actor, next.run(req)).await
        }
        None => next.run(req).await,
    };
    if let Some(p) = outcome {
        resp.extensions_mut().insert(p);
    }
    if logged_in {
        resp.extensions_mut().insert(super::audit::BasicLogin);
    }
    with_failure(resp, failure)
}

/// Records a use of token `id`, at most once a minute per token
/// ([`super::TOKEN_USE_EVERY_MS`]; the store skips the write when another
/// server recorded one within the minute). The request waits for that one
/// write a minute; a failure is logged and costs the request nothing.
async fn record_token_use(st: &Authn, id: i64) {
    let now = st.auth.clock.now_ms();
    if !st.auth.token_use_due(id, now) {
        return;
    }
    let every = super::TOKEN_USE_EVERY_MS;
    if let Err(e) = sextant_store::call(&st.store, move |s| {
        s.auth().record_token_use(id, now, every)
    })
    .await
    {
        tracing::warn!(token = id, error = %e, "cannot record the token's use");
    }
}

/// A login that was refused, as the audit log records it.
#[derive(Debug, Clone)]
pub struct LoginFailure {
    pub method: Method,
    /// The user name a Basic login claimed (never the password).
    pub username: Option<String>,
    /// Refused unchecked: too many recent failures.
    pub throttled: bool,
}

/// What a refused `Authorization` header claimed; `None` for a malformed
/// one, which names nobody (and is not throttled, so the audit log counts
/// it with the anonymous refusals).
fn login_failure(headers: &HeaderMap, throttled: bool) -> Option<LoginFailure> {
    let (method, username) = match credentials(headers) {
        Ok(Some(Credentials::Basic { username, .. })) => (Method::Basic, Some(username)),
        Ok(Some(Credentials::Bearer(_))) => (Method::Bearer, None),
        Ok(Some(Credentials::Session(_))) => (Method::Session, None),
        _ => return None,
    };
    Some(LoginFailure {
        method,
        username,
        throttled,
    })
}

fn with_failure(mut resp: Response, failure: Option<LoginFailure>) -> Response {
    if let Some(f) = failure {
        resp.extensions_mut().insert(f);
    }
    resp
}

/// Refuses a request no principal was attached to (routes mounted outside
/// the table's guard, e.g. the data plane, call it).
pub fn refuse_anonymous(auth: &Auth, req: &Request) -> Option<Response> {
    let path = req.uri().path();
    (auth.enabled() && !is_public(path) && req.extensions().get::<Arc<Principal>>().is_none())
        .then(|| unauthenticated(path))
}

/// The client's address: the peer, or behind a trusted proxy the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub(super) fn source_address(auth: &Auth, req: &Request) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !auth.settings.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !auth.settings.trusted_proxies.contains(ip))
            .unwrap_or(peer),
    )
}

/// The credentials of an `Authorization` header, or of the session cookie
/// when there is no such header.
enum Credentials {
    Basic { username: String, password: String },
    Bearer(String),
    Session(String),
}

fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, Failure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(super::session::cookie(headers).map(Credentials::Session));
    };
    let text = value.to_str().map_err(|_| Failure::Refused)?;
    let (scheme, rest) = text.split_once(' ').ok_or(Failure::Refused)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| Failure::Refused)?;
        let decoded = String::from_utf8(decoded).map_err(|_| Failure::Refused)?;
        let (username, password) = decoded.split_once(':').ok_or(Failure::Refused)?;
        if username.is_empty() {
            return Err(Failure::Refused);
        }
        return Ok(Some(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(Some(Credentials::Bearer(rest.to_string())));
    }
    Err(Failure::Refused)
}

/// The cache key of a header value: HMAC-SHA256 under the process's key.
fn cache_key(auth: &Auth, header: &[u8]) -> [u8; 32] {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&auth.cache_key)
        .expect("HMAC takes a key of any length");
    mac.update(header);
    mac.finalize().into_bytes().into()
}

/// The caller, and whether this is a login: their credentials checked
/// against the store, not verified within the cache window before.
async fn principal(
    st: &Authn,
    headers: &HeaderMap,
    source: Option<IpAddr>,
) -> Result<Option<(Arc<Principal>, bool)>, Failure> {
    let Some(creds) = credentials(headers)? else {
        return Ok(None);
    };
    let auth = &st.auth;
    let key = match &creds {
        Credentials::Session(token) => cache_key(auth, format!("session:{token}").as_bytes()),
        _ => cache_key(
            auth,
            headers
                .get(header::AUTHORIZATION)
                .map(|h| h.as_bytes())
                .unwrap_or_default(),
        ),
    };
    let now = auth.clock.now_ms();
    let ttl = auth.settings.cache_ttl.as_millis() as i64;
    let generation = auth.generation();
    // A login, for the audit log: no verification of this credential
    // within the cache window. One only made stale by a change of users or
    // grants (the generation) is reloaded, not logged in again.
    let (previous_hash, login) = {
        let cache = auth.cache.lock().expect("cache lock");
        match cache.get(&key) {
            Some(c) if c.generation == generation && now - c.loaded_ms < ttl => {
                return Ok(Some((c.principal.clone(), false)));
            }
            Some(c) => (c.password_hash.clone(), now - c.loaded_ms >= ttl),
            None => (None, true),
        }
    };
    let address = AddressThrottle::check(auth, source).map_err(Failure::Throttled)?;
    let verified = match creds {
        Credentials::Basic { username, password } => {
            throttled_basic(st, username, password, previous_hash).await?
        }
        Credentials::Bearer(token) => bearer(st, &token, now).await?,
        Credentials::Session(token) => bearer(st, &token, now).await?.map(|(p, h)| {
            (
                Principal {
                    method: Method::Session,
                    ..p
                },
                h,
            )
        }),
    };
    address.settle(verified.is_some());
    let Some((principal, password_hash)) = verified else {
        return Err(Failure::Refused);
    };
    let principal = Arc::new(principal);
    let mut cache = auth.cache.lock().expect("cache lock");
    if cache.len() > 50_000 {
        cache.retain(|_, c| now - c.loaded_ms < ttl);
    }
    cache.insert(
        key,
        Cached {
            principal: principal.clone(),
            password_hash,
            loaded_ms: now,
            generation,
        },
    );
    Ok(Some((principal, login)))
}

/// The per-source-address throttle of one login attempt: checked before
/// the credential is, settled by its outcome.
struct AddressThrottle<'a> {
    auth: &'a Auth,
    key: Option<String>,
}

impl<'a> AddressThrottle<'a> {
    /// The throttle of `source`, or how long it must still wait.
    fn check(auth: &'a Auth, source: Option<IpAddr>) -> Result<Self, Duration> {
        let key = source.map(|ip| format!("ip:{ip}"));
        if let Some(k) = &key {
            let wait = auth.throttled_for(k);
            if !wait.is_zero() {
                return Err(wait);
            }
        }
        Ok(AddressThrottle { auth, key })
    }

    /// A success forgets the address's failures; a refusal adds one.
    fn settle(&self, ok: bool) {
        if let Some(k) = &self.key {
            if ok {
                self.auth.clear_failures(k);
            } else {
                self.auth.record_failure(k);
            }
        }
    }
}

/// A Basic login under the per-user throttle: `None` when refused.
async fn throttled_basic(
    st: &Authn,
    username: String,
    password: String,
    previous_hash: Option<String>,
) -> Result<Option<(Principal, Option<String>)>, Failure> {
    let user_key = format!("user:{username}");
    let wait = st.auth.throttled_for(&user_key);
    if !wait.is_zero() {
        return Err(Failure::Throttled(wait));
    }
    let found = basic(st, username, password, previous_hash).await?;
    match &found {
        Some(_) => st.auth.clear_failures(&user_key),
        None => st.auth.record_failure(&user_key),
    }
    Ok(found)
}

/// What a password login (the web UI's `POST /api/v1/session`) came to.
pub enum PasswordLogin {
    Accepted(Principal),
    /// Unknown user or wrong password: the same answer for both.
    Refused,
    Throttled(Duration),
    Store(ApiError),
}

/// Checks a user name and password under the same throttles as HTTP Basic
/// (per user and per source address).
pub(super) async fn password_login(
    st: &Authn,
    username: String,
    password: String,
    source: Option<IpAddr>,
) -> PasswordLogin {
    let address = match AddressThrottle::check(&st.auth, source) {
        Ok(a) => a,
        Err(wait) => return PasswordLogin::Throttled(wait),
    };
    let found = throttled_basic(st, username, password, None).await;
    if let Ok(verified) = &found {
        address.settle(verified.is_some());
    }
    match found {
        Ok(Some((p, _))) => PasswordLogin::Accepted(p),
        Ok(None) => PasswordLogin::Refused,
        Err(Failure::Throttled(wait)) => PasswordLogin::Throttled(wait),
        Err(Failure::Refused) => PasswordLogin::Refused,
        Err(Failure::Store(e)) => PasswordLogin::Store(e),
    }
}

/// A dummy hash verified for unknown users, so that a wrong name costs as
/// long as a wrong password (no user enumeration by timing).
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| secrets::hash_password("no user has this password"))
}

async fn basic(
    st: &Authn,
    username: String,
    password: String,
    previous_hash: Option<String>,
) -> Result<Option<(Principal, Option<String>)>, Failure> {
    let found = load(st, move |s| match s.auth().get_user(&username) {
        Ok(u) => {
            let rows = s.auth().permissions_of_user(u.user.id)?;
            Ok(Some((u, rows)))
        }
        Err(StoreError::Domain(sextant_core::Error::NotFound(_))) => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    let Some((
        StoredUser {
            user,
            password_hash,
        },
        rows,
    )) = found
    else {
        let _ =
            tokio::task::spawn_blocking(move || secrets::verify_password(&password, dummy_hash()))
                .await;
        return Ok(None);
    };
    // Verified before under this very hash: only the grants needed reloading.
    let ok = previous_hash.as_deref() == Some(password_hash.as_str()) || {
        let stored = password_hash.clone();
        tokio::task::spawn_blocking(move || secrets::verify_password(&password, &stored))
            .await
            .unwrap_or(false)
    };
    Ok(ok.then(|| {
        (
            Principal {
                user,
                method: Method::Basic,
                scopes: Vec::new(),
                rows,
                token_id: None,
            },
            Some(password_hash),
        )
    }))
}

async fn bearer(
    st: &Authn,
    token: &str,
    now: i64,
) -> Result<Option<(Principal, Option<String>)>, Failure> {
    let sha = secrets::token_sha256(token);
    if st.auth.internal.as_deref() == Some(sha.as_str()) {
        return Ok(Some((
            Principal {
                user: sextant_core::auth::User {
                    id: 0,
                    username: "sextant-internal".into(),
                    is_admin: true,
                },
                method: Method::Internal,
                scopes: Vec::new(),
                rows: Vec::new(),
                token_id: None,
            },
            None,
        )));
    }
    let found = load(st, move |s| match s.auth().token_by_hash(&sha) {
        Ok((t, u)) => {
            let rows = s.auth().permissions_of_user(u.user.id)?;
            Ok(Some((t, u, rows)))
        }
        Err(StoreError::Domain(sextant_core::Error::NotFound(_))) => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    Ok(found.and_then(|(t, u, rows)| {
        let live = t.revoked_ms.is_none() && t.expires_ms.is_none_or(|e| now < e);
        live.then_some((
            Principal {
                user: u.user,
                method: Method::Bearer,
                scopes: t.scopes,
                rows,
                token_id: Some(t.id),
            },
            None,
        ))
    }))
}

async fn load<T, F>(st: &Authn, f: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: FnOnce(&dyn MetaStore) -> Result<T, StoreError> + Send + 'static,
{
    sextant_store::call(&st.store, f)
        .await
        .map_err(|e| Failure::Store(ApiError::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_probes_the_ui_shell_and_the_login_are_public() {
        for p in [
            "/",
            "/static/ui/assets/index.js",
            "/api/v1/session",
            "/health",
            "/api/2.0/mlflow/server-info",
            "/ajax-api/3.0/mlflow/server-info",
        ] {
            assert!(is_public(p), "{p}");
        }
        for p in [
            "/api/v1/sessions",
            "/api/2.0/mlflow/experiments/search",
            "/api/2.0/mlflow/server-info/x",
            "/api/v1/endpoints",
            "/healthz",
        ] {
            assert!(!is_public(p), "{p}");
        }
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {enc}")).unwrap(),
        );
        match credentials(&h) {
            Ok(Some(Credentials::Basic { username, password })) => {
                assert_eq!((username.as_str(), password.as_str()), ("alice", "pa:ss"));
            }
            _ => panic!("not basic"),
        }
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(matches!(credentials(&h), Err(Failure::Refused)));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Digest x"));
        assert!(matches!(credentials(&h), Err(Failure::Refused)));
    }
}
