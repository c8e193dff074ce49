//! The artifacts API trait.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use quiver_common::{ApiError, RequestContext};
use quiver_proto::artifacts::v1 as pb;

/// A stream of file bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes, ApiError>>;

/// A download: the whole file's size and the requested bytes.
pub struct Download {
    /// Size of the whole file.
    pub file_size: u64,
    /// The bytes (the requested range, or the whole file).
    pub stream: ByteStream,
}

/// The artifacts service's API. Paths are relative to the caller's namespace
/// root (`<experiment_id>/<run_id>/artifacts/...`) and validated by every
/// implementation.
#[async_trait]
pub trait ArtifactsApi: Send + Sync + 'static {
    /// Lists the direct children of a directory (names relative to it).
    async fn list(&self, ctx: &RequestContext, path: &str) -> Result<Vec<pb::FileInfo>, ApiError>;
    /// Writes a file from a stream, replacing any existing one; returns its size.
    async fn upload(
        &self,
        ctx: &RequestContext,
        path: &str,
        body: ByteStream,
    ) -> Result<u64, ApiError>;
    /// Reads a file, or the byte range `start..end` (`end` exclusive, `None` = to the end).
    async fn download(
        &self,
        ctx: &RequestContext,
        path: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Download, ApiError>;
    /// A time-limited URL that reads `path` straight from the store, when the
    /// store can sign one (S3, GCS, Azure); `None` otherwise. Existence is not
    /// checked here (the gateway has already stat'ed the file).
    async fn presign_download(
        &self,
        ctx: &RequestContext,
        path: &str,
        expires: std::time::Duration,
    ) -> Result<Option<String>, ApiError>;
    /// The size of a file (404 when there is none).
    async fn stat(&self, ctx: &RequestContext, path: &str) -> Result<u64, ApiError>;
    /// Deletes a file, or a directory and everything under it.
    async fn delete(&self, ctx: &RequestContext, path: &str) -> Result<(), ApiError>;
    /// Starts a multipart upload of `path` and returns its id.
    async fn create_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        num_parts: u64,
    ) -> Result<String, ApiError>;
    /// Stores one part (numbered from 1) and returns its ETag.
    async fn upload_part(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
        part_number: u64,
        body: ByteStream,
    ) -> Result<String, ApiError>;
    /// Assembles the listed parts, in part-number order, into `path`.
    async fn complete_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
        parts: Vec<pb::CompletedPart>,
    ) -> Result<u64, ApiError>;
    /// Discards a multipart upload's parts.
    async fn abort_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
    ) -> Result<(), ApiError>;
}
