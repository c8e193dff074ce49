//! Registry JSON <-> proto: registered models and model versions as MLflow
//! prints them, and request parameters into registry requests.

use quiver_proto::registry::v1 as pb;
use serde_json::{Value, json};

use super::{Json, key_value_list, key_values, put_list, put_str};
use crate::error::GatewayError;
use crate::params::Params;

fn version_status(status: i32) -> &'static str {
    match pb::ModelVersionStatus::try_from(status) {
        Ok(pb::ModelVersionStatus::PendingRegistration) => "PENDING_REGISTRATION",
        Ok(pb::ModelVersionStatus::FailedRegistration) => "FAILED_REGISTRATION",
        _ => "READY",
    }
}

/// A model version (`description` and `run_link` always present, as MLflow
/// prints them; empty lists and ids omitted).
pub fn model_version(version: &pb::ModelVersion) -> Value {
    let mut map = Json::new();
    map.insert("name".into(), json!(version.name));
    map.insert("version".into(), json!(version.version));
    map.insert(
        "creation_timestamp".into(),
        json!(version.creation_timestamp),
    );
    map.insert(
        "last_updated_timestamp".into(),
        json!(version.last_updated_timestamp),
    );
    put_str(&mut map, "user_id", &version.user_id);
    map.insert("current_stage".into(), json!(version.current_stage));
    map.insert("description".into(), json!(version.description));
    map.insert("source".into(), json!(version.source));
    put_str(&mut map, "run_id", &version.run_id);
    map.insert("status".into(), json!(version_status(version.status)));
    put_str(&mut map, "status_message", &version.status_message);
    put_list(&mut map, "tags", key_values(&version.tags));
    map.insert("run_link".into(), json!(version.run_link));
    put_list(
        &mut map,
        "aliases",
        version.aliases.iter().map(|alias| json!(alias)).collect(),
    );
    put_str(&mut map, "model_id", &version.model_id);
    Value::Object(map)
}

/// A registered model.
pub fn registered_model(model: &pb::RegisteredModel) -> Value {
    let mut map = Json::new();
    map.insert("name".into(), json!(model.name));
    map.insert("creation_timestamp".into(), json!(model.creation_timestamp));
    map.insert(
        "last_updated_timestamp".into(),
        json!(model.last_updated_timestamp),
    );
    put_str(&mut map, "user_id", &model.user_id);
    put_str(&mut map, "description", &model.description);
    put_list(
        &mut map,
        "latest_versions",
        model.latest_versions.iter().map(model_version).collect(),
    );
    put_list(&mut map, "tags", key_values(&model.tags));
    put_list(
        &mut map,
        "aliases",
        model
            .aliases
            .iter()
            .map(|alias| json!({"alias": alias.alias, "version": alias.version}))
            .collect(),
    );
    put_str(&mut map, "deployment_job_id", &model.deployment_job_id);
    Value::Object(map)
}

/// CreateRegisteredModel.
pub fn create_registered_model(
    p: &Params,
) -> Result<pb::CreateRegisteredModelRequest, GatewayError> {
    Ok(pb::CreateRegisteredModelRequest {
        name: p.required_str("name")?,
        tags: key_value_list(p, "tags", false)?,
        description: p.str_or_empty("description")?,
        deployment_job_id: p.str_or_empty("deployment_job_id")?,
    })
}

/// UpdateRegisteredModel (an absent description leaves it unchanged).
pub fn update_registered_model(
    p: &Params,
) -> Result<pb::UpdateRegisteredModelRequest, GatewayError> {
    Ok(pb::UpdateRegisteredModelRequest {
        name: p.required_str("name")?,
        description: p.opt_present_str("description")?,
        deployment_job_id: p.opt_present_str("deployment_job_id")?,
    })
}

/// SearchRegisteredModels.
pub fn search_registered_models(
    p: &Params,
) -> Result<pb::SearchRegisteredModelsRequest, GatewayError> {
    Ok(pb::SearchRegisteredModelsRequest {
        filter: p.str_or_empty("filter")?,
        max_results: p.opt_i64("max_results")?,
        order_by: p.str_list("order_by")?,
        page_token: p.str_or_empty("page_token")?,
    })
}

/// SearchModelVersions.
pub fn search_model_versions(p: &Params) -> Result<pb::SearchModelVersionsRequest, GatewayError> {
    Ok(pb::SearchModelVersionsRequest {
        filter: p.str_or_empty("filter")?,
        max_results: p.opt_i64("max_results")?,
        order_by: p.str_list("order_by")?,
        page_token: p.str_or_empty("page_token")?,
    })
}

/// CreateModelVersion.
pub fn create_model_version(p: &Params) -> Result<pb::CreateModelVersionRequest, GatewayError> {
    Ok(pb::CreateModelVersionRequest {
        name: p.required_str("name")?,
        source: p.required_str("source")?,
        run_id: p.str_or_empty("run_id")?,
        tags: key_value_list(p, "tags", false)?,
        run_link: p.str_or_empty("run_link")?,
        description: p.str_or_empty("description")?,
        model_id: p.str_or_empty("model_id")?,
    })
}

/// TransitionModelVersionStage.
pub fn transition_stage(
    p: &Params,
) -> Result<pb::TransitionModelVersionStageRequest, GatewayError> {
    Ok(pb::TransitionModelVersionStageRequest {
        name: p.required_str("name")?,
        version: p.required_str("version")?,
        stage: p.required_str("stage")?,
        archive_existing_versions: p.opt_bool("archive_existing_versions")?.unwrap_or(false),
    })
}
