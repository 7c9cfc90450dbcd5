//! The proxied artifact service (`/api/2.0/mlflow-artifacts/…`, with
//! multipart uploads in [`multipart`]), run and logged-model artifact
//! listings, and the UI's download routes.
//!
//! Paths are taken from the raw request URI, not from axum's decoded
//! captures, and checked by `SafePath` in every decoded form: a payload must
//! not look safe to one layer and traverse in another.

mod multipart;

use axum::Json;
use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};
use sextant_artifacts::{ArtifactError, ByteRange, Entry, SafePath};
use unicode_normalization::UnicodeNormalization;

use crate::error::{ApiError, ErrorCode};
use crate::routes::{Api, Body, Capability as C, Group, Resource as R, Route};
use crate::state::AppState;

/// What follows this in a request path is the artifact path.
use sextant_artifacts::ARTIFACTS_MARKER;

/// The proxied artifact service.
pub(crate) const PROXY: Group = Group {
    api: Api::Mlflow,
    mounts: &[
        "/api/2.0/mlflow-artifacts",
        "/ajax-api/2.0/mlflow-artifacts",
    ],
    routes: &[
        Route::get("/artifacts", R::Artifact, |m| on(m, list)),
        Route::get("/artifacts/{*path}", R::Artifact, |m| on(m, download)),
        // Uploads stream to the store, typed as the file is (the client
        // sends the file's MIME type).
        Route::json(
            Method::PUT,
            "/artifacts/{*path}",
            R::Artifact,
            C::Edit,
            |m| on(m, upload),
        )
        .with_body(Body::Stream),
        Route::json(
            Method::DELETE,
            "/artifacts/{*path}",
            R::Artifact,
            C::Manage,
            |m| on(m, delete),
        ),
        Route::json(Method::POST, "/mpu/{*rest}", R::Artifact, C::Edit, |m| {
            on(m, multipart::command)
        }),
        Route::json(Method::PUT, "/mpu/{*rest}", R::Artifact, C::Edit, |m| {
            on(m, multipart::put_part)
        })
        .with_body(Body::Stream),
        Route::get("/presigned/{*path}", R::Artifact, |m| {
            on(m, presigned_unsupported)
        }),
    ],
};

/// Listings of a run's and a logged model's artifacts, among MLflow's RPCs.
pub(crate) const LISTINGS: Group = Group {
    api: Api::Mlflow,
    mounts: &["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"],
    routes: &[
        Route::get("/artifacts/list", R::Run, |m| on(m, list_run)),
        Route::get(
            "/logged-models/{model_id}/artifacts/directories",
            R::LoggedModel,
            |m| on(m, list_logged_model),
        ),
    ],
};

/// The largest file the UI may upload in one request (MLflow's limit).
const MAX_UI_UPLOAD: usize = 10 * 1024 * 1024;

/// The UI's downloads and uploads (MLflow serves these outside the RPC table).
pub(crate) const UI: Group = Group {
    api: Api::Mlflow,
    mounts: &[""],
    routes: &[
        Route::get("/get-artifact", R::Run, |m| on(m, download_run_file)),
        Route::get("/model-versions/get-artifact", R::ModelVersion, |m| {
            on(m, download_version_file)
        }),
        // The body is the file's bytes, of whatever type; the handler stops
        // reading past `MAX_UI_UPLOAD`.
        Route::json(
            Method::POST,
            "/ajax-api/2.0/mlflow/upload-artifact",
            R::Run,
            C::Edit,
            |m| on(m, upload_run_file),
        )
        .with_body(Body::Stream),
        Route::get(
            "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
            R::LoggedModel,
            |m| on(m, download_logged_model_file),
        ),
    ],
};

/// `PUT …/artifacts/<path>`: the body, streamed into the store.
async fn upload(
    State(state): State<AppState>,
    uri: Uri,
    body: HttpBody,
) -> Result<Json<Value>, ApiError> {
    proxy_served(&state, &uri)?;
    let path = path_in_uri(&uri)?;
    state
        .artifacts
        .put(&path, body.into_data_stream())
        .await
        .map_err(artifact_error)?;
    Ok(Json(json!({})))
}

