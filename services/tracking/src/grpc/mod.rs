//! The gRPC side of the seam: [`TrackingGrpcServer`] serves any [`TrackingApi`],
//! [`TrackingGrpcClient`] is a [`TrackingApi`] over a channel. Messages pass
//! through unchanged; the namespace rides in metadata and errors in
//! `google.rpc.ErrorInfo`, so both directions are lossless.

mod client;
mod server;

pub use client::TrackingGrpcClient;
pub use server::TrackingGrpcServer;

/// Calls `$callback!` with every tracking RPC as `(method, Request, Response)`.
macro_rules! for_each_tracking_rpc {
    ($callback:ident) => {
        $callback! {
            (create_experiment, CreateExperimentRequest, CreateExperimentResponse),
            (get_experiment, GetExperimentRequest, GetExperimentResponse),
            (get_experiment_by_name, GetExperimentByNameRequest, GetExperimentByNameResponse),
            (search_experiments, SearchExperimentsRequest, SearchExperimentsResponse),
            (update_experiment, UpdateExperimentRequest, UpdateExperimentResponse),
            (delete_experiment, DeleteExperimentRequest, DeleteExperimentResponse),
            (restore_experiment, RestoreExperimentRequest, RestoreExperimentResponse),
            (set_experiment_tag, SetExperimentTagRequest, SetExperimentTagResponse),
            (delete_experiment_tag, DeleteExperimentTagRequest, DeleteExperimentTagResponse),
            (create_run, CreateRunRequest, CreateRunResponse),
            (get_run, GetRunRequest, GetRunResponse),
            (update_run, UpdateRunRequest, UpdateRunResponse),
            (delete_run, DeleteRunRequest, DeleteRunResponse),
            (restore_run, RestoreRunRequest, RestoreRunResponse),
            (search_runs, SearchRunsRequest, SearchRunsResponse),
            (set_tag, SetTagRequest, SetTagResponse),
            (delete_tag, DeleteTagRequest, DeleteTagResponse),
            (log_param, LogParamRequest, LogParamResponse),
            (log_metric, LogMetricRequest, LogMetricResponse),
            (log_batch, LogBatchRequest, LogBatchResponse),
            (log_inputs, LogInputsRequest, LogInputsResponse),
            (log_outputs, LogOutputsRequest, LogOutputsResponse),
            (log_model, LogModelRequest, LogModelResponse),
            (get_metric_history, GetMetricHistoryRequest, GetMetricHistoryResponse),
            (get_metric_history_bulk_interval, GetMetricHistoryBulkIntervalRequest, GetMetricHistoryBulkIntervalResponse),
            (search_datasets, SearchDatasetsRequest, SearchDatasetsResponse),
            (create_logged_model, CreateLoggedModelRequest, CreateLoggedModelResponse),
            (get_logged_model, GetLoggedModelRequest, GetLoggedModelResponse),
            (finalize_logged_model, FinalizeLoggedModelRequest, FinalizeLoggedModelResponse),
            (delete_logged_model, DeleteLoggedModelRequest, DeleteLoggedModelResponse),
            (set_logged_model_tags, SetLoggedModelTagsRequest, SetLoggedModelTagsResponse),
            (delete_logged_model_tag, DeleteLoggedModelTagRequest, DeleteLoggedModelTagResponse),
            (log_logged_model_params, LogLoggedModelParamsRequest, LogLoggedModelParamsResponse),
            (search_logged_models, SearchLoggedModelsRequest, SearchLoggedModelsResponse),
            (check_namespace, CheckNamespaceRequest, CheckNamespaceResponse),
        }
    };
}
pub(crate) use for_each_tracking_rpc;
