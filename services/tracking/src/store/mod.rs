//! Storage seam of the tracking service. One SQL implementation
//! ([`sql::SqlTrackingStore`]) serves Postgres and SQLite; both pass the same
//! conformance suite (`tests/store_conformance.rs`).

use async_trait::async_trait;
use quiver_common::{ApiError, Namespace};
use quiver_proto::common::v1::{KeyValue, ViewType};
use quiver_proto::tracking::v1 as pb;
use quiver_search::{Comparison, OrderBy};

pub mod gc;
mod group_commit;
mod history;
mod logged_model_search;
pub mod logged_models;
mod rows;
mod search_sql;
pub mod sql;

pub use gc::{GcCandidates, GcExperiment, GcLoggedModel, GcRun, GcStore};
pub use logged_models::{
    DatasetScope, LoggedModelOrder, LoggedModelOrderField, LoggedModelQuery, LoggedModelStore,
    NewLoggedModel,
};
pub use sql::SqlTrackingStore;

/// Lifecycle of experiments and runs as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Visible to ACTIVE_ONLY searches.
    Active,
    /// Soft-deleted.
    Deleted,
}

impl Lifecycle {
    /// Returns the stored (and MLflow JSON) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Deleted => "deleted",
        }
    }
}

/// A new experiment.
#[derive(Debug, Clone)]
pub struct NewExperiment {
    /// Unique name within the namespace.
    pub name: String,
    /// Artifact location; `None` gives `mlflow-artifacts:/<id>`.
    pub artifact_location: Option<String>,
    /// Initial tags.
    pub tags: Vec<KeyValue>,
    /// Creation time (ms).
    pub now: i64,
}

/// A new run.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Generated run id (32 hex chars).
    pub run_id: String,
    /// Experiment it belongs to.
    pub experiment_id: i64,
    /// Final run name (already generated when the client gave none).
    pub name: String,
    /// User id.
    pub user_id: String,
    /// Start time (ms).
    pub start_time: i64,
    /// Tags, including `mlflow.runName`.
    pub tags: Vec<KeyValue>,
}

/// Changes to a run.
#[derive(Debug, Clone, Default)]
pub struct RunUpdate {
    /// New status, if any.
    pub status: Option<pb::RunStatus>,
    /// New end time, if any.
    pub end_time: Option<i64>,
    /// New name, if any (also rewrites tag `mlflow.runName`).
    pub run_name: Option<String>,
}

/// A validated metric point ready to store (NaN flagged, infinities clamped).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Metric key.
    pub key: String,
    /// Value; 0 when `is_nan`.
    pub value: f64,
    /// NaN flag.
    pub is_nan: bool,
    /// Timestamp (ms).
    pub timestamp: i64,
    /// Step.
    pub step: i64,
    /// Logged model the point belongs to, if any.
    pub model_id: Option<String>,
    /// Dataset name, if any.
    pub dataset_name: Option<String>,
    /// Dataset digest, if any.
    pub dataset_digest: Option<String>,
}

/// A validated log-batch.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Metric points.
    pub metrics: Vec<MetricPoint>,
    /// Params (unique keys).
    pub params: Vec<KeyValue>,
    /// Tags.
    pub tags: Vec<KeyValue>,
    /// Report a param conflict as `log-parameter` does (else as `log-batch`).
    pub single_param: bool,
}

/// A parsed experiment search.
#[derive(Debug, Clone)]
pub struct ExperimentQuery {
    /// Conjunction of comparisons.
    pub filter: Vec<Comparison>,
    /// Order keys (tiebreakers are added by the store).
    pub order_by: Vec<OrderBy>,
    /// Which lifecycle stages to include.
    pub view: ViewType,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// A parsed run search.
#[derive(Debug, Clone)]
pub struct RunQuery {
    /// Experiments to search.
    pub experiment_ids: Vec<i64>,
    /// Conjunction of comparisons.
    pub filter: Vec<Comparison>,
    /// Order keys (tiebreakers are added by the store).
    pub order_by: Vec<OrderBy>,
    /// Which lifecycle stages to include.
    pub view: ViewType,
    /// Page size.
    pub limit: i64,
    /// Rows to skip (when there is no `after`).
    pub offset: i64,
    /// Keyset paging for the default order (no `order_by`): start after this
    /// `(start_time, run_id)`; `offset` is then not used.
    pub after: Option<(i64, String)>,
}

/// Where a metric-history page starts: after this point in
/// (step, timestamp, value, is_nan) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryCursor {
    /// Step of the last point returned.
    pub step: i64,
    /// Timestamp of the last point returned.
    pub timestamp: i64,
    /// Stored value of the last point returned.
    pub value: f64,
    /// NaN flag of the last point returned.
    pub is_nan: bool,
}

impl HistoryCursor {
    /// The cursor that resumes after `metric`, a point as a history page
    /// returned it: the stored value is the returned one, except NaN, which
    /// is stored as 0 with its flag set (the inverse of reading it back).
    pub fn after(metric: &pb::Metric) -> HistoryCursor {
        let is_nan = metric.value.is_nan();
        HistoryCursor {
            step: metric.step,
            timestamp: metric.timestamp,
            value: if is_nan { 0.0 } else { metric.value },
            is_nan,
        }
    }
}