/// `GET …/artifacts/<path>`: the file as an attachment, whole or one range.
async fn download(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    proxy_served(&state, &uri)?;
    send_artifact(&state, &path_in_uri(&uri)?, &headers).await
}

/// The artifact at `path` as an attachment, whole or the one range `headers` ask for.
async fn send_artifact(
    state: &AppState,
    path: &SafePath,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    let d = match state.artifacts.get(path, range).await {
        Ok(d) => d,
        Err(ArtifactError::RangeNotSatisfiable { size, .. }) => {
            let content_range = format!("bytes */{size}");
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, content_range)],
            )
                .into_response());
        }
        Err(e) => return Err(artifact_error(e)),
    };
    let name = path.file_name().unwrap_or("artifact");
    let mut response = Response::new(HttpBody::from_stream(d.stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(d.range.end - d.range.start),
    );
    h.insert(header::CONTENT_DISPOSITION, content_disposition(name));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if range.is_some() {
        let content_range = format!(
            "bytes {}-{}/{}",
            d.range.start,
            d.range.end.saturating_sub(1),
            d.size
        );
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&content_range).expect("ASCII"),
        );
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// `DELETE …/artifacts/<path>`: the file, or the directory and all under it.
async fn delete(State(state): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    proxy_served(&state, &uri)?;
    let path = path_in_uri(&uri)?;
    state
        .artifacts
        .delete(&path)
        .await
        .map_err(artifact_error)?;
    Ok(Json(json!({})))
}

/// `GET …/artifacts?path=<dir>`: the directory's children, by name.
async fn list(State(state): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    proxy_served(&state, &uri)?;
    let dir = match query_param(&uri, "path")? {
        Some(p) => SafePath::parse(&p).map_err(invalid_path)?,
        None => SafePath::root(),
    };
    not_reserved(&dir)?;
    let mut entries = state.artifacts.list(&dir).await.map_err(artifact_error)?;
    if dir.is_root() {
        entries.retain(|e| e.name != RESERVED_TOP);
    }
    Ok(Json(files_json(entries, |name| name.to_string(), None)))
}

/// `GET /api/2.0/mlflow/artifacts/list?run_id=&path=`: a run's artifacts,
/// with paths relative to the run's artifact root.
async fn list_run(State(state): State<AppState>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let run_id = match query_param(&uri, "run_id")? {
        Some(id) if !id.is_empty() => id,
        _ => match query_param(&uri, "run_uuid")? {
            Some(id) if !id.is_empty() => id,
            _ => return Err(ApiError::missing("run_id")),
        },
    };
    let raw = query_param(&uri, "path")?.unwrap_or_default();
    let rel = SafePath::parse(&raw).map_err(invalid_path)?;
    let run = state.db(move |s| s.get_run(&run_id)).await?;
    list_under_root(&state, run.info.artifact_uri, &rel, &raw).await
}

/// `GET /api/2.0/mlflow/logged-models/<id>/artifacts/directories?artifact_directory_path=`:
/// a logged model's artifacts, with paths relative to its artifact root.
async fn list_logged_model(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let raw = query_param(&uri, "artifact_directory_path")?.unwrap_or_default();
    let rel = SafePath::parse(&raw).map_err(invalid_path)?;
    let model = state
        .db(move |s| s.get_logged_model(&model_id, false))
        .await?;
    list_under_root(&state, model.artifact_uri, &rel, &raw).await
}

/// The children of `rel` under the proxied artifact root `root_uri`, and the
/// root itself. Each child's path is the directory as the caller wrote it
/// (`raw`, checked as `rel`) joined with its name, as MLflow's
/// `posixpath.join` does: `.` lists `./a.txt`, `d/` lists `d/a.txt`.
async fn list_under_root(
    state: &AppState,
    root_uri: String,
    rel: &SafePath,
    raw: &str,
) -> Result<Json<Value>, ApiError> {
    let root = proxied_root(&root_uri)?;
    let entries = state
        .artifacts
        .list(&root.join(rel))
        .await
        .map_err(artifact_error)?;
    let relative = |name: &str| {
        if raw.is_empty() || raw.ends_with('/') {
            format!("{raw}{name}")
        } else {
            format!("{raw}/{name}")
        }
    };
    Ok(Json(files_json(entries, relative, Some(root_uri))))
}

