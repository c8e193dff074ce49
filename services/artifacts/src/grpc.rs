//! gRPC side of the artifacts seam: [`ArtifactsGrpcServer`] serves any
//! [`ArtifactsApi`]; [`ArtifactsGrpcClient`] is an [`ArtifactsApi`] over a
//! channel. Bytes travel in messages of at most [`MESSAGE_CHUNK_BYTES`]; an
//! upload stream must end with `last = true`, or nothing is written.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use quiver_common::{ApiError, RequestContext};
use quiver_proto::artifacts::v1 as pb;
use quiver_proto::artifacts::v1::artifacts_service_client::ArtifactsServiceClient;
use quiver_proto::artifacts::v1::artifacts_service_server::{
    ArtifactsService, ArtifactsServiceServer,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

use crate::api::{ArtifactsApi, ByteStream, Download};

/// Largest chunk of bytes in one gRPC message.
pub const MESSAGE_CHUNK_BYTES: usize = 1024 * 1024;
const MAX_MESSAGE_BYTES: usize = 4 * MESSAGE_CHUNK_BYTES;

/// Splits a byte stream into chunks of at most [`MESSAGE_CHUNK_BYTES`].
fn rechunk(stream: ByteStream) -> ByteStream {
    stream
        .map_ok(|bytes| {
            let pieces: Vec<Result<Bytes, ApiError>> =
                (0..bytes.len().div_ceil(MESSAGE_CHUNK_BYTES).max(1))
                    .map(|i| {
                        let start = i * MESSAGE_CHUNK_BYTES;
                        Ok(bytes.slice(start..(start + MESSAGE_CHUNK_BYTES).min(bytes.len())))
                    })
                    .collect();
            futures::stream::iter(pieces)
        })
        .try_flatten()
        .boxed()
}

/// Turns an upload's message stream into bytes; the stream must end with
/// `last`, else the body errors and the write is aborted.
fn inbound<M: Send + 'static>(
    first_chunk: Bytes,
    first_last: bool,
    rest: Streaming<M>,
    split: fn(M) -> (Bytes, bool),
) -> ByteStream {
    let state = (Some(first_chunk), first_last, rest, false);
    futures::stream::unfold(
        state,
        move |(pending, mut seen_last, mut rest, done)| async move {
            if done {
                return None;
            }
            if let Some(chunk) = pending {
                return Some((Ok(chunk), (None, seen_last, rest, false)));
            }
            if seen_last {
                return None;
            }
            match rest.message().await {
                Ok(Some(message)) => {
                    let (chunk, last) = split(message);
                    seen_last = last;
                    Some((Ok(chunk), (None, seen_last, rest, false)))
                }
                Ok(None) => Some((
                    Err(ApiError::invalid(
                        "the upload ended before its last message",
                    )),
                    (None, seen_last, rest, true),
                )),
                Err(status) => Some((Err(ApiError::from(status)), (None, seen_last, rest, true))),
            }
        },
    )
    .boxed()
}

/// Serves an `Arc<dyn ArtifactsApi>` as `quiver.artifacts.v1.ArtifactsService`.
#[derive(Clone)]
pub struct ArtifactsGrpcServer {
    api: Arc<dyn ArtifactsApi>,
}

impl ArtifactsGrpcServer {
    /// Wraps an API implementation.
    pub fn new(api: Arc<dyn ArtifactsApi>) -> ArtifactsGrpcServer {
        ArtifactsGrpcServer { api }
    }

