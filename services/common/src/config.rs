//! Layered configuration: defaults < TOML file < `QUIVER__SECTION__KEY`
//! environment variables < command-line flags (applied by the binary).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything Quiver can be configured with. `deploy/config/quiver.example.toml`
/// documents every key with its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listeners, data directory and shutdown.
    pub server: ServerConfig,
    /// The metadata database.
    pub database: DatabaseConfig,
    /// The artifact store.
    pub artifacts: ArtifactsConfig,
    /// Where roles find each other when they run as separate processes.
    pub remote: RemoteConfig,
    /// Logging.
    pub log: LogConfig,
    /// Tenancy.
    pub namespaces: NamespacesConfig,
    /// HTTP gateway limits.
    pub gateway: GatewayConfig,
}

/// Listeners and local state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Directory for the embedded SQLite database and local artifacts.
    pub data_dir: PathBuf,
    /// Address of the HTTP gateway (MLflow REST API).
    pub http_addr: String,
    /// Address of the gRPC services.
    pub grpc_addr: String,
    /// Seconds to let in-flight requests finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
}

/// The metadata database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://...` or `sqlite://...`; empty means `sqlite://<data_dir>/quiver.db`.
    pub url: String,
    /// Connection pool size (SQLite: readers; it always has one writer).
    pub max_connections: u32,
    /// Apply pending migrations at start-up (else run `quiver migrate`).
    pub migrate_on_start: bool,
    /// Seconds to wait for a connection from the pool.
    pub acquire_timeout_seconds: u64,
}

/// The artifact store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArtifactsConfig {
    /// `s3://bucket/prefix`, `gs://...`, `az://...`, `file:///dir` or a
    /// directory; empty means `<data_dir>/artifacts`.
    pub root: String,
    /// object_store options, e.g. `aws_endpoint`, `aws_region`,
    /// `aws_allow_http` (credentials also come from `AWS_*` env variables).
    pub options: std::collections::BTreeMap<String, String>,
    /// URI prefixes under which a client may choose an experiment's
    /// `artifact_location` (e.g. `s3://bucket/team`); empty: none, every
    /// experiment gets the server's `mlflow-artifacts:/<id>`. The env variable
    /// takes a comma-separated list.
    pub allowed_locations: Vec<String>,
    /// Multipart downloads read straight from the store through presigned,
    /// time-limited URLs when the store can sign them (S3, GCS, Azure):
    /// clients then need network access to the store but no credentials.
    /// Off: every download goes through the gateway's proxy.
    pub direct_downloads: bool,
}

/// Endpoints of remote roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteConfig {
    /// gRPC endpoint of the tracking service when it is not in this process.
    pub tracking_endpoint: String,
    /// gRPC endpoint of the artifacts service when it is not in this process.
    pub artifacts_endpoint: String,
    /// gRPC endpoint of the registry service when it is not in this process.
    pub registry_endpoint: String,
    /// Per-call timeout for remote gRPC calls, in seconds.
    pub request_timeout_seconds: u64,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// An `EnvFilter` directive, e.g. `info,quiver_tracking=debug`; `RUST_LOG` wins.
    pub level: String,
}

/// Tenancy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamespacesConfig {
    /// Create a namespace (and its default experiment) on first use.
    pub auto_create: bool,
}

/// HTTP gateway limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Largest JSON request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Per-request timeout, in seconds.
    pub request_timeout_seconds: u64,
    /// Names and addresses clients reach the gateway by (the `Host` header;
    /// others get 403, against DNS rebinding): `*`, `*.example.com`,
    /// `prefix*`, `10.0.0.0/8`, `name` or `name:port`. Default: loopback
    /// and private addresses, `localhost`. The env variable takes a
    /// comma-separated list.
    pub allowed_hosts: Vec<String>,
    /// Browser origins (other than the gateway's own) that may send
    /// state-changing requests and read answers (CORS): `*` or
    /// `scheme://host-pattern[:port|:*]`. Default: any port on localhost.
    pub allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            data_dir: PathBuf::from("./quiver-data"),
            http_addr: "127.0.0.1:5000".to_string(),
            grpc_addr: "127.0.0.1:5001".to_string(),
            shutdown_grace_seconds: 20,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            url: String::new(),
            max_connections: 16,
            migrate_on_start: true,
            acquire_timeout_seconds: 10,
        }
    }
}

impl Default for RemoteConfig {
    fn default() -> RemoteConfig {
        RemoteConfig {
            tracking_endpoint: "http://127.0.0.1:5001".to_string(),
            artifacts_endpoint: "http://127.0.0.1:5001".to_string(),
            registry_endpoint: "http://127.0.0.1:5001".to_string(),
            request_timeout_seconds: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: "text".to_string(),
            level: "info".to_string(),
        }
    }
}

