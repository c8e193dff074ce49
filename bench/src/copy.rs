//! Raw Postgres baseline: `COPY ... FROM STDIN` of 1000-row batches, each its
//! own (autocommit) transaction, into a one-row-per-point history table (the
//! columns and primary key of Quiver's `metrics` before chunked history, and
//! the shape of MLflow's). One and four connections.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::workloads::{Sizes, now_ms};
use crate::{median, progress, unit};

const TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_metrics (
    run_key BIGINT NOT NULL,
    key TEXT NOT NULL,
    step BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL,
    model_id TEXT,
    dataset_name TEXT,
    dataset_digest TEXT,
    PRIMARY KEY (run_key, key, step, timestamp, value, is_nan)
)";

fn batch_csv(client: usize, seq: u64) -> String {
    let ts = now_ms();
    let mut csv = String::with_capacity(60_000);
    for i in 0..1000u64 {
        let _ = writeln!(
            csv,
            "{},m{},{},{},{},0,,,",
            client + 1,
            i % 10,
            seq * 100 + i / 10,
            ts,
            unit(seq * 1000 + i)
        );
    }
    csv
}

pub async fn run(database_url: &str, scale: f64) -> Result<Value> {
    let sizes = Sizes::new(scale);
    let mut setup = PgConnection::connect(database_url).await?;
    sqlx::query(TABLE).execute(&mut setup).await?;
    sqlx::query("TRUNCATE bench_metrics")
        .execute(&mut setup)
        .await?;
    let mut results = serde_json::Map::new();
    let mut seq_base = 0u64;
    for clients in [1usize, 4] {
        progress!("raw COPY, 1000-row transactions, {clients} connection(s)");
        let mut per_round = Vec::new();
        for round in 0..sizes.rounds {
            let start = Instant::now();
            let window_start = start + Duration::from_secs_f64(sizes.warmup_secs);
            let end = window_start + Duration::from_secs_f64(sizes.round_secs);
            let mut tasks = Vec::new();
            for client in 0..clients {
                let url = database_url.to_string();
                let base = seq_base;
                tasks.push(tokio::spawn(async move {
                    let mut conn = PgConnection::connect(&url).await?;
                    let mut seq = base;
                    let mut in_window = 0u64;
                    while Instant::now() < end {
                        let csv = batch_csv(client, seq);
                        seq += 1;
                        let mut copy = conn
                            .copy_in_raw(
                                "COPY bench_metrics (run_key, key, step, timestamp, value, is_nan, \
                                 model_id, dataset_name, dataset_digest) FROM STDIN WITH (FORMAT csv)",
                            )
                            .await?;
                        copy.send(csv.as_bytes()).await?;
                        copy.finish().await?;
                        let t = Instant::now();
                        if t >= window_start && t <= end {
                            in_window += 1;
                        }
                    }
                    anyhow::Ok((in_window, seq))
                }));
            }
            let mut batches = 0;
            for task in tasks {
                let (n, seq) = task.await??;
                batches += n;
                seq_base = seq_base.max(seq);
            }
            seq_base += 1_000_000;
            let rate = batches as f64 * 1000.0 / sizes.round_secs;
            progress!("  COPY x{clients} round {}: {rate:.0} rows/s", round + 1);
            per_round.push(rate);
        }
        results.insert(
            format!("copy_{clients}"),
            json!({"kind": "throughput", "unit": "rows/s", "value": median(&per_round),
                   "rounds": per_round, "clients": clients}),
        );
    }
    sqlx::query("TRUNCATE bench_metrics")
        .execute(&mut setup)
        .await?;
    Ok(Value::Object(results))
}
