//! The SQL tracking store: one implementation over `sqlx::Any` for Postgres and
//! SQLite. Statements use `$N` placeholders and SQL both dialects accept.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use quiver_common::db::{Database, Dialect, StatisticsRefresher};
use quiver_common::{ApiError, Namespace};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::tracking::v1 as pb;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::group_commit::GroupCommit;
use super::history;
use super::rows::{self, EXPERIMENT_COLUMNS, RUN_COLUMNS, db_error, is_unique_violation};
use super::search_sql;
use super::{
    Batch, ExperimentQuery, HistoryCursor, Lifecycle, NewExperiment, NewRun, RunQuery, RunUpdate,
    TrackingStore,
};
use quiver_common::fetch_typed;
use quiver_common::sql::{Arg, SqlBuilder, key_set_condition, key_set_value};

/// Rows per multi-row INSERT (SQLite allows 32,766 bound values per statement).
const INSERT_CHUNK: usize = 500;
/// Keys per `IN (...)` list when loading run details.
const IN_CHUNK: usize = 900;

/// A row of the inputs/outputs read of a run page: `(kind, run_key, order,
/// tags_json | model_id, dataset columns...)`, kind 0 = dataset input,
/// 1 = model input, 2 = model output (order = its step).
type InputRow = (
    i64,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The tracking store over a [`Database`].
#[derive(Debug, Clone)]
pub struct SqlTrackingStore {
    db: Database,
    /// Refreshes planner statistics after bulk run and metric writes.
    statistics: StatisticsRefresher,
    /// Coalesces concurrent small metric writes into shared transactions.
    group_commit: GroupCommit,
}

impl SqlTrackingStore {
    /// Creates a store over an opened (and migrated) database.
    pub fn new(db: Database) -> SqlTrackingStore {
        SqlTrackingStore {
            db,
            statistics: StatisticsRefresher::new(
                // Not the history (`metric_chunks`): it is only read by key,
                // and sampling a table of 10^8 points took half a second per
                // ANALYZE; autovacuum keeps up with an insert-only table.
                // latest_metrics is also vacuumed: every log-metric rewrites a
                // row (never a HOT update, `value` is indexed), and a burst of
                // them left run pages scanning ~100k dead versions (116 ms per
                // page instead of 6) until autovacuum came by a minute later.
                &[
                    "ANALYZE runs, params, tags",
                    "VACUUM (ANALYZE) latest_metrics",
                ],
            ),
            group_commit: GroupCommit::default(),
        }
    }

    /// Counts writes; see [`StatisticsRefresher`].
    fn note_writes(&self, count: u64) {
        self.statistics.note_writes(&self.db, count);
    }

    /// Returns the underlying database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>, ApiError> {
        self.db.writer.begin().await.map_err(db_error)
    }

    /// The history chunks of (run, key) that hold steps in `start..=end`:
    /// `(chunk, data)`.
    async fn chunks_within(
        &self,
        run_key: i64,
        key: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, ApiError> {
        let mut sql = SqlBuilder::new();
        let rk = sql.bind(Arg::I64(run_key));
        let k = sql.bind(Arg::Str(key.to_string()));
        let s = sql.bind(Arg::I64(start));
        let e = sql.bind(Arg::I64(end));
        sql.push(&format!(
            "SELECT chunk, data FROM metric_chunks WHERE run_key = {rk} AND key = {k} \
             AND first_step <= {e} AND last_step >= {s}"
        ));
        sql.fetch_as(&self.db).await
    }

    async fn experiment_tags(
        &self,
        namespace: &Namespace,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<KeyValue>>, ApiError> {
        let mut tags: HashMap<i64, Vec<KeyValue>> = HashMap::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut sql = SqlBuilder::new();
            let ns = sql.bind(Arg::Str(namespace.to_string()));
            let list = sql.bind_list(chunk.iter().map(|id| Arg::I64(*id)));
            sql.push(&format!(
                "SELECT experiment_id, key, value FROM experiment_tags \
                 WHERE namespace = {ns} AND experiment_id IN ({list}) ORDER BY experiment_id, key"
            ));
            for row in sql.fetch_all(&self.db.reader).await? {
                let id: i64 = row.try_get("experiment_id").map_err(db_error)?;
                tags.entry(id).or_default().push(KeyValue {
                    key: row.try_get("key").map_err(db_error)?,
                    value: row.try_get("value").map_err(db_error)?,
                });
            }
        }
        Ok(tags)
    }

    async fn with_experiment_tags(
        &self,
        namespace: &Namespace,
        mut experiments: Vec<pb::Experiment>,
    ) -> Result<Vec<pb::Experiment>, ApiError> {
        let ids: Vec<i64> = experiments
            .iter()
            .filter_map(|e| e.experiment_id.parse().ok())
            .collect();
        let mut tags = self.experiment_tags(namespace, &ids).await?;
        for experiment in &mut experiments {
            let id: i64 = experiment.experiment_id.parse().unwrap_or_default();
            experiment.tags = tags.remove(&id).unwrap_or_default();
            experiment.namespace = namespace.to_string();
        }
        Ok(experiments)
    }

    async fn fetch_experiment(
        &self,
        namespace: &Namespace,
        condition: &str,
        arg: Arg,
    ) -> Result<Option<pb::Experiment>, ApiError> {
        let mut sql = SqlBuilder::new();
        let ns = sql.bind(Arg::Str(namespace.to_string()));
        let value = sql.bind(arg);
        sql.push(&format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.namespace = {ns} AND {condition} = {value}"
        ));
        let Some(row) = sql.fetch_optional(&self.db.reader).await? else {
            return Ok(None);
        };
        let experiment = rows::experiment(&row).map_err(db_error)?;
        Ok(self
            .with_experiment_tags(namespace, vec![experiment])
            .await?
            .pop())
    }

    /// Loads params, tags, latest metrics, inputs and outputs for runs.
    async fn assemble_runs(
        &self,
        infos: Vec<(i64, pb::RunInfo)>,
    ) -> Result<Vec<pb::Run>, ApiError> {
        let keys: Vec<i64> = infos.iter().map(|(key, _)| *key).collect();
        let mut data: HashMap<i64, pb::Run> = HashMap::with_capacity(keys.len());
        if !keys.is_empty() {
            self.load_run_details(&keys, &mut data).await?;
        }
        Ok(infos
            .into_iter()
            .map(|(key, info)| {
                let mut run = data.remove(&key).unwrap_or_default();
                run.info = Some(info);
                run.data.get_or_insert_with(Default::default);
                run.inputs.get_or_insert_with(Default::default);
                run.outputs.get_or_insert_with(Default::default);
                run
            })
            .collect())
    }

    /// Loads params, tags, latest metrics, inputs and outputs of `keys` into
    /// `runs`. Four independent reads, issued together (each on its own pooled
    /// connection, typed on Postgres), so a page costs the slowest of them.
    async fn load_run_details(
        &self,
        keys: &[i64],
        runs: &mut HashMap<i64, pb::Run>,
    ) -> Result<(), ApiError> {
        let dialect = self.db.dialect;
        let set = key_set_value(dialect, keys);
        let select = |columns: &str, from: &str, key_column: &str, order: &str| {
            format!(
                "SELECT {columns} FROM {from} WHERE {} ORDER BY {order}",
                key_set_condition(dialect, key_column, "$1")
            )
        };
        let db = &self.db;
        let (params, tags, metrics, inputs) = tokio::try_join!(
            async {
                fetch_typed!(
                    db,
                    (i64, String, String),
                    select("run_key, key, value", "params", "run_key", "run_key, key"),
                    &set
                )
            },
            async {
                fetch_typed!(
                    db,
                    (i64, String, String),
                    select("run_key, key, value", "tags", "run_key", "run_key, key"),
                    &set
                )
            },
            async {
                fetch_typed!(
                    db,
                    (i64, String, f64, i64, i64, i64),
                    select(
                        "run_key, key, value, timestamp, step, is_nan",
                        "latest_metrics",
                        "run_key",
                        "run_key, key"
                    ),
                    &set
                )
            },
            // Inputs and outputs, rare, share one statement.
            async {
                let cond = |column: &str, p: &str| key_set_condition(dialect, column, p);
                fetch_typed!(
                    db,
                    InputRow,
                    format!(
                        "SELECT CAST(0 AS BIGINT) AS kind, i.run_key, i.position AS ord, i.tags_json AS a, \
                           d.name AS b, d.digest AS c, d.source_type AS d, d.source AS e, \
                           d.schema AS f, d.profile AS g \
                         FROM dataset_inputs i JOIN datasets d ON d.dataset_key = i.dataset_key WHERE {} \
                         UNION ALL SELECT CAST(1 AS BIGINT), run_key, CAST(0 AS BIGINT), model_id, \
                           NULL, NULL, NULL, NULL, NULL, NULL FROM model_inputs WHERE {} \
                         UNION ALL SELECT CAST(2 AS BIGINT), run_key, step, model_id, \
                           NULL, NULL, NULL, NULL, NULL, NULL FROM model_outputs WHERE {} \
                         ORDER BY 1, 2, 3, 4",
                        cond("i.run_key", "$1"),
                        cond("run_key", "$2"),
                        cond("run_key", "$3"),
                    ),
                    &set,
                    &set,
                    &set
                )
            },
        )
        .map_err(db_error)?;
        fn run(runs: &mut HashMap<i64, pb::Run>, key: i64) -> Result<&mut pb::Run, ApiError> {
            Ok(runs.entry(key).or_default())
        }
        for (key, k, value) in params {
            run(runs, key)?
                .data
                .get_or_insert_with(Default::default)
                .params
                .push(KeyValue { key: k, value });
        }
        for (key, k, value) in tags {
            run(runs, key)?
                .data
                .get_or_insert_with(Default::default)
                .tags
                .push(KeyValue { key: k, value });
        }
        for (key, k, value, timestamp, step, is_nan) in metrics {
            run(runs, key)?
                .data
                .get_or_insert_with(Default::default)
                .metrics
                .push(pb::Metric {
                    key: k,
                    value: rows::metric_value(value, is_nan),
                    timestamp,
                    step,
                    ..Default::default()
                });
        }
        for (kind, key, ord, a, b, c, d, e, f, g) in inputs {
            let run = run(runs, key)?;
            match kind {
                0 => {
                    let tags: Vec<(String, String)> = serde_json::from_str(&a).unwrap_or_default();
                    run.inputs
                        .get_or_insert_with(Default::default)
                        .dataset_inputs
                        .push(pb::DatasetInput {
                            tags: tags
                                .into_iter()
                                .map(|(key, value)| KeyValue { key, value })
                                .collect(),
                            dataset: Some(pb::Dataset {
                                name: b.unwrap_or_default(),
                                digest: c.unwrap_or_default(),
                                source_type: d.unwrap_or_default(),
                                source: e.unwrap_or_default(),
                                schema: f.unwrap_or_default(),
                                profile: g.unwrap_or_default(),
                            }),
                        });
                }
                1 => run
                    .inputs
                    .get_or_insert_with(Default::default)
                    .model_inputs
                    .push(pb::ModelInput { model_id: a }),
                _ => run
                    .outputs
                    .get_or_insert_with(Default::default)
                    .model_outputs
                    .push(pb::ModelOutput {
                        model_id: a,
                        step: ord,
                    }),
            }
        }
        Ok(())
    }

    async fn run_key(&self, namespace: &Namespace, run_id: &str) -> Result<Option<i64>, ApiError> {
        sqlx::query_scalar("SELECT run_key FROM runs WHERE namespace = $1 AND run_uuid = $2")
            .bind(namespace.as_str())
            .bind(run_id)
            .fetch_optional(&self.db.reader)
            .await
            .map_err(db_error)
    }
}

