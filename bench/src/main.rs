//! `quiver-bench`: MLflow-REST workloads against one server at a time
//! (`run`), a raw Postgres COPY baseline (`copy`), and the side-by-side
//! report (`report`). Driven by `bench/run.sh` (`make bench`).

mod artifacts;
mod client;
mod copy;
mod dbtime;
mod registry;
mod replies;
mod report;
mod workloads;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Quiver vs mlflow server: MLflow REST workloads")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs every workload against one server and writes its results as JSON.
    Run {
        /// e.g. http://127.0.0.1:5000
        #[arg(long)]
        base_url: String,
        /// Name used in the report (quiver, mlflow).
        #[arg(long)]
        label: String,
        /// Server process id: its RSS (with every descendant's) is read from /proc.
        #[arg(long)]
        pid: Option<u32>,
        /// 1 = full sizes; 0.1 = a tenth of the data and shorter windows.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Only these workload groups (tracking, registry, artifacts); all by default.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// A connection URL of the server's Postgres cluster (any database but
        /// the server's) with pg_stat_statements preloaded: the read
        /// workloads then also record the database's share of their time.
        #[arg(long, requires = "pg_database")]
        pg_url: Option<String>,
        /// The server's database, whose statements are counted.
        #[arg(long, requires = "pg_url")]
        pg_database: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Raw Postgres COPY of 1000-row batches (each its own transaction) into a
    /// one-row-per-point history table: the ceiling log-batch is held to.
    Copy {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes the markdown report from the JSON results.
    Report {
        #[arg(long)]
        quiver: PathBuf,
        /// Quiver's second phase (after MLflow's); the report takes the mean
        /// of the two phases.
        #[arg(long)]
        quiver_after: Option<PathBuf>,
        #[arg(long)]
        mlflow: PathBuf,
        #[arg(long)]
        copy: PathBuf,
        /// Free text: command, machine facts, notes.
        #[arg(long)]
        machine: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Run {
            base_url,
            label,
            pid,
            scale,
            only,
            pg_url,
            pg_database,
            out,
        } => {
            let probe = match (pg_url, pg_database) {
                (Some(url), Some(database)) => {
                    Some(dbtime::DbProbe::connect(&url, &database).await?)
                }
                _ => None,
            };
            let results =
                workloads::run_all(&base_url, &label, pid, scale, &only, probe.as_ref()).await?;
            std::fs::write(&out, serde_json::to_vec_pretty(&results)?)?;
        }
        Cmd::Copy {
            database_url,
            scale,
            out,
        } => {
            let results = copy::run(&database_url, scale).await?;
            std::fs::write(&out, serde_json::to_vec_pretty(&results)?)?;
        }
        Cmd::Report {
            quiver,
            quiver_after,
            mlflow,
            copy,
            machine,
            out,
        } => report::write(
            &quiver,
            quiver_after.as_deref(),
            &mlflow,
            &copy,
            &machine,
            &out,
        )?,
    }
    Ok(())
}

/// Progress line on stderr.
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => {{
        eprintln!("[bench {}] {}", $crate::clock(), format!($($arg)*));
    }};
}

pub fn clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!(
        "{:02}:{:02}:{:02}",
        (now / 3600) % 24,
        (now / 60) % 60,
        now % 60
    )
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if !n.is_multiple_of(2) {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile, `p` in 0..=100.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Deterministic pseudo-random numbers (splitmix64), so both servers get the same data.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A float in [0, 1) from `mix`.
pub fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}
