//! The one error table: each [`ErrorCode`] maps to one MLflow `error_code`, one
//! HTTP status and one gRPC code. Every service returns [`ApiError`] from its API
//! trait, so errors cross the in-process and gRPC seams without loss.

use tonic_types::{ErrorDetails, StatusExt};

/// Error domain put in `google.rpc.ErrorInfo` so clients can recover the exact code.
pub const ERROR_DOMAIN: &str = "quiver.dev";

/// The kinds of failure a Quiver API reports, named after MLflow's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A request field has an invalid value (HTTP 400).
    InvalidParameterValue,
    /// The request is malformed (HTTP 400).
    BadRequest,
    /// The resource already exists (HTTP 400, as MLflow's client expects).
    ResourceAlreadyExists,
    /// The resource does not exist (HTTP 404).
    ResourceDoesNotExist,
    /// No such endpoint (HTTP 404).
    EndpointNotFound,
    /// The caller may not do this (HTTP 403).
    PermissionDenied,
    /// The caller is not authenticated (HTTP 401).
    Unauthenticated,
    /// Too many requests or a resource limit was hit (HTTP 429).
    ResourceExhausted,
    /// The feature is not implemented (HTTP 501).
    NotImplemented,
    /// A dependency is unavailable; retrying may help (HTTP 503).
    TemporarilyUnavailable,
    /// The deadline passed (HTTP 504).
    DeadlineExceeded,
    /// An unexpected server-side failure (HTTP 500).
    InternalError,
}

impl ErrorCode {
    const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidParameterValue,
        ErrorCode::BadRequest,
        ErrorCode::ResourceAlreadyExists,
        ErrorCode::ResourceDoesNotExist,
        ErrorCode::EndpointNotFound,
        ErrorCode::PermissionDenied,
        ErrorCode::Unauthenticated,
        ErrorCode::ResourceExhausted,
        ErrorCode::NotImplemented,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::InternalError,
    ];

    /// Returns the MLflow `error_code` string.
    pub fn mlflow_name(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// Returns the HTTP status MLflow uses for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidParameterValue
            | ErrorCode::BadRequest
            | ErrorCode::ResourceAlreadyExists => 400,
            ErrorCode::ResourceDoesNotExist | ErrorCode::EndpointNotFound => 404,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::ResourceExhausted => 429,
            ErrorCode::NotImplemented => 501,
            ErrorCode::TemporarilyUnavailable => 503,
            ErrorCode::DeadlineExceeded => 504,
            ErrorCode::InternalError => 500,
        }
    }

    /// Returns the gRPC status code for this error.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::InvalidParameterValue | ErrorCode::BadRequest => {
                tonic::Code::InvalidArgument
            }
            ErrorCode::ResourceAlreadyExists => tonic::Code::AlreadyExists,
            ErrorCode::ResourceDoesNotExist => tonic::Code::NotFound,
            ErrorCode::EndpointNotFound => tonic::Code::Unimplemented,
            ErrorCode::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorCode::ResourceExhausted => tonic::Code::ResourceExhausted,
            ErrorCode::NotImplemented => tonic::Code::Unimplemented,
            ErrorCode::TemporarilyUnavailable => tonic::Code::Unavailable,
            ErrorCode::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            ErrorCode::InternalError => tonic::Code::Internal,
        }
    }

    /// Returns the MLflow `error_class` field sent by 3.x servers.
    pub fn mlflow_class(self) -> &'static str {
        match self {
            ErrorCode::ResourceDoesNotExist => "RESOURCE_NOT_FOUND",
            other => other.mlflow_name(),
        }
    }

    /// Parses an MLflow `error_code` string.
    pub fn from_mlflow_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.mlflow_name() == name)
    }

    /// Maps a bare gRPC code (no error details) to the closest error code.
    pub fn from_grpc_code(code: tonic::Code) -> ErrorCode {
        match code {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => {
                ErrorCode::InvalidParameterValue
            }
            tonic::Code::AlreadyExists => ErrorCode::ResourceAlreadyExists,
            tonic::Code::NotFound => ErrorCode::ResourceDoesNotExist,
            tonic::Code::PermissionDenied => ErrorCode::PermissionDenied,
            tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
            tonic::Code::ResourceExhausted => ErrorCode::ResourceExhausted,
            tonic::Code::Unimplemented => ErrorCode::NotImplemented,
            tonic::Code::Unavailable => ErrorCode::TemporarilyUnavailable,
            tonic::Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            _ => ErrorCode::InternalError,
        }
    }
}