fn get_i64(row: &AnyRow, column: &str) -> Result<i64, ApiError> {
    row.try_get(column).map_err(db_error)
}

fn key_value(row: &AnyRow) -> Result<KeyValue, ApiError> {
    Ok(KeyValue {
        key: row.try_get("key").map_err(db_error)?,
        value: row.try_get("value").map_err(db_error)?,
    })
}

pub(crate) fn run_not_found(run_id: &str) -> ApiError {
    ApiError::not_found(format!("Run with id={run_id} not found"))
}

pub(crate) fn experiment_not_found(experiment_id: i64) -> ApiError {
    ApiError::not_found(format!("No Experiment with id={experiment_id} exists"))
}

/// Locks nothing but checks, inside the write transaction, that the run exists
/// in the namespace and is active; returns its key.
async fn active_run_key(
    tx: &mut Transaction<'static, Any>,
    namespace: &Namespace,
    run_id: &str,
) -> Result<i64, ApiError> {
    let row = sqlx::query(
        "SELECT run_key, lifecycle_stage FROM runs WHERE namespace = $1 AND run_uuid = $2",
    )
    .bind(namespace.as_str())
    .bind(run_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?
    .ok_or_else(|| run_not_found(run_id))?;
    let stage: String = row.try_get("lifecycle_stage").map_err(db_error)?;
    check_active(run_id, &stage)?;
    get_i64(&row, "run_key")
}

/// The artifact URI of a new run under its experiment's location.
pub(crate) fn run_artifact_uri(location: &str, run_id: &str) -> String {
    format!("{}/{run_id}/artifacts", location.trim_end_matches('/'))
}

/// The answer to a create-run: a new run has no params, metrics or inputs,
/// so it is built from the request instead of re-read.
pub(crate) fn new_run_message(run: NewRun, artifact_uri: String, tags: Vec<KeyValue>) -> pb::Run {
    pb::Run {
        info: Some(pb::RunInfo {
            run_id: run.run_id,
            run_name: run.name,
            experiment_id: run.experiment_id.to_string(),
            user_id: run.user_id,
            status: pb::RunStatus::Running as i32,
            start_time: run.start_time,
            end_time: None,
            artifact_uri,
            lifecycle_stage: pb::LifecycleStage::Active as i32,
        }),
        data: Some(pb::RunData {
            tags,
            ..Default::default()
        }),
        inputs: Some(pb::RunInputs::default()),
        outputs: Some(pb::RunOutputs::default()),
    }
}

/// One create-run in its own transaction.
pub(crate) async fn create_run_alone(
    db: &Database,
    namespace: &Namespace,
    run: NewRun,
) -> Result<pb::Run, ApiError> {
    let mut tx = db.writer.begin().await.map_err(db_error)?;
    let location = active_experiment(&mut tx, namespace, run.experiment_id).await?;
    let artifact_uri = run_artifact_uri(&location, &run.run_id);
    let run_key: i64 = sqlx::query_scalar(
        "INSERT INTO runs (run_uuid, namespace, experiment_id, name, user_id, status, start_time, lifecycle_stage, artifact_uri) \
         VALUES ($1, $2, $3, $4, $5, 'RUNNING', $6, 'active', $7) RETURNING run_key",
    )
    .bind(&run.run_id)
    .bind(namespace.as_str())
    .bind(run.experiment_id)
    .bind(&run.name)
    .bind(&run.user_id)
    .bind(run.start_time)
    .bind(&artifact_uri)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    // The name is already set; the tag only mirrors it.
    let tags = upsert_run_tags(&mut tx, run_key, &run.tags, false).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(new_run_message(run, artifact_uri, tags))
}

/// One log-batch in its own transaction.
pub(crate) async fn write_batch(
    db: &Database,
    namespace: &Namespace,
    run_id: &str,
    batch: &Batch,
) -> Result<(), ApiError> {
    let mut tx = db.writer.begin().await.map_err(db_error)?;
    let run_key = active_run_key(&mut tx, namespace, run_id).await?;
    if !batch.params.is_empty() {
        insert_params(&mut tx, run_id, run_key, &batch.params, batch.single_param).await?;
    }
    if !batch.tags.is_empty() {
        upsert_run_tags(&mut tx, run_key, &batch.tags, true).await?;
    }
    if !batch.metrics.is_empty() {
        let keyed: Vec<(i64, &super::MetricPoint)> =
            batch.metrics.iter().map(|m| (run_key, m)).collect();
        append_metrics(&mut tx, db.dialect, &keyed, true).await?;
        if batch.metrics.iter().any(|m| m.model_id.is_some()) {
            super::logged_models::insert_model_metrics(&mut tx, namespace, run_key, &batch.metrics)
                .await?;
        }
    }
    tx.commit().await.map_err(db_error)
}

/// Writes need an active run.
pub(crate) fn check_active(run_id: &str, stage: &str) -> Result<(), ApiError> {
    if stage == Lifecycle::Active.as_str() {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is {stage}."
        )))
    }
}

