//! MLflow 3 logged models in the SQL store: the [`LoggedModelStore`] seam and
//! its implementation for [`SqlTrackingStore`] (Postgres and SQLite, `$N`
//! placeholders, SQL both accept). Every statement filters on the namespace.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use quiver_common::{ApiError, Namespace};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::tracking::v1 as pb;
use quiver_search::Comparison;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::rows::{db_error, lifecycle_from_str, metric_value};
use super::{Lifecycle, MetricPoint, SqlTrackingStore, logged_model_search};
use quiver_common::sql::{Arg, SqlBuilder};

/// Ids per `IN (...)` list when loading model details.
const IN_CHUNK: usize = 500;
/// Rows per multi-row INSERT (a few bound values each; far below SQLite's limit).
const INSERT_CHUNK: usize = 500;

/// The columns of `logged_models lm` that become a [`pb::LoggedModelInfo`].
pub(crate) const LOGGED_MODEL_COLUMNS: &str = "lm.model_id, lm.experiment_id, lm.name, lm.artifact_location, \
     lm.creation_timestamp_ms, lm.last_updated_timestamp_ms, lm.status, lm.lifecycle_stage, \
     lm.model_type, lm.source_run_id, lm.status_message";

/// A new logged model, validated.
#[derive(Debug, Clone)]
pub struct NewLoggedModel {
    /// Generated id, "m-" + 32 hex.
    pub model_id: String,
    /// Experiment it belongs to (must be active).
    pub experiment_id: i64,
    /// Final name (already generated when the client gave none).
    pub name: String,
    /// Model type, if any.
    pub model_type: Option<String>,
    /// Run that produced the model, if any.
    pub source_run_id: Option<String>,
    /// Initial params (unique keys).
    pub params: Vec<KeyValue>,
    /// Initial tags (unique keys).
    pub tags: Vec<KeyValue>,
    /// Creation time (ms).
    pub now: i64,
}

/// Scopes metric filters to a dataset (digest optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetScope {
    /// Dataset name.
    pub name: String,
    /// Dataset digest, if given.
    pub digest: Option<String>,
}

/// What a logged-model search orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedModelOrderField {
    /// A column, by canonical attribute name (`creation_timestamp`, `name`, ...).
    Attribute(String),
    /// The latest value (by timestamp, then step) of a model metric,
    /// optionally on one dataset.
    Metric {
        /// Metric key.
        key: String,
        /// Dataset name, if scoped.
        dataset_name: Option<String>,
        /// Dataset digest, if scoped.
        dataset_digest: Option<String>,
    },
}

/// One order key of a logged-model search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedModelOrder {
    /// The field.
    pub field: LoggedModelOrderField,
    /// Direction.
    pub ascending: bool,
}

