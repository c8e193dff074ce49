//! Semantic layer: checks entities, keys, comparators and value types per
//! search target and normalises aliases to canonical keys.

use crate::parser::{RawClause, RawIdent, RawValue};
use crate::{Comparison, Entity, Op, OrderBy, SearchError, Target, Value, snippet};

/// Whether an attribute compares as a string or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Num,
}

/// One filterable attribute: the spelling accepted, the canonical key it
/// maps to, its type and whether it accepts IN / NOT IN.
struct Attr {
    name: &'static str,
    canonical: &'static str,
    kind: Kind,
    list: bool,
}

const fn attr(name: &'static str, canonical: &'static str, kind: Kind, list: bool) -> Attr {
    Attr {
        name,
        canonical,
        kind,
        list,
    }
}

const RUN_ATTRS: &[Attr] = &[
    attr("run_id", "run_id", Kind::Str, true),
    attr("run_name", "run_name", Kind::Str, false),
    attr("run name", "run_name", Kind::Str, false),
    attr("Run name", "run_name", Kind::Str, false),
    attr("Run Name", "run_name", Kind::Str, false),
    attr("status", "status", Kind::Str, false),
    attr("user_id", "user_id", Kind::Str, false),
    attr("artifact_uri", "artifact_uri", Kind::Str, false),
    attr("start_time", "start_time", Kind::Num, false),
    attr("end_time", "end_time", Kind::Num, false),
    attr("created", "start_time", Kind::Num, false),
    attr("Created", "start_time", Kind::Num, false),
];

const EXPERIMENT_ATTRS: &[Attr] = &[
    attr("name", "name", Kind::Str, false),
    attr("experiment_id", "experiment_id", Kind::Str, false),
    attr("creation_time", "creation_time", Kind::Num, false),
    attr("last_update_time", "last_update_time", Kind::Num, false),
];

const REGISTERED_MODEL_ATTRS: &[Attr] = &[attr("name", "name", Kind::Str, true)];

const MODEL_VERSION_ATTRS: &[Attr] = &[
    attr("name", "name", Kind::Str, true),
    attr("run_id", "run_id", Kind::Str, true),
    attr("source_path", "source_path", Kind::Str, false),
    attr("version_number", "version_number", Kind::Num, false),
];

const LOGGED_MODEL_ATTRS: &[Attr] = &[
    attr("name", "name", Kind::Str, true),
    attr("model_id", "model_id", Kind::Str, true),
    attr("model_type", "model_type", Kind::Str, true),
    attr("status", "status", Kind::Str, true),
    attr("source_run_id", "source_run_id", Kind::Str, true),
    attr("creation_timestamp", "creation_timestamp", Kind::Num, false),
    attr("creation_time", "creation_timestamp", Kind::Num, false),
    attr(
        "last_updated_timestamp",
        "last_updated_timestamp",
        Kind::Num,
        false,
    ),
    attr(
        "last_updated_time",
        "last_updated_timestamp",
        Kind::Num,
        false,
    ),
];

const DATASET_KEYS: &[&str] = &["name", "digest", "context"];

/// Orderable attributes per target: (accepted spelling, canonical key).
const RUN_ORDER: &[(&str, &str)] = &[
    ("artifact_uri", "artifact_uri"),
    ("end_time", "end_time"),
    ("run_id", "run_id"),
    ("run_name", "run_name"),
    ("start_time", "start_time"),
    ("status", "status"),
    ("user_id", "user_id"),
    ("created", "start_time"),
    ("Created", "start_time"),
];
const EXPERIMENT_ORDER: &[(&str, &str)] = &[
    ("name", "name"),
    ("experiment_id", "experiment_id"),
    ("creation_time", "creation_time"),
    ("last_update_time", "last_update_time"),
];
const REGISTERED_MODEL_ORDER: &[(&str, &str)] = &[
    ("name", "name"),
    ("timestamp", "last_updated_timestamp"),
    ("last_updated_timestamp", "last_updated_timestamp"),
];
const MODEL_VERSION_ORDER: &[(&str, &str)] = &[
    ("name", "name"),
    ("version_number", "version_number"),
    ("creation_timestamp", "creation_timestamp"),
    ("last_updated_timestamp", "last_updated_timestamp"),
];
const LOGGED_MODEL_ORDER: &[(&str, &str)] = &[
    ("name", "name"),
    ("model_id", "model_id"),
    ("model_type", "model_type"),
    ("status", "status"),
    ("source_run_id", "source_run_id"),
    ("creation_timestamp", "creation_timestamp"),
    ("creation_time", "creation_timestamp"),
    ("last_updated_timestamp", "last_updated_timestamp"),
    ("last_updated_time", "last_updated_timestamp"),
];