impl Default for NamespacesConfig {
    fn default() -> NamespacesConfig {
        NamespacesConfig { auto_create: true }
    }
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        GatewayConfig {
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_seconds: 300,
            allowed_hosts: strings(&[
                "localhost",
                "127.0.0.0/8",
                "::1",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
            ]),
            allowed_origins: strings(&[
                "http://localhost:*",
                "https://localhost:*",
                "http://127.0.0.1:*",
                "https://127.0.0.1:*",
                "http://[::1]:*",
                "https://[::1]:*",
            ]),
        }
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or a value has the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
}

impl Config {
    /// Loads the configuration: defaults, then the TOML file (if any), then
    /// `QUIVER__SECTION__KEY` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let env_map: config::Map<String, String> = env
            .into_iter()
            .filter(|(key, _)| key.starts_with("QUIVER__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("QUIVER")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("artifacts.allowed_locations")
                .with_list_parse_key("gateway.allowed_hosts")
                .with_list_parse_key("gateway.allowed_origins")
                .source(Some(env_map)),
        );
        Ok(builder.build()?.try_deserialize()?)
    }

    /// Returns the artifact root URL, defaulting to `<data_dir>/artifacts`.
    pub fn artifacts_root(&self) -> String {
        if self.artifacts.root.is_empty() {
            self.server.data_dir.join("artifacts").display().to_string()
        } else {
            self.artifacts.root.clone()
        }
    }

    /// Returns the database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join("quiver.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/quiver.example.toml")
    }

    #[test]
    fn the_example_file_loads_and_documents_the_defaults() {
        let loaded = Config::load(Some(&example_path()), Vec::new()).unwrap();
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn the_example_file_names_every_key() {
        let text = std::fs::read_to_string(example_path()).unwrap();
        let file = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .build()
            .unwrap();
        // Every section and key of the defaults (empty tables included).
        let defaults = serde_json::to_value(Config::default()).unwrap();
        for (section, table) in defaults.as_object().unwrap() {
            let expected = table.as_object().unwrap();
            let documented: config::Map<String, config::Value> = file.get_table(section).unwrap();
            let mut expected_keys: Vec<_> = expected.keys().collect();
            let mut documented_keys: Vec<_> = documented.keys().collect();
            expected_keys.sort();
            documented_keys.sort();
            assert_eq!(documented_keys, expected_keys, "section [{section}]");
        }
    }

    #[test]
    fn env_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.toml");
        std::fs::write(
            &path,
            "[server]\nhttp_addr = \"0.0.0.0:1\"\ngrpc_addr = \"0.0.0.0:2\"\n",
        )
        .unwrap();
        let env = vec![
            (
                "QUIVER__SERVER__HTTP_ADDR".to_string(),
                "0.0.0.0:9".to_string(),
            ),
            (
                "QUIVER__DATABASE__MAX_CONNECTIONS".to_string(),
                "3".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(config.server.http_addr, "0.0.0.0:9");
        assert_eq!(config.server.grpc_addr, "0.0.0.0:2");
        assert_eq!(config.database.max_connections, 3);
    }

    #[test]
    fn allowed_locations_come_as_a_list_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.toml");
        std::fs::write(
            &path,
            "[artifacts]\nallowed_locations = [\"s3://a/x\", \"gs://b\"]\n",
        )
        .unwrap();
        let config = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(config.artifacts.allowed_locations, ["s3://a/x", "gs://b"]);
        let env = vec![
            (
                "QUIVER__ARTIFACTS__ALLOWED_LOCATIONS".to_string(),
                "s3://c/y,file:///data".to_string(),
            ),
            // Other values with a comma stay strings.
            (
                "QUIVER__LOG__LEVEL".to_string(),
                "info,sqlx=warn".to_string(),
            ),
        ];
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(
            config.artifacts.allowed_locations,
            ["s3://c/y", "file:///data"]
        );
        assert_eq!(config.log.level, "info,sqlx=warn");
    }

    #[test]
    fn allowed_hosts_and_origins_come_as_lists_from_env() {
        let env = vec![
            (
                "QUIVER__GATEWAY__ALLOWED_HOSTS".to_string(),
                "ml.corp.example,*.svc.cluster.local".to_string(),
            ),
            (
                "QUIVER__GATEWAY__ALLOWED_ORIGINS".to_string(),
                "https://notebook.corp.example".to_string(),
            ),
        ];
        let config = Config::load(None, env).unwrap();
        assert_eq!(
            config.gateway.allowed_hosts,
            ["ml.corp.example", "*.svc.cluster.local"]
        );
        assert_eq!(
            config.gateway.allowed_origins,
            ["https://notebook.corp.example"]
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.toml");
        std::fs::write(&path, "[server]\nhttp_adr = \"typo\"\n").unwrap();
        assert!(Config::load(Some(&path), Vec::new()).is_err());
    }
}
