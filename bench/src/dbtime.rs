//! Where a read workload's time goes: how much of it the server's database
//! spent executing (and planning) statements, read from `pg_stat_statements`
//! around the timed calls, and the two round-trip floors every request pays
//! on this machine (an HTTP round trip to the server, a Postgres round trip).
//!
//! `bench/run.sh` starts the throwaway cluster with `pg_stat_statements`
//! preloaded and passes `--pg-url` plus the server's database name; without
//! them the workloads run as before and the report leaves the section out.

use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::sync::Mutex;

use crate::client::Conn;
use crate::{median, progress};

/// A connection to the cluster (not to the server's database, so the probe's
/// own statements are not counted) and the database whose statements count.
pub struct DbProbe {
    conn: Mutex<PgConnection>,
    database: String,
}

impl DbProbe {
    /// Connects and checks that `pg_stat_statements` is loaded and installed.
    pub async fn connect(url: &str, database: &str) -> Result<Self> {
        let mut conn = PgConnection::connect(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut conn)
            .await
            .context("pg_stat_statements (needs shared_preload_libraries)")?;
        sqlx::query("SELECT count(*) FROM pg_stat_statements")
            .execute(&mut conn)
            .await
            .context("pg_stat_statements is not preloaded")?;
        Ok(Self {
            conn: Mutex::new(conn),
            database: database.to_string(),
        })
    }

    /// Forgets the statistics of the server's database.
    pub async fn reset(&self) -> Result<()> {
        let mut conn = self.conn.lock().await;
        sqlx::query(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = $1), 0)",
        )
        .bind(&self.database)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Statements and database time since the last reset, per timed call.
    pub async fn per_call(&self, calls: usize) -> Result<Value> {
        let mut conn = self.conn.lock().await;
        let (statements, exec_ms, plan_ms): (i64, f64, f64) = sqlx::query_as(
            "SELECT COALESCE(sum(calls), 0)::bigint, \
                    COALESCE(sum(total_exec_time), 0)::float8, \
                    COALESCE(sum(total_plan_time), 0)::float8 \
             FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
        )
        .bind(&self.database)
        .fetch_one(&mut *conn)
        .await?;
        let calls = calls.max(1) as f64;
        Ok(json!({
            "statements_per_call": statements as f64 / calls,
            "exec_ms_per_call": exec_ms / calls,
            "plan_ms_per_call": plan_ms / calls,
        }))
    }

    /// Median of 200 `SELECT 1` round trips from this process (sqlx,
    /// prepared): what one more database round trip costs here.
    pub async fn round_trip_ms(&self) -> Result<f64> {
        let mut conn = self.conn.lock().await;
        let mut samples = Vec::with_capacity(200);
        for i in 0..220 {
            let t0 = Instant::now();
            let _: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await?;
            if i >= 20 {
                samples.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
        }
        Ok(median(&samples))
    }
}

/// Forgets the statistics when a probe is given (call it once the warm-up
/// calls are done).
pub async fn reset(probe: Option<&DbProbe>) -> Result<()> {
    match probe {
        Some(probe) => probe.reset().await,
        None => Ok(()),
    }
}

/// Records the statistics since [`reset`] under `"db"` in a workload's JSON,
/// per timed call, with the calls' mean time (the statistics are sums, so
/// they compare with the mean), when a probe is given.
pub async fn record(probe: Option<&DbProbe>, samples: &[f64], value: &mut Value) -> Result<()> {
    if let Some(probe) = probe {
        let mut db = probe.per_call(samples.len()).await?;
        db["call_mean_ms"] = json!(samples.iter().sum::<f64>() / samples.len().max(1) as f64);
        value["db"] = db;
    }
    Ok(())
}

/// Median of 200 `GET /health` round trips: the HTTP floor of this server.
pub async fn http_floor_ms(conn: &mut Conn, label: &str) -> Result<f64> {
    let mut samples = Vec::with_capacity(200);
    for i in 0..220 {
        let t0 = Instant::now();
        let reply = conn.get_path("/health").await?;
        if reply.status != 200 {
            anyhow::bail!("GET /health: HTTP {}", reply.status);
        }
        if i >= 20 {
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let ms = median(&samples);
    progress!("{label}: GET /health median {ms:.3} ms");
    Ok(ms)
}
