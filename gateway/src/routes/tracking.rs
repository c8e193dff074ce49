//! `/api/2.0/mlflow/{experiments,runs,metrics}/...`: parse, call, map.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use quiver_common::RequestContext;
use quiver_proto::tracking::v1 as pb;
use serde_json::{Value, json};

use crate::AppState;
use crate::dto;
use crate::error::GatewayError;
use crate::params::{JsonBody, Params};
use crate::routes::json_text;

type Reply = Result<Json<Value>, GatewayError>;

fn empty() -> Reply {
    Ok(Json(json!({})))
}

/// The tracking routes, relative to `/api/2.0/mlflow`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/experiments/create", post(create_experiment))
        .route("/experiments/get", get(get_experiment))
        .route("/experiments/get-by-name", get(get_experiment_by_name))
        .route(
            "/experiments/search",
            post(search_experiments).get(search_experiments),
        )
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route(
            "/experiments/delete-experiment-tag",
            post(delete_experiment_tag),
        )
        .route("/experiments/search-datasets", post(search_datasets))
        .route("/runs/create", post(create_run))
        .route("/runs/get", get(get_run))
        .route("/runs/update", post(update_run))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/runs/search", post(search_runs).get(search_runs))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-parameter", post(log_param))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/runs/outputs", post(log_outputs))
        .route("/runs/log-model", post(log_model))
        .route("/metrics/get-history", get(get_metric_history))
        .route(
            "/metrics/get-history-bulk-interval",
            get(get_metric_history_bulk_interval),
        )
        .route("/metrics/get-history-bulk", get(get_metric_history_bulk))
}

async fn create_experiment(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s
        .tracking
        .create_experiment(&ctx, dto::create_experiment(&p)?)
        .await?;
    Ok(Json(json!({"experiment_id": response.experiment_id})))
}

async fn get_experiment(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::GetExperimentRequest {
        experiment_id: p.required_str("experiment_id")?,
    };
    let response = s.tracking.get_experiment(&ctx, request).await?;
    let experiment = response.experiment.unwrap_or_default();
    Ok(Json(json!({"experiment": dto::experiment(&experiment)})))
}

async fn get_experiment_by_name(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::GetExperimentByNameRequest {
        experiment_name: p.required_str("experiment_name")?,
    };
    let response = s.tracking.get_experiment_by_name(&ctx, request).await?;
    let experiment = response.experiment.unwrap_or_default();
    Ok(Json(json!({"experiment": dto::experiment(&experiment)})))
}

async fn search_experiments(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s
        .tracking
        .search_experiments(&ctx, dto::search_experiments(&p)?)
        .await?;
    let mut body = json!({});
    if !response.experiments.is_empty() {
        body["experiments"] = response.experiments.iter().map(dto::experiment).collect();
    }
    Ok(Json(dto::with_token(body, &response.next_page_token)))
}

async fn update_experiment(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::UpdateExperimentRequest {
        experiment_id: p.required_str("experiment_id")?,
        new_name: p.required_str("new_name")?,
    };
    s.tracking.update_experiment(&ctx, request).await?;
    empty()
}

async fn delete_experiment(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::DeleteExperimentRequest {
        experiment_id: p.required_str("experiment_id")?,
    };
    s.tracking.delete_experiment(&ctx, request).await?;
    empty()
}

async fn restore_experiment(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::RestoreExperimentRequest {
        experiment_id: p.required_str("experiment_id")?,
    };
    s.tracking.restore_experiment(&ctx, request).await?;
    empty()
}

async fn set_experiment_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::SetExperimentTagRequest {
        experiment_id: p.required_str("experiment_id")?,
        key: p.required_str("key")?,
        value: p.required_present_str("value")?,
    };
    s.tracking.set_experiment_tag(&ctx, request).await?;
    empty()
}

async fn delete_experiment_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::DeleteExperimentTagRequest {
        experiment_id: p.required_str("experiment_id")?,
        key: p.required_str("key")?,
    };
    s.tracking.delete_experiment_tag(&ctx, request).await?;
    empty()
}

