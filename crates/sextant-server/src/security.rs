//! Request guards: the Host-header check applied to every route, which stops
//! DNS rebinding against a loopback-bound server (MLflow CVE-2025-14279);
//! the guard in front of every state-changing route, which stops any web
//! page from driving the server through its user's browser (cross-site
//! request forgery); and the CORS answers for `--allowed-origins`.
//!
//! A browser sends a cross-site POST without asking first only when its
//! `Content-Type` is `text/plain`, a form type, or absent. So a
//! state-changing request must declare its body as JSON (artifact uploads
//! excepted: a PUT always needs the browser to ask first), and an `Origin`,
//! which browsers send with every such request, must be the server's own
//! or one of `--allowed-origins`.

use std::sync::Arc;

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};
use crate::routes::{Api, Body};
use sextant_serving::origin::{WebOrigin, normalize_origin};

/// Which Host headers and cross-site origins the server accepts.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Host names (without port) accepted; empty accepts any (a server bound
    /// to a public address with `--allow-remote`).
    pub allowed_hosts: Vec<String>,
    /// Origins besides the server's own that may change state
    /// (`--allowed-origins`), as `scheme://host:port`, normalized.
    allowed_origins: Vec<String>,
}

impl SecurityConfig {
    /// The hosts a loopback-bound server answers to.
    pub fn loopback() -> Self {
        SecurityConfig {
            allowed_hosts: ["localhost", "127.0.0.1", "[::1]", "::1"]
                .map(String::from)
                .to_vec(),
            allowed_origins: Vec::new(),
        }
    }

    /// The same settings, also accepting state changes from pages of
    /// `origins` (`https://app.example.com`, `http://localhost:3000`). An
    /// origin that is not `http(s)://host[:port]` is an error naming it.
    pub fn with_allowed_origins(mut self, origins: &[String]) -> Result<Self, String> {
        for o in origins {
            self.allowed_origins.push(normalize_origin(o)?);
        }
        Ok(self)
    }

    /// Whether `origin` (an `Origin` header) was listed in `--allowed-origins`.
    fn origin_listed(&self, origin: &WebOrigin) -> bool {
        let text = origin.to_string();
        self.allowed_origins.contains(&text)
    }

    /// Whether a Host header value names an allowed host.
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        self.allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Refuses requests whose Host header is not allowed; `/health` is exempt.
pub async fn check_host(
    State(cfg): State<Arc<SecurityConfig>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() != "/health" {
        let host = req
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        let ok = match host {
            Some(h) => cfg.host_allowed(h),
            None => cfg.allowed_hosts.is_empty(),
        };
        if !ok {
            return ApiError::new(
                ErrorCode::PermissionDenied,
                "Invalid Host header: this server only answers to its own host names \
                 (DNS rebinding guard)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// The settings of the guard in front of one state-changing route.
#[derive(Debug)]
pub struct Guard {
    pub security: Arc<SecurityConfig>,
    /// Whose conventions the refusals follow.
    pub api: Api,
    /// What the route's body is.
    pub body: Body,
}

/// Why a request was refused before its handler ran.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    CrossOrigin(String),
    NoContentType,
    WrongContentType(String),
}

impl Guard {
    /// `has_body`: whether the request may carry a body (its length is not
    /// known to be zero).
    fn check(&self, method: &Method, headers: &HeaderMap, has_body: bool) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let text = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            let own_host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let allowed = match WebOrigin::parse(&text) {
                Some(o) => {
                    own_host.is_some_and(|h| o.is_host(h)) || self.security.origin_listed(&o)
                }
                None => false,
            };
            if !allowed {
                return Err(Refusal::CrossOrigin(text));
            }
        }
        let accepted: &[&str] = match self.body {
            Body::Json => &["application/json"],
            Body::JsonOrYaml => &["application/json", "application/yaml", "application/x-yaml"],
            Body::None | Body::Any | Body::Stream => return Ok(()),
        };
        // A DELETE usually has no body; one that has one declares it.
        if *method == Method::DELETE && !has_body {
            return Ok(());
        }
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return Err(Refusal::NoContentType);
        };
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let media = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if accepted.contains(&media.as_str()) {
            Ok(())
        } else {
            Err(Refusal::WrongContentType(value))
        }
    }

    /// The answer to a refused request, as the route's API answers.
    fn refuse(&self, refusal: Refusal) -> Response {
        let accepted = match self.body {
            Body::JsonOrYaml => "application/json or application/yaml",
            _ => "application/json",
        };
        match (self.api, refusal) {
            // MLflow's own answers (server/security.py, server/validation.py).
            (Api::Mlflow | Api::Serving, Refusal::CrossOrigin(_)) => (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain")],
                "Cross-origin request blocked",
            )
                .into_response(),
            (Api::Mlflow | Api::Serving, Refusal::NoContentType) => {
                ApiError::invalid("Bad Request. Content-Type header is missing.").into_response()
            }
            (Api::Mlflow | Api::Serving, Refusal::WrongContentType(_)) => {
                ApiError::invalid("Bad Request. Content-Type must be one of ['application/json'].")
                    .into_response()
            }
            (Api::Native, Refusal::CrossOrigin(origin)) => ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "cross-origin request blocked: Origin '{origin}' is neither this server's \
                     own nor one of its --allowed-origins"
                ),
            )
            .into_response(),
            (Api::Native, Refusal::NoContentType) => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("the Content-Type header is missing: send the body as {accepted}"),
            )
            .into_response(),
            (Api::Native, Refusal::WrongContentType(given)) => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("Content-Type '{given}' is not accepted: send the body as {accepted}"),
            )
            .into_response(),
        }
    }
}

