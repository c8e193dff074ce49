//! Quiver's artifacts service: files under an artifact root reached through
//! `object_store` (local disk, S3 and S3-compatible, GCS, Azure), streamed in
//! chunks both ways so memory stays bounded for any file size.
//!
//! [`ArtifactsApi`] is the seam (in-process [`ArtifactsService`] or
//! [`grpc::ArtifactsGrpcClient`]); every client path goes through
//! [`path::ArtifactPath::parse`]; storage keys are prefixed by namespace.

pub mod api;
pub mod grpc;
pub mod path;
pub mod service;
pub mod storage;

pub use api::{ArtifactsApi, ByteStream, Download};
pub use path::ArtifactPath;
pub use service::ArtifactsService;