async fn active_experiment(
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
    .ok_or_else(|| experiment_not_found(experiment_id))?;
    let stage: String = row.try_get("lifecycle_stage").map_err(db_error)?;
    check_experiment_active(experiment_id, &stage)?;
    row.try_get("artifact_location").map_err(db_error)
}

/// Runs are created only in active experiments.
pub(crate) fn check_experiment_active(experiment_id: i64, stage: &str) -> Result<(), ApiError> {
    if stage == Lifecycle::Active.as_str() {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "The experiment {experiment_id} must be in the 'active' state. Current state is {stage}."
        )))
    }
}

/// The last value of each tag key (a key repeated in one request: last wins),
/// in key order.
pub(crate) fn unique_tags(tags: &[KeyValue]) -> Vec<(&str, &str)> {
    let mut unique: BTreeMap<&str, &str> = BTreeMap::new();
    for tag in tags {
        unique.insert(&tag.key, &tag.value);
    }
    unique.into_iter().collect()
}

/// Upserts run tags (last value wins for a repeated key) and returns them
/// sorted by key. With `sync_name`, a `mlflow.runName` tag also renames the run.
async fn upsert_run_tags(
    tx: &mut Transaction<'static, Any>,
    run_key: i64,
    tags: &[KeyValue],
    sync_name: bool,
) -> Result<Vec<KeyValue>, ApiError> {
    let unique = unique_tags(tags);
    for chunk in unique.chunks(INSERT_CHUNK) {
        let mut sql = SqlBuilder::new();
        sql.push("INSERT INTO tags (run_key, key, value) VALUES ");
        for (i, (key, value)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let a = sql.bind(Arg::I64(run_key));
            let b = sql.bind(Arg::Str((*key).to_string()));
            let c = sql.bind(Arg::Str((*value).to_string()));
            sql.push(&format!("({a}, {b}, {c})"));
        }
        sql.push(" ON CONFLICT (run_key, key) DO UPDATE SET value = excluded.value");
        sql.execute(&mut **tx).await?;
    }
    let renamed = unique
        .iter()
        .find(|(key, _)| *key == crate::validation::RUN_NAME_TAG)
        .filter(|_| sync_name);
    if let Some((_, name)) = renamed {
        sqlx::query("UPDATE runs SET name = $1 WHERE run_key = $2")
            .bind(*name)
            .bind(run_key)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(unique
        .into_iter()
        .map(|(key, value)| KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        })
        .collect())
}