/// Persistence of everything the tracking service owns (logged models through
/// the [`LoggedModelStore`] supertrait, permanent removal for `quiver gc`
/// through [`GcStore`]). Every method but [`GcStore::list_namespaces`] is
/// scoped to one namespace and never reads or writes another's rows.
#[async_trait]
pub trait TrackingStore: LoggedModelStore + GcStore + Send + Sync + 'static {
    /// Creates the namespace and its default experiment "0" if missing.
    async fn ensure_namespace(&self, namespace: &Namespace, now: i64) -> Result<(), ApiError>;
    /// Tells whether the namespace exists.
    async fn namespace_exists(&self, namespace: &Namespace) -> Result<bool, ApiError>;
    /// Creates an experiment and returns its id.
    async fn create_experiment(
        &self,
        namespace: &Namespace,
        experiment: NewExperiment,
    ) -> Result<i64, ApiError>;
    /// Gets an experiment by id.
    async fn get_experiment(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
    ) -> Result<Option<pb::Experiment>, ApiError>;
    /// Gets an experiment by name.
    async fn get_experiment_by_name(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<Option<pb::Experiment>, ApiError>;
    /// Returns up to `limit + 1` experiments (the extra one tells there is a next page).
    async fn search_experiments(
        &self,
        namespace: &Namespace,
        query: &ExperimentQuery,
    ) -> Result<Vec<pb::Experiment>, ApiError>;
    /// Renames an active experiment.
    async fn rename_experiment(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
        new_name: &str,
        now: i64,
    ) -> Result<(), ApiError>;
    /// Moves an experiment and its runs to `stage`.
    async fn set_experiment_lifecycle(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
        stage: Lifecycle,
        now: i64,
    ) -> Result<(), ApiError>;
    /// Sets an experiment tag on an active experiment.
    async fn set_experiment_tag(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
        tag: KeyValue,
    ) -> Result<(), ApiError>;
    /// Deletes an experiment tag.
    async fn delete_experiment_tag(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
        key: &str,
    ) -> Result<(), ApiError>;
    /// Creates a run in an active experiment.
    async fn create_run(&self, namespace: &Namespace, run: NewRun) -> Result<pb::Run, ApiError>;
    /// Gets a full run.
    async fn get_run(
        &self,
        namespace: &Namespace,
        run_id: &str,
    ) -> Result<Option<pb::Run>, ApiError>;
    /// Updates an active run and returns its info.
    async fn update_run(
        &self,
        namespace: &Namespace,
        run_id: &str,
        update: RunUpdate,
    ) -> Result<pb::RunInfo, ApiError>;
    /// Moves a run to `stage`.
    async fn set_run_lifecycle(
        &self,
        namespace: &Namespace,
        run_id: &str,
        stage: Lifecycle,
        now: i64,
    ) -> Result<(), ApiError>;
    /// Writes a batch to an active run in one transaction.
    async fn log_batch(
        &self,
        namespace: &Namespace,
        run_id: &str,
        batch: Batch,
    ) -> Result<(), ApiError>;
    /// Deletes a run tag; 404 when the tag does not exist.
    async fn delete_tag(
        &self,
        namespace: &Namespace,
        run_id: &str,
        key: &str,
    ) -> Result<(), ApiError>;
    /// Links datasets and models to an active run.
    async fn log_inputs(
        &self,
        namespace: &Namespace,
        run_id: &str,
        datasets: Vec<pb::DatasetInput>,
        models: Vec<pb::ModelInput>,
    ) -> Result<(), ApiError>;
    /// Links output models to an active run.
    async fn log_outputs(
        &self,
        namespace: &Namespace,
        run_id: &str,
        models: Vec<pb::ModelOutput>,
    ) -> Result<(), ApiError>;
    /// Returns up to `limit` points after `after`, in (step, timestamp,
    /// value) order; [`HistoryCursor::after`] a point resumes after it.
    /// `None` when the run does not exist in the namespace.
    async fn metric_history(
        &self,
        namespace: &Namespace,
        run_id: &str,
        key: &str,
        after: Option<HistoryCursor>,
        limit: i64,
    ) -> Result<Option<Vec<pb::Metric>>, ApiError>;
    /// Returns the distinct steps of a metric within an optional step range.
    async fn metric_steps(
        &self,
        namespace: &Namespace,
        run_id: &str,
        key: &str,
        range: Option<(i64, i64)>,
    ) -> Result<Vec<i64>, ApiError>;
    /// Returns all points of a metric at the given steps.
    async fn metric_points_at_steps(
        &self,
        namespace: &Namespace,
        run_id: &str,
        key: &str,
        steps: &[i64],
    ) -> Result<Vec<pb::Metric>, ApiError>;
    /// Returns up to `limit + 1` runs.
    async fn search_runs(
        &self,
        namespace: &Namespace,
        query: &RunQuery,
    ) -> Result<Vec<pb::Run>, ApiError>;
    /// Lists distinct (experiment, dataset, context) triples.
    async fn search_datasets(
        &self,
        namespace: &Namespace,
        experiment_ids: &[i64],
    ) -> Result<Vec<pb::DatasetSummary>, ApiError>;
}