/// `GET /get-artifact?run_id=&path=`: a run's file, for the UI.
async fn download_run_file(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run_id = match query_param(&uri, "run_id")? {
        Some(id) if !id.is_empty() => id,
        _ => match query_param(&uri, "run_uuid")? {
            Some(id) if !id.is_empty() => id,
            _ => return Err(ApiError::missing("run_id")),
        },
    };
    let rel = file_param(&uri, "path")?;
    let run = state.db(move |s| s.get_run(&run_id)).await?;
    let root = proxied_root(&run.info.artifact_uri)?;
    send_artifact(&state, &root.join(&rel), &headers).await
}

/// `GET /model-versions/get-artifact?name=&version=&path=`: a file of a
/// model version, for the UI, read from where the version's source resolved
/// (only a root of this server's store is served).
async fn download_version_file(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = required_param(&uri, "name")?;
    let version = sextant_core::validation::parse_model_version(&required_param(&uri, "version")?)?;
    let rel = file_param(&uri, "path")?;
    let v = state
        .db(move |s| s.get_model_version(&name, version))
        .await?;
    let location = if v.storage_location.is_empty() {
        v.source
    } else {
        v.storage_location
    };
    let root = proxied_root(&location)?;
    send_artifact(&state, &root.join(&rel), &headers).await
}

/// `POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path=`: the UI's
/// upload of one small file (the body) into a run's artifacts, with MLflow's
/// checks and messages.
async fn upload_run_file(
    State(state): State<AppState>,
    uri: Uri,
    body: HttpBody,
) -> Result<Json<Value>, ApiError> {
    let run_id = query_param(&uri, "run_uuid")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("Request must specify run_uuid."))?;
    let raw = query_param(&uri, "path")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("Request must specify path."))?;
    let rel = SafePath::parse(&raw).map_err(invalid_path)?;
    if rel.is_root() {
        return Err(ApiError::invalid("Invalid path"));
    }
    let too_large = || ApiError::invalid("Artifact size is too large. Max size is 10MB.");
    let data = axum::body::to_bytes(body, MAX_UI_UPLOAD)
        .await
        .map_err(|_| too_large())?;
    if data.is_empty() {
        return Err(ApiError::invalid("Request must specify data."));
    }
    let run = state.db(move |s| s.get_run(&run_id)).await?;
    let root = proxied_root(&run.info.artifact_uri)?;
    state
        .artifacts
        .put(&root.join(&rel), HttpBody::from(data).into_data_stream())
        .await
        .map_err(artifact_error)?;
    Ok(Json(json!({})))
}

/// A required, non-empty query parameter, named in MLflow's words when missing.
fn required_param(uri: &Uri, name: &str) -> Result<String, ApiError> {
    query_param(uri, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing(name))
}

/// `GET /ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files?artifact_file_path=`:
/// a logged model's file, for the UI.
async fn download_logged_model_file(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rel = file_param(&uri, "artifact_file_path")?;
    let model = state
        .db(move |s| s.get_logged_model(&model_id, false))
        .await?;
    let root = proxied_root(&model.artifact_uri)?;
    send_artifact(&state, &root.join(&rel), &headers).await
}

/// `TEMPORARILY_UNAVAILABLE` (503) when the server runs with
/// `--no-serve-artifacts`, in MLflow's words.
pub(super) fn proxy_served(state: &AppState, uri: &Uri) -> Result<(), ApiError> {
    if state.serve_artifacts {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::TemporarilyUnavailable,
        format!(
            "Endpoint: {} disabled due to the server running with `--no-serve-artifacts`. To \
             enable artifacts server functionality, run `sextant server` without \
             `--no-serve-artifacts`",
            uri.path()
        ),
    ))
}

/// A required query parameter naming a file below an artifact root.
fn file_param(uri: &Uri, name: &str) -> Result<SafePath, ApiError> {
    let raw = match query_param(uri, name)? {
        Some(p) if !p.is_empty() => p,
        _ => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("Request must include the \"{name}\" query parameter."),
            ));
        }
    };
    let rel = SafePath::parse(&raw).map_err(invalid_path)?;
    if rel.is_root() {
        return Err(ApiError::invalid("Invalid path"));
    }
    Ok(rel)
}

