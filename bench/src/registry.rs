//! Model-registry workloads: 100 registered models × N/100 versions (10,000
//! versions at full scale), then search_registered_models,
//! search_model_versions and get-latest-versions, shaped as the stock client
//! sends them (it adds the prompt-exclusion clause to every search).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

use crate::client::{Conn, Target};
use crate::dbtime::{self, DbProbe};
use crate::median;
use crate::progress;
use crate::replies;
use crate::workloads::{body, create_experiment, create_run, timed_summary};

const MODELS: usize = 100;
const REPS: usize = 20;
const PROMPT_CLAUSE: &str = "tag.`mlflow.prompt.is_prompt` != 'true'";

fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Times `reps` calls of `call` (which also checks the reply) after 2 untimed ones.
/// With a probe, also records the database's share of the timed calls.
async fn timed(
    label: &str,
    conn: &mut Conn,
    reps: usize,
    probe: Option<&DbProbe>,
    mut call: impl AsyncFnMut(&mut Conn, usize) -> Result<()>,
) -> Result<Value> {
    let mut samples = Vec::new();
    let mut warmup = Vec::new();
    for rep in 0..reps + 2 {
        if rep == 2 {
            dbtime::reset(probe).await?;
        }
        let t0 = Instant::now();
        call(conn, rep).await?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if rep >= 2 {
            samples.push(ms);
        } else {
            warmup.push(ms);
        }
    }
    progress!("  {label} median {:.1} ms", median(&samples));
    let mut value = timed_summary("ms", &samples, json!({"warmup_ms": warmup}));
    dbtime::record(probe, &samples, &mut value).await?;
    Ok(value)
}

pub async fn run(
    target: &Target,
    label: &str,
    tag: &str,
    scale: f64,
    probe: Option<&DbProbe>,
    results: &mut Map<String, Value>,
) -> Result<()> {
    let per_model = ((10_000.0 * scale.clamp(0.001, 10.0)) as usize / MODELS).max(5);
    let total = per_model * MODELS;
    let mut conn = Conn::connect(target).await?;
    let setup = Instant::now();
    progress!("{label}: registry setup: {MODELS} models × {per_model} versions");
    let exp = create_experiment(&mut conn, &format!("bench-registry-{tag}")).await?;
    let run = create_run(&mut conn, &exp, "registry-source").await?;
    let model = |i: usize| format!("bm-{tag}-{i:03}");
    for i in 0..MODELS {
        conn.post(
            "registered-models/create",
            body(&json!({"name": model(i), "tags": [{"key": "team", "value": format!("t{}", i % 4)}]})),
        )
        .await?
        .json()?;
    }
    // Versions are created model by model (each model's numbers are serial
    // anyway); 8 workers take models from a shared counter.
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let target = target.clone();
        let next = next.clone();
        let run = run.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&target).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= MODELS {
                    break;
                }
                for _ in 0..per_model {
                    conn.post(
                        "model-versions/create",
                        body(&json!({
                            "name": format!("bm-{tag}-{i:03}"),
                            "source": format!("runs:/{run}/model"),
                            "run_id": run,
                        })),
                    )
                    .await?
                    .json()?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    // Every model gets a Production version (the second-to-last) and a
    // Staging one (the last).
    for i in 0..MODELS {
        for (version, stage) in [(per_model - 1, "Production"), (per_model, "Staging")] {
            conn.post(
                "model-versions/transition-stage",
                body(
                    &json!({"name": model(i), "version": version.to_string(), "stage": stage,
                    "archive_existing_versions": false}),
                ),
            )
            .await?
            .json()?;
        }
    }
    let setup_secs = setup.elapsed().as_secs_f64();
    progress!("{label}: registry setup done in {setup_secs:.1} s");
    results.insert("registry_setup_secs".into(), json!(setup_secs));
    let settle_secs = crate::workloads::settle(label).await;
    results.insert("registry_settle_secs".into(), json!(settle_secs));

    // search_registered_models: all 100 models of this run (each with its
    // latest versions per stage), max_results 100.
    progress!("{label}: search_registered_models x{REPS}");
    let q = query(&[
        (
            "filter",
            &format!("name LIKE 'bm-{tag}-%' AND {PROMPT_CLAUSE}"),
        ),
        ("max_results", "100"),
    ]);
    let value = timed(
        "search_registered_models",
        &mut conn,
        REPS,
        probe,
        async |conn, _| {
            let reply: replies::Models = conn.get("registered-models/search", &q).await?.parse()?;
            let models = reply.registered_models.len();
            let latest = reply
                .registered_models
                .first()
                .map_or(0, |m| m.latest_versions.len());
            if models != MODELS || latest != 3 {
                bail!("registered-models/search: {models} models, {latest} latest versions");
            }
            Ok(())
        },
    )
    .await?;
    results.insert("search_registered_models".into(), value);

    // search_model_versions over all versions: `version_number > N` picks the
    // newest 5 of each model (500 versions), ordered by version.
    progress!("{label}: search_model_versions x{REPS}");
    let threshold = (per_model - 5).to_string();
    let q = query(&[
        (
            "filter",
            &format!("name LIKE 'bm-{tag}-%' AND version_number > {threshold} AND {PROMPT_CLAUSE}"),
        ),
        ("max_results", "1000"),
        ("order_by", "version_number DESC"),
    ]);
    let value = timed(
        "search_model_versions",
        &mut conn,
        REPS,
        probe,
        async |conn, _| {
            let reply: replies::Page = conn.get("model-versions/search", &q).await?.parse()?;
            let found = reply.items.len();
            if found != MODELS * 5 {
                bail!(
                    "model-versions/search: {found} versions, expected {}",
                    MODELS * 5
                );
            }
            Ok(())
        },
    )
    .await?;
    results.insert("search_model_versions".into(), value);

    // get-latest-versions, as `models:/name/Production` resolves it.
    progress!("{label}: get-latest-versions x{}", REPS * 5);
    let expected = (per_model - 1).to_string();
    let value = timed(
        "get_latest_versions",
        &mut conn,
        REPS * 5,
        probe,
        async |conn, rep| {
            let name = model(rep * 37 % MODELS);
            let reply: replies::Versions = conn
                .post(
                    "registered-models/get-latest-versions",
                    body(&json!({"name": name, "stages": ["Production"]})),
                )
                .await?
                .parse()?;
            let versions: Vec<&str> = reply
                .model_versions
                .iter()
                .map(|v| v.version.as_str())
                .collect();
            if versions != [expected.as_str()] {
                bail!(
                    "get-latest-versions of {name}: versions {versions:?}, expected [{expected}]"
                );
            }
            Ok(())
        },
    )
    .await?;
    results.insert("get_latest_versions".into(), value);
    results.insert(
        "registry_versions".into(),
        json!({"models": MODELS, "versions": total}),
    );
    Ok(())
}
