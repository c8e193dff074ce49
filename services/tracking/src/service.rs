//! [`TrackingService`]: the tracking API in-process, over a [`TrackingStore`].
//! It validates requests with MLflow's rules and turns them into store calls.

use std::collections::btree_map::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use quiver_common::time::now_millis;
use quiver_common::{ApiError, KnownNamespaces, Namespace, RequestContext};
use quiver_proto::common::v1::{KeyValue, ViewType};
use quiver_proto::tracking::v1 as pb;
use quiver_search::Target;
use tracing::instrument;

use crate::api::TrackingApi;
use crate::artifact_location::{ArtifactLocationPolicy, InvalidAllowedLocation};
use crate::page_token;
use crate::store::{
    Batch, ExperimentQuery, HistoryCursor, Lifecycle, MetricPoint, NewExperiment, NewRun, RunQuery,
    RunUpdate, TrackingStore,
};
use crate::validation::{self as v, missing};

#[path = "logged_models.rs"]
mod logged_models;

/// Most run ids in one bulk-interval request.
const MAX_BULK_RUNS: usize = 100;
/// Largest bulk-interval `max_results`.
const MAX_BULK_RESULTS: i32 = 2500;
/// Page size used internally when a history request asks for everything.
const HISTORY_CHUNK: i64 = 10_000;

/// The tracking service over a store.
pub struct TrackingService {
    store: Arc<dyn TrackingStore>,
    known_namespaces: KnownNamespaces,
    auto_create_namespaces: bool,
    artifact_locations: ArtifactLocationPolicy,
}

impl TrackingService {
    /// Creates the service; namespaces are created on first use.
    pub fn new(store: Arc<dyn TrackingStore>) -> TrackingService {
        TrackingService {
            store,
            known_namespaces: KnownNamespaces::default(),
            auto_create_namespaces: true,
            artifact_locations: ArtifactLocationPolicy::default(),
        }
    }

    /// Sets whether a namespace is created on first use. When off, only
    /// `default` and namespaces made with `quiver namespace create` exist;
    /// others answer 404.
    pub fn with_auto_create_namespaces(mut self, auto_create: bool) -> TrackingService {
        self.auto_create_namespaces = auto_create;
        self
    }

    /// Sets the URI prefixes under which a client may choose an experiment's
    /// artifact location (`artifacts.allowed_locations`). By default none: a
    /// client-given location is refused and experiments get the server's
    /// `mlflow-artifacts:/<id>`.
    pub fn with_allowed_artifact_locations(
        mut self,
        prefixes: &[String],
    ) -> Result<TrackingService, InvalidAllowedLocation> {
        self.artifact_locations = ArtifactLocationPolicy::new(prefixes)?;
        Ok(self)
    }

    /// Returns the namespace of the call, creating it (and its default
    /// experiment) on first use.
    async fn namespace<'c>(&self, ctx: &'c RequestContext) -> Result<&'c Namespace, ApiError> {
        let namespace = &ctx.namespace;
        if !self.known_namespaces.contains(namespace) {
            let may_create =
                self.auto_create_namespaces || namespace.as_str() == Namespace::DEFAULT;
            if !may_create && !self.store.namespace_exists(namespace).await? {
                return Err(ApiError::not_found(format!(
                    "Namespace '{namespace}' does not exist."
                )));
            }
            self.store.ensure_namespace(namespace, now_millis()).await?;
            self.known_namespaces.insert(namespace);
        }
        Ok(namespace)
    }

    async fn existing_experiment(
        &self,
        namespace: &Namespace,
        experiment_id: &str,
    ) -> Result<pb::Experiment, ApiError> {
        let id = v::parse_experiment_id(experiment_id)?;
        self.store
            .get_experiment(namespace, id)
            .await?
            .ok_or_else(|| crate::store::sql::experiment_not_found(id))
    }

    async fn existing_run(&self, namespace: &Namespace, run_id: &str) -> Result<pb::Run, ApiError> {
        if run_id.is_empty() {
            return Err(missing("run_id"));
        }
        self.store
            .get_run(namespace, run_id)
            .await?
            .ok_or_else(|| crate::store::sql::run_not_found(run_id))
    }
}

fn require(value: &str, field: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        Err(missing(field))
    } else {
        Ok(())
    }
}

fn view_type(raw: i32) -> ViewType {
    ViewType::try_from(raw).unwrap_or(ViewType::ActiveOnly)
}

fn search_error(error: quiver_search::SearchError) -> ApiError {
    ApiError::invalid(error.0)
}

