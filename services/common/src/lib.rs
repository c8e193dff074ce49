//! Pieces every Quiver service shares: the one error-code table, the request
//! context (namespace), layered configuration, telemetry and gRPC server helpers.

pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod grpc;
pub mod sql;
pub mod telemetry;
pub mod time;

pub use context::{KnownNamespaces, NAMESPACE_METADATA_KEY, Namespace, RequestContext};
pub use error::{ApiError, ErrorCode};
