//! MLflow 3 logged models in the tracking service: validation (MLflow's rules
//! and messages) and store calls. A child module of `service`, whose
//! `TrackingApi` methods delegate here.

use quiver_common::time::now_millis;
use quiver_common::{ApiError, RequestContext};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::tracking::v1 as pb;
use quiver_search::Target;
use serde::{Deserialize, Serialize};

use super::{TrackingService, require, search_error};
use crate::page_token;
use crate::store::logged_models::logged_model_not_found;
use crate::store::{
    DatasetScope, LoggedModelOrder, LoggedModelOrderField, LoggedModelQuery, NewLoggedModel,
};
use crate::validation::{self as v, missing};

/// `max_results` when the request gives none (MLflow's default).
const DEFAULT_MAX_RESULTS: i64 = 100;
/// Largest page served; a larger `max_results` gets this many and a token.
const MAX_RESULTS: i64 = 1000;
/// Characters MLflow forbids in a logged model name.
const BAD_NAME_CHARS: [char; 6] = ['/', ':', '.', '%', '"', '\''];

/// Checks a logged model name as MLflow's `_validate_logged_model_name` does.
fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.chars().any(|c| BAD_NAME_CHARS.contains(&c)) {
        return Err(ApiError::invalid(format!(
            "Invalid model name ('{name}') provided. Model name must be a non-empty string and cannot contain the following characters: ('/', ':', '.', '%', '\"', \"'\")"
        )));
    }
    v::validate_length(name, 500, "Model name")
}