async fn presigned_unsupported(State(state): State<AppState>, uri: Uri) -> ApiError {
    if let Err(e) = proxy_served(&state, &uri) {
        return e;
    }
    ApiError::new(
        ErrorCode::NotImplemented,
        "Presigned download URLs are not supported for the current artifact repository",
    )
}

/// MLflow's listing body: `{}` when empty; `file_size` left out for
/// directories and when 0 (protobuf JSON omits default values).
fn files_json(
    entries: Vec<Entry>,
    path: impl Fn(&str) -> String,
    root_uri: Option<String>,
) -> Value {
    let files: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut f = json!({"path": path(&e.name), "is_dir": e.is_dir});
            if !e.is_dir && e.size > 0 {
                f["file_size"] = json!(e.size);
            }
            f
        })
        .collect();
    let mut body = json!({});
    if let Some(root_uri) = root_uri {
        body["root_uri"] = json!(root_uri);
    }
    if !files.is_empty() {
        body["files"] = Value::Array(files);
    }
    body
}

/// The artifact path of a `…/mlflow-artifacts/artifacts/<path>` request,
/// from the raw (still percent-encoded) URI.
fn path_in_uri(uri: &Uri) -> Result<SafePath, ApiError> {
    let raw = uri.path();
    let Some((_, encoded)) = raw.split_once(ARTIFACTS_MARKER) else {
        return Err(ApiError::invalid("Invalid path"));
    };
    let path = SafePath::from_encoded(encoded).map_err(invalid_path)?;
    if path.is_root() {
        return Err(ApiError::invalid("Invalid path"));
    }
    not_reserved(&path)?;
    Ok(path)
}

/// The top folder of the artifact store that holds the audit log's
/// checkpoints (`crate::auth::audit_checkpoints::DIR`): the anchor of its hash
/// chain, which no client may read, list, overwrite or delete through the
/// artifact service.
const RESERVED_TOP: &str = "audit";

/// Refuses paths in the reserved part of the store.
pub(super) fn not_reserved(path: &SafePath) -> Result<(), ApiError> {
    if path.segments().first().map(String::as_str) == Some(RESERVED_TOP) {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "the artifact store's audit/ folder holds the audit log's checkpoints and is not \
             served through the artifact service",
        ));
    }
    Ok(())
}

/// The first value of query parameter `name`, form-decoded once. A value
/// that does not decode to UTF-8 is refused like any other bad path.
fn query_param(uri: &Uri, name: &str) -> Result<Option<String>, ApiError> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(key).as_deref() == Some(name) {
            return form_decode(value)
                .map(Some)
                .ok_or_else(|| ApiError::invalid("Invalid path"));
        }
    }
    Ok(None)
}

fn form_decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Where a run's artifact root lies in this server's store (400 for any
/// root the store does not serve).
pub(crate) fn proxied_root(uri: &str) -> Result<SafePath, ApiError> {
    sextant_artifacts::proxied_root(uri).map_err(|e| match e {
        sextant_artifacts::NotProxied::InvalidPath(e) => invalid_path(e),
        e @ sextant_artifacts::NotProxied::Elsewhere(_) => {
            ApiError::new(ErrorCode::InvalidParameterValue, e.to_string())
        }
    })
}

/// One `bytes=` range; anything else (several ranges, other units) is
/// ignored and the whole file is sent, as HTTP allows.
fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    match (start.is_empty(), end.is_empty()) {
        (true, false) => end.parse().ok().map(ByteRange::Suffix),
        (false, true) => start.parse().ok().map(ByteRange::From),
        (false, false) => Some(ByteRange::Inclusive {
            start: start.parse().ok()?,
            end: end.parse().ok()?,
        }),
        (true, true) => None,
    }
}