/// A parsed logged-model search.
#[derive(Debug, Clone)]
pub struct LoggedModelQuery {
    /// Experiments to search (non-empty).
    pub experiment_ids: Vec<i64>,
    /// Conjunction of comparisons (`Target::LoggedModels`).
    pub filter: Vec<Comparison>,
    /// Datasets that scope metric filters; with no metric filter, models
    /// must have a metric on one of them.
    pub datasets: Vec<DatasetScope>,
    /// Order keys (tiebreakers are added by the store).
    pub order_by: Vec<LoggedModelOrder>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// Persistence of logged models. Every method is scoped to one namespace.
#[async_trait]
pub trait LoggedModelStore: Send + Sync + 'static {
    /// Creates a model in an active experiment.
    async fn create_logged_model(
        &self,
        namespace: &Namespace,
        model: NewLoggedModel,
    ) -> Result<pb::LoggedModel, ApiError>;
    /// Gets a model; deleted ones only with `allow_deleted`.
    async fn get_logged_model(
        &self,
        namespace: &Namespace,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<Option<pb::LoggedModel>, ApiError>;
    /// Sets a model's status and bumps its last-updated time.
    async fn finalize_logged_model(
        &self,
        namespace: &Namespace,
        model_id: &str,
        status: pb::LoggedModelStatus,
        now: i64,
    ) -> Result<(), ApiError>;
    /// Soft-deletes a model.
    async fn delete_logged_model(
        &self,
        namespace: &Namespace,
        model_id: &str,
        now: i64,
    ) -> Result<(), ApiError>;
    /// Upserts tags (unique keys).
    async fn set_logged_model_tags(
        &self,
        namespace: &Namespace,
        model_id: &str,
        tags: Vec<KeyValue>,
    ) -> Result<(), ApiError>;
    /// Deletes a tag; 404 when the model or the tag does not exist.
    async fn delete_logged_model_tag(
        &self,
        namespace: &Namespace,
        model_id: &str,
        key: &str,
    ) -> Result<(), ApiError>;
    /// Logs params (unique keys; the same value again is a no-op).
    async fn log_logged_model_params(
        &self,
        namespace: &Namespace,
        model_id: &str,
        params: Vec<KeyValue>,
    ) -> Result<(), ApiError>;
    /// Returns up to `limit + 1` active models.
    async fn search_logged_models(
        &self,
        namespace: &Namespace,
        query: &LoggedModelQuery,
    ) -> Result<Vec<pb::LoggedModel>, ApiError>;
}

/// MLflow's 404 for a missing (or deleted) logged model.
pub(crate) fn logged_model_not_found(model_id: &str) -> ApiError {
    ApiError::not_found(format!("Logged model with ID '{model_id}' not found."))
}

/// Returns the stored (and MLflow JSON) name of a status.
pub fn status_to_str(status: pb::LoggedModelStatus) -> &'static str {
    match status {
        pb::LoggedModelStatus::Unspecified => "LOGGED_MODEL_STATUS_UNSPECIFIED",
        pb::LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
        pb::LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
        pb::LoggedModelStatus::UploadFailed => "LOGGED_MODEL_UPLOAD_FAILED",
    }
}

/// Parses a stored (MLflow) status name.
pub fn status_from_str(status: &str) -> Option<pb::LoggedModelStatus> {
    match status {
        "LOGGED_MODEL_STATUS_UNSPECIFIED" => Some(pb::LoggedModelStatus::Unspecified),
        "LOGGED_MODEL_PENDING" => Some(pb::LoggedModelStatus::Pending),
        "LOGGED_MODEL_READY" => Some(pb::LoggedModelStatus::Ready),
        "LOGGED_MODEL_UPLOAD_FAILED" => Some(pb::LoggedModelStatus::UploadFailed),
        _ => None,
    }
}

pub(crate) fn logged_model_info(row: &AnyRow) -> Result<pb::LoggedModelInfo, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let stage: String = row.try_get("lifecycle_stage")?;
    let opt = |column: &str| -> Result<String, sqlx::Error> {
        Ok(row
            .try_get::<Option<String>, _>(column)?
            .unwrap_or_default())
    };
    Ok(pb::LoggedModelInfo {
        model_id: row.try_get("model_id")?,
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        name: row.try_get("name")?,
        creation_timestamp_ms: row.try_get("creation_timestamp_ms")?,
        last_updated_timestamp_ms: row.try_get("last_updated_timestamp_ms")?,
        artifact_uri: row.try_get("artifact_location")?,
        status: status_from_str(&status).unwrap_or(pb::LoggedModelStatus::Unspecified) as i32,
        creator_id: None,
        model_type: opt("model_type")?,
        source_run_id: opt("source_run_id")?,
        status_message: opt("status_message")?,
        tags: Vec::new(),
        registrations: Vec::new(),
        lifecycle_stage: lifecycle_from_str(&stage) as i32,
    })
}

/// The model versions registered from a logged model, as the client records
/// them in tag `mlflow.modelVersions` (a JSON list of `{name, version}`).
fn registrations(tags: &[KeyValue]) -> Vec<pb::LoggedModelRegistration> {
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        version: serde_json::Value,
    }
    let Some(tag) = tags.iter().find(|tag| tag.key == "mlflow.modelVersions") else {
        return Vec::new();
    };
    let entries: Vec<Entry> = serde_json::from_str(&tag.value).unwrap_or_default();
    entries
        .into_iter()
        .filter_map(|entry| {
            let version = match entry.version {
                serde_json::Value::String(text) => text,
                serde_json::Value::Number(number) => number.to_string(),
                _ => return None,
            };
            Some(pb::LoggedModelRegistration {
                name: entry.name,
                version,
            })
        })
        .collect()
}

