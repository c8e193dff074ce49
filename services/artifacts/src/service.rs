//! [`ArtifactsService`]: the artifacts API in-process, over an artifact root.
//! Keys are `<root prefix>/<namespace>/<path>`; multipart parts are staged
//! under `<root prefix>/.quiver-multipart/<namespace>/<upload id>/`, outside
//! every namespace's key space.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStoreExt, WriteMultipart};
use quiver_common::{ApiError, Namespace, RequestContext};
use quiver_proto::artifacts::v1 as pb;
use tracing::instrument;

use crate::api::{ArtifactsApi, ByteStream, Download};
use crate::path::ArtifactPath;
use crate::storage::ArtifactRoot;

/// Size of each part written to the store while streaming an upload.
const UPLOAD_CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once per upload (bounds memory to ~2 chunks).
const UPLOAD_CONCURRENCY: usize = 2;
/// Most parts of one multipart upload (as S3).
const MAX_PARTS: u64 = 10_000;
/// Staging area for multipart uploads, outside every namespace.
const MULTIPART_DIR: &str = ".quiver-multipart";

/// The artifacts service over a root.
#[derive(Clone, Debug)]
pub struct ArtifactsService {
    root: ArtifactRoot,
}

fn storage_error(error: object_store::Error) -> ApiError {
    match error {
        object_store::Error::NotFound { .. } => ApiError::not_found("No such artifact"),
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. } => {
            ApiError::new(
                quiver_common::ErrorCode::NotImplemented,
                "not supported by this artifact store",
            )
        }
        other => ApiError::unavailable(other),
    }
}

fn no_such_artifact(path: &ArtifactPath) -> ApiError {
    ApiError::not_found(format!("No such artifact: '{path}'"))
}

impl ArtifactsService {
    /// Creates the service over an opened root.
    pub fn new(root: ArtifactRoot) -> ArtifactsService {
        ArtifactsService { root }
    }

    fn key(&self, namespace: &Namespace, path: &ArtifactPath) -> StorePath {
        let mut parts: Vec<object_store::path::PathPart<'_>> = self.root.prefix.parts().collect();
        parts.push(namespace.as_str().into());
        parts.extend(
            path.segments()
                .iter()
                .map(|s| object_store::path::PathPart::from(s.as_str())),
        );
        StorePath::from_iter(parts)
    }

    fn staging_key(&self, namespace: &Namespace, upload_id: &str, part: Option<u64>) -> StorePath {
        let mut parts: Vec<object_store::path::PathPart<'_>> = self.root.prefix.parts().collect();
        parts.push(MULTIPART_DIR.into());
        parts.push(namespace.as_str().into());
        parts.push(upload_id.into());
        if let Some(number) = part {
            parts.push(format!("{number:05}").into());
        }
        StorePath::from_iter(parts)
    }

    /// On a local root, refuses paths that pass through a symlink (which
    /// could point outside the root).
    fn refuse_symlinks(&self, key: &StorePath) -> Result<(), ApiError> {
        let Some(dir) = &self.root.local_dir else {
            return Ok(());
        };
        let mut current = PathBuf::from(dir);
        for part in key.parts() {
            let decoded = percent_encoding::percent_decode_str(part.as_ref())
                .decode_utf8_lossy()
                .into_owned();
            current.push(decoded);
            match std::fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    tracing::warn!(path = %current.display(), "refused a symlink inside the artifact root");
                    return Err(ApiError::invalid("Invalid path"));
                }
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

    /// On a local root, removes the directory tree left empty by a delete
    /// (object stores have no directories; local disks do).
    fn remove_empty_dirs(&self, key: &StorePath) {
        let Some(dir) = &self.root.local_dir else {
            return;
        };
        let mut path = PathBuf::from(dir);
        for part in key.parts() {
            path.push(
                percent_encoding::percent_decode_str(part.as_ref())
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        }
        // Only empty directories: a file written meanwhile keeps its parents.
        fn prune(path: &std::path::Path) -> bool {
            let Ok(entries) = std::fs::read_dir(path) else {
                return false;
            };
            let mut empty = true;
            for entry in entries.flatten() {
                let child = entry.path();
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if !(is_dir && prune(&child)) {
                    empty = false;
                }
            }
            empty && std::fs::remove_dir(path).is_ok()
        }
        prune(&path);
    }

    /// Streams `body` into `key` in parts; aborts the write on any error.
    async fn write_stream(&self, key: &StorePath, mut body: ByteStream) -> Result<u64, ApiError> {
        let upload = self
            .root
            .store
            .put_multipart(key)
            .await
            .map_err(storage_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_CHUNK_BYTES);
        let mut size: u64 = 0;
        while let Some(next) = body.next().await {
            let chunk = match next {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = writer.abort().await;
                    return Err(error);
                }
            };
            size += chunk.len() as u64;
            if let Err(error) = writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                return Err(storage_error(error));
            }
            writer.put(chunk);
        }
        writer.finish().await.map_err(storage_error)?;
        Ok(size)
    }