    /// Returns the tonic service.
    pub fn into_service(self) -> ArtifactsServiceServer<ArtifactsGrpcServer> {
        ArtifactsServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

type DownloadStream =
    futures::stream::BoxStream<'static, Result<pb::DownloadArtifactResponse, Status>>;

#[tonic::async_trait]
impl ArtifactsService for ArtifactsGrpcServer {
    async fn list_artifacts(
        &self,
        request: Request<pb::ListArtifactsRequest>,
    ) -> Result<Response<pb::ListArtifactsResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let files = self.api.list(&ctx, &request.get_ref().path).await?;
        Ok(Response::new(pb::ListArtifactsResponse { files }))
    }

    async fn upload_artifact(
        &self,
        request: Request<Streaming<pb::UploadArtifactRequest>>,
    ) -> Result<Response<pb::UploadArtifactResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::from(ApiError::invalid("empty upload")))?;
        let body = inbound(first.chunk, first.last, stream, |m| (m.chunk, m.last));
        let size = self.api.upload(&ctx, &first.path, body).await?;
        Ok(Response::new(pb::UploadArtifactResponse {
            size: i64::try_from(size).unwrap_or(i64::MAX),
        }))
    }

    type DownloadArtifactStream = DownloadStream;

    async fn download_artifact(
        &self,
        request: Request<pb::DownloadArtifactRequest>,
    ) -> Result<Response<DownloadStream>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let request = request.into_inner();
        let range = request.range.map(|r| {
            let start = u64::try_from(r.start).unwrap_or(0);
            let end = u64::try_from(r.end).ok().filter(|end| *end > 0);
            (start, end)
        });
        let download = self.api.download(&ctx, &request.path, range).await?;
        let header = pb::DownloadArtifactResponse {
            file_size: i64::try_from(download.file_size).unwrap_or(i64::MAX),
            chunk: Bytes::new(),
        };
        let chunks = rechunk(download.stream).map(|chunk| {
            chunk
                .map(|chunk| pb::DownloadArtifactResponse {
                    file_size: 0,
                    chunk,
                })
                .map_err(Status::from)
        });
        let stream = futures::stream::once(async move { Ok(header) })
            .chain(chunks)
            .boxed();
        Ok(Response::new(stream))
    }

    async fn delete_artifact(
        &self,
        request: Request<pb::DeleteArtifactRequest>,
    ) -> Result<Response<pb::DeleteArtifactResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        self.api.delete(&ctx, &request.get_ref().path).await?;
        Ok(Response::new(pb::DeleteArtifactResponse {}))
    }

    async fn presign_download(
        &self,
        request: Request<pb::PresignDownloadRequest>,
    ) -> Result<Response<pb::PresignDownloadResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let request = request.into_inner();
        let expires =
            std::time::Duration::from_secs(u64::try_from(request.expires_seconds).unwrap_or(0));
        let url = self
            .api
            .presign_download(&ctx, &request.path, expires)
            .await?
            .unwrap_or_default();
        Ok(Response::new(pb::PresignDownloadResponse { url }))
    }

    async fn stat_artifact(
        &self,
        request: Request<pb::StatArtifactRequest>,
    ) -> Result<Response<pb::StatArtifactResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let size = self.api.stat(&ctx, &request.get_ref().path).await?;
        Ok(Response::new(pb::StatArtifactResponse {
            file_size: i64::try_from(size).unwrap_or(i64::MAX),
        }))
    }

    async fn create_multipart_upload(
        &self,
        request: Request<pb::CreateMultipartUploadRequest>,
    ) -> Result<Response<pb::CreateMultipartUploadResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let request = request.into_inner();
        let parts = u64::try_from(request.num_parts).unwrap_or(0);
        let upload_id = self
            .api
            .create_multipart(&ctx, &request.path, parts)
            .await?;
        Ok(Response::new(pb::CreateMultipartUploadResponse {
            upload_id,
        }))
    }

    async fn upload_part(
        &self,
        request: Request<Streaming<pb::UploadPartRequest>>,
    ) -> Result<Response<pb::UploadPartResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::from(ApiError::invalid("empty upload")))?;
        let part = u64::try_from(first.part_number).unwrap_or(0);
        let body = inbound(first.chunk, first.last, stream, |m| (m.chunk, m.last));
        let etag = self
            .api
            .upload_part(&ctx, &first.path, &first.upload_id, part, body)
            .await?;
        Ok(Response::new(pb::UploadPartResponse { etag }))
    }

    async fn complete_multipart_upload(
        &self,
        request: Request<pb::CompleteMultipartUploadRequest>,
    ) -> Result<Response<pb::CompleteMultipartUploadResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let request = request.into_inner();
        let size = self
            .api
            .complete_multipart(&ctx, &request.path, &request.upload_id, request.parts)
            .await?;
        Ok(Response::new(pb::CompleteMultipartUploadResponse {
            size: i64::try_from(size).unwrap_or(i64::MAX),
        }))
    }

    async fn abort_multipart_upload(
        &self,
        request: Request<pb::AbortMultipartUploadRequest>,
    ) -> Result<Response<pb::AbortMultipartUploadResponse>, Status> {
        let ctx = RequestContext::from_metadata(request.metadata())?;
        let request = request.into_inner();
        self.api
            .abort_multipart(&ctx, &request.path, &request.upload_id)
            .await?;
        Ok(Response::new(pb::AbortMultipartUploadResponse {}))
    }
}

