//! Quiver's model registry service: registered models, model versions,
//! stages, aliases and tags, with MLflow's validation rules and search
//! language. Version sources are checked through the tracking service's API.
//!
//! [`RegistryApi`] is the seam: [`RegistryService`] implements it in-process
//! over a [`store::RegistryStore`], [`grpc::RegistryGrpcClient`] implements it
//! over gRPC, and [`grpc::RegistryGrpcServer`] serves any implementation.

pub mod api;
pub mod grpc;
pub mod service;
pub mod source;
pub mod store;
pub mod validation;

pub use api::RegistryApi;
pub use service::RegistryService;

/// The embedded migrations, per backend: (version, SQL).
pub const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_registry.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_versions_by_number.sql"),
    ),
    (3, include_str!("../migrations/postgres/0003_cards.sql")),
];
/// The embedded migrations, per backend: (version, SQL).
pub const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_registry.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_versions_by_number.sql"),
    ),
    (3, include_str!("../migrations/sqlite/0003_cards.sql")),
];

/// Returns the migrations for a dialect.
pub fn migrations(dialect: quiver_common::db::Dialect) -> &'static [(i64, &'static str)] {
    match dialect {
        quiver_common::db::Dialect::Postgres => POSTGRES_MIGRATIONS,
        quiver_common::db::Dialect::Sqlite => SQLITE_MIGRATIONS,
    }
}
