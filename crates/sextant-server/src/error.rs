//! The one table of error codes and their HTTP statuses, and the mapping of
//! every lower-layer error to it (exhaustive matches, no catch-all arm).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sextant_store::{CallError, StoreError};

use sextant_control::webhooks::WebhookError;

use sextant_control::monitors::MonitorError;

/// MLflow's error codes that Sextant emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    BadRequest,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    EndpointNotFound,
    PermissionDenied,
    /// No or wrong credentials (native API; MLflow's routes answer its plain-text 401).
    Unauthenticated,
    /// Too many failed logins from one user or address; retry later.
    TooManyRequests,
    InvalidState,
    /// The request conflicts with the resource's current state in a way the
    /// client cannot fix by changing the request (MLflow maps it to 409).
    ResourceConflict,
    RequestLimitExceeded,
    /// A body of a type the route does not take (native API only; MLflow's
    /// routes answer `INVALID_PARAMETER_VALUE` as MLflow does).
    UnsupportedMediaType,
    InternalError,
    NotImplemented,
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::TooManyRequests => "RESOURCE_EXHAUSTED",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::ResourceConflict => "RESOURCE_CONFLICT",
            ErrorCode::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
        }
    }

    /// The HTTP status. Unlike MLflow, `INVALID_STATE` is a 400: it is a
    /// client mistake, and the client retries a 5xx for minutes.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidParameterValue
            | ErrorCode::BadRequest
            | ErrorCode::ResourceAlreadyExists
            | ErrorCode::InvalidState => StatusCode::BAD_REQUEST,
            ErrorCode::ResourceDoesNotExist | ErrorCode::EndpointNotFound => StatusCode::NOT_FOUND,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ResourceConflict => StatusCode::CONFLICT,
            ErrorCode::RequestLimitExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error answered to a client as `{"error_code": …, "message": …}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
    /// `INVALID_PARAMETER_VALUE`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
    /// `RESOURCE_DOES_NOT_EXIST`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }
    /// `INTERNAL_ERROR`: the cause is logged, clients see a generic message.
    pub fn internal(cause: impl Into<String>) -> Self {
        let cause = cause.into();
        tracing::error!(%cause, "internal error");
        Self::new(
            ErrorCode::InternalError,
            "internal error; see the server log",
        )
    }
    /// `NOT_IMPLEMENTED` for an MLflow feature Sextant does not serve.
    pub fn not_implemented(feature: &str) -> Self {
        Self::new(
            ErrorCode::NotImplemented,
            format!("{feature} is not implemented by this Sextant server"),
        )
    }
    /// A missing required field, with MLflow's message.
    pub fn missing(field: &str) -> Self {
        Self::invalid(format!(
            "Missing value for required parameter '{field}'. See the API docs for more \
             information about request parameters."
        ))
    }
}

impl From<sextant_core::Error> for ApiError {
    fn from(e: sextant_core::Error) -> Self {
        use sextant_core::Error as E;
        match e {
            E::InvalidParameter(m) => ApiError::new(ErrorCode::InvalidParameterValue, m),
            E::NotFound(m) => ApiError::new(ErrorCode::ResourceDoesNotExist, m),
            E::AlreadyExists(m) => ApiError::new(ErrorCode::ResourceAlreadyExists, m),
            E::InvalidState(m) => ApiError::new(ErrorCode::InvalidState, m),
            E::PermissionDenied(m) => ApiError::new(ErrorCode::PermissionDenied, m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::Busy(m) => ApiError::new(ErrorCode::TemporarilyUnavailable, m),
            // A 400, not a 5xx: MLflow's client retries a 5xx for minutes,
            // and the same query would only time out again. What the client
            // can change is the request.
            StoreError::Timeout { limit_ms } => ApiError::invalid(format!(
                "the query exceeded the store's time limit of {limit_ms} ms; narrow the \
                 filter or ask for fewer results"
            )),
            // Only a request whose client went away is cancelled: nobody
            // reads this answer.
            StoreError::Cancelled => ApiError::new(
                ErrorCode::TemporarilyUnavailable,
                "the request was cancelled",
            ),
            e @ (StoreError::Sqlite(_)
            | StoreError::Postgres(_)
            | StoreError::Config(_)
            | StoreError::Migration(_)
            | StoreError::Corrupt(_)) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<sextant_control::pipelines::PipelineError> for ApiError {
    fn from(e: sextant_control::pipelines::PipelineError) -> Self {
        use sextant_control::pipelines::PipelineError as E;
        match e {
            E::Invalid(m) => ApiError::invalid(m),
            E::NotFound(m) => ApiError::not_found(m),
            E::Conflict(m) => ApiError::new(ErrorCode::ResourceConflict, m),
            E::InvalidState(m) => ApiError::new(ErrorCode::InvalidState, m),
            e @ E::NotRunning => ApiError::new(ErrorCode::TemporarilyUnavailable, e.to_string()),
            E::Domain(e) => e.into(),
            E::Store(e) => e.into(),
            E::NotProxied(sextant_artifacts::NotProxied::InvalidPath(e)) => {
                tracing::debug!(error = %e, "refused artifact path");
                ApiError::invalid("Invalid path")
            }
            E::NotProxied(e @ sextant_artifacts::NotProxied::Elsewhere(_)) => {
                ApiError::invalid(e.to_string())
            }
            e @ (E::Task(_) | E::Spec { .. } | E::Internal(_)) => ApiError::internal(e.to_string()),
        }
    }
}

/// A store call's error as [`AppState::db`](crate::AppState::db) answers it.
fn store_call(e: CallError) -> ApiError {
    match e {
        CallError::Store(e) => ApiError::from(e),
        e @ CallError::Task(_) => ApiError::internal(e.to_string()),
    }
}

impl From<MonitorError> for ApiError {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::Invalid(m) => ApiError::invalid(m),
            e @ MonitorError::Busy(_) => ApiError::new(ErrorCode::ResourceConflict, e.to_string()),
            MonitorError::Store(e) => store_call(e),
            e @ (MonitorError::Corrupt(_)
            | MonitorError::Baseline(_)
            | MonitorError::Outside(_)
            | MonitorError::Artifacts(_)
            | MonitorError::Engine(_)
            | MonitorError::TooFewRows { .. }
            | MonitorError::WatchesNothing
            | MonitorError::Panicked(_)) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<sextant_store::CallError> for ApiError {
    fn from(e: sextant_store::CallError) -> Self {
        match e {
            sextant_store::CallError::Store(e) => e.into(),
            e @ sextant_store::CallError::Task(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Refused(m) => ApiError::invalid(m),
            e @ WebhookError::NoSecretKey => ApiError::invalid(e.to_string()),
            WebhookError::Secret(e) => ApiError::internal(e.to_string()),
            WebhookError::Store(e) => store_call(e),
        }
    }
}

impl From<sextant_serving::endpoints::apply::ApplyError> for ApiError {
    fn from(e: sextant_serving::endpoints::apply::ApplyError) -> Self {
        use sextant_serving::endpoints::apply::ApplyError as E;
        let code = match e {
            E::RolloutInProgress(_) => ErrorCode::ResourceConflict,
            E::SeveralChanged { .. } => ErrorCode::InvalidParameterValue,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<sextant_serving::controller::EndpointError> for ApiError {
    fn from(e: sextant_serving::controller::EndpointError) -> Self {
        use sextant_serving::controller::EndpointError as E;
        match e {
            E::Invalid(m) => ApiError::invalid(m),
            e @ E::Spec(_) => ApiError::invalid(e.to_string()),
            E::Conflict(m) => ApiError::new(ErrorCode::ResourceConflict, m),
            E::Apply(e) => e.into(),
            E::Domain(e) => e.into(),
            E::Store(e) => e.into(),
            E::Internal(m) => ApiError::internal(m),
        }
    }
}

/// A `deploy:` step refused by the endpoint controller: what the endpoint API
/// would answer for the same change, and whether that is the pipeline's
/// mistake (a 4xx) rather than the server's.
pub(crate) fn deploy_refusal(
    e: sextant_serving::controller::EndpointError,
) -> sextant_control::pipelines::DeployError {
    let e = ApiError::from(e);
    sextant_control::pipelines::DeployError {
        client_error: e.code.status().is_client_error(),
        message: e.message,
    }
}

/// A definition refused, every problem at its `file:line:col`.
impl From<sextant_pipelines::yaml::DefinitionError> for ApiError {
    fn from(e: sextant_pipelines::yaml::DefinitionError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error_code": self.code.as_str(), "message": self.message});
        (self.code.status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod pipeline_error_tests {
    use sextant_control::pipelines::PipelineError;

    use super::*;

    #[test]
    fn every_pipeline_error_is_answered_with_its_own_code() {
        let all = [
            PipelineError::Invalid("bad".into()),
            PipelineError::NotFound("gone".into()),
            PipelineError::Conflict("live".into()),
            PipelineError::InvalidState("no run".into()),
            PipelineError::NotRunning,
            PipelineError::Domain(sextant_core::Error::AlreadyExists("x".into())),
            PipelineError::Store(StoreError::Busy("locked".into())),
            PipelineError::Store(StoreError::Timeout { limit_ms: 5 }),
            PipelineError::NotProxied(sextant_artifacts::NotProxied::Elsewhere("/tmp".into())),
            PipelineError::Task("panicked".into()),
            PipelineError::Spec {
                pipeline: "p".into(),
                message: "bad".into(),
            },
            PipelineError::Internal("bug".into()),
        ];
        for e in all {
            let code = e.error_code();
            let message = e.to_string();
            // The store's own refusals are worded by the store's mapping.
            let own_words = !matches!(e, PipelineError::Store(_) | PipelineError::NotProxied(_));
            let api = ApiError::from(e);
            assert_eq!(api.code.as_str(), code, "{message}");
            if own_words && api.code != ErrorCode::InternalError {
                assert_eq!(api.message, message);
            }
        }
    }
}
