//! `quiver gc`: the store's listing and hard-delete methods on SQLite and
//! Postgres, and the artifacts service's purge on every store; the real
//! binary end to end is in `gc/end_to_end.rs`.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use quiver_artifacts::path::ArtifactPath;
use quiver_artifacts::{ArtifactsApi, ArtifactsService, ByteStream};
use quiver_common::{ApiError, ErrorCode, Namespace, RequestContext};
use quiver_e2e::{Backend, Guard, tracking_api};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::tracking::v1 as pb;
use quiver_tracking::TrackingApi;
use quiver_tracking::store::{GcStore, Lifecycle, SqlTrackingStore};

mod end_to_end;

// ----------------------------------------------------------------- store

struct Env {
    api: Arc<dyn TrackingApi>,
    store: SqlTrackingStore,
    ctx: RequestContext,
    guard: Guard,
}

async fn env(backend: Backend) -> Env {
    let (api, guard) = tracking_api(backend).await;
    let store = SqlTrackingStore::new(guard.database.clone());
    Env {
        api,
        store,
        ctx: RequestContext::default_namespace(),
        guard,
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn ns(name: &str) -> Namespace {
    Namespace::parse(name).unwrap()
}

/// Tables keyed by (namespace, model_id) that hold a logged model's data.
const MODEL_TABLES: [&str; 4] = [
    "logged_models",
    "logged_model_params",
    "logged_model_tags",
    "logged_model_metrics",
];

/// Tables keyed by `run_key` that hold a run's data.
const RUN_TABLES: &[&str] = &[
    "metric_chunks",
    "latest_metrics",
    "params",
    "tags",
    "dataset_inputs",
    "model_inputs",
    "model_outputs",
    "logged_model_metrics",
];

impl Env {
    async fn experiment_in(&self, ctx: &RequestContext, name: &str) -> String {
        self.api
            .create_experiment(
                ctx,
                pb::CreateExperimentRequest {
                    name: name.to_string(),
                    tags: vec![kv("team", "gc")],
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .experiment_id
    }

    async fn experiment(&self, name: &str) -> String {
        self.experiment_in(&self.ctx, name).await
    }

    async fn run_in(&self, ctx: &RequestContext, experiment_id: &str) -> String {
        self.api
            .create_run(
                ctx,
                pb::CreateRunRequest {
                    experiment_id: experiment_id.to_string(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .run
            .unwrap()
            .info
            .unwrap()
            .run_id
    }

    async fn run(&self, experiment_id: &str) -> String {
        self.run_in(&self.ctx, experiment_id).await
    }

    async fn model(&self, experiment_id: &str) -> String {
        self.api
            .create_logged_model(
                &self.ctx,
                pb::CreateLoggedModelRequest {
                    experiment_id: experiment_id.to_string(),
                    name: "model".to_string(),
                    params: vec![kv("C", "1")],
                    tags: vec![kv("flavor", "sklearn")],
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .model
            .unwrap()
            .info
            .unwrap()
            .model_id
    }

    /// Gives a run a row in every table keyed by its run_key.
    async fn fill(&self, run_id: &str, model_id: &str) {
        let metric = |key: &str, model: &str| pb::Metric {
            key: key.to_string(),
            value: 0.5,
            timestamp: 1,
            step: 0,
            model_id: model.to_string(),
            ..Default::default()
        };
        self.api
            .log_batch(
                &self.ctx,
                pb::LogBatchRequest {
                    run_id: run_id.to_string(),
                    metrics: vec![metric("loss", ""), metric("acc", model_id)],
                    params: vec![kv("lr", "0.1")],
                    tags: vec![kv("k", "v")],
                },
            )
            .await
            .unwrap();
        self.api
            .log_inputs(
                &self.ctx,
                pb::LogInputsRequest {
                    run_id: run_id.to_string(),
                    datasets: vec![pb::DatasetInput {
                        tags: vec![kv("mlflow.data.context", "train")],
                        dataset: Some(pb::Dataset {
                            name: "d".into(),
                            digest: "1".into(),
                            source_type: "local".into(),
                            source: "{}".into(),
                            ..Default::default()
                        }),
                    }],
                    models: vec![pb::ModelInput {
                        model_id: model_id.to_string(),
                    }],
                },
            )
            .await
            .unwrap();
        self.api
            .log_outputs(
                &self.ctx,
                pb::LogOutputsRequest {
                    run_id: run_id.to_string(),
                    models: vec![pb::ModelOutput {
                        model_id: model_id.to_string(),
                        step: 0,
                    }],
                },
            )
            .await
            .unwrap();
    }

    async fn delete_run(&self, run_id: &str) {
        self.api
            .delete_run(
                &self.ctx,
                pb::DeleteRunRequest {
                    run_id: run_id.to_string(),
                },
            )
            .await
            .unwrap();
    }

    async fn delete_experiment_in(&self, ctx: &RequestContext, experiment_id: &str) {
        self.api
            .delete_experiment(
                ctx,
                pb::DeleteExperimentRequest {
                    experiment_id: experiment_id.to_string(),
                },
            )
            .await
            .unwrap();
    }

    async fn get_run(&self, run_id: &str) -> Result<pb::GetRunResponse, ApiError> {
        self.api
            .get_run(
                &self.ctx,
                pb::GetRunRequest {
                    run_id: run_id.to_string(),
                },
            )
            .await
    }

    async fn run_key(&self, run_id: &str) -> i64 {
        sqlx::query_scalar("SELECT run_key FROM runs WHERE run_uuid = $1")
            .bind(run_id)
            .fetch_one(&self.guard.database.reader)
            .await
            .unwrap()
    }

    /// Rows per run-keyed table for `run_key`.
    async fn run_rows(&self, run_key: i64) -> Vec<(&'static str, i64)> {
        let mut counts = Vec::new();
        for table in RUN_TABLES {
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} WHERE run_key = $1"
            )))
            .bind(run_key)
            .fetch_one(&self.guard.database.reader)
            .await
            .unwrap();
            counts.push((*table, count));
        }
        counts
    }

    /// Rows of `table` for an experiment of the default namespace.
    async fn experiment_rows(&self, table: &str, experiment_id: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE namespace = 'default' AND experiment_id = $1"
        )))
        .bind(experiment_id.parse::<i64>().unwrap())
        .fetch_one(&self.guard.database.reader)
        .await
        .unwrap()
    }

    /// Rows of `table` for a logged model of the default namespace.
    async fn model_rows(&self, table: &str, model_id: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE namespace = 'default' AND model_id = $1"
        )))
        .bind(model_id)
        .fetch_one(&self.guard.database.reader)
        .await
        .unwrap()
    }
}