/// Refuses a request to a state-changing route before its handler runs when
/// it comes from another site's page or does not declare its body's type.
pub async fn guard_request(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let has_body = req.body().size_hint().upper() != Some(0);
    match guard.check(req.method(), req.headers(), has_body) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::warn!(method = %req.method(), path = %req.uri().path(), ?refusal, "refused a request");
            guard.refuse(refusal)
        }
    }
}

/// CORS for `--allowed-origins`: their preflights are answered, their
/// answers readable. Other origins get no CORS headers, so a browser keeps
/// their pages from reading answers and from sending what needs a preflight.
/// The data plane (`/endpoints/…`) is left to itself.
pub async fn cors(State(cfg): State<Arc<SecurityConfig>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let listed = origin
        .as_ref()
        .and_then(|o| o.to_str().ok())
        .and_then(WebOrigin::parse)
        .is_some_and(|o| cfg.origin_listed(&o))
        && !req.uri().path().starts_with("/endpoints/");
    let (Some(origin), true) = (origin, listed) else {
        return next.run(req).await;
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
        );
        if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(body: Body, origins: &[&str]) -> Guard {
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        Guard {
            security: Arc::new(
                SecurityConfig::loopback()
                    .with_allowed_origins(&origins)
                    .unwrap(),
            ),
            api: Api::Native,
            body,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origins_must_be_the_servers_own_or_listed() {
        let g = guard(Body::Json, &["https://app.example.com"]);
        let check = |origin: &str, host: &str| {
            g.check(
                &Method::POST,
                &headers(&[
                    ("origin", origin),
                    ("host", host),
                    ("content-type", "application/json"),
                ]),
                true,
            )
        };
        assert_eq!(check("http://127.0.0.1:5000", "127.0.0.1:5000"), Ok(()));
        assert_eq!(check("http://LOCALHOST:5000", "localhost:5000"), Ok(()));
        assert_eq!(check("http://[::1]:5000", "[::1]:5000"), Ok(()));
        assert_eq!(check("http://localhost", "localhost:80"), Ok(()));
        assert_eq!(check("https://app.example.com", "127.0.0.1:5000"), Ok(()));
        assert_eq!(
            check("https://app.example.com:443", "127.0.0.1:5000"),
            Ok(())
        );
        for (origin, host) in [
            ("https://evil.example.com", "127.0.0.1:5000"),
            ("http://localhost:3000", "localhost:5000"),
            ("http://127.0.0.1:5000", "localhost:5000"),
            ("null", "127.0.0.1:5000"),
            ("file://", "127.0.0.1:5000"),
            ("http://app.example.com", "127.0.0.1:5000"),
            ("https://app.example.com.evil.com", "127.0.0.1:5000"),
        ] {
            assert!(
                matches!(check(origin, host), Err(Refusal::CrossOrigin(_))),
                "{origin} on {host}"
            );
        }
    }

    #[test]
    fn bodies_must_declare_json() {
        let g = guard(Body::Json, &[]);
        let post = |h: &[(&'static str, &str)]| g.check(&Method::POST, &headers(h), true);
        assert_eq!(post(&[("content-type", "application/json")]), Ok(()));
        assert_eq!(
            post(&[("content-type", "Application/JSON; charset=utf-8")]),
            Ok(())
        );
        assert_eq!(post(&[]), Err(Refusal::NoContentType));
        for t in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/yaml",
        ] {
            assert!(
                matches!(
                    post(&[("content-type", t)]),
                    Err(Refusal::WrongContentType(_))
                ),
                "{t}"
            );
        }
        // A DELETE without a body needs no type; with one, it does.
        assert_eq!(g.check(&Method::DELETE, &headers(&[]), false), Ok(()));
        assert_eq!(
            g.check(&Method::DELETE, &headers(&[]), true),
            Err(Refusal::NoContentType)
        );
        // A POST declares its type even without a body, as MLflow requires.
        assert_eq!(
            g.check(&Method::POST, &headers(&[]), false),
            Err(Refusal::NoContentType)
        );
        let yaml = guard(Body::JsonOrYaml, &[]);
        assert_eq!(
            yaml.check(
                &Method::PUT,
                &headers(&[("content-type", "application/yaml")]),
                true
            ),
            Ok(())
        );
        let upload = guard(Body::Stream, &[]);
        assert_eq!(
            upload.check(
                &Method::PUT,
                &headers(&[("content-type", "text/plain")]),
                true
            ),
            Ok(())
        );
    }

    #[test]
    fn allowed_origins_are_checked_when_given() {
        let cfg = SecurityConfig::default();
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/path",
            "ftp://x",
            "https://x:port",
        ] {
            assert!(
                cfg.clone()
                    .with_allowed_origins(&[bad.to_string()])
                    .is_err(),
                "{bad}"
            );
        }
        assert!(
            cfg.with_allowed_origins(&["https://app.example.com/".into()])
                .is_ok()
        );
    }

    #[test]
    fn loopback_accepts_local_names_with_ports() {
        let cfg = SecurityConfig::loopback();
        assert!(cfg.host_allowed("127.0.0.1:5000"));
        assert!(cfg.host_allowed("localhost"));
        assert!(cfg.host_allowed("[::1]:5000"));
        assert!(!cfg.host_allowed("evil.example.com"));
        assert!(!cfg.host_allowed("evil.example.com:5000"));
        assert!(!cfg.host_allowed("127.0.0.1.evil.example.com"));
    }
}