async fn search_datasets(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::SearchDatasetsRequest {
        experiment_ids: p.str_list("experiment_ids")?,
    };
    let response = s.tracking.search_datasets(&ctx, request).await?;
    let summaries: Vec<Value> = response
        .dataset_summaries
        .iter()
        .map(|d| json!({"experiment_id": d.experiment_id, "name": d.name, "digest": d.digest, "context": d.context}))
        .collect();
    if summaries.is_empty() {
        return empty();
    }
    Ok(Json(json!({"dataset_summaries": summaries})))
}

async fn create_run(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s.tracking.create_run(&ctx, dto::create_run(&p)?).await?;
    Ok(Json(
        json!({"run": dto::run(&response.run.unwrap_or_default())}),
    ))
}

async fn get_run(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::GetRunRequest {
        run_id: p.run_id()?,
    };
    let response = s.tracking.get_run(&ctx, request).await?;
    Ok(Json(
        json!({"run": dto::run(&response.run.unwrap_or_default())}),
    ))
}

async fn update_run(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s.tracking.update_run(&ctx, dto::update_run(&p)?).await?;
    Ok(Json(
        json!({"run_info": dto::run_info(&response.run_info.unwrap_or_default())}),
    ))
}

async fn delete_run(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    s.tracking
        .delete_run(
            &ctx,
            pb::DeleteRunRequest {
                run_id: p.run_id()?,
            },
        )
        .await?;
    empty()
}

async fn restore_run(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    s.tracking
        .restore_run(
            &ctx,
            pb::RestoreRunRequest {
                run_id: p.run_id()?,
            },
        )
        .await?;
    empty()
}

async fn search_runs(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Result<Response, GatewayError> {
    let response = s.tracking.search_runs(&ctx, dto::search_runs(&p)?).await?;
    Ok(json_text(dto::runs_page(
        &response.runs,
        &response.next_page_token,
    )))
}

async fn set_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::SetTagRequest {
        run_id: p.run_id()?,
        key: p.required_str("key")?,
        value: p.required_present_str("value")?,
    };
    s.tracking.set_tag(&ctx, request).await?;
    empty()
}

async fn delete_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::DeleteTagRequest {
        run_id: p.run_id()?,
        key: p.required_str("key")?,
    };
    s.tracking.delete_tag(&ctx, request).await?;
    empty()
}

async fn log_param(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::LogParamRequest {
        run_id: p.run_id()?,
        key: p.required_str("key")?,
        value: p.required_present_str("value")?,
    };
    s.tracking.log_param(&ctx, request).await?;
    empty()
}

async fn log_metric(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::LogMetricRequest {
        run_id: p.run_id()?,
        metric: Some(dto::metric_request(&p)?),
    };
    s.tracking.log_metric(&ctx, request).await?;
    empty()
}

async fn log_batch(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    JsonBody(body): JsonBody,
) -> Reply {
    s.tracking
        .log_batch(&ctx, dto::log_batch_body(&body)?)
        .await?;
    empty()
}

async fn log_inputs(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    s.tracking.log_inputs(&ctx, dto::log_inputs(&p)?).await?;
    empty()
}

async fn log_outputs(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    s.tracking.log_outputs(&ctx, dto::log_outputs(&p)?).await?;
    empty()
}

async fn log_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::LogModelRequest {
        run_id: p.run_id()?,
        model_json: p.required_str("model_json")?,
    };
    s.tracking.log_model(&ctx, request).await?;
    empty()
}

/// Page size used when the client asks for the whole history at once.
const HISTORY_STREAM_PAGE: i32 = 10_000;

