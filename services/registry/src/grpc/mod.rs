//! The gRPC side of the seam: [`RegistryGrpcServer`] serves any [`crate::RegistryApi`],
//! [`RegistryGrpcClient`] is a [`crate::RegistryApi`] over a channel. Messages pass
//! through unchanged; the namespace rides in metadata and errors in
//! `google.rpc.ErrorInfo`, so both directions are lossless.

mod client;
mod server;

pub use client::RegistryGrpcClient;
pub use server::RegistryGrpcServer;

/// Calls `$callback!` with every registry RPC as `(method, Request, Response)`.
macro_rules! for_each_registry_rpc {
    ($callback:ident) => {
        $callback! {
            (create_registered_model, CreateRegisteredModelRequest, CreateRegisteredModelResponse),
            (get_registered_model, GetRegisteredModelRequest, GetRegisteredModelResponse),
            (rename_registered_model, RenameRegisteredModelRequest, RenameRegisteredModelResponse),
            (update_registered_model, UpdateRegisteredModelRequest, UpdateRegisteredModelResponse),
            (delete_registered_model, DeleteRegisteredModelRequest, DeleteRegisteredModelResponse),
            (search_registered_models, SearchRegisteredModelsRequest, SearchRegisteredModelsResponse),
            (get_latest_versions, GetLatestVersionsRequest, GetLatestVersionsResponse),
            (set_registered_model_tag, SetRegisteredModelTagRequest, SetRegisteredModelTagResponse),
            (delete_registered_model_tag, DeleteRegisteredModelTagRequest, DeleteRegisteredModelTagResponse),
            (set_registered_model_alias, SetRegisteredModelAliasRequest, SetRegisteredModelAliasResponse),
            (delete_registered_model_alias, DeleteRegisteredModelAliasRequest, DeleteRegisteredModelAliasResponse),
            (get_model_version_by_alias, GetModelVersionByAliasRequest, GetModelVersionByAliasResponse),
            (create_model_version, CreateModelVersionRequest, CreateModelVersionResponse),
            (get_model_version, GetModelVersionRequest, GetModelVersionResponse),
            (update_model_version, UpdateModelVersionRequest, UpdateModelVersionResponse),
            (delete_model_version, DeleteModelVersionRequest, DeleteModelVersionResponse),
            (transition_model_version_stage, TransitionModelVersionStageRequest, TransitionModelVersionStageResponse),
            (search_model_versions, SearchModelVersionsRequest, SearchModelVersionsResponse),
            (get_model_version_download_uri, GetModelVersionDownloadUriRequest, GetModelVersionDownloadUriResponse),
            (set_model_version_tag, SetModelVersionTagRequest, SetModelVersionTagResponse),
            (delete_model_version_tag, DeleteModelVersionTagRequest, DeleteModelVersionTagResponse),
        }
    };
}
pub(crate) use for_each_registry_rpc;
