//! Wiring of roles: which services run in this process, how they reach each
//! other (in-process `Arc<dyn Api>` or gRPC client), and shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use quiver_artifacts::grpc::{ArtifactsGrpcClient, ArtifactsGrpcServer};
use quiver_artifacts::{ArtifactsApi, ArtifactsService};
use quiver_common::config::Config;
use quiver_common::db::{Database, PoolSettings};
use quiver_gateway::AppState;
use quiver_registry::grpc::{RegistryGrpcClient, RegistryGrpcServer};
use quiver_registry::store::SqlRegistryStore;
use quiver_registry::{RegistryApi, RegistryService};
use quiver_tracking::grpc::{TrackingGrpcClient, TrackingGrpcServer};
use quiver_tracking::store::SqlTrackingStore;
use quiver_tracking::{TrackingApi, TrackingService};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub tracking: bool,
    pub artifacts: bool,
    pub registry: bool,
    pub gateway: bool,
}

impl Roles {
    pub fn parse(names: &[String]) -> anyhow::Result<Roles> {
        let mut roles = Roles {
            tracking: false,
            artifacts: false,
            registry: false,
            gateway: false,
        };
        for name in names {
            match name.trim() {
                "all" => {
                    roles.tracking = true;
                    roles.artifacts = true;
                    roles.registry = true;
                    roles.gateway = true;
                }
                "tracking" => roles.tracking = true,
                "artifacts" => roles.artifacts = true,
                "registry" => roles.registry = true,
                "gateway" => roles.gateway = true,
                other => bail!(
                    "unknown service '{other}' (expected all, tracking, artifacts, registry or gateway)"
                ),
            }
        }
        if !roles.tracking && !roles.artifacts && !roles.registry && !roles.gateway {
            bail!("no service selected");
        }
        Ok(roles)
    }
}

pub(crate) async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!(
                "creating data directory {}",
                config.server.data_dir.display()
            )
        })?;
    }
    let settings = PoolSettings {
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_secs(config.database.acquire_timeout_seconds),
    };
    Database::connect(&url, &settings)
        .await
        .context("connecting to the database")
}

/// Applies the migrations of the services that own tables.
async fn apply_migrations(db: &Database, tracking: bool, registry: bool) -> anyhow::Result<()> {
    if tracking {
        db.migrate("tracking", quiver_tracking::migrations(db.dialect))
            .await
            .context("applying tracking migrations")?;
        let moved = quiver_tracking::store::sql::convert_legacy_history(db)
            .await
            .map_err(|error| anyhow::anyhow!(error.message))
            .context("moving metric history into chunks")?;
        if moved > 0 {
            tracing::info!(points = moved, "metric history moved into chunks");
        }
    }
    if registry {
        db.migrate("registry", quiver_registry::migrations(db.dialect))
            .await
            .context("applying registry migrations")?;
        let written = SqlRegistryStore::new(db.clone())
            .write_missing_cards()
            .await
            .map_err(|error| anyhow::anyhow!(error.message))
            .context("writing registry cards")?;
        if written > 0 {
            tracing::info!(models = written, "registry cards written");
        }
    }
    Ok(())
}

/// `quiver migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    apply_migrations(&db, true, true).await?;
    db.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// `quiver namespace create NAME`.
pub async fn create_namespace(config: &Config, name: &str) -> anyhow::Result<()> {
    let namespace =
        quiver_common::Namespace::parse(name).map_err(|error| anyhow::anyhow!(error.message))?;
    let db = open_database(config).await?;
    db.migrate("tracking", quiver_tracking::migrations(db.dialect))
        .await
        .context("applying tracking migrations")?;
    let store = SqlTrackingStore::new(db.clone());
    quiver_tracking::store::TrackingStore::ensure_namespace(
        &store,
        &namespace,
        quiver_common::time::now_millis(),
    )
    .await
    .map_err(|error| anyhow::anyhow!(error.message))?;
    db.close().await;
    eprintln!("namespace '{namespace}' is ready");
    Ok(())
}

