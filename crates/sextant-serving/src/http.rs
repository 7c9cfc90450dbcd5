//! The HTTP routes of one endpoint, relative to where they are mounted (`/endpoints/{name}`
//! on the server, `/` on a gateway process): MLflow/SageMaker `/invocations`, `/ping` and
//! `/version`, OIP v2 under `/v2`, and `/metrics`. Handlers only translate HTTP to a gateway
//! call and back; the status of every failure is decided by one exhaustive match here.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::Method;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use bytes::Bytes;
use serde_json::json;

use super::error::{InputError, PredictError};
use super::gateway::{Answer, Call, Failure, Gateway, Wire};
use super::metrics;
use super::protocol::oip;
use crate::origin;
use crate::routes::{self, Api, Body, Capability as C, Group, Resource as R, Route};

/// Headers a caller names its request with (SageMaker's, and a vendor-neutral alias).
const INFERENCE_ID_HEADERS: [&str; 2] = ["x-amzn-sagemaker-inference-id", "x-inference-id"];
/// Response header carrying the request's inference id: the caller's, or one generated
/// (a UUID), the same that capture records carry, so ground truth can always be joined.
const INFERENCE_ID: &str = "x-inference-id";
/// Longest inference id accepted (ground-truth uploads take the same).
const MAX_INFERENCE_ID: usize = 256;
/// Header pinning a request to a variant (SageMaker's `TargetVariant`).
const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
/// Header naming the variant that answered.
const INVOKED_VARIANT: &str = "x-amzn-invoked-production-variant";

/// Every route of one endpoint, relative to where it is mounted. The data
/// plane: inference and health are for applications, so no request guard.
pub(crate) const ROUTES: &[Route<Arc<Gateway>>] = &[
    Route::json(Method::POST, "/invocations", R::Inference, C::Invoke, |m| {
        on(m, invocations)
    })
    .with_body(Body::Any),
    Route::get("/ping", R::Inference, |m| on(m, ping)),
    Route::get("/health", R::Inference, |m| on(m, ping)),
    Route::get("/version", R::Inference, |m| on(m, version)),
    Route::get("/v2", R::Inference, |m| on(m, server_metadata)),
    Route::get("/v2/health/live", R::Inference, |m| on(m, live)),
    Route::get("/v2/health/ready", R::Inference, |m| on(m, server_ready)),
    Route::get("/v2/models/{model}", R::Inference, |m| {
        on(m, model_metadata)
    }),
    Route::get("/v2/models/{model}/ready", R::Inference, |m| {
        on(m, model_ready)
    }),
    Route::json(
        Method::POST,
        "/v2/models/{model}/infer",
        R::Inference,
        C::Invoke,
        |m| on(m, infer),
    ),
    Route::get("/v2/models/{model}/versions/{version}", R::Inference, |m| {
        on(m, model_metadata)
    }),
    Route::get(
        "/v2/models/{model}/versions/{version}/ready",
        R::Inference,
        |m| on(m, model_ready),
    ),
    Route::json(
        Method::POST,
        "/v2/models/{model}/versions/{version}/infer",
        R::Inference,
        C::Invoke,
        |m| on(m, infer),
    ),
    Route::get("/metrics", R::Inference, |m| on(m, prometheus)),
];

/// The routes of `gateway`'s endpoint.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let limit = gateway.settings().max_body_bytes;
    let group = Group {
        api: Api::Serving,
        mounts: &[""],
        routes: ROUTES,
    };
    routes::mount_data_plane(Router::new(), &group)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(gateway.clone(), cors))
        .with_state(gateway)
}

/// Methods the inference routes answer a browser's preflight with.
const CORS_METHODS: &str = "GET, POST, OPTIONS";
/// Request headers a page may send: the body's type and the serving headers.
const CORS_REQUEST_HEADERS: &str = "content-type, x-inference-id, \
    x-amzn-sagemaker-inference-id, x-amzn-sagemaker-target-variant";
/// Response headers a page may read besides the safelisted ones.
const CORS_EXPOSED_HEADERS: &str = "x-inference-id, x-amzn-invoked-production-variant";

