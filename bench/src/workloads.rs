//! The MLflow-REST workloads, each sent the way the stock Python client sends it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::client::{Conn, Target};
use crate::dbtime::{self, DbProbe};
use crate::replies;
use crate::{median, percentile, progress, unit};

/// Sizes derived from BENCH_SCALE.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub search_runs: usize,
    pub history_points: usize,
    pub round_secs: f64,
    pub warmup_secs: f64,
    pub rounds: usize,
    pub search_reps: usize,
    pub paging_reps: usize,
    pub history_reps: usize,
}

impl Sizes {
    pub fn new(scale: f64) -> Sizes {
        let scale = scale.clamp(0.001, 10.0);
        Sizes {
            search_runs: ((10_000.0 * scale) as usize).max(200),
            history_points: (((100_000.0 * scale) as usize).max(2_000) / 1000) * 1000,
            round_secs: (5.0 * scale).clamp(1.0, 5.0),
            warmup_secs: (1.0 * scale).clamp(0.5, 1.0),
            rounds: 3,
            search_reps: 20,
            paging_reps: 5,
            history_reps: 5,
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

pub(crate) fn body(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("json"))
}

/// `runs/create` as `mlflow.start_run(run_name=...)` sends it.
fn create_run_body(experiment_id: &str, name: &str) -> Bytes {
    body(&json!({
        "experiment_id": experiment_id,
        "user_id": "bench",
        "start_time": now_ms(),
        "tags": [
            {"key": "mlflow.user", "value": "bench"},
            {"key": "mlflow.source.name", "value": "bench.py"},
            {"key": "mlflow.source.type", "value": "LOCAL"},
            {"key": "mlflow.runName", "value": name},
        ],
        "run_name": name,
    }))
}

pub(crate) async fn create_experiment(conn: &mut Conn, name: &str) -> Result<String> {
    let reply = conn
        .post("experiments/create", body(&json!({"name": name})))
        .await?
        .json()?;
    Ok(reply["experiment_id"]
        .as_str()
        .context("experiment_id")?
        .to_string())
}

pub(crate) async fn create_run(conn: &mut Conn, experiment_id: &str, name: &str) -> Result<String> {
    let reply = conn
        .post("runs/create", create_run_body(experiment_id, name))
        .await?
        .json()?;
    Ok(reply["run"]["info"]["run_id"]
        .as_str()
        .context("run_id")?
        .to_string())
}

/// 1000 points of 10 keys (`m0`..`m9`) × 100 steps, steps continuing with `seq`.
fn metric_batch(run_id: &str, seq: u64, salt: u64) -> Bytes {
    let ts = now_ms();
    let metrics: Vec<Value> = (0..1000u64)
        .map(|i| {
            json!({
                "key": format!("m{}", i % 10),
                "value": unit(salt ^ (seq * 1000 + i)),
                "timestamp": ts,
                "step": seq * 100 + i / 10,
            })
        })
        .collect();
    body(&json!({"run_id": run_id, "metrics": metrics, "params": [], "tags": []}))
}

/// Per-request path and body for a throughput workload.
type MakeRequest = Arc<dyn Fn(usize, u64) -> (&'static str, Bytes) + Send + Sync>;

/// Throughput of `clients` concurrent keep-alive clients over `rounds` windows.
async fn throughput(
    target: &Target,
    name: &str,
    clients: usize,
    units_per_request: f64,
    unit_name: &str,
    sizes: Sizes,
    make: MakeRequest,
) -> Result<Value> {
    let mut per_round = Vec::new();
    let mut latencies = Vec::new();
    let mut requests = 0u64;
    let mut errors = 0u64;
    let mut first_error: Option<String> = None;
    let mut seq_base = 0u64;
    for round in 0..sizes.rounds {
        let mut conns = Vec::new();
        for _ in 0..clients {
            conns.push(Conn::connect(target).await?);
        }
        let start = Instant::now();
        let window_start = start + Duration::from_secs_f64(sizes.warmup_secs);
        let end = window_start + Duration::from_secs_f64(sizes.round_secs);
        let mut tasks = Vec::new();
        for (worker, mut conn) in conns.into_iter().enumerate() {
            let make = make.clone();
            let base = seq_base;
            tasks.push(tokio::spawn(async move {
                let mut done: Vec<(Instant, Instant, bool)> = Vec::new();
                let mut error: Option<String> = None;
                let mut seq = base;
                while Instant::now() < end {
                    let (path, payload) = make(worker, seq);
                    seq += 1;
                    let t0 = Instant::now();
                    let ok = match conn.post(path, payload).await {
                        Ok(reply) if reply.status == 200 => true,
                        Ok(reply) => {
                            error.get_or_insert_with(|| {
                                format!(
                                    "HTTP {}: {}",
                                    reply.status,
                                    String::from_utf8_lossy(
                                        &reply.body[..reply.body.len().min(300)]
                                    )
                                )
                            });
                            false
                        }
                        Err(e) => {
                            error.get_or_insert_with(|| format!("{e:#}"));
                            // Reconnect on a broken connection.
                            if let Ok(fresh) = Conn::connect(&conn_target(&conn)).await {
                                conn = fresh;
                            }
                            false
                        }
                    };
                    done.push((t0, Instant::now(), ok));
                }
                (done, error, seq)
            }));
        }
        // Each request counts by the share of its duration inside the window,
        // so slow servers (requests of ~1 s) are not rounded to whole requests.
        let mut ok_in_window = 0f64;
        let mut max_seq = seq_base;
        for task in tasks {
            let (done, error, seq) = task.await?;
            max_seq = max_seq.max(seq);
            if first_error.is_none() {
                first_error = error;
            }
            for (t0, t1, ok) in done {
                let lo = t0.max(window_start);
                let hi = t1.min(end);
                if hi <= lo {
                    continue;
                }
                let share = (hi - lo).as_secs_f64() / (t1 - t0).as_secs_f64().max(1e-9);
                requests += 1;
                if ok {
                    ok_in_window += share;
                    latencies.push((t1 - t0).as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
        }
        // Every worker's sequence numbers stay unique across rounds.
        seq_base = max_seq + 1_000_000;
        let rate = ok_in_window * units_per_request / sizes.round_secs;
        progress!("  {name} round {}: {rate:.1} {unit_name}", round + 1);
        per_round.push(rate);
    }
    if let Some(e) = &first_error {
        progress!("  {name}: {errors} failed request(s), first: {e}");
    }
    Ok(json!({
        "kind": "throughput",
        "unit": unit_name,
        "value": median(&per_round),
        "rounds": per_round,
        "clients": clients,
        "requests": requests,
        "errors": errors,
        "first_error": first_error,
        "latency_ms_p50": percentile(&latencies, 50.0),
        "latency_ms_p99": percentile(&latencies, 99.0),
    }))
}

fn conn_target(conn: &Conn) -> Target {
    conn.target().clone()
}

/// Sequential repetitions of a read, timed; the median is the figure.
pub(crate) fn timed_summary(unit_name: &str, samples: &[f64], extra: Value) -> Value {
    let mut v = json!({
        "kind": "latency",
        "unit": unit_name,
        "value": median(samples),
        "samples": samples,
        "min": samples.iter().copied().fold(f64::INFINITY, f64::min),
        "max": samples.iter().copied().fold(0.0, f64::max),
    });
    if let (Some(map), Value::Object(more)) = (v.as_object_mut(), extra) {
        map.extend(more);
    }
    v
}

fn status_kb(path: String, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Memory of a server's process tree: `pid` and every descendant (VmRSS and
/// Pss sums), and the web-server part alone: the first process in the tree
/// whose command line names uvicorn or gunicorn, with its workers (for Quiver,
/// which has no such process, the root itself).
/// Busy and total CPU jiffies of the whole machine, from `/proc/stat`.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    let total: u64 = fields.iter().take(8).sum();
    Some((total - idle, total))
}

/// Waits (at most a minute) until the machine is quiet: under 15% of its
/// CPUs busy over a whole second. The read workloads start from a settled
/// database on either server, not in the middle of the maintenance that a
/// bulk load sets off (Quiver's statistics refresh, autovacuum, MLflow's job
/// consumers). Returns the seconds waited.
pub async fn settle(label: &str) -> f64 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let Some((busy0, total0)) = cpu_jiffies() else {
            break;
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some((busy1, total1)) = cpu_jiffies() else {
            break;
        };
        let share = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
        if share < 0.15 {
            break;
        }
    }
    let waited = start.elapsed().as_secs_f64();
    progress!("{label}: machine quiet after {waited:.1} s");
    waited
}

pub fn memory(pid: u32) -> Value {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                && let Some(after) = stat.rsplit_once(") ").map(|(_, a)| a)
                && let Some(ppid) = after.split_whitespace().nth(1)
                && let Ok(ppid) = ppid.parse::<u32>()
            {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let subtree = |root: u32| {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            out.push(p);
            if let Some(kids) = children.get(&p) {
                stack.extend(kids);
            }
        }
        out
    };
    let all = subtree(pid);
    let web_root = all
        .iter()
        .copied()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("uvicorn") || c.contains("gunicorn")
                })
                .unwrap_or(false)
        })
        .unwrap_or(pid);
    let web = subtree(web_root);
    let rss = |ps: &[u32]| -> u64 {
        ps.iter()
            .filter_map(|p| status_kb(format!("/proc/{p}/status"), "VmRSS:"))
            .sum()
    };
    let pss = |ps: &[u32]| -> u64 {
        ps.iter()
            .filter_map(|p| status_kb(format!("/proc/{p}/smaps_rollup"), "Pss:"))
            .sum()
    };
    json!({
        "rss_kb": rss(&web),
        "pss_kb": pss(&web),
        "processes": web.len(),
        "tree_rss_kb": rss(&all),
        "tree_pss_kb": pss(&all),
        "tree_processes": all.len(),
    })
}

pub async fn run_all(
    base_url: &str,
    label: &str,
    pid: Option<u32>,
    scale: f64,
    only: &[String],
    probe: Option<&DbProbe>,
) -> Result<Value> {
    let want = |group: &str| only.is_empty() || only.iter().any(|g| g == group);
    let target = Target::parse(base_url)?;
    let sizes = Sizes::new(scale);
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    progress!("{label}: {base_url}, {sizes:?}");
    let mut results = serde_json::Map::new();
    let mem_idle = pid.map(memory);
    if let Some(m) = &mem_idle {
        progress!("{label}: idle memory {m}");
    }

    let mut conn = Conn::connect(&target).await?;

    // Warm-up, untimed: 32 connections × a few store reads, so every server
    // worker has opened its database pool before anything is measured.
    progress!("{label}: warm-up");
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&target).await?;
            for _ in 0..4 {
                conn.post(
                    "experiments/search",
                    body(&json!({"max_results": 10, "view_type": "ACTIVE_ONLY"})),
                )
                .await?
                .json()?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }

    // The round-trip floors every request pays here.
    let mut floors = json!({"http_ms": crate::dbtime::http_floor_ms(&mut conn, label).await?});
    if let Some(probe) = probe {
        let ms = probe.round_trip_ms().await?;
        progress!("{label}: Postgres SELECT 1 median {ms:.3} ms");
        floors["postgres_ms"] = json!(ms);
    }
    results.insert("floors".into(), floors);

    let mut setup_secs = 0.0;
    if want("tracking") {
        // --- create_run, 32 clients
        progress!("{label}: create_run, 32 clients");
        let exp = create_experiment(&mut conn, &format!("bench-create-{tag}")).await?;
        let exp2 = exp.clone();
        let make: MakeRequest = Arc::new(move |w, seq| {
            (
                "runs/create",
                create_run_body(&exp2, &format!("r-{w}-{seq}")),
            )
        });
        results.insert(
            "create_run_32".into(),
            throughput(&target, "create_run", 32, 1.0, "runs/s", sizes, make).await?,
        );

        // --- log_metric, 32 clients into 32 pre-created runs
        progress!("{label}: log_metric, 32 clients");
        let exp = create_experiment(&mut conn, &format!("bench-logmetric-{tag}")).await?;
        let mut runs = Vec::new();
        for i in 0..32 {
            runs.push(create_run(&mut conn, &exp, &format!("lm-{i}")).await?);
        }
        let runs = Arc::new(runs);
        let r2 = runs.clone();
        let make: MakeRequest = Arc::new(move |w, seq| {
            let run = &r2[w];
            (
                "runs/log-metric",
                body(&json!({
                    "run_id": run, "run_uuid": run, "key": "loss",
                    "value": unit(seq ^ (w as u64) << 40), "timestamp": now_ms(), "step": seq,
                })),
            )
        });
        results.insert(
            "log_metric_32".into(),
            throughput(&target, "log_metric", 32, 1.0, "req/s", sizes, make).await?,
        );

        // --- log-batch, 1000 points per request, 1 and 4 clients (each its own run)
        for clients in [1usize, 4] {
            progress!("{label}: log-batch 1000 points, {clients} client(s)");
            let exp = create_experiment(&mut conn, &format!("bench-batch{clients}-{tag}")).await?;
            let mut runs = Vec::new();
            for i in 0..clients {
                runs.push(create_run(&mut conn, &exp, &format!("lb-{i}")).await?);
            }
            let runs = Arc::new(runs);
            let make: MakeRequest =
                Arc::new(move |w, seq| ("runs/log-batch", metric_batch(&runs[w], seq, w as u64)));
            results.insert(
                format!("log_batch_{clients}"),
                throughput(
                    &target,
                    "log-batch",
                    clients,
                    1000.0,
                    "points/s",
                    sizes,
                    make,
                )
                .await?,
            );
        }

        // --- data for the read workloads (not timed)
        let setup_start = Instant::now();
        progress!(
            "{label}: setup: {} runs with acc/loss/param, and {} points of one metric",
            sizes.search_runs,
            sizes.history_points
        );
        let search_exp = create_experiment(&mut conn, &format!("bench-search-{tag}")).await?;
        let history_exp = create_experiment(&mut conn, &format!("bench-history-{tag}")).await?;
        let history_run = create_run(&mut conn, &history_exp, "history").await?;
        let history_task = {
            let target = target.clone();
            let run = history_run.clone();
            let points = sizes.history_points;
            tokio::spawn(async move {
                let mut conn = Conn::connect(&target).await?;
                for chunk in 0..points / 1000 {
                    let ts = now_ms();
                    let metrics: Vec<Value> = (0..1000)
                    .map(|i| {
                        let step = (chunk * 1000 + i) as u64;
                        json!({"key": "loss", "value": unit(step), "timestamp": ts, "step": step})
                    })
                    .collect();
                    conn.post(
                        "runs/log-batch",
                        body(&json!({"run_id": run, "metrics": metrics, "params": [], "tags": []})),
                    )
                    .await?
                    .json()?;
                }
                anyhow::Ok(())
            })
        };
        let setup_workers = 8;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..setup_workers {
            let target = target.clone();
            let next = next.clone();
            let exp = search_exp.clone();
            let n = sizes.search_runs;
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::connect(&target).await?;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    if i > 0 && i.is_multiple_of(2000) {
                        progress!("  setup: {i}/{n} runs");
                    }
                    let run = create_run(&mut conn, &exp, &format!("s-{i}")).await?;
                    let ts = now_ms();
                    conn.post(
                    "runs/log-batch",
                    body(&json!({
                        "run_id": run,
                        "metrics": [
                            {"key": "acc", "value": unit(i as u64), "timestamp": ts, "step": 0},
                            {"key": "loss", "value": unit(!(i as u64)), "timestamp": ts, "step": 0},
                        ],
                        "params": [{"key": "lr", "value": format!("{}", (i % 10) as f64 / 100.0)}],
                        "tags": [],
                    })),
                )
                .await?
                .json()?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        history_task.await??;
        setup_secs = setup_start.elapsed().as_secs_f64();
        progress!("{label}: setup done in {setup_secs:.1} s");
        let settle_secs = settle(label).await;
        results.insert("read_settle_secs".into(), json!(settle_secs));

        // What the search must return (same values on both servers).
        let mut accs: Vec<f64> = (0..sizes.search_runs)
            .map(|i| unit(i as u64))
            .filter(|a| *a > 0.5)
            .collect();
        accs.sort_by(|a, b| b.total_cmp(a));
        let expected_hits = accs.len().min(100);

        // --- search_runs: filter + order_by, max_results 100
        progress!("{label}: search_runs x{}", sizes.search_reps);
        let search_body = body(&json!({
            "experiment_ids": [search_exp],
            "filter": "metrics.acc > 0.5",
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 100,
            "order_by": ["metrics.acc DESC"],
        }));
        let mut samples = Vec::new();
        let mut warmup: Vec<f64> = Vec::new();
        let mut top = f64::NAN;
        for rep in 0..sizes.search_reps + 2 {
            if rep == 2 {
                dbtime::reset(probe).await?;
            }
            let t0 = Instant::now();
            let reply: replies::Runs = conn
                .post("runs/search", search_body.clone())
                .await?
                .parse()?;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            let runs = reply.runs.len();
            if runs != expected_hits {
                bail!("search returned {runs} runs, expected {expected_hits}");
            }
            top = reply.runs[0]
                .data
                .metrics
                .iter()
                .find(|m| m.key == "acc")
                .and_then(|m| m.value.as_f64())
                .unwrap_or(f64::NAN);
            if rep >= 2 {
                samples.push(ms);
            } else {
                warmup.push(ms);
            }
        }
        if (top - accs[0]).abs() > 1e-12 {
            bail!("search top acc {top} != expected {}", accs[0]);
        }
        progress!("  search median {:.1} ms", median(&samples));
        let mut value = timed_summary(
            "ms",
            &samples,
            json!({"warmup_ms": warmup, "runs_in_experiment": sizes.search_runs, "returned": expected_hits}),
        );
        dbtime::record(probe, &samples, &mut value).await?;
        results.insert("search_runs".into(), value);

        // --- paging all runs, max_results 1000
        progress!(
            "{label}: paging {} runs x{}",
            sizes.search_runs,
            sizes.paging_reps
        );
        let mut samples = Vec::new();
        let mut warmup: Vec<f64> = Vec::new();
        let mut pages = 0;
        for rep in 0..sizes.paging_reps + 1 {
            if rep == 1 {
                dbtime::reset(probe).await?;
            }
            let t0 = Instant::now();
            let mut token: Option<String> = None;
            let mut total = 0;
            pages = 0;
            loop {
                let mut req = json!({
                    "experiment_ids": [search_exp],
                    "filter": "",
                    "run_view_type": "ACTIVE_ONLY",
                    "max_results": 1000,
                });
                if let Some(t) = &token {
                    req["page_token"] = json!(t);
                }
                let reply: replies::Page = conn.post("runs/search", body(&req)).await?.parse()?;
                total += reply.items.len();
                pages += 1;
                token = reply.next();
                if token.is_none() {
                    break;
                }
            }
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if total != sizes.search_runs {
                bail!(
                    "paging returned {total} runs, expected {}",
                    sizes.search_runs
                );
            }
            if rep >= 1 {
                samples.push(ms);
            } else {
                warmup.push(ms);
            }
        }
        progress!("  paging median {:.1} ms ({pages} pages)", median(&samples));
        let mut value = timed_summary(
            "ms",
            &samples,
            json!({"warmup_ms": warmup, "runs": sizes.search_runs, "pages": pages}),
        );
        dbtime::record(probe, &samples, &mut value).await?;
        results.insert("paging".into(), value);

        // --- get-history, paged like the client (max_results 25000 + page_token)
        progress!(
            "{label}: get-history {} points x{}",
            sizes.history_points,
            sizes.history_reps
        );
        let mut samples = Vec::new();
        let mut warmup: Vec<f64> = Vec::new();
        let mut pages = 0;
        for rep in 0..sizes.history_reps + 1 {
            if rep == 1 {
                dbtime::reset(probe).await?;
            }
            let t0 = Instant::now();
            let mut token: Option<String> = None;
            let mut total = 0;
            pages = 0;
            loop {
                let mut query = format!(
                    "run_id={history_run}&run_uuid={history_run}&metric_key=loss&max_results=25000"
                );
                if let Some(t) = &token {
                    query.push_str("&page_token=");
                    query.push_str(
                        &percent_encoding::utf8_percent_encode(
                            t,
                            percent_encoding::NON_ALPHANUMERIC,
                        )
                        .to_string(),
                    );
                }
                let reply: replies::Page =
                    conn.get("metrics/get-history", &query).await?.parse()?;
                total += reply.items.len();
                pages += 1;
                token = reply.next();
                if token.is_none() {
                    break;
                }
            }
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if total != sizes.history_points {
                bail!(
                    "get-history returned {total} points, expected {}",
                    sizes.history_points
                );
            }
            if rep >= 1 {
                samples.push(ms);
            } else {
                warmup.push(ms);
            }
        }
        progress!(
            "  get-history median {:.1} ms ({pages} pages)",
            median(&samples)
        );
        let mut value = timed_summary(
            "ms",
            &samples,
            json!({"warmup_ms": warmup, "points": sizes.history_points, "pages": pages}),
        );
        dbtime::record(probe, &samples, &mut value).await?;
        results.insert("get_history".into(), value);
    }
    if want("registry") {
        crate::registry::run(&target, label, &tag, scale, probe, &mut results).await?;
    }
    if want("artifacts") {
        crate::artifacts::run(&target, label, pid, &tag, scale, &mut results).await?;
    }

    let mem_after = pid.map(memory);
    Ok(json!({
        "label": label,
        "base_url": base_url,
        "scale": scale,
        "sizes": format!("{sizes:?}"),
        "memory_idle": mem_idle,
        "memory_after": mem_after,
        "setup_secs": setup_secs,
        "workloads": results,
    }))
}
