//! Conformance cases for MLflow 3 logged models (run on every backend by the
//! parent module's `conformance_suite!`).

use quiver_common::{ApiError, ErrorCode, RequestContext};
use quiver_e2e::Backend;
use quiver_proto::tracking::v1 as pb;

use super::{Env, assert_code, env, kv, ns};

impl Env {
    async fn create_model(
        &self,
        ctx: &RequestContext,
        request: pb::CreateLoggedModelRequest,
    ) -> Result<pb::LoggedModel, ApiError> {
        Ok(self
            .api
            .create_logged_model(ctx, request)
            .await?
            .model
            .unwrap())
    }

    async fn model(&self, experiment_id: &str, name: &str, source_run_id: &str) -> String {
        self.create_model(
            &self.ctx,
            pb::CreateLoggedModelRequest {
                experiment_id: experiment_id.to_string(),
                name: name.to_string(),
                source_run_id: source_run_id.to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .info
        .unwrap()
        .model_id
    }

    async fn get_model(
        &self,
        ctx: &RequestContext,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<pb::LoggedModel, ApiError> {
        Ok(self
            .api
            .get_logged_model(
                ctx,
                pb::GetLoggedModelRequest {
                    model_id: model_id.to_string(),
                    allow_deleted,
                },
            )
            .await?
            .model
            .unwrap())
    }

    async fn model_metric(&self, run_id: &str, model_id: &str, key: &str, value: f64, step: i64) {
        self.api
            .log_metric(
                &self.ctx,
                pb::LogMetricRequest {
                    run_id: run_id.to_string(),
                    metric: Some(pb::Metric {
                        key: key.to_string(),
                        value,
                        timestamp: 1000 + step,
                        step,
                        model_id: model_id.to_string(),
                        ..Default::default()
                    }),
                },
            )
            .await
            .unwrap();
    }

    async fn search_models(
        &self,
        ctx: &RequestContext,
        request: pb::SearchLoggedModelsRequest,
    ) -> Result<pb::SearchLoggedModelsResponse, ApiError> {
        self.api.search_logged_models(ctx, request).await
    }

    /// Names of the models a search returns (one page of up to 1000).
    async fn model_names(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        order_by: Vec<pb::LoggedModelOrderBy>,
    ) -> Result<Vec<String>, ApiError> {
        let response = self
            .search_models(
                &self.ctx,
                pb::SearchLoggedModelsRequest {
                    experiment_ids: experiment_ids.iter().map(|s| s.to_string()).collect(),
                    filter: filter.to_string(),
                    order_by,
                    max_results: 1000,
                    ..Default::default()
                },
            )
            .await?;
        Ok(response
            .models
            .into_iter()
            .map(|m| m.info.unwrap().name)
            .collect())
    }
}

fn order(field: &str, ascending: bool) -> pb::LoggedModelOrderBy {
    pb::LoggedModelOrderBy {
        field_name: field.to_string(),
        ascending: Some(ascending),
        ..Default::default()
    }
}

fn not_found_message(model_id: &str) -> String {
    format!("Logged model with ID '{model_id}' not found.")
}

pub async fn logged_model_lifecycle(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("lm").await;
    let run = env.run(&exp, "r", 1).await;
    let created = env
        .create_model(
            &env.ctx,
            pb::CreateLoggedModelRequest {
                experiment_id: exp.clone(),
                name: "lm1".into(),
                model_type: "sklearn".into(),
                source_run_id: run.clone(),
                params: vec![kv("C", "1.0")],
                tags: vec![kv("k", "v")],
            },
        )
        .await
        .unwrap();
    let info = created.info.clone().unwrap();
    let id = info.model_id.clone();
    assert!(id.starts_with("m-") && id.len() == 34, "{id}");
    assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(info.experiment_id, exp);
    assert_eq!(info.name, "lm1");
    assert_eq!(info.model_type, "sklearn");
    assert_eq!(info.source_run_id, run);
    assert_eq!(info.status, pb::LoggedModelStatus::Pending as i32);
    assert_eq!(
        info.artifact_uri,
        format!("mlflow-artifacts:/{exp}/models/{id}/artifacts")
    );
    assert_eq!(info.creation_timestamp_ms, info.last_updated_timestamp_ms);
    assert_eq!(info.tags, vec![kv("k", "v")]);
    assert_eq!(created.data.clone().unwrap().params, vec![kv("C", "1.0")]);
    assert_eq!(env.get_model(&env.ctx, &id, false).await.unwrap(), created);

    // A generated name when none is given; bad names are 400.
    let unnamed = env.model(&exp, "", "").await;
    let unnamed = env.get_model(&env.ctx, &unnamed, false).await.unwrap();
    let name = unnamed.info.unwrap().name;
    assert_eq!(name.split('-').count(), 3, "{name}");
    let bad = env
        .create_model(
            &env.ctx,
            pb::CreateLoggedModelRequest {
                experiment_id: exp.clone(),
                name: "a/b".into(),
                ..Default::default()
            },
        )
        .await;
    assert_code(bad, ErrorCode::InvalidParameterValue);
    for (experiment_id, code) in [
        ("999", ErrorCode::ResourceDoesNotExist),
        ("abc", ErrorCode::InvalidParameterValue),
    ] {
        let result = env
            .create_model(
                &env.ctx,
                pb::CreateLoggedModelRequest {
                    experiment_id: experiment_id.into(),
                    ..Default::default()
                },
            )
            .await;
        assert_code(result, code);
    }

    // Finalize bumps last_updated and returns the model.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let finalized = env
        .api
        .finalize_logged_model(
            &env.ctx,
            pb::FinalizeLoggedModelRequest {
                model_id: id.clone(),
                status: pb::LoggedModelStatus::Ready as i32,
            },
        )
        .await
        .unwrap()
        .model
        .unwrap()
        .info
        .unwrap();
    assert_eq!(finalized.status, pb::LoggedModelStatus::Ready as i32);
    assert!(finalized.last_updated_timestamp_ms > info.creation_timestamp_ms);
    assert_eq!(finalized.creation_timestamp_ms, info.creation_timestamp_ms);
    let unspecified = env
        .api
        .finalize_logged_model(
            &env.ctx,
            pb::FinalizeLoggedModelRequest {
                model_id: id.clone(),
                status: 0,
            },
        )
        .await;
    assert_code(unspecified, ErrorCode::InvalidParameterValue);

    // Tags: upsert, delete, 404 for a missing tag.
    env.api
        .set_logged_model_tags(
            &env.ctx,
            pb::SetLoggedModelTagsRequest {
                model_id: id.clone(),
                tags: vec![kv("k", "v2"), kv("stage", "dev")],
            },
        )
        .await
        .unwrap();
    let tags = env
        .get_model(&env.ctx, &id, false)
        .await
        .unwrap()
        .info
        .unwrap()
        .tags;
    assert_eq!(tags, vec![kv("k", "v2"), kv("stage", "dev")]);
    let delete_tag = |key: &str| {
        env.api.delete_logged_model_tag(
            &env.ctx,
            pb::DeleteLoggedModelTagRequest {
                model_id: id.clone(),
                tag_key: key.to_string(),
            },
        )
    };
    delete_tag("stage").await.unwrap();
    assert_code(delete_tag("stage").await, ErrorCode::ResourceDoesNotExist);
    let tags = env
        .get_model(&env.ctx, &id, false)
        .await
        .unwrap()
        .info
        .unwrap()
        .tags;
    assert_eq!(tags, vec![kv("k", "v2")]);

    // Params: new keys added, the same value again is fine, a new value is 400.
    let log_params = |params: Vec<quiver_proto::common::v1::KeyValue>| {
        env.api.log_logged_model_params(
            &env.ctx,
            pb::LogLoggedModelParamsRequest {
                model_id: id.clone(),
                params,
            },
        )
    };
    log_params(vec![kv("penalty", "l2")]).await.unwrap();
    log_params(vec![kv("C", "1.0")]).await.unwrap();
    assert_code(
        log_params(vec![kv("C", "2.0")]).await,
        ErrorCode::InvalidParameterValue,
    );
    let params = env
        .get_model(&env.ctx, &id, false)
        .await
        .unwrap()
        .data
        .unwrap()
        .params;
    assert_eq!(params, vec![kv("C", "1.0"), kv("penalty", "l2")]);

    // Soft delete: 404 unless allow_deleted.
    env.api
        .delete_logged_model(
            &env.ctx,
            pb::DeleteLoggedModelRequest {
                model_id: id.clone(),
            },
        )
        .await
        .unwrap();
    let error = assert_code(
        env.get_model(&env.ctx, &id, false).await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(error.message, not_found_message(&id));
    let deleted = env
        .get_model(&env.ctx, &id, true)
        .await
        .unwrap()
        .info
        .unwrap();
    assert_eq!(deleted.lifecycle_stage, pb::LifecycleStage::Deleted as i32);

    // Unknown ids are 404 everywhere.
    let missing = "m-00000000000000000000000000000000";
    let error = assert_code(
        env.get_model(&env.ctx, missing, true).await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(error.message, not_found_message(missing));
    let finalize = env
        .api
        .finalize_logged_model(
            &env.ctx,
            pb::FinalizeLoggedModelRequest {
                model_id: missing.into(),
                status: pb::LoggedModelStatus::Ready as i32,
            },
        )
        .await;
    assert_code(finalize, ErrorCode::ResourceDoesNotExist);
    let delete = env
        .api
        .delete_logged_model(
            &env.ctx,
            pb::DeleteLoggedModelRequest {
                model_id: missing.into(),
            },
        )
        .await;
    assert_code(delete, ErrorCode::ResourceDoesNotExist);
    let tags = env
        .api
        .set_logged_model_tags(
            &env.ctx,
            pb::SetLoggedModelTagsRequest {
                model_id: missing.into(),
                tags: vec![kv("a", "b")],
            },
        )
        .await;
    assert_code(tags, ErrorCode::ResourceDoesNotExist);

    // A deleted experiment takes no new models.
    env.api
        .delete_experiment(
            &env.ctx,
            pb::DeleteExperimentRequest {
                experiment_id: exp.clone(),
            },
        )
        .await
        .unwrap();
    let result = env
        .create_model(
            &env.ctx,
            pb::CreateLoggedModelRequest {
                experiment_id: exp,
                ..Default::default()
            },
        )
        .await;
    assert_code(result, ErrorCode::InvalidParameterValue);
}

pub async fn logged_model_metrics(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("lm-metrics").await;
    let run = env.run(&exp, "r", 1).await;
    let model = env.model(&exp, "model", &run).await;
    // The stock client copies run metrics onto the model by logging the same
    // point again with model_id set: it must not be deduplicated away.
    env.metric(&run, "acc", 0.5, 1000, 0).await.unwrap();
    env.model_metric(&run, &model, "acc", 0.5, 0).await;
    env.model_metric(&run, &model, "acc", 0.7, 1).await;
    env.api
        .log_batch(
            &env.ctx,
            pb::LogBatchRequest {
                run_id: run.clone(),
                metrics: vec![pb::Metric {
                    key: "loss".into(),
                    value: 0.25,
                    timestamp: 2000,
                    step: 3,
                    model_id: model.clone(),
                    dataset_name: "iris".into(),
                    dataset_digest: "d1".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let metrics = env
        .get_model(&env.ctx, &model, false)
        .await
        .unwrap()
        .data
        .unwrap()
        .metrics;
    let summary: Vec<(String, f64, i64, String, String, String)> = metrics
        .iter()
        .map(|m| {
            (
                m.key.clone(),
                m.value,
                m.step,
                m.run_id.clone(),
                m.model_id.clone(),
                m.dataset_name.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "acc".into(),
                0.5,
                0,
                run.clone(),
                model.clone(),
                String::new()
            ),
            (
                "acc".into(),
                0.7,
                1,
                run.clone(),
                model.clone(),
                String::new()
            ),
            (
                "loss".into(),
                0.25,
                3,
                run.clone(),
                model.clone(),
                "iris".into()
            ),
        ]
    );
    assert_eq!(metrics[2].dataset_digest, "d1");
    assert_eq!(metrics[2].timestamp, 2000);
    // The run's own history still has the point once, and its latest value.
    let run_metrics = env.get_run(&run).await.data.unwrap().metrics;
    let acc = run_metrics.iter().find(|m| m.key == "acc").unwrap();
    assert_eq!((acc.value, acc.step), (0.7, 1));
}

pub async fn logged_model_search(backend: Backend) {
    let env = env(backend).await;
    let exp = env.experiment("lm-search").await;
    let other_exp = env.experiment("lm-search-other").await;
    let run_a = env.run(&exp, "a", 1).await;
    let run_b = env.run(&exp, "b", 2).await;
    let m1 = env.model(&exp, "model", &run_a).await;
    let m2 = env.model(&exp, "model", &run_b).await;
    let m3 = env.model(&exp, "other", &run_a).await;
    let m4 = env.model(&other_exp, "model", &run_a).await;
    let deleted = env.model(&exp, "gone", &run_a).await;
    env.api
        .delete_logged_model(
            &env.ctx,
            pb::DeleteLoggedModelRequest {
                model_id: deleted.clone(),
            },
        )
        .await
        .unwrap();
    env.api
        .log_logged_model_params(
            &env.ctx,
            pb::LogLoggedModelParamsRequest {
                model_id: m2.clone(),
                params: vec![kv("C", "1.0")],
            },
        )
        .await
        .unwrap();
    env.api
        .set_logged_model_tags(
            &env.ctx,
            pb::SetLoggedModelTagsRequest {
                model_id: m3.clone(),
                tags: vec![kv("team", "ml")],
            },
        )
        .await
        .unwrap();
    env.api
        .finalize_logged_model(
            &env.ctx,
            pb::FinalizeLoggedModelRequest {
                model_id: m3.clone(),
                status: pb::LoggedModelStatus::Ready as i32,
            },
        )
        .await
        .unwrap();
    // acc: m1 0.9 (latest; an older point 0.1), m2 0.8, m3 none.
    env.model_metric(&run_a, &m1, "acc", 0.1, 0).await;
    env.model_metric(&run_a, &m1, "acc", 0.9, 1).await;
    env.model_metric(&run_b, &m2, "acc", 0.8, 0).await;
    env.api
        .log_batch(
            &env.ctx,
            pb::LogBatchRequest {
                run_id: run_b.clone(),
                metrics: vec![pb::Metric {
                    key: "f1".into(),
                    value: 0.6,
                    timestamp: 5,
                    model_id: m2.clone(),
                    dataset_name: "eval".into(),
                    dataset_digest: "d".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ids_of = |models: &[pb::LoggedModel]| -> Vec<String> {
        models
            .iter()
            .map(|m| m.info.clone().unwrap().model_id)
            .collect()
    };

    // What register_model sends.
    let found = env
        .search_models(
            &env.ctx,
            pb::SearchLoggedModelsRequest {
                experiment_ids: vec![exp.clone()],
                filter: format!("source_run_id='{run_a}' AND name='model'"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids_of(&found.models), vec![m1.clone()]);
    assert!(found.next_page_token.is_empty());
    let both = env
        .model_names(
            &[&exp, &other_exp],
            &format!("source_run_id = '{run_a}' AND name = 'model'"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(both, vec!["model", "model"]);

    // Attribute, param, tag and metric filters.
    let names = |filter: &str| {
        let filter = filter.to_string();
        let exp = exp.clone();
        let env = &env;
        async move {
            env.model_names(&[&exp], &filter, vec![order("name", true)])
                .await
        }
    };
    assert_eq!(names("").await.unwrap(), vec!["model", "model", "other"]);
    assert_eq!(
        names("name LIKE 'mod%'").await.unwrap(),
        vec!["model", "model"]
    );
    assert_eq!(names("name ILIKE 'OTH%'").await.unwrap(), vec!["other"]);
    assert_eq!(
        names("name IN ('other', 'x')").await.unwrap(),
        vec!["other"]
    );
    assert_eq!(
        names("status = 'LOGGED_MODEL_READY'").await.unwrap(),
        vec!["other"]
    );
    assert_eq!(names("params.C = '1.0'").await.unwrap(), vec!["model"]);
    assert_eq!(names("tags.team = 'ml'").await.unwrap(), vec!["other"]);
    assert_eq!(names("tags.team != 'x'").await.unwrap(), vec!["other"]);
    assert_eq!(
        names("metrics.acc > 0.5").await.unwrap(),
        vec!["model", "model"]
    );
    assert_eq!(names("metrics.acc < 0.2").await.unwrap(), vec!["model"]);
    assert_eq!(names("metrics.f1 >= 0.6").await.unwrap(), vec!["model"]);
    assert!(names("creation_timestamp < 0").await.unwrap().is_empty());
    assert_eq!(names("creation_time > 0").await.unwrap().len(), 3);
    assert_code(
        names("params.C IS NULL").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        names("name = 'a' OR name = 'b'").await,
        ErrorCode::InvalidParameterValue,
    );

    // Metric order: latest value, missing last in both directions.
    let by_acc = |ascending: bool| {
        env.search_models(
            &env.ctx,
            pb::SearchLoggedModelsRequest {
                experiment_ids: vec![exp.clone()],
                order_by: vec![order("metrics.acc", ascending)],
                ..Default::default()
            },
        )
    };
    assert_eq!(
        ids_of(&by_acc(false).await.unwrap().models),
        vec![m1.clone(), m2.clone(), m3.clone()]
    );
    assert_eq!(
        ids_of(&by_acc(true).await.unwrap().models),
        vec![m2.clone(), m1.clone(), m3.clone()]
    );
    // Default: creation_timestamp DESC, then model_id.
    let default = env
        .search_models(
            &env.ctx,
            pb::SearchLoggedModelsRequest {
                experiment_ids: vec![exp.clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .models;
    let mut keys: Vec<(i64, String)> = default
        .iter()
        .map(|m| {
            let info = m.info.clone().unwrap();
            (-info.creation_timestamp_ms, info.model_id)
        })
        .collect();
    let returned = keys.clone();
    keys.sort();
    assert_eq!(returned, keys);
    assert_eq!(default.len(), 3);
    assert!(!ids_of(&default).contains(&deleted));
    assert_code(
        env.model_names(&[&exp], "", vec![order("params.C", true)])
            .await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.model_names(&[&exp], "", vec![order("nope", true)])
            .await,
        ErrorCode::InvalidParameterValue,
    );

    // Datasets scope metric filters, and alone require a metric on them.
    let scoped = |filter: &str, datasets: Vec<(&str, &str)>| {
        env.search_models(
            &env.ctx,
            pb::SearchLoggedModelsRequest {
                experiment_ids: vec![exp.clone()],
                filter: filter.to_string(),
                datasets: datasets
                    .into_iter()
                    .map(|(name, digest)| pb::LoggedModelDatasetFilter {
                        dataset_name: name.into(),
                        dataset_digest: digest.into(),
                    })
                    .collect(),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        ids_of(&scoped("", vec![("eval", "")]).await.unwrap().models),
        vec![m2.clone()]
    );
    assert_eq!(
        ids_of(
            &scoped("metrics.f1 > 0", vec![("eval", "d")])
                .await
                .unwrap()
                .models
        ),
        vec![m2.clone()]
    );
    assert!(
        scoped("metrics.f1 > 0", vec![("eval", "other")])
            .await
            .unwrap()
            .models
            .is_empty()
    );
    assert!(
        scoped("metrics.acc > 0", vec![("eval", "")])
            .await
            .unwrap()
            .models
            .is_empty()
    );
    assert_code(
        scoped("", vec![("", "d")]).await,
        ErrorCode::InvalidParameterValue,
    );

    // Paging through everything, two at a time, in the order of one big page.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = env
            .search_models(
                &env.ctx,
                pb::SearchLoggedModelsRequest {
                    experiment_ids: vec![exp.clone()],
                    order_by: vec![order("name", true)],
                    max_results: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page.models.len() <= 2);
        paged.extend(ids_of(&page.models));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        // A token only fits the search that issued it.
        let mismatch = env
            .search_models(
                &env.ctx,
                pb::SearchLoggedModelsRequest {
                    experiment_ids: vec![exp.clone()],
                    filter: "name = 'model'".into(),
                    order_by: vec![order("name", true)],
                    max_results: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await;
        assert_code(mismatch, ErrorCode::InvalidParameterValue);
    }
    let all = env
        .search_models(
            &env.ctx,
            pb::SearchLoggedModelsRequest {
                experiment_ids: vec![exp.clone()],
                order_by: vec![order("name", true)],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(paged, ids_of(&all.models));
    assert_eq!(paged.len(), 3);
    assert!(!paged.contains(&m4));

    // Bad requests.
    let bad = |request: pb::SearchLoggedModelsRequest| env.search_models(&env.ctx, request);
    assert_code(
        bad(Default::default()).await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        bad(pb::SearchLoggedModelsRequest {
            experiment_ids: vec!["x".into()],
            ..Default::default()
        })
        .await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        bad(pb::SearchLoggedModelsRequest {
            experiment_ids: vec![exp.clone()],
            page_token: "not a token!".into(),
            ..Default::default()
        })
        .await,
        ErrorCode::InvalidParameterValue,
    );
}

pub async fn logged_models_are_namespaced(backend: Backend) {
    let env = env(backend).await;
    let a = ns("team-a");
    let b = ns("team-b");
    let created = env
        .create_model(
            &a,
            pb::CreateLoggedModelRequest {
                experiment_id: "0".into(),
                name: "model".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = created.info.unwrap().model_id;
    assert!(env.get_model(&a, &id, false).await.is_ok());
    assert_code(
        env.get_model(&b, &id, true).await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.get_model(&env.ctx, &id, true).await,
        ErrorCode::ResourceDoesNotExist,
    );
    let finalize = env
        .api
        .finalize_logged_model(
            &b,
            pb::FinalizeLoggedModelRequest {
                model_id: id.clone(),
                status: pb::LoggedModelStatus::Ready as i32,
            },
        )
        .await;
    assert_code(finalize, ErrorCode::ResourceDoesNotExist);
    let tags = env
        .api
        .set_logged_model_tags(
            &b,
            pb::SetLoggedModelTagsRequest {
                model_id: id.clone(),
                tags: vec![kv("x", "y")],
            },
        )
        .await;
    assert_code(tags, ErrorCode::ResourceDoesNotExist);
    let delete = env
        .api
        .delete_logged_model(
            &b,
            pb::DeleteLoggedModelRequest {
                model_id: id.clone(),
            },
        )
        .await;
    assert_code(delete, ErrorCode::ResourceDoesNotExist);
    let search = |ctx: RequestContext| {
        let api = env.api.clone();
        async move {
            api.search_logged_models(
                &ctx,
                pb::SearchLoggedModelsRequest {
                    experiment_ids: vec!["0".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .models
            .len()
        }
    };
    assert_eq!(search(a.clone()).await, 1);
    assert_eq!(search(b.clone()).await, 0);
    assert_eq!(search(env.ctx.clone()).await, 0);
    // Still intact in its own namespace.
    let info = env.get_model(&a, &id, false).await.unwrap().info.unwrap();
    assert_eq!(info.status, pb::LoggedModelStatus::Pending as i32);
    assert!(info.tags.is_empty());
}
