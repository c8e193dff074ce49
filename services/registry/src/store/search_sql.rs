//! SQL for registry searches: parsed MLflow filters and orders become
//! conditions over the registry schema. Every value is bound.

use quiver_common::sql::{Arg, SqlBuilder, direction, numeric_condition, string_condition};
use quiver_common::{ApiError, Namespace};
use quiver_search::{Comparison, Entity, Op, OrderBy, Value};

use super::RegistryQuery;
use super::rows::{MODEL_CARD_COLUMNS, VERSION_CARD_COLUMNS};

/// A tag condition as an EXISTS over `table`, correlated by `correlation`.
fn tag_condition(
    sql: &mut SqlBuilder,
    table: &str,
    correlation: &str,
    comparison: &Comparison,
) -> Result<String, ApiError> {
    let key = sql.bind(Arg::Str(comparison.key.clone()));
    let base = format!("SELECT 1 FROM {table} t WHERE {correlation} AND t.key = {key}");
    match comparison.op {
        Op::IsNull => Ok(format!("NOT EXISTS ({base})")),
        Op::IsNotNull => Ok(format!("EXISTS ({base})")),
        op => {
            let condition = string_condition(sql, "t.value", op, &comparison.value)?;
            Ok(format!("EXISTS ({base} AND {condition})"))
        }
    }
}

/// The tag that marks prompts (MLflow stores prompts as registered models).
const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// MLflow's prompt rule: unless the filter asks for prompts
/// (`tags.mlflow.prompt.is_prompt = 'true'` or `!= 'false'`), clauses on the
/// prompt tag are dropped and prompts are excluded (the stock client always
/// adds `tag.mlflow.prompt.is_prompt != 'true'`, which must also match models
/// without the tag). Returns the clauses to apply and whether to exclude prompts.
fn without_prompt_clauses(filter: &[Comparison]) -> (Vec<&Comparison>, bool) {
    let is_prompt_clause = |c: &Comparison| c.entity == Entity::Tag && c.key == PROMPT_TAG;
    let querying_prompts = filter.iter().filter(|c| is_prompt_clause(c)).any(|c| {
        let Value::String(value) = &c.value else {
            return false;
        };
        (c.op == Op::Eq && value.eq_ignore_ascii_case("true"))
            || (c.op == Op::Ne && value.eq_ignore_ascii_case("false"))
    });
    if querying_prompts {
        (filter.iter().collect(), false)
    } else {
        (
            filter.iter().filter(|c| !is_prompt_clause(c)).collect(),
            true,
        )
    }
}

/// `NOT EXISTS` a prompt tag set to 'true' in `table`, correlated by `correlation`.
fn not_a_prompt(sql: &mut SqlBuilder, table: &str, correlation: &str) -> String {
    let key = sql.bind(Arg::Str(PROMPT_TAG.to_string()));
    format!(
        "NOT EXISTS (SELECT 1 FROM {table} t WHERE {correlation} AND t.key = {key} AND LOWER(t.value) = 'true')"
    )
}

fn unknown_key(key: &str) -> ApiError {
    ApiError::invalid(format!("Invalid attribute key '{key}' specified."))
}

fn model_condition(sql: &mut SqlBuilder, comparison: &Comparison) -> Result<String, ApiError> {
    match comparison.entity {
        Entity::Tag => tag_condition(
            sql,
            "registered_model_tags",
            "t.model_key = m.model_key",
            comparison,
        ),
        Entity::Attribute if comparison.key == "name" => {
            string_condition(sql, "m.name", comparison.op, &comparison.value)
        }
        _ => Err(unknown_key(&comparison.key)),
    }
}

fn model_order_column(order: &OrderBy) -> Result<&'static str, ApiError> {
    match order.key.as_str() {
        "name" => Ok("m.name"),
        "last_updated_timestamp" | "timestamp" => Ok("m.last_updated_timestamp"),
        other => Err(ApiError::invalid(format!(
            "Invalid order by key '{other}' specified."
        ))),
    }
}

/// Appends `LIMIT limit + 1 OFFSET offset` (one extra row tells a next page).
fn page(sql: &mut SqlBuilder, query: &RegistryQuery) {
    let limit = sql.bind(Arg::I64(query.limit + 1));
    let offset = sql.bind(Arg::I64(query.offset));
    sql.push(&format!(" LIMIT {limit} OFFSET {offset}"));
}