/// `quiver run`.
pub async fn run(config: Config, roles: Roles) -> anyhow::Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let signal = shutdown_rx.clone();
    let wait_for = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let database = if roles.tracking || roles.registry {
        let db = open_database(&config).await?;
        if config.database.migrate_on_start {
            apply_migrations(&db, roles.tracking, roles.registry).await?;
        }
        Some(db)
    } else {
        None
    };
    let tracking: Arc<dyn TrackingApi> = if let (true, Some(db)) = (roles.tracking, &database) {
        let store = Arc::new(SqlTrackingStore::new(db.clone()));
        Arc::new(
            TrackingService::new(store)
                .with_auto_create_namespaces(config.namespaces.auto_create)
                .with_allowed_artifact_locations(&config.artifacts.allowed_locations)?,
        )
    } else {
        Arc::new(
            TrackingGrpcClient::connect_lazy(
                &config.remote.tracking_endpoint,
                Duration::from_secs(config.remote.request_timeout_seconds),
            )
            .context("creating the tracking client")?,
        )
    };

    let artifacts: Arc<dyn ArtifactsApi> = if roles.artifacts {
        let root =
            quiver_artifacts::storage::open(&config.artifacts_root(), &config.artifacts.options)
                .map_err(|error| anyhow::anyhow!(error))
                .context("opening the artifact root")?;
        tracing::info!(root = %root.url, "artifact root");
        Arc::new(ArtifactsService::new(root))
    } else {
        Arc::new(
            ArtifactsGrpcClient::connect_lazy(&config.remote.artifacts_endpoint)
                .context("creating the artifacts client")?,
        )
    };

    let registry: Arc<dyn RegistryApi> = if let (true, Some(db)) = (roles.registry, &database) {
        let store = Arc::new(SqlRegistryStore::new(db.clone()));
        Arc::new(RegistryService::new(store, tracking.clone()))
    } else {
        Arc::new(
            RegistryGrpcClient::connect_lazy(
                &config.remote.registry_endpoint,
                Duration::from_secs(config.remote.request_timeout_seconds),
            )
            .context("creating the registry client")?,
        )
    };

    let mut tasks = tokio::task::JoinSet::new();
    if roles.tracking || roles.artifacts || roles.registry {
        let listener = TcpListener::bind(&config.server.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC address {}", config.server.grpc_addr))?;
        let address = listener.local_addr()?;
        let mut routes = tonic::service::Routes::default();
        let mut names: Vec<&'static str> = Vec::new();
        if roles.tracking {
            routes = routes.add_service(TrackingGrpcServer::new(tracking.clone()).into_service());
            names.push("quiver.tracking.v1.TrackingService");
        }
        if roles.artifacts {
            routes = routes.add_service(ArtifactsGrpcServer::new(artifacts.clone()).into_service());
            names.push("quiver.artifacts.v1.ArtifactsService");
        }
        if roles.registry {
            routes = routes.add_service(RegistryGrpcServer::new(registry.clone()).into_service());
            names.push("quiver.registry.v1.RegistryService");
        }
        let stop = wait_for(signal.clone());
        tasks.spawn(async move {
            quiver_common::grpc::serve(listener, routes, &names, stop)
                .await
                .context("gRPC server")
        });
        tracing::info!(%address, "gRPC services listening");
    }
    if roles.gateway {
        let site = quiver_gateway::site::SitePolicy::new(
            &config.gateway.allowed_hosts,
            &config.gateway.allowed_origins,
        )
        .map_err(|error| anyhow::anyhow!("invalid configuration: {error}"))?;
        let listener = TcpListener::bind(&config.server.http_addr)
            .await
            .with_context(|| format!("binding HTTP address {}", config.server.http_addr))?;
        let address = listener.local_addr()?;
        let app = quiver_gateway::app(AppState {
            tracking: tracking.clone(),
            artifacts: artifacts.clone(),
            registry: registry.clone(),
            direct_downloads: config.artifacts.direct_downloads,
            max_body_bytes: config.gateway.max_body_bytes,
            request_timeout: Duration::from_secs(config.gateway.request_timeout_seconds),
            site: Arc::new(site),
        });
        let stop = wait_for(signal.clone());
        tasks.spawn(async move {
            quiver_gateway::serve(listener, app, stop)
                .await
                .context("HTTP gateway")
        });
        tracing::info!(%address, "HTTP gateway listening");
        eprintln!("Quiver is running: MLFLOW_TRACKING_URI=http://{address}");
    }

    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    tokio::select! {
        () = quiver_common::grpc::shutdown_signal() => {}
        Some(result) = tasks.join_next() => {
            // A server stopped on its own: that is a failure.
            result.context("server task panicked")??;
            bail!("a server stopped unexpectedly");
        }
    }
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(grace, async {
        while let Some(result) = tasks.join_next().await {
            if let Ok(Err(error)) = result {
                tracing::error!(error = %error, "server stopped with an error");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
    if let Some(db) = database {
        db.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}
