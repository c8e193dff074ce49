//! One tracking-API conformance suite, run against every backend: the
//! in-process service on SQLite and on Postgres, and the same behind a real
//! gRPC hop (which proves conversions and error mapping lossless).

use std::sync::Arc;

use quiver_common::{ApiError, ErrorCode, Namespace, RequestContext};
use quiver_e2e::{Backend, Guard, tracking_api};
use quiver_proto::common::v1::{KeyValue, ViewType};
use quiver_proto::tracking::v1 as pb;
use quiver_tracking::TrackingApi;

mod logged_models;
use logged_models::*;

struct Env {
    api: Arc<dyn TrackingApi>,
    ctx: RequestContext,
    _guard: Guard,
}

async fn env(backend: Backend) -> Env {
    let (api, guard) = tracking_api(backend).await;
    Env {
        api,
        ctx: RequestContext::default_namespace(),
        _guard: guard,
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn ns(name: &str) -> RequestContext {
    RequestContext::new(Namespace::parse(name).unwrap())
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, ApiError>, code: ErrorCode) -> ApiError {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(error) => {
            assert_eq!(error.code, code, "{}", error.message);
            error
        }
    }
}

impl Env {
    /// A metric's whole history (one page).
    async fn history(&self, run: &str, key: &str) -> Vec<pb::Metric> {
        self.api
            .get_metric_history(
                &self.ctx,
                pb::GetMetricHistoryRequest {
                    run_id: run.to_string(),
                    metric_key: key.to_string(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .metrics
    }

    /// Reads a metric's whole history, `max_results` per page (0 = all at
    /// once), following page tokens; one entry per page.
    async fn history_pages(&self, run: &str, key: &str, max_results: i32) -> Vec<Vec<pb::Metric>> {
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .api
                .get_metric_history(
                    &self.ctx,
                    pb::GetMetricHistoryRequest {
                        run_id: run.to_string(),
                        metric_key: key.into(),
                        page_token: token.clone(),
                        max_results,
                    },
                )
                .await
                .unwrap();
            pages.push(page.metrics);
            if page.next_page_token.is_empty() {
                return pages;
            }
            token = page.next_page_token;
        }
    }

    async fn experiment(&self, name: &str) -> String {
        self.api
            .create_experiment(
                &self.ctx,
                pb::CreateExperimentRequest {
                    name: name.to_string(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .experiment_id
    }

    async fn run(&self, experiment_id: &str, name: &str, start_time: i64) -> String {
        self.api
            .create_run(
                &self.ctx,
                pb::CreateRunRequest {
                    experiment_id: experiment_id.to_string(),
                    run_name: name.to_string(),
                    start_time,
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

    async fn get_run(&self, run_id: &str) -> pb::Run {
        self.api
            .get_run(
                &self.ctx,
                pb::GetRunRequest {
                    run_id: run_id.to_string(),
                },
            )
            .await
            .unwrap()
            .run
            .unwrap()
    }

    async fn metric(
        &self,
        run_id: &str,
        key: &str,
        value: f64,
        timestamp: i64,
        step: i64,
    ) -> Result<(), ApiError> {
        self.api
            .log_metric(
                &self.ctx,
                pb::LogMetricRequest {
                    run_id: run_id.to_string(),
                    metric: Some(pb::Metric {
                        key: key.to_string(),
                        value,
                        timestamp,
                        step,
                        ..Default::default()
                    }),
                },
            )
            .await
            .map(|_| ())
    }

    async fn param(&self, run_id: &str, key: &str, value: &str) -> Result<(), ApiError> {
        self.api
            .log_param(
                &self.ctx,
                pb::LogParamRequest {
                    run_id: run_id.to_string(),
                    key: key.to_string(),
                    value: value.to_string(),
                },
            )
            .await
            .map(|_| ())
    }

    async fn tag(&self, run_id: &str, key: &str, value: &str) {
        self.api
            .set_tag(
                &self.ctx,
                pb::SetTagRequest {
                    run_id: run_id.to_string(),
                    key: key.to_string(),
                    value: value.to_string(),
                },
            )
            .await
            .unwrap();
    }

    async fn search(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        order_by: &[&str],
    ) -> Result<Vec<String>, ApiError> {
        let response = self
            .api
            .search_runs(
                &self.ctx,
                pb::SearchRunsRequest {
                    experiment_ids: experiment_ids.iter().map(|s| s.to_string()).collect(),
                    filter: filter.to_string(),
                    order_by: order_by.iter().map(|s| s.to_string()).collect(),
                    max_results: 1000,
                    run_view_type: ViewType::ActiveOnly as i32,
                    page_token: String::new(),
                },
            )
            .await?;
        Ok(response
            .runs
            .into_iter()
            .map(|run| run.info.unwrap().run_name)
            .collect())
    }
}

pub async fn default_experiment_exists(backend: Backend) {
    let env = env(backend).await;
    let experiment = env
        .api
        .get_experiment(
            &env.ctx,
            pb::GetExperimentRequest {
                experiment_id: "0".into(),
            },
        )
        .await
        .unwrap()
        .experiment
        .unwrap();
    assert_eq!(experiment.name, "Default");
    assert_eq!(experiment.artifact_location, "mlflow-artifacts:/0");
    assert_eq!(
        experiment.lifecycle_stage,
        pb::LifecycleStage::Active as i32
    );
}

pub async fn experiment_lifecycle(backend: Backend) {
    let env = env(backend).await;
    let id = env
        .api
        .create_experiment(
            &env.ctx,
            pb::CreateExperimentRequest {
                name: "exp".into(),
                tags: vec![kv("team", "ml")],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .experiment_id;
    assert_eq!(id, "1");
    let by_name = env
        .api
        .get_experiment_by_name(
            &env.ctx,
            pb::GetExperimentByNameRequest {
                experiment_name: "exp".into(),
            },
        )
        .await
        .unwrap()
        .experiment
        .unwrap();
    assert_eq!(by_name.experiment_id, id);
    assert_eq!(by_name.artifact_location, "mlflow-artifacts:/1");
    assert_eq!(by_name.tags, vec![kv("team", "ml")]);

    let duplicate = env
        .api
        .create_experiment(
            &env.ctx,
            pb::CreateExperimentRequest {
                name: "exp".into(),
                ..Default::default()
            },
        )
        .await;
    assert_code(duplicate, ErrorCode::ResourceAlreadyExists);
    let missing = env
        .api
        .create_experiment(&env.ctx, pb::CreateExperimentRequest::default())
        .await;
    assert_code(missing, ErrorCode::InvalidParameterValue);
    let too_long = env
        .api
        .create_experiment(
            &env.ctx,
            pb::CreateExperimentRequest {
                name: "x".repeat(501),
                ..Default::default()
            },
        )
        .await;
    assert_code(too_long, ErrorCode::InvalidParameterValue);
    let not_found = env
        .api
        .get_experiment_by_name(
            &env.ctx,
            pb::GetExperimentByNameRequest {
                experiment_name: "nope".into(),
            },
        )
        .await;
    assert_eq!(
        assert_code(not_found, ErrorCode::ResourceDoesNotExist).message,
        "Could not find experiment with name 'nope'"
    );
    let bad_id = env
        .api
        .get_experiment(
            &env.ctx,
            pb::GetExperimentRequest {
                experiment_id: "abc".into(),
            },
        )
        .await;
    assert_code(bad_id, ErrorCode::InvalidParameterValue);
    let unknown = env
        .api
        .get_experiment(
            &env.ctx,
            pb::GetExperimentRequest {
                experiment_id: "999999".into(),
            },
        )
        .await;
    assert_eq!(
        assert_code(unknown, ErrorCode::ResourceDoesNotExist).message,
        "No Experiment with id=999999 exists"
    );

    // Rename, then rename onto an existing name.
    env.api
        .update_experiment(
            &env.ctx,
            pb::UpdateExperimentRequest {
                experiment_id: id.clone(),
                new_name: "renamed".into(),
            },
        )
        .await
        .unwrap();
    let second = env.experiment("second").await;
    let clash = env
        .api
        .update_experiment(
            &env.ctx,
            pb::UpdateExperimentRequest {
                experiment_id: second.clone(),
                new_name: "renamed".into(),
            },
        )
        .await;
    assert_code(clash, ErrorCode::ResourceAlreadyExists);

    // Delete: runs follow, no new runs, rename refused; restore brings both back.
    let run = env.run(&id, "r1", 10).await;
    env.api
        .delete_experiment(
            &env.ctx,
            pb::DeleteExperimentRequest {
                experiment_id: id.clone(),
            },
        )
        .await
        .unwrap();
    let deleted = env
        .api
        .get_experiment(
            &env.ctx,
            pb::GetExperimentRequest {
                experiment_id: id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        deleted.experiment.unwrap().lifecycle_stage,
        pb::LifecycleStage::Deleted as i32
    );
    assert_eq!(
        env.get_run(&run).await.info.unwrap().lifecycle_stage,
        pb::LifecycleStage::Deleted as i32
    );
    let create_in_deleted = env
        .api
        .create_run(
            &env.ctx,
            pb::CreateRunRequest {
                experiment_id: id.clone(),
                ..Default::default()
            },
        )
        .await;
    let error = assert_code(create_in_deleted, ErrorCode::InvalidParameterValue);
    assert!(
        error.message.contains("must be in the 'active' state"),
        "{}",
        error.message
    );
    let rename_deleted = env
        .api
        .update_experiment(
            &env.ctx,
            pb::UpdateExperimentRequest {
                experiment_id: id.clone(),
                new_name: "x".into(),
            },
        )
        .await;
    assert_code(rename_deleted, ErrorCode::InvalidParameterValue);
    env.api
        .restore_experiment(
            &env.ctx,
            pb::RestoreExperimentRequest {
                experiment_id: id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        env.get_run(&run).await.info.unwrap().lifecycle_stage,
        pb::LifecycleStage::Active as i32
    );

    // Tags.
    env.api
        .set_experiment_tag(
            &env.ctx,
            pb::SetExperimentTagRequest {
                experiment_id: id.clone(),
                key: "k".into(),
                value: "v".into(),
            },
        )
        .await
        .unwrap();
    env.api
        .delete_experiment_tag(
            &env.ctx,
            pb::DeleteExperimentTagRequest {
                experiment_id: id.clone(),
                key: "team".into(),
            },
        )
        .await
        .unwrap();
    let tags = env
        .api
        .get_experiment(
            &env.ctx,
            pb::GetExperimentRequest {
                experiment_id: id.clone(),
            },
        )
        .await
        .unwrap()
        .experiment
        .unwrap()
        .tags;
    assert_eq!(tags, vec![kv("k", "v")]);
    let too_long = env
        .api
        .set_experiment_tag(
            &env.ctx,
            pb::SetExperimentTagRequest {
                experiment_id: id,
                key: "k".into(),
                value: "v".repeat(20001),
            },
        )
        .await;
    assert_code(too_long, ErrorCode::InvalidParameterValue);
}

pub async fn experiment_search(backend: Backend) {
    let env = env(backend).await;
    for name in ["alpha", "beta", "gamma", "Alphabet"] {
        env.experiment(name).await;
        // Distinct creation times: the default order is newest first, and
        // experiments created within one millisecond tie (then id ascending).
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let gamma = env
        .api
        .get_experiment_by_name(
            &env.ctx,
            pb::GetExperimentByNameRequest {
                experiment_name: "gamma".into(),
            },
        )
        .await
        .unwrap()
        .experiment
        .unwrap()
        .experiment_id;
    env.api
        .set_experiment_tag(
            &env.ctx,
            pb::SetExperimentTagRequest {
                experiment_id: gamma.clone(),
                key: "team".into(),
                value: "ml".into(),
            },
        )
        .await
        .unwrap();
    env.api
        .delete_experiment(
            &env.ctx,
            pb::DeleteExperimentRequest {
                experiment_id: "0".into(),
            },
        )
        .await
        .unwrap();
    let search = |filter: &str, order: &[&str], view: ViewType, max: i64, token: &str| {
        let request = pb::SearchExperimentsRequest {
            max_results: max,
            page_token: token.to_string(),
            filter: filter.to_string(),
            order_by: order.iter().map(|s| s.to_string()).collect(),
            view_type: view as i32,
        };
        let api = env.api.clone();
        let ctx = env.ctx.clone();
        async move { api.search_experiments(&ctx, request).await }
    };
    let names = |response: pb::SearchExperimentsResponse| -> Vec<String> {
        response.experiments.into_iter().map(|e| e.name).collect()
    };
    let all = names(
        search("", &["name ASC"], ViewType::ActiveOnly, 100, "")
            .await
            .unwrap(),
    );
    assert_eq!(all, vec!["Alphabet", "alpha", "beta", "gamma"]);
    let like = names(
        search("name LIKE 'alpha%'", &[], ViewType::ActiveOnly, 100, "")
            .await
            .unwrap(),
    );
    assert_eq!(like, vec!["alpha"]);
    let mut ilike = names(
        search("name ILIKE 'ALPHA%'", &[], ViewType::ActiveOnly, 100, "")
            .await
            .unwrap(),
    );
    ilike.sort();
    assert_eq!(ilike, vec!["Alphabet", "alpha"]);
    let tagged = names(
        search(
            "tags.team = 'ml' and name ILIKE '%AMM%'",
            &[],
            ViewType::ActiveOnly,
            100,
            "",
        )
        .await
        .unwrap(),
    );
    assert_eq!(tagged, vec!["gamma"]);
    let deleted = names(
        search("", &[], ViewType::DeletedOnly, 100, "")
            .await
            .unwrap(),
    );
    assert_eq!(deleted, vec!["Default"]);
    assert_eq!(
        search("", &[], ViewType::All, 100, "")
            .await
            .unwrap()
            .experiments
            .len(),
        5
    );
    // Default order: newest first.
    let default_order = names(
        search("", &[], ViewType::ActiveOnly, 100, "")
            .await
            .unwrap(),
    );
    assert_eq!(default_order.first().map(String::as_str), Some("Alphabet"));
    // Paging.
    let page1 = search("", &["name DESC"], ViewType::ActiveOnly, 3, "")
        .await
        .unwrap();
    assert_eq!(page1.experiments.len(), 3);
    assert!(!page1.next_page_token.is_empty());
    let page2 = search(
        "",
        &["name DESC"],
        ViewType::ActiveOnly,
        3,
        &page1.next_page_token,
    )
    .await
    .unwrap();
    assert_eq!(names(page2.clone()), vec!["Alphabet"]);
    assert!(page2.next_page_token.is_empty());
    assert_code(
        search("", &[], ViewType::ActiveOnly, 0, "").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        search("", &[], ViewType::ActiveOnly, 50001, "").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        search(
            "name = 'a' OR name = 'b'",
            &[],
            ViewType::ActiveOnly,
            10,
            "",
        )
        .await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        search("", &[], ViewType::ActiveOnly, 10, "garbage!").await,
        ErrorCode::InvalidParameterValue,
    );
}

pub async fn run_lifecycle(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("e").await;
    let created = env
        .api
        .create_run(
            &env.ctx,
            pb::CreateRunRequest {
                experiment_id: exp.clone(),
                user_id: "alice".into(),
                start_time: 1000,
                tags: vec![kv("mlflow.user", "alice")],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .run
        .unwrap();
    // The create response is exactly what a read returns.
    let reread = env.get_run(&created.info.as_ref().unwrap().run_id).await;
    assert_eq!(created, reread);
    let info = created.info.unwrap();
    assert_eq!(info.run_id.len(), 32);
    assert_eq!(info.status, pb::RunStatus::Running as i32);
    assert_eq!(info.user_id, "alice");
    assert_eq!(
        info.artifact_uri,
        format!("mlflow-artifacts:/{exp}/{}/artifacts", info.run_id)
    );
    assert_eq!(
        info.run_name.split('-').count(),
        3,
        "generated name {}",
        info.run_name
    );
    let tags = created.data.unwrap().tags;
    assert!(tags.contains(&kv("mlflow.runName", &info.run_name)));
    assert!(tags.contains(&kv("mlflow.user", "alice")));

    // Name from the tag when run_name is empty; conflicting values are refused.
    let from_tag = env
        .api
        .create_run(
            &env.ctx,
            pb::CreateRunRequest {
                experiment_id: exp.clone(),
                tags: vec![kv("mlflow.runName", "tagged")],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(from_tag.run.unwrap().info.unwrap().run_name, "tagged");
    let conflict = env
        .api
        .create_run(
            &env.ctx,
            pb::CreateRunRequest {
                experiment_id: exp.clone(),
                run_name: "a".into(),
                tags: vec![kv("mlflow.runName", "b")],
                ..Default::default()
            },
        )
        .await;
    assert_code(conflict, ErrorCode::InvalidParameterValue);
    assert_code(
        env.api
            .create_run(
                &env.ctx,
                pb::CreateRunRequest {
                    experiment_id: "424242".into(),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.api
            .create_run(&env.ctx, pb::CreateRunRequest::default())
            .await,
        ErrorCode::InvalidParameterValue,
    );

    // Update: status, end time, name (and its tag).
    let updated = env
        .api
        .update_run(
            &env.ctx,
            pb::UpdateRunRequest {
                run_id: info.run_id.clone(),
                status: pb::RunStatus::Finished as i32,
                end_time: Some(2000),
                run_name: Some("final".into()),
            },
        )
        .await
        .unwrap()
        .run_info
        .unwrap();
    assert_eq!(updated.status, pb::RunStatus::Finished as i32);
    assert_eq!(updated.end_time, Some(2000));
    assert_eq!(updated.run_name, "final");
    let run = env.get_run(&info.run_id).await;
    assert!(
        run.data
            .unwrap()
            .tags
            .contains(&kv("mlflow.runName", "final"))
    );
    // Unspecified status leaves it unchanged.
    let same = env
        .api
        .update_run(
            &env.ctx,
            pb::UpdateRunRequest {
                run_id: info.run_id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .run_info
        .unwrap();
    assert_eq!(same.status, pb::RunStatus::Finished as i32);

    // Delete / restore; writes to a deleted run fail with 400.
    env.api
        .delete_run(
            &env.ctx,
            pb::DeleteRunRequest {
                run_id: info.run_id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        env.get_run(&info.run_id)
            .await
            .info
            .unwrap()
            .lifecycle_stage,
        pb::LifecycleStage::Deleted as i32
    );
    let error = assert_code(
        env.param(&info.run_id, "p", "1").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_eq!(
        error.message,
        format!(
            "The run {} must be in the 'active' state. Current state is deleted.",
            info.run_id
        )
    );
    assert!(env.search(&[&exp], "", &[]).await.unwrap().len() == 1);
    env.api
        .restore_run(
            &env.ctx,
            pb::RestoreRunRequest {
                run_id: info.run_id.clone(),
            },
        )
        .await
        .unwrap();
    env.param(&info.run_id, "p", "1").await.unwrap();

    // Unknown runs are 404 everywhere.
    let missing = "0123456789abcdef0123456789abcdef";
    let error = assert_code(
        env.api
            .get_run(
                &env.ctx,
                pb::GetRunRequest {
                    run_id: missing.into(),
                },
            )
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(error.message, format!("Run with id={missing} not found"));
    assert_code(
        env.param(missing, "p", "1").await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.api
            .delete_run(
                &env.ctx,
                pb::DeleteRunRequest {
                    run_id: missing.into(),
                },
            )
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    let tag_missing = env
        .api
        .delete_tag(
            &env.ctx,
            pb::DeleteTagRequest {
                run_id: info.run_id.clone(),
                key: "nope".into(),
            },
        )
        .await;
    assert_code(tag_missing, ErrorCode::ResourceDoesNotExist);
}

pub async fn params_and_tags(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("e").await;
    let run = env.run(&exp, "r", 1).await;
    env.param(&run, "lr", "0.1").await.unwrap();
    env.param(&run, "lr", "0.1").await.unwrap();
    let error = assert_code(
        env.param(&run, "lr", "0.2").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_eq!(
        error.message,
        format!(
            "Changing param values is not allowed. Param with key='lr' was already logged with value='0.1' for run ID='{run}'. Attempted logging new value '0.2'."
        )
    );
    assert_code(
        env.param(&run, "bad*key", "1").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.param(&run, "../escape", "1").await,
        ErrorCode::InvalidParameterValue,
    );
    // Long values are truncated, not refused.
    env.param(&run, "long", &"x".repeat(6001)).await.unwrap();
    env.tag(&run, "longtag", &"y".repeat(8001)).await;
    env.tag(&run, "t", "1").await;
    env.tag(&run, "t", "2").await;
    let data = env.get_run(&run).await.data.unwrap();
    let param = |k: &str| {
        data.params
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
    };
    let tag = |k: &str| {
        data.tags
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
    };
    assert_eq!(param("long").unwrap().len(), 6000);
    assert_eq!(tag("longtag").unwrap().len(), 8000);
    assert_eq!(tag("t").as_deref(), Some("2"));
    env.api
        .delete_tag(
            &env.ctx,
            pb::DeleteTagRequest {
                run_id: run.clone(),
                key: "t".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        env.get_run(&run)
            .await
            .data
            .unwrap()
            .tags
            .iter()
            .all(|t| t.key != "t")
    );

    // log-batch: conflicts roll the whole batch back; duplicates and limits are 400.
    let batch = |params: Vec<KeyValue>, metrics: usize, tags: usize| pb::LogBatchRequest {
        run_id: run.clone(),
        params,
        metrics: (0..metrics)
            .map(|i| pb::Metric {
                key: format!("m{i}"),
                value: 1.0,
                timestamp: 1,
                step: 0,
                ..Default::default()
            })
            .collect(),
        tags: (0..tags).map(|i| kv(&format!("t{i}"), "v")).collect(),
    };
    let conflict = env
        .api
        .log_batch(
            &env.ctx,
            batch(vec![kv("lr", "0.3"), kv("fresh", "1")], 1, 0),
        )
        .await;
    let error = assert_code(conflict, ErrorCode::InvalidParameterValue);
    assert_eq!(
        error.message,
        format!(
            "Changing param values is not allowed. Params were already logged='[{{'key': 'lr', 'old_value': '0.1', 'new_value': '0.3'}}]' for run ID='{run}'."
        )
    );
    let data = env.get_run(&run).await.data.unwrap();
    assert!(
        data.params.iter().all(|p| p.key != "fresh"),
        "batch must be atomic"
    );
    assert!(data.metrics.is_empty(), "batch must be atomic");
    env.api
        .log_batch(&env.ctx, batch(vec![kv("lr", "0.1")], 0, 0))
        .await
        .unwrap();
    let duplicate = env
        .api
        .log_batch(&env.ctx, batch(vec![kv("dup", "1"), kv("dup", "2")], 0, 0))
        .await;
    assert!(
        assert_code(duplicate, ErrorCode::InvalidParameterValue)
            .message
            .starts_with("Duplicate parameter keys have been submitted: ['dup']")
    );
    let too_many_params = env
        .api
        .log_batch(
            &env.ctx,
            batch((0..101).map(|i| kv(&format!("p{i}"), "1")).collect(), 0, 0),
        )
        .await;
    assert_eq!(
        assert_code(too_many_params, ErrorCode::InvalidParameterValue).message,
        "A batch logging request can contain at most 100 params. Got 101 params. Please split up params across multiple requests and try again."
    );
    assert_code(
        env.api.log_batch(&env.ctx, batch(vec![], 1001, 0)).await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.api.log_batch(&env.ctx, batch(vec![], 0, 101)).await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.api.log_batch(&env.ctx, batch(vec![], 950, 60)).await,
        ErrorCode::InvalidParameterValue,
    );
    env.api
        .log_batch(
            &env.ctx,
            batch(
                (0..100).map(|i| kv(&format!("p{i}"), "1")).collect(),
                900,
                0,
            ),
        )
        .await
        .unwrap();
    assert_eq!(env.get_run(&run).await.data.unwrap().metrics.len(), 900);
}

pub async fn metrics_history_and_latest(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("e").await;
    let run = env.run(&exp, "r", 1).await;
    // Latest = max step, then max timestamp, then max value.
    env.metric(&run, "loss", 3.0, 100, 2).await.unwrap();
    env.metric(&run, "loss", 1.0, 50, 5).await.unwrap();
    env.metric(&run, "loss", 9.0, 10, 1).await.unwrap();
    env.metric(&run, "loss", 2.0, 60, 5).await.unwrap();
    env.metric(&run, "loss", 2.0, 60, 5).await.unwrap(); // identical: stored once
    env.metric(&run, "nan", f64::NAN, 1, 0).await.unwrap();
    env.metric(&run, "inf", f64::INFINITY, 1, 0).await.unwrap();
    env.metric(&run, "ninf", f64::NEG_INFINITY, 1, 0)
        .await
        .unwrap();
    let metrics = env.get_run(&run).await.data.unwrap().metrics;
    let latest = |key: &str| metrics.iter().find(|m| m.key == key).unwrap().clone();
    assert_eq!(
        (
            latest("loss").value,
            latest("loss").step,
            latest("loss").timestamp
        ),
        (2.0, 5, 60)
    );
    assert!(latest("nan").value.is_nan());
    assert_eq!(latest("inf").value, f64::MAX);
    assert_eq!(latest("ninf").value, f64::MIN);
    // A batch repeating a stored point and one of its own, beside new
    // points and a tag: each point is stored once, the rest goes in.
    env.metric(&run, "dup", 2.0, 60, 5).await.unwrap();
    let point = |value: f64, timestamp: i64, step: i64| pb::Metric {
        key: "dup".into(),
        value,
        timestamp,
        step,
        ..Default::default()
    };
    env.api
        .log_batch(
            &env.ctx,
            pb::LogBatchRequest {
                run_id: run.clone(),
                metrics: vec![
                    point(2.0, 60, 5),
                    point(4.0, 70, 6),
                    point(4.0, 70, 6),
                    point(0.5, 80, 7),
                ],
                tags: vec![KeyValue {
                    key: "batch".into(),
                    value: "retried".into(),
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The same with metrics alone (on Postgres, the group-commit path).
    env.api
        .log_batch(
            &env.ctx,
            pb::LogBatchRequest {
                run_id: run.clone(),
                metrics: vec![point(0.5, 80, 7), point(1.5, 90, 8)],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let history = env.history(&run, "dup").await;
    let mut points: Vec<(i64, i64, f64)> = history
        .iter()
        .map(|m| (m.step, m.timestamp, m.value))
        .collect();
    points.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        points,
        vec![(5, 60, 2.0), (6, 70, 4.0), (7, 80, 0.5), (8, 90, 1.5)]
    );
    let data = env.get_run(&run).await.data.unwrap();
    let dup = data.metrics.iter().find(|m| m.key == "dup").unwrap();
    assert_eq!((dup.step, dup.value), (8, 1.5));
    assert!(
        data.tags
            .iter()
            .any(|t| t.key == "batch" && t.value == "retried")
    );
    assert_code(
        env.metric(&run, "bad*", 1.0, 1, 0).await,
        ErrorCode::InvalidParameterValue,
    );
    // Free-text metric fields survive any quoting (arrays, CSV-like and NULL look-alikes).
    let tricky = pb::Metric {
        key: "tricky".into(),
        value: -0.000_123_456_789_012_345_6,
        timestamp: 7,
        step: 3,
        model_id: r#"m-"q"\b,{x}"#.into(),
        dataset_name: "NULL".into(),
        dataset_digest: "d'1".into(),
        run_id: String::new(),
    };
    env.api
        .log_batch(
            &env.ctx,
            pb::LogBatchRequest {
                run_id: run.clone(),
                metrics: vec![tricky.clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let read = env.history(&run, "tricky").await;
    assert_eq!(
        read,
        vec![pb::Metric {
            run_id: run.clone(),
            ..tricky
        }]
    );

    // A page mixing plain points with points that carry a model or dataset,
    // NaN, infinities and equal steps: each point keeps its own fields.
    let mixed: Vec<pb::Metric> = [
        (0, 5, 1.5, "", ""),
        (1, 5, f64::NAN, "", "ds"),
        (1, 6, -0.25, "m-9", ""),
        (2, 7, f64::INFINITY, "", ""),
        (3, 8, 4.0, "m-9", "ds"),
    ]
    .into_iter()
    .map(|(step, timestamp, value, model_id, dataset)| pb::Metric {
        key: "mixed".into(),
        value,
        timestamp,
        step,
        model_id: model_id.into(),
        dataset_name: dataset.into(),
        dataset_digest: if dataset.is_empty() { "" } else { "dd" }.into(),
        run_id: run.clone(),
    })
    .collect();
    env.api
        .log_batch(
            &env.ctx,
            pb::LogBatchRequest {
                run_id: run.clone(),
                metrics: mixed.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let shape = |m: &pb::Metric| {
        (
            m.step,
            m.timestamp,
            format!("{:?}", m.value.min(f64::MAX)),
            m.model_id.clone(),
            m.dataset_name.clone(),
            m.dataset_digest.clone(),
        )
    };
    for max_results in [0, 2] {
        let pages = env.history_pages(&run, "mixed", max_results).await;
        let read: Vec<_> = pages.iter().flatten().map(shape).collect();
        assert_eq!(
            read,
            mixed.iter().map(shape).collect::<Vec<_>>(),
            "max_results {max_results}"
        );
    }

    let history = |token: &str, max: i32| {
        let api = env.api.clone();
        let ctx = env.ctx.clone();
        let request = pb::GetMetricHistoryRequest {
            run_id: run.clone(),
            metric_key: "loss".into(),
            page_token: token.to_string(),
            max_results: max,
        };
        async move { api.get_metric_history(&ctx, request).await.unwrap() }
    };
    let all = history("", 0).await;
    let steps: Vec<(i64, i64)> = all.metrics.iter().map(|m| (m.step, m.timestamp)).collect();
    assert_eq!(steps, vec![(1, 10), (2, 100), (5, 50), (5, 60)]);
    assert!(all.next_page_token.is_empty());
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = history(&token, 1).await;
        assert!(page.metrics.len() <= 1);
        paged.extend(page.metrics.iter().map(|m| (m.step, m.timestamp)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, steps);
    // Unknown run: empty, not an error (as MLflow).
    let unknown = env
        .api
        .get_metric_history(
            &env.ctx,
            pb::GetMetricHistoryRequest {
                run_id: "f".repeat(32),
                metric_key: "loss".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(unknown.metrics.is_empty());

    // Many points, paged by the client's 25,000.
    let points: Vec<pb::Metric> = (0..3000)
        .map(|i| pb::Metric {
            key: "big".into(),
            value: f64::from(i),
            timestamp: 1000 + i64::from(i),
            step: i64::from(i),
            ..Default::default()
        })
        .collect();
    for chunk in points.chunks(1000) {
        env.api
            .log_batch(
                &env.ctx,
                pb::LogBatchRequest {
                    run_id: run.clone(),
                    metrics: chunk.to_vec(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let pages = env.history_pages(&run, "big", 1000).await;
    assert!(pages.iter().all(|page| page.len() <= 1000));
    let steps: Vec<i64> = pages.iter().flatten().map(|m| m.step).collect();
    assert_eq!(steps, (0..3000).collect::<Vec<i64>>());

    // Bulk interval: sampled steps include the ends; bounds checked.
    let bulk = env
        .api
        .get_metric_history_bulk_interval(
            &env.ctx,
            pb::GetMetricHistoryBulkIntervalRequest {
                run_ids: vec![run.clone()],
                metric_key: "big".into(),
                start_step: Some(100),
                end_step: Some(2000),
                max_results: 10,
            },
        )
        .await
        .unwrap();
    let steps: Vec<i64> = bulk.metrics.iter().map(|m| m.step).collect();
    assert_eq!(steps.len(), 10);
    assert_eq!(steps.first(), Some(&100));
    assert_eq!(steps.last(), Some(&2000));
    assert!(bulk.metrics.iter().all(|m| m.run_id == run));
    let bad = env
        .api
        .get_metric_history_bulk_interval(
            &env.ctx,
            pb::GetMetricHistoryBulkIntervalRequest {
                run_ids: vec![run.clone()],
                metric_key: "big".into(),
                start_step: Some(5),
                end_step: None,
                max_results: 10,
            },
        )
        .await;
    assert_code(bad, ErrorCode::InvalidParameterValue);
    let too_many = env
        .api
        .get_metric_history_bulk_interval(
            &env.ctx,
            pb::GetMetricHistoryBulkIntervalRequest {
                run_ids: vec![run.clone(); 101],
                metric_key: "big".into(),
                ..Default::default()
            },
        )
        .await;
    assert_code(too_many, ErrorCode::InvalidParameterValue);
}

pub async fn run_search(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("e").await;
    let other = env.experiment("other").await;
    // r1..r5 with acc values incl. NaN and a missing one.
    let specs: [(&str, Option<f64>, &str, i64); 5] = [
        ("r1", Some(0.5), "a", 100),
        ("r2", Some(0.9), "b", 200),
        ("r3", Some(f64::NAN), "a", 300),
        ("r4", None, "c", 400),
        ("r5", Some(-1.0), "B", 500),
    ];
    let mut ids = std::collections::HashMap::new();
    for (name, acc, model, start) in specs {
        let id = env.run(&exp, name, start).await;
        if let Some(acc) = acc {
            env.metric(&id, "acc", acc, 1, 0).await.unwrap();
        }
        env.param(&id, "model", model).await.unwrap();
        env.tag(&id, "group", if start < 300 { "first" } else { "second" })
            .await;
        ids.insert(name, id);
    }
    env.run(&other, "elsewhere", 1).await;

    assert_eq!(
        env.search(&[&exp], "", &[]).await.unwrap(),
        vec!["r5", "r4", "r3", "r2", "r1"]
    );
    assert_eq!(
        env.search(&[&exp], "metrics.acc > 0.6", &[]).await.unwrap(),
        vec!["r2"]
    );
    assert_eq!(
        env.search(&[&exp], "metrics.acc >= 0.5", &["metrics.acc ASC"])
            .await
            .unwrap(),
        vec!["r1", "r2"]
    );
    assert_eq!(
        env.search(&[&exp], "metrics.acc != 0.5", &["start_time ASC"])
            .await
            .unwrap(),
        vec!["r2", "r3", "r5"]
    );
    assert_eq!(
        env.search(&[&exp], "params.model = 'a'", &["start_time ASC"])
            .await
            .unwrap(),
        vec!["r1", "r3"]
    );
    assert_eq!(
        env.search(&[&exp], "params.model != 'a'", &["start_time ASC"])
            .await
            .unwrap(),
        vec!["r2", "r4", "r5"]
    );
    assert_eq!(
        env.search(&[&exp], "params.model LIKE 'b'", &[])
            .await
            .unwrap(),
        vec!["r2"]
    );
    assert_eq!(
        env.search(&[&exp], "params.model ILIKE 'b'", &["start_time ASC"])
            .await
            .unwrap(),
        vec!["r2", "r5"]
    );
    assert_eq!(
        env.search(&[&exp], "tags.group = 'first' and params.model = 'b'", &[])
            .await
            .unwrap(),
        vec!["r2"]
    );
    assert_eq!(
        env.search(&[&exp], "tags.missing IS NULL", &["start_time ASC"])
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        env.search(
            &[&exp],
            "tags.group IS NOT NULL and attributes.run_name = 'r4'",
            &[]
        )
        .await
        .unwrap(),
        vec!["r4"]
    );
    assert_eq!(
        env.search(&[&exp], "attributes.start_time >= 300", &["start_time ASC"])
            .await
            .unwrap(),
        vec!["r3", "r4", "r5"]
    );
    assert_eq!(
        env.search(&[&exp], "run_name LIKE 'r%' and status = 'RUNNING'", &[])
            .await
            .unwrap()
            .len(),
        5
    );
    let in_filter = format!("attributes.run_id IN ('{}', '{}')", ids["r1"], ids["r4"]);
    assert_eq!(
        env.search(&[&exp], &in_filter, &["start_time ASC"])
            .await
            .unwrap(),
        vec!["r1", "r4"]
    );
    let tag_key_filter = "tags.`mlflow.runName` = 'r3'";
    assert_eq!(
        env.search(&[&exp], tag_key_filter, &[]).await.unwrap(),
        vec!["r3"]
    );

    // Ordering: NaN after numbers, missing last, both directions.
    assert_eq!(
        env.search(&[&exp], "", &["metrics.acc ASC"]).await.unwrap(),
        vec!["r5", "r1", "r2", "r3", "r4"]
    );
    assert_eq!(
        env.search(&[&exp], "", &["metrics.acc DESC"])
            .await
            .unwrap(),
        vec!["r2", "r1", "r5", "r3", "r4"]
    );
    assert_eq!(
        env.search(&[&exp], "", &["params.model DESC", "start_time ASC"])
            .await
            .unwrap(),
        vec!["r4", "r2", "r1", "r3", "r5"]
    );
    assert_eq!(
        env.search(&[&exp], "", &["tags.group ASC", "attributes.run_name DESC"])
            .await
            .unwrap(),
        vec!["r2", "r1", "r5", "r4", "r3"]
    );

    // Errors.
    assert_code(
        env.search(&[&exp], "metrics.acc = 'x'", &[]).await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.search(&[&exp], "foo.bar = 1", &[]).await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.search(&[&exp], "", &["nope.x"]).await,
        ErrorCode::InvalidParameterValue,
    );
    for max in [0, -1, 50001] {
        let response = env
            .api
            .search_runs(
                &env.ctx,
                pb::SearchRunsRequest {
                    experiment_ids: vec![exp.clone()],
                    max_results: max,
                    ..Default::default()
                },
            )
            .await;
        assert_code(response, ErrorCode::InvalidParameterValue);
    }
    // Paging visits every run once, in order.
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = env
            .api
            .search_runs(
                &env.ctx,
                pb::SearchRunsRequest {
                    experiment_ids: vec![exp.clone(), other.clone()],
                    max_results: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        names.extend(page.runs.into_iter().map(|r| r.info.unwrap().run_name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names, vec!["r5", "r4", "r3", "r2", "r1", "elsewhere"]);
    // View types.
    env.api
        .delete_run(
            &env.ctx,
            pb::DeleteRunRequest {
                run_id: ids["r1"].clone(),
            },
        )
        .await
        .unwrap();
    let view = |view: ViewType| pb::SearchRunsRequest {
        experiment_ids: vec![exp.clone()],
        max_results: 100,
        run_view_type: view as i32,
        ..Default::default()
    };
    assert_eq!(
        env.api
            .search_runs(&env.ctx, view(ViewType::ActiveOnly))
            .await
            .unwrap()
            .runs
            .len(),
        4
    );
    assert_eq!(
        env.api
            .search_runs(&env.ctx, view(ViewType::DeletedOnly))
            .await
            .unwrap()
            .runs
            .len(),
        1
    );
    assert_eq!(
        env.api
            .search_runs(&env.ctx, view(ViewType::All))
            .await
            .unwrap()
            .runs
            .len(),
        5
    );
    // No experiments: no runs.
    assert!(env.search(&[], "", &[]).await.unwrap().is_empty());
}

pub async fn datasets_and_models(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("e").await;
    let run = env.run(&exp, "r", 1).await;
    let other_run = env.run(&exp, "r2", 2).await;
    let input = |name: &str, context: &str| pb::DatasetInput {
        tags: vec![kv("mlflow.data.context", context)],
        dataset: Some(pb::Dataset {
            name: name.to_string(),
            digest: "abc123".into(),
            source_type: "local".into(),
            source: "{\"uri\": \"x\"}".into(),
            schema: "{}".into(),
            profile: String::new(),
        }),
    };
    let log = |run: &str, inputs: Vec<pb::DatasetInput>| {
        let api = env.api.clone();
        let ctx = env.ctx.clone();
        let request = pb::LogInputsRequest {
            run_id: run.to_string(),
            datasets: inputs,
            models: vec![pb::ModelInput {
                model_id: "m-1".into(),
            }],
        };
        async move { api.log_inputs(&ctx, request).await }
    };
    log(&run, vec![input("iris", "training"), input("iris", "eval")])
        .await
        .unwrap();
    log(&run, vec![input("iris", "training")]).await.unwrap(); // idempotent
    log(&other_run, vec![input("wine", "training")])
        .await
        .unwrap();
    let inputs = env.get_run(&run).await.inputs.unwrap();
    assert_eq!(inputs.dataset_inputs.len(), 2);
    assert_eq!(
        inputs.model_inputs,
        vec![pb::ModelInput {
            model_id: "m-1".into()
        }]
    );
    assert_eq!(
        inputs.dataset_inputs[0].dataset.as_ref().unwrap().name,
        "iris"
    );
    assert_eq!(
        env.search(&[&exp], "datasets.name = 'iris'", &[])
            .await
            .unwrap(),
        vec!["r"]
    );
    assert_eq!(
        env.search(&[&exp], "datasets.context = 'eval'", &[])
            .await
            .unwrap(),
        vec!["r"]
    );
    assert_eq!(
        env.search(&[&exp], "datasets.name IN ('wine', 'x')", &[])
            .await
            .unwrap(),
        vec!["r2"]
    );
    let summaries = env
        .api
        .search_datasets(
            &env.ctx,
            pb::SearchDatasetsRequest {
                experiment_ids: vec![exp.clone()],
            },
        )
        .await
        .unwrap()
        .dataset_summaries;
    assert_eq!(summaries.len(), 3);
    let mut bad = input("iris", "training");
    bad.dataset.as_mut().unwrap().digest = "d".repeat(37);
    assert_code(log(&run, vec![bad]).await, ErrorCode::InvalidParameterValue);

    env.api
        .log_outputs(
            &env.ctx,
            pb::LogOutputsRequest {
                run_id: run.clone(),
                models: vec![pb::ModelOutput {
                    model_id: "m-2".into(),
                    step: 3,
                }],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        env.get_run(&run).await.outputs.unwrap().model_outputs,
        vec![pb::ModelOutput {
            model_id: "m-2".into(),
            step: 3
        }]
    );

    // Legacy log-model appends to the history tag.
    let model_json = |path: &str| {
        format!(
            r#"{{"artifact_path": "{path}", "flavors": {{}}, "utc_time_created": "2026", "run_id": "{run}"}}"#
        )
    };
    for path in ["m1", "m2"] {
        env.api
            .log_model(
                &env.ctx,
                pb::LogModelRequest {
                    run_id: run.clone(),
                    model_json: model_json(path),
                },
            )
            .await
            .unwrap();
    }
    let tags = env.get_run(&run).await.data.unwrap().tags;
    let history = tags
        .iter()
        .find(|t| t.key == "mlflow.log-model.history")
        .unwrap();
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&history.value).unwrap();
    assert_eq!(parsed.len(), 2);
    let missing = env
        .api
        .log_model(
            &env.ctx,
            pb::LogModelRequest {
                run_id: run.clone(),
                model_json: "{}".into(),
            },
        )
        .await;
    assert_code(missing, ErrorCode::InvalidParameterValue);
}

pub async fn namespaces_are_isolated(backend: Backend) {
    let env = env(backend).await;
    let (a, b) = (ns("team-a"), ns("team-b"));
    let create = |ctx: RequestContext, name: &str| {
        let api = env.api.clone();
        let request = pb::CreateExperimentRequest {
            name: name.to_string(),
            ..Default::default()
        };
        async move {
            api.create_experiment(&ctx, request)
                .await
                .unwrap()
                .experiment_id
        }
    };
    let exp_a = create(a.clone(), "shared-name").await;
    let exp_b = create(b.clone(), "shared-name").await;
    let run_a = env
        .api
        .create_run(
            &a,
            pb::CreateRunRequest {
                experiment_id: exp_a.clone(),
                run_name: "ra".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .run
        .unwrap()
        .info
        .unwrap()
        .run_id;
    // Each namespace has its own default experiment 0.
    for ctx in [&a, &b] {
        let default = env
            .api
            .get_experiment(
                ctx,
                pb::GetExperimentRequest {
                    experiment_id: "0".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(default.experiment.unwrap().name, "Default");
    }
    // b cannot see or touch a's run.
    assert_code(
        env.api
            .get_run(
                &b,
                pb::GetRunRequest {
                    run_id: run_a.clone(),
                },
            )
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.api
            .set_tag(
                &b,
                pb::SetTagRequest {
                    run_id: run_a.clone(),
                    key: "x".into(),
                    value: "y".into(),
                },
            )
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.api
            .delete_run(
                &b,
                pb::DeleteRunRequest {
                    run_id: run_a.clone(),
                },
            )
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    let history = env
        .api
        .get_metric_history(
            &b,
            pb::GetMetricHistoryRequest {
                run_id: run_a.clone(),
                metric_key: "m".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(history.metrics.is_empty());
    // Searches see only their own.
    let runs_b = env
        .api
        .search_runs(
            &b,
            pb::SearchRunsRequest {
                experiment_ids: vec![exp_a.clone(), exp_b.clone(), "0".into()],
                max_results: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(runs_b.runs.is_empty());
    let exps_b = env
        .api
        .search_experiments(
            &b,
            pb::SearchExperimentsRequest {
                max_results: 100,
                view_type: ViewType::All as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let names: Vec<String> = exps_b.experiments.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // By id: b's experiment with a's id (if any) is b's own; a's run is never visible.
    let by_name_b = env
        .api
        .get_experiment_by_name(
            &b,
            pb::GetExperimentByNameRequest {
                experiment_name: "shared-name".into(),
            },
        )
        .await
        .unwrap()
        .experiment
        .unwrap();
    assert_eq!(by_name_b.experiment_id, exp_b);
    env.api
        .delete_experiment(
            &b,
            pb::DeleteExperimentRequest {
                experiment_id: exp_b.clone(),
            },
        )
        .await
        .unwrap();
    let still_active = env
        .api
        .get_run(&a, pb::GetRunRequest { run_id: run_a })
        .await
        .unwrap();
    assert_eq!(
        still_active.run.unwrap().info.unwrap().lifecycle_stage,
        pb::LifecycleStage::Active as i32
    );
}

/// Paging a run search: in the default order (start_time DESC, run_id) the
/// token is a keyset cursor, and equal start times neither repeat nor skip a
/// run; MLflow's plain offset tokens and ordered searches page by offset.
pub async fn run_search_paging(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("paging").await;
    // Seven runs, four of them sharing one start time.
    for (name, start) in [
        ("a", 5),
        ("b", 7),
        ("c", 7),
        ("d", 7),
        ("e", 7),
        ("f", 9),
        ("g", 1),
    ] {
        let run = env.run(&exp, name, start).await;
        env.metric(&run, "m", f64::from(name.as_bytes()[0]), 0, 0)
            .await
            .unwrap();
    }
    let page = |token: String, order_by: Vec<String>| {
        let api = env.api.clone();
        let ctx = env.ctx.clone();
        let exp = exp.clone();
        async move {
            api.search_runs(
                &ctx,
                pb::SearchRunsRequest {
                    experiment_ids: vec![exp],
                    filter: String::new(),
                    order_by,
                    max_results: 2,
                    run_view_type: ViewType::ActiveOnly as i32,
                    page_token: token,
                },
            )
            .await
            .unwrap()
        }
    };
    let all_pages = |order_by: Vec<String>| async move {
        let (mut names, mut token, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let response = page(token, order_by.clone()).await;
            names.extend(response.runs.into_iter().map(|r| r.info.unwrap().run_name));
            pages += 1;
            if response.next_page_token.is_empty() {
                return (names, pages);
            }
            token = response.next_page_token;
        }
    };
    let one_page = env.search(&[&exp], "", &[]).await.unwrap();
    let (paged, pages) = all_pages(Vec::new()).await;
    assert_eq!(paged, one_page);
    assert_eq!(pages, 4);
    assert_eq!(paged.len(), 7);
    assert_eq!(&paged[..1], ["f"]);
    assert_eq!(paged.last().unwrap(), "g");
    // A run created between pages does not shift the later pages (keyset).
    let first = page(String::new(), Vec::new()).await;
    env.run(&exp, "late", 100).await;
    let second = page(first.next_page_token.clone(), Vec::new()).await;
    let names: Vec<String> = second
        .runs
        .into_iter()
        .map(|r| r.info.unwrap().run_name)
        .collect();
    assert_eq!(names, one_page[2..4]);
    // MLflow's offset token still works.
    let offset = page("eyJvZmZzZXQiOiAyfQ==".into(), Vec::new()).await;
    let names: Vec<String> = offset
        .runs
        .into_iter()
        .map(|r| r.info.unwrap().run_name)
        .collect();
    assert_eq!(names.len(), 2);
    // Ordered searches page by offset ("late" has no `m`: last).
    let (ordered, _) = all_pages(vec!["metrics.m DESC".into()]).await;
    assert_eq!(ordered, ["g", "f", "e", "d", "c", "b", "a", "late"]);
}

/// Many small writes at once (on Postgres they share group commits): each
/// gets its own answer, refused ones change nothing, and every accepted one
/// is there afterwards.
pub async fn concurrent_small_writes(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("concurrent").await;
    let gone = env.experiment("gone").await;
    env.api
        .delete_experiment(
            &env.ctx,
            pb::DeleteExperimentRequest {
                experiment_id: gone.clone(),
            },
        )
        .await
        .unwrap();
    let other = ns("team-b");
    let foreign_exp = env
        .api
        .create_experiment(
            &other,
            pb::CreateExperimentRequest {
                name: "theirs".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .experiment_id;

    // 30 creations in a live experiment, 4 in a deleted one and 3 in one that
    // does not exist, all at once (experiment ids are per namespace, so
    // another namespace's experiment cannot even be named).
    let create = |experiment_id: String, name: String| {
        let api = env.api.clone();
        let ctx = env.ctx.clone();
        async move {
            api.create_run(
                &ctx,
                pb::CreateRunRequest {
                    experiment_id,
                    run_name: name.clone(),
                    start_time: 1_000,
                    tags: vec![kv("team", &name)],
                    ..Default::default()
                },
            )
            .await
            .map(|response| response.run.unwrap())
        }
    };
    let mut calls = Vec::new();
    for i in 0..30 {
        calls.push(create(exp.clone(), format!("r{i}")));
    }
    for i in 0..4 {
        calls.push(create(gone.clone(), format!("gone{i}")));
    }
    for i in 0..3 {
        calls.push(create("987654".into(), format!("missing{i}")));
    }
    let results = futures::future::join_all(calls).await;
    let mut runs = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match i {
            0..30 => {
                let run = result.unwrap();
                let info = run.info.clone().unwrap();
                assert_eq!(info.run_name, format!("r{i}"));
                assert_eq!(info.experiment_id, exp);
                assert!(
                    info.artifact_uri
                        .ends_with(&format!("/{}/artifacts", info.run_id))
                );
                let tags = run.data.clone().unwrap().tags;
                assert!(tags.contains(&kv("team", &format!("r{i}"))), "{tags:?}");
                // Stored, not just answered.
                assert_eq!(env.get_run(&info.run_id).await.data.unwrap().tags, tags);
                runs.push(info.run_id);
            }
            30..34 => {
                assert_code(result, ErrorCode::InvalidParameterValue);
            }
            _ => {
                assert_code(result, ErrorCode::ResourceDoesNotExist);
            }
        }
    }
    let found = env.search(&[&exp], "", &[]).await.unwrap();
    assert_eq!(found.len(), 30);
    assert!(env.search(&[&gone], "", &[]).await.unwrap().is_empty());

    // Points for 9 live runs (20 steps each, shuffled), for a deleted run, an
    // unknown run and another namespace's run: all at once.
    let deleted = runs.pop().unwrap();
    env.api
        .delete_run(
            &env.ctx,
            pb::DeleteRunRequest {
                run_id: deleted.clone(),
            },
        )
        .await
        .unwrap();
    let foreign_run = env
        .api
        .create_run(
            &other,
            pb::CreateRunRequest {
                experiment_id: foreign_exp,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .run
        .unwrap()
        .info
        .unwrap()
        .run_id;
    let live: Vec<String> = runs.iter().take(9).cloned().collect();
    let mut calls = Vec::new();
    for step in [
        7, 19, 0, 13, 2, 18, 5, 11, 1, 16, 3, 9, 14, 4, 17, 6, 12, 8, 15, 10,
    ] {
        for run in &live {
            calls.push((run.clone(), step, None));
        }
    }
    for step in 0..3 {
        calls.push((
            deleted.clone(),
            step,
            Some(ErrorCode::InvalidParameterValue),
        ));
        calls.push((
            "0123456789abcdef0123456789abcdef".to_string(),
            step,
            Some(ErrorCode::ResourceDoesNotExist),
        ));
        calls.push((
            foreign_run.clone(),
            step,
            Some(ErrorCode::ResourceDoesNotExist),
        ));
    }
    let results = futures::future::join_all(
        calls
            .iter()
            .map(|(run, step, _)| env.metric(run, "loss", *step as f64, 1_000 + step, *step)),
    )
    .await;
    for ((run, step, expected), result) in calls.iter().zip(results) {
        match expected {
            None => result.unwrap_or_else(|e| panic!("{run} step {step}: {e:?}")),
            Some(code) => {
                assert_code(result, *code);
            }
        }
    }
    for run in &live {
        let history = env
            .api
            .get_metric_history(
                &env.ctx,
                pb::GetMetricHistoryRequest {
                    run_id: run.clone(),
                    metric_key: "loss".into(),
                    page_token: String::new(),
                    max_results: 100,
                },
            )
            .await
            .unwrap()
            .metrics;
        let steps: Vec<i64> = history.iter().map(|m| m.step).collect();
        assert_eq!(steps, (0..20).collect::<Vec<_>>());
        let latest = env.get_run(run).await.data.unwrap().metrics;
        assert_eq!(latest.len(), 1);
        assert_eq!((latest[0].step, latest[0].value), (19, 19.0));
    }
    // The refused points left nothing behind.
    let foreign = env
        .api
        .get_run(
            &other,
            pb::GetRunRequest {
                run_id: foreign_run,
            },
        )
        .await
        .unwrap()
        .run
        .unwrap();
    assert!(foreign.data.unwrap().metrics.is_empty());
}

/// Points logged in any order, over many writes whose steps overlap, some
/// logged twice: every page size reads each point once, in history order.
/// History rows logged by builds before chunked storage (the old `metrics`
/// table) are moved into chunks by `convert_legacy_history` and read the same.
pub async fn history_across_overlapping_writes(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("e").await;
    let run = env.run(&exp, "r", 1).await;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut expected: Vec<(i64, i64, f64)> = Vec::new();
    for write in 0..12 {
        let size = 1 + next(60) as usize;
        let points: Vec<pb::Metric> = (0..size)
            .map(|_| pb::Metric {
                key: "k".into(),
                step: next(150) as i64,
                timestamp: next(3) as i64,
                value: next(4) as f64 / 2.0,
                ..Default::default()
            })
            .collect();
        expected.extend(points.iter().map(|m| (m.step, m.timestamp, m.value)));
        if write % 4 == 3 {
            // One by one (on Postgres, through the group commit).
            for point in points {
                env.metric(&run, "k", point.value, point.timestamp, point.step)
                    .await
                    .unwrap();
            }
        } else {
            env.api
                .log_batch(
                    &env.ctx,
                    pb::LogBatchRequest {
                        run_id: run.clone(),
                        metrics: points,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        }
    }
    expected.sort_by(|a, b| a.partial_cmp(b).unwrap());
    expected.dedup();
    assert!(expected.len() > 100, "{} distinct points", expected.len());
    let read = |pages: Vec<Vec<pb::Metric>>| -> Vec<(i64, i64, f64)> {
        pages
            .into_iter()
            .flatten()
            .map(|m| (m.step, m.timestamp, m.value))
            .collect()
    };
    for max_results in [0, 1, 7, 64, 1000] {
        let pages = env.history_pages(&run, "k", max_results).await;
        if max_results > 0 {
            assert!(pages.iter().all(|p| p.len() <= max_results as usize));
        }
        assert_eq!(read(pages), expected, "max_results {max_results}");
    }
    let latest = env.get_run(&run).await.data.unwrap().metrics;
    let (step, timestamp, value) = *expected.last().unwrap();
    assert!(
        latest
            .iter()
            .any(|m| (m.step, m.timestamp, m.value) == (step, timestamp, value))
    );

    // Rows in the old one-row-per-point table: one repeats a chunked point,
    // one carries a model, one is NaN.
    let db = &env._guard.database;
    let run_key: i64 = sqlx::query_scalar("SELECT run_key FROM runs WHERE run_uuid = $1")
        .bind(&run)
        .fetch_one(&db.writer)
        .await
        .unwrap();
    let (step, timestamp, value) = expected[0];
    for (key, step, timestamp, value, is_nan, model) in [
        ("k", step, timestamp, value, 0i64, None),
        ("k", 500, 1, 9.0, 0, Some("m-1")),
        ("k", 501, 1, 0.0, 1, None),
        ("old", 1, 1, 1.0, 0, None),
    ] {
        sqlx::query(
            "INSERT INTO metrics (run_key, key, step, timestamp, value, is_nan, model_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run_key)
        .bind(key)
        .bind(step)
        .bind(timestamp)
        .bind(value)
        .bind(is_nan)
        .bind(model)
        .execute(&db.writer)
        .await
        .unwrap();
    }
    let moved = quiver_tracking::store::sql::convert_legacy_history(db)
        .await
        .unwrap();
    assert_eq!(moved, 4);
    assert_eq!(
        quiver_tracking::store::sql::convert_legacy_history(db)
            .await
            .unwrap(),
        0
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metrics")
        .fetch_one(&db.writer)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let history = env.history(&run, "k").await;
    assert_eq!(history.len(), expected.len() + 2);
    let tail: Vec<(i64, String, bool)> = history[expected.len()..]
        .iter()
        .map(|m| (m.step, m.model_id.clone(), m.value.is_nan()))
        .collect();
    assert_eq!(
        tail,
        vec![(500, "m-1".to_string(), false), (501, String::new(), true)]
    );
    assert_eq!(env.history(&run, "old").await.len(), 1);
}

macro_rules! conformance_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::Backend::Sqlite).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::Backend::Postgres).await; } )*
        }
        mod grpc_sqlite {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::Backend::GrpcSqlite).await; } )*
        }
        mod grpc_postgres {
            $( #[tokio::test] async fn $case() { super::$case(quiver_e2e::Backend::GrpcPostgres).await; } )*
        }
    };
}

conformance_suite!(
    default_experiment_exists,
    concurrent_small_writes,
    run_search_paging,
    experiment_lifecycle,
    experiment_search,
    run_lifecycle,
    params_and_tags,
    metrics_history_and_latest,
    history_across_overlapping_writes,
    run_search,
    datasets_and_models,
    namespaces_are_isolated,
    logged_model_lifecycle,
    logged_model_metrics,
    logged_model_search,
    logged_models_are_namespaced,
);
