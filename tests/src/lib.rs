//! Test harness shared by Quiver's cross-crate tests: databases on every
//! backend (a fresh Postgres database per test on the cluster that
//! `scripts/with-postgres.sh` starts), the tracking API in-process or over a
//! real gRPC hop, and the real `quiver` binary as a child process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_common::db::{Database, PoolSettings};
use quiver_registry::grpc::{RegistryGrpcClient, RegistryGrpcServer};
use quiver_registry::store::SqlRegistryStore;
use quiver_registry::{RegistryApi, RegistryService};
use quiver_tracking::grpc::{TrackingGrpcClient, TrackingGrpcServer};
use quiver_tracking::store::SqlTrackingStore;
use quiver_tracking::{TrackingApi, TrackingService};
use tokio::net::TcpListener;

/// Where a test's tracking API runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In-process service over SQLite.
    Sqlite,
    /// In-process service over Postgres.
    Postgres,
    /// gRPC client -> gRPC server -> service over SQLite.
    GrpcSqlite,
    /// gRPC client -> gRPC server -> service over Postgres.
    GrpcPostgres,
}

/// Keeps a test's resources alive (temp dir, servers) until dropped.
pub struct Guard {
    _dir: Option<tempfile::TempDir>,
    _shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The database, for tests that inspect it.
    pub database: Database,
}

/// The Postgres URL of the throwaway test cluster.
pub fn pg_url() -> String {
    std::env::var("QUIVER_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "QUIVER_TEST_PG_URL is not set: run the tests through `make test` \
             (scripts/with-postgres.sh starts a throwaway Postgres cluster)"
        )
    })
}

fn settings() -> PoolSettings {
    PoolSettings {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(30),
    }
}

/// Creates a fresh, empty Postgres database on the test cluster; returns its URL.
pub async fn postgres_database_url() -> String {
    let admin_url = pg_url();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url, &settings())
        .await
        .expect("connect to test cluster");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin.writer)
        .await
        .expect("create test database");
    admin.close().await;
    match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("bad QUIVER_TEST_PG_URL"),
    }
}

/// Creates a fresh, migrated Postgres database for one test.
pub async fn postgres_database() -> Database {
    let url = postgres_database_url().await;
    let db = Database::connect(&url, &settings())
        .await
        .expect("connect to test database");
    db.migrate("tracking", quiver_tracking::POSTGRES_MIGRATIONS)
        .await
        .expect("migrate");
    db.migrate("registry", quiver_registry::POSTGRES_MIGRATIONS)
        .await
        .expect("migrate registry");
    db
}

/// Creates a fresh, migrated SQLite database in a temp dir.
pub async fn sqlite_database() -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("quiver.db").display()
    );
    let db = Database::connect(&url, &settings())
        .await
        .expect("open sqlite");
    db.migrate("tracking", quiver_tracking::SQLITE_MIGRATIONS)
        .await
        .expect("migrate");
    db.migrate("registry", quiver_registry::SQLITE_MIGRATIONS)
        .await
        .expect("migrate registry");
    (db, dir)
}

/// Returns the tracking API on `backend`.
pub async fn tracking_api(backend: Backend) -> (Arc<dyn TrackingApi>, Guard) {
    let (database, dir) = match backend {
        Backend::Sqlite | Backend::GrpcSqlite => {
            let (db, dir) = sqlite_database().await;
            (db, Some(dir))
        }
        Backend::Postgres | Backend::GrpcPostgres => (postgres_database().await, None),
    };
    let service: Arc<dyn TrackingApi> = Arc::new(TrackingService::new(Arc::new(
        SqlTrackingStore::new(database.clone()),
    )));
    match backend {
        Backend::Sqlite | Backend::Postgres => (
            service,
            Guard {
                _dir: dir,
                _shutdown: None,
                database,
            },
        ),
        Backend::GrpcSqlite | Backend::GrpcPostgres => {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let address = listener.local_addr().expect("address");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let routes =
                tonic::service::Routes::new(TrackingGrpcServer::new(service).into_service());
            tokio::spawn(async move {
                let _ = quiver_common::grpc::serve(
                    listener,
                    routes,
                    &["quiver.tracking.v1.TrackingService"],
                    async {
                        let _ = rx.await;
                    },
                )
                .await;
            });
            let client = TrackingGrpcClient::connect_lazy(
                &format!("http://{address}"),
                Duration::from_secs(30),
            )
            .expect("client");
            (
                Arc::new(client),
                Guard {
                    _dir: dir,
                    _shutdown: Some(tx),
                    database,
                },
            )
        }
    }
}

