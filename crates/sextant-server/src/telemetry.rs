//! One span per HTTP request: method, route template, request id, and once the
//! answer is ready its status and latency. The request id is the client's
//! `x-request-id` when that is a sane token, else a fresh one; either way it is
//! echoed in the answer's `x-request-id`, so a caller can quote it and an
//! operator can find the request's log lines by it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest client-given request id kept; a longer one is replaced.
const MAX_ID_LEN: usize = 128;

/// The request's id, in its extensions for the layers inside this one (the
/// audit log records it).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Runs the request inside its span and stamps the answer with its id.
///
/// Layered on the whole router, so it runs per route after routing (the route
/// template is known) and sees every answer, the guards' refusals included.
pub async fn trace_request(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    // The template (`/api/2.0/mlflow/runs/get`, `/endpoints/{name}/{*rest}`),
    // never the raw path: a span field that log queries group by stays bounded.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    span.record("status", status);
    span.record("latency_ms", latency_ms);
    span.in_scope(|| tracing::debug!(status, latency_ms, "request answered"));
    // Checked by `is_sane` or generated: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, value);
    }
    resp
}

/// Whether a client's request id can be kept as it is: 1 to 128 characters of
/// letters, digits and `-_.:`, so it cannot forge log lines or bloat them.
fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::is_sane;

    #[test]
    fn sane_ids_are_short_plain_tokens() {
        assert!(is_sane("3f2a9c1e-7b44-4c55-9d0e-1a2b3c4d5e6f"));
        assert!(is_sane("req_42.retry:1"));
        assert!(!is_sane(""));
        assert!(!is_sane("has space"));
        assert!(!is_sane("line\nbreak"));
        assert!(!is_sane("quote\"d"));
        assert!(!is_sane(&"a".repeat(129)));
        assert!(is_sane(&"a".repeat(128)));
    }
}