fn parse_orders(
    order_by: &[String],
    target: Target,
) -> Result<Vec<quiver_search::OrderBy>, ApiError> {
    order_by
        .iter()
        .filter(|clause| !clause.trim().is_empty())
        .map(|clause| quiver_search::parse_order_by(clause, target).map_err(search_error))
        .collect()
}

fn next_token(offset: i64, limit: i64, fetched: usize) -> String {
    if i64::try_from(fetched).unwrap_or(i64::MAX) > limit {
        page_token::encode(&page_token::OffsetToken {
            offset: offset + limit,
        })
    } else {
        String::new()
    }
}

/// Validates and converts one metric (NaN flagged, ±inf clamped as MLflow's SQL store does).
fn metric_point(metric: pb::Metric) -> Result<MetricPoint, ApiError> {
    v::validate_key(&metric.key, "Metric")?;
    if metric.timestamp < 0 {
        return Err(ApiError::invalid(format!(
            "Invalid value {} for parameter 'timestamp' supplied: it must be a non-negative integer",
            metric.timestamp
        )));
    }
    let is_nan = metric.value.is_nan();
    let value = if is_nan {
        0.0
    } else {
        metric.value.clamp(f64::MIN, f64::MAX)
    };
    let non_empty = |text: String| (!text.is_empty()).then_some(text);
    Ok(MetricPoint {
        key: metric.key,
        value,
        is_nan,
        timestamp: metric.timestamp,
        step: metric.step,
        model_id: non_empty(metric.model_id),
        dataset_name: non_empty(metric.dataset_name),
        dataset_digest: non_empty(metric.dataset_digest),
    })
}

fn param(param: KeyValue) -> Result<KeyValue, ApiError> {
    v::validate_key(&param.key, "Param")?;
    Ok(KeyValue {
        value: v::truncate(param.value, v::MAX_PARAM_VAL_LENGTH),
        key: param.key,
    })
}

fn run_tag(tag: KeyValue) -> Result<KeyValue, ApiError> {
    v::validate_key(&tag.key, "Tag")?;
    Ok(KeyValue {
        value: v::truncate(tag.value, v::MAX_TAG_VAL_LENGTH),
        key: tag.key,
    })
}

fn experiment_tag(tag: KeyValue) -> Result<KeyValue, ApiError> {
    v::validate_key(&tag.key, "Tag")?;
    v::validate_length(&tag.value, v::MAX_EXPERIMENT_TAG_VAL_LENGTH, "Tag value")?;
    Ok(tag)
}

fn validate_dataset_input(input: &pb::DatasetInput) -> Result<(), ApiError> {
    let dataset = input.dataset.as_ref().ok_or_else(|| missing("dataset"))?;
    require(&dataset.name, "name")?;
    require(&dataset.digest, "digest")?;
    require(&dataset.source_type, "source_type")?;
    require(&dataset.source, "source")?;
    v::validate_length(&dataset.name, 500, "Dataset name")?;
    v::validate_length(&dataset.digest, 36, "Dataset digest")?;
    v::validate_length(&dataset.source, 65535, "Dataset source")?;
    v::validate_length(&dataset.schema, 1_048_575, "Dataset schema")?;
    v::validate_length(&dataset.profile, 16_777_215, "Dataset profile")?;
    for tag in &input.tags {
        require(&tag.key, "key")?;
        v::validate_length(&tag.key, 255, "Input tag key")?;
        v::validate_length(&tag.value, 500, "Input tag value")?;
    }
    Ok(())
}

/// Picks at most `max` steps spread evenly over `steps`, always keeping the
/// first and the last.
fn sample_steps(steps: &[i64], max: usize) -> Vec<i64> {
    if steps.len() <= max || max < 2 {
        return steps
            .iter()
            .copied()
            .take(max.max(steps.len().min(1)))
            .collect();
    }
    let last = steps.len() - 1;
    let mut picked: Vec<i64> = (0..max).map(|i| steps[i * last / (max - 1)]).collect();
    picked.dedup();
    picked
}