/// Registered models: default and tiebreaker order `name ASC`.
pub(crate) fn registered_models(
    namespace: &Namespace,
    query: &RegistryQuery,
) -> Result<SqlBuilder, ApiError> {
    let mut sql = SqlBuilder::new();
    let ns = sql.bind(Arg::Str(namespace.to_string()));
    let mut conditions = vec![format!("m.namespace = {ns}")];
    let (filter, exclude_prompts) = without_prompt_clauses(&query.filter);
    for comparison in filter {
        conditions.push(model_condition(&mut sql, comparison)?);
    }
    if exclude_prompts {
        conditions.push(not_a_prompt(
            &mut sql,
            "registered_model_tags",
            "t.model_key = m.model_key",
        ));
    }
    let mut order = Vec::new();
    let mut has_name = false;
    for clause in &query.order_by {
        let column = model_order_column(clause)?;
        has_name |= column == "m.name";
        order.push(format!("{column} {}", direction(clause.ascending)));
    }
    if !has_name {
        order.push("m.name ASC".to_string());
    }
    sql.push(&format!(
        "SELECT {MODEL_CARD_COLUMNS} FROM registered_models m WHERE {} ORDER BY {}",
        conditions.join(" AND "),
        order.join(", ")
    ));
    page(&mut sql, query);
    Ok(sql)
}

fn version_condition(sql: &mut SqlBuilder, comparison: &Comparison) -> Result<String, ApiError> {
    match comparison.entity {
        Entity::Tag => tag_condition(
            sql,
            "model_version_tags",
            "t.model_key = v.model_key AND t.version = v.version",
            comparison,
        ),
        Entity::Attribute => match comparison.key.as_str() {
            "name" => string_condition(sql, "m.name", comparison.op, &comparison.value),
            "run_id" => string_condition(sql, "v.run_id", comparison.op, &comparison.value),
            "source_path" => string_condition(sql, "v.source", comparison.op, &comparison.value),
            "version_number" => {
                numeric_condition(sql, "v.version", comparison.op, &comparison.value)
            }
            other => Err(unknown_key(other)),
        },
        _ => Err(unknown_key(&comparison.key)),
    }
}

fn version_order_column(order: &OrderBy) -> Result<&'static str, ApiError> {
    match order.key.as_str() {
        "name" => Ok("m.name"),
        "version_number" => Ok("v.version"),
        "creation_timestamp" => Ok("v.creation_timestamp"),
        "last_updated_timestamp" => Ok("v.last_updated_timestamp"),
        other => Err(ApiError::invalid(format!(
            "Invalid order by key '{other}' specified."
        ))),
    }
}

/// Model versions (deleted ones are gone, not hidden). Default order
/// `last_updated_timestamp DESC, name ASC, version DESC`; given an order,
/// `name ASC` then `version DESC` are appended when absent.
pub(crate) fn model_versions(
    namespace: &Namespace,
    query: &RegistryQuery,
) -> Result<SqlBuilder, ApiError> {
    let mut sql = SqlBuilder::new();
    let ns = sql.bind(Arg::Str(namespace.to_string()));
    let mut conditions = vec![format!("v.namespace = {ns}")];
    let (filter, exclude_prompts) = without_prompt_clauses(&query.filter);
    for comparison in filter {
        conditions.push(version_condition(&mut sql, comparison)?);
    }
    if exclude_prompts {
        conditions.push(not_a_prompt(
            &mut sql,
            "model_version_tags",
            "t.model_key = v.model_key",
        ));
    }
    let mut order = Vec::new();
    let (mut has_name, mut has_version) = (false, false);
    if query.order_by.is_empty() {
        order.push("v.last_updated_timestamp DESC".to_string());
    }
    for clause in &query.order_by {
        let column = version_order_column(clause)?;
        has_name |= column == "m.name";
        has_version |= column == "v.version";
        order.push(format!("{column} {}", direction(clause.ascending)));
    }
    if !has_name {
        order.push("m.name ASC".to_string());
    }
    if !has_version {
        order.push("v.version DESC".to_string());
    }
    sql.push(&format!(
        "SELECT {VERSION_CARD_COLUMNS} FROM model_versions v JOIN registered_models m ON m.model_key = v.model_key \
         WHERE {} ORDER BY {}",
        conditions.join(" AND "),
        order.join(", ")
    ));
    page(&mut sql, query);
    Ok(sql)
}
