//! Multipart uploads through the proxy (`…/mlflow-artifacts/mpu/…`).
//!
//! `POST mpu/create/<dir>` `{path, num_parts}` answers an upload id and one
//! URL per part, pointing back at this server (`PUT mpu/part/<id>/<n>`,
//! answered with the part's `ETag`); `POST mpu/complete/<dir>` `{path,
//! upload_id, parts: [{part_number, etag, url}]}` assembles the parts into
//! `<dir>/<basename of path>`; `POST mpu/abort/<dir>` `{path, upload_id}`
//! drops them. The store keeps the staged parts (see
//! `sextant_artifacts::ArtifactStore::create_multipart`), so any backend works.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use sextant_artifacts::{CompletedPart, MAX_PARTS, STALE_UPLOAD_AGE, SafePath, UploadId};

use super::{artifact_error, invalid_path};
use crate::error::{ApiError, ErrorCode};
use crate::mlflow::wire::Fields;
use crate::state::AppState;

/// What follows this in a request path names the operation.
const MPU_MARKER: &str = "/mpu/";

/// `POST …/mpu/{create,complete,abort}/<artifact dir>`.
pub(super) async fn command(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    fields: Fields,
) -> Result<Json<Value>, ApiError> {
    super::proxy_served(&state, &uri)?;
    let (base, rest) = split_mpu_path(&uri)?;
    let (action, dir) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(action, "create" | "complete" | "abort") {
        return Err(ApiError::new(
            ErrorCode::EndpointNotFound,
            format!("no endpoint at {}", uri.path()),
        ));
    }
    let dir = SafePath::from_encoded(dir).map_err(invalid_path)?;
    super::not_reserved(&dir)?;
    let target = dir
        .child(file_name(&fields.req_str("path")?)?)
        .map_err(invalid_path)?;
    match action {
        "create" => {
            let num_parts = fields.req_i64("num_parts")?;
            let num_parts = u32::try_from(num_parts)
                .ok()
                .filter(|n| (1..=MAX_PARTS).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "num_parts must be between 1 and {MAX_PARTS}, not {num_parts}"
                    ))
                })?;
            let origin = origin(&headers)?;
            if state.artifacts.purge_due() {
                let artifacts = state.artifacts.clone();
                tokio::spawn(async move {
                    if let Err(e) = artifacts.purge_stale_uploads(STALE_UPLOAD_AGE).await {
                        tracing::warn!(error = %e, "purging abandoned multipart uploads");
                    }
                });
            }
            let id = state
                .artifacts
                .create_multipart(&target, num_parts)
                .await
                .map_err(artifact_error)?;
            let credentials: Vec<Value> = (1..=num_parts)
                .map(|n| {
                    json!({
                        "url": format!("{origin}{base}/mpu/part/{id}/{n}"),
                        "part_number": n,
                        "headers": {},
                    })
                })
                .collect();
            Ok(Json(
                json!({"upload_id": id.as_str(), "credentials": credentials}),
            ))
        }
        "complete" => {
            let id = upload_id(&fields.req_str("upload_id")?)?;
            let mut parts = Vec::new();
            for part in fields.messages("parts")? {
                let n = part.req_i64("part_number")?;
                let part_number = u32::try_from(n)
                    .map_err(|_| ApiError::invalid(format!("Invalid part number {n}")))?;
                parts.push(CompletedPart {
                    part_number,
                    etag: part.req_str("etag")?,
                });
            }
            if parts.is_empty() {
                return Err(ApiError::missing("parts"));
            }
            state
                .artifacts
                .complete_multipart(&id, &target, &parts)
                .await
                .map_err(artifact_error)?;
            Ok(Json(json!({})))
        }
        "abort" => {
            let id = upload_id(&fields.req_str("upload_id")?)?;
            state
                .artifacts
                .abort_multipart(&id, &target)
                .await
                .map_err(artifact_error)?;
            Ok(Json(json!({})))
        }
        _ => unreachable!("actions are checked above"),
    }
}

