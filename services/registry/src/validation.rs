//! MLflow's registry validation rules, with its messages: model names,
//! versions, aliases, stages, tags and result limits.

use quiver_common::ApiError;
use quiver_proto::common::v1::KeyValue;
use quiver_tracking::validation::{missing, validate_key, validate_length};

use crate::store::Stage;

/// Longest registered model name (the reference's column width).
pub const MAX_MODEL_NAME_LENGTH: usize = 256;
/// Longest registry tag key.
pub const MAX_TAG_KEY_LENGTH: usize = 250;
/// Longest registry tag value.
pub const MAX_TAG_VALUE_LENGTH: usize = 100_000;
/// Longest alias.
pub const MAX_ALIAS_LENGTH: usize = 255;
/// Default page size of `search_registered_models`.
pub const DEFAULT_MODELS_PAGE: i64 = 100;
/// Largest page of `search_registered_models`.
pub const MAX_MODELS_PAGE: i64 = 1000;
/// Default page size of `search_model_versions`.
pub const DEFAULT_VERSIONS_PAGE: i64 = 10_000;
/// Largest page of `search_model_versions`.
pub const MAX_VERSIONS_PAGE: i64 = 200_000;

/// A registered model name: not blank, no `/` or `:`, not path-like.
pub fn model_name(name: &str, field: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(format!(
            "Missing value for required parameter '{field}'."
        )));
    }
    if name.contains('/') || name.contains(':') {
        return Err(ApiError::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    if name == "." || name.starts_with("..") {
        return Err(ApiError::invalid(format!(
            "Invalid value \"{name}\" for parameter '{field}' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "Invalid model name '{}'. Names cannot contain control characters.",
            name.escape_debug()
        )));
    }
    validate_length(name, MAX_MODEL_NAME_LENGTH, "Registered model name")
}

/// A version number given as a string (`"3"`); MLflow's message otherwise.
pub fn version(text: &str) -> Result<i64, ApiError> {
    if text.is_empty() {
        return Err(missing("version"));
    }
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|version| *version > 0)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Parameter 'version' must be an integer, got '{text}'."
            ))
        })
}

/// An alias name: `[\w-]+`, at most 255 characters, not `latest` or `v<digits>`.
pub fn alias(alias: &str) -> Result<(), ApiError> {
    if alias.is_empty() {
        return Err(ApiError::invalid(
            "Registered model alias name cannot be empty.",
        ));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    validate_length(alias, MAX_ALIAS_LENGTH, "Registered model alias name")?;
    if alias.eq_ignore_ascii_case("latest") {
        return Err(ApiError::invalid(
            "'latest' alias name (case insensitive) is reserved.",
        ));
    }
    let mut chars = alias.chars();
    if matches!(chars.next(), Some('v' | 'V'))
        && alias.len() > 1
        && chars.all(|c| c.is_ascii_digit())
    {
        return Err(ApiError::invalid(format!(
            "Version alias name '{alias}' is reserved."
        )));
    }
    Ok(())
}

/// A stage, case-insensitively.
pub fn stage(text: &str) -> Result<Stage, ApiError> {
    Stage::parse(text).ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid Model Version stage: {text}. Value must be one of None, Staging, Production, Archived."
        ))
    })
}

/// A registry tag (registered model or model version).
pub fn tag(tag: &KeyValue) -> Result<(), ApiError> {
    validate_key(&tag.key, "tag")?;
    validate_length(&tag.key, MAX_TAG_KEY_LENGTH, "key")?;
    validate_length(&tag.value, MAX_TAG_VALUE_LENGTH, "value")
}

/// A page size: unset gives `default`; it must lie in `1..=max`.
pub fn max_results(value: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(value) = value else {
        return Ok(default);
    };
    if value < 1 || value > max {
        return Err(ApiError::invalid(format!(
            "Invalid value \"{value}\" for parameter 'max_results' supplied: It must be between 1 and {max}."
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_common::ErrorCode;

    fn is_invalid(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        let error = result.expect_err("should be refused");
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        error.message
    }

    #[test]
    fn model_names() {
        assert!(model_name("user-churn-model", "name").is_ok());
        assert!(model_name("My Model v2", "name").is_ok());
        assert_eq!(
            is_invalid(model_name("a/b", "name")),
            "Invalid model name 'a/b'. Names cannot contain '/' or ':'."
        );
        is_invalid(model_name("a:b", "name"));
        is_invalid(model_name("", "name"));
        is_invalid(model_name("   ", "name"));
        is_invalid(model_name("..", "name"));
        is_invalid(model_name(".", "name"));
        is_invalid(model_name("x\u{0}y", "name"));
        is_invalid(model_name(&"m".repeat(257), "name"));
    }

    #[test]
    fn versions() {
        assert_eq!(version("3").unwrap(), 3);
        assert_eq!(
            is_invalid(version("abc")),
            "Parameter 'version' must be an integer, got 'abc'."
        );
        is_invalid(version("0"));
        is_invalid(version("-1"));
        is_invalid(version("1.5"));
        is_invalid(version(""));
    }

    #[test]
    fn aliases() {
        assert!(alias("champion").is_ok());
        assert!(alias("prod-2024_a").is_ok());
        assert!(alias("v").is_ok());
        assert!(alias("vx1").is_ok());
        assert_eq!(
            is_invalid(alias("v1")),
            "Version alias name 'v1' is reserved."
        );
        is_invalid(alias("V42"));
        is_invalid(alias("latest"));
        is_invalid(alias("LaTeSt"));
        is_invalid(alias(""));
        is_invalid(alias("a b"));
        is_invalid(alias("a/b"));
        is_invalid(alias(&"a".repeat(256)));
    }

    #[test]
    fn stages() {
        assert_eq!(stage("production").unwrap(), Stage::Production);
        assert_eq!(stage("STAGING").unwrap(), Stage::Staging);
        assert_eq!(stage("None").unwrap(), Stage::None);
        assert_eq!(stage("archived").unwrap(), Stage::Archived);
        assert_eq!(
            is_invalid(stage("Prod")),
            "Invalid Model Version stage: Prod. Value must be one of None, Staging, Production, Archived."
        );
    }

    #[test]
    fn page_sizes() {
        assert_eq!(max_results(None, 100, 1000).unwrap(), 100);
        assert_eq!(max_results(Some(1000), 100, 1000).unwrap(), 1000);
        is_invalid(max_results(Some(1001), 100, 1000));
        is_invalid(max_results(Some(0), 100, 1000));
    }
}
