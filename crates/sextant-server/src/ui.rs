//! The web UI: its shell at `/` and its bundle under [`sextant_ui::PREFIX`],
//! both public (the shell holds no data; every page's data comes through the
//! APIs, under the same authorization as any client's).

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::on;

use crate::routes::{Api, Group, Resource, Route};

pub(crate) const ROUTES: Group = Group {
    api: Api::Native,
    mounts: &[""],
    routes: &[
        Route::get("/", Resource::Server, |m| on(m, shell)),
        Route::get("/static/ui/{*path}", Resource::Server, |m| on(m, asset)),
    ],
};

/// What the UI may load and do: nothing from elsewhere, no inline script,
/// no framing by other sites. Styles may be inline (the chart library sets
/// them); artifacts open in frames of this origin, sandboxed by the page.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; frame-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn shell(headers: HeaderMap) -> Response {
    let Some(index) = sextant_ui::index() else {
        let why = sextant_ui::left_out().unwrap_or("the UI bundle is missing");
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "Sextant's web UI was left out of this binary ({why}). The APIs are served \
                 as usual under /api/2.0/mlflow/ and /api/v1/.\n"
            ),
        )
            .into_response();
    };
    let mut res = serve(index, &headers);
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match sextant_ui::get(&path).filter(|a| a.path != "index.html") {
        Some(a) => {
            let mut res = serve(a, &headers);
            // Vite names bundle files by content hash: they never change.
            let cache = if a.path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            res
        }
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no UI file {path}\n"),
        )
            .into_response(),
    }
}

/// The file, gzipped when the client takes gzip and a gzipped copy exists.
fn serve(a: &'static sextant_ui::Asset, headers: &HeaderMap) -> Response {
    let gzip_ok = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name == "gzip" || name == "*") && !refused
        });
    let mut res = match (a.gzip, gzip_ok) {
        (Some(gz), true) => {
            let mut r = gz.into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        _ => a.bytes.into_response(),
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}
