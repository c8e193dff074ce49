//! Database pools over `sqlx::Any` (Postgres or SQLite chosen by URL) and a small
//! per-service migration runner. SQL shared by both backends uses `$N`
//! placeholders, which both drivers accept.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::pool::PoolOptions;
use sqlx::{AnyPool, Connection, Executor};

/// A pooled connection that sat idle this long is pinged before it is handed
/// out; a busier one is used as is. (sqlx pings on every acquire by default:
/// one extra round trip per statement, a third of a run search's latency.) A
/// connection that breaks while busy fails its one statement; the pool then
/// drops it and opens a fresh one.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(10);

/// Pool options shared by every pool: its size, how long to wait for a free
/// connection, and the ping-when-idle check above.
fn pool_options<DB: sqlx::Database>(
    max_connections: u32,
    acquire_timeout: Duration,
) -> PoolOptions<DB> {
    PoolOptions::<DB>::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

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
    /// On Postgres, a typed pool for the hottest reads: `sqlx::Any` turns
    /// every row into an owned, dynamically typed copy, which was a third of
    /// the CPU of a 25,000-point history page. This one serves lookups by key
    /// (history pages, run and model details, versions by key), whose best
    /// plan never depends on the values bound: its connections set
    /// `plan_cache_mode = force_generic_plan`, so each statement is planned
    /// once per connection instead of on each of its first five runs (a
    /// 1000-key set alone cost ~1 ms of planning per run). Read through
    /// [`fetch_typed!`](crate::fetch_typed) and `SqlBuilder::fetch_as`.
    pub pg: Option<sqlx::PgPool>,
    /// On Postgres, the typed pool for searches, whose plans depend on the
    /// values (a filter's selectivity): planned per execution as usual.
    /// Read through `SqlBuilder::search_as`.
    pub pg_search: Option<sqlx::PgPool>,
}

/// Runs one read on the typed Postgres pool when there is one, else on the
/// `Any` reader: `fetch_typed!(db, (i64, String), sql, bind...)` returns
/// `Result<Vec<(i64, String)>, sqlx::Error>`. The SQL text and binds are the
/// same for both pools, so each query is written once.
#[macro_export]
macro_rules! fetch_typed {
    ($db:expr, $row:ty, $sql:expr $(, $arg:expr)* $(,)?) => {{
        let db: &$crate::db::Database = $db;
        let text: String = $sql;
        match &db.pg {
            Some(pg) => {
                sqlx::query_as::<_, $row>(sqlx::AssertSqlSafe(text))
                    $(.bind($arg))*
                    .fetch_all(pg)
                    .await
            }
            None => {
                sqlx::query_as::<_, $row>(sqlx::AssertSqlSafe(text))
                    $(.bind($arg))*
                    .fetch_all(&db.reader)
                    .await
            }
        }
    }};
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

/// Fewest writes worth an `ANALYZE`.
const ANALYZE_MIN_WRITES: u64 = 1_000;
/// How often the background task looks at the write counter.
const ANALYZE_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Counts a store's writes and, on Postgres, refreshes planner statistics of
/// its tables from a background task that looks four times a second: at once
/// when the writes since the last refresh reach those before it (1k, 2k, 4k,
/// ...); every few seconds while a stream of writes adds 5% or more; and when
/// a burst of 1,000 writes or more stops (at most once a second). A freshly
/// filled database otherwise keeps its empty-table statistics until
/// autovacuum's next pass (a minute or more), and searches get plans that
/// take seconds (seen: 36 s for 10k runs right after a bulk load that
/// followed half a million other writes, 50 ms after).
#[derive(Debug, Clone)]
pub struct StatisticsRefresher {
    writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: std::sync::Arc<std::sync::OnceLock<()>>,
    statements: &'static [&'static str],
}

impl StatisticsRefresher {
    /// `statements` are run one by one, each on its own (`VACUUM` cannot
    /// share a transaction): `ANALYZE t1, t2`, `VACUUM (ANALYZE) t3`, ...
    pub fn new(statements: &'static [&'static str]) -> StatisticsRefresher {
        StatisticsRefresher {
            writes: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
            task: std::sync::Arc::new(std::sync::OnceLock::new()),
            statements,
        }
    }

    /// Counts `count` writes; the first call on Postgres starts the task.
    pub fn note_writes(&self, db: &Database, count: u64) {
        if db.dialect != Dialect::Postgres || count == 0 {
            return;
        }
        self.writes
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        self.task.get_or_init(|| {
            let writes = std::sync::Arc::downgrade(&self.writes);
            let pool = db.writer.clone();
            tokio::spawn(refresh_statistics(writes, pool, self.statements));
        });
    }
}