/// CORS for the endpoint's `allowed_origins`: their preflights are answered
/// and their answers readable. Every request is still served whatever its
/// `Origin` (applications send none, or any): only a browser heeds CORS.
async fn cors(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let origins = gw.allowed_origins();
    if origins.is_empty() {
        return next.run(req).await;
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| origin::origin_of_header(o).is_some_and(|o| origins.contains(&o)))
        .cloned();
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = match &origin {
        Some(_) if preflight => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(CORS_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(CORS_REQUEST_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            r
        }
        _ => next.run(req).await,
    };
    let h = response.headers_mut();
    // Answers differ by Origin here, so a cache must keep them apart.
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if !preflight {
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(CORS_EXPOSED_HEADERS),
            );
        }
    }
    response
}

/// The gateway's view of a request; a 400 when its inference id header is unusable.
fn call(wire: Wire, headers: &HeaderMap, body: Bytes) -> Result<Call, Box<Response>> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let given = INFERENCE_ID_HEADERS
        .iter()
        .find_map(|&h| headers.get(h).map(|v| (h, v)));
    let inference_id = match given {
        None => uuid::Uuid::new_v4().to_string(),
        Some((name, value)) => match value.to_str() {
            Ok(id) if !id.trim().is_empty() && id.len() <= MAX_INFERENCE_ID => id.to_owned(),
            _ => {
                let message = format!(
                    "header {name} must be 1 to {MAX_INFERENCE_ID} visible ASCII characters"
                );
                let failure = Failure::Predict(PredictError::Input(InputError::Invalid(message)));
                return Err(Box::new(failure_response(&wire, &failure, 0)));
            }
        },
    };
    Ok(Call {
        wire,
        content_type: text(header::CONTENT_TYPE.as_str()),
        body,
        inference_id,
        target_variant: text(TARGET_VARIANT),
    })
}

async fn invocations(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let call = match call(Wire::Mlflow, &headers, body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let id = call.inference_id.clone();
    let answer = gw.call(call).await;
    with_inference_id(respond(&Wire::Mlflow, answer), &id)
}

/// `response` with the request's inference id header.
fn with_inference_id(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(INFERENCE_ID, value);
    }
    response
}

/// MLflow's `/ping`: 200 with `"\n"` once the model is loaded.
async fn ping(State(gw): State<Arc<Gateway>>) -> Response {
    let status = if gw.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CONTENT_TYPE, "application/json")], "\n").into_response()
}

/// MLflow's `/version`: the MLflow version, bare (not a JSON string) under an
/// `application/json` content type, exactly as the scoring server answers it. Sextant
/// answers the MLflow version whose scoring protocol it speaks.
async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::MLFLOW_COMPAT_VERSION,
    )
        .into_response()
}

async fn server_metadata() -> Response {
    axum::Json(json!({"name": "sextant", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
        .into_response()
}

async fn live() -> Response {
    axum::Json(json!({"live": true})).into_response()
}

async fn server_ready(State(gw): State<Arc<Gateway>>) -> Response {
    let ready = gw.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({"ready": ready}))).into_response()
}

/// 404 unless `model` is the endpoint (the OIP model name is the endpoint name).
fn check_model(gw: &Gateway, model: &str) -> Result<(), Box<Response>> {
    if model == gw.name() {
        return Ok(());
    }
    Err(Box::new(oip_error(
        StatusCode::NOT_FOUND,
        &format!(
            "model {model:?} is not served here; this endpoint serves {:?}",
            gw.name()
        ),
    )))
}

fn metadata(gw: &Gateway, model: &str, version: Option<&str>) -> Response {
    if let Err(r) = check_model(gw, model) {
        return *r;
    }
    match gw.describe(version) {
        Some((predictor, versions)) => {
            axum::Json(oip::metadata(gw.name(), &versions, predictor.info())).into_response()
        }
        None => not_served(gw, version),
    }
}

fn not_served(gw: &Gateway, version: Option<&str>) -> Response {
    match version {
        Some(v) => oip_error(
            StatusCode::NOT_FOUND,
            &format!("version {v:?} of {:?} is not served here", gw.name()),
        ),
        None => oip_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the endpoint has no variants yet",
        ),
    }
}