fn key_value(row: &AnyRow) -> Result<(String, KeyValue), ApiError> {
    Ok((
        row.try_get("model_id").map_err(db_error)?,
        KeyValue {
            key: row.try_get("key").map_err(db_error)?,
            value: row.try_get("value").map_err(db_error)?,
        },
    ))
}

/// Records the points of a log-batch that carry a `model_id` (called inside
/// the batch's transaction). Duplicates of a stored point are ignored.
pub(crate) async fn insert_model_metrics(
    tx: &mut Transaction<'static, Any>,
    namespace: &Namespace,
    run_key: i64,
    metrics: &[MetricPoint],
) -> Result<(), ApiError> {
    let points: Vec<(&MetricPoint, &String)> = metrics
        .iter()
        .filter_map(|m| m.model_id.as_ref().map(|id| (m, id)))
        .collect();
    for chunk in points.chunks(INSERT_CHUNK) {
        let mut sql = SqlBuilder::new();
        sql.push(
            "INSERT INTO logged_model_metrics (namespace, model_id, key, timestamp, step, run_key, \
             value, is_nan, dataset_name, dataset_digest) VALUES ",
        );
        for (i, (m, model_id)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let values = [
                sql.bind(Arg::Str(namespace.to_string())),
                sql.bind(Arg::Str((*model_id).clone())),
                sql.bind(Arg::Str(m.key.clone())),
                sql.bind(Arg::I64(m.timestamp)),
                sql.bind(Arg::I64(m.step)),
                sql.bind(Arg::I64(run_key)),
                sql.bind(Arg::F64(m.value)),
                sql.bind(Arg::I64(i64::from(m.is_nan))),
                sql.bind(Arg::Str(m.dataset_name.clone().unwrap_or_default())),
                sql.bind(Arg::Str(m.dataset_digest.clone().unwrap_or_default())),
            ];
            sql.push(&format!("({})", values.join(", ")));
        }
        sql.push(" ON CONFLICT DO NOTHING");
        sql.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Fails with the 404 unless the model exists in the namespace (deleted or not,
/// as MLflow's writes do).
async fn existing_model(
    tx: &mut Transaction<'static, Any>,
    namespace: &Namespace,
    model_id: &str,
) -> Result<(), ApiError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT model_id FROM logged_models WHERE namespace = $1 AND model_id = $2",
    )
    .bind(namespace.as_str())
    .bind(model_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    found
        .map(|_| ())
        .ok_or_else(|| logged_model_not_found(model_id))
}

/// Returns the artifact location of an active experiment; 404 when missing,
/// 400 when deleted (MLflow's `_check_experiment_is_active`).
async fn active_experiment_location(
    tx: &mut Transaction<'static, Any>,
    namespace: &Namespace,
    experiment_id: i64,
) -> Result<String, ApiError> {
    let row = sqlx::query(
        "SELECT lifecycle_stage, artifact_location FROM experiments WHERE namespace = $1 AND experiment_id = $2",
    )
    .bind(namespace.as_str())
    .bind(experiment_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?
    .ok_or_else(|| super::sql::experiment_not_found(experiment_id))?;
    let stage: String = row.try_get("lifecycle_stage").map_err(db_error)?;
    if stage != Lifecycle::Active.as_str() {
        return Err(ApiError::invalid(format!(
            "The experiment {experiment_id} must be in the 'active' state. Current state is {stage}."
        )));
    }
    row.try_get("artifact_location").map_err(db_error)
}

/// Inserts key/value rows into `logged_model_params` or `logged_model_tags`.
async fn insert_key_values(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    namespace: &Namespace,
    model_id: &str,
    entries: &[KeyValue],
    on_conflict: &str,
) -> Result<(), ApiError> {
    for chunk in entries.chunks(INSERT_CHUNK) {
        let mut sql = SqlBuilder::new();
        sql.push(&format!(
            "INSERT INTO {table} (namespace, model_id, key, value) VALUES "
        ));
        for (i, entry) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let values = [
                sql.bind(Arg::Str(namespace.to_string())),
                sql.bind(Arg::Str(model_id.to_string())),
                sql.bind(Arg::Str(entry.key.clone())),
                sql.bind(Arg::Str(entry.value.clone())),
            ];
            sql.push(&format!("({})", values.join(", ")));
        }
        sql.push(&format!(
            " ON CONFLICT (namespace, model_id, key) {on_conflict}"
        ));
        sql.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Logs params; a key already stored with another value is a 400 and rolls back.
async fn insert_params(
    tx: &mut Transaction<'static, Any>,
    namespace: &Namespace,
    model_id: &str,
    params: &[KeyValue],
) -> Result<(), ApiError> {
    insert_key_values(
        tx,
        "logged_model_params",
        namespace,
        model_id,
        params,
        "DO NOTHING",
    )
    .await?;
    for chunk in params.chunks(IN_CHUNK) {
        let mut sql = SqlBuilder::new();
        let ns = sql.bind(Arg::Str(namespace.to_string()));
        let id = sql.bind(Arg::Str(model_id.to_string()));
        let list = sql.bind_list(chunk.iter().map(|p| Arg::Str(p.key.clone())));
        sql.push(&format!(
            "SELECT model_id, key, value FROM logged_model_params \
             WHERE namespace = {ns} AND model_id = {id} AND key IN ({list})"
        ));
        let stored: HashMap<String, String> = sql
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| key_value(row).map(|(_, kv)| (kv.key, kv.value)))
            .collect::<Result<_, _>>()?;
        for param in chunk {
            if let Some(old) = stored.get(&param.key).filter(|old| **old != param.value) {
                return Err(ApiError::invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with value='{old}' for logged model ID='{model_id}'. Attempted logging new value '{}'.",
                    param.key, param.value
                )));
            }
        }
    }
    Ok(())
}

/// Last value wins for a key repeated in one request.
fn unique(entries: Vec<KeyValue>) -> Vec<KeyValue> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries {
        map.insert(entry.key, entry.value);
    }
    map.into_iter()
        .map(|(key, value)| KeyValue { key, value })
        .collect()
}

