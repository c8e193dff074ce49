//! Registry JSON <-> proto: registered models and model versions as MLflow
//! prints them, and request parameters into registry requests.

use quiver_proto::registry::v1 as pb;
use serde_json::Value;

use super::{KeyValuesJson, key_value_list};
use crate::error::GatewayError;
use crate::params::Params;

fn version_status(status: i32) -> &'static str {
    match pb::ModelVersionStatus::try_from(status) {
        Ok(pb::ModelVersionStatus::PendingRegistration) => "PENDING_REGISTRATION",
        Ok(pb::ModelVersionStatus::FailedRegistration) => "FAILED_REGISTRATION",
        _ => "READY",
    }
}

/// A model version as MLflow's JSON (`description` and `run_link` always
/// present, as MLflow prints them; empty lists and ids omitted), serialized
/// directly: a search page holds up to 1000 of them.
pub struct ModelVersionJson<'a>(pub &'a pb::ModelVersion);

impl serde::Serialize for ModelVersionJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let v = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &v.name)?;
        map.serialize_entry("version", &v.version)?;
        map.serialize_entry("creation_timestamp", &v.creation_timestamp)?;
        map.serialize_entry("last_updated_timestamp", &v.last_updated_timestamp)?;
        if !v.user_id.is_empty() {
            map.serialize_entry("user_id", &v.user_id)?;
        }
        map.serialize_entry("current_stage", &v.current_stage)?;
        map.serialize_entry("description", &v.description)?;
        map.serialize_entry("source", &v.source)?;
        if !v.run_id.is_empty() {
            map.serialize_entry("run_id", &v.run_id)?;
        }
        map.serialize_entry("status", version_status(v.status))?;
        if !v.status_message.is_empty() {
            map.serialize_entry("status_message", &v.status_message)?;
        }
        if !v.tags.is_empty() {
            map.serialize_entry("tags", &KeyValuesJson(&v.tags))?;
        }
        map.serialize_entry("run_link", &v.run_link)?;
        if !v.aliases.is_empty() {
            map.serialize_entry("aliases", &v.aliases)?;
        }
        if !v.model_id.is_empty() {
            map.serialize_entry("model_id", &v.model_id)?;
        }
        map.end()
    }
}

/// A registered model as MLflow's JSON (empty fields and lists omitted),
/// serialized directly.
pub struct RegisteredModelJson<'a>(pub &'a pb::RegisteredModel);

impl serde::Serialize for RegisteredModelJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Versions<'a>(&'a [pb::ModelVersion]);
        impl serde::Serialize for Versions<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
                for version in self.0 {
                    seq.serialize_element(&ModelVersionJson(version))?;
                }
                seq.end()
            }
        }
        struct Aliases<'a>(&'a [pb::RegisteredModelAlias]);
        impl serde::Serialize for Aliases<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
                for alias in self.0 {
                    seq.serialize_element(&serde_json::json!({
                        "alias": alias.alias,
                        "version": alias.version,
                    }))?;
                }
                seq.end()
            }
        }
        let m = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &m.name)?;
        map.serialize_entry("creation_timestamp", &m.creation_timestamp)?;
        map.serialize_entry("last_updated_timestamp", &m.last_updated_timestamp)?;
        if !m.user_id.is_empty() {
            map.serialize_entry("user_id", &m.user_id)?;
        }
        if !m.description.is_empty() {
            map.serialize_entry("description", &m.description)?;
        }
        if !m.latest_versions.is_empty() {
            map.serialize_entry("latest_versions", &Versions(&m.latest_versions))?;
        }
        if !m.tags.is_empty() {
            map.serialize_entry("tags", &KeyValuesJson(&m.tags))?;
        }
        if !m.aliases.is_empty() {
            map.serialize_entry("aliases", &Aliases(&m.aliases))?;
        }
        if !m.deployment_job_id.is_empty() {
            map.serialize_entry("deployment_job_id", &m.deployment_job_id)?;
        }
        map.end()
    }
}

/// A model version's JSON as a value.
pub fn model_version(version: &pb::ModelVersion) -> Value {
    serde_json::to_value(ModelVersionJson(version)).unwrap_or(Value::Null)
}

/// A registered model's JSON as a value.
pub fn registered_model(model: &pb::RegisteredModel) -> Value {
    serde_json::to_value(RegisteredModelJson(model)).unwrap_or(Value::Null)
}

/// `{"model_versions": [...]?, "next_page_token"?: ...}` (or `{}`).
pub fn versions_page(versions: &[pb::ModelVersion], token: &str) -> String {
    let versions: Vec<ModelVersionJson> = versions.iter().map(ModelVersionJson).collect();
    super::list_page("model_versions", &versions, token)
}

/// `{"registered_models": [...]?, "next_page_token"?: ...}` (or `{}`).
pub fn models_page(models: &[pb::RegisteredModel], token: &str) -> String {
    let models: Vec<RegisteredModelJson> = models.iter().map(RegisteredModelJson).collect();
    super::list_page("registered_models", &models, token)
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