/// A remote artifacts service.
#[derive(Clone)]
pub struct ArtifactsGrpcClient {
    client: ArtifactsServiceClient<Channel>,
}

impl ArtifactsGrpcClient {
    /// Creates a client for `endpoint`, connecting lazily.
    pub fn connect_lazy(endpoint: &str) -> Result<ArtifactsGrpcClient, ApiError> {
        let endpoint = Endpoint::from_shared(endpoint.to_string())
            .map_err(|error| ApiError::invalid(format!("invalid artifacts endpoint: {error}")))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        Ok(ArtifactsGrpcClient {
            client: ArtifactsServiceClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        })
    }
}

/// An outbound message stream: the chunks, then an empty `last` message —
/// unless the source fails, in which case the stream just ends (without
/// `last`) and the server aborts the write.
fn outbound<M: Send + 'static>(
    body: ByteStream,
    make: impl Fn(Bytes, bool) -> M + Send + Sync + 'static,
) -> impl futures::Stream<Item = M> + Send + 'static {
    futures::stream::unfold((rechunk(body), Some(make)), |(mut body, make)| async move {
        let make = make?;
        match body.next().await {
            Some(Ok(chunk)) => {
                let message = make(chunk, false);
                Some((message, (body, Some(make))))
            }
            Some(Err(_)) => None,
            None => {
                let message = make(Bytes::new(), true);
                Some((message, (body, None)))
            }
        }
    })
}

#[async_trait]
impl ArtifactsApi for ArtifactsGrpcClient {
    async fn list(&self, ctx: &RequestContext, path: &str) -> Result<Vec<pb::FileInfo>, ApiError> {
        let request = ctx.to_request(pb::ListArtifactsRequest {
            path: path.to_string(),
        });
        Ok(self
            .client
            .clone()
            .list_artifacts(request)
            .await?
            .into_inner()
            .files)
    }

    async fn upload(
        &self,
        ctx: &RequestContext,
        path: &str,
        body: ByteStream,
    ) -> Result<u64, ApiError> {
        let path = path.to_string();
        let (body, failure) = watch_failure(body);
        let messages = outbound(body, move |chunk, last| pb::UploadArtifactRequest {
            path: path.clone(),
            chunk,
            last,
        });
        let result = self
            .client
            .clone()
            .upload_artifact(ctx.to_request(messages))
            .await;
        if let Some(error) = failure.take() {
            return Err(error);
        }
        Ok(u64::try_from(result?.into_inner().size).unwrap_or(0))
    }

