//! Permanent removal for `quiver gc`: the [`GcStore`] seam (a supertrait of
//! [`super::TrackingStore`]) and its SQL implementation. Soft-deleted runs and
//! experiments are listed, then removed with everything below them, one
//! transaction per run or experiment. Children are deleted explicitly (the
//! `metrics` table has no foreign key, and SQLite enforces cascades only per
//! connection), so the result does not depend on cascades.

use async_trait::async_trait;
use quiver_common::{ApiError, Namespace};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::db_error;
use super::{Lifecycle, SqlTrackingStore};

/// A run as gc sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcRun {
    /// The run id.
    pub run_id: String,
    /// Its experiment.
    pub experiment_id: i64,
    /// Its lifecycle stage.
    pub lifecycle: Lifecycle,
    /// When it was deleted (ms), if it is and the time is known.
    pub deleted_time: Option<i64>,
    /// Its artifact URI (`<experiment location>/<run id>/artifacts`).
    pub artifact_uri: String,
}

/// An experiment as gc sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcExperiment {
    /// The experiment id.
    pub experiment_id: i64,
    /// Its lifecycle stage.
    pub lifecycle: Lifecycle,
    /// Last update (ms); for a deleted experiment, when it was deleted.
    pub last_update_time: i64,
    /// Its artifact location.
    pub artifact_location: String,
}

/// A logged model as gc sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcLoggedModel {
    /// The model id.
    pub model_id: String,
    /// Its artifact location (`<experiment location>/models/<id>/artifacts`).
    pub artifact_location: String,
}

/// What gc may remove in one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcCandidates {
    /// Deleted runs old enough, in any experiment.
    pub runs: Vec<GcRun>,
    /// Deleted experiments old enough, never the default experiment "0".
    pub experiments: Vec<GcExperiment>,
}

/// The default experiment of every namespace; never hard-deleted.
pub const DEFAULT_EXPERIMENT_ID: i64 = 0;

/// Listing and permanent removal of soft-deleted runs and experiments, for
/// the `quiver gc` admin command (not reachable through the API).
#[async_trait]
pub trait GcStore: Send + Sync + 'static {
    /// Lists every namespace, by name.
    async fn list_namespaces(&self) -> Result<Vec<Namespace>, ApiError>;
    /// Lists the deleted runs whose `deleted_time` is at or before `threshold`
    /// (ms; a run deleted at an unknown time counts as old) and the deleted
    /// experiments other than "0" whose `last_update_time` is at or before it.
    async fn list_gc_candidates(
        &self,
        namespace: &Namespace,
        threshold: i64,
    ) -> Result<GcCandidates, ApiError>;
    /// Gets a run in any lifecycle stage.
    async fn gc_run(&self, namespace: &Namespace, run_id: &str) -> Result<Option<GcRun>, ApiError>;
    /// Lists every experiment of the namespace in any lifecycle stage.
    async fn gc_experiments(&self, namespace: &Namespace) -> Result<Vec<GcExperiment>, ApiError>;
    /// Lists every run (in any lifecycle stage) and logged model of an experiment.
    async fn experiment_contents(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
    ) -> Result<(Vec<GcRun>, Vec<GcLoggedModel>), ApiError>;
    /// Permanently removes a deleted run with its params, metrics, latest
    /// metrics, tags, inputs and outputs, in one transaction. Returns false,
    /// removing nothing, when the run does not exist or is not deleted.
    async fn hard_delete_run(&self, namespace: &Namespace, run_id: &str) -> Result<bool, ApiError>;
    /// Permanently removes a deleted experiment with all its runs (in any
    /// stage) and their data, its datasets, logged models and tags, in one
    /// transaction. Returns false, removing nothing, when the experiment does
    /// not exist or is not deleted. Refuses the default experiment "0".
    async fn hard_delete_experiment(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
    ) -> Result<bool, ApiError>;
}

const GC_RUN_COLUMNS: &str = "run_uuid, experiment_id, lifecycle_stage, deleted_time, artifact_uri";
const GC_EXPERIMENT_COLUMNS: &str =
    "experiment_id, lifecycle_stage, last_update_time, artifact_location";