    fn parse_upload_id(upload_id: &str) -> Result<String, ApiError> {
        uuid::Uuid::parse_str(upload_id)
            .map(|id| id.simple().to_string())
            .map_err(|_| ApiError::invalid("Invalid upload_id"))
    }

    async fn list_keys(
        &self,
        prefix: &StorePath,
    ) -> Result<Vec<object_store::ObjectMeta>, ApiError> {
        self.root
            .store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(storage_error)
    }

    /// Removes every object at or under `path` in `namespace` and returns how
    /// many it removed; with `dry_run`, only counts them. The admin side of
    /// `quiver gc`, not part of [`ArtifactsApi`]. `path` must not be the
    /// namespace root; prefixes match whole segments (`1` never reaches
    /// `10/...`). On a local root, a tree that reaches through a symlink is
    /// refused before anything is removed (listing follows symlinks, so a
    /// link could otherwise lead outside the root).
    pub async fn purge(
        &self,
        namespace: &Namespace,
        path: &ArtifactPath,
        dry_run: bool,
    ) -> Result<u64, ApiError> {
        if path.is_root() {
            return Err(ApiError::invalid("Invalid path"));
        }
        let key = self.key(namespace, path);
        self.refuse_symlinks(&key)?;
        let mut objects = Vec::new();
        match self.root.store.head(&key).await {
            Ok(meta) => objects.push(meta.location),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(storage_error(error)),
        }
        for meta in self.list_keys(&key).await? {
            if meta.location != key {
                // Listing a local root follows symlinks: refuse before deleting anything.
                self.refuse_symlinks(&meta.location)?;
                objects.push(meta.location);
            }
        }
        if dry_run {
            return Ok(objects.len() as u64);
        }
        let mut removed = 0;
        for location in objects {
            match self.root.store.delete(&location).await {
                Ok(()) => removed += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(storage_error(error)),
            }
        }
        self.remove_empty_dirs(&key);
        Ok(removed)
    }
}

fn byte_stream(
    stream: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
) -> ByteStream {
    stream.map_err(storage_error).boxed()
}

/// Size of one read from a local file. object_store's own file stream reads
/// 8 KiB per blocking task, which caps a download near 200 MiB/s.
const FILE_CHUNK: u64 = 1024 * 1024;
/// Chunks read ahead of the consumer (memory per download: about this many MiB).
const FILE_READ_AHEAD: usize = 4;