    async fn download(
        &self,
        ctx: &RequestContext,
        path: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Download, ApiError> {
        let request = pb::DownloadArtifactRequest {
            path: path.to_string(),
            range: range.map(|(start, end)| pb::ByteRange {
                start: i64::try_from(start).unwrap_or(i64::MAX),
                end: end.and_then(|e| i64::try_from(e).ok()).unwrap_or(0),
            }),
        };
        let mut stream = self
            .client
            .clone()
            .download_artifact(ctx.to_request(request))
            .await?
            .into_inner();
        let header = stream
            .message()
            .await?
            .ok_or_else(|| ApiError::unavailable("download stream ended before its header"))?;
        let bytes = stream
            .map_ok(|message| message.chunk)
            .map_err(ApiError::from)
            .boxed();
        Ok(Download {
            file_size: u64::try_from(header.file_size).unwrap_or(0),
            stream: bytes,
        })
    }

    async fn delete(&self, ctx: &RequestContext, path: &str) -> Result<(), ApiError> {
        let request = ctx.to_request(pb::DeleteArtifactRequest {
            path: path.to_string(),
        });
        self.client.clone().delete_artifact(request).await?;
        Ok(())
    }

    async fn presign_download(
        &self,
        ctx: &RequestContext,
        path: &str,
        expires: std::time::Duration,
    ) -> Result<Option<String>, ApiError> {
        let request = ctx.to_request(pb::PresignDownloadRequest {
            path: path.to_string(),
            expires_seconds: i64::try_from(expires.as_secs()).unwrap_or(i64::MAX),
        });
        let url = self
            .client
            .clone()
            .presign_download(request)
            .await?
            .into_inner()
            .url;
        Ok((!url.is_empty()).then_some(url))
    }

    async fn stat(&self, ctx: &RequestContext, path: &str) -> Result<u64, ApiError> {
        let request = ctx.to_request(pb::StatArtifactRequest {
            path: path.to_string(),
        });
        let size = self
            .client
            .clone()
            .stat_artifact(request)
            .await?
            .into_inner()
            .file_size;
        Ok(u64::try_from(size).unwrap_or(0))
    }

    async fn create_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        num_parts: u64,
    ) -> Result<String, ApiError> {
        let request = ctx.to_request(pb::CreateMultipartUploadRequest {
            path: path.to_string(),
            num_parts: i64::try_from(num_parts).unwrap_or(i64::MAX),
        });
        Ok(self
            .client
            .clone()
            .create_multipart_upload(request)
            .await?
            .into_inner()
            .upload_id)
    }

    async fn upload_part(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
        part_number: u64,
        body: ByteStream,
    ) -> Result<String, ApiError> {
        let (path, upload_id) = (path.to_string(), upload_id.to_string());
        let part_number = i64::try_from(part_number).unwrap_or(i64::MAX);
        let (body, failure) = watch_failure(body);
        let messages = outbound(body, move |chunk, last| pb::UploadPartRequest {
            path: path.clone(),
            upload_id: upload_id.clone(),
            part_number,
            chunk,
            last,
        });
        let result = self
            .client
            .clone()
            .upload_part(ctx.to_request(messages))
            .await;
        if let Some(error) = failure.take() {
            return Err(error);
        }
        Ok(result?.into_inner().etag)
    }

    async fn complete_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
        parts: Vec<pb::CompletedPart>,
    ) -> Result<u64, ApiError> {
        let request = ctx.to_request(pb::CompleteMultipartUploadRequest {
            path: path.to_string(),
            upload_id: upload_id.to_string(),
            parts,
        });
        let size = self
            .client
            .clone()
            .complete_multipart_upload(request)
            .await?
            .into_inner()
            .size;
        Ok(u64::try_from(size).unwrap_or(0))
    }

    async fn abort_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
    ) -> Result<(), ApiError> {
        let request = ctx.to_request(pb::AbortMultipartUploadRequest {
            path: path.to_string(),
            upload_id: upload_id.to_string(),
        });
        self.client.clone().abort_multipart_upload(request).await?;
        Ok(())
    }
}

/// Remembers the first error of a body stream (the outbound stream can only
/// end early, it cannot carry the error), so the caller can report it.
struct FailureSlot(Arc<std::sync::Mutex<Option<ApiError>>>);

impl FailureSlot {
    fn take(&self) -> Option<ApiError> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

fn watch_failure(body: ByteStream) -> (ByteStream, FailureSlot) {
    let slot = Arc::new(std::sync::Mutex::new(None));
    let writer = slot.clone();
    let body = body
        .inspect_err(move |error| {
            if let Ok(mut slot) = writer.lock() {
                slot.get_or_insert_with(|| error.clone());
            }
        })
        .boxed();
    (body, FailureSlot(slot))
}