#[async_trait]
impl TrackingApi for TrackingService {
    #[instrument(skip_all, name = "tracking.create_experiment", fields(ns = %ctx.namespace))]
    async fn create_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::CreateExperimentRequest,
    ) -> Result<pb::CreateExperimentResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.name, "name")?;
        v::validate_experiment_name(&request.name)?;
        let tags = request
            .tags
            .into_iter()
            .map(experiment_tag)
            .collect::<Result<Vec<_>, _>>()?;
        let artifact_location = if request.artifact_location.is_empty() {
            None
        } else {
            v::validate_length(&request.artifact_location, 2000, "artifact_location")?;
            if request.artifact_location.contains('\0') {
                return Err(ApiError::invalid(
                    "artifact_location must not contain NUL bytes",
                ));
            }
            Some(self.artifact_locations.check(&request.artifact_location)?)
        };
        let id = self
            .store
            .create_experiment(
                namespace,
                NewExperiment {
                    name: request.name,
                    artifact_location,
                    tags,
                    now: now_millis(),
                },
            )
            .await?;
        Ok(pb::CreateExperimentResponse {
            experiment_id: id.to_string(),
        })
    }

    #[instrument(skip_all, name = "tracking.check_namespace", fields(ns = %ctx.namespace))]
    async fn check_namespace(
        &self,
        ctx: &RequestContext,
        _request: pb::CheckNamespaceRequest,
    ) -> Result<pb::CheckNamespaceResponse, ApiError> {
        self.namespace(ctx).await?;
        Ok(pb::CheckNamespaceResponse {})
    }

    #[instrument(skip_all, name = "tracking.get_experiment", fields(ns = %ctx.namespace))]
    async fn get_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::GetExperimentRequest,
    ) -> Result<pb::GetExperimentResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let experiment = self
            .existing_experiment(namespace, &request.experiment_id)
            .await?;
        Ok(pb::GetExperimentResponse {
            experiment: Some(experiment),
        })
    }

    #[instrument(skip_all, name = "tracking.get_experiment_by_name", fields(ns = %ctx.namespace))]
    async fn get_experiment_by_name(
        &self,
        ctx: &RequestContext,
        request: pb::GetExperimentByNameRequest,
    ) -> Result<pb::GetExperimentByNameResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.experiment_name, "experiment_name")?;
        let experiment = self
            .store
            .get_experiment_by_name(namespace, &request.experiment_name)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Could not find experiment with name '{}'",
                    request.experiment_name
                ))
            })?;
        Ok(pb::GetExperimentByNameResponse {
            experiment: Some(experiment),
        })
    }

    #[instrument(skip_all, name = "tracking.search_experiments", fields(ns = %ctx.namespace))]
    async fn search_experiments(
        &self,
        ctx: &RequestContext,
        request: pb::SearchExperimentsRequest,
    ) -> Result<pb::SearchExperimentsResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        v::validate_max_results(request.max_results)?;
        let query = ExperimentQuery {
            filter: quiver_search::parse_filter(&request.filter, Target::Experiments)
                .map_err(search_error)?,
            order_by: parse_orders(&request.order_by, Target::Experiments)?,
            view: view_type(request.view_type),
            limit: request.max_results,
            offset: page_token::decode_offset(&request.page_token)?,
        };
        let mut experiments = self.store.search_experiments(namespace, &query).await?;
        let next_page_token = next_token(query.offset, query.limit, experiments.len());
        experiments.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok(pb::SearchExperimentsResponse {
            experiments,
            next_page_token,
        })
    }

    #[instrument(skip_all, name = "tracking.update_experiment", fields(ns = %ctx.namespace))]
    async fn update_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::UpdateExperimentRequest,
    ) -> Result<pb::UpdateExperimentResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let id = v::parse_experiment_id(&request.experiment_id)?;
        require(&request.new_name, "new_name")?;
        v::validate_experiment_name(&request.new_name)?;
        self.store
            .rename_experiment(namespace, id, &request.new_name, now_millis())
            .await?;
        Ok(pb::UpdateExperimentResponse {})
    }

    #[instrument(skip_all, name = "tracking.delete_experiment", fields(ns = %ctx.namespace))]
    async fn delete_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteExperimentRequest,
    ) -> Result<pb::DeleteExperimentResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let id = v::parse_experiment_id(&request.experiment_id)?;
        self.store
            .set_experiment_lifecycle(namespace, id, Lifecycle::Deleted, now_millis())
            .await?;
        Ok(pb::DeleteExperimentResponse {})
    }

    #[instrument(skip_all, name = "tracking.restore_experiment", fields(ns = %ctx.namespace))]
    async fn restore_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::RestoreExperimentRequest,
    ) -> Result<pb::RestoreExperimentResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let id = v::parse_experiment_id(&request.experiment_id)?;
        self.store
            .set_experiment_lifecycle(namespace, id, Lifecycle::Active, now_millis())
            .await?;
        Ok(pb::RestoreExperimentResponse {})
    }

    #[instrument(skip_all, name = "tracking.set_experiment_tag", fields(ns = %ctx.namespace))]
    async fn set_experiment_tag(
        &self,
        ctx: &RequestContext,
        request: pb::SetExperimentTagRequest,
    ) -> Result<pb::SetExperimentTagResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let id = v::parse_experiment_id(&request.experiment_id)?;
        let tag = experiment_tag(KeyValue {
            key: request.key,
            value: request.value,
        })?;
        self.store.set_experiment_tag(namespace, id, tag).await?;
        Ok(pb::SetExperimentTagResponse {})
    }

    #[instrument(skip_all, name = "tracking.delete_experiment_tag", fields(ns = %ctx.namespace))]
    async fn delete_experiment_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteExperimentTagRequest,
    ) -> Result<pb::DeleteExperimentTagResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let id = v::parse_experiment_id(&request.experiment_id)?;
        require(&request.key, "key")?;
        self.store
            .delete_experiment_tag(namespace, id, &request.key)
            .await?;
        Ok(pb::DeleteExperimentTagResponse {})
    }

    #[instrument(skip_all, name = "tracking.create_run", fields(ns = %ctx.namespace))]
    async fn create_run(
        &self,
        ctx: &RequestContext,
        request: pb::CreateRunRequest,
    ) -> Result<pb::CreateRunResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let experiment_id = v::parse_experiment_id(&request.experiment_id)?;
        let mut tags = request
            .tags
            .into_iter()
            .map(run_tag)
            .collect::<Result<Vec<_>, _>>()?;
        let tag_name = tags
            .iter()
            .rev()
            .find(|tag| tag.key == v::RUN_NAME_TAG)
            .map(|tag| tag.value.clone());
        let name = match (request.run_name.is_empty(), tag_name) {
            (false, Some(tag)) if tag != request.run_name => {
                return Err(ApiError::invalid(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='{}', mlflow.runName='{tag}').",
                    request.run_name
                )));
            }
            (false, _) => request.run_name,
            (true, Some(tag)) if !tag.is_empty() => tag,
            (true, _) => crate::names::random_run_name(),
        };
        v::validate_length(&name, v::MAX_RUN_NAME_LENGTH, "Run name")?;
        tags.retain(|tag| tag.key != v::RUN_NAME_TAG);
        tags.push(KeyValue {
            key: v::RUN_NAME_TAG.to_string(),
            value: name.clone(),
        });
        let run = self
            .store
            .create_run(
                namespace,
                NewRun {
                    run_id: uuid::Uuid::new_v4().simple().to_string(),
                    experiment_id,
                    name,
                    user_id: request.user_id,
                    start_time: request.start_time,
                    tags,
                },
            )
            .await?;
        Ok(pb::CreateRunResponse { run: Some(run) })
    }

    #[instrument(skip_all, name = "tracking.get_run", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn get_run(
        &self,
        ctx: &RequestContext,
        request: pb::GetRunRequest,
    ) -> Result<pb::GetRunResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let run = self.existing_run(namespace, &request.run_id).await?;
        Ok(pb::GetRunResponse { run: Some(run) })
    }

    #[instrument(skip_all, name = "tracking.update_run", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn update_run(
        &self,
        ctx: &RequestContext,
        request: pb::UpdateRunRequest,
    ) -> Result<pb::UpdateRunResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        let status = pb::RunStatus::try_from(request.status)
            .ok()
            .filter(|status| *status != pb::RunStatus::Unspecified);
        let run_name = request.run_name.filter(|name| !name.is_empty());
        if let Some(name) = &run_name {
            v::validate_length(name, v::MAX_RUN_NAME_LENGTH, "Run name")?;
        }
        let info = self
            .store
            .update_run(
                namespace,
                &request.run_id,
                RunUpdate {
                    status,
                    end_time: request.end_time,
                    run_name,
                },
            )
            .await?;
        Ok(pb::UpdateRunResponse {
            run_info: Some(info),
        })
    }

    #[instrument(skip_all, name = "tracking.delete_run", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn delete_run(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteRunRequest,
    ) -> Result<pb::DeleteRunResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        self.store
            .set_run_lifecycle(namespace, &request.run_id, Lifecycle::Deleted, now_millis())
            .await?;
        Ok(pb::DeleteRunResponse {})
    }

    #[instrument(skip_all, name = "tracking.restore_run", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn restore_run(
        &self,
        ctx: &RequestContext,
        request: pb::RestoreRunRequest,
    ) -> Result<pb::RestoreRunResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        self.store
            .set_run_lifecycle(namespace, &request.run_id, Lifecycle::Active, now_millis())
            .await?;
        Ok(pb::RestoreRunResponse {})
    }

    #[instrument(skip_all, name = "tracking.search_runs", fields(ns = %ctx.namespace))]
    async fn search_runs(
        &self,
        ctx: &RequestContext,
        request: pb::SearchRunsRequest,
    ) -> Result<pb::SearchRunsResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        v::validate_max_results(i64::from(request.max_results))?;
        let experiment_ids = request
            .experiment_ids
            .iter()
            .map(|id| v::parse_experiment_id(id))
            .collect::<Result<Vec<_>, _>>()?;
        let token = page_token::decode_run_search(&request.page_token)?;
        let order_by = parse_orders(&request.order_by, Target::Runs)?;
        // Keyset paging in the default order; offsets otherwise.
        let keyset = order_by.is_empty();
        let query = RunQuery {
            experiment_ids,
            filter: quiver_search::parse_filter(&request.filter, Target::Runs)
                .map_err(search_error)?,
            order_by,
            view: view_type(request.run_view_type),
            limit: i64::from(request.max_results),
            offset: token.offset,
            after: match (keyset, token.start_time, token.run_id) {
                (true, Some(start_time), Some(run_id)) => Some((start_time, run_id)),
                _ => None,
            },
        };
        let mut runs = self.store.search_runs(namespace, &query).await?;
        let more = i64::try_from(runs.len()).unwrap_or(i64::MAX) > query.limit;
        runs.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let next_page_token = match runs.last().and_then(|run| run.info.as_ref()) {
            Some(last) if more => page_token::encode(&page_token::RunSearchToken {
                offset: query.offset + query.limit,
                start_time: keyset.then_some(last.start_time),
                run_id: keyset.then(|| last.run_id.clone()),
            }),
            _ => String::new(),
        };
        Ok(pb::SearchRunsResponse {
            runs,
            next_page_token,
        })
    }

    #[instrument(skip_all, name = "tracking.set_tag", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn set_tag(
        &self,
        ctx: &RequestContext,
        request: pb::SetTagRequest,
    ) -> Result<pb::SetTagResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        let tag = run_tag(KeyValue {
            key: request.key,
            value: request.value,
        })?;
        let batch = Batch {
            tags: vec![tag],
            ..Batch::default()
        };
        self.store
            .log_batch(namespace, &request.run_id, batch)
            .await?;
        Ok(pb::SetTagResponse {})
    }

    #[instrument(skip_all, name = "tracking.delete_tag", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn delete_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteTagRequest,
    ) -> Result<pb::DeleteTagResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        require(&request.key, "key")?;
        self.store
            .delete_tag(namespace, &request.run_id, &request.key)
            .await?;
        Ok(pb::DeleteTagResponse {})
    }

    #[instrument(skip_all, name = "tracking.log_param", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn log_param(
        &self,
        ctx: &RequestContext,
        request: pb::LogParamRequest,
    ) -> Result<pb::LogParamResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        let batch = Batch {
            params: vec![param(KeyValue {
                key: request.key,
                value: request.value,
            })?],
            single_param: true,
            ..Batch::default()
        };
        self.store
            .log_batch(namespace, &request.run_id, batch)
            .await?;
        Ok(pb::LogParamResponse {})
    }

    #[instrument(skip_all, name = "tracking.log_metric", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn log_metric(
        &self,
        ctx: &RequestContext,
        request: pb::LogMetricRequest,
    ) -> Result<pb::LogMetricResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        let metric = request.metric.ok_or_else(|| missing("key"))?;
        let batch = Batch {
            metrics: vec![metric_point(metric)?],
            ..Batch::default()
        };
        self.store
            .log_batch(namespace, &request.run_id, batch)
            .await?;
        Ok(pb::LogMetricResponse {})
    }

    #[instrument(skip_all, name = "tracking.log_batch", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn log_batch(
        &self,
        ctx: &RequestContext,
        request: pb::LogBatchRequest,
    ) -> Result<pb::LogBatchResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        let (metrics, params, tags) = (
            request.metrics.len(),
            request.params.len(),
            request.tags.len(),
        );
        if metrics > v::MAX_METRICS_PER_BATCH {
            return Err(ApiError::invalid(format!(
                "A batch logging request can contain at most {} metrics. Got {metrics} metrics. Please split up metrics across multiple requests and try again.",
                v::MAX_METRICS_PER_BATCH
            )));
        }
        if params > v::MAX_PARAMS_PER_BATCH {
            return Err(ApiError::invalid(format!(
                "A batch logging request can contain at most {} params. Got {params} params. Please split up params across multiple requests and try again.",
                v::MAX_PARAMS_PER_BATCH
            )));
        }
        if tags > v::MAX_TAGS_PER_BATCH {
            return Err(ApiError::invalid(format!(
                "A batch logging request can contain at most {} tags. Got {tags} tags. Please split up tags across multiple requests and try again.",
                v::MAX_TAGS_PER_BATCH
            )));
        }
        let total = metrics + params + tags;
        if total > v::MAX_ENTITIES_PER_BATCH {
            return Err(ApiError::invalid(format!(
                "A batch logging request can contain at most {} metrics, params, and tags in total. Got {total} total entities. Please split up entities across multiple requests and try again.",
                v::MAX_ENTITIES_PER_BATCH
            )));
        }
        let mut seen = BTreeMap::new();
        let mut duplicates = Vec::new();
        for p in &request.params {
            if seen.insert(p.key.clone(), ()).is_some() && !duplicates.contains(&p.key) {
                duplicates.push(p.key.clone());
            }
        }
        if !duplicates.is_empty() {
            let listed: Vec<String> = duplicates.iter().map(|k| format!("'{k}'")).collect();
            return Err(ApiError::invalid(format!(
                "Duplicate parameter keys have been submitted: [{}]. Please ensure the request contains only one param value per param key.",
                listed.join(", ")
            )));
        }
        let batch = Batch {
            metrics: request
                .metrics
                .into_iter()
                .map(metric_point)
                .collect::<Result<_, _>>()?,
            params: request
                .params
                .into_iter()
                .map(param)
                .collect::<Result<_, _>>()?,
            tags: request
                .tags
                .into_iter()
                .map(run_tag)
                .collect::<Result<_, _>>()?,
            single_param: false,
        };
        self.store
            .log_batch(namespace, &request.run_id, batch)
            .await?;
        Ok(pb::LogBatchResponse {})
    }

    #[instrument(skip_all, name = "tracking.log_inputs", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn log_inputs(
        &self,
        ctx: &RequestContext,
        request: pb::LogInputsRequest,
    ) -> Result<pb::LogInputsResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        if request.datasets.len() > v::MAX_DATASETS_PER_REQUEST {
            return Err(ApiError::invalid(format!(
                "A logging request can contain at most {} datasets. Got {} datasets.",
                v::MAX_DATASETS_PER_REQUEST,
                request.datasets.len()
            )));
        }
        for input in &request.datasets {
            validate_dataset_input(input)?;
        }
        for model in &request.models {
            require(&model.model_id, "model_id")?;
        }
        self.store
            .log_inputs(namespace, &request.run_id, request.datasets, request.models)
            .await?;
        Ok(pb::LogInputsResponse {})
    }

    #[instrument(skip_all, name = "tracking.log_outputs", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn log_outputs(
        &self,
        ctx: &RequestContext,
        request: pb::LogOutputsRequest,
    ) -> Result<pb::LogOutputsResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        for model in &request.models {
            require(&model.model_id, "model_id")?;
        }
        self.store
            .log_outputs(namespace, &request.run_id, request.models)
            .await?;
        Ok(pb::LogOutputsResponse {})
    }

    #[instrument(skip_all, name = "tracking.log_model", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn log_model(
        &self,
        ctx: &RequestContext,
        request: pb::LogModelRequest,
    ) -> Result<pb::LogModelResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        require(&request.model_json, "model_json")?;
        let model: serde_json::Value = serde_json::from_str(&request.model_json).map_err(|_| {
            ApiError::invalid("Malformed model info. \n model_json must be a JSON object.")
        })?;
        let object = model.as_object().ok_or_else(|| {
            ApiError::invalid("Malformed model info. \n model_json must be a JSON object.")
        })?;
        for field in ["artifact_path", "flavors", "utc_time_created", "run_id"] {
            if !object.contains_key(field) {
                return Err(ApiError::invalid(format!(
                    "Model json is missing mandatory fields: ['{field}']"
                )));
            }
        }
        let run = self.existing_run(namespace, &request.run_id).await?;
        let existing = run
            .data
            .unwrap_or_default()
            .tags
            .into_iter()
            .find(|tag| tag.key == v::LOG_MODEL_HISTORY_TAG)
            .and_then(|tag| serde_json::from_str::<Vec<serde_json::Value>>(&tag.value).ok())
            .unwrap_or_default();
        let mut history = existing;
        history.push(model);
        let batch = Batch {
            tags: vec![KeyValue {
                key: v::LOG_MODEL_HISTORY_TAG.to_string(),
                value: serde_json::to_string(&history).map_err(ApiError::internal)?,
            }],
            ..Batch::default()
        };
        self.store
            .log_batch(namespace, &request.run_id, batch)
            .await?;
        Ok(pb::LogModelResponse {})
    }

    #[instrument(skip_all, name = "tracking.get_metric_history", fields(ns = %ctx.namespace, run_id = %request.run_id))]
    async fn get_metric_history(
        &self,
        ctx: &RequestContext,
        request: pb::GetMetricHistoryRequest,
    ) -> Result<pb::GetMetricHistoryResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.run_id, "run_id")?;
        require(&request.metric_key, "metric_key")?;
        if request.max_results < 0 {
            return Err(ApiError::invalid(format!(
                "Invalid value {} for parameter 'max_results' supplied. It must be a positive integer",
                request.max_results
            )));
        }
        let mut cursor: Option<HistoryCursor> = if request.page_token.is_empty() {
            None
        } else {
            let token: HistoryToken = page_token::decode(&request.page_token)?;
            Some(token.into())
        };
        let wanted = if request.max_results == 0 {
            None
        } else {
            Some(i64::from(request.max_results))
        };
        let mut metrics = Vec::new();
        let mut next_page_token = String::new();
        loop {
            let limit = wanted.map_or(HISTORY_CHUNK, |w| w + 1);
            let Some(mut points) = self
                .store
                .metric_history(
                    namespace,
                    &request.run_id,
                    &request.metric_key,
                    cursor.take(),
                    limit,
                )
                .await?
            else {
                return Ok(pb::GetMetricHistoryResponse::default());
            };
            let fetched = points.len();
            if let Some(wanted) = wanted {
                let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
                if fetched > wanted {
                    let last = HistoryCursor::after(&points[wanted - 1]);
                    next_page_token = page_token::encode(&HistoryToken::from(last));
                    points.truncate(wanted);
                }
                metrics = points;
                break;
            }
            cursor = points.last().map(HistoryCursor::after);
            if metrics.is_empty() {
                metrics = points;
            } else {
                metrics.append(&mut points);
            }
            if i64::try_from(fetched).unwrap_or(0) < limit {
                break;
            }
        }
        Ok(pb::GetMetricHistoryResponse {
            metrics,
            next_page_token,
        })
    }

    #[instrument(skip_all, name = "tracking.get_metric_history_bulk_interval", fields(ns = %ctx.namespace))]
    async fn get_metric_history_bulk_interval(
        &self,
        ctx: &RequestContext,
        request: pb::GetMetricHistoryBulkIntervalRequest,
    ) -> Result<pb::GetMetricHistoryBulkIntervalResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.metric_key, "metric_key")?;
        if request.run_ids.is_empty() {
            return Err(ApiError::invalid(
                "GetMetricHistoryBulkInterval request must specify at least one run_id.",
            ));
        }
        if request.run_ids.len() > MAX_BULK_RUNS {
            return Err(ApiError::invalid(format!(
                "GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. Received {} run_ids.",
                request.run_ids.len()
            )));
        }
        let max_results = if request.max_results == 0 {
            MAX_BULK_RESULTS
        } else {
            request.max_results
        };
        if !(1..=MAX_BULK_RESULTS).contains(&max_results) {
            return Err(ApiError::invalid(format!(
                "max_results must be between 1 and {MAX_BULK_RESULTS}."
            )));
        }
        let range = match (request.start_step, request.end_step) {
            (Some(start), Some(end)) if start <= end => Some((start, end)),
            (Some(start), Some(end)) => {
                return Err(ApiError::invalid(format!(
                    "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
                )));
            }
            (None, None) => None,
            _ => {
                return Err(ApiError::invalid(
                    "If either start step or end step are specified, both must be specified.",
                ));
            }
        };
        let mut metrics = Vec::new();
        for run_id in &request.run_ids {
            let steps = self
                .store
                .metric_steps(namespace, run_id, &request.metric_key, range)
                .await?;
            let sampled = sample_steps(&steps, usize::try_from(max_results).unwrap_or(1));
            let points = self
                .store
                .metric_points_at_steps(namespace, run_id, &request.metric_key, &sampled)
                .await?;
            metrics.extend(points);
        }
        Ok(pb::GetMetricHistoryBulkIntervalResponse { metrics })
    }

    #[instrument(skip_all, name = "tracking.search_datasets", fields(ns = %ctx.namespace))]
    async fn search_datasets(
        &self,
        ctx: &RequestContext,
        request: pb::SearchDatasetsRequest,
    ) -> Result<pb::SearchDatasetsResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        if request.experiment_ids.is_empty() || request.experiment_ids.len() > 20 {
            return Err(ApiError::invalid(
                "SearchDatasets request must specify between 1 and 20 experiment_ids.",
            ));
        }
        let ids = request
            .experiment_ids
            .iter()
            .map(|id| v::parse_experiment_id(id))
            .collect::<Result<Vec<_>, _>>()?;
        let dataset_summaries = self.store.search_datasets(namespace, &ids).await?;
        Ok(pb::SearchDatasetsResponse { dataset_summaries })
    }

    #[instrument(skip_all, name = "tracking.create_logged_model", fields(ns = %ctx.namespace))]
    async fn create_logged_model(
        &self,
        ctx: &RequestContext,
        request: pb::CreateLoggedModelRequest,
    ) -> Result<pb::CreateLoggedModelResponse, ApiError> {
        self.lm_create(ctx, request).await
    }

    #[instrument(skip_all, name = "tracking.get_logged_model", fields(ns = %ctx.namespace))]
    async fn get_logged_model(
        &self,
        ctx: &RequestContext,
        request: pb::GetLoggedModelRequest,
    ) -> Result<pb::GetLoggedModelResponse, ApiError> {
        self.lm_get(ctx, request).await
    }

    #[instrument(skip_all, name = "tracking.finalize_logged_model", fields(ns = %ctx.namespace))]
    async fn finalize_logged_model(
        &self,
        ctx: &RequestContext,
        request: pb::FinalizeLoggedModelRequest,
    ) -> Result<pb::FinalizeLoggedModelResponse, ApiError> {
        self.lm_finalize(ctx, request).await
    }

    #[instrument(skip_all, name = "tracking.delete_logged_model", fields(ns = %ctx.namespace))]
    async fn delete_logged_model(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteLoggedModelRequest,
    ) -> Result<pb::DeleteLoggedModelResponse, ApiError> {
        self.lm_delete(ctx, request).await
    }

    #[instrument(skip_all, name = "tracking.set_logged_model_tags", fields(ns = %ctx.namespace))]
    async fn set_logged_model_tags(
        &self,
        ctx: &RequestContext,
        request: pb::SetLoggedModelTagsRequest,
    ) -> Result<pb::SetLoggedModelTagsResponse, ApiError> {
        self.lm_set_tags(ctx, request).await
    }

    #[instrument(skip_all, name = "tracking.delete_logged_model_tag", fields(ns = %ctx.namespace))]
    async fn delete_logged_model_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteLoggedModelTagRequest,
    ) -> Result<pb::DeleteLoggedModelTagResponse, ApiError> {
        self.lm_delete_tag(ctx, request).await
    }

    #[instrument(skip_all, name = "tracking.log_logged_model_params", fields(ns = %ctx.namespace))]
    async fn log_logged_model_params(
        &self,
        ctx: &RequestContext,
        request: pb::LogLoggedModelParamsRequest,
    ) -> Result<pb::LogLoggedModelParamsResponse, ApiError> {
        self.lm_log_params(ctx, request).await
    }

    #[instrument(skip_all, name = "tracking.search_logged_models", fields(ns = %ctx.namespace))]
    async fn search_logged_models(
        &self,
        ctx: &RequestContext,
        request: pb::SearchLoggedModelsRequest,
    ) -> Result<pb::SearchLoggedModelsResponse, ApiError> {
        self.lm_search(ctx, request).await
    }
}