/// Streams `range` of a local file in 1 MiB chunks from one blocking task,
/// at most [`FILE_READ_AHEAD`] chunks ahead of the consumer.
fn file_stream(mut file: std::fs::File, range: std::ops::Range<u64>) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, ApiError>>(FILE_READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let failed = |error: std::io::Error| {
            Err(ApiError::unavailable(format!("reading artifact: {error}")))
        };
        if let Err(error) = file.seek(SeekFrom::Start(range.start)) {
            let _ = tx.blocking_send(failed(error));
            return;
        }
        let mut remaining = range.end.saturating_sub(range.start);
        while remaining > 0 {
            let mut buffer = vec![0u8; usize::try_from(remaining.min(FILE_CHUNK)).unwrap_or(0)];
            let read = match file.read(&mut buffer) {
                Ok(0) => {
                    let _ = tx.blocking_send(failed(std::io::ErrorKind::UnexpectedEof.into()));
                    return;
                }
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    let _ = tx.blocking_send(failed(error));
                    return;
                }
            };
            buffer.truncate(read);
            remaining -= read as u64;
            if tx.blocking_send(Ok(Bytes::from(buffer))).is_err() {
                return; // the consumer went away
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}

#[async_trait]
impl ArtifactsApi for ArtifactsService {
    #[instrument(skip_all, name = "artifacts.list", fields(ns = %ctx.namespace))]
    async fn list(&self, ctx: &RequestContext, path: &str) -> Result<Vec<pb::FileInfo>, ApiError> {
        let path = ArtifactPath::parse(path)?;
        let key = self.key(&ctx.namespace, &path);
        self.refuse_symlinks(&key)?;
        let listing = self
            .root
            .store
            .list_with_delimiter(Some(&key))
            .await
            .map_err(storage_error)?;
        let name = |location: &StorePath| {
            location
                .filename()
                .map(|n| {
                    percent_encoding::percent_decode_str(n)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .unwrap_or_default()
        };
        let mut files: Vec<pb::FileInfo> = listing
            .common_prefixes
            .iter()
            .map(|dir| pb::FileInfo {
                path: name(dir),
                is_dir: true,
                file_size: 0,
            })
            .chain(
                listing
                    .objects
                    .iter()
                    .filter(|meta| meta.location != key)
                    .map(|meta| pb::FileInfo {
                        path: name(&meta.location),
                        is_dir: false,
                        file_size: i64::try_from(meta.size).unwrap_or(i64::MAX),
                    }),
            )
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    #[instrument(skip_all, name = "artifacts.upload", fields(ns = %ctx.namespace))]
    async fn upload(
        &self,
        ctx: &RequestContext,
        path: &str,
        body: ByteStream,
    ) -> Result<u64, ApiError> {
        let path = ArtifactPath::parse_non_root(path)?;
        let key = self.key(&ctx.namespace, &path);
        self.refuse_symlinks(&key)?;
        self.write_stream(&key, body).await
    }

    #[instrument(skip_all, name = "artifacts.download", fields(ns = %ctx.namespace))]
    async fn download(
        &self,
        ctx: &RequestContext,
        path: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Download, ApiError> {
        let path = ArtifactPath::parse_non_root(path)?;
        let key = self.key(&ctx.namespace, &path);
        self.refuse_symlinks(&key)?;
        let not_found = |error| match error {
            object_store::Error::NotFound { .. } => no_such_artifact(&path),
            other => storage_error(other),
        };
        let range = match range {
            None => None,
            Some((start, end)) => {
                let size = self.root.store.head(&key).await.map_err(not_found)?.size;
                let end = end.unwrap_or(size).min(size);
                if start >= end {
                    return Err(ApiError::invalid("Requested range is not satisfiable"));
                }
                Some(GetRange::Bounded(start..end))
            }
        };
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        let result = self
            .root
            .store
            .get_opts(&key, options)
            .await
            .map_err(not_found)?;
        let file_size = result.meta.size;
        let stream = match result.payload {
            object_store::GetResultPayload::File(file, _) => file_stream(file, result.range),
            object_store::GetResultPayload::Stream(stream) => byte_stream(stream),
        };
        Ok(Download { file_size, stream })
    }

    #[instrument(skip_all, name = "artifacts.presign", fields(ns = %ctx.namespace))]
    async fn presign_download(
        &self,
        ctx: &RequestContext,
        path: &str,
        expires: std::time::Duration,
    ) -> Result<Option<String>, ApiError> {
        // The same path checks as a download (the caller stats the file).
        let path = ArtifactPath::parse_non_root(path)?;
        let key = self.key(&ctx.namespace, &path);
        self.refuse_symlinks(&key)?;
        let Some(signer) = &self.root.signer else {
            return Ok(None);
        };
        let url = signer
            .signed_url(object_store::signer::Method::GET, &key, expires)
            .await
            .map_err(storage_error)?;
        Ok(Some(url.to_string()))
    }

    #[instrument(skip_all, name = "artifacts.stat", fields(ns = %ctx.namespace))]
    async fn stat(&self, ctx: &RequestContext, path: &str) -> Result<u64, ApiError> {
        let path = ArtifactPath::parse_non_root(path)?;
        let key = self.key(&ctx.namespace, &path);
        self.refuse_symlinks(&key)?;
        match self.root.store.head(&key).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(no_such_artifact(&path)),
            Err(other) => Err(storage_error(other)),
        }
    }

    #[instrument(skip_all, name = "artifacts.delete", fields(ns = %ctx.namespace))]
    async fn delete(&self, ctx: &RequestContext, path: &str) -> Result<(), ApiError> {
        let path = ArtifactPath::parse_non_root(path)?;
        let key = self.key(&ctx.namespace, &path);
        self.refuse_symlinks(&key)?;
        match self.root.store.head(&key).await {
            Ok(_) => return self.root.store.delete(&key).await.map_err(storage_error),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(storage_error(error)),
        }
        let objects = self.list_keys(&key).await?;
        // Listing a local root follows symlinks: refuse before deleting anything.
        for meta in &objects {
            self.refuse_symlinks(&meta.location)?;
        }
        for meta in objects {
            self.root
                .store
                .delete(&meta.location)
                .await
                .map_err(storage_error)?;
        }
        self.remove_empty_dirs(&key);
        Ok(())
    }

    #[instrument(skip_all, name = "artifacts.create_multipart", fields(ns = %ctx.namespace))]
    async fn create_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        num_parts: u64,
    ) -> Result<String, ApiError> {
        ArtifactPath::parse_non_root(path)?;
        if num_parts == 0 || num_parts > MAX_PARTS {
            return Err(ApiError::invalid(format!(
                "num_parts must be between 1 and {MAX_PARTS}"
            )));
        }
        let _ = ctx;
        Ok(uuid::Uuid::new_v4().simple().to_string())
    }

    #[instrument(skip_all, name = "artifacts.upload_part", fields(ns = %ctx.namespace))]
    async fn upload_part(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
        part_number: u64,
        body: ByteStream,
    ) -> Result<String, ApiError> {
        ArtifactPath::parse_non_root(path)?;
        let upload_id = Self::parse_upload_id(upload_id)?;
        if part_number == 0 || part_number > MAX_PARTS {
            return Err(ApiError::invalid(format!(
                "part_number must be between 1 and {MAX_PARTS}"
            )));
        }
        let key = self.staging_key(&ctx.namespace, &upload_id, Some(part_number));
        let size = self.write_stream(&key, body).await?;
        Ok(format!("\"{upload_id}-{part_number}-{size}\""))
    }

    #[instrument(skip_all, name = "artifacts.complete_multipart", fields(ns = %ctx.namespace))]
    async fn complete_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
        mut parts: Vec<pb::CompletedPart>,
    ) -> Result<u64, ApiError> {
        let path = ArtifactPath::parse_non_root(path)?;
        let upload_id = Self::parse_upload_id(upload_id)?;
        if parts.is_empty() {
            return Err(ApiError::invalid(
                "A multipart upload needs at least one part",
            ));
        }
        parts.sort_by_key(|part| part.part_number);
        let mut keys = Vec::with_capacity(parts.len());
        for part in &parts {
            let number = u64::try_from(part.part_number)
                .map_err(|_| ApiError::invalid("Invalid part_number"))?;
            keys.push(self.staging_key(&ctx.namespace, &upload_id, Some(number)));
        }
        // Concatenate the staged parts into the final object, streaming.
        let store = self.root.store.clone();
        let missing_path = path.clone();
        let staged_keys = keys.clone();
        let body: ByteStream = futures::stream::iter(staged_keys)
            .then(move |key| {
                let store = store.clone();
                let missing_path = missing_path.clone();
                async move {
                    match store.get(&key).await {
                        Ok(result) => Ok(byte_stream(result.into_stream())),
                        Err(object_store::Error::NotFound { .. }) => Err(ApiError::invalid(format!(
                            "A part of the multipart upload of '{missing_path}' was never uploaded"
                        ))),
                        Err(error) => Err(storage_error(error)),
                    }
                }
            })
            .try_flatten()
            .boxed();
        let target = self.key(&ctx.namespace, &path);
        self.refuse_symlinks(&target)?;
        let size = self.write_stream(&target, body).await?;
        let staging = self.staging_key(&ctx.namespace, &upload_id, None);
        for meta in self.list_keys(&staging).await? {
            let _ = self.root.store.delete(&meta.location).await;
        }
        Ok(size)
    }

    #[instrument(skip_all, name = "artifacts.abort_multipart", fields(ns = %ctx.namespace))]
    async fn abort_multipart(
        &self,
        ctx: &RequestContext,
        path: &str,
        upload_id: &str,
    ) -> Result<(), ApiError> {
        ArtifactPath::parse_non_root(path)?;
        let upload_id = Self::parse_upload_id(upload_id)?;
        let staging = self.staging_key(&ctx.namespace, &upload_id, None);
        for meta in self.list_keys(&staging).await? {
            self.root
                .store
                .delete(&meta.location)
                .await
                .map_err(storage_error)?;
        }
        Ok(())
    }
}
