//! Routes outside the MLflow services: health, version, the capability
//! probe, and the answer for unknown routes.

use axum::Json;
use axum::http::Uri;
use axum::routing::on;

use crate::error::{ApiError, ErrorCode};
use crate::routes::{Api, Group, Resource, Route};

pub use sextant_serving::MLFLOW_COMPAT_VERSION;

pub const ROUTES: Group = Group {
    api: Api::Mlflow,
    mounts: &[""],
    routes: &[
        Route::get("/health", Resource::Server, |m| on(m, || async { "OK" })),
        Route::get("/version", Resource::Server, |m| {
            on(m, || async { MLFLOW_COMPAT_VERSION })
        }),
        Route::get("/api/3.0/mlflow/server-info", Resource::Server, |m| {
            on(m, server_info)
        }),
        Route::get("/ajax-api/3.0/mlflow/server-info", Resource::Server, |m| {
            on(m, server_info)
        }),
    ],
};

/// The capability probe the client makes before large artifact transfers.
async fn server_info() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        // Parts go through this server (`…/mlflow-artifacts/mpu/…`) to any backend.
        "multipart_uploads_enabled": true,
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": {"gateway": false},
    }))
}

/// Unknown routes: MLflow features outside Sextant's scope answer a fast 501
/// (the client would otherwise retry); anything else is `ENDPOINT_NOT_FOUND`.
pub async fn not_found(uri: Uri) -> ApiError {
    let path = uri.path();
    const UNIMPLEMENTED: [(&str, &str); 11] = [
        ("/v1/traces", "trace ingestion (OTLP)"),
        ("/traces", "tracing"),
        ("/get-trace-artifact", "tracing"),
        ("/runs/create-promptlab-run", "prompt lab runs"),
        ("/mlflow/issues", "issues"),
        ("/prompts", "prompts"),
        ("/scorers", "scorers"),
        ("/gateway", "the AI gateway"),
        ("/secrets", "gateway secrets"),
        ("/datasets", "evaluation datasets"),
        ("/graphql", "GraphQL"),
    ];
    for (needle, feature) in UNIMPLEMENTED {
        if path.contains(needle) {
            return ApiError::not_implemented(feature);
        }
    }
    ApiError::new(
        ErrorCode::EndpointNotFound,
        format!("no endpoint at {path}"),
    )
}