/// `PUT …/mpu/part/<upload id>/<part number>`: one part, streamed to the
/// store; the answer's `ETag` is what completing the upload needs.
pub(super) async fn put_part(
    State(state): State<AppState>,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    super::proxy_served(&state, &uri)?;
    let (_, rest) = split_mpu_path(&uri)?;
    let segments: Vec<&str> = rest.split('/').collect();
    let ["part", id, n] = segments.as_slice() else {
        return Err(ApiError::new(
            ErrorCode::EndpointNotFound,
            format!("no endpoint at {}", uri.path()),
        ));
    };
    let id = upload_id(id)?;
    let part_number = part_number(n)?;
    let etag = state
        .artifacts
        .put_part(&id, part_number, body.into_data_stream())
        .await
        .map_err(artifact_error)?;
    let etag = HeaderValue::from_str(&etag)
        .map_err(|_| ApiError::internal("the store issued an ETag that is no header value"))?;
    Ok((StatusCode::OK, [(header::ETAG, etag)]).into_response())
}

/// The service's base path (`/api/2.0/mlflow-artifacts` or its `/ajax-api`
/// twin) and what follows `…/mpu/`, still percent-encoded.
fn split_mpu_path(uri: &Uri) -> Result<(&str, &str), ApiError> {
    uri.path()
        .split_once(MPU_MARKER)
        .ok_or_else(|| ApiError::invalid("Invalid path"))
}

/// The file name of the client's local path (MLflow stores the upload under
/// its basename); Windows separators count too.
fn file_name(local_path: &str) -> Result<&str, ApiError> {
    let name = local_path.rsplit(['/', '\\']).next().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid(format!(
            "Invalid value '{local_path}' for parameter 'path': it names no file"
        )));
    }
    Ok(name)
}

fn upload_id(raw: &str) -> Result<UploadId, ApiError> {
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    UploadId::parse(&decoded)
        .ok_or_else(|| ApiError::invalid(format!("Invalid upload id '{}'", decoded.escape_debug())))
}

/// A part number as it appears in a part URL: plain decimal digits.
fn part_number(raw: &str) -> Result<u32, ApiError> {
    raw.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| raw.parse::<u32>().ok())
        .flatten()
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| ApiError::invalid(format!("Invalid part number '{}'", raw.escape_debug())))
}

/// `http://<host>` (or `https://` behind a proxy that says so) from the
/// request, for URLs the client will call back. The Host header has passed
/// the DNS-rebinding guard; it must also be a bare authority.
fn origin(headers: &HeaderMap) -> Result<String, ApiError> {
    let bad_host = || ApiError::new(ErrorCode::BadRequest, "missing or invalid Host header");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(bad_host)?;
    let authority: Authority = host.parse().map_err(|_| bad_host())?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad_host());
    }
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.trim().eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(file_name("/tmp/x/big.bin").unwrap(), "big.bin");
        assert_eq!(file_name("C:\\Users\\me\\big.bin").unwrap(), "big.bin");
        assert_eq!(file_name("big.bin").unwrap(), "big.bin");
        assert!(file_name("/tmp/x/").is_err());
    }

    #[test]
    fn part_numbers() {
        assert_eq!(part_number("1").unwrap(), 1);
        assert_eq!(part_number("10000").unwrap(), 10_000);
        for bad in ["0", "10001", "+1", "-1", "1.0", "", "99999999999"] {
            assert!(part_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let with = |host: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            origin(&h)
        };
        assert_eq!(with("127.0.0.1:5000").unwrap(), "http://127.0.0.1:5000");
        assert_eq!(with("[::1]:5000").unwrap(), "http://[::1]:5000");
        assert!(with("user@evil:80").is_err());
        assert!(with("a/b").is_err());
        assert!(origin(&HeaderMap::new()).is_err());
    }
}
