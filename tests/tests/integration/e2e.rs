//! The real `quiver` binary in both topologies: all-in-one, and tracking +
//! gateway as two processes talking gRPC. Also `quiver migrate`, gRPC health
//! and reflection, and graceful shutdown.

use std::process::Command;
use std::time::Duration;

use quiver_common::{Namespace, RequestContext};
use quiver_e2e::{QuiverProcess, quiver_bin};
use quiver_proto::tracking::v1 as pb;
use quiver_registry::RegistryApi;
use quiver_registry::grpc::RegistryGrpcClient;
use quiver_tracking::TrackingApi;
use quiver_tracking::grpc::TrackingGrpcClient;
use serde_json::{Value, json};

async fn post(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Creates an experiment and a run over REST, logs to it, reads it back.
async fn tracking_flow(base: &str) -> String {
    let client = reqwest::Client::new();
    let api = format!("{base}/api/2.0/mlflow");
    let (status, exp) = post(
        &client,
        &format!("{api}/experiments/create"),
        json!({"name": "e2e"}),
    )
    .await;
    assert_eq!(status, 200, "{exp}");
    let (_, run) = post(
        &client,
        &format!("{api}/runs/create"),
        json!({"experiment_id": exp["experiment_id"], "run_name": "r"}),
    )
    .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let metrics: Vec<Value> = (0..100)
        .map(|i| json!({"key": "loss", "value": 1.0 / f64::from(i + 1), "timestamp": 1, "step": i}))
        .collect();
    let (status, body) = post(
        &client,
        &format!("{api}/runs/log-batch"),
        json!({"run_id": run_id, "metrics": metrics, "params": [{"key": "lr", "value": "0.1"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let history: Value = client
        .get(format!(
            "{api}/metrics/get-history?run_id={run_id}&metric_key=loss&max_results=25000"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["metrics"].as_array().unwrap().len(), 100);
    let (status, search) = post(
        &client,
        &format!("{api}/runs/search"),
        json!({"experiment_ids": [exp["experiment_id"]], "filter": "params.lr = '0.1'"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(search["runs"][0]["info"]["run_id"], run_id);
    run_id
}

#[tokio::test]
async fn all_in_one_serves_rest_and_grpc_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = QuiverProcess::start(&["--services", "all"], dir.path(), true);
    let run_id = tracking_flow(&server.url()).await;

    // The same data through the gRPC API, in the same namespace.
    let grpc = TrackingGrpcClient::connect_lazy(
        &format!("http://{}", server.grpc),
        Duration::from_secs(10),
    )
    .unwrap();
    let ctx = RequestContext::default_namespace();
    let run = grpc
        .get_run(
            &ctx,
            pb::GetRunRequest {
                run_id: run_id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(run.run.unwrap().data.unwrap().params[0].key, "lr");
    // Another namespace over gRPC cannot see it.
    let other = RequestContext::new(Namespace::parse("other").unwrap());
    let error = grpc
        .get_run(&other, pb::GetRunRequest { run_id })
        .await
        .unwrap_err();
    assert_eq!(error.code, quiver_common::ErrorCode::ResourceDoesNotExist);

    // Health and reflection (v1 and v1alpha) are served.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "quiver.tracking.v1.TrackingService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    for v1 in [true, false] {
        let services = list_services(channel.clone(), v1).await;
        assert!(
            services.contains(&"quiver.tracking.v1.TrackingService".to_string()),
            "{services:?}"
        );
    }

    // Wait off the runtime so our idle HTTP/2 connections can still answer
    // the server's GOAWAY/PING while it drains.
    let started = std::time::Instant::now();
    let stopped = tokio::task::spawn_blocking(move || server.stop_gracefully())
        .await
        .unwrap();
    drop((grpc, channel, health));
    assert!(stopped, "quiver did not exit 0 on SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The data survives a restart (durable SQLite file).
    let restarted = QuiverProcess::start(&["--services", "all"], dir.path(), true);
    let response: Value = reqwest::get(format!(
        "{}/api/2.0/mlflow/experiments/get-by-name?experiment_name=e2e",
        restarted.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(response["experiment"]["name"], "e2e");
}

async fn list_services(channel: tonic::transport::Channel, v1: bool) -> Vec<String> {
    use tokio_stream::StreamExt;
    if v1 {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner();
        match stream.next().await.unwrap().unwrap().message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect()
            }
            other => panic!("unexpected {other:?}"),
        }
    } else {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner();
        match stream.next().await.unwrap().unwrap().message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect()
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn split_topology_gateway_and_tracking_processes() {
    let dir = tempfile::tempdir().unwrap();
    let tracking = QuiverProcess::start(&["--services", "tracking"], dir.path(), false);
    let endpoint = format!("http://{}", tracking.grpc);
    let gateway = QuiverProcess::start(
        &["--services", "gateway", "--tracking-endpoint", &endpoint],
        dir.path(),
        true,
    );
    tracking_flow(&gateway.url()).await;
    // Errors cross the gRPC hop with their MLflow code and status.
    let client = reqwest::Client::new();
    let (status, body) = post(
        &client,
        &format!("{}/api/2.0/mlflow/experiments/create", gateway.url()),
        json!({"name": "e2e"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], "RESOURCE_ALREADY_EXISTS");
    let missing: reqwest::Response = client
        .get(format!(
            "{}/api/2.0/mlflow/runs/get?run_id=nope",
            gateway.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    // With tracking gone, the gateway answers 503 (retryable), not a hang or a 500.
    drop(tracking);
    let down = client
        .get(format!(
            "{}/api/2.0/mlflow/experiments/get?experiment_id=0",
            gateway.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status().as_u16(), 503);
    let body: Value = down.json().await.unwrap();
    assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE");
}

#[test]
fn migrate_is_idempotent_and_unknown_roles_fail() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let status = Command::new(quiver_bin())
            .args(["migrate", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(dir.path().join("quiver.db").exists());
    let bad = Command::new(quiver_bin())
        .args(["run", "--services", "nope", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown service"));
}

/// `quiver namespace create NAME` with a config file and data directory.
fn create_namespace(name: &str, config: &str, data_dir: &std::path::Path) {
    let created = Command::new(quiver_bin())
        .args([
            "namespace",
            "create",
            name,
            "--config",
            config,
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(created.success(), "namespace create {name}");
}

#[tokio::test]
async fn config_file_can_require_precreated_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quiver.toml");
    std::fs::write(&config, "[namespaces]\nauto_create = false\n").unwrap();
    let config_arg = config.to_str().unwrap();
    create_namespace("team-a", config_arg, dir.path());
    let server = QuiverProcess::start(&["--config", config_arg], dir.path(), true);
    let get = |ns: &str| {
        reqwest::get(format!(
            "{}/ns/{ns}/api/2.0/mlflow/experiments/get?experiment_id=0",
            server.url()
        ))
    };
    assert_eq!(get("team-a").await.unwrap().status().as_u16(), 200);
    let unknown = get("team-b").await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
    // The registry asks tracking, which owns namespaces: no registered model
    // can be created in (or read from) a namespace the operator did not create.
    let client = reqwest::Client::new();
    let registry = |ns: &str, action: &str| {
        format!(
            "{}/ns/{ns}/api/2.0/mlflow/registered-models/{action}",
            server.url()
        )
    };
    let create_model =
        async |ns: &str| post(&client, &registry(ns, "create"), json!({"name": "churn"})).await;
    let (status, body) = create_model("team-b").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
    let search = client
        .get(registry("team-b", "search"))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status().as_u16(), 404);
    let (status, body) = create_model("team-a").await;
    assert_eq!(status, 200, "{body}");
    // Created later by the operator, team-b works (and the refused create
    // left nothing behind).
    create_namespace("team-b", config_arg, dir.path());
    let found: Value = client
        .get(registry("team-b", "search"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(found.get("registered_models").is_none(), "{found}");
    let (status, body) = create_model("team-b").await;
    assert_eq!(status, 200, "{body}");
    // `default` always exists.
    let default: Value = reqwest::get(format!(
        "{}/api/2.0/mlflow/experiments/get?experiment_id=0",
        server.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(default["experiment"]["name"], "Default");
}

#[tokio::test]
async fn allowed_hosts_come_from_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quiver.toml");
    std::fs::write(
        &config,
        "[gateway]\nallowed_hosts = [\"ml.corp.example\", \"*.svc.cluster.local\"]\n",
    )
    .unwrap();
    let server = QuiverProcess::start(&["--config", config.to_str().unwrap()], dir.path(), true);
    let client = reqwest::Client::new();
    let get = |host: &'static str, path: &'static str| {
        client
            .get(format!("{}{path}", server.url()))
            .header(reqwest::header::HOST, host)
            .send()
    };
    let api = "/api/2.0/mlflow/experiments/get?experiment_id=0";
    for host in ["ml.corp.example", "quiver.team-a.svc.cluster.local:5000"] {
        assert_eq!(
            get(host, api).await.unwrap().status().as_u16(),
            200,
            "{host}"
        );
    }
    // The defaults no longer apply once the list is configured.
    for host in ["127.0.0.1", "evil.example.com"] {
        let refused = get(host, api).await.unwrap();
        assert_eq!(refused.status().as_u16(), 403, "{host}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error_code"], "PERMISSION_DENIED");
    }
    assert_eq!(
        get("evil.example.com", "/health")
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    drop(server);

    // A pattern that does not parse stops the start with the key named.
    std::fs::write(&config, "[gateway]\nallowed_hosts = [\"a*b\"]\n").unwrap();
    let output = Command::new(quiver_bin())
        .args(["run", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path())
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("gateway.allowed_hosts"), "{stderr}");
}

/// A freshly filled Postgres database gets planner statistics without waiting
/// for autovacuum (else the first searches after a bulk load take seconds).
#[tokio::test]
async fn bulk_writes_refresh_postgres_statistics() {
    let (api, guard) = quiver_e2e::tracking_api(quiver_e2e::Backend::Postgres).await;
    let ctx = RequestContext::default_namespace();
    let run = api
        .create_run(
            &ctx,
            pb::CreateRunRequest {
                experiment_id: "0".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .run
        .unwrap()
        .info
        .unwrap()
        .run_id;
    let metrics: Vec<pb::Metric> = (0..1000)
        .map(|i| pb::Metric {
            key: "m".into(),
            value: f64::from(i),
            timestamp: 1,
            step: i64::from(i),
            ..Default::default()
        })
        .collect();
    api.log_batch(
        &ctx,
        pb::LogBatchRequest {
            run_id: run,
            metrics,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        // pg_stats rows exist only once the table has been analyzed.
        let analyzed: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stats WHERE tablename = 'latest_metrics'")
                .fetch_one(&guard.database.reader)
                .await
                .unwrap();
        if analyzed > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "latest_metrics was never analyzed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two registry processes on one Postgres database, each taking half of 40
/// concurrent registrations of one model: versions come out 1..=40 with no
/// gap and no duplicate. Sources are resolved through a third, tracking process.
#[tokio::test]
async fn two_registry_processes_allocate_versions_without_gaps() {
    use quiver_proto::registry::v1 as rpb;
    let dir = tempfile::tempdir().unwrap();
    let url = quiver_e2e::postgres_database_url().await;
    let tracking = QuiverProcess::start(
        &["--services", "tracking", "--database-url", &url],
        dir.path(),
        false,
    );
    let tracking_endpoint = format!("http://{}", tracking.grpc);
    let registries: Vec<QuiverProcess> = (0..2)
        .map(|_| {
            QuiverProcess::start(
                &[
                    "--services",
                    "registry",
                    "--database-url",
                    &url,
                    "--tracking-endpoint",
                    &tracking_endpoint,
                ],
                dir.path(),
                false,
            )
        })
        .collect();
    let ctx = RequestContext::default_namespace();
    let tracking_client =
        TrackingGrpcClient::connect_lazy(&tracking_endpoint, Duration::from_secs(30)).unwrap();
    let run_id = tracking_client
        .create_run(
            &ctx,
            pb::CreateRunRequest {
                experiment_id: "0".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .run
        .unwrap()
        .info
        .unwrap()
        .run_id;
    let clients: Vec<RegistryGrpcClient> = registries
        .iter()
        .map(|process| {
            RegistryGrpcClient::connect_lazy(
                &format!("http://{}", process.grpc),
                Duration::from_secs(30),
            )
            .unwrap()
        })
        .collect();
    clients[0]
        .create_registered_model(
            &ctx,
            rpb::CreateRegisteredModelRequest {
                name: "user-churn-model".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let client = clients[i % 2].clone();
        let ctx = ctx.clone();
        let source = format!("runs:/{run_id}/model");
        tasks.spawn(async move {
            client
                .create_model_version(
                    &ctx,
                    rpb::CreateModelVersionRequest {
                        name: "user-churn-model".into(),
                        source,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .model_version
                .unwrap()
                .version
                .parse::<i64>()
                .unwrap()
        });
    }
    let mut versions = Vec::new();
    while let Some(result) = tasks.join_next().await {
        versions.push(result.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=40).collect::<Vec<i64>>());
    // Both processes see the same registry.
    for client in &clients {
        let found = client
            .search_model_versions(
                &ctx,
                rpb::SearchModelVersionsRequest {
                    filter: "name = 'user-churn-model'".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .model_versions;
        assert_eq!(found.len(), 40);
    }
}

/// Services starting at once on a fresh Postgres database migrate
/// concurrently: every one succeeds and each migration is applied once.
#[tokio::test]
async fn concurrent_migrations_on_a_fresh_postgres_database() {
    let url = quiver_e2e::postgres_database_url().await;
    let settings = quiver_common::db::PoolSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(30),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let url = url.clone();
        let settings = settings.clone();
        tasks.spawn(async move {
            let db = quiver_common::db::Database::connect(&url, &settings)
                .await
                .unwrap();
            if i % 2 == 0 {
                db.migrate("tracking", quiver_tracking::POSTGRES_MIGRATIONS)
                    .await
            } else {
                db.migrate("registry", quiver_registry::POSTGRES_MIGRATIONS)
                    .await
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().expect("concurrent migration failed");
    }
    let db = quiver_common::db::Database::connect(&url, &settings)
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quiver_migrations")
        .fetch_one(&db.reader)
        .await
        .unwrap();
    let expected =
        quiver_tracking::POSTGRES_MIGRATIONS.len() + quiver_registry::POSTGRES_MIGRATIONS.len();
    assert_eq!(applied, i64::try_from(expected).unwrap());
}
