//! The gateway in-process (tower `oneshot` against the real router and the
//! in-process service on SQLite): MLflow's wire rules.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use quiver_e2e::{Backend, Guard};
use quiver_gateway::{AppState, app};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Gateway {
    router: axum::Router,
    _guard: Guard,
    artifacts_guard: quiver_e2e::ArtifactsGuard,
}

/// The gateway with the default site policy plus `quiver.example`, a name
/// a deployment configured (`gateway.allowed_hosts`).
async fn gateway() -> Gateway {
    let (registry, tracking, guard) = quiver_e2e::registry_api(Backend::Sqlite).await;
    let (artifacts, artifacts_guard) =
        quiver_e2e::artifacts_api(quiver_e2e::ArtifactBackend::Local).await;
    let router = app(AppState {
        tracking,
        artifacts,
        registry,
        direct_downloads: false,
        max_body_bytes: 64 * 1024,
        request_timeout: std::time::Duration::from_secs(30),
        site: std::sync::Arc::new(site_policy()),
    });
    Gateway {
        router,
        _guard: guard,
        artifacts_guard,
    }
}

fn site_policy() -> quiver_gateway::site::SitePolicy {
    let config = quiver_common::config::GatewayConfig::default();
    let mut hosts = config.allowed_hosts;
    hosts.push("quiver.example".to_string());
    quiver_gateway::site::SitePolicy::new(&hosts, &config.allowed_origins).unwrap()
}

struct Reply {
    status: StatusCode,
    content_type: String,
    /// The `Connection` header, if any.
    connection: Option<String>,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {}", self.text))
    }
}

impl Gateway {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let connection = response
            .headers()
            .get(header::CONNECTION)
            .map(|v| v.to_str().unwrap().to_string());
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            content_type,
            connection,
            headers,
            text: String::from_utf8_lossy(&bytes).to_string(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }
}

fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("application/json"),
        "{}",
        reply.content_type
    );
    let body = reply.json();
    assert_eq!(body["error_code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn content_type_is_enforced_for_writes() {
    let gw = gateway().await;
    let plain = gw
        .send(
            Request::post("/api/2.0/mlflow/experiments/create")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(r#"{"name": "x"}"#))
                .unwrap(),
        )
        .await;
    assert_error(&plain, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    assert_eq!(
        plain.json()["message"],
        "Bad Request. Content-Type must be one of ['application/json']."
    );
    let missing = gw
        .send(
            Request::post("/api/2.0/mlflow/experiments/create")
                .body(Body::from(r#"{"name": "x"}"#))
                .unwrap(),
        )
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    let with_charset = gw
        .send(
            Request::post("/api/2.0/mlflow/experiments/create")
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(Body::from(r#"{"name": "x"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(with_charset.status, StatusCode::OK, "{}", with_charset.text);
    // Nothing was half-written by the refused requests.
    let search = gw
        .post(
            "/api/2.0/mlflow/experiments/search",
            json!({"max_results": 10}),
        )
        .await;
    assert_eq!(search.json()["experiments"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let gw = gateway().await;
    let unknown = gw.get("/api/2.0/mlflow/nope").await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "ENDPOINT_NOT_FOUND");
    let wrong_method = gw.get("/api/2.0/mlflow/runs/create").await;
    assert_error(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "ENDPOINT_NOT_FOUND",
    );
}

#[tokio::test]
async fn misc_endpoints() {
    let gw = gateway().await;
    let health = gw.get("/health").await;
    assert_eq!(
        (health.status, health.text.as_str()),
        (StatusCode::OK, "OK")
    );
    let version = gw.get("/version").await;
    assert_eq!(version.status, StatusCode::OK);
    assert!(version.text.starts_with("3."));
    let info = gw.get("/api/3.0/mlflow/server-info").await;
    assert_eq!(info.json()["multipart_uploads_enabled"], true);
    assert_eq!(info.json()["artifact_serving_enabled"], true);
}

#[tokio::test]
async fn json_shapes_match_mlflow() {
    let gw = gateway().await;
    let exp = gw
        .post(
            "/api/2.0/mlflow/experiments/create",
            json!({"name": "shapes"}),
        )
        .await
        .json();
    let experiment_id = exp["experiment_id"].as_str().unwrap().to_string();
    // int64 as a string is accepted; run_uuid mirrors run_id; end_time omitted while unset.
    let run = gw
        .post(
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": experiment_id, "start_time": "1795798146263", "run_name": "r"}),
        )
        .await
        .json();
    let info = &run["run"]["info"];
    assert_eq!(info["run_uuid"], info["run_id"]);
    assert_eq!(info["start_time"], 1_795_798_146_263_i64);
    assert_eq!(info["status"], "RUNNING");
    assert!(info.get("end_time").is_none());
    assert_eq!(run["run"]["inputs"], json!({}));
    let run_id = info["run_id"].as_str().unwrap().to_string();
    // run_uuid alone is accepted on POST.
    let logged = gw
        .post(
            "/api/2.0/mlflow/runs/log-metric",
            json!({"run_uuid": run_id, "key": "m", "value": "NaN", "timestamp": 5}),
        )
        .await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.text);
    assert_eq!(logged.json(), json!({}));
    let got = gw
        .get(&format!(
            "/api/2.0/mlflow/runs/get?run_uuid={run_id}&run_id={run_id}"
        ))
        .await
        .json();
    let metric = &got["run"]["data"]["metrics"][0];
    assert_eq!(metric["value"], "NaN");
    assert_eq!(metric["timestamp"], 5);
    assert_eq!(metric["step"], 0);
    let updated = gw
        .post(
            "/api/2.0/mlflow/runs/update",
            json!({"run_id": run_id, "status": "FINISHED", "end_time": 9}),
        )
        .await
        .json();
    assert_eq!(updated["run_info"]["status"], "FINISHED");
    assert_eq!(updated["run_info"]["end_time"], 9);
    // An unknown enum name is ignored, as MLflow does.
    let ignored = gw
        .post(
            "/api/2.0/mlflow/runs/update",
            json!({"run_id": run_id, "status": "DONE"}),
        )
        .await
        .json();
    assert_eq!(ignored["run_info"]["status"], "FINISHED");
    // The ajax-api copy serves the same.
    let ajax = gw
        .get(&format!("/ajax-api/2.0/mlflow/runs/get?run_id={run_id}"))
        .await;
    assert_eq!(ajax.status, StatusCode::OK);
    // Empty history: {} with no metrics key.
    let empty = gw
        .get(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=nope"
        ))
        .await
        .json();
    assert_eq!(empty, json!({}));
}

#[tokio::test]
async fn client_mistakes_are_400_never_5xx() {
    let gw = gateway().await;
    let wrong_type = gw
        .post("/api/2.0/mlflow/experiments/create", json!({"name": 123}))
        .await;
    assert_error(
        &wrong_type,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    assert_eq!(
        wrong_type.json()["message"],
        "Invalid value 123 for parameter 'name' supplied: Hint: Value was of type 'int'. See the API docs for more information about request parameters."
    );
    let missing = gw
        .post("/api/2.0/mlflow/experiments/create", json!({}))
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    let garbage = gw
        .send(
            Request::post("/api/2.0/mlflow/experiments/create")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_error(&garbage, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    let run = gw
        .post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "0"}))
        .await
        .json();
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let bad_value = gw
        .post(
            "/api/2.0/mlflow/runs/log-metric",
            json!({"run_id": run_id, "key": "m", "value": [1], "timestamp": 1}),
        )
        .await;
    assert_error(
        &bad_value,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    let bad_batch = gw
        .post(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "params": ["x"]}),
        )
        .await;
    assert_error(
        &bad_batch,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    let huge_id = gw
        .get("/api/2.0/mlflow/experiments/get?experiment_id=99999999999999999999999")
        .await;
    assert_error(&huge_id, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    let bad_bool_view = gw
        .get("/api/2.0/mlflow/runs/search?experiment_ids=0&max_results=0")
        .await;
    assert_error(
        &bad_bool_view,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    let too_big = gw
        .send(
            Request::post("/api/2.0/mlflow/runs/log-batch")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(
                    r#"{{"run_id": "{run_id}", "tags": [{{"key": "k", "value": "{}"}}]}}"#,
                    "x".repeat(70_000)
                )))
                .unwrap(),
        )
        .await;
    assert_error(&too_big, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    let deep = format!(
        r#"{{"name": "x", "tags": {}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let deep = gw
        .send(
            Request::post("/api/2.0/mlflow/experiments/create")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(deep))
                .unwrap(),
        )
        .await;
    assert_error(&deep, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    let hostile_filter = gw
        .post("/api/2.0/mlflow/runs/search", json!({"experiment_ids": ["0"], "filter": "metrics.a > 1 AND ".repeat(5000) + "metrics.a > 1"}))
        .await;
    assert_error(
        &hostile_filter,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    let injection = gw
        .post(
            "/api/2.0/mlflow/runs/search",
            json!({"experiment_ids": ["0"], "filter": "params.x = 'a'' OR 1=1 --'"}),
        )
        .await;
    assert_eq!(injection.status, StatusCode::OK, "{}", injection.text);
    assert_eq!(injection.json(), json!({}));
}

#[tokio::test]
async fn namespace_from_prefix_or_header() {
    let gw = gateway().await;
    let a = gw
        .post(
            "/ns/team-a/api/2.0/mlflow/experiments/create",
            json!({"name": "same"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let b = gw
        .send(
            Request::post("/api/2.0/mlflow/experiments/create")
                .header(header::CONTENT_TYPE, "application/json")
                .header("X-MLFLOW-WORKSPACE", "team-b")
                .body(Body::from(r#"{"name": "same"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    // The default namespace has neither.
    let default = gw
        .get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=same")
        .await;
    assert_error(&default, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
    let in_a = gw
        .get("/ns/team-a/api/2.0/mlflow/experiments/get-by-name?experiment_name=same")
        .await
        .json();
    assert_eq!(in_a["experiment"]["workspace"], "team-a");
    let invalid = gw
        .get("/ns/Bad_Name/api/2.0/mlflow/experiments/get?experiment_id=0")
        .await;
    assert_error(&invalid, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    let traversal = gw
        .get("/ns/../api/2.0/mlflow/experiments/get?experiment_id=0")
        .await;
    assert!(traversal.status.is_client_error(), "{}", traversal.status);
}

#[tokio::test]
async fn full_history_is_streamed_in_order() {
    let gw = gateway().await;
    let run = gw
        .post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "0"}))
        .await
        .json();
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    for chunk in 0..25 {
        let metrics: Vec<Value> = (0..1000)
            .map(|i| {
                let step = chunk * 1000 + i;
                json!({"key": "loss", "value": f64::from(step) / 7.0, "timestamp": 1000 + step, "step": step})
            })
            .collect();
        // Bodies of 1000 points exceed this test gateway's 64 KiB limit: send halves.
        for half in metrics.chunks(500) {
            let reply = gw
                .post(
                    "/api/2.0/mlflow/runs/log-batch",
                    json!({"run_id": run_id, "metrics": half}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        }
    }
    let all = gw
        .get(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss"
        ))
        .await;
    assert_eq!(all.status, StatusCode::OK);
    let body = all.json();
    let metrics = body["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 25_000);
    assert!(body.get("next_page_token").is_none());
    for (index, metric) in metrics.iter().enumerate() {
        assert_eq!(metric["step"], index as i64);
    }
    assert_eq!(metrics[7]["value"], 1.0);
}

impl Gateway {
    async fn put_bytes(&self, path: &str, data: &[u8]) -> Reply {
        self.send(
            Request::put(path)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::from(data.to_vec()))
                .unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn artifact_proxy_round_trip() {
    let gw = gateway().await;
    let base = "/api/2.0/mlflow-artifacts/artifacts";
    assert_eq!(
        gw.put_bytes(&format!("{base}/1/r/artifacts/notes.txt"), b"hello")
            .await
            .json(),
        json!({})
    );
    gw.put_bytes(&format!("{base}/1/r/artifacts/dir/a%20b.bin"), &[7u8; 1000])
        .await;
    let listed = gw.get(&format!("{base}?path=1/r/artifacts")).await.json();
    assert_eq!(
        listed,
        json!({"files": [{"path": "dir", "is_dir": true}, {"path": "notes.txt", "is_dir": false, "file_size": 5}]})
    );
    assert_eq!(
        gw.get(&format!("{base}?path=1/r/artifacts/none"))
            .await
            .json(),
        json!({})
    );
    let file = gw
        .send(
            Request::get(format!("{base}/1/r/artifacts/notes.txt"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.text, "hello");
    assert!(
        file.content_type.starts_with("text/plain"),
        "{}",
        file.content_type
    );
    let spaced = gw.get(&format!("{base}/1/r/artifacts/dir/a%20b.bin")).await;
    assert_eq!(spaced.text.len(), 1000);
    // Byte ranges.
    let response = gw
        .router
        .clone()
        .oneshot(
            Request::get(format!("{base}/1/r/artifacts/notes.txt"))
                .header(header::RANGE, "bytes=1-3")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 1-3/5");
    assert!(
        response.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("notes.txt")
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"ell");
    let missing = gw.get(&format!("{base}/1/r/artifacts/none.txt")).await;
    assert_error(&missing, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(
        missing.json()["message"],
        "No such artifact: '1/r/artifacts/none.txt'"
    );
    let deleted = gw
        .send(
            Request::delete(format!("{base}/1/r/artifacts/dir"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        gw.get(&format!("{base}?path=1/r/artifacts")).await.json()["files"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let info = gw.get("/api/3.0/mlflow/server-info").await.json();
    assert_eq!(info["artifact_serving_enabled"], true);
    assert_eq!(info["multipart_uploads_enabled"], true);
}

#[tokio::test]
async fn multipart_upload_through_the_proxy() {
    let gw = gateway().await;
    let created = gw
        .send(
            Request::post("/ns/team-a/api/2.0/mlflow-artifacts/mpu/create/1/r/artifacts")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::HOST, "quiver.example:5000")
                .body(Body::from(
                    r#"{"path": "/home/me/big.bin", "num_parts": 2}"#,
                ))
                .unwrap(),
        )
        .await
        .json();
    let upload_id = created["upload_id"].as_str().unwrap().to_string();
    let credentials = created["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 2);
    let mut parts = Vec::new();
    for (index, credential) in credentials.iter().enumerate() {
        let url = credential["url"].as_str().unwrap();
        let path = url
            .strip_prefix("http://quiver.example:5000")
            .expect("absolute URL on this gateway");
        assert!(path.starts_with("/ns/team-a/"), "{path}");
        let response = gw
            .router
            .clone()
            .oneshot(
                Request::put(path)
                    .body(Body::from(vec![index as u8 + 1; 100_000]))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let etag = response.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .to_string();
        parts.push(json!({"part_number": credential["part_number"], "etag": etag, "url": url}));
    }
    let completed = gw
        .post(
            "/ns/team-a/api/2.0/mlflow-artifacts/mpu/complete/1/r/artifacts",
            json!({"path": "big.bin", "upload_id": upload_id, "parts": parts}),
        )
        .await;
    assert_eq!(completed.status, StatusCode::OK, "{}", completed.text);
    let file = gw
        .get("/ns/team-a/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/big.bin")
        .await;
    assert_eq!(file.text.len(), 200_000);
    // The default namespace does not see team-a's file.
    let other = gw
        .get("/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/big.bin")
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_paths_through_every_artifact_route() {
    let gw = gateway().await;
    let run = gw
        .post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "0"}))
        .await
        .json();
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    for hostile in [
        "..%2f..%2fetc%2fpasswd",
        "%252e%252e/%252e%252e/etc/passwd",
        "a/..%5c..%5cb",
        "%2fetc%2fpasswd",
        "a%00b",
        "a;b",
        "C:%5cwindows",
    ] {
        let base = "/api/2.0/mlflow-artifacts";
        let routes = [
            Request::put(format!("{base}/artifacts/{hostile}"))
                .body(Body::from("x"))
                .unwrap(),
            Request::get(format!("{base}/artifacts/{hostile}"))
                .body(Body::empty())
                .unwrap(),
            Request::delete(format!("{base}/artifacts/{hostile}"))
                .body(Body::empty())
                .unwrap(),
            Request::get(format!("{base}/artifacts?path={hostile}"))
                .body(Body::empty())
                .unwrap(),
            Request::get(format!("/get-artifact?run_id={run_id}&path={hostile}"))
                .body(Body::empty())
                .unwrap(),
            Request::get(format!(
                "/api/2.0/mlflow/artifacts/list?run_id={run_id}&path={hostile}"
            ))
            .body(Body::empty())
            .unwrap(),
            Request::post(format!(
                "/ajax-api/2.0/mlflow/upload-artifact?run_id={run_id}&path={hostile}"
            ))
            .body(Body::from("x"))
            .unwrap(),
            Request::post(format!("{base}/mpu/create/{hostile}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"path": "f", "num_parts": 1}"#))
                .unwrap(),
        ];
        for request in routes {
            let description = format!("{} {}", request.method(), request.uri());
            // An upload refused before its body was read closes the
            // connection, and says so (else a client reuses it).
            let refused_upload =
                request.method() == "PUT" || description.contains("upload-artifact");
            let reply = gw.send(request).await;
            assert!(
                reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::NOT_FOUND,
                "{description}: {} {}",
                reply.status,
                reply.text
            );
            assert!(reply.status.is_client_error());
            if refused_upload {
                assert_eq!(reply.connection.as_deref(), Some("close"), "{description}");
            }
        }
    }
    // Nothing was written outside (or inside) the root.
    let root = gw.artifacts_guard.dir.as_ref().unwrap().path();
    let written: Vec<_> = walk(root);
    assert!(written.is_empty(), "{written:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn run_artifact_endpoints() {
    let gw = gateway().await;
    let run = gw
        .post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "0"}))
        .await
        .json();
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let uploaded = gw
        .send(
            Request::post(format!(
                "/ajax-api/2.0/mlflow/upload-artifact?run_id={run_id}&path=sub/file.txt"
            ))
            .body(Body::from("ui upload"))
            .unwrap(),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text);
    let listed = gw
        .get(&format!(
            "/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=sub"
        ))
        .await
        .json();
    assert_eq!(listed["root_uri"], run["run"]["info"]["artifact_uri"]);
    assert_eq!(
        listed["files"],
        json!([{"path": "sub/file.txt", "is_dir": false, "file_size": 9}])
    );
    let file = gw
        .get(&format!("/get-artifact?run_id={run_id}&path=sub/file.txt"))
        .await;
    assert_eq!(file.text, "ui upload");
    let unknown = gw.get("/get-artifact?run_id=nope&path=x").await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn logged_models_json_matches_mlflow() {
    let g = gateway().await;
    let base = "/api/2.0/mlflow";
    let exp = g
        .post(
            &format!("{base}/experiments/create"),
            json!({"name": "lm-json"}),
        )
        .await
        .json()["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = g
        .post(
            &format!("{base}/logged-models"),
            json!({"experiment_id": exp, "name": "lm1", "model_type": "sklearn",
                   "params": [{"key": "C", "value": "1.0"}], "tags": [{"key": "k", "value": "v"}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let model = created.json()["model"].clone();
    let id = model["info"]["model_id"].as_str().unwrap().to_string();
    let info = model["info"].as_object().unwrap();
    let mut keys: Vec<&str> = info.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "artifact_uri",
            "creation_timestamp_ms",
            "experiment_id",
            "last_updated_timestamp_ms",
            "model_id",
            "model_type",
            "name",
            "status",
            "tags"
        ]
    );
    assert!(info["creation_timestamp_ms"].is_i64());
    assert_eq!(info["status"], "LOGGED_MODEL_PENDING");
    assert_eq!(
        info["artifact_uri"],
        format!("mlflow-artifacts:/{exp}/models/{id}/artifacts")
    );
    assert_eq!(
        model["data"],
        json!({"params": [{"key": "C", "value": "1.0"}]})
    );

    // The UI's ajax-api prefix serves the same routes.
    let got = g
        .get(&format!("/ajax-api/2.0/mlflow/logged-models/{id}"))
        .await;
    assert_eq!(got.json()["model"], model);

    let send = |method: &str, path: String, body: Option<Value>| {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        g.send(request.body(body).unwrap())
    };
    let url = format!("{base}/logged-models/{id}");
    let finalized = send(
        "PATCH",
        url.clone(),
        Some(json!({"model_id": id, "status": "LOGGED_MODEL_READY"})),
    )
    .await;
    assert_eq!(finalized.status, StatusCode::OK, "{}", finalized.text);
    assert_eq!(
        finalized.json()["model"]["info"]["status"],
        "LOGGED_MODEL_READY"
    );
    let bad_status = send("PATCH", url.clone(), Some(json!({"status": "NOPE"}))).await;
    assert_error(
        &bad_status,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    let tags = send(
        "PATCH",
        format!("{url}/tags"),
        Some(json!({"tags": [{"key": "stage", "value": "dev"}]})),
    )
    .await;
    assert_eq!((tags.status, tags.json()), (StatusCode::OK, json!({})));
    let untag = send("DELETE", format!("{url}/tags/stage"), None).await;
    assert_eq!((untag.status, untag.json()), (StatusCode::OK, json!({})));
    let params = g
        .post(
            &format!("{url}/params"),
            json!({"model_id": id, "params": [{"key": "p", "value": "1"}]}),
        )
        .await;
    assert_eq!((params.status, params.json()), (StatusCode::OK, json!({})));

    // Metrics logged with model_id appear as MLflow Metric JSON.
    let run = g
        .post(
            &format!("{base}/runs/create"),
            json!({"experiment_id": exp, "start_time": 1}),
        )
        .await
        .json()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    g.post(
        &format!("{base}/runs/log-metric"),
        json!({"run_id": run, "key": "acc", "value": 0.8, "timestamp": 5, "step": 0, "model_id": id}),
    )
    .await;
    let search = g
        .post(
            &format!("{base}/logged-models/search"),
            json!({"experiment_ids": [exp], "filter": "name = 'lm1' AND params.C = '1.0'",
                   "order_by": [{"field_name": "creation_timestamp", "ascending": false}],
                   "max_results": 10}),
        )
        .await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.text);
    let body = search.json();
    assert!(body.get("next_page_token").is_none());
    let found = &body["models"][0];
    assert_eq!(
        found["data"]["metrics"],
        json!([{"key": "acc", "value": 0.8, "timestamp": 5, "step": 0, "model_id": id, "run_id": run}])
    );
    let none = g
        .post(
            &format!("{base}/logged-models/search"),
            json!({"experiment_ids": [exp], "filter": "name = 'nope'"}),
        )
        .await;
    assert_eq!(none.json(), json!({}));
    let bad_order = g
        .post(
            &format!("{base}/logged-models/search"),
            json!({"experiment_ids": [exp], "order_by": ["name"]}),
        )
        .await;
    assert_error(
        &bad_order,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );

    let deleted = send("DELETE", url.clone(), None).await;
    assert_eq!(
        (deleted.status, deleted.json()),
        (StatusCode::OK, json!({}))
    );
    let missing = g.get(&url).await;
    assert_error(&missing, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(
        missing.json()["message"],
        format!("Logged model with ID '{id}' not found.")
    );
    let allowed = g.get(&format!("{url}?allow_deleted=true")).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
    let no_exp = g.post(&format!("{base}/logged-models"), json!({})).await;
    assert_error(&no_exp, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
}

/// The experiments named `name` in the default namespace.
async fn experiments_named(gw: &Gateway, name: &str) -> usize {
    let found = gw
        .post(
            "/api/2.0/mlflow/experiments/search",
            json!({"max_results": 100, "filter": format!("name = '{name}'")}),
        )
        .await
        .json();
    found["experiments"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn hosts_this_server_does_not_answer_to_are_refused() {
    let gw = gateway().await;
    let search = |host: &'static str, path: &'static str| {
        Request::get(path)
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    };
    let api = "/api/2.0/mlflow/experiments/search?max_results=10";
    // DNS rebinding: a page at evil.example.com whose name now resolves to
    // the server talks to it with its own name as Host.
    for (host, path) in [
        ("evil.example.com:5000", api),
        (
            "evil.example.com",
            "/ns/team-a/api/2.0/mlflow/experiments/search?max_results=10",
        ),
        ("localhost.evil.example.com:5000", api),
        ("8.8.8.8:5000", "/api/2.0/mlflow-artifacts/artifacts?path="),
    ] {
        let reply = gw.send(search(host, path)).await;
        assert_error(&reply, StatusCode::FORBIDDEN, "PERMISSION_DENIED");
        assert!(
            reply.json()["message"].as_str().unwrap().contains("Host"),
            "{}",
            reply.text
        );
    }
    for host in [
        "127.0.0.1:5000",
        "localhost:5000",
        "[::1]:5000",
        "192.168.1.5:5000",
        "10.0.0.7",
    ] {
        let reply = gw.send(search(host, api)).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}: {}", reply.text);
    }
    // Probes may use any name.
    let health = gw.send(search("evil.example.com", "/health")).await;
    assert_eq!(health.status, StatusCode::OK);
    // Every answer, refusals included, forbids sniffing and framing by others.
    for reply in [
        gw.send(search("127.0.0.1:5000", api)).await,
        gw.send(search("evil.example.com", api)).await,
        gw.get("/no/such/route").await,
    ] {
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    }
}

#[tokio::test]
async fn cross_site_writes_are_refused_and_leave_nothing() {
    let gw = gateway().await;
    let create = |origin: &str, name: &str| {
        Request::post("/api/2.0/mlflow/experiments/create")
            .header(header::HOST, "127.0.0.1:5000")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"name": name}).to_string()))
            .unwrap()
    };
    for origin in [
        "https://evil.example.com",
        "null",
        "http://localhost.evil.example.com",
    ] {
        let reply = gw.send(create(origin, "x-site")).await;
        assert_error(&reply, StatusCode::FORBIDDEN, "PERMISSION_DENIED");
        assert_eq!(reply.connection.as_deref(), Some("close"));
        assert!(
            reply
                .headers
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }
    assert_eq!(experiments_named(&gw, "x-site").await, 0);

    // An artifact upload takes any body type, so only the Origin check stops
    // a page elsewhere from posting one.
    let run = gw
        .post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "0"}))
        .await
        .json();
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let upload = gw
        .send(
            Request::post(format!(
                "/ajax-api/2.0/mlflow/upload-artifact?run_id={run_id}&path=planted.txt"
            ))
            .header(header::HOST, "127.0.0.1:5000")
            .header(header::ORIGIN, "https://evil.example.com")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("planted"))
            .unwrap(),
        )
        .await;
    assert_error(&upload, StatusCode::FORBIDDEN, "PERMISSION_DENIED");
    let root = gw.artifacts_guard.dir.as_ref().unwrap().path();
    assert!(walk(root).is_empty(), "{:?}", walk(root));

    // The server's own pages, allowed origins and clients without Origin pass;
    // an allowed origin may read the answer.
    let own = gw.send(create("http://127.0.0.1:5000", "own-page")).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let notebook = gw.send(create("http://localhost:8888", "notebook")).await;
    assert_eq!(notebook.status, StatusCode::OK, "{}", notebook.text);
    assert_eq!(
        notebook.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:8888"
    );
    assert_eq!(experiments_named(&gw, "own-page").await, 1);
    assert_eq!(experiments_named(&gw, "notebook").await, 1);

    // Reads from elsewhere are answered, without CORS headers: the browser
    // keeps the answer from the page.
    let read = gw
        .send(
            Request::get("/api/2.0/mlflow/experiments/search?max_results=10")
                .header(header::HOST, "127.0.0.1:5000")
                .header(header::ORIGIN, "https://evil.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(
        read.headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn cors_preflight_answers_allowed_origins_only() {
    let gw = gateway().await;
    let preflight = |origin: &str| {
        Request::options("/api/2.0/mlflow/experiments/create")
            .header(header::HOST, "127.0.0.1:5000")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = gw.send(preflight("http://localhost:3000")).await;
    assert!(allowed.status.is_success(), "{}", allowed.status);
    assert_eq!(
        allowed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:3000"
    );
    let methods = allowed.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let refused = gw.send(preflight("https://evil.example.com")).await;
    assert!(
        refused
            .headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}
