//! One artifacts-API conformance suite on every store: a local directory,
//! object_store's in-memory store, a real S3-compatible server (moto), and a
//! local directory behind a real gRPC hop.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use quiver_artifacts::{ArtifactsApi, ByteStream};
use quiver_common::{ApiError, ErrorCode, Namespace, RequestContext};
use quiver_e2e::{ArtifactBackend, ArtifactsGuard, artifacts_api};
use quiver_proto::artifacts::v1 as pb;

struct Env {
    api: Arc<dyn ArtifactsApi>,
    ctx: RequestContext,
    guard: ArtifactsGuard,
}

async fn env(backend: ArtifactBackend) -> Env {
    let (api, guard) = artifacts_api(backend).await;
    Env {
        api,
        ctx: RequestContext::default_namespace(),
        guard,
    }
}

fn body(data: &[u8], piece: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, ApiError>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        })
        .collect()
}

impl Env {
    async fn put(&self, path: &str, data: &[u8]) {
        let size = self
            .api
            .upload(&self.ctx, path, body(data, 64 * 1024))
            .await
            .unwrap();
        assert_eq!(size, data.len() as u64);
    }

    async fn get(
        &self,
        path: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<(u64, Vec<u8>), ApiError> {
        let download = self.api.download(&self.ctx, path, range).await?;
        let bytes: Vec<Bytes> = download.stream.try_collect().await?;
        Ok((download.file_size, bytes.concat()))
    }

    async fn names(&self, path: &str) -> Vec<(String, bool, i64)> {
        self.api
            .list(&self.ctx, path)
            .await
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.is_dir, f.file_size))
            .collect()
    }
}

pub async fn round_trip_list_and_delete(backend: ArtifactBackend) {
    let env = env(backend).await;
    let data = pseudo_random(3 * 1024 * 1024 + 17, 1);
    env.put("1/run/artifacts/model/model.pkl", &data).await;
    env.put("1/run/artifacts/model/MLmodel", b"flavors: {}")
        .await;
    env.put("1/run/artifacts/notes.txt", b"hello").await;
    env.put("1/run/artifacts/empty", b"").await;
    let (size, read) = env
        .get("1/run/artifacts/model/model.pkl", None)
        .await
        .unwrap();
    assert_eq!(size, data.len() as u64);
    assert!(read == data, "bytes differ");
    // Stores that sign URLs (S3) hand out one that reads the file directly.
    let signed = env
        .api
        .presign_download(
            &env.ctx,
            "1/run/artifacts/model/model.pkl",
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    match backend {
        ArtifactBackend::S3 => {
            let url = signed.expect("S3 signs URLs");
            let bytes = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
            assert!(bytes.as_ref() == data.as_slice(), "presigned bytes differ");
        }
        _ => assert!(signed.is_none(), "{backend:?} cannot sign URLs"),
    }
    // stat gives the size without reading (multipart downloads plan with it).
    assert_eq!(
        env.api
            .stat(&env.ctx, "1/run/artifacts/model/model.pkl")
            .await
            .unwrap(),
        data.len() as u64
    );
    assert_eq!(
        env.api
            .stat(&env.ctx, "1/run/artifacts/nope")
            .await
            .unwrap_err()
            .code,
        ErrorCode::ResourceDoesNotExist
    );
    assert_eq!(env.get("1/run/artifacts/empty", None).await.unwrap().1, b"");
    // Overwrite.
    env.put("1/run/artifacts/notes.txt", b"hello again").await;
    assert_eq!(
        env.get("1/run/artifacts/notes.txt", None).await.unwrap().1,
        b"hello again"
    );
    // Ranges.
    let (size, slice) = env
        .get("1/run/artifacts/model/model.pkl", Some((10, Some(1000))))
        .await
        .unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(slice, &data[10..1000]);
    let (_, tail) = env
        .get(
            "1/run/artifacts/model/model.pkl",
            Some((data.len() as u64 - 5, None)),
        )
        .await
        .unwrap();
    assert_eq!(tail, &data[data.len() - 5..]);
    let bad_range = env
        .get("1/run/artifacts/notes.txt", Some((100, None)))
        .await;
    assert_eq!(
        bad_range.unwrap_err().code,
        ErrorCode::InvalidParameterValue
    );
    // Listing: direct children only, names relative to the directory.
    assert_eq!(
        env.names("1/run/artifacts").await,
        vec![
            ("empty".to_string(), false, 0),
            ("model".to_string(), true, 0),
            ("notes.txt".to_string(), false, 11),
        ]
    );
    assert_eq!(
        env.names("1/run/artifacts/model").await,
        vec![
            ("MLmodel".to_string(), false, 11),
            ("model.pkl".to_string(), false, data.len() as i64)
        ]
    );
    assert!(env.names("1/run/artifacts/missing").await.is_empty());
    assert!(env.names("1/run/artifacts/notes.txt").await.is_empty());
    // Missing file: 404 with MLflow's message.
    let missing = env.get("1/run/artifacts/none.txt", None).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::ResourceDoesNotExist);
    assert_eq!(
        missing.message,
        "No such artifact: '1/run/artifacts/none.txt'"
    );
    // Delete a file, then a tree; siblings survive.
    env.put("1/other/artifacts/keep.txt", b"keep").await;
    env.api
        .delete(&env.ctx, "1/run/artifacts/notes.txt")
        .await
        .unwrap();
    assert!(env.get("1/run/artifacts/notes.txt", None).await.is_err());
    env.api.delete(&env.ctx, "1/run").await.unwrap();
    assert!(env.names("1/run/artifacts").await.is_empty());
    assert_eq!(
        env.get("1/other/artifacts/keep.txt", None).await.unwrap().1,
        b"keep"
    );
    assert_eq!(env.names("1").await, vec![("other".to_string(), true, 0)]);
}

