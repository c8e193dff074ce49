//! The artifact proxy (`/api/2.0/mlflow-artifacts/...`, MLflow's mode P) and
//! the tracking-side artifact endpoints (`artifacts/list`, `/get-artifact`,
//! the UI's `upload-artifact`). Bytes are streamed both ways.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use futures::TryStreamExt;
use quiver_artifacts::ByteStream;
use quiver_common::{ApiError, RequestContext};
use quiver_proto::artifacts::v1 as apb;
use quiver_proto::tracking::v1 as pb;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::GatewayError;
use crate::params::Params;

/// Routes relative to `/api/2.0/mlflow-artifacts`.
pub fn proxy_routes() -> Router<AppState> {
    Router::new()
        .route("/artifacts", get(list))
        .route("/artifacts/", get(list))
        .route(
            "/artifacts/{*path}",
            put(upload).get(download).delete(delete),
        )
        .route("/mpu/create/{*path}", post(mpu_create))
        .route("/mpu/complete/{*path}", post(mpu_complete))
        .route("/mpu/abort/{*path}", post(mpu_abort))
        .route("/mpu/part/{upload_id}/{part_number}/{*path}", put(mpu_part))
        .route("/presigned/{*path}", get(presigned))
}

/// Tracking-side routes relative to `/api/2.0/mlflow` (and the ajax copy).
pub fn tracking_routes() -> Router<AppState> {
    Router::new()
        .route("/artifacts/list", get(list_run_artifacts))
        .route("/upload-artifact", post(upload_run_artifact))
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(
        body.into_data_stream()
            .map_err(|error| ApiError::invalid(format!("request body failed: {error}"))),
    )
}

async fn list(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, GatewayError> {
    let path = query.get("path").cloned().unwrap_or_default();
    let files = s.artifacts.list(&ctx, &path).await?;
    Ok(Json(files_json(&files, "")))
}

/// `{"files": [...]}` with paths prefixed by `prefix`, or `{}` when empty.
fn files_json(files: &[apb::FileInfo], prefix: &str) -> Value {
    if files.is_empty() {
        return json!({});
    }
    let entries: Vec<Value> = files
        .iter()
        .map(|file| {
            let path = if prefix.is_empty() {
                file.path.clone()
            } else {
                format!("{prefix}/{}", file.path)
            };
            if file.is_dir {
                json!({"path": path, "is_dir": true})
            } else {
                json!({"path": path, "is_dir": false, "file_size": file.file_size})
            }
        })
        .collect();
    json!({ "files": entries })
}

/// The answer to a request with a body: an error closes the connection
/// (`Connection: close`). A request refused before its body was read leaves
/// the rest of the body on the connection; the server then drops it after
/// answering, and without the header a client sends its next request on a
/// connection that is going away (and sees "connection aborted").
fn closing_on_error(result: Result<Response, GatewayError>) -> Response {
    result.unwrap_or_else(|error| {
        let mut response = error.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    })
}

async fn upload(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    closing_on_error(
        s.artifacts
            .upload(&ctx, &path, body_stream(request.into_body()))
            .await
            .map(|_| Json(json!({})).into_response())
            .map_err(GatewayError::from),
    )
}

/// Parses a single `Range: bytes=a-b` / `bytes=a-` header (suffix ranges and
/// multiple ranges are served whole).
fn parse_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        text => Some(text.parse::<u64>().ok()?.checked_add(1)?),
    };
    Some((start, end))
}

pub(crate) async fn stream_file(
    s: &AppState,
    ctx: &RequestContext,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, GatewayError> {
    let range = parse_range(headers);
    let download = s.artifacts.download(ctx, path, range).await?;
    let file_name = path.rsplit('/').next().unwrap_or(path);
    let mime = mime_guess::from_path(file_name).first_or_octet_stream();
    let mut response = Response::new(Body::from_stream(download.stream));
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime.essence_str()) {
        response_headers.insert(header::CONTENT_TYPE, value);
    }
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file_name.replace(['"', '\\', '\r', '\n'], "_")
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response_headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match range {
        Some((start, end)) => {
            let end = end.unwrap_or(download.file_size).min(download.file_size);
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let content_range = format!(
                "bytes {start}-{}/{}",
                end.saturating_sub(1),
                download.file_size
            );
            if let Ok(value) = HeaderValue::from_str(&content_range) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
        }
        None => {
            response.headers_mut().insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(download.file_size),
            );
        }
    }
    Ok(response)
}