fn assert_all_present(rows: &[(&str, i64)]) {
    for (table, count) in rows {
        assert!(*count > 0, "{table} should have rows: {rows:?}");
    }
}

fn assert_all_gone(rows: &[(&str, i64)]) {
    for (table, count) in rows {
        assert_eq!(*count, 0, "{table} still has rows: {rows:?}");
    }
}

pub async fn hard_delete_run_removes_a_deleted_run_and_everything_below(backend: Backend) {
    let env = env(backend).await;
    let default = ns("default");
    let exp = env.experiment("gc-run").await;
    let model = env.model(&exp).await;
    let doomed = env.run(&exp).await;
    let kept = env.run(&exp).await;
    env.fill(&doomed, &model).await;
    env.fill(&kept, &model).await;
    let doomed_key = env.run_key(&doomed).await;
    let kept_key = env.run_key(&kept).await;
    assert_all_present(&env.run_rows(doomed_key).await);

    // Active runs are never removed.
    assert!(!env.store.hard_delete_run(&default, &doomed).await.unwrap());
    env.delete_run(&doomed).await;
    assert!(!env.store.hard_delete_run(&default, &kept).await.unwrap());
    // Another namespace cannot reach it.
    assert!(
        !env.store
            .hard_delete_run(&ns("other"), &doomed)
            .await
            .unwrap()
    );
    assert_all_present(&env.run_rows(doomed_key).await);

    assert!(env.store.hard_delete_run(&default, &doomed).await.unwrap());
    let error = env.get_run(&doomed).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::ResourceDoesNotExist);
    assert_all_gone(&env.run_rows(doomed_key).await);
    // The neighbour and the experiment's logged model are untouched.
    assert_all_present(&env.run_rows(kept_key).await);
    let run = env.get_run(&kept).await.unwrap().run.unwrap();
    assert_eq!(run.data.unwrap().params.len(), 1);
    env.api
        .get_logged_model(
            &env.ctx,
            pb::GetLoggedModelRequest {
                model_id: model,
                allow_deleted: false,
            },
        )
        .await
        .unwrap();
    // Idempotent.
    assert!(!env.store.hard_delete_run(&default, &doomed).await.unwrap());
}