const NUMERIC_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Gt, Op::Ge, Op::Lt, Op::Le];
const STRING_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike];
const NULLABLE_STRING_OPS: &[Op] = &[
    Op::Eq,
    Op::Ne,
    Op::Like,
    Op::ILike,
    Op::IsNull,
    Op::IsNotNull,
];
const LIST_STRING_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn];

fn filter_attrs(target: Target) -> &'static [Attr] {
    match target {
        Target::Runs => RUN_ATTRS,
        Target::Experiments => EXPERIMENT_ATTRS,
        Target::RegisteredModels => REGISTERED_MODEL_ATTRS,
        Target::ModelVersions => MODEL_VERSION_ATTRS,
        Target::LoggedModels => LOGGED_MODEL_ATTRS,
    }
}

fn order_attrs(target: Target) -> &'static [(&'static str, &'static str)] {
    match target {
        Target::Runs => RUN_ORDER,
        Target::Experiments => EXPERIMENT_ORDER,
        Target::RegisteredModels => REGISTERED_MODEL_ORDER,
        Target::ModelVersions => MODEL_VERSION_ORDER,
        Target::LoggedModels => LOGGED_MODEL_ORDER,
    }
}

/// Entities a target's filters may use, in MLflow's listing order.
fn filter_entities(target: Target) -> &'static [Entity] {
    use Entity::*;
    match target {
        Target::Runs => &[Metric, Param, Tag, Attribute, Dataset],
        Target::Experiments | Target::RegisteredModels | Target::ModelVersions => &[Tag, Attribute],
        Target::LoggedModels => &[Metric, Param, Tag, Attribute],
    }
}

/// Entities a target's order_by clauses may use.
fn order_entities(target: Target) -> &'static [Entity] {
    use Entity::*;
    match target {
        Target::Runs => &[Metric, Param, Tag, Attribute],
        Target::Experiments | Target::RegisteredModels | Target::ModelVersions => &[Attribute],
        Target::LoggedModels => &[Metric, Attribute],
    }
}

/// Resolves an entity spelling (`metrics`, `params`, `attr`, ...), case-sensitively
/// like MLflow.
fn entity_from_name(name: &str) -> Option<Entity> {
    match name {
        "metric" | "metrics" => Some(Entity::Metric),
        "parameter" | "parameters" | "param" | "params" => Some(Entity::Param),
        "tag" | "tags" => Some(Entity::Tag),
        "attribute" | "attributes" | "attr" | "run" => Some(Entity::Attribute),
        "dataset" | "datasets" => Some(Entity::Dataset),
        _ => None,
    }
}

fn quoted_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let inner: Vec<String> = items.into_iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", inner.join(", "))
}

fn resolve_entity(ident: &RawIdent, allowed: &[Entity]) -> Result<Entity, SearchError> {
    let Some(name) = ident.entity.as_deref() else {
        return Ok(Entity::Attribute);
    };
    match entity_from_name(name) {
        Some(entity) if allowed.contains(&entity) => Ok(entity),
        _ => Err(SearchError::new(format!(
            "Invalid entity type '{}'. Valid values are {}",
            snippet(name),
            quoted_list(allowed.iter().map(|e| e.name()))
        ))),
    }
}

fn invalid_attribute(key: &str, valid: impl IntoIterator<Item = &'static str>) -> SearchError {
    SearchError::new(format!(
        "Invalid attribute key '{}' specified. Valid keys are {}",
        snippet(key),
        quoted_list(valid)
    ))
}

fn string_ops(target: Target, entity: Entity) -> &'static [Op] {
    match (target, entity) {
        (_, Entity::Dataset) => LIST_STRING_OPS,
        (Target::Runs | Target::Experiments, Entity::Param | Entity::Tag) => NULLABLE_STRING_OPS,
        (_, Entity::Attribute) if target != Target::Experiments => LIST_STRING_OPS,
        _ => STRING_OPS,
    }
}