impl SqlTrackingStore {
    /// Loads tags, params and metric points for model infos.
    async fn assemble_models(
        &self,
        namespace: &Namespace,
        infos: Vec<pb::LoggedModelInfo>,
    ) -> Result<Vec<pb::LoggedModel>, ApiError> {
        let ids: Vec<String> = infos.iter().map(|info| info.model_id.clone()).collect();
        let mut tags: HashMap<String, Vec<KeyValue>> = HashMap::new();
        let mut params: HashMap<String, Vec<KeyValue>> = HashMap::new();
        let mut metrics: HashMap<String, Vec<pb::Metric>> = HashMap::new();
        for chunk in ids.chunks(IN_CHUNK) {
            for (table, target) in [
                ("logged_model_tags", &mut tags),
                ("logged_model_params", &mut params),
            ] {
                let mut sql = SqlBuilder::new();
                let ns = sql.bind(Arg::Str(namespace.to_string()));
                let list = sql.bind_list(chunk.iter().map(|id| Arg::Str(id.clone())));
                sql.push(&format!(
                    "SELECT model_id, key, value FROM {table} \
                     WHERE namespace = {ns} AND model_id IN ({list}) ORDER BY model_id, key"
                ));
                for row in sql.fetch_all(&self.database().reader).await? {
                    let (model_id, kv) = key_value(&row)?;
                    target.entry(model_id).or_default().push(kv);
                }
            }
            let mut sql = SqlBuilder::new();
            let ns = sql.bind(Arg::Str(namespace.to_string()));
            let list = sql.bind_list(chunk.iter().map(|id| Arg::Str(id.clone())));
            sql.push(&format!(
                "SELECT mm.model_id, mm.key, mm.timestamp, mm.step, mm.value, mm.is_nan, \
                 mm.dataset_name, mm.dataset_digest, r.run_uuid \
                 FROM logged_model_metrics mm JOIN runs r ON r.run_key = mm.run_key \
                 WHERE mm.namespace = {ns} AND mm.model_id IN ({list}) \
                 ORDER BY mm.model_id, mm.key, mm.dataset_name, mm.dataset_digest, mm.step, mm.timestamp, r.run_uuid"
            ));
            for row in sql.fetch_all(&self.database().reader).await? {
                let get_str = |column: &str| row.try_get::<String, _>(column).map_err(db_error);
                let get_i64 = |column: &str| row.try_get::<i64, _>(column).map_err(db_error);
                let model_id = get_str("model_id")?;
                let value: f64 = row.try_get("value").map_err(db_error)?;
                metrics
                    .entry(model_id.clone())
                    .or_default()
                    .push(pb::Metric {
                        key: get_str("key")?,
                        value: metric_value(value, get_i64("is_nan")?),
                        timestamp: get_i64("timestamp")?,
                        step: get_i64("step")?,
                        dataset_name: get_str("dataset_name")?,
                        dataset_digest: get_str("dataset_digest")?,
                        model_id,
                        run_id: get_str("run_uuid")?,
                    });
            }
        }
        Ok(infos
            .into_iter()
            .map(|mut info| {
                info.tags = tags.remove(&info.model_id).unwrap_or_default();
                info.registrations = registrations(&info.tags);
                let data = pb::LoggedModelData {
                    params: params.remove(&info.model_id).unwrap_or_default(),
                    metrics: metrics.remove(&info.model_id).unwrap_or_default(),
                };
                pb::LoggedModel {
                    info: Some(info),
                    data: Some(data),
                }
            })
            .collect())
    }
}

