//! [`RegistryService`]: validation, source resolution through the tracking
//! API, search parsing and paging over a [`RegistryStore`].

use std::sync::Arc;

use async_trait::async_trait;
use quiver_common::{ApiError, KnownNamespaces, RequestContext};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::registry::v1 as pb;
use quiver_search::Target;
use quiver_tracking::TrackingApi;
use quiver_tracking::page_token::{OffsetToken, decode_offset, encode};
use quiver_tracking::validation::{missing, validate_key};

use crate::api::RegistryApi;
use crate::source;
use crate::store::{NewModelVersion, NewRegisteredModel, RegistryQuery, RegistryStore};
use crate::validation;

/// The registry service over a store, resolving sources through tracking.
#[derive(Clone)]
pub struct RegistryService {
    store: Arc<dyn RegistryStore>,
    tracking: Arc<dyn TrackingApi>,
    /// Namespaces tracking confirmed.
    known_namespaces: Arc<KnownNamespaces>,
}

impl RegistryService {
    /// Creates the service.
    pub fn new(store: Arc<dyn RegistryStore>, tracking: Arc<dyn TrackingApi>) -> RegistryService {
        RegistryService {
            store,
            tracking,
            known_namespaces: Arc::default(),
        }
    }

    /// Checks the caller's namespace with tracking, which owns namespaces,
    /// once per namespace and process: with `namespaces.auto_create` off an
    /// unknown namespace is NOT_FOUND here too, so no registered model can
    /// be created in a namespace the operator did not create.
    async fn namespace(&self, ctx: &RequestContext) -> Result<(), ApiError> {
        if self.known_namespaces.contains(&ctx.namespace) {
            return Ok(());
        }
        let checked = self
            .tracking
            .check_namespace(ctx, quiver_proto::tracking::v1::CheckNamespaceRequest {})
            .await;
        match checked {
            Ok(_) => {
                self.known_namespaces.insert(&ctx.namespace);
                Ok(())
            }
            // A tracking service older than this registry (mid-rollout)
            // cannot tell: act as before the check existed, and ask again
            // next time.
            Err(error) if error.code == quiver_common::ErrorCode::NotImplemented => {
                tracing::debug!(%error, "tracking has no CheckNamespace yet");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

fn now() -> i64 {
    quiver_common::time::now_millis()
}

fn required<'a>(value: &'a str, field: &str) -> Result<&'a str, ApiError> {
    if value.is_empty() {
        Err(missing(field))
    } else {
        Ok(value)
    }
}

fn tags(tags: &[KeyValue]) -> Result<(), ApiError> {
    tags.iter().try_for_each(validation::tag)
}

/// Parses filter, order, page size and token of a registry search.
fn query(
    target: Target,
    filter: &str,
    order_by: &[String],
    max_results: i64,
    page_token: &str,
) -> Result<RegistryQuery, ApiError> {
    let filter = quiver_search::parse_filter(filter, target)
        .map_err(|error| ApiError::invalid(error.message()))?;
    let order_by = order_by
        .iter()
        .filter(|clause| !clause.trim().is_empty())
        .map(|clause| {
            quiver_search::parse_order_by(clause, target)
                .map_err(|error| ApiError::invalid(error.message()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RegistryQuery {
        filter,
        order_by,
        offset: decode_offset(page_token)?,
        limit: max_results,
    })
}

fn next_token(query: &RegistryQuery, returned: usize, more: bool) -> String {
    if more {
        encode(&OffsetToken {
            offset: query.offset + returned as i64,
        })
    } else {
        String::new()
    }
}

#[async_trait]
impl RegistryApi for RegistryService {
    async fn create_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::CreateRegisteredModelRequest,
    ) -> Result<pb::CreateRegisteredModelResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        tags(&request.tags)?;
        let model = self
            .store
            .create_registered_model(
                &ctx.namespace,
                NewRegisteredModel {
                    name: request.name,
                    description: request.description,
                    deployment_job_id: request.deployment_job_id,
                    tags: request.tags,
                    now: now(),
                },
            )
            .await?;
        Ok(pb::CreateRegisteredModelResponse {
            registered_model: Some(model),
        })
    }

    async fn get_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::GetRegisteredModelRequest,
    ) -> Result<pb::GetRegisteredModelResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let model = self
            .store
            .get_registered_model(&ctx.namespace, &request.name)
            .await?;
        Ok(pb::GetRegisteredModelResponse {
            registered_model: Some(model),
        })
    }

    async fn rename_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::RenameRegisteredModelRequest,
    ) -> Result<pb::RenameRegisteredModelResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        validation::model_name(&request.new_name, "new_name")?;
        let model = self
            .store
            .rename_registered_model(&ctx.namespace, &request.name, &request.new_name, now())
            .await?;
        Ok(pb::RenameRegisteredModelResponse {
            registered_model: Some(model),
        })
    }

    async fn update_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::UpdateRegisteredModelRequest,
    ) -> Result<pb::UpdateRegisteredModelResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let model = self
            .store
            .update_registered_model(
                &ctx.namespace,
                &request.name,
                request.description,
                request.deployment_job_id,
                now(),
            )
            .await?;
        Ok(pb::UpdateRegisteredModelResponse {
            registered_model: Some(model),
        })
    }

    async fn delete_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteRegisteredModelRequest,
    ) -> Result<pb::DeleteRegisteredModelResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        self.store
            .delete_registered_model(&ctx.namespace, &request.name)
            .await?;
        Ok(pb::DeleteRegisteredModelResponse {})
    }

    async fn search_registered_models(
        &self,
        ctx: &RequestContext,
        request: pb::SearchRegisteredModelsRequest,
    ) -> Result<pb::SearchRegisteredModelsResponse, ApiError> {
        self.namespace(ctx).await?;
        let limit = validation::max_results(
            request.max_results,
            validation::DEFAULT_MODELS_PAGE,
            validation::MAX_MODELS_PAGE,
        )?;
        let query = query(
            Target::RegisteredModels,
            &request.filter,
            &request.order_by,
            limit,
            &request.page_token,
        )?;
        let (models, more) = self
            .store
            .search_registered_models(&ctx.namespace, &query)
            .await?;
        Ok(pb::SearchRegisteredModelsResponse {
            next_page_token: next_token(&query, models.len(), more),
            registered_models: models,
        })
    }

    async fn get_latest_versions(
        &self,
        ctx: &RequestContext,
        request: pb::GetLatestVersionsRequest,
    ) -> Result<pb::GetLatestVersionsResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let stages = request
            .stages
            .iter()
            .map(|stage| validation::stage(stage))
            .collect::<Result<Vec<_>, _>>()?;
        let versions = self
            .store
            .get_latest_versions(&ctx.namespace, &request.name, &stages)
            .await?;
        Ok(pb::GetLatestVersionsResponse {
            model_versions: versions,
        })
    }

    async fn set_registered_model_tag(
        &self,
        ctx: &RequestContext,
        request: pb::SetRegisteredModelTagRequest,
    ) -> Result<pb::SetRegisteredModelTagResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let tag = KeyValue {
            key: request.key,
            value: request.value,
        };
        validation::tag(&tag)?;
        self.store
            .set_registered_model_tag(&ctx.namespace, &request.name, tag)
            .await?;
        Ok(pb::SetRegisteredModelTagResponse {})
    }

    async fn delete_registered_model_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteRegisteredModelTagRequest,
    ) -> Result<pb::DeleteRegisteredModelTagResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        validate_key(&request.key, "tag")?;
        self.store
            .delete_registered_model_tag(&ctx.namespace, &request.name, &request.key)
            .await?;
        Ok(pb::DeleteRegisteredModelTagResponse {})
    }

    async fn set_registered_model_alias(
        &self,
        ctx: &RequestContext,
        request: pb::SetRegisteredModelAliasRequest,
    ) -> Result<pb::SetRegisteredModelAliasResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        validation::alias(&request.alias)?;
        let version = validation::version(&request.version)?;
        self.store
            .set_alias(&ctx.namespace, &request.name, &request.alias, version)
            .await?;
        Ok(pb::SetRegisteredModelAliasResponse {})
    }

    async fn delete_registered_model_alias(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteRegisteredModelAliasRequest,
    ) -> Result<pb::DeleteRegisteredModelAliasResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        required(&request.alias, "alias")?;
        self.store
            .delete_alias(&ctx.namespace, &request.name, &request.alias)
            .await?;
        Ok(pb::DeleteRegisteredModelAliasResponse {})
    }

    async fn get_model_version_by_alias(
        &self,
        ctx: &RequestContext,
        request: pb::GetModelVersionByAliasRequest,
    ) -> Result<pb::GetModelVersionByAliasResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        required(&request.alias, "alias")?;
        let stored = self
            .store
            .get_version_by_alias(&ctx.namespace, &request.name, &request.alias)
            .await?;
        Ok(pb::GetModelVersionByAliasResponse {
            model_version: Some(stored),
        })
    }

    async fn create_model_version(
        &self,
        ctx: &RequestContext,
        request: pb::CreateModelVersionRequest,
    ) -> Result<pb::CreateModelVersionResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        required(&request.source, "source")?;
        tags(&request.tags)?;
        // The source is checked before the model is looked up, as MLflow does.
        let resolved = source::resolve(
            self.tracking.as_ref(),
            ctx,
            &request.source,
            &request.run_id,
            &request.model_id,
        )
        .await?;
        let version = self
            .store
            .create_model_version(
                &ctx.namespace,
                &request.name,
                NewModelVersion {
                    source: request.source,
                    storage_location: resolved.storage_location,
                    run_id: resolved.run_id,
                    run_link: request.run_link,
                    description: request.description,
                    model_id: resolved.model_id,
                    tags: request.tags,
                    now: now(),
                },
            )
            .await?;
        Ok(pb::CreateModelVersionResponse {
            model_version: Some(version),
        })
    }

    async fn get_model_version(
        &self,
        ctx: &RequestContext,
        request: pb::GetModelVersionRequest,
    ) -> Result<pb::GetModelVersionResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let version = validation::version(&request.version)?;
        let stored = self
            .store
            .get_model_version(&ctx.namespace, &request.name, version)
            .await?;
        Ok(pb::GetModelVersionResponse {
            model_version: Some(stored),
        })
    }

    async fn update_model_version(
        &self,
        ctx: &RequestContext,
        request: pb::UpdateModelVersionRequest,
    ) -> Result<pb::UpdateModelVersionResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let version = validation::version(&request.version)?;
        let updated = self
            .store
            .update_model_version(
                &ctx.namespace,
                &request.name,
                version,
                request.description,
                now(),
            )
            .await?;
        Ok(pb::UpdateModelVersionResponse {
            model_version: Some(updated),
        })
    }

    async fn delete_model_version(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteModelVersionRequest,
    ) -> Result<pb::DeleteModelVersionResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let version = validation::version(&request.version)?;
        self.store
            .delete_model_version(&ctx.namespace, &request.name, version, now())
            .await?;
        Ok(pb::DeleteModelVersionResponse {})
    }

    async fn transition_model_version_stage(
        &self,
        ctx: &RequestContext,
        request: pb::TransitionModelVersionStageRequest,
    ) -> Result<pb::TransitionModelVersionStageResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let version = validation::version(&request.version)?;
        let stage = validation::stage(required(&request.stage, "stage")?)?;
        if request.archive_existing_versions && !stage.is_active() {
            return Err(ApiError::invalid(format!(
                "Model version transition cannot archive existing model versions because '{}' is not an Active stage. Valid stages are Staging, Production",
                stage.as_str()
            )));
        }
        let updated = self
            .store
            .transition_stage(
                &ctx.namespace,
                &request.name,
                version,
                stage,
                request.archive_existing_versions,
                now(),
            )
            .await?;
        Ok(pb::TransitionModelVersionStageResponse {
            model_version: Some(updated),
        })
    }

    async fn search_model_versions(
        &self,
        ctx: &RequestContext,
        request: pb::SearchModelVersionsRequest,
    ) -> Result<pb::SearchModelVersionsResponse, ApiError> {
        self.namespace(ctx).await?;
        let limit = validation::max_results(
            request.max_results,
            validation::DEFAULT_VERSIONS_PAGE,
            validation::MAX_VERSIONS_PAGE,
        )?;
        let query = query(
            Target::ModelVersions,
            &request.filter,
            &request.order_by,
            limit,
            &request.page_token,
        )?;
        let (versions, more) = self
            .store
            .search_model_versions(&ctx.namespace, &query)
            .await?;
        Ok(pb::SearchModelVersionsResponse {
            next_page_token: next_token(&query, versions.len(), more),
            model_versions: versions,
        })
    }

    async fn get_model_version_download_uri(
        &self,
        ctx: &RequestContext,
        request: pb::GetModelVersionDownloadUriRequest,
    ) -> Result<pb::GetModelVersionDownloadUriResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let version = validation::version(&request.version)?;
        let stored = self
            .store
            .get_model_version(&ctx.namespace, &request.name, version)
            .await?;
        Ok(pb::GetModelVersionDownloadUriResponse {
            artifact_uri: source::download_uri(&stored.source, &stored.storage_location),
        })
    }

    async fn set_model_version_tag(
        &self,
        ctx: &RequestContext,
        request: pb::SetModelVersionTagRequest,
    ) -> Result<pb::SetModelVersionTagResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let version = validation::version(&request.version)?;
        let tag = KeyValue {
            key: request.key,
            value: request.value,
        };
        validation::tag(&tag)?;
        self.store
            .set_model_version_tag(&ctx.namespace, &request.name, version, tag)
            .await?;
        Ok(pb::SetModelVersionTagResponse {})
    }

    async fn delete_model_version_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteModelVersionTagRequest,
    ) -> Result<pb::DeleteModelVersionTagResponse, ApiError> {
        self.namespace(ctx).await?;
        validation::model_name(&request.name, "name")?;
        let version = validation::version(&request.version)?;
        validate_key(&request.key, "tag")?;
        self.store
            .delete_model_version_tag(&ctx.namespace, &request.name, version, &request.key)
            .await?;
        Ok(pb::DeleteModelVersionTagResponse {})
    }
}
