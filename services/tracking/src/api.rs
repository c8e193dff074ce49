//! The tracking API trait: one method per RPC, prost messages in and out.

use async_trait::async_trait;
use quiver_common::{ApiError, RequestContext};
use quiver_proto::tracking::v1 as pb;

/// The tracking service's API. Implemented in-process by
/// [`crate::TrackingService`] and remotely by [`crate::grpc::TrackingGrpcClient`];
/// callers hold an `Arc<dyn TrackingApi>` and cannot tell which.
#[async_trait]
pub trait TrackingApi: Send + Sync + 'static {
    /// Creates an experiment and returns its id.
    async fn create_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::CreateExperimentRequest,
    ) -> Result<pb::CreateExperimentResponse, ApiError>;
    /// Succeeds when the caller's namespace exists, creating it on first use
    /// when `namespaces.auto_create` is on; NOT_FOUND otherwise.
    async fn check_namespace(
        &self,
        ctx: &RequestContext,
        request: pb::CheckNamespaceRequest,
    ) -> Result<pb::CheckNamespaceResponse, ApiError>;
    /// Gets an experiment by id (deleted ones too).
    async fn get_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::GetExperimentRequest,
    ) -> Result<pb::GetExperimentResponse, ApiError>;
    /// Gets an experiment by name.
    async fn get_experiment_by_name(
        &self,
        ctx: &RequestContext,
        request: pb::GetExperimentByNameRequest,
    ) -> Result<pb::GetExperimentByNameResponse, ApiError>;
    /// Searches experiments with a filter, order and page token.
    async fn search_experiments(
        &self,
        ctx: &RequestContext,
        request: pb::SearchExperimentsRequest,
    ) -> Result<pb::SearchExperimentsResponse, ApiError>;
    /// Renames an experiment.
    async fn update_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::UpdateExperimentRequest,
    ) -> Result<pb::UpdateExperimentResponse, ApiError>;
    /// Soft-deletes an experiment and its runs.
    async fn delete_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteExperimentRequest,
    ) -> Result<pb::DeleteExperimentResponse, ApiError>;
    /// Restores a deleted experiment and its runs.
    async fn restore_experiment(
        &self,
        ctx: &RequestContext,
        request: pb::RestoreExperimentRequest,
    ) -> Result<pb::RestoreExperimentResponse, ApiError>;
    /// Sets an experiment tag.
    async fn set_experiment_tag(
        &self,
        ctx: &RequestContext,
        request: pb::SetExperimentTagRequest,
    ) -> Result<pb::SetExperimentTagResponse, ApiError>;
    /// Deletes an experiment tag.
    async fn delete_experiment_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteExperimentTagRequest,
    ) -> Result<pb::DeleteExperimentTagResponse, ApiError>;
    /// Creates a run in RUNNING state.
    async fn create_run(
        &self,
        ctx: &RequestContext,
        request: pb::CreateRunRequest,
    ) -> Result<pb::CreateRunResponse, ApiError>;
    /// Gets a run with its latest metrics, params, tags, inputs and outputs.
    async fn get_run(
        &self,
        ctx: &RequestContext,
        request: pb::GetRunRequest,
    ) -> Result<pb::GetRunResponse, ApiError>;
    /// Updates a run's status, end time or name.
    async fn update_run(
        &self,
        ctx: &RequestContext,
        request: pb::UpdateRunRequest,
    ) -> Result<pb::UpdateRunResponse, ApiError>;
    /// Soft-deletes a run.
    async fn delete_run(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteRunRequest,
    ) -> Result<pb::DeleteRunResponse, ApiError>;
    /// Restores a deleted run.
    async fn restore_run(
        &self,
        ctx: &RequestContext,
        request: pb::RestoreRunRequest,
    ) -> Result<pb::RestoreRunResponse, ApiError>;
    /// Searches runs with MLflow's filter language.
    async fn search_runs(
        &self,
        ctx: &RequestContext,
        request: pb::SearchRunsRequest,
    ) -> Result<pb::SearchRunsResponse, ApiError>;
    /// Sets a run tag.
    async fn set_tag(
        &self,
        ctx: &RequestContext,
        request: pb::SetTagRequest,
    ) -> Result<pb::SetTagResponse, ApiError>;
    /// Deletes a run tag.
    async fn delete_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteTagRequest,
    ) -> Result<pb::DeleteTagResponse, ApiError>;
    /// Logs a param (idempotent for the same value).
    async fn log_param(
        &self,
        ctx: &RequestContext,
        request: pb::LogParamRequest,
    ) -> Result<pb::LogParamResponse, ApiError>;
    /// Logs one metric point.
    async fn log_metric(
        &self,
        ctx: &RequestContext,
        request: pb::LogMetricRequest,
    ) -> Result<pb::LogMetricResponse, ApiError>;
    /// Logs metrics, params and tags atomically.
    async fn log_batch(
        &self,
        ctx: &RequestContext,
        request: pb::LogBatchRequest,
    ) -> Result<pb::LogBatchResponse, ApiError>;
    /// Links datasets and models to a run as inputs.
    async fn log_inputs(
        &self,
        ctx: &RequestContext,
        request: pb::LogInputsRequest,
    ) -> Result<pb::LogInputsResponse, ApiError>;
    /// Links models to a run as outputs.
    async fn log_outputs(
        &self,
        ctx: &RequestContext,
        request: pb::LogOutputsRequest,
    ) -> Result<pb::LogOutputsResponse, ApiError>;
    /// Records a legacy (MLflow 2.x) logged model in the run's history tag.
    async fn log_model(
        &self,
        ctx: &RequestContext,
        request: pb::LogModelRequest,
    ) -> Result<pb::LogModelResponse, ApiError>;
    /// Pages through a metric's full history.
    async fn get_metric_history(
        &self,
        ctx: &RequestContext,
        request: pb::GetMetricHistoryRequest,
    ) -> Result<pb::GetMetricHistoryResponse, ApiError>;
    /// Samples a metric's history over steps for several runs.
    async fn get_metric_history_bulk_interval(
        &self,
        ctx: &RequestContext,
        request: pb::GetMetricHistoryBulkIntervalRequest,
    ) -> Result<pb::GetMetricHistoryBulkIntervalResponse, ApiError>;
    /// Lists the distinct datasets used by runs of the given experiments.
    async fn search_datasets(
        &self,
        ctx: &RequestContext,
        request: pb::SearchDatasetsRequest,
    ) -> Result<pb::SearchDatasetsResponse, ApiError>;
    /// Creates a logged model (status PENDING) in an active experiment.
    async fn create_logged_model(
        &self,
        ctx: &RequestContext,
        request: pb::CreateLoggedModelRequest,
    ) -> Result<pb::CreateLoggedModelResponse, ApiError>;
    /// Gets a logged model; deleted ones only with `allow_deleted`.
    async fn get_logged_model(
        &self,
        ctx: &RequestContext,
        request: pb::GetLoggedModelRequest,
    ) -> Result<pb::GetLoggedModelResponse, ApiError>;
    /// Sets a logged model's final status.
    async fn finalize_logged_model(
        &self,
        ctx: &RequestContext,
        request: pb::FinalizeLoggedModelRequest,
    ) -> Result<pb::FinalizeLoggedModelResponse, ApiError>;
    /// Soft-deletes a logged model.
    async fn delete_logged_model(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteLoggedModelRequest,
    ) -> Result<pb::DeleteLoggedModelResponse, ApiError>;
    /// Sets logged model tags.
    async fn set_logged_model_tags(
        &self,
        ctx: &RequestContext,
        request: pb::SetLoggedModelTagsRequest,
    ) -> Result<pb::SetLoggedModelTagsResponse, ApiError>;
    /// Deletes a logged model tag.
    async fn delete_logged_model_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteLoggedModelTagRequest,
    ) -> Result<pb::DeleteLoggedModelTagResponse, ApiError>;
    /// Logs logged model params.
    async fn log_logged_model_params(
        &self,
        ctx: &RequestContext,
        request: pb::LogLoggedModelParamsRequest,
    ) -> Result<pb::LogLoggedModelParamsResponse, ApiError>;
    /// Searches logged models with MLflow's filter language.
    async fn search_logged_models(
        &self,
        ctx: &RequestContext,
        request: pb::SearchLoggedModelsRequest,
    ) -> Result<pb::SearchLoggedModelsResponse, ApiError>;
}