/// The registry API on `backend`, with the tracking API it resolves sources
/// through (both over the same database; over gRPC for the `Grpc*` backends,
/// where the registry server calls tracking in-process).
pub async fn registry_api(backend: Backend) -> (Arc<dyn RegistryApi>, Arc<dyn TrackingApi>, Guard) {
    let in_process = match backend {
        Backend::Sqlite | Backend::GrpcSqlite => Backend::Sqlite,
        Backend::Postgres | Backend::GrpcPostgres => Backend::Postgres,
    };
    let (tracking, guard) = tracking_api(in_process).await;
    let registry: Arc<dyn RegistryApi> = Arc::new(RegistryService::new(
        Arc::new(SqlRegistryStore::new(guard.database.clone())),
        tracking.clone(),
    ));
    if backend == in_process {
        return (registry, tracking, guard);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let routes = tonic::service::Routes::new(TrackingGrpcServer::new(tracking).into_service())
        .add_service(RegistryGrpcServer::new(registry).into_service());
    tokio::spawn(async move {
        let _ = quiver_common::grpc::serve(
            listener,
            routes,
            &[
                "quiver.tracking.v1.TrackingService",
                "quiver.registry.v1.RegistryService",
            ],
            async {
                let _ = rx.await;
            },
        )
        .await;
    });
    let endpoint = format!("http://{address}");
    let tracking = TrackingGrpcClient::connect_lazy(&endpoint, Duration::from_secs(30))
        .expect("tracking client");
    let registry = RegistryGrpcClient::connect_lazy(&endpoint, Duration::from_secs(30))
        .expect("registry client");
    let Guard { _dir, database, .. } = guard;
    (
        Arc::new(registry),
        Arc::new(tracking),
        Guard {
            _dir,
            _shutdown: Some(tx),
            database,
        },
    )
}

/// Where a test's artifacts API runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactBackend {
    /// In-process over a local directory.
    Local,
    /// In-process over object_store's in-memory store.
    Memory,
    /// In-process over a real S3-compatible server (`QUIVER_TEST_S3_ENDPOINT`).
    S3,
    /// gRPC client -> gRPC server -> service over a local directory.
    GrpcLocal,
}

/// Keeps an artifacts test's resources alive.
pub struct ArtifactsGuard {
    /// The local root directory, when there is one.
    pub dir: Option<tempfile::TempDir>,
    _shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The S3 endpoint of the test's S3-compatible server.
pub fn s3_endpoint() -> String {
    std::env::var("QUIVER_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "QUIVER_TEST_S3_ENDPOINT is not set: run the tests through `make test` \
             (scripts/with-s3.sh starts a throwaway S3-compatible server)"
        )
    })
}

/// Opens an S3 artifact root in a fresh bucket prefix of the test server.
pub fn s3_root() -> quiver_artifacts::storage::ArtifactRoot {
    let mut options = std::collections::BTreeMap::new();
    options.insert("aws_endpoint".to_string(), s3_endpoint());
    options.insert("aws_allow_http".to_string(), "true".to_string());
    options.insert("aws_region".to_string(), "us-east-1".to_string());
    options.insert("aws_access_key_id".to_string(), "test".to_string());
    options.insert("aws_secret_access_key".to_string(), "test".to_string());
    options.insert(
        "aws_virtual_hosted_style_request".to_string(),
        "false".to_string(),
    );
    let url = format!("s3://quiver-test/{}", uuid::Uuid::new_v4().simple());
    quiver_artifacts::storage::open(&url, &options).expect("open s3 root")
}

/// Returns the artifacts API on `backend`.
pub async fn artifacts_api(
    backend: ArtifactBackend,
) -> (Arc<dyn quiver_artifacts::ArtifactsApi>, ArtifactsGuard) {
    use quiver_artifacts::grpc::{ArtifactsGrpcClient, ArtifactsGrpcServer};
    use quiver_artifacts::{ArtifactsService, storage};
    let empty = std::collections::BTreeMap::new();
    let (root, dir) = match backend {
        ArtifactBackend::Local | ArtifactBackend::GrpcLocal => {
            let dir = tempfile::tempdir().expect("temp dir");
            let root = storage::open(dir.path().to_str().expect("utf-8"), &empty).expect("open");
            (root, Some(dir))
        }
        ArtifactBackend::Memory => (storage::open("memory:///", &empty).expect("open"), None),
        ArtifactBackend::S3 => (s3_root(), None),
    };
    let service: Arc<dyn quiver_artifacts::ArtifactsApi> = Arc::new(ArtifactsService::new(root));
    if backend != ArtifactBackend::GrpcLocal {
        return (
            service,
            ArtifactsGuard {
                dir,
                _shutdown: None,
            },
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let routes = tonic::service::Routes::new(ArtifactsGrpcServer::new(service).into_service());
    tokio::spawn(async move {
        let _ = quiver_common::grpc::serve(
            listener,
            routes,
            &["quiver.artifacts.v1.ArtifactsService"],
            async {
                let _ = rx.await;
            },
        )
        .await;
    });
    let client = ArtifactsGrpcClient::connect_lazy(&format!("http://{address}")).expect("client");
    (
        Arc::new(client),
        ArtifactsGuard {
            dir,
            _shutdown: Some(tx),
        },
    )
}

/// Returns a free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Path of the `quiver` binary built by cargo for this test run.
pub fn quiver_bin() -> PathBuf {
    if let Ok(path) = std::env::var("QUIVER_BIN") {
        return PathBuf::from(path);
    }
    let mut dir = std::env::current_exe().expect("test exe path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("quiver")
}

/// A running `quiver` process, killed when dropped.
pub struct QuiverProcess {
    child: Child,
    /// Its HTTP address, when it runs the gateway.
    pub http: SocketAddr,
    /// Its gRPC address, when it runs tracking.
    pub grpc: SocketAddr,
}

impl QuiverProcess {
    /// Starts `quiver run` with `args` plus fresh ports; waits until it answers.
    pub fn start(args: &[&str], data_dir: &std::path::Path, wait_http: bool) -> QuiverProcess {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new(quiver_bin())
            .arg("run")
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http-addr")
            .arg(http.to_string())
            .arg("--grpc-addr")
            .arg(grpc.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn quiver (build it first: cargo build -p quiver-server)");
        let process = QuiverProcess { child, http, grpc };
        let target = if wait_http { http } else { grpc };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(target).is_err() {
            assert!(
                Instant::now() < deadline,
                "quiver did not start listening on {target}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        process
    }

    /// Base URL of the HTTP gateway.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited 0.
    pub fn stop_gracefully(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for QuiverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
