//! `quiver`: the one binary. `quiver run --services all` is the embedded
//! default (SQLite + local files, HTTP on :5000, gRPC on :5001);
//! `--services tracking` or `--services gateway` run one role each.

mod gc;
mod roles;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use quiver_common::config::Config;

/// mimalloc: request handling allocates many small, short-lived objects (rows,
/// protos, JSON) across threads; glibc malloc spent a quarter of the CPU of a
/// 1000-run search page in malloc/free and arena consolidation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "quiver",
    version,
    about = "Quiver: an MLflow-compatible ML lifecycle server"
)]
struct Cli {
    /// TOML configuration file (defaults < file < QUIVER__SECTION__KEY env < flags).
    #[arg(long, global = true, env = "QUIVER_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (postgres://... or sqlite://...); overrides database.url.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Data directory for the embedded SQLite database; overrides server.data_dir.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the selected roles until SIGTERM or Ctrl-C.
    Run {
        /// Comma-separated roles: all, tracking, artifacts, registry, gateway.
        #[arg(long, default_value = "all", value_delimiter = ',')]
        services: Vec<String>,
        /// HTTP listen address; overrides server.http_addr.
        #[arg(long)]
        http_addr: Option<String>,
        /// gRPC listen address; overrides server.grpc_addr.
        #[arg(long)]
        grpc_addr: Option<String>,
        /// Remote tracking gRPC endpoint for a gateway-only process.
        #[arg(long)]
        tracking_endpoint: Option<String>,
        /// Remote artifacts gRPC endpoint for a gateway-only process.
        #[arg(long)]
        artifacts_endpoint: Option<String>,
        /// Remote registry gRPC endpoint for a gateway-only process.
        #[arg(long)]
        registry_endpoint: Option<String>,
        /// Artifact root URL; overrides artifacts.root.
        #[arg(long)]
        artifacts_root: Option<String>,
    },
    /// Applies pending database migrations and exits.
    Migrate,
    /// Permanently removes deleted runs and experiments, and their artifacts.
    ///
    /// Removes runs in lifecycle stage 'deleted' whose deletion is older than
    /// --older-than, and deleted experiments deleted longer ago than that with
    /// everything in them (all their runs in any state, metrics, params, tags,
    /// inputs, outputs, logged models, experiment tags). Artifacts are deleted
    /// first, then the rows, so an interrupted gc is finished by the next one.
    /// Only artifacts behind this server's own mlflow-artifacts: URIs are
    /// deleted (each run's and model's own directory); locations elsewhere are
    /// reported and left alone. The default experiment "0" of a namespace is
    /// never removed, only its deleted runs. Point it at the server's database
    /// and artifact root (the same --config, --data-dir or --database-url and
    /// artifacts.root as `quiver run`); try --dry-run first.
    Gc(gc::GcArgs),
    /// Manages namespaces (needed when namespaces.auto_create is false).
    Namespace {
        #[command(subcommand)]
        action: NamespaceAction,
    },
}

#[derive(Debug, Subcommand)]
enum NamespaceAction {
    /// Creates a namespace and its default experiment "0" (idempotent).
    Create {
        /// The namespace name (a DNS label).
        name: String,
    },
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config =
        Config::load(cli.config.as_deref(), std::env::vars()).context("loading configuration")?;
    if let Some(url) = &cli.database_url {
        config.database.url = url.clone();
    }
    if let Some(dir) = &cli.data_dir {
        config.server.data_dir = dir.clone();
    }
    if let Command::Run {
        http_addr,
        grpc_addr,
        tracking_endpoint,
        artifacts_endpoint,
        registry_endpoint,
        artifacts_root,
        ..
    } = &cli.command
    {
        if let Some(addr) = http_addr {
            config.server.http_addr = addr.clone();
        }
        if let Some(addr) = grpc_addr {
            config.server.grpc_addr = addr.clone();
        }
        if let Some(endpoint) = tracking_endpoint {
            config.remote.tracking_endpoint = endpoint.clone();
        }
        if let Some(endpoint) = artifacts_endpoint {
            config.remote.artifacts_endpoint = endpoint.clone();
        }
        if let Some(endpoint) = registry_endpoint {
            config.remote.registry_endpoint = endpoint.clone();
        }
        if let Some(root) = artifacts_root {
            config.artifacts.root = root.clone();
        }
    }
    Ok(config)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = load_config(&cli)?;
    quiver_common::telemetry::init_tracing(&config.log.format, &config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run { services, .. } => {
                let roles = roles::Roles::parse(&services)?;
                roles::run(config, roles).await
            }
            Command::Migrate => roles::migrate(&config).await,
            Command::Gc(args) => gc::gc(config, args).await,
            Command::Namespace {
                action: NamespaceAction::Create { name },
            } => roles::create_namespace(&config, &name).await,
        }
    })
}