async fn download(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    stream_file(&s, &ctx, &path, &headers).await
}

async fn delete(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(path): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    s.artifacts.delete(&ctx, &path).await?;
    Ok(Json(json!({})))
}

/// The file a multipart request names: `<dir path>/<basename of "path">`
/// (older clients sent a full local path; only its last component counts).
fn multipart_target(dir: &str, p: &Params) -> Result<String, GatewayError> {
    let raw = p.required_str("path")?;
    let name = raw.rsplit(['/', '\\']).next().unwrap_or(&raw).to_string();
    if name.is_empty() {
        return Err(GatewayError::invalid("Invalid path"));
    }
    let dir = dir.trim_end_matches('/');
    Ok(if dir.is_empty() {
        name
    } else {
        format!("{dir}/{name}")
    })
}

fn public_base(headers: &HeaderMap) -> String {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|proto| *proto == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn mpu_create(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(dir): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> Result<Json<Value>, GatewayError> {
    let target = multipart_target(&dir, &p)?;
    let num_parts = p.opt_i64("num_parts")?.unwrap_or(0);
    let num_parts =
        u64::try_from(num_parts).map_err(|_| GatewayError::invalid("Invalid num_parts"))?;
    let upload_id = s
        .artifacts
        .create_multipart(&ctx, &target, num_parts)
        .await?;
    // Parts come back to this gateway (the same namespace prefix the client used).
    let base = format!("{}{}", public_base(&headers), ctx_prefix(&ctx));
    let credentials: Vec<Value> = (1..=num_parts)
        .map(|part| {
            json!({
                "part_number": part,
                "url": format!("{base}/api/2.0/mlflow-artifacts/mpu/part/{upload_id}/{part}/{}", encode_path(&target)),
                "headers": {},
            })
        })
        .collect();
    Ok(Json(
        json!({"upload_id": upload_id, "credentials": credentials}),
    ))
}

/// The `/ns/<namespace>` prefix that routes a part upload back to the
/// caller's namespace (none for `default`).
fn ctx_prefix(ctx: &RequestContext) -> String {
    if ctx.namespace.as_str() == quiver_common::Namespace::DEFAULT {
        String::new()
    } else {
        format!("/ns/{}", ctx.namespace)
    }
}

async fn mpu_part(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((upload_id, part_number, path)): Path<(String, u64, String)>,
    request: Request,
) -> Response {
    closing_on_error(upload_part(&s, &ctx, &upload_id, part_number, &path, request).await)
}

async fn upload_part(
    s: &AppState,
    ctx: &RequestContext,
    upload_id: &str,
    part_number: u64,
    path: &str,
    request: Request,
) -> Result<Response, GatewayError> {
    let etag = s
        .artifacts
        .upload_part(
            ctx,
            path,
            upload_id,
            part_number,
            body_stream(request.into_body()),
        )
        .await?;
    let mut response = Json(json!({})).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

async fn mpu_complete(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(dir): Path<String>,
    p: Params,
) -> Result<Json<Value>, GatewayError> {
    let target = multipart_target(&dir, &p)?;
    let upload_id = p.required_str("upload_id")?;
    let parts = p
        .objects("parts")?
        .iter()
        .map(|part| {
            Ok(apb::CompletedPart {
                part_number: part.opt_i64("part_number")?.unwrap_or(0),
                etag: part.str_or_empty("etag")?,
            })
        })
        .collect::<Result<Vec<_>, GatewayError>>()?;
    s.artifacts
        .complete_multipart(&ctx, &target, &upload_id, parts)
        .await?;
    Ok(Json(json!({})))
}

async fn mpu_abort(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(dir): Path<String>,
    p: Params,
) -> Result<Json<Value>, GatewayError> {
    let target = multipart_target(&dir, &p)?;
    let upload_id = p.required_str("upload_id")?;
    s.artifacts
        .abort_multipart(&ctx, &target, &upload_id)
        .await?;
    Ok(Json(json!({})))
}

/// How long a store-presigned download URL stays valid.
const PRESIGNED_URL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// `GET /presigned/<path>`: MLflow's multipart download. With
/// `artifacts.direct_downloads` and a store that signs URLs, the URL reads
/// straight from the store; otherwise it points back at this gateway's own
/// download route (which serves byte ranges), so the stock client's parallel
/// ranged download works on every backend without store credentials.
async fn presigned(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    let file_size = s.artifacts.stat(&ctx, &path).await?;
    if s.direct_downloads
        && let Some(url) = s
            .artifacts
            .presign_download(&ctx, &path, PRESIGNED_URL_TTL)
            .await?
    {
        return Ok(Json(
            json!({"url": url, "headers": {}, "file_size": file_size}),
        ));
    }
    let url = format!(
        "{}{}/api/2.0/mlflow-artifacts/artifacts/{}",
        public_base(&headers),
        ctx_prefix(&ctx),
        encode_path(&path)
    );
    Ok(Json(
        json!({"url": url, "headers": {}, "file_size": file_size}),
    ))
}

/// Maps a run's `artifact_uri` (`mlflow-artifacts:/<exp>/<run>/artifacts`) to
/// its path in the proxy; other schemes are not served by this server.
fn proxied_root(artifact_uri: &str) -> Result<String, GatewayError> {
    quiver_artifacts::ArtifactPath::from_proxied_uri(artifact_uri)
        .map(|path| path.to_string())
        .ok_or_else(|| GatewayError::invalid("The run's artifacts are not stored by this server."))
}

async fn run_root(
    s: &AppState,
    ctx: &RequestContext,
    run_id: String,
) -> Result<(String, String), GatewayError> {
    let run = s
        .tracking
        .get_run(ctx, pb::GetRunRequest { run_id })
        .await?;
    let uri = run
        .run
        .and_then(|r| r.info)
        .map(|i| i.artifact_uri)
        .unwrap_or_default();
    Ok((proxied_root(&uri)?, uri))
}

async fn list_run_artifacts(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Result<Json<Value>, GatewayError> {
    let (root, uri) = run_root(&s, &ctx, p.run_id()?).await?;
    let relative = p.str_or_empty("path")?;
    let relative = relative.trim_end_matches('/').to_string();
    let full = if relative.is_empty() {
        root
    } else {
        format!("{root}/{relative}")
    };
    let files = s.artifacts.list(&ctx, &full).await?;
    let mut body = files_json(&files, &relative);
    body["root_uri"] = json!(uri);
    Ok(Json(body))
}

/// `GET /get-artifact?run_id=&path=`: a run's file, for the UI.
pub async fn get_run_artifact(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, GatewayError> {
    let (root, _) = run_root(&s, &ctx, p.run_id()?).await?;
    let path = p.required_str("path")?;
    stream_file(&s, &ctx, &format!("{root}/{path}"), &headers).await
}

async fn upload_run_artifact(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    request: Request,
) -> Response {
    closing_on_error(upload_to_run(&s, &ctx, request).await)
}

async fn upload_to_run(
    s: &AppState,
    ctx: &RequestContext,
    request: Request,
) -> Result<Response, GatewayError> {
    let params = Params::from_query(request.uri().query().unwrap_or(""));
    let (root, _) = run_root(s, ctx, params.run_id()?).await?;
    let path = params.required_str("path")?;
    s.artifacts
        .upload(
            ctx,
            &format!("{root}/{path}"),
            body_stream(request.into_body()),
        )
        .await?;
    Ok(Json(json!({})).into_response())
}
