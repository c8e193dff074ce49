//! `/api/2.0/mlflow/{registered-models,model-versions}/...` and the UI's
//! `/model-versions/get-artifact`: parse, call, map.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use quiver_common::RequestContext;
use quiver_proto::registry::v1 as pb;
use serde_json::{Value, json};

use crate::AppState;
use crate::dto::registry as rdto;
use crate::error::GatewayError;
use crate::params::Params;
use crate::routes::json_text;

type Reply = Result<Json<Value>, GatewayError>;

fn empty() -> Reply {
    Ok(Json(json!({})))
}

fn model_reply(model: Option<pb::RegisteredModel>) -> Reply {
    Ok(Json(
        json!({"registered_model": rdto::registered_model(&model.unwrap_or_default())}),
    ))
}

fn version_reply(version: Option<pb::ModelVersion>) -> Reply {
    Ok(Json(
        json!({"model_version": rdto::model_version(&version.unwrap_or_default())}),
    ))
}

/// The registry routes, relative to `/api/2.0/mlflow`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registered-models/create", post(create_registered_model))
        .route("/registered-models/get", get(get_registered_model))
        .route("/registered-models/rename", post(rename_registered_model))
        .route(
            "/registered-models/update",
            axum::routing::patch(update_registered_model),
        )
        .route(
            "/registered-models/delete",
            axum::routing::delete(delete_registered_model),
        )
        .route("/registered-models/search", get(search_registered_models))
        .route(
            "/registered-models/get-latest-versions",
            post(get_latest_versions).get(get_latest_versions),
        )
        .route("/registered-models/set-tag", post(set_registered_model_tag))
        .route(
            "/registered-models/delete-tag",
            axum::routing::delete(delete_registered_model_tag),
        )
        .route(
            "/registered-models/alias",
            post(set_alias).delete(delete_alias).get(get_by_alias),
        )
        .route("/model-versions/create", post(create_model_version))
        .route("/model-versions/get", get(get_model_version))
        .route(
            "/model-versions/update",
            axum::routing::patch(update_model_version),
        )
        .route(
            "/model-versions/delete",
            axum::routing::delete(delete_model_version),
        )
        .route("/model-versions/transition-stage", post(transition_stage))
        .route("/model-versions/search", get(search_model_versions))
        .route("/model-versions/get-download-uri", get(get_download_uri))
        .route("/model-versions/set-tag", post(set_model_version_tag))
        .route(
            "/model-versions/delete-tag",
            axum::routing::delete(delete_model_version_tag),
        )
}

async fn create_registered_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s
        .registry
        .create_registered_model(&ctx, rdto::create_registered_model(&p)?)
        .await?;
    model_reply(response.registered_model)
}

async fn get_registered_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::GetRegisteredModelRequest {
        name: p.required_str("name")?,
    };
    let response = s.registry.get_registered_model(&ctx, request).await?;
    model_reply(response.registered_model)
}

async fn rename_registered_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::RenameRegisteredModelRequest {
        name: p.required_str("name")?,
        new_name: p.str_or_empty("new_name")?,
    };
    let response = s.registry.rename_registered_model(&ctx, request).await?;
    model_reply(response.registered_model)
}

async fn update_registered_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s
        .registry
        .update_registered_model(&ctx, rdto::update_registered_model(&p)?)
        .await?;
    model_reply(response.registered_model)
}

async fn delete_registered_model(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::DeleteRegisteredModelRequest {
        name: p.required_str("name")?,
    };
    s.registry.delete_registered_model(&ctx, request).await?;
    empty()
}

async fn search_registered_models(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Result<Response, GatewayError> {
    let response = s
        .registry
        .search_registered_models(&ctx, rdto::search_registered_models(&p)?)
        .await?;
    Ok(json_text(rdto::models_page(
        &response.registered_models,
        &response.next_page_token,
    )))
}

async fn get_latest_versions(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Result<Response, GatewayError> {
    let request = pb::GetLatestVersionsRequest {
        name: p.required_str("name")?,
        stages: p.str_list("stages")?,
    };
    let response = s.registry.get_latest_versions(&ctx, request).await?;
    Ok(json_text(rdto::versions_page(&response.model_versions, "")))
}

async fn set_registered_model_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::SetRegisteredModelTagRequest {
        name: p.required_str("name")?,
        key: p.required_str("key")?,
        value: p.required_present_str("value")?,
    };
    s.registry.set_registered_model_tag(&ctx, request).await?;
    empty()
}

async fn delete_registered_model_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::DeleteRegisteredModelTagRequest {
        name: p.required_str("name")?,
        key: p.required_str("key")?,
    };
    s.registry
        .delete_registered_model_tag(&ctx, request)
        .await?;
    empty()
}

