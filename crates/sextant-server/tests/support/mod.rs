//! What the in-process HTTP tests share: the app served on a loopback port
//! with a typed client of it (`sextant-client`, as the CLI and workers talk
//! to a server), a raw request helper for what only the wire shows, and one
//! poll with a deadline.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sextant_client::{Client, ClientError, Settings};
use tower::ServiceExt;

/// An app served on a loopback port, and a typed client of it. Dropping it
/// stops the server.
pub struct Served {
    pub client: Client,
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves `app` on a free loopback port as `sextant server` does (with the
/// peer's address), and gives a client of it that sends no credentials.
///
/// A typed client sees a success, not its status; so every success the
/// server answers must have a status its API declares for the operation —
/// the OpenAPI document's for the native API (`201` for a started run, `204`
/// for a removed alias), `200` for MLflow's RPCs and artifacts and for an
/// endpoint's invocations — or it is
/// turned into a 500 naming the status, and the test's call fails.
pub async fn serve(app: Router) -> Served {
    let doc = request(&app, "GET", "/api/v1/openapi.json", None, &[]).await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    let declared = Arc::new(Declared::from_document(&doc.json));
    let app = app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let declared = declared.clone();
            async move { declared.check(req, next).await }
        },
    ));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let settings = Settings {
        user_agent: Some("sextant-server-tests".into()),
        credentials: None,
        ..Settings::default()
    };
    let client = Client::with_settings(&format!("http://{addr}"), settings).unwrap();
    Served {
        client,
        addr,
        server,
    }
}

/// The success statuses each native operation declares in the OpenAPI
/// document: (method, path template split at `/`, statuses).
struct Declared(Vec<(Method, Vec<String>, Vec<u16>)>);

impl Declared {
    fn from_document(doc: &Value) -> Declared {
        let mut ops = Vec::new();
        for (path, methods) in doc["paths"].as_object().expect("the document has paths") {
            let template: Vec<String> = path.split('/').map(str::to_string).collect();
            for (method, op) in methods.as_object().unwrap() {
                let Ok(method) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                let successes: Vec<u16> = op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter_map(|s| s.parse().ok())
                    .filter(|s| (200..300).contains(s))
                    .collect();
                ops.push((method, template.clone(), successes));
            }
        }
        Declared(ops)
    }

    /// The success statuses declared for `method` on `path`; `None` where
    /// no API declares them (the data plane, the UI).
    fn successes(&self, method: &Method, path: &str, ranged: bool) -> Option<Vec<u16>> {
        if path.starts_with("/api/2.0/mlflow/") || path.starts_with("/ajax-api/2.0/mlflow/") {
            return Some(vec![200]);
        }
        if path.starts_with("/api/2.0/mlflow-artifacts/") {
            return Some(if ranged { vec![200, 206] } else { vec![200] });
        }
        if path.starts_with("/endpoints/") && path.ends_with("/invocations") {
            return Some(vec![200]);
        }
        let segments: Vec<&str> = path.split('/').collect();
        // The most literal template that matches (`/tasks/claim` before
        // `/tasks/{id}`).
        self.0
            .iter()
            .filter(|(m, t, _)| {
                m == method
                    && t.len() == segments.len()
                    && t.iter()
                        .zip(&segments)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            })
            .max_by_key(|(_, t, _)| t.iter().filter(|t| !t.starts_with('{')).count())
            .map(|(_, _, s)| s.clone())
            // An operation of the native API the document leaves out
            // declares nothing.
            .or_else(|| path.starts_with("/api/v1/").then(Vec::new))
    }

    async fn check(&self, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let ranged = req.headers().contains_key("range");
        let resp = next.run(req).await;
        let status = resp.status().as_u16();
        match self.successes(&method, &path, ranged) {
            Some(declared) if resp.status().is_success() && !declared.contains(&status) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({
                    "error_code": "UNDECLARED_STATUS",
                    "message": format!(
                        "{method} {path} answered {status}; its API declares {declared:?}"
                    ),
                })),
            )
                .into_response(),
            _ => resp,
        }
    }
}

/// A call the server refused: its status, `error_code` and message.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// The server's refusal of a call; fails the test on a success or on an
/// error that is not the server's answer.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(got: Result<T, ClientError>) -> Refusal {
    match got {
        Err(ClientError::Server {
            status,
            code,
            message,
        }) => Refusal {
            status,
            code,
            message,
        },
        Err(other) => panic!("not the server's refusal: {other}"),
        Ok(answer) => panic!("accepted, not refused: {answer:?}"),
    }
}

/// An answer: status, headers, and the body as JSON (`Null` when it is not
/// JSON) and as text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

/// An HTTP Basic `authorization` header value.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// [`request`] with HTTP Basic credentials `who` = (user, password).
pub async fn as_user(
    app: &Router,
    who: (&str, &str),
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> Answer {
    let auth = basic(who.0, who.1);
    request(app, method, uri, body, &[("authorization", &auth)]).await
}

/// Sends one request to `app` as a loopback client. A body is declared JSON
/// unless `headers` gives a `content-type`; without a body none is declared.
pub async fn request(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:5000");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `request`, keeping the status and the JSON body.
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let answer = request(app, method, uri, body, headers).await;
    (answer.status, answer.json)
}

/// `request` with `body` declared JSON (empty for none): the common case.
pub async fn call(app: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    send(app, method, uri, Some(body), &[]).await
}

/// What a probe of `eventually` answers: `Some`/`Ok` when the awaited state
/// is reached; `None`, or `Err` with what it saw instead, when not yet.
pub trait Probe<T> {
    fn settled(self) -> Result<T, String>;
}

impl<T> Probe<T> for Option<T> {
    fn settled(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".to_owned())
    }
}

impl<T, E: std::fmt::Display> Probe<T> for Result<T, E> {
    fn settled(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Polls `probe` until it settles, failing after `within` with `what` it was
/// waiting for and what the last probe saw. The pause between probes is a
/// poll interval, not a wait for the work: the deadline bounds the test.
pub async fn eventually<T, P: Probe<T>, F: Future<Output = P>>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let last = match probe().await.settled() {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
