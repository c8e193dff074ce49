//! Row <-> proto mapping for the SQL store: the one place stored values become
//! API messages.

use std::collections::HashMap;

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

/// One stored metric point as a history page reads it: `(step, timestamp,
/// value, is_nan, model_id, dataset_name, dataset_digest)`.
pub(crate) type HistoryRow = (
    i64,
    i64,
    f64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A history page as Postgres returns it from [`HISTORY_PACKED`]: the points
/// packed into one `bytea` (NULL when the page is empty).
pub(crate) type HistoryPacked = (Option<Vec<u8>>,);

/// One point of a history page without its model and dataset: `(step,
/// timestamp, value, is_nan)`, all in the primary key, so the page is an
/// index-only scan.
pub(crate) type HistoryPoint = (i64, i64, f64, i64);

/// Bytes per packed point: step (int8), timestamp (int8), value (float8),
/// is_nan (int2), each big-endian as Postgres' `*send` functions write them.
const PACKED_POINT: usize = 26;

/// Aggregates a page subquery `p` (the [`HistoryPoint`] columns, in history
/// order) into [`HistoryPacked`]. Decoding 25,000 rows one by one costs the
/// driver several times what the index scan costs the database; one packed
/// value costs Postgres no more than sending the rows, and decodes in a
/// tight loop.
pub(crate) const HISTORY_PACKED: &str = "SELECT string_agg(int8send(p.step) || int8send(p.timestamp) \
     || float8send(p.value) || int2send(CAST(p.is_nan AS SMALLINT)), ''::bytea)";

/// The points that carry a model or a dataset. The same predicate defines
/// the partial index `metrics_with_extras`, which finds them without
/// reading the table (they are rare, and the page itself is read from the
/// primary key alone).
pub(crate) const HISTORY_EXTRAS: &str =
    "(model_id IS NOT NULL OR dataset_name IS NOT NULL OR dataset_digest IS NOT NULL)";

/// Unpacks [`HistoryPacked`] into points.
pub(crate) fn history_points_from_packed(
    (packed,): HistoryPacked,
) -> Result<Vec<HistoryPoint>, quiver_common::ApiError> {
    let packed = packed.unwrap_or_default();
    if packed.len() % PACKED_POINT != 0 {
        return Err(quiver_common::ApiError::internal(
            "metric history page has a partial point",
        ));
    }
    let word = |b: &[u8]| <[u8; 8]>::try_from(b).unwrap_or_default();
    Ok(packed
        .chunks_exact(PACKED_POINT)
        .map(|p| {
            (
                i64::from_be_bytes(word(&p[0..8])),
                i64::from_be_bytes(word(&p[8..16])),
                f64::from_be_bytes(word(&p[16..24])),
                i64::from(i16::from_be_bytes([p[24], p[25]])),
            )
        })
        .collect())
}

/// Puts a page's points in history order: step, timestamp, value, is_nan.
///
/// An aggregate over an ordered subquery keeps the subquery's order in
/// practice, but SQL does not promise it; the page is checked (one pass) and
/// sorted if it ever arrives out of order.
pub(crate) fn order_points(points: &mut [HistoryPoint]) {
    let point_order = |x: &HistoryPoint, y: &HistoryPoint| {
        (x.0, x.1)
            .cmp(&(y.0, y.1))
            .then(x.2.total_cmp(&y.2))
            .then(x.3.cmp(&y.3))
    };
    if !points.windows(2).all(|w| point_order(&w[0], &w[1]).is_le()) {
        points.sort_by(point_order);
    }
}

/// Gives the points of a page that are in `extras` (the same page's points
/// that carry a model or dataset) their fields.
pub(crate) fn history_rows(
    points: Vec<HistoryPoint>,
    extras: Vec<HistoryRow>,
) -> Result<Vec<HistoryRow>, quiver_common::ApiError> {
    let bare = |(step, timestamp, value, is_nan): HistoryPoint| {
        (step, timestamp, value, is_nan, None, None, None)
    };
    if extras.is_empty() {
        return Ok(points.into_iter().map(bare).collect());
    }
    // Points are unique by (step, timestamp, value, is_nan) within a key.
    let mut by_point: HashMap<(i64, i64, u64, i64), HistoryRow> = extras
        .into_iter()
        .map(|row| ((row.0, row.1, row.2.to_bits(), row.3), row))
        .collect();
    let rows = points
        .into_iter()
        .map(|point| {
            by_point
                .remove(&(point.0, point.1, point.2.to_bits(), point.3))
                .unwrap_or_else(|| bare(point))
        })
        .collect();
    if !by_point.is_empty() {
        return Err(quiver_common::ApiError::internal(
            "metric history extras do not match the page",
        ));
    }
    Ok(rows)
}

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