async fn insert_params(
    tx: &mut Transaction<'static, Any>,
    run_id: &str,
    run_key: i64,
    params: &[KeyValue],
    single: bool,
) -> Result<(), ApiError> {
    for chunk in params.chunks(INSERT_CHUNK) {
        let mut sql = SqlBuilder::new();
        sql.push("INSERT INTO params (run_key, key, value) VALUES ");
        for (i, param) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let a = sql.bind(Arg::I64(run_key));
            let b = sql.bind(Arg::Str(param.key.clone()));
            let c = sql.bind(Arg::Str(param.value.clone()));
            sql.push(&format!("({a}, {b}, {c})"));
        }
        sql.push(" ON CONFLICT (run_key, key) DO NOTHING");
        sql.execute(&mut **tx).await?;
    }
    // Compare with what is stored now (ours, or a value logged earlier or
    // concurrently): a different value is a conflict and rolls back the batch.
    let mut conflicts = Vec::new();
    for chunk in params.chunks(IN_CHUNK) {
        let mut sql = SqlBuilder::new();
        let key = sql.bind(Arg::I64(run_key));
        let list = sql.bind_list(chunk.iter().map(|p| Arg::Str(p.key.clone())));
        sql.push(&format!(
            "SELECT key, value FROM params WHERE run_key = {key} AND key IN ({list})"
        ));
        let stored: HashMap<String, String> = sql
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| key_value(row).map(|kv| (kv.key, kv.value)))
            .collect::<Result<_, _>>()?;
        for param in chunk {
            if let Some(old) = stored.get(&param.key).filter(|old| **old != param.value) {
                conflicts.push((param.key.clone(), old.clone(), param.value.clone()));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    let message = if single {
        let (key, old, new) = &conflicts[0];
        format!(
            "Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
        )
    } else {
        let listed: Vec<String> = conflicts
            .iter()
            .map(|(key, old, new)| {
                format!("{{'key': '{key}', 'old_value': '{old}', 'new_value': '{new}'}}")
            })
            .collect();
        format!(
            "Changing param values is not allowed. Params were already logged='[{}]' for run ID='{run_id}'.",
            listed.join(", ")
        )
    };
    Err(ApiError::invalid(message))
}

/// Most chunk or latest rows in one SQLite INSERT: 1000 × 9 values stays
/// under its 32,766 bound parameters.
const METRIC_CHUNK: usize = 1000;

fn push_chunks_insert(sql: &mut SqlBuilder, chunks: Vec<history::Chunk<'_>>) {
    sql.push(
        "INSERT INTO metric_chunks (run_key, key, first_step, last_step, points, model_id, dataset_name, dataset_digest, data) VALUES ",
    );
    for (i, c) in chunks.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        let values = [
            sql.bind(Arg::I64(c.run_key)),
            sql.bind(Arg::Str(c.key.to_string())),
            sql.bind(Arg::I64(c.first_step)),
            sql.bind(Arg::I64(c.last_step)),
            sql.bind(Arg::I64(c.points)),
            sql.bind(Arg::OptStr(c.model_id.map(str::to_string))),
            sql.bind(Arg::OptStr(c.dataset_name.map(str::to_string))),
            sql.bind(Arg::OptStr(c.dataset_digest.map(str::to_string))),
            sql.bind(Arg::Bytes(c.data)),
        ];
        sql.push(&format!("({})", values.join(", ")));
    }
}

/// Upserts the latest value per key: max step, then timestamp, then value.
fn push_latest_upsert(sql: &mut SqlBuilder, latest: &[(i64, &super::MetricPoint)]) {
    sql.push("INSERT INTO latest_metrics (run_key, key, step, timestamp, value, is_nan) VALUES ");
    for (i, (run_key, m)) in latest.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        let values = [
            sql.bind(Arg::I64(*run_key)),
            sql.bind(Arg::Str(m.key.clone())),
            sql.bind(Arg::I64(m.step)),
            sql.bind(Arg::I64(m.timestamp)),
            sql.bind(Arg::F64(m.value)),
            sql.bind(Arg::I64(i64::from(m.is_nan))),
        ];
        sql.push(&format!("({})", values.join(", ")));
    }
    sql.push(
        " ON CONFLICT (run_key, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, \
         value = excluded.value, is_nan = excluded.is_nan \
         WHERE excluded.step > latest_metrics.step \
         OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp) \
         OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp \
             AND excluded.value > latest_metrics.value)",
    );
}

/// Postgres: appends history chunks and upserts latest values from UNNESTed
/// arrays, in one constant statement (cached per connection).
const PG_APPEND_METRICS: &str = "WITH appended AS ( \
    INSERT INTO metric_chunks (run_key, key, first_step, last_step, points, model_id, dataset_name, dataset_digest, data) \
    SELECT u.r, u.k, u.f, u.l, u.p, u.m, u.dn, u.dd, u.d \
    FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bytea[]) \
        AS u(r, k, f, l, p, m, dn, dd, d)) \
  INSERT INTO latest_metrics (run_key, key, step, timestamp, value, is_nan) \
  SELECT l.r, l.k, l.s, l.t, l.v, l.n \
  FROM UNNEST($10::bigint[], $11::text[], $12::bigint[], $13::bigint[], $14::float8[], $15::bigint[]) AS l(r, k, s, t, v, n) \
  ON CONFLICT (run_key, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, \
    value = excluded.value, is_nan = excluded.is_nan \
  WHERE excluded.step > latest_metrics.step \
    OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp) \
    OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp \
        AND excluded.value > latest_metrics.value)";