/// An error returned by a Quiver API: a code from the table and a message safe
/// to show to the client (internal detail is logged, never put here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.mlflow_name())]
pub struct ApiError {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// A client-facing message.
    pub message: String,
}

impl ApiError {
    /// Creates an error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// Creates an `INVALID_PARAMETER_VALUE` error.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidParameterValue, message)
    }

    /// Creates a `RESOURCE_DOES_NOT_EXIST` error.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::ResourceDoesNotExist, message)
    }

    /// Creates a `RESOURCE_ALREADY_EXISTS` error.
    pub fn already_exists(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::ResourceAlreadyExists, message)
    }

    /// Creates an `INTERNAL_ERROR` with a generic message and logs the detail.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            ErrorCode::InternalError,
            "internal server error; see the server log for details",
        )
    }

    /// Creates a `TEMPORARILY_UNAVAILABLE` error and logs the detail.
    pub fn unavailable(detail: impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %detail, "dependency unavailable");
        ApiError::new(
            ErrorCode::TemporarilyUnavailable,
            "a backing service is temporarily unavailable",
        )
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> tonic::Status {
        let details = ErrorDetails::with_error_info(
            error.code.mlflow_name(),
            ERROR_DOMAIN,
            std::collections::HashMap::new(),
        );
        tonic::Status::with_error_details(error.code.grpc_code(), error.message, details)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> ApiError {
        let from_details = status
            .get_details_error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
            .and_then(|info| ErrorCode::from_mlflow_name(&info.reason));
        match from_details {
            Some(code) => ApiError::new(code, status.message()),
            // Without Quiver's error details the status did not come from a
            // Quiver service but from the transport (connection reset, peer
            // gone, proxy): a retryable unavailability, not a server bug.
            None => {
                let code = ErrorCode::from_grpc_code(status.code());
                match code {
                    ErrorCode::TemporarilyUnavailable
                    | ErrorCode::DeadlineExceeded
                    | ErrorCode::InternalError => ApiError::unavailable(status.message()),
                    _ => ApiError::new(code, status.message()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_grpc_status() {
        for code in ErrorCode::ALL {
            let original = ApiError::new(code, format!("message for {code:?}"));
            let status: tonic::Status = original.clone().into();
            assert_eq!(status.code(), code.grpc_code());
            let back: ApiError = status.into();
            assert_eq!(back, original);
        }
    }

    #[test]
    fn client_mistakes_are_never_5xx() {
        for code in [
            ErrorCode::InvalidParameterValue,
            ErrorCode::BadRequest,
            ErrorCode::ResourceAlreadyExists,
            ErrorCode::ResourceDoesNotExist,
            ErrorCode::EndpointNotFound,
        ] {
            assert!(code.http_status() < 500, "{code:?}");
        }
        assert_eq!(ErrorCode::ResourceAlreadyExists.http_status(), 400);
    }

    #[test]
    fn names_parse_back() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_mlflow_name(code.mlflow_name()), Some(code));
        }
        assert_eq!(ErrorCode::from_mlflow_name("NOPE"), None);
    }

    #[test]
    fn bare_grpc_status_maps_by_code() {
        let error: ApiError = tonic::Status::not_found("gone").into();
        assert_eq!(error.code, ErrorCode::ResourceDoesNotExist);
        assert_eq!(error.message, "gone");
        // Transport failures (no Quiver details) are retryable, not 500s.
        let error: ApiError = tonic::Status::internal("h2 protocol error").into();
        assert_eq!(error.code, ErrorCode::TemporarilyUnavailable);
        let error: ApiError = tonic::Status::unknown("connection reset").into();
        assert_eq!(error.code, ErrorCode::TemporarilyUnavailable);
    }
}
