//! `/api/2.0/mlflow/logged-models/...` (MLflow 3 logged models): parse, call, map.
//! Artifact listing of logged models lives with the artifact routes.

use axum::extract::{Path, State};
use axum::routing::{delete, get, patch, post};
use axum::{Extension, Json, Router};
use quiver_common::RequestContext;
use quiver_proto::tracking::v1 as pb;
use serde_json::{Value, json};

use crate::AppState;
use crate::dto;
use crate::error::GatewayError;
use crate::params::Params;

type Reply = Result<Json<Value>, GatewayError>;

/// The logged-model routes, relative to `/api/2.0/mlflow`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/logged-models", post(create_logged_model))
        .route("/logged-models/search", post(search_logged_models))
        .route(
            "/logged-models/{model_id}",
            get(get_logged_model)
                .patch(finalize_logged_model)
                .delete(delete_logged_model),
        )
        .route(
            "/logged-models/{model_id}/tags",
            patch(set_logged_model_tags),
        )
        .route(
            "/logged-models/{model_id}/tags/{tag_key}",
            delete(delete_logged_model_tag),
        )
        .route(
            "/logged-models/{model_id}/params",
            post(log_logged_model_params),
        )
}

fn model_reply(model: Option<pb::LoggedModel>) -> Reply {
    Ok(Json(
        json!({"model": dto::logged_model(&model.unwrap_or_default())}),
    ))
}

async fn create_logged_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s
        .tracking
        .create_logged_model(&ctx, dto::create_logged_model(&p)?)
        .await?;
    model_reply(response.model)
}

async fn get_logged_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(model_id): Path<String>,
    p: Params,
) -> Reply {
    let request = pb::GetLoggedModelRequest {
        model_id,
        allow_deleted: p.opt_bool("allow_deleted")?.unwrap_or(false),
    };
    let response = s.tracking.get_logged_model(&ctx, request).await?;
    model_reply(response.model)
}

async fn finalize_logged_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(model_id): Path<String>,
    p: Params,
) -> Reply {
    let request = dto::finalize_logged_model(&p, model_id)?;
    let response = s.tracking.finalize_logged_model(&ctx, request).await?;
    model_reply(response.model)
}

async fn delete_logged_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(model_id): Path<String>,
) -> Reply {
    let request = pb::DeleteLoggedModelRequest { model_id };
    s.tracking.delete_logged_model(&ctx, request).await?;
    Ok(Json(json!({})))
}

async fn set_logged_model_tags(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(model_id): Path<String>,
    p: Params,
) -> Reply {
    let request = dto::set_logged_model_tags(&p, model_id)?;
    s.tracking.set_logged_model_tags(&ctx, request).await?;
    Ok(Json(json!({})))
}

async fn delete_logged_model_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((model_id, tag_key)): Path<(String, String)>,
) -> Reply {
    let request = pb::DeleteLoggedModelTagRequest { model_id, tag_key };
    s.tracking.delete_logged_model_tag(&ctx, request).await?;
    Ok(Json(json!({})))
}

async fn log_logged_model_params(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(model_id): Path<String>,
    p: Params,
) -> Reply {
    let request = dto::log_logged_model_params(&p, model_id)?;
    s.tracking.log_logged_model_params(&ctx, request).await?;
    Ok(Json(json!({})))
}

async fn search_logged_models(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s
        .tracking
        .search_logged_models(&ctx, dto::search_logged_models(&p)?)
        .await?;
    let mut body = json!({});
    if !response.models.is_empty() {
        body["models"] = response.models.iter().map(dto::logged_model).collect();
    }
    Ok(Json(dto::with_token(body, &response.next_page_token)))
}