/// Validates one parsed clause against the target's rules and produces the
/// normalised comparison.
pub(crate) fn comparison(clause: RawClause, target: Target) -> Result<Comparison, SearchError> {
    let RawClause {
        ident,
        op,
        value,
        value_text,
    } = clause;
    let entity = resolve_entity(&ident, filter_entities(target))?;
    let subject = || format!("{} '{}'", entity.name(), snippet(&ident.key));
    let (key, kind, list_ok) = match entity {
        Entity::Metric => (ident.key.clone(), Kind::Num, false),
        Entity::Param | Entity::Tag => (ident.key.clone(), Kind::Str, false),
        Entity::Dataset => {
            if !DATASET_KEYS.contains(&ident.key.as_str()) {
                return Err(SearchError::new(format!(
                    "Invalid dataset key '{}' specified. Valid keys are {}",
                    snippet(&ident.key),
                    quoted_list(DATASET_KEYS)
                )));
            }
            (ident.key.clone(), Kind::Str, true)
        }
        Entity::Attribute => {
            let attrs = filter_attrs(target);
            let Some(spec) = attrs.iter().find(|a| a.name == ident.key) else {
                return Err(invalid_attribute(&ident.key, attrs.iter().map(|a| a.name)));
            };
            (spec.canonical.to_string(), spec.kind, spec.list)
        }
    };
    let allowed_ops = match kind {
        Kind::Num => NUMERIC_OPS,
        Kind::Str => string_ops(target, entity),
    };
    if !allowed_ops.contains(&op) {
        return Err(SearchError::new(format!(
            "Invalid comparator '{op}' not one of {} for {}",
            quoted_list(allowed_ops),
            subject()
        )));
    }
    if matches!(op, Op::In | Op::NotIn) && !list_ok {
        let list_keys: Vec<&str> = filter_attrs(target)
            .iter()
            .filter(|a| a.list && a.kind == Kind::Str)
            .map(|a| a.name)
            .collect();
        return Err(SearchError::new(format!(
            "Only {} attributes support comparison with a list of quoted string values.",
            quoted_list(list_keys)
        )));
    }
    let value = match (kind, value) {
        (_, RawValue::Null) => Value::Null,
        (_, RawValue::List(items)) => Value::List(items),
        (Kind::Num, RawValue::Num(n)) => Value::Number(n),
        (Kind::Num, RawValue::Str(_) | RawValue::Unquoted) => {
            let what = match entity {
                Entity::Metric => "metric".to_string(),
                _ => format!("numeric attribute: {key}"),
            };
            return Err(SearchError::new(format!(
                "Expected numeric value type for {what}. Found {}",
                snippet(&value_text)
            )));
        }
        (Kind::Str, RawValue::Str(s)) => Value::String(s),
        (Kind::Str, RawValue::Num(_)) => {
            let what = match entity {
                Entity::Attribute => "attributes".to_string(),
                Entity::Dataset => "dataset attributes".to_string(),
                other => other.name().to_string(),
            };
            return Err(SearchError::new(format!(
                "Expected a quoted string value for {what} (e.g. 'my-value'). Got value {}",
                snippet(&value_text)
            )));
        }
        (Kind::Str, RawValue::Unquoted) => {
            return Err(SearchError::new(format!(
                "Parameter value is either not quoted or unidentified quote types used for \
                 string value {}. Use either single or double quotes.",
                snippet(&value_text)
            )));
        }
    };
    Ok(Comparison {
        entity,
        key,
        op,
        value,
    })
}

/// Validates a parsed order_by identifier against the target's orderable
/// keys and produces the normalised order.
pub(crate) fn order_by(
    ident: RawIdent,
    ascending: bool,
    target: Target,
) -> Result<OrderBy, SearchError> {
    let entity = resolve_entity(&ident, order_entities(target))?;
    let key = if entity == Entity::Attribute {
        let attrs = order_attrs(target);
        let Some(&(_, canonical)) = attrs.iter().find(|(name, _)| *name == ident.key) else {
            let valid = attrs.iter().map(|(name, _)| *name);
            if target == Target::RegisteredModels {
                return Err(SearchError::new(format!(
                    "Invalid order by key '{}' specified. Valid keys are {}",
                    snippet(&ident.key),
                    quoted_list(valid)
                )));
            }
            return Err(invalid_attribute(&ident.key, valid));
        };
        canonical.to_string()
    } else {
        ident.key
    };
    Ok(OrderBy {
        entity,
        key,
        ascending,
    })
}
