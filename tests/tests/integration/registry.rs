//! The registry-API conformance suite, run against every backend: the
//! in-process service on SQLite and Postgres, and both behind a real gRPC
//! hop. Sources are resolved through the tracking API of the same backend.

use std::collections::BTreeSet;
use std::sync::Arc;

use quiver_common::{ApiError, ErrorCode, Namespace, RequestContext};
use quiver_e2e::{Backend, Guard, registry_api};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::registry::v1 as pb;
use quiver_proto::tracking::v1 as tpb;
use quiver_registry::RegistryApi;
use quiver_tracking::TrackingApi;

struct Env {
    registry: Arc<dyn RegistryApi>,
    tracking: Arc<dyn TrackingApi>,
    ctx: RequestContext,
    _guard: Guard,
}

async fn env(backend: Backend) -> Env {
    let (registry, tracking, guard) = registry_api(backend).await;
    Env {
        registry,
        tracking,
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
    /// A run in a fresh experiment, in `ctx`'s namespace: (run id, artifact uri).
    async fn run_in(&self, ctx: &RequestContext, experiment: &str) -> (String, String) {
        let experiment_id = self
            .tracking
            .create_experiment(
                ctx,
                tpb::CreateExperimentRequest {
                    name: experiment.to_string(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .experiment_id;
        let info = self
            .tracking
            .create_run(
                ctx,
                tpb::CreateRunRequest {
                    experiment_id,
                    start_time: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .run
            .unwrap()
            .info
            .unwrap();
        (info.run_id, info.artifact_uri)
    }

    async fn run(&self, experiment: &str) -> (String, String) {
        self.run_in(&self.ctx, experiment).await
    }

    async fn model_in(&self, ctx: &RequestContext, name: &str) -> pb::RegisteredModel {
        self.registry
            .create_registered_model(
                ctx,
                pb::CreateRegisteredModelRequest {
                    name: name.to_string(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .registered_model
            .unwrap()
    }

    async fn model(&self, name: &str) -> pb::RegisteredModel {
        self.model_in(&self.ctx, name).await
    }

    async fn create_version(
        &self,
        ctx: &RequestContext,
        name: &str,
        source: &str,
        run_id: &str,
        model_id: &str,
    ) -> Result<pb::ModelVersion, ApiError> {
        self.registry
            .create_model_version(
                ctx,
                pb::CreateModelVersionRequest {
                    name: name.to_string(),
                    source: source.to_string(),
                    run_id: run_id.to_string(),
                    model_id: model_id.to_string(),
                    ..Default::default()
                },
            )
            .await
            .map(|response| response.model_version.unwrap())
    }

    async fn version_from_run(&self, name: &str, run_id: &str) -> pb::ModelVersion {
        self.create_version(
            &self.ctx,
            name,
            &format!("runs:/{run_id}/model"),
            run_id,
            "",
        )
        .await
        .unwrap()
    }

    async fn get_version(&self, name: &str, version: &str) -> Result<pb::ModelVersion, ApiError> {
        self.registry
            .get_model_version(
                &self.ctx,
                pb::GetModelVersionRequest {
                    name: name.to_string(),
                    version: version.to_string(),
                },
            )
            .await
            .map(|response| response.model_version.unwrap())
    }

    async fn get_model(&self, name: &str) -> Result<pb::RegisteredModel, ApiError> {
        self.registry
            .get_registered_model(
                &self.ctx,
                pb::GetRegisteredModelRequest {
                    name: name.to_string(),
                },
            )
            .await
            .map(|response| response.registered_model.unwrap())
    }

    async fn transition(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive: bool,
    ) -> Result<pb::ModelVersion, ApiError> {
        self.registry
            .transition_model_version_stage(
                &self.ctx,
                pb::TransitionModelVersionStageRequest {
                    name: name.to_string(),
                    version: version.to_string(),
                    stage: stage.to_string(),
                    archive_existing_versions: archive,
                },
            )
            .await
            .map(|response| response.model_version.unwrap())
    }

    async fn latest(&self, name: &str, stages: &[&str]) -> Vec<(String, String)> {
        self.registry
            .get_latest_versions(
                &self.ctx,
                pb::GetLatestVersionsRequest {
                    name: name.to_string(),
                    stages: stages.iter().map(ToString::to_string).collect(),
                },
            )
            .await
            .unwrap()
            .model_versions
            .into_iter()
            .map(|v| (v.version, v.current_stage))
            .collect()
    }

    async fn search_models(
        &self,
        filter: &str,
        order_by: &[&str],
        max_results: Option<i64>,
        page_token: &str,
    ) -> Result<pb::SearchRegisteredModelsResponse, ApiError> {
        self.registry
            .search_registered_models(
                &self.ctx,
                pb::SearchRegisteredModelsRequest {
                    filter: filter.to_string(),
                    max_results,
                    order_by: order_by.iter().map(ToString::to_string).collect(),
                    page_token: page_token.to_string(),
                },
            )
            .await
    }

    async fn search_versions(
        &self,
        filter: &str,
        order_by: &[&str],
        max_results: Option<i64>,
        page_token: &str,
    ) -> Result<pb::SearchModelVersionsResponse, ApiError> {
        self.registry
            .search_model_versions(
                &self.ctx,
                pb::SearchModelVersionsRequest {
                    filter: filter.to_string(),
                    max_results,
                    order_by: order_by.iter().map(ToString::to_string).collect(),
                    page_token: page_token.to_string(),
                },
            )
            .await
    }

    async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), ApiError> {
        self.registry
            .set_registered_model_alias(
                &self.ctx,
                pb::SetRegisteredModelAliasRequest {
                    name: name.to_string(),
                    alias: alias.to_string(),
                    version: version.to_string(),
                },
            )
            .await
            .map(|_| ())
    }

    async fn by_alias(&self, name: &str, alias: &str) -> Result<pb::ModelVersion, ApiError> {
        self.registry
            .get_model_version_by_alias(
                &self.ctx,
                pb::GetModelVersionByAliasRequest {
                    name: name.to_string(),
                    alias: alias.to_string(),
                },
            )
            .await
            .map(|response| response.model_version.unwrap())
    }
}

fn names(models: &[pb::RegisteredModel]) -> Vec<String> {
    models.iter().map(|m| m.name.clone()).collect()
}

fn versions(versions: &[pb::ModelVersion]) -> Vec<String> {
    versions.iter().map(|v| v.version.clone()).collect()
}

async fn registered_model_lifecycle(backend: Backend) {
    let env = env(backend).await;
    let created = env
        .registry
        .create_registered_model(
            &env.ctx,
            pb::CreateRegisteredModelRequest {
                name: "churn".into(),
                tags: vec![kv("owner", "me"), kv("team", "ml")],
                description: "desc".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .registered_model
        .unwrap();
    assert_eq!(created.name, "churn");
    assert_eq!(created.description, "desc");
    assert_eq!(created.creation_timestamp, created.last_updated_timestamp);
    assert_eq!(created.tags, vec![kv("owner", "me"), kv("team", "ml")]);

    let duplicate = env
        .registry
        .create_registered_model(
            &env.ctx,
            pb::CreateRegisteredModelRequest {
                name: "churn".into(),
                ..Default::default()
            },
        )
        .await;
    let error = assert_code(duplicate, ErrorCode::ResourceAlreadyExists);
    assert_eq!(
        error.message,
        "Registered Model (name=churn) already exists."
    );

    let got = env.get_model("churn").await.unwrap();
    assert_eq!(got.tags, created.tags);
    assert!(got.latest_versions.is_empty());
    let error = assert_code(env.get_model("nope").await, ErrorCode::ResourceDoesNotExist);
    assert_eq!(error.message, "Registered Model with name=nope not found");

    for bad in ["a/b", "a:b", "", ".."] {
        let result = env
            .registry
            .create_registered_model(
                &env.ctx,
                pb::CreateRegisteredModelRequest {
                    name: bad.into(),
                    ..Default::default()
                },
            )
            .await;
        assert_code(result, ErrorCode::InvalidParameterValue);
    }

    // Update: an unset description leaves it; an empty one clears it.
    let update = |description: Option<&str>| pb::UpdateRegisteredModelRequest {
        name: "churn".into(),
        description: description.map(str::to_string),
        deployment_job_id: None,
    };
    let updated = env
        .registry
        .update_registered_model(&env.ctx, update(Some("new desc")))
        .await
        .unwrap()
        .registered_model
        .unwrap();
    assert_eq!(updated.description, "new desc");
    assert!(updated.last_updated_timestamp >= created.last_updated_timestamp);
    let unchanged = env
        .registry
        .update_registered_model(&env.ctx, update(None))
        .await
        .unwrap()
        .registered_model
        .unwrap();
    assert_eq!(unchanged.description, "new desc");

    // Tags: overwrite, delete, deleting a missing tag is fine, a missing model is not.
    let set_tag = |key: &str, value: &str| pb::SetRegisteredModelTagRequest {
        name: "churn".into(),
        key: key.into(),
        value: value.into(),
    };
    env.registry
        .set_registered_model_tag(&env.ctx, set_tag("owner", "you"))
        .await
        .unwrap();
    let delete_tag = |name: &str, key: &str| pb::DeleteRegisteredModelTagRequest {
        name: name.into(),
        key: key.into(),
    };
    env.registry
        .delete_registered_model_tag(&env.ctx, delete_tag("churn", "team"))
        .await
        .unwrap();
    env.registry
        .delete_registered_model_tag(&env.ctx, delete_tag("churn", "never-set"))
        .await
        .unwrap();
    assert_code(
        env.registry
            .delete_registered_model_tag(&env.ctx, delete_tag("nope", "x"))
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.registry
            .set_registered_model_tag(&env.ctx, set_tag("", "x"))
            .await,
        ErrorCode::InvalidParameterValue,
    );
    assert_eq!(
        env.get_model("churn").await.unwrap().tags,
        vec![kv("owner", "you")]
    );

    // Rename: versions follow; the old name is free; a taken name is refused.
    let (run_id, _) = env.run("exp").await;
    env.version_from_run("churn", &run_id).await;
    env.model("taken").await;
    let rename = |name: &str, new_name: &str| pb::RenameRegisteredModelRequest {
        name: name.into(),
        new_name: new_name.into(),
    };
    assert_code(
        env.registry
            .rename_registered_model(&env.ctx, rename("churn", "taken"))
            .await,
        ErrorCode::ResourceAlreadyExists,
    );
    let renamed = env
        .registry
        .rename_registered_model(&env.ctx, rename("churn", "churn-v2"))
        .await
        .unwrap()
        .registered_model
        .unwrap();
    assert_eq!(renamed.name, "churn-v2");
    assert_eq!(renamed.latest_versions.len(), 1);
    assert_eq!(renamed.latest_versions[0].name, "churn-v2");
    assert_eq!(
        env.get_version("churn-v2", "1").await.unwrap().run_id,
        run_id
    );
    assert_code(
        env.get_model("churn").await,
        ErrorCode::ResourceDoesNotExist,
    );
    env.model("churn").await; // the old name is free again

    // Delete: hard, with versions, tags and aliases.
    env.set_alias("churn-v2", "champion", "1").await.unwrap();
    env.registry
        .delete_registered_model(
            &env.ctx,
            pb::DeleteRegisteredModelRequest {
                name: "churn-v2".into(),
            },
        )
        .await
        .unwrap();
    assert_code(
        env.get_model("churn-v2").await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.get_version("churn-v2", "1").await,
        ErrorCode::ResourceDoesNotExist,
    );
    let recreated = env.model("churn-v2").await;
    assert!(recreated.tags.is_empty() && recreated.aliases.is_empty());
    // Versions restart at 1 for a new model of the same name.
    assert_eq!(env.version_from_run("churn-v2", &run_id).await.version, "1");
}

async fn versions_and_sources(backend: Backend) {
    let env = env(backend).await;
    let (run_id, artifact_uri) = env.run("exp").await;
    env.model("m").await;

    // runs:/ source: stored as given, files under the run's artifact dir,
    // download URI unchanged (the client resolves runs:/ itself).
    let v1 = env.version_from_run("m", &run_id).await;
    assert_eq!(v1.version, "1");
    assert_eq!(v1.current_stage, "None");
    assert_eq!(v1.status, pb::ModelVersionStatus::Ready as i32);
    assert_eq!(v1.source, format!("runs:/{run_id}/model"));
    assert_eq!(v1.storage_location, format!("{artifact_uri}/model"));
    let uri = env
        .registry
        .get_model_version_download_uri(
            &env.ctx,
            pb::GetModelVersionDownloadUriRequest {
                name: "m".into(),
                version: "1".into(),
            },
        )
        .await
        .unwrap()
        .artifact_uri;
    assert_eq!(uri, format!("runs:/{run_id}/model"));

    // The run's artifact URI plus a subpath, with run_id (MLflow 2.x clients).
    let v2 = env
        .create_version(&env.ctx, "m", &format!("{artifact_uri}/model"), &run_id, "")
        .await
        .unwrap();
    assert_eq!(v2.version, "2");
    assert_eq!(v2.storage_location, format!("{artifact_uri}/model"));

    // models:/<model_id>: needs model_id, fills run_id from the logged model.
    let experiment_id = artifact_uri
        .trim_start_matches("mlflow-artifacts:/")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let logged = env
        .tracking
        .create_logged_model(
            &env.ctx,
            tpb::CreateLoggedModelRequest {
                experiment_id,
                name: "model".into(),
                source_run_id: run_id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .model
        .unwrap()
        .info
        .unwrap();
    let source = format!("models:/{}", logged.model_id);
    assert_code(
        env.create_version(&env.ctx, "m", &source, "", "").await,
        ErrorCode::InvalidParameterValue,
    );
    let v3 = env
        .create_version(&env.ctx, "m", &source, "", &logged.model_id)
        .await
        .unwrap();
    assert_eq!(v3.version, "3");
    assert_eq!(v3.run_id, run_id);
    assert_eq!(v3.model_id, logged.model_id);
    let uri = env
        .registry
        .get_model_version_download_uri(
            &env.ctx,
            pb::GetModelVersionDownloadUriRequest {
                name: "m".into(),
                version: "3".into(),
            },
        )
        .await
        .unwrap()
        .artifact_uri;
    assert_eq!(uri, logged.artifact_uri);
    // The client records the registration on the logged model; the tracking
    // service reports it as `registrations`.
    env.tracking
        .set_logged_model_tags(
            &env.ctx,
            tpb::SetLoggedModelTagsRequest {
                model_id: logged.model_id.clone(),
                tags: vec![kv(
                    "mlflow.modelVersions",
                    r#"[{"name": "m", "version": "3"}]"#,
                )],
            },
        )
        .await
        .unwrap();
    let registrations = env
        .tracking
        .get_logged_model(
            &env.ctx,
            tpb::GetLoggedModelRequest {
                model_id: logged.model_id.clone(),
                allow_deleted: false,
            },
        )
        .await
        .unwrap()
        .model
        .unwrap()
        .info
        .unwrap()
        .registrations;
    assert_eq!(
        registrations,
        vec![tpb::LoggedModelRegistration {
            name: "m".into(),
            version: "3".into()
        }]
    );

    // Hostile or foreign sources are refused with 400 and create nothing.
    let (foreign_run, foreign_uri) = env.run_in(&ns("other-team"), "theirs").await;
    let refused = [
        ("/etc/passwd".to_string(), run_id.clone()),
        ("file:///etc/passwd".to_string(), run_id.clone()),
        (
            "http://169.254.169.254/latest/meta-data".to_string(),
            run_id.clone(),
        ),
        (
            "s3://someone-elses-bucket/model".to_string(),
            run_id.clone(),
        ),
        (
            format!("{artifact_uri}/../../other/artifacts"),
            run_id.clone(),
        ),
        (format!("{artifact_uri}/%2e%2e/x"), run_id.clone()),
        (format!("{artifact_uri}X/model"), run_id.clone()),
        (format!("runs:/{run_id}/../x"), run_id.clone()),
        (format!("runs:/{foreign_run}/model"), String::new()),
        (format!("{foreign_uri}/model"), foreign_run.clone()),
        (
            "runs:/0123456789abcdef0123456789abcdef/model".to_string(),
            String::new(),
        ),
        ("models:/other/1".to_string(), String::new()),
        ("mlflow-artifacts:/1/x".to_string(), String::new()),
    ];
    for (source, run) in &refused {
        let result = env.create_version(&env.ctx, "m", source, run, "").await;
        let error = assert_code(result, ErrorCode::InvalidParameterValue);
        assert!(
            error.message.starts_with("Invalid model version source"),
            "{source}: {}",
            error.message
        );
    }
    let unknown_model = format!("models:/m-{}", "0".repeat(32));
    assert_code(
        env.create_version(&env.ctx, "m", &unknown_model, "", &unknown_model[8..])
            .await,
        ErrorCode::InvalidParameterValue,
    );
    // Nothing was allocated by the refusals: the next version is 4.
    assert_eq!(env.version_from_run("m", &run_id).await.version, "4");
    // Source checks come first; a good source for a missing model is a 404.
    assert_code(
        env.create_version(
            &env.ctx,
            "missing",
            &format!("runs:/{run_id}/model"),
            &run_id,
            "",
        )
        .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.create_version(
            &env.ctx,
            "missing",
            "runs:/ffffffffffffffffffffffffffffffff/m",
            "",
            "",
        )
        .await,
        ErrorCode::InvalidParameterValue,
    );

    // get / update / tags / delete of versions.
    let error = assert_code(
        env.get_version("m", "99").await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(
        error.message,
        "Model Version (name=m, version=99) not found"
    );
    assert_code(
        env.get_version("m", "abc").await,
        ErrorCode::InvalidParameterValue,
    );
    let updated = env
        .registry
        .update_model_version(
            &env.ctx,
            pb::UpdateModelVersionRequest {
                name: "m".into(),
                version: "1".into(),
                description: Some("changed".into()),
            },
        )
        .await
        .unwrap()
        .model_version
        .unwrap();
    assert_eq!(updated.description, "changed");
    env.registry
        .set_model_version_tag(
            &env.ctx,
            pb::SetModelVersionTagRequest {
                name: "m".into(),
                version: "1".into(),
                key: "k".into(),
                value: "v".into(),
            },
        )
        .await
        .unwrap();
    let tagged = env.get_version("m", "1").await.unwrap();
    assert_eq!(tagged.tags, vec![kv("k", "v")]);
    // Setting a version tag does not bump its last_updated_timestamp.
    assert_eq!(
        tagged.last_updated_timestamp,
        updated.last_updated_timestamp
    );
    let delete_tag = |version: &str, key: &str| pb::DeleteModelVersionTagRequest {
        name: "m".into(),
        version: version.into(),
        key: key.into(),
    };
    env.registry
        .delete_model_version_tag(&env.ctx, delete_tag("1", "k"))
        .await
        .unwrap();
    env.registry
        .delete_model_version_tag(&env.ctx, delete_tag("1", "absent"))
        .await
        .unwrap();
    assert_code(
        env.registry
            .delete_model_version_tag(&env.ctx, delete_tag("42", "k"))
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert!(env.get_version("m", "1").await.unwrap().tags.is_empty());

    env.registry
        .delete_model_version(
            &env.ctx,
            pb::DeleteModelVersionRequest {
                name: "m".into(),
                version: "4".into(),
            },
        )
        .await
        .unwrap();
    assert_code(
        env.get_version("m", "4").await,
        ErrorCode::ResourceDoesNotExist,
    );
    // Numbers are never reused.
    assert_eq!(env.version_from_run("m", &run_id).await.version, "5");
}

async fn stages_and_latest_versions(backend: Backend) {
    let env = env(backend).await;
    let (run_id, _) = env.run("exp").await;
    env.model("m").await;
    for _ in 0..4 {
        env.version_from_run("m", &run_id).await;
    }
    let staged = env.transition("m", "1", "staging", false).await.unwrap();
    assert_eq!(staged.current_stage, "Staging");
    env.transition("m", "2", "Production", false).await.unwrap();
    env.transition("m", "3", "PRODUCTION", false).await.unwrap();
    let error = assert_code(
        env.transition("m", "1", "Prod", false).await,
        ErrorCode::InvalidParameterValue,
    );
    assert_eq!(
        error.message,
        "Invalid Model Version stage: Prod. Value must be one of None, Staging, Production, Archived."
    );
    assert_code(
        env.transition("m", "1", "None", true).await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.transition("m", "9", "Staging", false).await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.transition("nope", "1", "Staging", false).await,
        ErrorCode::ResourceDoesNotExist,
    );

    assert_eq!(
        env.latest("m", &["Production"]).await,
        vec![("3".to_string(), "Production".to_string())]
    );
    assert_eq!(
        env.latest("m", &[]).await,
        vec![
            ("1".to_string(), "Staging".to_string()),
            ("3".to_string(), "Production".to_string()),
            ("4".to_string(), "None".to_string()),
        ]
    );
    assert_code(
        env.registry
            .get_latest_versions(
                &env.ctx,
                pb::GetLatestVersionsRequest {
                    name: "m".into(),
                    stages: vec!["bogus".into()],
                },
            )
            .await,
        ErrorCode::InvalidParameterValue,
    );
    let model = env.get_model("m").await.unwrap();
    let latest: BTreeSet<(String, String)> = model
        .latest_versions
        .iter()
        .map(|v| (v.version.clone(), v.current_stage.clone()))
        .collect();
    assert_eq!(latest.len(), 3);
    assert!(latest.contains(&("3".to_string(), "Production".to_string())));
    // Transitions bump the registered model's last_updated_timestamp.
    assert!(model.last_updated_timestamp >= staged.last_updated_timestamp);

    // archive_existing_versions moves every other Production version to Archived.
    let promoted = env.transition("m", "4", "production", true).await.unwrap();
    assert_eq!(promoted.current_stage, "Production");
    for (version, stage) in [
        ("1", "Staging"),
        ("2", "Archived"),
        ("3", "Archived"),
        ("4", "Production"),
    ] {
        assert_eq!(
            env.get_version("m", version).await.unwrap().current_stage,
            stage,
            "v{version}"
        );
    }
    assert_eq!(
        env.latest("m", &["production", "Archived"]).await,
        vec![
            ("3".to_string(), "Archived".to_string()),
            ("4".to_string(), "Production".to_string()),
        ]
    );
    assert!(env.latest("m", &["None"]).await.is_empty());
}

async fn aliases(backend: Backend) {
    let env = env(backend).await;
    let (run_id, _) = env.run("exp").await;
    env.model("m").await;
    env.version_from_run("m", &run_id).await;
    env.version_from_run("m", &run_id).await;

    env.set_alias("m", "champion", "1").await.unwrap();
    let v1 = env.by_alias("m", "champion").await.unwrap();
    assert_eq!(v1.version, "1");
    assert_eq!(v1.aliases, vec!["champion".to_string()]);
    env.set_alias("m", "champion", "2").await.unwrap(); // moves
    assert_eq!(env.by_alias("m", "champion").await.unwrap().version, "2");
    assert!(env.get_version("m", "1").await.unwrap().aliases.is_empty());
    env.set_alias("m", "challenger", "1").await.unwrap();
    let model = env.get_model("m").await.unwrap();
    let listed: Vec<(String, String)> = model
        .aliases
        .iter()
        .map(|a| (a.alias.clone(), a.version.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("challenger".to_string(), "1".to_string()),
            ("champion".to_string(), "2".to_string())
        ]
    );

    for reserved in ["latest", "LATEST", "v1", "V12"] {
        let error = assert_code(
            env.set_alias("m", reserved, "1").await,
            ErrorCode::InvalidParameterValue,
        );
        assert!(error.message.contains("reserved"), "{}", error.message);
    }
    assert_code(
        env.set_alias("m", "bad alias", "1").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.set_alias("m", "x", "7").await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_code(
        env.set_alias("nope", "x", "1").await,
        ErrorCode::ResourceDoesNotExist,
    );
    let error = assert_code(
        env.by_alias("m", "ghost").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_eq!(error.message, "Registered model alias ghost not found.");

    let delete = |alias: &str| pb::DeleteRegisteredModelAliasRequest {
        name: "m".into(),
        alias: alias.into(),
    };
    env.registry
        .delete_registered_model_alias(&env.ctx, delete("challenger"))
        .await
        .unwrap();
    env.registry
        .delete_registered_model_alias(&env.ctx, delete("never"))
        .await
        .unwrap();
    assert_code(
        env.by_alias("m", "challenger").await,
        ErrorCode::InvalidParameterValue,
    );
    // Deleting a version removes its aliases.
    env.registry
        .delete_model_version(
            &env.ctx,
            pb::DeleteModelVersionRequest {
                name: "m".into(),
                version: "2".into(),
            },
        )
        .await
        .unwrap();
    assert_code(
        env.by_alias("m", "champion").await,
        ErrorCode::InvalidParameterValue,
    );
    assert!(env.get_model("m").await.unwrap().aliases.is_empty());
}

async fn search_registered_models(backend: Backend) {
    let env = env(backend).await;
    for name in ["alpha", "Beta", "gamma", "delta", "epsilon", "zeta", "eta"] {
        env.model(name).await;
    }
    env.registry
        .set_registered_model_tag(
            &env.ctx,
            pb::SetRegisteredModelTagRequest {
                name: "gamma".into(),
                key: "team".into(),
                value: "vision".into(),
            },
        )
        .await
        .unwrap();
    let all = env.search_models("", &[], None, "").await.unwrap();
    assert_eq!(
        names(&all.registered_models),
        ["Beta", "alpha", "delta", "epsilon", "eta", "gamma", "zeta"]
    );
    assert!(all.next_page_token.is_empty());

    let like = env
        .search_models("name LIKE '%eta'", &[], None, "")
        .await
        .unwrap();
    assert_eq!(names(&like.registered_models), ["Beta", "eta", "zeta"]);
    let case = env
        .search_models("name LIKE 'beta'", &[], None, "")
        .await
        .unwrap();
    assert!(case.registered_models.is_empty());
    let ilike = env
        .search_models("name ILIKE 'beta'", &[], None, "")
        .await
        .unwrap();
    assert_eq!(names(&ilike.registered_models), ["Beta"]);
    let listed = env
        .search_models("name IN ('alpha', 'zeta', 'nope')", &[], None, "")
        .await
        .unwrap();
    assert_eq!(names(&listed.registered_models), ["alpha", "zeta"]);
    let not_eq = env
        .search_models("name != 'alpha'", &[], None, "")
        .await
        .unwrap();
    assert_eq!(not_eq.registered_models.len(), 6);
    let tagged = env
        .search_models("tags.team = 'vision' AND name LIKE 'g%'", &[], None, "")
        .await
        .unwrap();
    assert_eq!(names(&tagged.registered_models), ["gamma"]);
    assert_eq!(tagged.registered_models[0].tags, vec![kv("team", "vision")]);

    // Prompts are registered models tagged `mlflow.prompt.is_prompt=true`: the
    // stock client's default clause hides them and keeps untagged models.
    let prompt = env
        .registry
        .create_registered_model(
            &env.ctx,
            pb::CreateRegisteredModelRequest {
                name: "a-prompt".into(),
                tags: vec![kv("mlflow.prompt.is_prompt", "true")],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .registered_model
        .unwrap();
    let client_default = env
        .search_models(
            "name LIKE '%eta' AND tag.`mlflow.prompt.is_prompt` != 'true'",
            &[],
            None,
            "",
        )
        .await
        .unwrap();
    assert_eq!(
        names(&client_default.registered_models),
        ["Beta", "eta", "zeta"]
    );
    let everything = env.search_models("", &[], Some(100), "").await.unwrap();
    assert!(!names(&everything.registered_models).contains(&prompt.name));
    let prompts = env
        .search_models("tags.`mlflow.prompt.is_prompt` = 'true'", &[], None, "")
        .await
        .unwrap();
    assert_eq!(names(&prompts.registered_models), ["a-prompt"]);

    let desc = env
        .search_models("", &["name DESC"], None, "")
        .await
        .unwrap();
    assert_eq!(names(&desc.registered_models)[0], "zeta");
    // Most recently updated first (gamma's tag does not bump; eta was created last).
    let recent = env
        .search_models("", &["last_updated_timestamp DESC"], Some(1), "")
        .await
        .unwrap();
    assert_eq!(names(&recent.registered_models), ["eta"]);

    // Paging through everything, 3 at a time.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = env.search_models("", &[], Some(3), &token).await.unwrap();
        assert!(page.registered_models.len() <= 3);
        seen.extend(names(&page.registered_models));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, names(&all.registered_models));

    for (filter, order) in [
        ("name = 'a' OR name = 'b'", ""),
        ("run_id = 'x'", ""),
        ("", "creation_timestamp DESC"),
        ("", "bogus ASC"),
    ] {
        let order: Vec<&str> = if order.is_empty() {
            vec![]
        } else {
            vec![order]
        };
        assert_code(
            env.search_models(filter, &order, None, "").await,
            ErrorCode::InvalidParameterValue,
        );
    }
    assert_code(
        env.search_models("", &[], Some(1001), "").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_code(
        env.search_models("", &[], None, "not a token").await,
        ErrorCode::InvalidParameterValue,
    );
}

async fn search_model_versions(backend: Backend) {
    let env = env(backend).await;
    let (run_a, _) = env.run("a").await;
    let (run_b, _) = env.run("b").await;
    env.model("m1").await;
    env.model("m2").await;
    for run in [&run_a, &run_b, &run_a] {
        env.version_from_run("m1", run).await;
    }
    env.version_from_run("m2", &run_b).await;
    env.registry
        .set_model_version_tag(
            &env.ctx,
            pb::SetModelVersionTagRequest {
                name: "m1".into(),
                version: "2".into(),
                key: "validated".into(),
                value: "yes".into(),
            },
        )
        .await
        .unwrap();

    let by_name = env
        .search_versions("name = 'm1'", &[], None, "")
        .await
        .unwrap();
    assert_eq!(versions(&by_name.model_versions).len(), 3);
    let by_run = env
        .search_versions(&format!("run_id = '{run_b}'"), &["name ASC"], None, "")
        .await
        .unwrap();
    let pairs: Vec<(String, String)> = by_run
        .model_versions
        .iter()
        .map(|v| (v.name.clone(), v.version.clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("m1".to_string(), "2".to_string()),
            ("m2".to_string(), "1".to_string())
        ]
    );
    let numbered = env
        .search_versions(
            "name = 'm1' AND version_number > 1",
            &["version_number DESC"],
            None,
            "",
        )
        .await
        .unwrap();
    assert_eq!(versions(&numbered.model_versions), ["3", "2"]);
    let tagged = env
        .search_versions("tags.validated = 'yes'", &[], None, "")
        .await
        .unwrap();
    assert_eq!(versions(&tagged.model_versions), ["2"]);
    assert_eq!(tagged.model_versions[0].tags, vec![kv("validated", "yes")]);
    let source = env
        .search_versions(
            &format!("source_path = 'runs:/{run_a}/model'"),
            &[],
            None,
            "",
        )
        .await
        .unwrap();
    assert_eq!(source.model_versions.len(), 2);
    let names_in = env
        .search_versions("name IN ('m2')", &[], None, "")
        .await
        .unwrap();
    assert_eq!(names_in.model_versions.len(), 1);

    // Default order: last updated first; transition m1 v1 to bump it.
    env.transition("m1", "1", "Staging", false).await.unwrap();
    let default = env.search_versions("", &[], None, "").await.unwrap();
    assert_eq!(default.model_versions[0].name, "m1");
    assert_eq!(default.model_versions[0].version, "1");
    assert_eq!(default.model_versions.len(), 4);

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = env
            .search_versions("", &["name ASC", "version_number ASC"], Some(3), &token)
            .await
            .unwrap();
        seen.extend(
            page.model_versions
                .iter()
                .map(|v| format!("{}/{}", v.name, v.version)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["m1/1", "m1/2", "m1/3", "m2/1"]);

    for filter in ["version_number > 'x'", "metrics.x > 1", "status = 'READY'"] {
        assert_code(
            env.search_versions(filter, &[], None, "").await,
            ErrorCode::InvalidParameterValue,
        );
    }
    assert_code(
        env.search_versions("", &[], Some(200_001), "").await,
        ErrorCode::InvalidParameterValue,
    );
}

async fn namespaces_are_isolated(backend: Backend) {
    let env = env(backend).await;
    let team_a = ns("team-a");
    let team_b = ns("team-b");
    let (run_a, _) = env.run_in(&team_a, "exp").await;
    let (run_b, _) = env.run_in(&team_b, "exp").await;
    env.model_in(&team_a, "user-churn-model").await;
    env.model_in(&team_b, "user-churn-model").await;
    let va = env
        .create_version(
            &team_a,
            "user-churn-model",
            &format!("runs:/{run_a}/model"),
            "",
            "",
        )
        .await
        .unwrap();
    let vb = env
        .create_version(
            &team_b,
            "user-churn-model",
            &format!("runs:/{run_b}/model"),
            "",
            "",
        )
        .await
        .unwrap();
    assert_eq!((va.version.as_str(), vb.version.as_str()), ("1", "1"));
    // b cannot register a's run.
    assert_code(
        env.create_version(
            &team_b,
            "user-churn-model",
            &format!("runs:/{run_a}/model"),
            "",
            "",
        )
        .await,
        ErrorCode::InvalidParameterValue,
    );
    let get = |ctx: RequestContext| {
        let registry = env.registry.clone();
        async move {
            registry
                .get_model_version(
                    &ctx,
                    pb::GetModelVersionRequest {
                        name: "user-churn-model".into(),
                        version: "1".into(),
                    },
                )
                .await
                .unwrap()
                .model_version
                .unwrap()
        }
    };
    assert_eq!(get(team_a.clone()).await.run_id, run_a);
    assert_eq!(get(team_b.clone()).await.run_id, run_b);
    // The default namespace sees neither.
    let search = env.search_models("", &[], None, "").await.unwrap();
    assert!(search.registered_models.is_empty());
    assert!(
        env.search_versions("", &[], None, "")
            .await
            .unwrap()
            .model_versions
            .is_empty()
    );
    assert_code(
        env.get_model("user-churn-model").await,
        ErrorCode::ResourceDoesNotExist,
    );
    // Deleting in a leaves b intact.
    env.registry
        .delete_registered_model(
            &team_a,
            pb::DeleteRegisteredModelRequest {
                name: "user-churn-model".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(get(team_b).await.version, "1");
}

async fn concurrent_versions_are_gapless(backend: Backend) {
    let env = env(backend).await;
    let (run_id, _) = env.run("exp").await;
    env.model("hot").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let registry = env.registry.clone();
        let ctx = env.ctx.clone();
        let source = format!("runs:/{run_id}/model");
        tasks.spawn(async move {
            registry
                .create_model_version(
                    &ctx,
                    pb::CreateModelVersionRequest {
                        name: "hot".into(),
                        source,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .model_version
                .unwrap()
                .version
                .parse::<i64>()
                .unwrap()
        });
    }
    let mut numbers = Vec::new();
    while let Some(result) = tasks.join_next().await {
        numbers.push(result.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=24).collect::<Vec<i64>>());
}

/// Everything a reader can see of the namespace's registry.
async fn registry_view(env: &Env) -> (Vec<pb::RegisteredModel>, Vec<pb::ModelVersion>) {
    let models = env
        .search_models("", &[], Some(1000), "")
        .await
        .unwrap()
        .registered_models;
    let mut versions = env
        .search_versions("", &["name ASC", "version_number ASC"], Some(1000), "")
        .await
        .unwrap()
        .model_versions;
    for model in &models {
        assert_eq!(&env.get_model(&model.name).await.unwrap(), model);
    }
    for version in &versions {
        assert_eq!(
            &env.get_version(&version.name, &version.version)
                .await
                .unwrap(),
            version
        );
    }
    versions.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    (models, versions)
}

/// Models and versions are read from their cards (the complete messages the
/// store rewrites with every write): after a long history of writes the cards
/// say exactly what the tables say (assembled from them once the cards are
/// cleared), and `write_missing_cards` (run by `quiver migrate`) restores them.
async fn cards_match_the_tables(backend: Backend) {
    let env = env(backend).await;
    let (run_id, _) = env.run("exp").await;
    env.model("m").await;
    env.model("other").await;
    for _ in 0..4 {
        env.version_from_run("m", &run_id).await;
    }
    env.version_from_run("other", &run_id).await;
    let registry = &env.registry;
    let ctx = &env.ctx;
    registry
        .set_registered_model_tag(
            ctx,
            pb::SetRegisteredModelTagRequest {
                name: "m".into(),
                key: "team".into(),
                value: "fraud".into(),
            },
        )
        .await
        .unwrap();
    for (version, key) in [("1", "a"), ("2", "b"), ("2", "c")] {
        registry
            .set_model_version_tag(
                ctx,
                pb::SetModelVersionTagRequest {
                    name: "m".into(),
                    version: version.into(),
                    key: key.into(),
                    value: format!("v{version}"),
                },
            )
            .await
            .unwrap();
    }
    registry
        .delete_model_version_tag(
            ctx,
            pb::DeleteModelVersionTagRequest {
                name: "m".into(),
                version: "2".into(),
                key: "b".into(),
            },
        )
        .await
        .unwrap();
    env.transition("m", "2", "Production", false).await.unwrap();
    env.transition("m", "3", "Staging", false).await.unwrap();
    env.set_alias("m", "champion", "2").await.unwrap();
    env.set_alias("m", "challenger", "1").await.unwrap();
    env.set_alias("m", "champion", "3").await.unwrap(); // moves from 2
    // 3 goes to Production, archiving 2.
    env.transition("m", "3", "Production", true).await.unwrap();
    registry
        .update_model_version(
            ctx,
            pb::UpdateModelVersionRequest {
                name: "m".into(),
                version: "4".into(),
                description: Some("candidate".into()),
            },
        )
        .await
        .unwrap();
    registry
        .delete_registered_model_alias(
            ctx,
            pb::DeleteRegisteredModelAliasRequest {
                name: "m".into(),
                alias: "challenger".into(),
            },
        )
        .await
        .unwrap();
    registry
        .delete_model_version(
            ctx,
            pb::DeleteModelVersionRequest {
                name: "m".into(),
                version: "1".into(),
            },
        )
        .await
        .unwrap();
    registry
        .rename_registered_model(
            ctx,
            pb::RenameRegisteredModelRequest {
                name: "m".into(),
                new_name: "fraud-model".into(),
            },
        )
        .await
        .unwrap();
    registry
        .update_registered_model(
            ctx,
            pb::UpdateRegisteredModelRequest {
                name: "fraud-model".into(),
                description: Some("scores transactions".into()),
                deployment_job_id: None,
            },
        )
        .await
        .unwrap();

    let from_cards = registry_view(&env).await;
    let (models, versions) = &from_cards;
    assert_eq!(names(models), vec!["fraud-model", "other"]);
    let model = &models[0];
    assert_eq!(model.description, "scores transactions");
    assert_eq!(model.tags, vec![kv("team", "fraud")]);
    let aliases: Vec<(&str, &str)> = model
        .aliases
        .iter()
        .map(|a| (a.alias.as_str(), a.version.as_str()))
        .collect();
    assert_eq!(aliases, vec![("champion", "3")]);
    let latest: Vec<(&str, &str, &str)> = model
        .latest_versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                v.current_stage.as_str(),
                v.name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        latest,
        vec![
            ("2", "Archived", "fraud-model"),
            ("3", "Production", "fraud-model"),
            ("4", "None", "fraud-model"),
        ]
    );
    assert_eq!(model.latest_versions[0].tags, vec![kv("c", "v2")]);
    let summary: Vec<(&str, &str, &str, Vec<String>)> = versions
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.version.as_str(),
                v.current_stage.as_str(),
                v.aliases.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("fraud-model", "2", "Archived", vec![]),
            (
                "fraud-model",
                "3",
                "Production",
                vec!["champion".to_string()]
            ),
            ("fraud-model", "4", "None", vec![]),
            ("other", "1", "None", vec![]),
        ]
    );
    assert_eq!(versions[0].tags, vec![kv("c", "v2")]);
    assert_eq!(versions[2].description, "candidate");

    // Without cards, the same answers come from the tables.
    let db = &env._guard.database;
    for statement in [
        "UPDATE registered_models SET card = NULL",
        "UPDATE model_versions SET card = NULL",
    ] {
        sqlx::query(statement).execute(&db.writer).await.unwrap();
    }
    assert_eq!(registry_view(&env).await, from_cards);
    // And writing the missing cards restores them.
    let store = quiver_registry::store::sql::SqlRegistryStore::new(db.clone());
    assert_eq!(store.write_missing_cards().await.unwrap(), 2);
    assert_eq!(store.write_missing_cards().await.unwrap(), 0);
    assert_eq!(registry_view(&env).await, from_cards);
}

/// A rename rewrites every version's card, many per statement: after
/// renaming a model of 450 versions (more than two batches), every card
/// carries the new name and its own tags, and the cards match the tables.
async fn renaming_a_large_model_rewrites_every_card(backend: Backend) {
    let env = env(backend).await;
    let (run_id, _) = env.run("exp").await;
    env.model("big").await;
    for _ in 0..450 {
        env.version_from_run("big", &run_id).await;
    }
    let registry = &env.registry;
    for version in ["1", "201", "450"] {
        registry
            .set_model_version_tag(
                &env.ctx,
                pb::SetModelVersionTagRequest {
                    name: "big".into(),
                    version: version.into(),
                    key: "k".into(),
                    value: format!("v{version}"),
                },
            )
            .await
            .unwrap();
    }
    registry
        .rename_registered_model(
            &env.ctx,
            pb::RenameRegisteredModelRequest {
                name: "big".into(),
                new_name: "big-renamed".into(),
            },
        )
        .await
        .unwrap();
    let from_cards = registry_view(&env).await;
    let (models, versions) = &from_cards;
    assert_eq!(names(models), vec!["big-renamed"]);
    assert_eq!(versions.len(), 450);
    assert!(versions.iter().all(|v| v.name == "big-renamed"));
    let tagged: Vec<(&str, &str)> = versions
        .iter()
        .filter(|v| !v.tags.is_empty())
        .map(|v| (v.version.as_str(), v.tags[0].value.as_str()))
        .collect();
    assert_eq!(tagged, vec![("1", "v1"), ("201", "v201"), ("450", "v450")]);
    // Without cards, the tables give the same answers.
    let db = &env._guard.database;
    sqlx::query("UPDATE model_versions SET card = NULL")
        .execute(&db.writer)
        .await
        .unwrap();
    assert_eq!(registry_view(&env).await, from_cards);
}

macro_rules! registry_suite {
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

registry_suite!(
    registered_model_lifecycle,
    versions_and_sources,
    stages_and_latest_versions,
    aliases,
    search_registered_models,
    search_model_versions,
    namespaces_are_isolated,
    concurrent_versions_are_gapless,
    cards_match_the_tables,
    renaming_a_large_model_rewrites_every_card,
);