async fn set_alias(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::SetRegisteredModelAliasRequest {
        name: p.required_str("name")?,
        alias: p.required_str("alias")?,
        version: p.required_str("version")?,
    };
    s.registry.set_registered_model_alias(&ctx, request).await?;
    empty()
}

async fn delete_alias(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::DeleteRegisteredModelAliasRequest {
        name: p.required_str("name")?,
        alias: p.required_str("alias")?,
    };
    s.registry
        .delete_registered_model_alias(&ctx, request)
        .await?;
    empty()
}

async fn get_by_alias(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::GetModelVersionByAliasRequest {
        name: p.required_str("name")?,
        alias: p.required_str("alias")?,
    };
    let response = s.registry.get_model_version_by_alias(&ctx, request).await?;
    version_reply(response.model_version)
}

async fn create_model_version(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s
        .registry
        .create_model_version(&ctx, rdto::create_model_version(&p)?)
        .await?;
    version_reply(response.model_version)
}

async fn get_model_version(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::GetModelVersionRequest {
        name: p.required_str("name")?,
        version: p.required_str("version")?,
    };
    let response = s.registry.get_model_version(&ctx, request).await?;
    version_reply(response.model_version)
}

async fn update_model_version(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::UpdateModelVersionRequest {
        name: p.required_str("name")?,
        version: p.required_str("version")?,
        description: p.opt_present_str("description")?,
    };
    let response = s.registry.update_model_version(&ctx, request).await?;
    version_reply(response.model_version)
}

async fn delete_model_version(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::DeleteModelVersionRequest {
        name: p.required_str("name")?,
        version: p.required_str("version")?,
    };
    s.registry.delete_model_version(&ctx, request).await?;
    empty()
}

async fn transition_stage(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let response = s
        .registry
        .transition_model_version_stage(&ctx, rdto::transition_stage(&p)?)
        .await?;
    version_reply(response.model_version)
}

async fn search_model_versions(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Result<Response, GatewayError> {
    let response = s
        .registry
        .search_model_versions(&ctx, rdto::search_model_versions(&p)?)
        .await?;
    Ok(json_text(rdto::versions_page(
        &response.model_versions,
        &response.next_page_token,
    )))
}

async fn get_download_uri(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::GetModelVersionDownloadUriRequest {
        name: p.required_str("name")?,
        version: p.required_str("version")?,
    };
    let response = s
        .registry
        .get_model_version_download_uri(&ctx, request)
        .await?;
    Ok(Json(json!({"artifact_uri": response.artifact_uri})))
}

async fn set_model_version_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::SetModelVersionTagRequest {
        name: p.required_str("name")?,
        version: p.required_str("version")?,
        key: p.required_str("key")?,
        value: p.required_present_str("value")?,
    };
    s.registry.set_model_version_tag(&ctx, request).await?;
    empty()
}

async fn delete_model_version_tag(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    p: Params,
) -> Reply {
    let request = pb::DeleteModelVersionTagRequest {
        name: p.required_str("name")?,
        version: p.required_str("version")?,
        key: p.required_str("key")?,
    };
    s.registry.delete_model_version_tag(&ctx, request).await?;
    empty()
}

/// `GET /model-versions/get-artifact?name=&version=&path=`: a file of a
/// registered version, for the UI.
pub async fn get_version_artifact(
    State(s): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, GatewayError> {
    let request = pb::GetModelVersionRequest {
        name: p.required_str("name")?,
        version: p.required_str("version")?,
    };
    let path = p.required_str("path")?;
    let version = s
        .registry
        .get_model_version(&ctx, request)
        .await?
        .model_version
        .unwrap_or_default();
    let root = quiver_artifacts::ArtifactPath::from_proxied_uri(&version.storage_location)
        .ok_or_else(|| {
            GatewayError::invalid("The model version's files are not stored by this server.")
        })?;
    super::artifacts::stream_file(&s, &ctx, &format!("{root}/{path}"), &headers).await
}