fn lifecycle(row: &AnyRow) -> Result<Lifecycle, ApiError> {
    let stage: String = row.try_get("lifecycle_stage").map_err(db_error)?;
    Ok(if stage == Lifecycle::Deleted.as_str() {
        Lifecycle::Deleted
    } else {
        Lifecycle::Active
    })
}

fn gc_run_row(row: &AnyRow) -> Result<GcRun, ApiError> {
    Ok(GcRun {
        run_id: row.try_get("run_uuid").map_err(db_error)?,
        experiment_id: row.try_get("experiment_id").map_err(db_error)?,
        lifecycle: lifecycle(row)?,
        deleted_time: row.try_get("deleted_time").map_err(db_error)?,
        artifact_uri: row.try_get("artifact_uri").map_err(db_error)?,
    })
}

fn gc_experiment_row(row: &AnyRow) -> Result<GcExperiment, ApiError> {
    Ok(GcExperiment {
        experiment_id: row.try_get("experiment_id").map_err(db_error)?,
        lifecycle: lifecycle(row)?,
        last_update_time: row.try_get("last_update_time").map_err(db_error)?,
        artifact_location: row.try_get("artifact_location").map_err(db_error)?,
    })
}

/// Children of one run and the run itself, by `run_key` (`$1`), which the
/// transaction has just looked up in the namespace.
const RUN_ROWS: &[&str] = &[
    "DELETE FROM metric_chunks WHERE run_key = $1",
    // Empty once migrations ran (`sql::convert_legacy_history`); rows a
    // process of an older build wrote there since go with their run.
    "DELETE FROM metrics WHERE run_key = $1",
    "DELETE FROM latest_metrics WHERE run_key = $1",
    "DELETE FROM params WHERE run_key = $1",
    "DELETE FROM tags WHERE run_key = $1",
    "DELETE FROM dataset_inputs WHERE run_key = $1",
    "DELETE FROM model_inputs WHERE run_key = $1",
    "DELETE FROM model_outputs WHERE run_key = $1",
    "DELETE FROM logged_model_metrics WHERE run_key = $1",
    "DELETE FROM runs WHERE run_key = $1",
];

/// Everything below one experiment and the experiment itself (`$1`
/// namespace, `$2` experiment id), children before parents.
const EXPERIMENT_ROWS: &[&str] = &[
    "DELETE FROM metric_chunks WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM metrics WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM latest_metrics WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM params WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM tags WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM dataset_inputs WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2) \
     OR dataset_key IN (SELECT dataset_key FROM datasets WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM model_inputs WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM model_outputs WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM logged_model_metrics WHERE run_key IN (SELECT run_key FROM runs WHERE namespace = $1 AND experiment_id = $2) \
     OR (namespace = $1 AND model_id IN (SELECT model_id FROM logged_models WHERE namespace = $1 AND experiment_id = $2))",
    "DELETE FROM logged_model_params WHERE namespace = $1 AND model_id IN (SELECT model_id FROM logged_models WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM logged_model_tags WHERE namespace = $1 AND model_id IN (SELECT model_id FROM logged_models WHERE namespace = $1 AND experiment_id = $2)",
    "DELETE FROM logged_models WHERE namespace = $1 AND experiment_id = $2",
    "DELETE FROM runs WHERE namespace = $1 AND experiment_id = $2",
    "DELETE FROM datasets WHERE namespace = $1 AND experiment_id = $2",
    "DELETE FROM experiment_tags WHERE namespace = $1 AND experiment_id = $2",
    "DELETE FROM experiments WHERE namespace = $1 AND experiment_id = $2",
];