/// A Postgres array literal (`{a,b}`) from already-encoded elements.
pub(crate) fn pg_array(elements: impl Iterator<Item = String>) -> String {
    let mut literal = String::from("{");
    for (index, element) in elements.enumerate() {
        if index > 0 {
            literal.push(',');
        }
        literal.push_str(&element);
    }
    literal.push('}');
    literal
}

/// A quoted array element: `"` and `\` escaped.
pub(crate) fn pg_text(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

fn pg_opt_text(text: Option<&str>) -> String {
    text.map_or_else(|| "NULL".to_string(), pg_text)
}

/// The newest point per (run, key) of `points`, by (step, timestamp, value),
/// in (run, key) order (the order rows are locked in, the same everywhere).
fn newest_points<'a>(
    points: &[(i64, &'a super::MetricPoint)],
) -> Vec<(i64, &'a super::MetricPoint)> {
    let mut newest: BTreeMap<(i64, &str), &super::MetricPoint> = BTreeMap::new();
    for (run_key, m) in points {
        let newer = newest.get(&(*run_key, m.key.as_str())).is_none_or(|cur| {
            (m.step, m.timestamp) > (cur.step, cur.timestamp)
                || ((m.step, m.timestamp) == (cur.step, cur.timestamp) && m.value > cur.value)
        });
        if newer {
            newest.insert((*run_key, m.key.as_str()), m);
        }
    }
    newest
        .into_iter()
        .map(|((run_key, _), m)| (run_key, m))
        .collect()
}

/// Appends points of any number of runs to the history (as chunks, see
/// [`history`]) and, with `update_latest`, updates their latest values.
/// On Postgres this is ONE constant statement over arrays passed as text
/// literals and UNNESTed, so a log-metric, a 1000-point log-batch and a group
/// commit of many runs' writes are each one round trip. A point already
/// stored is stored again and collapsed when read: no insert here can meet a
/// unique violation.
pub(crate) async fn append_metrics(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    points: &[(i64, &super::MetricPoint)],
    update_latest: bool,
) -> Result<(), ApiError> {
    let chunks = history::chunks_of(points);
    let latest = if update_latest {
        newest_points(points)
    } else {
        Vec::new()
    };
    if dialect == Dialect::Sqlite {
        let mut chunks = chunks.into_iter().peekable();
        while chunks.peek().is_some() {
            let mut sql = SqlBuilder::new();
            push_chunks_insert(&mut sql, chunks.by_ref().take(METRIC_CHUNK).collect());
            sql.execute(&mut **tx).await?;
        }
        for piece in latest.chunks(METRIC_CHUNK) {
            let mut sql = SqlBuilder::new();
            push_latest_upsert(&mut sql, piece);
            sql.execute(&mut **tx).await?;
        }
        return Ok(());
    }
    sqlx::query(PG_APPEND_METRICS)
        .bind(pg_array(chunks.iter().map(|c| c.run_key.to_string())))
        .bind(pg_array(chunks.iter().map(|c| pg_text(c.key))))
        .bind(pg_array(chunks.iter().map(|c| c.first_step.to_string())))
        .bind(pg_array(chunks.iter().map(|c| c.last_step.to_string())))
        .bind(pg_array(chunks.iter().map(|c| c.points.to_string())))
        .bind(pg_array(chunks.iter().map(|c| pg_opt_text(c.model_id))))
        .bind(pg_array(chunks.iter().map(|c| pg_opt_text(c.dataset_name))))
        .bind(pg_array(
            chunks.iter().map(|c| pg_opt_text(c.dataset_digest)),
        ))
        .bind(pg_array(
            chunks.iter().map(|c| history::pg_bytea_element(&c.data)),
        ))
        .bind(pg_array(latest.iter().map(|(r, _)| r.to_string())))
        .bind(pg_array(latest.iter().map(|(_, m)| pg_text(&m.key))))
        .bind(pg_array(latest.iter().map(|(_, m)| m.step.to_string())))
        .bind(pg_array(
            latest.iter().map(|(_, m)| m.timestamp.to_string()),
        ))
        .bind(pg_array(
            latest.iter().map(|(_, m)| format!("{:e}", m.value)),
        ))
        .bind(pg_array(
            latest.iter().map(|(_, m)| i64::from(m.is_nan).to_string()),
        ))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Moves the points of the old `metrics` table (migrations before 0005 kept
/// one row per point there) into `metric_chunks`, one (run, key) per
/// transaction; returns the points moved. Run after the migrations, so a
/// database upgraded in place keeps its history. Safe to run twice at once
/// (two processes starting): a point moved twice is collapsed when read.
pub async fn convert_legacy_history(db: &Database) -> Result<u64, ApiError> {
    let mut moved = 0u64;
    loop {
        let next: Option<(i64, String)> =
            sqlx::query_as("SELECT run_key, key FROM metrics ORDER BY run_key, key LIMIT 1")
                .fetch_optional(&db.writer)
                .await
                .map_err(db_error)?;
        let Some((run_key, key)) = next else {
            return Ok(moved);
        };
        let mut tx = db.writer.begin().await.map_err(db_error)?;
        let rows: Vec<rows::HistoryRow> = sqlx::query_as(
            "SELECT step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest \
             FROM metrics WHERE run_key = $1 AND key = $2",
        )
        .bind(run_key)
        .bind(&key)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let points: Vec<super::MetricPoint> = rows
            .into_iter()
            .map(
                |(step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest)| {
                    super::MetricPoint {
                        key: key.clone(),
                        value,
                        is_nan: is_nan != 0,
                        timestamp,
                        step,
                        model_id,
                        dataset_name,
                        dataset_digest,
                    }
                },
            )
            .collect();
        let keyed: Vec<(i64, &super::MetricPoint)> = points.iter().map(|m| (run_key, m)).collect();
        append_metrics(&mut tx, db.dialect, &keyed, false).await?;
        sqlx::query("DELETE FROM metrics WHERE run_key = $1 AND key = $2")
            .bind(run_key)
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        moved += points.len() as u64;
    }
}

/// A 64-bit FNV-1a digest, stable across processes (used to key input tag sets).
fn fnv1a(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[async_trait]
impl TrackingStore for SqlTrackingStore {
    async fn ensure_namespace(&self, namespace: &Namespace, now: i64) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let created = sqlx::query(
            "INSERT INTO namespaces (name, next_experiment_id, creation_time) VALUES ($1, 1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(namespace.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if created > 0 {
            sqlx::query(
                "INSERT INTO experiments (namespace, experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
                 VALUES ($1, 0, 'Default', 'mlflow-artifacts:/0', 'active', $2, $2)",
            )
            .bind(namespace.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn namespace_exists(&self, namespace: &Namespace) -> Result<bool, ApiError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT name FROM namespaces WHERE name = $1")
                .bind(namespace.as_str())
                .fetch_optional(&self.db.reader)
                .await
                .map_err(db_error)?;
        Ok(found.is_some())
    }

    async fn create_experiment(
        &self,
        namespace: &Namespace,
        experiment: NewExperiment,
    ) -> Result<i64, ApiError> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "UPDATE namespaces SET next_experiment_id = next_experiment_id + 1 WHERE name = $1 RETURNING next_experiment_id - 1",
        )
        .bind(namespace.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let location = experiment
            .artifact_location
            .unwrap_or_else(|| format!("mlflow-artifacts:/{id}"));
        let inserted = sqlx::query(
            "INSERT INTO experiments (namespace, experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES ($1, $2, $3, $4, 'active', $5, $5)",
        )
        .bind(namespace.as_str())
        .bind(id)
        .bind(&experiment.name)
        .bind(&location)
        .bind(experiment.now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(ApiError::already_exists(format!(
                    "Experiment(name={}) already exists.",
                    experiment.name
                )));
            }
            Err(error) => return Err(db_error(error)),
        }
        let mut unique: BTreeMap<&str, &str> = BTreeMap::new();
        for tag in &experiment.tags {
            unique.insert(&tag.key, &tag.value);
        }
        for (key, value) in unique {
            sqlx::query(
                "INSERT INTO experiment_tags (namespace, experiment_id, key, value) VALUES ($1, $2, $3, $4)",
            )
            .bind(namespace.as_str())
            .bind(id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(id)
    }

    async fn get_experiment(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
    ) -> Result<Option<pb::Experiment>, ApiError> {
        self.fetch_experiment(namespace, "e.experiment_id", Arg::I64(experiment_id))
            .await
    }

    async fn get_experiment_by_name(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<Option<pb::Experiment>, ApiError> {
        self.fetch_experiment(namespace, "e.name", Arg::Str(name.to_string()))
            .await
    }

    async fn search_experiments(
        &self,
        namespace: &Namespace,
        query: &ExperimentQuery,
    ) -> Result<Vec<pb::Experiment>, ApiError> {
        let sql = search_sql::experiments(namespace, query)?;
        let experiments = sql
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(rows::experiment)
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)?;
        self.with_experiment_tags(namespace, experiments).await
    }

    async fn rename_experiment(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
        new_name: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        active_experiment(&mut tx, namespace, experiment_id).await?;
        let updated = sqlx::query(
            "UPDATE experiments SET name = $1, last_update_time = $2 WHERE namespace = $3 AND experiment_id = $4",
        )
        .bind(new_name)
        .bind(now)
        .bind(namespace.as_str())
        .bind(experiment_id)
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(_) => tx.commit().await.map_err(db_error),
            Err(error) if is_unique_violation(&error) => Err(ApiError::already_exists(format!(
                "Experiment(name={new_name}) already exists."
            ))),
            Err(error) => Err(db_error(error)),
        }
    }

    async fn set_experiment_lifecycle(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
        stage: Lifecycle,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let current: Option<String> = sqlx::query_scalar(
            "SELECT lifecycle_stage FROM experiments WHERE namespace = $1 AND experiment_id = $2",
        )
        .bind(namespace.as_str())
        .bind(experiment_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let current = current.ok_or_else(|| experiment_not_found(experiment_id))?;
        if stage == Lifecycle::Active && current == Lifecycle::Active.as_str() {
            return Err(ApiError::invalid(format!(
                "Cannot restore an active experiment. Experiment {experiment_id} is already active."
            )));
        }
        if stage == Lifecycle::Deleted && current == Lifecycle::Deleted.as_str() {
            return Err(ApiError::invalid(format!(
                "Experiment {experiment_id} is already deleted."
            )));
        }
        sqlx::query(
            "UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE namespace = $3 AND experiment_id = $4",
        )
        .bind(stage.as_str())
        .bind(now)
        .bind(namespace.as_str())
        .bind(experiment_id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let deleted_time = (stage == Lifecycle::Deleted).then_some(now);
        sqlx::query(
            "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE namespace = $3 AND experiment_id = $4",
        )
        .bind(stage.as_str())
        .bind(deleted_time)
        .bind(namespace.as_str())
        .bind(experiment_id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn set_experiment_tag(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
        tag: KeyValue,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        active_experiment(&mut tx, namespace, experiment_id).await?;
        sqlx::query(
            "INSERT INTO experiment_tags (namespace, experiment_id, key, value) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (namespace, experiment_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(namespace.as_str())
        .bind(experiment_id)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_experiment_tag(
        &self,
        namespace: &Namespace,
        experiment_id: i64,
        key: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        active_experiment(&mut tx, namespace, experiment_id).await?;
        let deleted = sqlx::query(
            "DELETE FROM experiment_tags WHERE namespace = $1 AND experiment_id = $2 AND key = $3",
        )
        .bind(namespace.as_str())
        .bind(experiment_id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if deleted == 0 {
            return Err(ApiError::not_found(format!(
                "No tag with name: {key} in experiment with id {experiment_id}"
            )));
        }
        tx.commit().await.map_err(db_error)
    }

    async fn create_run(&self, namespace: &Namespace, run: NewRun) -> Result<pb::Run, ApiError> {
        if self.db.dialect == Dialect::Postgres {
            return self
                .group_commit
                .create_run(&self.db, &self.statistics, namespace, run)
                .await;
        }
        let created = create_run_alone(&self.db, namespace, run).await?;
        self.note_writes(1);
        Ok(created)
    }

    async fn get_run(
        &self,
        namespace: &Namespace,
        run_id: &str,
    ) -> Result<Option<pb::Run>, ApiError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE r.namespace = $1 AND r.run_uuid = $2"
        )))
        .bind(namespace.as_str())
        .bind(run_id)
        .fetch_optional(&self.db.reader)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let info = rows::run_info(&row).map_err(db_error)?;
        Ok(self.assemble_runs(vec![info]).await?.pop())
    }

    async fn update_run(
        &self,
        namespace: &Namespace,
        run_id: &str,
        update: RunUpdate,
    ) -> Result<pb::RunInfo, ApiError> {
        let mut tx = self.begin().await?;
        let run_key = active_run_key(&mut tx, namespace, run_id).await?;
        if let Some(status) = update.status {
            sqlx::query("UPDATE runs SET status = $1 WHERE run_key = $2")
                .bind(rows::status_to_str(status))
                .bind(run_key)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        if let Some(end_time) = update.end_time {
            sqlx::query("UPDATE runs SET end_time = $1 WHERE run_key = $2")
                .bind(end_time)
                .bind(run_key)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        if let Some(name) = update.run_name {
            let tag = KeyValue {
                key: crate::validation::RUN_NAME_TAG.to_string(),
                value: name,
            };
            upsert_run_tags(&mut tx, run_key, &[tag], true).await?;
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_key = $1"
        )))
        .bind(run_key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let (_, info) = rows::run_info(&row).map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(info)
    }

    async fn set_run_lifecycle(
        &self,
        namespace: &Namespace,
        run_id: &str,
        stage: Lifecycle,
        now: i64,
    ) -> Result<(), ApiError> {
        let deleted_time = (stage == Lifecycle::Deleted).then_some(now);
        let updated = sqlx::query(
            "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE namespace = $3 AND run_uuid = $4",
        )
        .bind(stage.as_str())
        .bind(deleted_time)
        .bind(namespace.as_str())
        .bind(run_id)
        .execute(&self.db.writer)
        .await
        .map_err(db_error)?
        .rows_affected();
        if updated == 0 {
            return Err(run_not_found(run_id));
        }
        Ok(())
    }

    async fn log_batch(
        &self,
        namespace: &Namespace,
        run_id: &str,
        batch: Batch,
    ) -> Result<(), ApiError> {
        if self.db.dialect == Dialect::Postgres && GroupCommit::takes(&batch) {
            return self
                .group_commit
                .submit(&self.db, &self.statistics, namespace, run_id, batch.metrics)
                .await;
        }
        write_batch(&self.db, namespace, run_id, &batch).await?;
        let written = batch.metrics.len() + batch.params.len() + batch.tags.len();
        self.note_writes(u64::try_from(written).unwrap_or(u64::MAX));
        Ok(())
    }

    async fn delete_tag(
        &self,
        namespace: &Namespace,
        run_id: &str,
        key: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let run_key = active_run_key(&mut tx, namespace, run_id).await?;
        let deleted = sqlx::query("DELETE FROM tags WHERE run_key = $1 AND key = $2")
            .bind(run_key)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if deleted == 0 {
            return Err(ApiError::not_found(format!(
                "No tag with name: {key} in run with id {run_id}"
            )));
        }
        tx.commit().await.map_err(db_error)
    }

    async fn log_inputs(
        &self,
        namespace: &Namespace,
        run_id: &str,
        datasets: Vec<pb::DatasetInput>,
        models: Vec<pb::ModelInput>,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let run_key = active_run_key(&mut tx, namespace, run_id).await?;
        let experiment_id: i64 =
            sqlx::query_scalar("SELECT experiment_id FROM runs WHERE run_key = $1")
                .bind(run_key)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
        let mut position: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), -1) + 1 FROM dataset_inputs WHERE run_key = $1",
        )
        .bind(run_key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        for input in datasets {
            let dataset = input.dataset.unwrap_or_default();
            sqlx::query(
                "INSERT INTO datasets (namespace, experiment_id, name, digest, source_type, source, schema, profile) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (namespace, experiment_id, name, digest) DO NOTHING",
            )
            .bind(namespace.as_str())
            .bind(experiment_id)
            .bind(&dataset.name)
            .bind(&dataset.digest)
            .bind(&dataset.source_type)
            .bind(&dataset.source)
            .bind(&dataset.schema)
            .bind(&dataset.profile)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            let dataset_key: i64 = sqlx::query_scalar(
                "SELECT dataset_key FROM datasets WHERE namespace = $1 AND experiment_id = $2 AND name = $3 AND digest = $4",
            )
            .bind(namespace.as_str())
            .bind(experiment_id)
            .bind(&dataset.name)
            .bind(&dataset.digest)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
            let mut tags: Vec<(String, String)> =
                input.tags.into_iter().map(|t| (t.key, t.value)).collect();
            tags.sort();
            let context = tags
                .iter()
                .find(|(key, _)| key == crate::validation::DATASET_CONTEXT_TAG)
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            let tags_json = serde_json::to_string(&tags).map_err(ApiError::internal)?;
            let inserted = sqlx::query(
                "INSERT INTO dataset_inputs (run_key, dataset_key, tags_hash, tags_json, context, position) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(run_key)
            .bind(dataset_key)
            .bind(fnv1a(&tags_json))
            .bind(&tags_json)
            .bind(&context)
            .bind(position)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            position += i64::try_from(inserted.rows_affected()).unwrap_or(0);
        }
        for model in models {
            sqlx::query(
                "INSERT INTO model_inputs (run_key, model_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(run_key)
            .bind(&model.model_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn log_outputs(
        &self,
        namespace: &Namespace,
        run_id: &str,
        models: Vec<pb::ModelOutput>,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let run_key = active_run_key(&mut tx, namespace, run_id).await?;
        for model in models {
            sqlx::query(
                "INSERT INTO model_outputs (run_key, model_id, step) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(run_key)
            .bind(&model.model_id)
            .bind(model.step)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn metric_history(
        &self,
        namespace: &Namespace,
        run_id: &str,
        key: &str,
        after: Option<HistoryCursor>,
        limit: i64,
    ) -> Result<Option<Vec<pb::Metric>>, ApiError> {
        let Some(run_key) = self.run_key(namespace, run_id).await? else {
            return Ok(None);
        };
        let after = after.map(|c| (c.step, c.timestamp, c.value, i64::from(c.is_nan)));
        // The chunks that reach past the page's start, by first step (their
        // bounds only, not their points); see `history::page_bound`.
        let select = |columns: &str| {
            let mut sql = SqlBuilder::new();
            let rk = sql.bind(Arg::I64(run_key));
            let k = sql.bind(Arg::Str(key.to_string()));
            sql.push(&format!(
                "SELECT {columns} FROM metric_chunks WHERE run_key = {rk} AND key = {k}"
            ));
            if let Some((step, ..)) = after {
                let s = sql.bind(Arg::I64(step));
                sql.push(&format!(" AND last_step >= {s}"));
            }
            sql
        };
        let mut want = limit.max(1);
        loop {
            let mut bounds = select("first_step, last_step, points");
            let n = bounds.bind(Arg::I64(want));
            // Every chunk holds a point: `want` chunks hold `want` points.
            bounds.push(&format!(" ORDER BY first_step, chunk LIMIT {n}"));
            let bounds = bounds.fetch_as::<history::ChunkBounds>(&self.db).await?;
            let bound = history::page_bound(&bounds, want);
            let mut chunks = select("chunk, model_id, dataset_name, dataset_digest, data");
            if let Some(bound) = bound {
                let b = chunks.bind(Arg::I64(bound));
                chunks.push(&format!(" AND first_step <= {b}"));
            }
            let chunks = chunks.fetch_as::<history::ChunkRow>(&self.db).await?;
            let page =
                history::merge(&chunks, after.as_ref(), usize::try_from(limit).unwrap_or(0))?;
            if bound.is_none() || page.len() as i64 >= limit {
                return Ok(Some(rows::history_points(page, key, run_id)));
            }
            // Points before the page's start or logged twice: read further.
            want = want.saturating_mul(2);
        }
    }

    async fn metric_steps(
        &self,
        namespace: &Namespace,
        run_id: &str,
        key: &str,
        range: Option<(i64, i64)>,
    ) -> Result<Vec<i64>, ApiError> {
        let Some(run_key) = self.run_key(namespace, run_id).await? else {
            return Ok(Vec::new());
        };
        let (start, end) = range.unwrap_or((i64::MIN, i64::MAX));
        let chunks = self.chunks_within(run_key, key, start, end).await?;
        let mut steps: Vec<i64> = history::points_where(&chunks, |s| s >= start && s <= end)?
            .into_iter()
            .map(|point| point.0)
            .collect();
        steps.dedup();
        Ok(steps)
    }

    async fn metric_points_at_steps(
        &self,
        namespace: &Namespace,
        run_id: &str,
        key: &str,
        steps: &[i64],
    ) -> Result<Vec<pb::Metric>, ApiError> {
        let Some(run_key) = self.run_key(namespace, run_id).await? else {
            return Ok(Vec::new());
        };
        let (Some(first), Some(last)) = (steps.iter().min(), steps.iter().max()) else {
            return Ok(Vec::new());
        };
        let wanted: std::collections::HashSet<i64> = steps.iter().copied().collect();
        let chunks = self.chunks_within(run_key, key, *first, *last).await?;
        Ok(history::points_where(&chunks, |s| wanted.contains(&s))?
            .into_iter()
            .map(|(step, timestamp, value, is_nan)| pb::Metric {
                key: key.to_string(),
                value: rows::metric_value(value, is_nan),
                timestamp,
                step,
                run_id: run_id.to_string(),
                ..Default::default()
            })
            .collect())
    }

    async fn search_runs(
        &self,
        namespace: &Namespace,
        query: &RunQuery,
    ) -> Result<Vec<pb::Run>, ApiError> {
        if query.experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = search_sql::runs(namespace, query)?;
        let infos = sql
            .search_as::<rows::RunColumns>(&self.db)
            .await?
            .into_iter()
            .map(rows::run_info_of)
            .collect();
        self.assemble_runs(infos).await
    }

    async fn search_datasets(
        &self,
        namespace: &Namespace,
        experiment_ids: &[i64],
    ) -> Result<Vec<pb::DatasetSummary>, ApiError> {
        if experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = SqlBuilder::new();
        let ns = sql.bind(Arg::Str(namespace.to_string()));
        let list = sql.bind_list(experiment_ids.iter().map(|id| Arg::I64(*id)));
        sql.push(&format!(
            "SELECT DISTINCT d.experiment_id, d.name, d.digest, i.context FROM datasets d \
             JOIN dataset_inputs i ON i.dataset_key = d.dataset_key \
             WHERE d.namespace = {ns} AND d.experiment_id IN ({list}) \
             ORDER BY d.experiment_id, d.name, d.digest, i.context LIMIT 1000"
        ));
        sql.fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(|row| {
                Ok(pb::DatasetSummary {
                    experiment_id: get_i64(row, "experiment_id")?.to_string(),
                    name: row.try_get("name").map_err(db_error)?,
                    digest: row.try_get("digest").map_err(db_error)?,
                    context: row.try_get("context").map_err(db_error)?,
                })
            })
            .collect()
    }
}