fn readiness(gw: &Gateway, model: &str, version: Option<&str>) -> Response {
    if let Err(r) = check_model(gw, model) {
        return *r;
    }
    match gw.describe(version) {
        Some((predictor, _)) => {
            let ready = predictor.ready();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, axum::Json(json!({"name": model, "ready": ready}))).into_response()
        }
        None => not_served(gw, version),
    }
}

/// The OIP path parameters, read by name: when this router is nested under a route with
/// parameters of its own (`/endpoints/{name}`), axum passes those along too.
#[derive(Debug, serde::Deserialize)]
struct ModelPath {
    model: String,
    version: Option<String>,
}

async fn model_metadata(State(gw): State<Arc<Gateway>>, Path(p): Path<ModelPath>) -> Response {
    metadata(&gw, &p.model, p.version.as_deref())
}

async fn model_ready(State(gw): State<Arc<Gateway>>, Path(p): Path<ModelPath>) -> Response {
    readiness(&gw, &p.model, p.version.as_deref())
}

async fn infer(
    State(gw): State<Arc<Gateway>>,
    Path(p): Path<ModelPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let wire = Wire::Oip { version: p.version };
    let call = match call(wire.clone(), &headers, body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let id = call.inference_id.clone();
    if let Err(r) = check_model(&gw, &p.model) {
        return with_inference_id(*r, &id);
    }
    let answer = gw.call(call).await;
    with_inference_id(respond(&wire, answer), &id)
}

async fn prometheus(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(&[gw.as_ref()]),
    )
        .into_response()
}

/// The HTTP form of a gateway answer.
fn respond(wire: &Wire, answer: Answer) -> Response {
    let mut response = match answer.result {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(failure) => failure_response(wire, &failure, answer.retry_after_secs),
    };
    if let Some(v) = answer.variant
        && let Ok(value) = HeaderValue::from_str(&v)
    {
        response.headers_mut().insert(INVOKED_VARIANT, value);
    }
    response
}

/// Status, MLflow error code and message of each failure.
fn classify(failure: &Failure) -> (StatusCode, &'static str, String) {
    match failure {
        Failure::Predict(PredictError::Input(e)) => match e {
            InputError::Invalid(m) => (StatusCode::BAD_REQUEST, "BAD_REQUEST", m.clone()),
            InputError::Schema(m) => (
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                m.clone(),
            ),
            InputError::UnsupportedMediaType(m) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "BAD_REQUEST", m.clone())
            }
            InputError::NotFound(m) => {
                (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST", m.clone())
            }
        },
        // MLflow answers a failed predict 400; it still counts as the variant's error.
        Failure::Predict(e @ PredictError::Model(_)) => {
            (StatusCode::BAD_REQUEST, "BAD_REQUEST", e.to_string())
        }
        Failure::Predict(PredictError::Unavailable(m)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARILY_UNAVAILABLE",
            m.clone(),
        ),
        Failure::Predict(PredictError::Internal(m)) => {
            tracing::error!(error = %m, "serving runtime failure");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "the serving runtime failed; see the server log".into(),
            )
        }
        Failure::Saturated => (
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARILY_UNAVAILABLE",
            "the variant is at its concurrency limit; retry later".into(),
        ),
        Failure::NoVariants => (
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARILY_UNAVAILABLE",
            "the endpoint has no variants yet".into(),
        ),
        Failure::UnknownVariant(name) => (
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            format!("the endpoint has no variant {name:?}"),
        ),
        Failure::Timeout(limit) => (
            StatusCode::GATEWAY_TIMEOUT,
            "DEADLINE_EXCEEDED",
            format!(
                "Request processing time exceeded limit ({} s)",
                limit.as_secs_f64()
            ),
        ),
    }
}

fn failure_response(wire: &Wire, failure: &Failure, retry_after_secs: u64) -> Response {
    let (status, code, message) = classify(failure);
    let mut response = match wire {
        // MLflow answers 415 in plain text.
        Wire::Mlflow if status == StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (status, [(header::CONTENT_TYPE, "text/plain")], message).into_response()
        }
        Wire::Mlflow => (
            status,
            axum::Json(json!({"error_code": code, "message": message})),
        )
            .into_response(),
        Wire::Oip { .. } => oip_error(status, &message),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}

fn oip_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}
