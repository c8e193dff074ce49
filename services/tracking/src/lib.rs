//! Quiver's tracking service: experiments, runs, params, metrics, tags and
//! dataset inputs, with MLflow's validation rules and search language.
//!
//! [`TrackingApi`] is the seam: [`TrackingService`] implements it in-process
//! over a [`store::TrackingStore`], [`grpc::TrackingGrpcClient`] implements it
//! over gRPC, and [`grpc::TrackingGrpcServer`] serves any implementation.

pub mod api;
pub mod artifact_location;
pub mod grpc;
pub mod names;
pub mod page_token;
pub mod service;
pub mod store;
pub mod validation;

pub use api::TrackingApi;
pub use service::TrackingService;

/// The embedded migrations, per backend: (version, SQL).
pub const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_tracking.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_logged_models.sql"),
    ),
    (
        3,
        include_str!("../migrations/postgres/0003_gc_indexes.sql"),
    ),
    (
        4,
        include_str!("../migrations/postgres/0004_metric_extras.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_metric_chunks.sql"),
    ),
];
/// The embedded migrations, per backend: (version, SQL).
pub const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_tracking.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_logged_models.sql"),
    ),
    (3, include_str!("../migrations/sqlite/0003_gc_indexes.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_metric_extras.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_metric_chunks.sql"),
    ),
];

/// Returns the migrations for a dialect.
pub fn migrations(dialect: quiver_common::db::Dialect) -> &'static [(i64, &'static str)] {
    match dialect {
        quiver_common::db::Dialect::Postgres => POSTGRES_MIGRATIONS,
        quiver_common::db::Dialect::Sqlite => SQLITE_MIGRATIONS,
    }
}
