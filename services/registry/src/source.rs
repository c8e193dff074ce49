//! Model version sources (shared/SECURITY.md class 2). A source is accepted
//! only when it names artifacts this deployment owns in the caller's
//! namespace, checked through the tracking service's API (never its tables):
//!
//! - `runs:/<run_id>/<path>`: the run must exist; the files are
//!   `<run artifact_uri>/<path>`;
//! - `models:/<model_id>`: the logged model must exist (and the request's
//!   `model_id` must name it); the files are its `artifact_uri`;
//! - any other URI must lie inside the artifact URI of the request's run
//!   (`run_id`) or logged model (`model_id`), segment by segment, with no
//!   traversal.
//!
//! Local paths, `file:` URIs, other hosts and other namespaces' runs are
//! refused with 400 and nothing is written.

use quiver_artifacts::ArtifactPath;
use quiver_common::{ApiError, ErrorCode, RequestContext};
use quiver_proto::tracking::v1 as tracking_pb;
use quiver_tracking::TrackingApi;

/// A checked source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSource {
    /// Where the files are (an artifact URI).
    pub storage_location: String,
    /// The run that produced the model (from the request or the source).
    pub run_id: String,
    /// The logged model, when the source is one.
    pub model_id: String,
}

fn local_path_error(source: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid model version source: '{source}'. To use a local path as a model version source, \
         the run_id request parameter has to be specified and the local path has to be contained \
         within the artifact directory of the run specified by the run_id."
    ))
}

fn invalid_source(source: &str, why: &str) -> ApiError {
    ApiError::invalid(format!("Invalid model version source: '{source}'. {why}"))
}

/// Whether `candidate` lies at or under `base` (segment-wise, after
/// validating the remainder as a safe relative path).
fn within(base: &str, candidate: &str) -> bool {
    let base = base.trim_end_matches('/');
    if base.is_empty() || !base.contains(':') {
        return false;
    }
    if candidate == base {
        return true;
    }
    let Some(rest) = candidate.strip_prefix(base) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('/') else {
        return false;
    };
    ArtifactPath::parse(rest.trim_end_matches('/')).is_ok()
}

/// Maps "not found" from tracking to a 400 about the source; other errors pass.
fn lookup_error(source: &str, what: &str, error: ApiError) -> ApiError {
    if error.code == ErrorCode::ResourceDoesNotExist {
        invalid_source(source, &format!("{what} not found."))
    } else {
        error
    }
}

async fn run_artifact_uri(
    tracking: &dyn TrackingApi,
    ctx: &RequestContext,
    source: &str,
    run_id: &str,
) -> Result<String, ApiError> {
    let response = tracking
        .get_run(
            ctx,
            tracking_pb::GetRunRequest {
                run_id: run_id.to_string(),
            },
        )
        .await
        .map_err(|error| lookup_error(source, &format!("Run '{run_id}'"), error))?;
    Ok(response
        .run
        .and_then(|run| run.info)
        .map(|info| info.artifact_uri)
        .unwrap_or_default())
}

async fn logged_model(
    tracking: &dyn TrackingApi,
    ctx: &RequestContext,
    source: &str,
    model_id: &str,
) -> Result<tracking_pb::LoggedModelInfo, ApiError> {
    let response = tracking
        .get_logged_model(
            ctx,
            tracking_pb::GetLoggedModelRequest {
                model_id: model_id.to_string(),
                allow_deleted: false,
            },
        )
        .await
        .map_err(|error| lookup_error(source, &format!("Logged model '{model_id}'"), error))?;
    response
        .model
        .and_then(|model| model.info)
        .ok_or_else(|| invalid_source(source, &format!("Logged model '{model_id}' not found.")))
}