/// The keyset cursor of a metric-history page token.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct HistoryToken {
    step: i64,
    timestamp: i64,
    value: f64,
    is_nan: bool,
}

impl From<HistoryCursor> for HistoryToken {
    fn from(cursor: HistoryCursor) -> HistoryToken {
        HistoryToken {
            step: cursor.step,
            timestamp: cursor.timestamp,
            value: cursor.value,
            is_nan: cursor.is_nan,
        }
    }
}

impl From<HistoryToken> for HistoryCursor {
    fn from(token: HistoryToken) -> HistoryCursor {
        HistoryCursor {
            step: token.step,
            timestamp: token.timestamp,
            value: token.value,
            is_nan: token.is_nan,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_ends_and_bounds() {
        let steps: Vec<i64> = (0..1000).collect();
        let sampled = sample_steps(&steps, 10);
        assert_eq!(sampled.len(), 10);
        assert_eq!(sampled.first(), Some(&0));
        assert_eq!(sampled.last(), Some(&999));
        assert_eq!(sample_steps(&[1, 2, 3], 10), vec![1, 2, 3]);
    }

    #[test]
    fn infinities_are_clamped_and_nan_flagged() {
        let point = |value| {
            metric_point(pb::Metric {
                key: "m".into(),
                value,
                ..Default::default()
            })
            .unwrap()
        };
        assert_eq!(point(f64::INFINITY).value, f64::MAX);
        assert_eq!(point(f64::NEG_INFINITY).value, f64::MIN);
        let nan = point(f64::NAN);
        assert!(nan.is_nan);
        assert_eq!(nan.value, 0.0);
    }
}
