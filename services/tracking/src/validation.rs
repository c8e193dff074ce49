//! MLflow's server-side validation rules for tracking entities (limits from
//! `mlflow/utils/validation.py`, as listed in the API contract §3.3).

use quiver_common::ApiError;

/// Tag that mirrors the run name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";
/// Input tag holding a dataset's context (training, eval, ...).
pub const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";
/// Run tag that keeps legacy `log-model` history.
pub const LOG_MODEL_HISTORY_TAG: &str = "mlflow.log-model.history";

/// Longest param, metric or tag key.
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
/// Longest param value (longer values are truncated).
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
/// Longest run tag value (longer values are truncated).
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
/// Longest experiment tag value.
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20000;
/// Longest experiment name.
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
/// Longest run name.
pub const MAX_RUN_NAME_LENGTH: usize = 500;
/// Most metrics in one log-batch.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params in one log-batch.
pub const MAX_PARAMS_PER_BATCH: usize = 100;
/// Most tags in one log-batch.
pub const MAX_TAGS_PER_BATCH: usize = 100;
/// Most entities in one log-batch.
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Most datasets in one log-inputs.
pub const MAX_DATASETS_PER_REQUEST: usize = 1000;
/// Largest `max_results` of a run or experiment search.
pub const MAX_RESULTS_LIMIT: i64 = 50000;

/// Checks a param, metric or tag key: allowed characters, no path tricks, length.
pub fn validate_key(key: &str, what: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(missing("key"));
    }
    let allowed = key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/'));
    if !allowed {
        return Err(ApiError::invalid(format!(
            "Invalid value \"{key}\" for parameter 'key' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    let path_like = key.starts_with('/')
        || key == "."
        || key.split('/').any(|segment| segment == "..")
        || key.contains("//")
        || key.split('/').any(|segment| segment == ".");
    if path_like {
        return Err(ApiError::invalid(format!(
            "Invalid value \"{key}\" for parameter 'key' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to a different path."
        )));
    }
    if key.chars().count() > MAX_ENTITY_KEY_LENGTH {
        return Err(ApiError::invalid(format!(
            "'{what} key' exceeds the maximum length of {MAX_ENTITY_KEY_LENGTH} characters"
        )));
    }
    Ok(())
}

/// Truncates a value to `max` characters (MLflow's default server behaviour).
pub fn truncate(value: String, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((byte_index, _)) => value[..byte_index].to_string(),
        None => value,
    }
}

/// Checks a value's length without truncating it.
pub fn validate_length(value: &str, max: usize, what: &str) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid(format!(
            "'{what}' exceeds the maximum length of {max} characters"
        )));
    }
    Ok(())
}

/// Returns MLflow's "missing required parameter" error.
pub fn missing(field: &str) -> ApiError {
    ApiError::invalid(format!(
        "Missing value for required parameter '{field}'. See the API docs for more information about request parameters."
    ))
}

/// Parses an experiment id; a non-integer is a 400.
pub fn parse_experiment_id(id: &str) -> Result<i64, ApiError> {
    if id.is_empty() {
        return Err(missing("experiment_id"));
    }
    id.parse::<i64>()
        .ok()
        .filter(|value| *value >= 0)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid experiment ID '{}'. Experiment ID must be a valid integer.",
                id.chars().take(100).collect::<String>()
            ))
        })
}

/// Checks an experiment name.
pub fn validate_experiment_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(format!(
            "Invalid experiment name: '{name}'"
        )));
    }
    validate_length(name, MAX_EXPERIMENT_NAME_LENGTH, "Experiment name")
}

/// Checks a search's `max_results`.
pub fn validate_max_results(max_results: i64) -> Result<(), ApiError> {
    if max_results <= 0 {
        return Err(ApiError::invalid(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer"
        )));
    }
    if max_results > MAX_RESULTS_LIMIT {
        return Err(ApiError::invalid(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. It must be at most {MAX_RESULTS_LIMIT}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_follow_mlflow_rules() {
        for ok in ["lr", "a/b", "a.b-c_d e:f", "métrique", &"k".repeat(250)] {
            assert!(validate_key(ok, "Param").is_ok(), "{ok}");
        }
        for bad in [
            "",
            "bad*key",
            "../x",
            "/abs",
            "a//b",
            ".",
            "a/./b",
            "a/..",
            &"k".repeat(251),
        ] {
            assert!(validate_key(bad, "Param").is_err(), "{bad}");
        }
        let error = validate_key("bad*key", "Param").unwrap_err();
        assert!(
            error
                .message
                .starts_with("Invalid value \"bad*key\" for parameter 'key'")
        );
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("é".repeat(6001), 6000).chars().count(), 6000);
        assert_eq!(truncate("short".to_string(), 6000), "short");
    }

    #[test]
    fn experiment_ids_must_be_integers() {
        assert_eq!(parse_experiment_id("12").unwrap(), 12);
        for bad in ["abc", "-1", "1.5", "99999999999999999999"] {
            let error = parse_experiment_id(bad).unwrap_err();
            assert!(error.message.contains("must be a valid integer"), "{bad}");
        }
    }

    #[test]
    fn max_results_bounds() {
        assert!(validate_max_results(1).is_ok());
        assert!(validate_max_results(50000).is_ok());
        assert!(validate_max_results(0).is_err());
        assert!(validate_max_results(50001).is_err());
    }

    proptest! {
        #[test]
        fn accepted_keys_never_escape_as_paths(key in "[a-z./ ]{1,20}") {
            if validate_key(&key, "Param").is_ok() {
                prop_assert!(!key.starts_with('/'));
                prop_assert!(!key.split('/').any(|s| s == ".." || s == "."));
            }
        }

        #[test]
        fn truncate_never_exceeds(value in ".{0,300}", max in 0usize..200) {
            prop_assert!(truncate(value, max).chars().count() <= max);
        }
    }
}