pub async fn hard_delete_experiment_removes_everything_below(backend: Backend) {
    let env = env(backend).await;
    let default = ns("default");
    let doomed = env.experiment("gc-exp").await;
    let kept = env.experiment("gc-keep").await;
    let doomed_model = env.model(&doomed).await;
    let kept_model = env.model(&kept).await;
    let first = env.run(&doomed).await;
    let second = env.run(&doomed).await;
    let kept_run = env.run(&kept).await;
    env.fill(&first, &doomed_model).await;
    env.fill(&second, &doomed_model).await;
    env.fill(&kept_run, &kept_model).await;
    let keys = [env.run_key(&first).await, env.run_key(&second).await];
    let kept_key = env.run_key(&kept_run).await;

    assert!(
        !env.store
            .hard_delete_experiment(&default, doomed.parse().unwrap())
            .await
            .unwrap()
    );
    env.delete_experiment_in(&env.ctx, &doomed).await;
    // A run restored inside the deleted experiment goes with it all the same.
    env.api
        .restore_run(
            &env.ctx,
            pb::RestoreRunRequest {
                run_id: second.clone(),
            },
        )
        .await
        .unwrap();
    let error = env
        .store
        .hard_delete_experiment(&default, 0)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameterValue);
    assert!(
        !env.store
            .hard_delete_experiment(&default, kept.parse().unwrap())
            .await
            .unwrap()
    );
    assert!(
        !env.store
            .hard_delete_experiment(&default, 999)
            .await
            .unwrap()
    );
    assert!(
        !env.store
            .hard_delete_experiment(&ns("other"), doomed.parse().unwrap())
            .await
            .unwrap()
    );

    let (runs, models) = env
        .store
        .experiment_contents(&default, doomed.parse().unwrap())
        .await
        .unwrap();
    let mut run_ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    run_ids.sort_unstable();
    let mut expected = vec![first.as_str(), second.as_str()];
    expected.sort_unstable();
    assert_eq!(run_ids, expected);
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].model_id, doomed_model);
    assert!(
        models[0]
            .artifact_location
            .ends_with(&format!("/models/{doomed_model}/artifacts"))
    );

    assert!(
        env.store
            .hard_delete_experiment(&default, doomed.parse().unwrap())
            .await
            .unwrap()
    );
    let error = env
        .api
        .get_experiment(
            &env.ctx,
            pb::GetExperimentRequest {
                experiment_id: doomed.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ResourceDoesNotExist);
    for run in [&first, &second] {
        assert_eq!(
            env.get_run(run).await.unwrap_err().code,
            ErrorCode::ResourceDoesNotExist
        );
    }
    for key in keys {
        assert_all_gone(&env.run_rows(key).await);
    }
    for table in [
        "experiments",
        "experiment_tags",
        "runs",
        "datasets",
        "logged_models",
    ] {
        assert_eq!(env.experiment_rows(table, &doomed).await, 0, "{table}");
    }
    for table in MODEL_TABLES {
        assert_eq!(env.model_rows(table, &doomed_model).await, 0, "{table}");
    }
    // The other experiment keeps everything; the name is free again.
    assert_all_present(&env.run_rows(kept_key).await);
    for table in ["experiment_tags", "datasets"] {
        assert_eq!(env.experiment_rows(table, &kept).await, 1, "{table}");
    }
    for table in MODEL_TABLES {
        assert_eq!(env.model_rows(table, &kept_model).await, 1, "{table}");
    }
    env.experiment("gc-exp").await;
    assert!(
        !env.store
            .hard_delete_experiment(&default, doomed.parse().unwrap())
            .await
            .unwrap()
    );
}

