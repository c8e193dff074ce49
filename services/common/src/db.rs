//! Database pools over `sqlx::Any` (Postgres or SQLite chosen by URL) and a small
//! per-service migration runner. SQL shared by both backends uses `$N`
//! placeholders, which both drivers accept.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which SQL dialect a pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite (embedded).
    Sqlite,
}

/// A reader pool and a writer pool. On Postgres both are the same pool; on
/// SQLite the writer has exactly one connection so writers queue in-process
/// instead of failing with `SQLITE_BUSY`.
#[derive(Debug, Clone)]
pub struct Database {
    /// The SQL dialect.
    pub dialect: Dialect,
    /// Pool for reads.
    pub reader: AnyPool,
    /// Pool for writes.
    pub writer: AnyPool,
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no supported database.
    #[error("unsupported database url (expected postgres:// or sqlite://): {0}")]
    UnsupportedUrl(String),
    /// A driver error.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration {service}/{version} failed: {source}")]
    Migration {
        /// The service whose migration failed.
        service: String,
        /// Its version.
        version: i64,
        /// The driver error.
        source: sqlx::Error,
    },
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Maximum connections (readers on SQLite).
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
}

/// Writes after which statistics are refreshed: 1k, 2k, 4k, ... up to ~1M.
const ANALYZE_FIRST: u64 = 1_000;
const ANALYZE_LAST: u64 = 1_024_000;

/// Counts a store's writes and, on Postgres, refreshes planner statistics of
/// its tables in the background when the count crosses 1k, 2k, 4k, ... A
/// freshly filled database otherwise keeps its empty-table statistics until
/// autovacuum's next pass, and searches get plans that take seconds (seen:
/// 21 s for 10k runs right after a bulk load, 50 ms after).
#[derive(Debug, Clone)]
pub struct StatisticsRefresher {
    writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    statement: &'static str,
}

impl StatisticsRefresher {
    /// `statement` is the `ANALYZE t1, t2, ...` to run.
    pub fn new(statement: &'static str) -> StatisticsRefresher {
        StatisticsRefresher {
            writes: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
            statement,
        }
    }

    /// Counts `count` writes; may start a background `ANALYZE`.
    pub fn note_writes(&self, db: &Database, count: u64) {
        if db.dialect != Dialect::Postgres || count == 0 {
            return;
        }
        let before = self
            .writes
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        let after = before + count;
        let crossed = std::iter::successors(Some(ANALYZE_FIRST), |mark| Some(mark * 2))
            .take_while(|mark| *mark <= ANALYZE_LAST)
            .any(|mark| before < mark && after >= mark);
        if !crossed {
            return;
        }
        let pool = db.writer.clone();
        let statement = self.statement;
        tokio::spawn(async move {
            match sqlx::raw_sql(statement).execute(&pool).await {
                Ok(_) => tracing::debug!(writes = after, statement, "refreshed planner statistics"),
                Err(error) => tracing::warn!(%error, statement, "ANALYZE failed"),
            }
        });
    }
}

impl Database {
    /// Connects to `url` (`postgres://` or `sqlite://`).
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Database, DbError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            return Err(DbError::UnsupportedUrl(redact(url)));
        };
        let options = AnyConnectOptions::from_str(url)?;
        match dialect {
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(settings.max_connections.max(2))
                    .acquire_timeout(settings.acquire_timeout)
                    .connect_with(options)
                    .await?;
                Ok(Database {
                    dialect,
                    reader: pool.clone(),
                    writer: pool,
                })
            }
            Dialect::Sqlite => {
                let writer = sqlite_pool(options.clone(), 1, settings.acquire_timeout).await?;
                // WAL is a property of the database file: switch once, on the
                // writer, before any reader connects (per-connection switching
                // can hit SQLITE_BUSY while another connection writes).
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&writer)
                    .await?;
                let reader = sqlite_pool(
                    options,
                    settings.max_connections.max(1),
                    settings.acquire_timeout,
                )
                .await?;
                Ok(Database {
                    dialect,
                    reader,
                    writer,
                })
            }
        }
    }

    /// Applies the embedded migrations of `service` that are not applied yet,
    /// each in its own transaction. Safe to run from several processes at once
    /// on Postgres (an advisory lock serialises them).
    pub async fn migrate(
        &self,
        service: &str,
        migrations: &[(i64, &'static str)],
    ) -> Result<(), DbError> {
        let mut conn = self.writer.acquire().await?;
        {
            // Concurrent `CREATE TABLE IF NOT EXISTS` races on Postgres (two
            // services starting at once), so it runs under the lock too.
            let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
            if self.dialect == Dialect::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(7157120101)")
                    .execute(&mut *tx)
                    .await?;
            }
            tx.execute(
                "CREATE TABLE IF NOT EXISTS quiver_migrations (
                    service TEXT NOT NULL,
                    version BIGINT NOT NULL,
                    applied_at BIGINT NOT NULL,
                    PRIMARY KEY (service, version))",
            )
            .await?;
            tx.commit().await?;
        }
        for (version, sql) in migrations {
            let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
            if self.dialect == Dialect::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(7157120101)")
                    .execute(&mut *tx)
                    .await?;
            }
            let applied: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM quiver_migrations WHERE service = $1 AND version = $2",
            )
            .bind(service)
            .bind(*version)
            .fetch_optional(&mut *tx)
            .await?;
            if applied.is_some() {
                tx.commit().await?;
                continue;
            }
            tracing::info!(service, version, "applying migration");
            sqlx::raw_sql(*sql)
                .execute(&mut *tx)
                .await
                .map_err(|source| DbError::Migration {
                    service: service.to_string(),
                    version: *version,
                    source,
                })?;
            sqlx::query(
                "INSERT INTO quiver_migrations (service, version, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(service)
            .bind(*version)
            .bind(crate::time::now_millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// The newest applied migration of `service`, or `None` when it has none
    /// here (its tables are not in this database).
    pub async fn migration_version(&self, service: &str) -> Result<Option<i64>, DbError> {
        let version =
            sqlx::query_scalar("SELECT MAX(version) FROM quiver_migrations WHERE service = $1")
                .bind(service)
                .fetch_one(&self.reader)
                .await?;
        Ok(version)
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

async fn sqlite_pool(
    options: AnyConnectOptions,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(acquire_timeout)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // Wait for locks instead of failing; synchronous=FULL keeps
                // every acknowledged write durable; LIKE is case-sensitive as in
                // MLflow; foreign keys enforce cascades.
                conn.execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON;",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
}

fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => url.chars().take(40).collect(),
    }
}
