//! MLflow's error JSON: `{"error_code": ..., "message": ...}` with the HTTP
//! status from the one error table.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quiver_common::{ApiError, ErrorCode};

/// An error as the gateway answers it.
#[derive(Debug)]
pub struct GatewayError(pub ApiError);

impl From<ApiError> for GatewayError {
    fn from(error: ApiError) -> GatewayError {
        GatewayError(error)
    }
}

impl GatewayError {
    /// A 400 INVALID_PARAMETER_VALUE.
    pub fn invalid(message: impl Into<String>) -> GatewayError {
        GatewayError(ApiError::invalid(message))
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        error_response(self.0.code, &self.0.message, None)
    }
}

/// Builds an error response, optionally overriding the status.
pub fn error_response(code: ErrorCode, message: &str, status: Option<StatusCode>) -> Response {
    let status = status.unwrap_or_else(|| {
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    });
    let body = serde_json::json!({
        "error_code": code.mlflow_name(),
        "message": message,
        "error_class": code.mlflow_class(),
    });
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