#[async_trait]
impl GcStore for SqlTrackingStore {
    async fn list_namespaces(&self) -> Result<Vec<Namespace>, ApiError> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM namespaces ORDER BY name")
            .fetch_all(&self.database().reader)
            .await
            .map_err(db_error)?;
        names.iter().map(|name| Namespace::parse(name)).collect()
    }

    async fn list_gc_candidates(
        &self,
        namespace: &Namespace,
        threshold: i64,
    ) -> Result<GcCandidates, ApiError> {
        let reader = &self.database().reader;
        let runs = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GC_RUN_COLUMNS} FROM runs WHERE namespace = $1 AND lifecycle_stage = 'deleted' \
             AND COALESCE(deleted_time, 0) <= $2 ORDER BY experiment_id, run_uuid"
        )))
        .bind(namespace.as_str())
        .bind(threshold)
        .fetch_all(reader)
        .await
        .map_err(db_error)?
        .iter()
        .map(gc_run_row)
        .collect::<Result<Vec<_>, _>>()?;
        let experiments = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GC_EXPERIMENT_COLUMNS} FROM experiments WHERE namespace = $1 \
             AND lifecycle_stage = 'deleted' AND last_update_time <= $2 AND experiment_id <> $3 \
             ORDER BY experiment_id"
        )))
        .bind(namespace.as_str())
        .bind(threshold)
        .bind(DEFAULT_EXPERIMENT_ID)
        .fetch_all(reader)
        .await
        .map_err(db_error)?
        .iter()
        .map(gc_experiment_row)
        .collect::<Result<Vec<_>, _>>()?;
        Ok(GcCandidates { runs, experiments })
    }

    async fn gc_run(&self, namespace: &Namespace, run_id: &str) -> Result<Option<GcRun>, ApiError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GC_RUN_COLUMNS} FROM runs WHERE namespace = $1 AND run_uuid = $2"
        )))
        .bind(namespace.as_str())
        .bind(run_id)
        .fetch_optional(&self.database().reader)
        .await
        .map_err(db_error)?;
        row.as_ref().map(gc_run_row).transpose()
    }

    async fn gc_experiments(&self, namespace: &Namespace) -> Result<Vec<GcExperiment>, ApiError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GC_EXPERIMENT_COLUMNS} FROM experiments WHERE namespace = $1 ORDER BY experiment_id"
        )))
        .bind(namespace.as_str())
        .fetch_all(&self.database().reader)
        .await
        .map_err(db_error)?
        .iter()
        .map(gc_experiment_row)
        .collect()
    }

    async fn experiment_contents(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
    ) -> Result<(Vec<GcRun>, Vec<GcLoggedModel>), ApiError> {
        let reader = &self.database().reader;
        let runs = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GC_RUN_COLUMNS} FROM runs WHERE namespace = $1 AND experiment_id = $2 ORDER BY run_uuid"
        )))
        .bind(namespace.as_str())
        .bind(experiment_id)
        .fetch_all(reader)
        .await
        .map_err(db_error)?
        .iter()
        .map(gc_run_row)
        .collect::<Result<Vec<_>, _>>()?;
        let models = sqlx::query(
            "SELECT model_id, artifact_location FROM logged_models \
             WHERE namespace = $1 AND experiment_id = $2 ORDER BY model_id",
        )
        .bind(namespace.as_str())
        .bind(experiment_id)
        .fetch_all(reader)
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| {
            Ok(GcLoggedModel {
                model_id: row.try_get("model_id").map_err(db_error)?,
                artifact_location: row.try_get("artifact_location").map_err(db_error)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
        Ok((runs, models))
    }

    async fn hard_delete_run(&self, namespace: &Namespace, run_id: &str) -> Result<bool, ApiError> {
        let mut tx = self.database().writer.begin().await.map_err(db_error)?;
        let run_key: Option<i64> = sqlx::query_scalar(
            "SELECT run_key FROM runs WHERE namespace = $1 AND run_uuid = $2 AND lifecycle_stage = 'deleted'",
        )
        .bind(namespace.as_str())
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(run_key) = run_key else {
            return Ok(false);
        };
        for sql in RUN_ROWS {
            sqlx::query(*sql)
                .bind(run_key)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn hard_delete_experiment(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
    ) -> Result<bool, ApiError> {
        if experiment_id == DEFAULT_EXPERIMENT_ID {
            return Err(ApiError::invalid(
                "The default experiment '0' is never permanently deleted.",
            ));
        }
        let mut tx = self.database().writer.begin().await.map_err(db_error)?;
        let stage: Option<String> = sqlx::query_scalar(
            "SELECT lifecycle_stage FROM experiments WHERE namespace = $1 AND experiment_id = $2",
        )
        .bind(namespace.as_str())
        .bind(experiment_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        if stage.as_deref() != Some(Lifecycle::Deleted.as_str()) {
            return Ok(false);
        }
        for sql in EXPERIMENT_ROWS {
            sqlx::query(*sql)
                .bind(namespace.as_str())
                .bind(experiment_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}