/// The type a download is sent with. Text-like files go out as `text/plain`,
/// never as HTML, SVG or script a browser would run (MLflow CVE-2023-6568).
fn content_type(name: &str) -> &'static str {
    if name.eq_ignore_ascii_case("MLmodel") || name.eq_ignore_ascii_case("MLproject") {
        return "text/plain";
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some(
            "txt" | "log" | "err" | "cfg" | "conf" | "cnf" | "cf" | "ini" | "properties" | "prop"
            | "hocon" | "toml" | "yaml" | "yml" | "xml" | "json" | "js" | "py" | "py3" | "csv"
            | "tsv" | "md" | "rst" | "html" | "htm" | "svg" | "mlmodel" | "mlproject",
        ) => "text/plain",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// Bytes a `filename*` keeps as they are: RFC 5987's attr-chars, as
/// Werkzeug passes them to `quote` (`safe="!#$&+-.^_`|~"`).
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename=…` as MLflow's server (Werkzeug's `send_file`)
/// writes it, so clients that compare the header see the same text: the
/// name bare when it is an HTTP token, quoted otherwise; a name that is not
/// ASCII gets its NFKD ASCII letters as `filename` and itself, percent-encoded,
/// as `filename*`.
fn content_disposition(name: &str) -> HeaderValue {
    let value = if name.is_ascii() {
        format!("attachment; filename={}", header_word(name))
    } else {
        let simple: String = name.nfkd().filter(char::is_ascii).collect();
        format!(
            "attachment; filename={}; filename*=UTF-8''{}",
            header_word(&simple),
            utf8_percent_encode(name, ATTR_CHAR)
        )
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Werkzeug's `quote_header_value`: a token as it is, anything else quoted
/// with `\` and `"` escaped.
fn header_word(value: &str) -> String {
    let token = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn invalid_path(e: sextant_artifacts::InvalidPath) -> ApiError {
    tracing::debug!(error = %e, "refused artifact path");
    ApiError::invalid("Invalid path")
}

/// Every artifact-store error as an API error (no catch-all arm).
fn artifact_error(e: ArtifactError) -> ApiError {
    match e {
        ArtifactError::InvalidPath(e) => invalid_path(e),
        ArtifactError::NotFound(path) => ApiError::not_found(format!("No such artifact: '{path}'")),
        e @ ArtifactError::RangeNotSatisfiable { .. } => ApiError::invalid(e.to_string()),
        ArtifactError::Body { path, reason } => ApiError::new(
            ErrorCode::BadRequest,
            format!("the upload of {path} ended early: {reason}"),
        ),
        ArtifactError::NoSuchUpload(id) => {
            ApiError::not_found(format!("No such multipart upload: '{id}'"))
        }
        ArtifactError::InvalidMultipart(reason) => ApiError::invalid(reason),
        e @ (ArtifactError::Config { .. } | ArtifactError::Backend { .. }) => {
            ApiError::internal(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_folder_is_where_checkpoints_are_written() {
        let top = crate::auth::audit_checkpoints::DIR.split('/').next();
        assert_eq!(top, Some(RESERVED_TOP));
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Some(ByteRange::Inclusive { start: 0, end: 9 })
        );
        assert_eq!(parse_range("bytes=5-"), Some(ByteRange::From(5)));
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        assert_eq!(parse_range("bytes=0-1,3-4"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=x-1"), None);
    }

    #[test]
    fn dispositions_are_ascii_attachments() {
        // As `mlflow server` 3.17.2 answers for these names.
        assert_eq!(content_disposition("a.txt"), "attachment; filename=a.txt");
        assert_eq!(
            content_disposition("dog+step+20.png"),
            "attachment; filename=dog+step+20.png"
        );
        assert_eq!(
            content_disposition("a b.txt"),
            "attachment; filename=\"a b.txt\""
        );
        assert_eq!(
            content_disposition("q;x.txt"),
            "attachment; filename=\"q;x.txt\""
        );
        assert_eq!(
            content_disposition("e ✓\".txt"),
            "attachment; filename=\"e \\\".txt\"; filename*=UTF-8''e%20%E2%9C%93%22.txt"
        );
        assert_eq!(
            content_disposition("café.txt"),
            "attachment; filename=cafe.txt; filename*=UTF-8''caf%C3%A9.txt"
        );
        assert_eq!(content_type("x.HTML"), "text/plain");
        assert_eq!(content_type("mlproject"), "text/plain");
        assert_eq!(content_type("mlmodel"), "text/plain");
        assert_eq!(content_type("model.pkl"), "application/octet-stream");
    }
}