pub async fn gc_candidates_respect_age_stage_and_namespace(backend: Backend) {
    let env = env(backend).await;
    let default = ns("default");
    let other_ctx = RequestContext::new(ns("other"));
    let exp = env.experiment("gc-list").await;
    let empty = env.experiment("gc-empty").await;
    let deleted = env.run(&exp).await;
    let active = env.run(&exp).await;
    let in_default = env.run("0").await;
    let other_exp = env.experiment_in(&other_ctx, "gc-list").await;
    let other_run = env.run_in(&other_ctx, &other_exp).await;

    let before = quiver_common::time::now_millis() - 1;
    env.delete_run(&deleted).await;
    env.delete_experiment_in(&env.ctx, &empty).await;
    env.delete_experiment_in(&env.ctx, "0").await;
    env.delete_experiment_in(&other_ctx, &other_exp).await;
    let after = quiver_common::time::now_millis() + 1;

    let none = env
        .store
        .list_gc_candidates(&default, before)
        .await
        .unwrap();
    assert!(
        none.runs.is_empty() && none.experiments.is_empty(),
        "{none:?}"
    );
    let all = env.store.list_gc_candidates(&default, after).await.unwrap();
    let mut run_ids: Vec<&str> = all.runs.iter().map(|r| r.run_id.as_str()).collect();
    run_ids.sort_unstable();
    let mut expected = vec![deleted.as_str(), in_default.as_str()];
    expected.sort_unstable();
    assert_eq!(
        run_ids, expected,
        "active runs and other namespaces are never listed"
    );
    assert!(!run_ids.contains(&active.as_str()) && !run_ids.contains(&other_run.as_str()));
    let experiment_ids: Vec<i64> = all.experiments.iter().map(|e| e.experiment_id).collect();
    assert_eq!(
        experiment_ids,
        vec![empty.parse::<i64>().unwrap()],
        "the default experiment is never a candidate"
    );
    assert!(
        all.runs
            .iter()
            .all(|r| r.lifecycle == Lifecycle::Deleted && r.deleted_time.is_some())
    );

    // A run deleted at an unknown time (e.g. imported) counts as old.
    sqlx::query("UPDATE runs SET deleted_time = NULL WHERE run_uuid = $1")
        .bind(&deleted)
        .execute(&env.guard.database.writer)
        .await
        .unwrap();
    let undated = env.store.list_gc_candidates(&default, 0).await.unwrap();
    assert_eq!(undated.runs.len(), 1);
    assert_eq!(undated.runs[0].run_id, deleted);

    let namespaces = env.store.list_namespaces().await.unwrap();
    assert!(namespaces.contains(&default) && namespaces.contains(&ns("other")));
    let run = env.store.gc_run(&default, &active).await.unwrap().unwrap();
    assert_eq!(run.lifecycle, Lifecycle::Active);
    assert!(run.artifact_uri.ends_with(&format!("/{active}/artifacts")));
    assert!(
        env.store
            .gc_run(&ns("other"), &active)
            .await
            .unwrap()
            .is_none()
    );
    let experiments = env.store.gc_experiments(&default).await.unwrap();
    let ids: Vec<i64> = experiments.iter().map(|e| e.experiment_id).collect();
    assert_eq!(ids, vec![0, exp.parse().unwrap(), empty.parse().unwrap()]);
    assert_eq!(experiments[0].lifecycle, Lifecycle::Deleted);
    assert_eq!(experiments[0].artifact_location, "mlflow-artifacts:/0");
}

macro_rules! gc_store_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::Backend::Sqlite).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::Backend::Postgres).await; } )*
        }
    };
}

gc_store_suite!(
    hard_delete_run_removes_a_deleted_run_and_everything_below,
    hard_delete_experiment_removes_everything_below,
    gc_candidates_respect_age_stage_and_namespace,
);

// ------------------------------------------------------------- artifacts

fn body(data: &'static [u8]) -> ByteStream {
    futures::stream::iter(vec![Ok(Bytes::from_static(data))]).boxed()
}

