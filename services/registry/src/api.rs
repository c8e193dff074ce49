//! The registry API trait: one method per RPC, prost messages in and out.

use async_trait::async_trait;
use quiver_common::{ApiError, RequestContext};
use quiver_proto::registry::v1 as pb;

/// The registry service's API. Implemented in-process by
/// [`crate::RegistryService`] and remotely by [`crate::grpc::RegistryGrpcClient`];
/// callers hold an `Arc<dyn RegistryApi>` and cannot tell which.
#[async_trait]
pub trait RegistryApi: Send + Sync + 'static {
    /// Creates a registered model; a taken name is RESOURCE_ALREADY_EXISTS.
    async fn create_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::CreateRegisteredModelRequest,
    ) -> Result<pb::CreateRegisteredModelResponse, ApiError>;
    /// Gets a registered model with tags, aliases and latest versions.
    async fn get_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::GetRegisteredModelRequest,
    ) -> Result<pb::GetRegisteredModelResponse, ApiError>;
    /// Renames a registered model; its versions follow.
    async fn rename_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::RenameRegisteredModelRequest,
    ) -> Result<pb::RenameRegisteredModelResponse, ApiError>;
    /// Changes a registered model's description.
    async fn update_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::UpdateRegisteredModelRequest,
    ) -> Result<pb::UpdateRegisteredModelResponse, ApiError>;
    /// Deletes a registered model with its versions, tags and aliases.
    async fn delete_registered_model(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteRegisteredModelRequest,
    ) -> Result<pb::DeleteRegisteredModelResponse, ApiError>;
    /// Searches registered models with a filter, order and page token.
    async fn search_registered_models(
        &self,
        ctx: &RequestContext,
        request: pb::SearchRegisteredModelsRequest,
    ) -> Result<pb::SearchRegisteredModelsResponse, ApiError>;
    /// The highest version per requested stage.
    async fn get_latest_versions(
        &self,
        ctx: &RequestContext,
        request: pb::GetLatestVersionsRequest,
    ) -> Result<pb::GetLatestVersionsResponse, ApiError>;
    /// Sets a registered model tag.
    async fn set_registered_model_tag(
        &self,
        ctx: &RequestContext,
        request: pb::SetRegisteredModelTagRequest,
    ) -> Result<pb::SetRegisteredModelTagResponse, ApiError>;
    /// Deletes a registered model tag.
    async fn delete_registered_model_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteRegisteredModelTagRequest,
    ) -> Result<pb::DeleteRegisteredModelTagResponse, ApiError>;
    /// Points an alias at a version.
    async fn set_registered_model_alias(
        &self,
        ctx: &RequestContext,
        request: pb::SetRegisteredModelAliasRequest,
    ) -> Result<pb::SetRegisteredModelAliasResponse, ApiError>;
    /// Removes an alias.
    async fn delete_registered_model_alias(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteRegisteredModelAliasRequest,
    ) -> Result<pb::DeleteRegisteredModelAliasResponse, ApiError>;
    /// The version an alias points at.
    async fn get_model_version_by_alias(
        &self,
        ctx: &RequestContext,
        request: pb::GetModelVersionByAliasRequest,
    ) -> Result<pb::GetModelVersionByAliasResponse, ApiError>;
    /// Registers a new version from a checked source.
    async fn create_model_version(
        &self,
        ctx: &RequestContext,
        request: pb::CreateModelVersionRequest,
    ) -> Result<pb::CreateModelVersionResponse, ApiError>;
    /// Gets one version.
    async fn get_model_version(
        &self,
        ctx: &RequestContext,
        request: pb::GetModelVersionRequest,
    ) -> Result<pb::GetModelVersionResponse, ApiError>;
    /// Changes a version's description.
    async fn update_model_version(
        &self,
        ctx: &RequestContext,
        request: pb::UpdateModelVersionRequest,
    ) -> Result<pb::UpdateModelVersionResponse, ApiError>;
    /// Deletes a version with its tags and aliases.
    async fn delete_model_version(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteModelVersionRequest,
    ) -> Result<pb::DeleteModelVersionResponse, ApiError>;
    /// Moves a version to a stage, optionally archiving the others there.
    async fn transition_model_version_stage(
        &self,
        ctx: &RequestContext,
        request: pb::TransitionModelVersionStageRequest,
    ) -> Result<pb::TransitionModelVersionStageResponse, ApiError>;
    /// Searches model versions with a filter, order and page token.
    async fn search_model_versions(
        &self,
        ctx: &RequestContext,
        request: pb::SearchModelVersionsRequest,
    ) -> Result<pb::SearchModelVersionsResponse, ApiError>;
    /// The URI a client downloads a version's files from.
    async fn get_model_version_download_uri(
        &self,
        ctx: &RequestContext,
        request: pb::GetModelVersionDownloadUriRequest,
    ) -> Result<pb::GetModelVersionDownloadUriResponse, ApiError>;
    /// Sets a model version tag.
    async fn set_model_version_tag(
        &self,
        ctx: &RequestContext,
        request: pb::SetModelVersionTagRequest,
    ) -> Result<pb::SetModelVersionTagResponse, ApiError>;
    /// Deletes a model version tag.
    async fn delete_model_version_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteModelVersionTagRequest,
    ) -> Result<pb::DeleteModelVersionTagResponse, ApiError>;
}