/// Checks `source` for a new version of a model and resolves where its
/// files are.
pub async fn resolve(
    tracking: &dyn TrackingApi,
    ctx: &RequestContext,
    source: &str,
    run_id: &str,
    model_id: &str,
) -> Result<ResolvedSource, ApiError> {
    if source.chars().any(char::is_control) {
        return Err(invalid_source(
            source,
            "Sources cannot contain control characters.",
        ));
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        let rest = rest.trim_start_matches('/');
        let (source_run, path) = rest.split_once('/').unwrap_or((rest, ""));
        if source_run.is_empty() {
            return Err(invalid_source(source, "The runs:/ URI names no run."));
        }
        if !run_id.is_empty() && run_id != source_run {
            return Err(invalid_source(
                source,
                &format!("The run_id '{run_id}' does not match the run of the source."),
            ));
        }
        let path = path.trim_end_matches('/');
        ArtifactPath::parse(path).map_err(|_| {
            invalid_source(source, "The artifact path is not a valid relative path.")
        })?;
        let base = run_artifact_uri(tracking, ctx, source, source_run).await?;
        let storage_location = if path.is_empty() {
            base
        } else {
            format!("{}/{path}", base.trim_end_matches('/'))
        };
        return Ok(ResolvedSource {
            storage_location,
            run_id: source_run.to_string(),
            model_id: model_id.to_string(),
        });
    }
    if let Some(rest) = source.strip_prefix("models:/") {
        let source_model = rest.trim_end_matches('/');
        if source_model.contains('/')
            || source_model.contains('@')
            || !source_model.starts_with("m-")
        {
            return Err(invalid_source(
                source,
                "Only models:/<model_id> sources (MLflow 3 logged models) can be registered.",
            ));
        }
        if model_id != source_model {
            return Err(invalid_source(
                source,
                "The model_id request parameter must identify the resource that contains the source.",
            ));
        }
        let info = logged_model(tracking, ctx, source, source_model).await?;
        return Ok(ResolvedSource {
            storage_location: info.artifact_uri,
            run_id: if run_id.is_empty() {
                info.source_run_id
            } else {
                run_id.to_string()
            },
            model_id: model_id.to_string(),
        });
    }
    // Any other URI: it must sit inside the artifacts of the named run or model.
    if !run_id.is_empty() {
        let base = run_artifact_uri(tracking, ctx, source, run_id).await?;
        if within(&base, source) {
            return Ok(ResolvedSource {
                storage_location: source.trim_end_matches('/').to_string(),
                run_id: run_id.to_string(),
                model_id: model_id.to_string(),
            });
        }
    }
    if !model_id.is_empty() {
        let info = logged_model(tracking, ctx, source, model_id).await?;
        if within(&info.artifact_uri, source) {
            return Ok(ResolvedSource {
                storage_location: source.trim_end_matches('/').to_string(),
                run_id: if run_id.is_empty() {
                    info.source_run_id
                } else {
                    run_id.to_string()
                },
                model_id: model_id.to_string(),
            });
        }
    }
    Err(local_path_error(source))
}

/// The URI a client downloads a version from: `runs:/` sources unchanged
/// (the client resolves them), everything else the resolved location.
pub fn download_uri(source: &str, storage_location: &str) -> String {
    if source.starts_with("runs:/") {
        source.to_string()
    } else {
        storage_location.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: &str = "mlflow-artifacts:/1/abc/artifacts";

    #[test]
    fn within_accepts_the_tree() {
        assert!(within(BASE, BASE));
        assert!(within(BASE, "mlflow-artifacts:/1/abc/artifacts/model"));
        assert!(within(BASE, "mlflow-artifacts:/1/abc/artifacts/model/"));
        assert!(within(
            &format!("{BASE}/"),
            "mlflow-artifacts:/1/abc/artifacts/m/x"
        ));
    }

    #[test]
    fn within_refuses_escapes_and_neighbours() {
        for bad in [
            "mlflow-artifacts:/1/abc/artifactsX",
            "mlflow-artifacts:/1/abc/artifacts/../../2/x",
            "mlflow-artifacts:/1/abc/artifacts/%2e%2e/x",
            "mlflow-artifacts:/1/abc/artifacts/a/./b",
            "mlflow-artifacts:/1/abc/artifacts//x",
            "mlflow-artifacts:/1/abc/artifacts/a\\..\\b",
            "mlflow-artifacts:/1/abc",
            "/etc/passwd",
            "file:///etc/passwd",
            "http://169.254.169.254/latest",
        ] {
            assert!(!within(BASE, bad), "{bad}");
        }
        // A base without a scheme (a local path) never contains anything.
        assert!(!within("/srv/art", "/srv/art/x"));
        assert!(!within("", "x"));
    }

    #[test]
    fn download_uri_keeps_runs_sources() {
        assert_eq!(
            download_uri("runs:/abc/m", "mlflow-artifacts:/1/abc/artifacts/m"),
            "runs:/abc/m"
        );
        assert_eq!(
            download_uri("models:/m-1", "mlflow-artifacts:/1/models/m-1/artifacts"),
            "mlflow-artifacts:/1/models/m-1/artifacts"
        );
    }

    proptest! {
        #[test]
        fn nothing_with_a_dot_dot_segment_is_within(prefix in "[a-z]{0,5}", suffix in "[a-z/]{0,8}") {
            let candidate = format!("{BASE}/{prefix}/../{suffix}");
            prop_assert!(!within(BASE, &candidate));
        }
    }
}
