//! SQL for `search_logged_models`, as MLflow's SQL store does it: attribute
//! filters on `logged_models`, params/tags/metrics as `EXISTS` sub-queries (a
//! metric matches when any of the model's points does, optionally on the
//! request's datasets), metric orders by the latest point (timestamp, then
//! step), missing values last, tiebreakers `creation_timestamp DESC` and
//! `model_id ASC`. Every value is bound, never spliced into the text.

use quiver_common::{ApiError, Namespace};
use quiver_search::{Comparison, Entity};

use super::logged_models::{
    DatasetScope, LOGGED_MODEL_COLUMNS, LoggedModelOrderField, LoggedModelQuery,
};
use quiver_common::sql::{Arg, SqlBuilder, direction, numeric_condition, string_condition};

/// Maps a canonical attribute to its column; `None` for unknown names.
pub(crate) fn attribute_column(key: &str) -> Option<&'static str> {
    Some(match key {
        "name" => "lm.name",
        "model_id" => "lm.model_id",
        "model_type" => "lm.model_type",
        "status" => "lm.status",
        "source_run_id" => "lm.source_run_id",
        "experiment_id" => "lm.experiment_id",
        "artifact_location" | "artifact_uri" => "lm.artifact_location",
        "status_message" => "lm.status_message",
        "creation_timestamp" | "creation_time" | "creation_timestamp_ms" => {
            "lm.creation_timestamp_ms"
        }
        "last_updated_timestamp" | "last_updated_time" | "last_updated_timestamp_ms" => {
            "lm.last_updated_timestamp_ms"
        }
        _ => return None,
    })
}

/// `(mm.dataset_name = $a AND mm.dataset_digest = $b) OR ...`, or `None`.
fn dataset_condition(sql: &mut SqlBuilder, datasets: &[DatasetScope]) -> Option<String> {
    if datasets.is_empty() {
        return None;
    }
    let parts: Vec<String> = datasets
        .iter()
        .map(|dataset| {
            let name = sql.bind(Arg::Str(dataset.name.clone()));
            match &dataset.digest {
                Some(digest) => {
                    let digest = sql.bind(Arg::Str(digest.clone()));
                    format!("(mm.dataset_name = {name} AND mm.dataset_digest = {digest})")
                }
                None => format!("(mm.dataset_name = {name})"),
            }
        })
        .collect();
    Some(format!("({})", parts.join(" OR ")))
}

/// The model's metric points, for `EXISTS` sub-queries.
const METRIC_POINTS: &str = "SELECT 1 FROM logged_model_metrics mm \
     WHERE mm.namespace = lm.namespace AND mm.model_id = lm.model_id";

fn condition(
    sql: &mut SqlBuilder,
    comparison: &Comparison,
    datasets: &[DatasetScope],
) -> Result<String, ApiError> {
    match comparison.entity {
        Entity::Attribute => {
            let column = attribute_column(&comparison.key).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid attribute key '{}' specified.",
                    comparison.key
                ))
            })?;
            if column.ends_with("_timestamp_ms") {
                numeric_condition(sql, column, comparison.op, &comparison.value)
            } else {
                string_condition(sql, column, comparison.op, &comparison.value)
            }
        }
        Entity::Param | Entity::Tag => {
            let table = if comparison.entity == Entity::Param {
                "logged_model_params"
            } else {
                "logged_model_tags"
            };
            let key = sql.bind(Arg::Str(comparison.key.clone()));
            let value = string_condition(sql, "kv.value", comparison.op, &comparison.value)?;
            Ok(format!(
                "EXISTS (SELECT 1 FROM {table} kv WHERE kv.namespace = lm.namespace \
                 AND kv.model_id = lm.model_id AND kv.key = {key} AND {value})"
            ))
        }
        Entity::Metric => {
            let base = METRIC_POINTS;
            let key = sql.bind(Arg::Str(comparison.key.clone()));
            let value = numeric_condition(sql, "mm.value", comparison.op, &comparison.value)?;
            let scoped = dataset_condition(sql, datasets)
                .map(|c| format!(" AND {c}"))
                .unwrap_or_default();
            Ok(format!(
                "EXISTS ({base} AND mm.key = {key} AND mm.is_nan = 0 AND {value}{scoped})"
            ))
        }
        Entity::Dataset => Err(ApiError::invalid(
            "Invalid entity type 'dataset' for a logged model search.",
        )),
    }
}

