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

/// Creates a fresh, migrated Postgres database for one test.
pub async fn postgres_database() -> Database {
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
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("bad QUIVER_TEST_PG_URL"),
    };
    let db = Database::connect(&url, &settings())
        .await
        .expect("connect to test database");
    db.migrate("tracking", quiver_tracking::POSTGRES_MIGRATIONS)
        .await
        .expect("migrate");
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
