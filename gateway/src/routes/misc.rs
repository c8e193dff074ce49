//! `/health`, `/version`, server-info and the JSON 404/405 answers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quiver_common::ErrorCode;
use serde_json::json;

use crate::error::error_response;

/// The MLflow version Quiver's API matches (the client logs it; UIs show it).
pub const MLFLOW_COMPAT_VERSION: &str = "3.18.0";

/// `GET /health`.
pub async fn health() -> &'static str {
    "OK"
}

/// `GET /version`.
pub async fn version() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        MLFLOW_COMPAT_VERSION,
    )
        .into_response()
}

/// `GET /api/3.0/mlflow/server-info`.
pub async fn server_info() -> Json<serde_json::Value> {
    Json(json!({
        "store_type": "SqlStore",
        "server": "quiver",
        "quiver_version": env!("CARGO_PKG_VERSION"),
        "workspaces_enabled": true,
        "multipart_uploads_enabled": true,
        "multipart_downloads_enabled": true,
        "artifact_serving_enabled": true,
        "artifacts_presigned_only": false,
    }))
}

/// Unknown route: 404 `ENDPOINT_NOT_FOUND` as JSON.
pub async fn not_found() -> Response {
    error_response(
        ErrorCode::EndpointNotFound,
        "The requested endpoint was not found on this server.",
        None,
    )
}

/// Known route, wrong method: 405 as JSON.
pub async fn method_not_allowed() -> Response {
    error_response(
        ErrorCode::EndpointNotFound,
        "The method is not allowed for the requested URL.",
        Some(StatusCode::METHOD_NOT_ALLOWED),
    )
}