pub async fn hostile_paths_are_refused(backend: ArtifactBackend) {
    let env = env(backend).await;
    env.put("1/run/artifacts/a.txt", b"a").await;
    for path in [
        "../etc/passwd",
        "1/../../x",
        "/etc/passwd",
        "%2e%2e/x",
        "%252e%252e/x",
        "1\\..\\x",
        "C:/windows",
        "1/a?b",
        "1/a#b",
        "1/a;b",
        "1/a\0b",
        "1//a",
        "./1",
    ] {
        let expect_400 = |result: Result<(), ApiError>, op: &str| {
            let error = result.expect_err(&format!("{op} {path:?} must fail"));
            assert_eq!(
                error.code,
                ErrorCode::InvalidParameterValue,
                "{op} {path:?}"
            );
            assert_eq!(error.message, "Invalid path");
        };
        expect_400(
            env.api
                .upload(&env.ctx, path, body(b"x", 1))
                .await
                .map(|_| ()),
            "upload",
        );
        expect_400(env.get(path, None).await.map(|_| ()), "download");
        expect_400(env.api.list(&env.ctx, path).await.map(|_| ()), "list");
        expect_400(env.api.delete(&env.ctx, path).await, "delete");
        expect_400(env.api.stat(&env.ctx, path).await.map(|_| ()), "stat");
        expect_400(
            env.api
                .presign_download(&env.ctx, path, std::time::Duration::from_secs(60))
                .await
                .map(|_| ()),
            "presign",
        );
        expect_400(
            env.api
                .create_multipart(&env.ctx, path, 1)
                .await
                .map(|_| ()),
            "multipart",
        );
    }
    // Nothing was written anywhere by those attempts.
    assert_eq!(env.names("").await, vec![("1".to_string(), true, 0)]);
    if let Some(dir) = &env.guard.dir {
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "only the default namespace directory");
    }
}

pub async fn namespaces_cannot_reach_each_other(backend: ArtifactBackend) {
    let env = env(backend).await;
    let a = RequestContext::new(Namespace::parse("team-a").unwrap());
    let b = RequestContext::new(Namespace::parse("team-b").unwrap());
    env.api
        .upload(&a, "1/r/artifacts/secret.txt", body(b"a's", 4))
        .await
        .unwrap();
    let from_b = env.api.download(&b, "1/r/artifacts/secret.txt", None).await;
    assert_eq!(
        from_b.err().map(|e| e.code),
        Some(ErrorCode::ResourceDoesNotExist)
    );
    assert!(env.api.list(&b, "1/r/artifacts").await.unwrap().is_empty());
    env.api.delete(&b, "1").await.unwrap();
    assert!(
        env.api
            .download(&a, "1/r/artifacts/secret.txt", None)
            .await
            .is_ok()
    );
}