/// Builds the search: `limit + 1` rows to detect a next page.
pub(crate) fn search(
    namespace: &Namespace,
    query: &LoggedModelQuery,
) -> Result<SqlBuilder, ApiError> {
    let mut sql = SqlBuilder::new();
    let ns = sql.bind(Arg::Str(namespace.to_string()));
    let mut joins = String::new();
    let mut order = Vec::new();
    let mut orders_creation = false;
    let mut orders_id = false;
    for (i, order_by) in query.order_by.iter().enumerate() {
        let dir = direction(order_by.ascending);
        match &order_by.field {
            LoggedModelOrderField::Attribute(name) => {
                let column = attribute_column(name).ok_or_else(|| {
                    ApiError::invalid(format!("Invalid order by field name: {name}"))
                })?;
                orders_creation |= column == "lm.creation_timestamp_ms";
                orders_id |= column == "lm.model_id";
                order.push(format!(
                    "(CASE WHEN {column} IS NULL THEN 1 ELSE 0 END) ASC"
                ));
                order.push(format!("{column} {dir}"));
            }
            LoggedModelOrderField::Metric {
                key,
                dataset_name,
                dataset_digest,
            } => {
                let join_ns = sql.bind(Arg::Str(namespace.to_string()));
                let key = sql.bind(Arg::Str(key.clone()));
                let mut scope = String::new();
                if let Some(name) = dataset_name {
                    let p = sql.bind(Arg::Str(name.clone()));
                    scope.push_str(&format!(" AND mm.dataset_name = {p}"));
                }
                if let Some(digest) = dataset_digest {
                    let p = sql.bind(Arg::Str(digest.clone()));
                    scope.push_str(&format!(" AND mm.dataset_digest = {p}"));
                }
                joins.push_str(&format!(
                    " LEFT JOIN (SELECT ranked.model_id, ranked.value, ranked.is_nan FROM (\
                     SELECT mm.model_id, mm.value, mm.is_nan, ROW_NUMBER() OVER (\
                     PARTITION BY mm.model_id ORDER BY mm.timestamp DESC, mm.step DESC, mm.run_key ASC) AS rn \
                     FROM logged_model_metrics mm WHERE mm.namespace = {join_ns} AND mm.key = {key}{scope}\
                     ) ranked WHERE ranked.rn = 1) o{i} ON o{i}.model_id = lm.model_id"
                ));
                order.push(format!(
                    "(CASE WHEN o{i}.model_id IS NULL THEN 1 ELSE 0 END) ASC"
                ));
                order.push(format!("o{i}.is_nan ASC"));
                order.push(format!("o{i}.value {dir}"));
            }
        }
    }
    if !orders_creation {
        order.push("lm.creation_timestamp_ms DESC".to_string());
    }
    if !orders_id {
        order.push("lm.model_id ASC".to_string());
    }

    let experiments = sql.bind_list(query.experiment_ids.iter().map(|id| Arg::I64(*id)));
    let mut conditions = vec![
        format!("lm.namespace = {ns}"),
        format!("lm.experiment_id IN ({experiments})"),
        "lm.lifecycle_stage = 'active'".to_string(),
    ];
    let mut has_metric_filter = false;
    for comparison in &query.filter {
        has_metric_filter |= comparison.entity == Entity::Metric;
        conditions.push(condition(&mut sql, comparison, &query.datasets)?);
    }
    if !has_metric_filter {
        let base = METRIC_POINTS;
        if let Some(scoped) = dataset_condition(&mut sql, &query.datasets) {
            conditions.push(format!("EXISTS ({base} AND {scoped})"));
        }
    }
    let limit = sql.bind(Arg::I64(query.limit + 1));
    let offset = sql.bind(Arg::I64(query.offset));
    sql.push(&format!(
        "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models lm{joins} WHERE {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        conditions.join(" AND "),
        order.join(", ")
    ));
    Ok(sql)
}