async fn get_metric_history(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Result<Response, GatewayError> {
    let request = dto::get_metric_history(&p)?;
    if request.max_results > 0 {
        let response = s.tracking.get_metric_history(&ctx, request).await?;
        let body = dto::metrics_page(&response.metrics, false, &response.next_page_token);
        return Ok(json_text(body));
    }
    // No max_results: MLflow returns every point. Page through the tracking API
    // and stream the JSON out, so memory stays bounded however long the history.
    let first = s
        .tracking
        .get_metric_history(
            &ctx,
            pb::GetMetricHistoryRequest {
                max_results: HISTORY_STREAM_PAGE,
                ..request.clone()
            },
        )
        .await?;
    if first.metrics.is_empty() {
        return Ok(Json(json!({})).into_response());
    }
    let state = HistoryStream {
        app: s,
        ctx,
        request,
        page: Some(first),
        writer: dto::MetricsWriter::default(),
        opened: false,
    };
    let stream = futures::stream::unfold(state, next_history_chunk);
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

struct HistoryStream {
    app: AppState,
    ctx: RequestContext,
    request: pb::GetMetricHistoryRequest,
    page: Option<pb::GetMetricHistoryResponse>,
    writer: dto::MetricsWriter,
    opened: bool,
}

/// Emits `{"metrics": [` + one page of points per chunk + `]}`.
async fn next_history_chunk(
    mut state: HistoryStream,
) -> Option<(Result<Vec<u8>, std::io::Error>, HistoryStream)> {
    let page = state.page.take()?;
    let mut chunk = Vec::with_capacity(page.metrics.len() * dto::METRIC_JSON_BYTES + 16);
    if !state.opened {
        chunk.extend_from_slice(b"{\"metrics\": [");
    }
    state.opened = true;
    for metric in &page.metrics {
        state.writer.push(&mut chunk, metric, false);
    }
    if page.next_page_token.is_empty() {
        chunk.extend_from_slice(b"]}");
        return Some((Ok(chunk), state));
    }
    let next = pb::GetMetricHistoryRequest {
        page_token: page.next_page_token,
        max_results: HISTORY_STREAM_PAGE,
        ..state.request.clone()
    };
    match state
        .app
        .tracking
        .get_metric_history(&state.ctx, next)
        .await
    {
        Ok(response) if !response.metrics.is_empty() => state.page = Some(response),
        Ok(_) => chunk.extend_from_slice(b"]}"),
        Err(error) => {
            tracing::error!(error = %error, "metric history stream failed");
            return Some((Err(std::io::Error::other(error.message)), state));
        }
    }
    Some((Ok(chunk), state))
}

async fn get_metric_history_bulk_interval(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Result<Response, GatewayError> {
    let response = s
        .tracking
        .get_metric_history_bulk_interval(&ctx, dto::get_metric_history_bulk_interval(&p)?)
        .await?;
    let mut body = dto::metrics_page(&response.metrics, true, "");
    if response.metrics.is_empty() {
        body = r#"{"metrics": []}"#.to_string();
    }
    Ok(json_text(body))
}

/// The UI's full-history read for several runs (`run_id` repeated).
async fn get_metric_history_bulk(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Result<Response, GatewayError> {
    let run_ids = p.str_list("run_id")?;
    if run_ids.is_empty() || run_ids.len() > 100 {
        return Err(GatewayError::invalid(
            "GetMetricHistoryBulk request must specify between 1 and 100 run_ids.",
        ));
    }
    let metric_key = p.required_str("metric_key")?;
    let max_results = p.opt_i32("max_results")?.unwrap_or(25_000).clamp(1, 25_000);
    let mut metrics = Vec::new();
    for run_id in run_ids {
        let request = pb::GetMetricHistoryRequest {
            run_id: run_id.clone(),
            metric_key: metric_key.clone(),
            page_token: String::new(),
            max_results,
        };
        let response = s.tracking.get_metric_history(&ctx, request).await?;
        metrics.extend(response.metrics.into_iter().map(|metric| pb::Metric {
            run_id: run_id.clone(),
            ..metric
        }));
    }
    if metrics.is_empty() {
        return Ok(json_text(r#"{"metrics": []}"#.to_string()));
    }
    Ok(json_text(dto::metrics_page(&metrics, true, "")))
}