#[async_trait]
impl LoggedModelStore for SqlTrackingStore {
    async fn create_logged_model(
        &self,
        namespace: &Namespace,
        model: NewLoggedModel,
    ) -> Result<pb::LoggedModel, ApiError> {
        let mut tx = self.database().writer.begin().await.map_err(db_error)?;
        let location = active_experiment_location(&mut tx, namespace, model.experiment_id).await?;
        let artifact_uri = format!(
            "{}/models/{}/artifacts",
            location.trim_end_matches('/'),
            model.model_id
        );
        let status = status_to_str(pb::LoggedModelStatus::Pending);
        sqlx::query(
            "INSERT INTO logged_models (namespace, model_id, experiment_id, name, artifact_location, \
             creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, 'active', $8, $9)",
        )
        .bind(namespace.as_str())
        .bind(&model.model_id)
        .bind(model.experiment_id)
        .bind(&model.name)
        .bind(&artifact_uri)
        .bind(model.now)
        .bind(status)
        .bind(model.model_type.clone())
        .bind(model.source_run_id.clone())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let params = unique(model.params);
        let tags = unique(model.tags);
        insert_key_values(
            &mut tx,
            "logged_model_params",
            namespace,
            &model.model_id,
            &params,
            "DO NOTHING",
        )
        .await?;
        insert_key_values(
            &mut tx,
            "logged_model_tags",
            namespace,
            &model.model_id,
            &tags,
            "DO NOTHING",
        )
        .await?;
        tx.commit().await.map_err(db_error)?;
        // A new model has no metrics yet: answer without re-reading.
        Ok(pb::LoggedModel {
            info: Some(pb::LoggedModelInfo {
                model_id: model.model_id,
                experiment_id: model.experiment_id.to_string(),
                name: model.name,
                creation_timestamp_ms: model.now,
                last_updated_timestamp_ms: model.now,
                artifact_uri,
                status: pb::LoggedModelStatus::Pending as i32,
                creator_id: None,
                model_type: model.model_type.unwrap_or_default(),
                source_run_id: model.source_run_id.unwrap_or_default(),
                status_message: String::new(),
                tags,
                registrations: Vec::new(),
                lifecycle_stage: pb::LifecycleStage::Active as i32,
            }),
            data: Some(pb::LoggedModelData {
                params,
                metrics: Vec::new(),
            }),
        })
    }