fn entries(entries: Vec<KeyValue>) -> Result<Vec<KeyValue>, ApiError> {
    for entry in &entries {
        require(&entry.key, "key")?;
        v::validate_length(&entry.key, v::MAX_ENTITY_KEY_LENGTH, "Key")?;
    }
    Ok(entries)
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// The page token of a logged-model search: the offset plus the request it
/// belongs to, checked on the next call as MLflow does.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct SearchToken {
    experiment_ids: Vec<String>,
    filter_string: Option<String>,
    order_by: Option<Vec<TokenOrder>>,
    offset: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct TokenOrder {
    field_name: String,
    ascending: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataset_digest: Option<String>,
}

fn order_field(order: &pb::LoggedModelOrderBy) -> Result<LoggedModelOrderField, ApiError> {
    require(&order.field_name, "field_name")?;
    let Some((entity, key)) = order.field_name.split_once('.') else {
        return Ok(LoggedModelOrderField::Attribute(order.field_name.clone()));
    };
    if entity != "metrics" || key.is_empty() {
        return Err(ApiError::invalid(format!(
            "Invalid order by field name: {}. Only metrics are supported.",
            order.field_name
        )));
    }
    Ok(LoggedModelOrderField::Metric {
        key: key.to_string(),
        dataset_name: non_empty(order.dataset_name.clone()),
        dataset_digest: non_empty(order.dataset_digest.clone()),
    })
}

impl TrackingService {
    async fn model(
        &self,
        ctx: &RequestContext,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<pb::LoggedModel, ApiError> {
        require(model_id, "model_id")?;
        self.store
            .get_logged_model(&ctx.namespace, model_id, allow_deleted)
            .await?
            .ok_or_else(|| logged_model_not_found(model_id))
    }

    pub(super) async fn lm_create(
        &self,
        ctx: &RequestContext,
        request: pb::CreateLoggedModelRequest,
    ) -> Result<pb::CreateLoggedModelResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        let experiment_id = v::parse_experiment_id(&request.experiment_id)?;
        let name = if request.name.is_empty() {
            crate::names::random_run_name()
        } else {
            validate_name(&request.name)?;
            request.name
        };
        let model = NewLoggedModel {
            model_id: format!("m-{}", uuid::Uuid::new_v4().simple()),
            experiment_id,
            name,
            model_type: non_empty(request.model_type),
            source_run_id: non_empty(request.source_run_id),
            params: entries(request.params)?,
            tags: entries(request.tags)?,
            now: now_millis(),
        };
        let model = self.store.create_logged_model(namespace, model).await?;
        Ok(pb::CreateLoggedModelResponse { model: Some(model) })
    }

    pub(super) async fn lm_get(
        &self,
        ctx: &RequestContext,
        request: pb::GetLoggedModelRequest,
    ) -> Result<pb::GetLoggedModelResponse, ApiError> {
        self.namespace(ctx).await?;
        let model = self
            .model(ctx, &request.model_id, request.allow_deleted)
            .await?;
        Ok(pb::GetLoggedModelResponse { model: Some(model) })
    }

    pub(super) async fn lm_finalize(
        &self,
        ctx: &RequestContext,
        request: pb::FinalizeLoggedModelRequest,
    ) -> Result<pb::FinalizeLoggedModelResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.model_id, "model_id")?;
        let status = match pb::LoggedModelStatus::try_from(request.status) {
            Ok(pb::LoggedModelStatus::Unspecified) | Err(_) => return Err(missing("status")),
            Ok(status) => status,
        };
        self.store
            .finalize_logged_model(namespace, &request.model_id, status, now_millis())
            .await?;
        // MLflow answers with the model even when it is soft-deleted.
        let model = self.model(ctx, &request.model_id, true).await?;
        Ok(pb::FinalizeLoggedModelResponse { model: Some(model) })
    }

    pub(super) async fn lm_delete(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteLoggedModelRequest,
    ) -> Result<pb::DeleteLoggedModelResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.model_id, "model_id")?;
        self.store
            .delete_logged_model(namespace, &request.model_id, now_millis())
            .await?;
        Ok(pb::DeleteLoggedModelResponse {})
    }

    pub(super) async fn lm_set_tags(
        &self,
        ctx: &RequestContext,
        request: pb::SetLoggedModelTagsRequest,
    ) -> Result<pb::SetLoggedModelTagsResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.model_id, "model_id")?;
        let tags = entries(request.tags)?;
        self.store
            .set_logged_model_tags(namespace, &request.model_id, tags)
            .await?;
        Ok(pb::SetLoggedModelTagsResponse {})
    }

    pub(super) async fn lm_delete_tag(
        &self,
        ctx: &RequestContext,
        request: pb::DeleteLoggedModelTagRequest,
    ) -> Result<pb::DeleteLoggedModelTagResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.model_id, "model_id")?;
        require(&request.tag_key, "tag_key")?;
        self.store
            .delete_logged_model_tag(namespace, &request.model_id, &request.tag_key)
            .await?;
        Ok(pb::DeleteLoggedModelTagResponse {})
    }

    pub(super) async fn lm_log_params(
        &self,
        ctx: &RequestContext,
        request: pb::LogLoggedModelParamsRequest,
    ) -> Result<pb::LogLoggedModelParamsResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        require(&request.model_id, "model_id")?;
        let params = entries(request.params)?;
        self.store
            .log_logged_model_params(namespace, &request.model_id, params)
            .await?;
        Ok(pb::LogLoggedModelParamsResponse {})
    }

    pub(super) async fn lm_search(
        &self,
        ctx: &RequestContext,
        request: pb::SearchLoggedModelsRequest,
    ) -> Result<pb::SearchLoggedModelsResponse, ApiError> {
        let namespace = self.namespace(ctx).await?;
        if request.experiment_ids.is_empty() {
            return Err(missing("experiment_ids"));
        }
        let experiment_ids = request
            .experiment_ids
            .iter()
            .map(|id| v::parse_experiment_id(id))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = match i64::from(request.max_results) {
            0 => DEFAULT_MAX_RESULTS,
            n if n < 0 => {
                return Err(ApiError::invalid(format!(
                    "Invalid value {n} for parameter 'max_results' supplied. It must be a positive integer"
                )));
            }
            n => n.min(MAX_RESULTS),
        };
        let mut datasets = Vec::with_capacity(request.datasets.len());
        for dataset in &request.datasets {
            if dataset.dataset_name.is_empty() {
                return Err(ApiError::invalid(
                    "`dataset_name` in the `datasets` clause must be specified.",
                ));
            }
            datasets.push(DatasetScope {
                name: dataset.dataset_name.clone(),
                digest: non_empty(dataset.dataset_digest.clone()),
            });
        }
        let order_by = request
            .order_by
            .iter()
            .map(|order| {
                Ok(LoggedModelOrder {
                    field: order_field(order)?,
                    ascending: order.ascending.unwrap_or(true),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let token_orders = (!request.order_by.is_empty()).then(|| {
            request
                .order_by
                .iter()
                .map(|order| TokenOrder {
                    field_name: order.field_name.clone(),
                    ascending: order.ascending.unwrap_or(true),
                    dataset_name: non_empty(order.dataset_name.clone()),
                    dataset_digest: non_empty(order.dataset_digest.clone()),
                })
                .collect::<Vec<_>>()
        });
        let mut token = SearchToken {
            experiment_ids: request.experiment_ids.clone(),
            filter_string: non_empty(request.filter.clone()),
            order_by: token_orders,
            offset: 0,
        };
        if !request.page_token.is_empty() {
            let given: SearchToken = page_token::decode(&request.page_token)?;
            check_token(&given, &token)?;
            token.offset = given.offset;
        }
        let query = LoggedModelQuery {
            experiment_ids,
            filter: quiver_search::parse_filter(&request.filter, Target::LoggedModels)
                .map_err(search_error)?,
            datasets,
            order_by,
            limit,
            offset: token.offset,
        };
        let mut models = self.store.search_logged_models(namespace, &query).await?;
        let fetched = models.len();
        models.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_page_token = if i64::try_from(fetched).unwrap_or(i64::MAX) > limit {
            token.offset += limit;
            page_token::encode(&token)
        } else {
            String::new()
        };
        Ok(pb::SearchLoggedModelsResponse {
            models,
            next_page_token,
        })
    }
}

/// A token is only good for the search that issued it (MLflow's messages).
fn check_token(given: &SearchToken, expected: &SearchToken) -> Result<(), ApiError> {
    if given.offset < 0 {
        return Err(ApiError::invalid("Invalid page token, negative offset"));
    }
    if given.experiment_ids != expected.experiment_ids {
        return Err(ApiError::invalid(format!(
            "Experiment IDs in the page token do not match the requested experiment IDs. Expected: {:?}. Found: {:?}",
            expected.experiment_ids, given.experiment_ids
        )));
    }
    if given.filter_string != expected.filter_string {
        return Err(ApiError::invalid(format!(
            "Filter string in the page token does not match the requested filter string. Expected: {:?}. Found: {:?}",
            expected.filter_string, given.filter_string
        )));
    }
    if given.order_by != expected.order_by {
        return Err(ApiError::invalid(
            "Order by in the page token does not match the requested order by.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_mlflow_rules() {
        assert!(validate_name("model").is_ok());
        assert!(validate_name("my-model_1 x").is_ok());
        for bad in ["a/b", "a:b", "a.b", "a%b", "a\"b", "a'b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_fields() {
        let order = |field: &str| pb::LoggedModelOrderBy {
            field_name: field.into(),
            ..Default::default()
        };
        assert_eq!(
            order_field(&order("creation_timestamp")).unwrap(),
            LoggedModelOrderField::Attribute("creation_timestamp".into())
        );
        assert_eq!(
            order_field(&order("metrics.val.loss")).unwrap(),
            LoggedModelOrderField::Metric {
                key: "val.loss".into(),
                dataset_name: None,
                dataset_digest: None
            }
        );
        assert!(order_field(&order("params.x")).is_err());
        assert!(order_field(&order("")).is_err());
    }
}
