//! What the in-process HTTP tests share: one request helper and one poll
//! with a deadline.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

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