/// Least time between two refreshes while writes keep coming.
const ANALYZE_STREAMING_EVERY: Duration = Duration::from_secs(4);
/// Least time between two refreshes after bursts of writes.
const ANALYZE_SETTLED_GAP: Duration = Duration::from_secs(1);

/// Whether a refresh is due: `analyzed` writes were counted at the last one
/// (`elapsed` ago), `total` now, `previous` a check interval ago.
fn analyze_due(analyzed: u64, previous: u64, total: u64, elapsed: Duration) -> bool {
    let since = total - analyzed;
    let doubled = since >= ANALYZE_MIN_WRITES.max(analyzed);
    // Writes are counted together, but the tables they land in grow at
    // different rates (10k runs are a tenth of their table and 1% of the
    // points written beside them): when writes stop, any 1,000 are worth it.
    let settled =
        total == previous && since >= ANALYZE_MIN_WRITES && elapsed >= ANALYZE_SETTLED_GAP;
    let streaming =
        since >= ANALYZE_MIN_WRITES.max(analyzed / 20) && elapsed >= ANALYZE_STREAMING_EVERY;
    doubled || settled || streaming
}

async fn refresh_statistics(
    writes: std::sync::Weak<std::sync::atomic::AtomicU64>,
    pool: AnyPool,
    statements: &'static [&'static str],
) {
    let (mut analyzed, mut previous) = (0u64, 0u64);
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(ANALYZE_CHECK_EVERY).await;
        // The store is gone: stop.
        let Some(counter) = writes.upgrade() else {
            return;
        };
        let total = counter.load(std::sync::atomic::Ordering::Relaxed);
        drop(counter);
        if analyze_due(analyzed, previous, total, last.elapsed()) {
            for &statement in statements {
                match sqlx::raw_sql(statement).execute(&pool).await {
                    Ok(_) => {
                        tracing::debug!(writes = total, statement, "refreshed planner statistics")
                    }
                    Err(error) => tracing::warn!(%error, statement, "statistics refresh failed"),
                }
            }
            analyzed = total;
            last = tokio::time::Instant::now();
        }
        previous = total;
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
                let pool = pool_options::<sqlx::Any>(
                    settings.max_connections.max(2),
                    settings.acquire_timeout,
                )
                .connect_with(options)
                .await?;
                let typed = url.parse::<sqlx::postgres::PgConnectOptions>()?;
                let pg = pool_options::<sqlx::Postgres>(
                    (settings.max_connections / 2).max(2),
                    settings.acquire_timeout,
                )
                .connect_with(
                    typed
                        .clone()
                        .options([("plan_cache_mode", "force_generic_plan")]),
                )
                .await?;
                let pg_search = pool_options::<sqlx::Postgres>(
                    (settings.max_connections / 4).max(2),
                    settings.acquire_timeout,
                )
                .connect_with(typed)
                .await?;
                Ok(Database {
                    dialect,
                    reader: pool.clone(),
                    writer: pool,
                    pg: Some(pg),
                    pg_search: Some(pg_search),
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
                    pg: None,
                    pg_search: None,
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
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }
}

async fn sqlite_pool(
    options: AnyConnectOptions,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<AnyPool, sqlx::Error> {
    pool_options::<sqlx::Any>(max_connections, acquire_timeout)
        .min_connections(1)
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

#[cfg(test)]
mod statistics_tests {
    use super::analyze_due;
    use std::time::Duration;

    const NOW: Duration = Duration::from_millis(250);
    const LATER: Duration = Duration::from_secs(5);

    #[test]
    fn refreshes_at_once_each_time_the_writes_double() {
        assert!(!analyze_due(0, 0, 999, NOW));
        assert!(analyze_due(0, 0, 1_000, NOW));
        assert!(!analyze_due(500_000, 900_000, 999_999, NOW));
        assert!(analyze_due(500_000, 900_000, 1_000_000, NOW));
    }

    #[test]
    fn refreshes_every_few_seconds_while_writes_stream_in() {
        // A 10k-run load (~100k writes) after 500k: not a doubling.
        assert!(!analyze_due(500_000, 550_000, 560_000, NOW));
        assert!(analyze_due(500_000, 550_000, 560_000, LATER));
        // Too little new to be worth it.
        assert!(!analyze_due(500_000, 510_000, 520_000, LATER));
    }

    #[test]
    fn refreshes_when_a_burst_settles() {
        // 10k runs after 500k points: 2%, but their table grew by a tenth.
        assert!(analyze_due(500_000, 510_000, 510_000, LATER));
        assert!(!analyze_due(500_000, 510_000, 510_001, LATER));
        // At most once a second.
        assert!(!analyze_due(500_000, 510_000, 510_000, NOW));
        // Too few, or nothing new.
        assert!(!analyze_due(500_000, 500_999, 500_999, LATER));
        assert!(!analyze_due(500_000, 500_000, 500_000, LATER));
    }
}