    async fn get_logged_model(
        &self,
        namespace: &Namespace,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<Option<pb::LoggedModel>, ApiError> {
        let mut sql = SqlBuilder::new();
        let ns = sql.bind(Arg::Str(namespace.to_string()));
        let id = sql.bind(Arg::Str(model_id.to_string()));
        let visible = if allow_deleted {
            String::new()
        } else {
            format!(" AND lm.lifecycle_stage = '{}'", Lifecycle::Active.as_str())
        };
        sql.push(&format!(
            "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models lm \
             WHERE lm.namespace = {ns} AND lm.model_id = {id}{visible}"
        ));
        let Some(row) = sql.fetch_optional(&self.database().reader).await? else {
            return Ok(None);
        };
        let info = logged_model_info(&row).map_err(db_error)?;
        Ok(self.assemble_models(namespace, vec![info]).await?.pop())
    }

    async fn finalize_logged_model(
        &self,
        namespace: &Namespace,
        model_id: &str,
        status: pb::LoggedModelStatus,
        now: i64,
    ) -> Result<(), ApiError> {
        let updated = sqlx::query(
            "UPDATE logged_models SET status = $1, last_updated_timestamp_ms = $2 \
             WHERE namespace = $3 AND model_id = $4",
        )
        .bind(status_to_str(status))
        .bind(now)
        .bind(namespace.as_str())
        .bind(model_id)
        .execute(&self.database().writer)
        .await
        .map_err(db_error)?
        .rows_affected();
        if updated == 0 {
            return Err(logged_model_not_found(model_id));
        }
        Ok(())
    }

    async fn delete_logged_model(
        &self,
        namespace: &Namespace,
        model_id: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let updated = sqlx::query(
            "UPDATE logged_models SET lifecycle_stage = $1, last_updated_timestamp_ms = $2 \
             WHERE namespace = $3 AND model_id = $4",
        )
        .bind(Lifecycle::Deleted.as_str())
        .bind(now)
        .bind(namespace.as_str())
        .bind(model_id)
        .execute(&self.database().writer)
        .await
        .map_err(db_error)?
        .rows_affected();
        if updated == 0 {
            return Err(logged_model_not_found(model_id));
        }
        Ok(())
    }

    async fn set_logged_model_tags(
        &self,
        namespace: &Namespace,
        model_id: &str,
        tags: Vec<KeyValue>,
    ) -> Result<(), ApiError> {
        let mut tx = self.database().writer.begin().await.map_err(db_error)?;
        existing_model(&mut tx, namespace, model_id).await?;
        insert_key_values(
            &mut tx,
            "logged_model_tags",
            namespace,
            model_id,
            &unique(tags),
            "DO UPDATE SET value = excluded.value",
        )
        .await?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_logged_model_tag(
        &self,
        namespace: &Namespace,
        model_id: &str,
        key: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.database().writer.begin().await.map_err(db_error)?;
        existing_model(&mut tx, namespace, model_id).await?;
        let deleted = sqlx::query(
            "DELETE FROM logged_model_tags WHERE namespace = $1 AND model_id = $2 AND key = $3",
        )
        .bind(namespace.as_str())
        .bind(model_id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if deleted == 0 {
            return Err(ApiError::not_found(format!(
                "No tag with key '{key}' found for model with ID '{model_id}'."
            )));
        }
        tx.commit().await.map_err(db_error)
    }

    async fn log_logged_model_params(
        &self,
        namespace: &Namespace,
        model_id: &str,
        params: Vec<KeyValue>,
    ) -> Result<(), ApiError> {
        let mut tx = self.database().writer.begin().await.map_err(db_error)?;
        existing_model(&mut tx, namespace, model_id).await?;
        insert_params(&mut tx, namespace, model_id, &unique(params)).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn search_logged_models(
        &self,
        namespace: &Namespace,
        query: &LoggedModelQuery,
    ) -> Result<Vec<pb::LoggedModel>, ApiError> {
        if query.experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = logged_model_search::search(namespace, query)?;
        let infos = sql
            .fetch_all(&self.database().reader)
            .await?
            .iter()
            .map(logged_model_info)
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)?;
        self.assemble_models(namespace, infos).await
    }
}