pub async fn multipart_uploads(backend: ArtifactBackend) {
    let env = env(backend).await;
    let parts: Vec<Vec<u8>> = (0..3)
        .map(|i| pseudo_random(1024 * 1024 + i * 7, 10 + i as u64))
        .collect();
    let path = "1/run/artifacts/big.bin";
    let upload_id = env.api.create_multipart(&env.ctx, path, 3).await.unwrap();
    let mut completed = Vec::new();
    for index in [2usize, 0, 1] {
        let number = index as u64 + 1;
        let etag = env
            .api
            .upload_part(
                &env.ctx,
                path,
                &upload_id,
                number,
                body(&parts[index], 100_000),
            )
            .await
            .unwrap();
        completed.push(pb::CompletedPart {
            part_number: number as i64,
            etag,
        });
    }
    let size = env
        .api
        .complete_multipart(&env.ctx, path, &upload_id, completed)
        .await
        .unwrap();
    let whole = parts.concat();
    assert_eq!(size, whole.len() as u64);
    assert!(env.get(path, None).await.unwrap().1 == whole);
    // Staged parts are gone; only the file is listed.
    assert_eq!(
        env.names("1/run/artifacts").await,
        vec![("big.bin".to_string(), false, whole.len() as i64)]
    );
    // Abort discards; a missing part fails completion; ids are validated.
    let aborted = env.api.create_multipart(&env.ctx, path, 2).await.unwrap();
    env.api
        .upload_part(&env.ctx, path, &aborted, 1, body(b"x", 1))
        .await
        .unwrap();
    env.api
        .abort_multipart(&env.ctx, path, &aborted)
        .await
        .unwrap();
    let incomplete = env
        .api
        .create_multipart(&env.ctx, "1/run/artifacts/other.bin", 2)
        .await
        .unwrap();
    env.api
        .upload_part(
            &env.ctx,
            "1/run/artifacts/other.bin",
            &incomplete,
            1,
            body(b"x", 1),
        )
        .await
        .unwrap();
    let missing_part = env
        .api
        .complete_multipart(
            &env.ctx,
            "1/run/artifacts/other.bin",
            &incomplete,
            vec![
                pb::CompletedPart {
                    part_number: 1,
                    etag: String::new(),
                },
                pb::CompletedPart {
                    part_number: 2,
                    etag: String::new(),
                },
            ],
        )
        .await;
    assert_eq!(
        missing_part.unwrap_err().code,
        ErrorCode::InvalidParameterValue
    );
    assert!(
        env.get("1/run/artifacts/other.bin", None).await.is_err(),
        "a failed completion writes nothing"
    );
    let bad_id = env
        .api
        .upload_part(&env.ctx, path, "../../x", 1, body(b"x", 1))
        .await;
    assert_eq!(bad_id.unwrap_err().code, ErrorCode::InvalidParameterValue);
    assert_eq!(
        env.api
            .create_multipart(&env.ctx, path, 0)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidParameterValue
    );
}

pub async fn failed_uploads_write_nothing(backend: ArtifactBackend) {
    let env = env(backend).await;
    env.put("1/r/artifacts/file.bin", b"original").await;
    let broken: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from(vec![1u8; 300_000])),
        Err(ApiError::invalid("client went away")),
    ])
    .boxed();
    let result = env
        .api
        .upload(&env.ctx, "1/r/artifacts/file.bin", broken)
        .await;
    assert!(result.is_err());
    assert_eq!(
        env.get("1/r/artifacts/file.bin", None).await.unwrap().1,
        b"original"
    );
}

macro_rules! artifacts_suite {
    ($($case:ident),* $(,)?) => {
        mod local {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::ArtifactBackend::Local).await; } )*
        }
        mod memory {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::ArtifactBackend::Memory).await; } )*
        }
        mod s3 {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::ArtifactBackend::S3).await; } )*
        }
        mod grpc_local {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::ArtifactBackend::GrpcLocal).await; } )*
        }
    };
}

artifacts_suite!(
    round_trip_list_and_delete,
    hostile_paths_are_refused,
    namespaces_cannot_reach_each_other,
    multipart_uploads,
    failed_uploads_write_nothing,
);

#[tokio::test]
async fn symlinks_inside_a_local_root_are_refused() {
    let env = env(ArtifactBackend::Local).await;
    env.put("1/r/artifacts/ok.txt", b"ok").await;
    let root = env
        .guard
        .dir
        .as_ref()
        .unwrap()
        .path()
        .join("default/1/r/artifacts");
    std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
    let error = env
        .get("1/r/artifacts/escape/hostname", None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameterValue);
    let error = env
        .api
        .list(&env.ctx, "1/r/artifacts/escape")
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameterValue);
}

/// Listing a local root follows symlinks, so deleting a tree that holds one
/// must refuse rather than delete the files the link leads to.
#[tokio::test]
async fn deleting_a_tree_never_follows_a_symlink_out_of_the_root() {
    let env = env(ArtifactBackend::Local).await;
    env.put("1/r/artifacts/ok.txt", b"ok").await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious.txt"), b"keep").unwrap();
    let run_dir = env
        .guard
        .dir
        .as_ref()
        .unwrap()
        .path()
        .join("default/1/r/artifacts");
    std::os::unix::fs::symlink(outside.path(), run_dir.join("escape")).unwrap();
    let error = env.api.delete(&env.ctx, "1/r").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameterValue);
    assert!(outside.path().join("precious.txt").exists());
    assert!(run_dir.join("ok.txt").exists(), "nothing is deleted");
}
