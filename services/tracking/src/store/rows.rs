//! Row <-> proto mapping for the SQL store: the one place stored values become
//! API messages.

use quiver_proto::tracking::v1 as pb;
use sqlx::Row;
use sqlx::any::AnyRow;

pub(crate) const EXPERIMENT_COLUMNS: &str = "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

pub(crate) const RUN_COLUMNS: &str = "r.run_key, r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, \
     r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri";

pub(crate) use quiver_common::sql::{db_error, is_unique_violation};

pub(crate) fn lifecycle_from_str(stage: &str) -> pb::LifecycleStage {
    match stage {
        "deleted" => pb::LifecycleStage::Deleted,
        _ => pb::LifecycleStage::Active,
    }
}

/// Returns the stored (MLflow) name of a run status.
pub fn status_to_str(status: pb::RunStatus) -> &'static str {
    match status {
        pb::RunStatus::Running | pb::RunStatus::Unspecified => "RUNNING",
        pb::RunStatus::Scheduled => "SCHEDULED",
        pb::RunStatus::Finished => "FINISHED",
        pb::RunStatus::Failed => "FAILED",
        pb::RunStatus::Killed => "KILLED",
    }
}

/// Parses an MLflow run status name.
pub fn status_from_str(status: &str) -> Option<pb::RunStatus> {
    match status {
        "RUNNING" => Some(pb::RunStatus::Running),
        "SCHEDULED" => Some(pb::RunStatus::Scheduled),
        "FINISHED" => Some(pb::RunStatus::Finished),
        "FAILED" => Some(pb::RunStatus::Failed),
        "KILLED" => Some(pb::RunStatus::Killed),
        _ => None,
    }
}

pub(crate) fn experiment(row: &AnyRow) -> Result<pb::Experiment, sqlx::Error> {
    let stage: String = row.try_get("lifecycle_stage")?;
    Ok(pb::Experiment {
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        name: row.try_get("name")?,
        artifact_location: row.try_get("artifact_location")?,
        lifecycle_stage: lifecycle_from_str(&stage) as i32,
        creation_time: row.try_get("creation_time")?,
        last_update_time: row.try_get("last_update_time")?,
        tags: Vec::new(),
        namespace: String::new(),
    })
}

/// The [`RUN_COLUMNS`] of one run, typed.
pub(crate) type RunColumns = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    String,
);

pub(crate) fn run_info(row: &AnyRow) -> Result<(i64, pb::RunInfo), sqlx::Error> {
    Ok(run_info_of(
        <RunColumns as sqlx::FromRow<'_, AnyRow>>::from_row(row)?,
    ))
}

/// `(run_key, info)` of a run's [`RUN_COLUMNS`].
pub(crate) fn run_info_of(columns: RunColumns) -> (i64, pb::RunInfo) {
    let (
        run_key,
        run_id,
        experiment_id,
        run_name,
        user_id,
        status,
        start_time,
        end_time,
        stage,
        artifact_uri,
    ) = columns;
    let info = pb::RunInfo {
        run_id,
        run_name,
        experiment_id: experiment_id.to_string(),
        user_id,
        status: status_from_str(&status).unwrap_or(pb::RunStatus::Running) as i32,
        start_time,
        end_time,
        artifact_uri,
        lifecycle_stage: lifecycle_from_str(&stage) as i32,
    };
    (run_key, info)
}

/// Turns a stored value back into the API's double (NaN restored).
pub(crate) fn metric_value(value: f64, is_nan: i64) -> f64 {
    if is_nan != 0 { f64::NAN } else { value }
}

/// One metric point of a history page: `(step, timestamp, value, is_nan,
/// model_id, dataset_name, dataset_digest)`.
pub(crate) type HistoryRow = (
    i64,
    i64,
    f64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Turns history rows into points.
pub(crate) fn history_points(rows: Vec<HistoryRow>, key: &str, run_id: &str) -> Vec<pb::Metric> {
    rows.into_iter()
        .map(
            |(step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest)| pb::Metric {
                key: key.to_string(),
                value: metric_value(value, is_nan),
                timestamp,
                step,
                model_id: model_id.unwrap_or_default(),
                dataset_name: dataset_name.unwrap_or_default(),
                dataset_digest: dataset_digest.unwrap_or_default(),
                run_id: run_id.to_string(),
            },
        )
        .collect()
}