async fn put(service: &ArtifactsService, namespace: &str, path: &str) {
    service
        .upload(&RequestContext::new(ns(namespace)), path, body(b"x"))
        .await
        .unwrap();
}

async fn exists(service: &ArtifactsService, namespace: &str, path: &str) -> bool {
    match service
        .download(&RequestContext::new(ns(namespace)), path, None)
        .await
    {
        Ok(_) => true,
        Err(error) if error.code == ErrorCode::ResourceDoesNotExist => false,
        Err(error) => panic!("{path}: {error:?}"),
    }
}

fn path(raw: &str) -> ArtifactPath {
    ArtifactPath::parse(raw).unwrap()
}

async fn purge_matches_whole_segments(store: &str) {
    let empty = std::collections::BTreeMap::new();
    let dir = tempfile::tempdir().unwrap();
    let root = match store {
        "local" => quiver_artifacts::storage::open(dir.path().to_str().unwrap(), &empty).unwrap(),
        "memory" => quiver_artifacts::storage::open("memory:///", &empty).unwrap(),
        _ => quiver_e2e::s3_root(),
    };
    let service = ArtifactsService::new(root);
    for file in [
        "1/r1/artifacts/a.txt",
        "1/r1/artifacts/sub/b.txt",
        "1/r2/artifacts/c.txt",
        "10/r3/artifacts/d.txt",
        "1x/e.txt",
        "1.txt",
    ] {
        put(&service, "default", file).await;
    }
    put(&service, "team-b", "1/r1/artifacts/a.txt").await;
    let default = ns("default");

    assert_eq!(
        service.purge(&default, &path("1/r1"), true).await.unwrap(),
        2
    );
    assert!(
        exists(&service, "default", "1/r1/artifacts/a.txt").await,
        "a dry run removes nothing"
    );
    assert_eq!(
        service.purge(&default, &path("1/r1"), false).await.unwrap(),
        2
    );
    assert!(!exists(&service, "default", "1/r1/artifacts/a.txt").await);
    assert!(!exists(&service, "default", "1/r1/artifacts/sub/b.txt").await);
    assert!(exists(&service, "default", "1/r2/artifacts/c.txt").await);

    assert_eq!(service.purge(&default, &path("1"), false).await.unwrap(), 1);
    for (namespace, kept) in [
        ("default", "10/r3/artifacts/d.txt"),
        ("default", "1x/e.txt"),
        ("default", "1.txt"),
        ("team-b", "1/r1/artifacts/a.txt"),
    ] {
        assert!(
            exists(&service, namespace, kept).await,
            "{namespace}/{kept}"
        );
    }
    assert_eq!(service.purge(&default, &path("1"), false).await.unwrap(), 0);
    assert_eq!(
        service
            .purge(&default, &path("nothing/here"), false)
            .await
            .unwrap(),
        0
    );
    let error = service
        .purge(&default, &ArtifactPath::root(), false)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameterValue);
    if store == "local" {
        assert!(
            !dir.path().join("default/1").exists(),
            "empty directories are removed"
        );
        assert!(dir.path().join("default/10/r3").exists());
    }
}

#[tokio::test]
async fn purge_on_a_local_root() {
    purge_matches_whole_segments("local").await;
}

#[tokio::test]
async fn purge_in_memory() {
    purge_matches_whole_segments("memory").await;
}

#[tokio::test]
async fn purge_on_s3() {
    purge_matches_whole_segments("s3").await;
}

#[tokio::test]
async fn purge_never_follows_a_symlink_out_of_a_local_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = quiver_artifacts::storage::open(
        dir.path().to_str().unwrap(),
        &std::collections::BTreeMap::new(),
    )
    .unwrap();
    let service = ArtifactsService::new(root);
    put(&service, "default", "5/r/artifacts/ok.txt").await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious.txt"), b"keep").unwrap();
    std::os::unix::fs::symlink(
        outside.path(),
        dir.path().join("default/5/r/artifacts/escape"),
    )
    .unwrap();
    let error = service
        .purge(&ns("default"), &path("5/r"), false)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidParameterValue);
    assert!(outside.path().join("precious.txt").exists());
    assert!(dir.path().join("default/5/r/artifacts/ok.txt").exists());
}
