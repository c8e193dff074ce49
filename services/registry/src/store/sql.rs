//! The registry's SQL store over `sqlx::Any`: the same statements serve
//! Postgres and SQLite. Version numbers come from `registered_models.next_version`,
//! bumped by an `UPDATE ... RETURNING` that holds the model's row lock until
//! commit, so concurrent registrations (from any number of processes) get
//! 1..N with no gaps or duplicates.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use quiver_common::db::{Database, Dialect, StatisticsRefresher};
use quiver_common::fetch_typed;
use quiver_common::sql::{
    Arg, SqlBuilder, db_error, is_unique_violation, json_pairs, key_set_condition, key_set_value,
    parse_json_pairs,
};
use quiver_common::{ApiError, Namespace};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::registry::v1 as pb;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::rows::{self, MODEL_COLUMNS, STATUS_READY, VERSION_COLUMNS};
use super::{
    NewModelVersion, NewRegisteredModel, RegistryQuery, RegistryStore, Stage, model_not_found,
    search_sql, version_not_found,
};

/// The registry store.
#[derive(Clone)]
pub struct SqlRegistryStore {
    db: Database,
    /// Refreshes planner statistics after bulk registrations.
    statistics: StatisticsRefresher,
}

fn row_error(error: sqlx::Error) -> ApiError {
    db_error(error)
}

fn already_exists(name: &str) -> ApiError {
    ApiError::already_exists(format!("Registered Model (name={name}) already exists."))
}

type VersionRow = (i64, i64, pb::ModelVersion);

/// Which models' latest versions to read.
enum Models<'a> {
    /// By key (a page of a search).
    Keys(&'a [i64]),
    /// One model by name.
    Named(&'a Namespace, &'a str),
}

impl SqlRegistryStore {
    /// Creates a store over an open, migrated database.
    pub fn new(db: Database) -> SqlRegistryStore {
        SqlRegistryStore {
            db,
            statistics: StatisticsRefresher::new(&[
                "ANALYZE registered_models, model_versions, model_version_tags, registered_model_aliases, registered_model_tags",
            ]),
        }
    }

    /// Returns the underlying database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Every model version of a namespace with where its files are:
    /// `(name, version, storage_location)`. For admin tasks (`quiver gc` keeps
    /// the artifacts a registered version is served from).
    pub async fn version_locations(
        &self,
        namespace: &Namespace,
    ) -> Result<Vec<(String, i64, String)>, ApiError> {
        let rows = sqlx::query(
            "SELECT m.name, v.version, v.storage_location FROM model_versions v \
             JOIN registered_models m ON m.model_key = v.model_key WHERE v.namespace = $1 \
             ORDER BY m.name, v.version",
        )
        .bind(namespace.as_str())
        .fetch_all(&self.db.reader)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("name").map_err(row_error)?,
                    row.try_get("version").map_err(row_error)?,
                    row.try_get("storage_location").map_err(row_error)?,
                ))
            })
            .collect()
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>, ApiError> {
        self.db.writer.begin().await.map_err(db_error)
    }

    /// The model's key, inside a write transaction.
    async fn key_in(
        tx: &mut Transaction<'static, Any>,
        namespace: &Namespace,
        name: &str,
    ) -> Result<i64, ApiError> {
        model_key(&mut **tx, namespace, name).await
    }

    /// The model's key, for reads.
    async fn key(&self, namespace: &Namespace, name: &str) -> Result<i64, ApiError> {
        model_key(&self.db.reader, namespace, name).await
    }

    /// Checks that a version exists inside a write transaction.
    async fn version_exists_in(
        tx: &mut Transaction<'static, Any>,
        key: i64,
        name: &str,
        version: i64,
    ) -> Result<(), ApiError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM model_versions WHERE model_key = $1 AND version = $2",
        )
        .bind(key)
        .bind(version)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
        found
            .map(|_| ())
            .ok_or_else(|| version_not_found(name, version))
    }

    /// Completes registered-model rows with tags, aliases and latest versions.
    async fn complete_models(
        &self,
        rows: Vec<AnyRow>,
    ) -> Result<Vec<pb::RegisteredModel>, ApiError> {
        let mut models = Vec::with_capacity(rows.len());
        for row in &rows {
            models.push(rows::registered_model(row).map_err(row_error)?);
        }
        let keys: Vec<i64> = models.iter().map(|(key, _)| *key).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Independent reads, issued together.
        let (mut tags, mut aliases, mut latest) = tokio::try_join!(
            self.model_tags(&keys),
            self.model_aliases(&keys),
            self.latest_versions(Models::Keys(&keys), &[]),
        )?;
        Ok(models
            .into_iter()
            .map(|(key, mut model)| {
                model.tags = tags.remove(&key).unwrap_or_default();
                model.aliases = aliases.remove(&key).unwrap_or_default();
                model.latest_versions = latest.remove(&key).unwrap_or_default();
                model
            })
            .collect())
    }

    async fn model_tags(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<KeyValue>>, ApiError> {
        let dialect = self.db.dialect;
        let rows = fetch_typed!(
            &self.db,
            (i64, String, String),
            format!(
                "SELECT model_key, key, value FROM registered_model_tags WHERE {} ORDER BY model_key, key",
                key_set_condition(dialect, "model_key", "$1")
            ),
            key_set_value(dialect, keys)
        )
        .map_err(row_error)?;
        let mut out: HashMap<i64, Vec<KeyValue>> = HashMap::new();
        for (model, key, value) in rows {
            out.entry(model).or_default().push(KeyValue { key, value });
        }
        Ok(out)
    }

    async fn model_aliases(
        &self,
        keys: &[i64],
    ) -> Result<HashMap<i64, Vec<pb::RegisteredModelAlias>>, ApiError> {
        let dialect = self.db.dialect;
        let rows = fetch_typed!(
            &self.db,
            (i64, String, i64),
            format!(
                "SELECT model_key, alias, version FROM registered_model_aliases WHERE {} ORDER BY model_key, alias",
                key_set_condition(dialect, "model_key", "$1")
            ),
            key_set_value(dialect, keys)
        )
        .map_err(row_error)?;
        let mut out: HashMap<i64, Vec<pb::RegisteredModelAlias>> = HashMap::new();
        for (model, alias, version) in rows {
            out.entry(model)
                .or_default()
                .push(pb::RegisteredModelAlias {
                    alias,
                    version: version.to_string(),
                });
        }
        Ok(out)
    }

    /// The highest version per stage of each selected model (only `stages`
    /// when not empty), in version order, with tags: one statement.
    async fn latest_versions(
        &self,
        models: Models<'_>,
        stages: &[Stage],
    ) -> Result<HashMap<i64, Vec<pb::ModelVersion>>, ApiError> {
        let dialect = self.db.dialect;
        let mut sql = SqlBuilder::new();
        // The models are `m` (Postgres) or `t` (SQLite) below.
        let alias = match dialect {
            Dialect::Postgres => "m",
            Dialect::Sqlite => "t",
        };
        let selected = match models {
            Models::Keys([]) => return Ok(HashMap::new()),
            Models::Keys(keys) => sql.key_in(dialect, &format!("{alias}.model_key"), keys),
            Models::Named(namespace, name) => {
                let ns = sql.bind(Arg::Str(namespace.to_string()));
                let n = sql.bind(Arg::Str(name.to_string()));
                format!("{alias}.namespace = {ns} AND {alias}.name = {n}")
            }
        };
        let stage_filter = if stages.is_empty() {
            String::new()
        } else {
            let names = sql.bind_list(stages.iter().map(|s| Arg::Str(s.as_str().to_string())));
            format!(" AND s.stage IN ({names})")
        };
        let tags = json_pairs(
            dialect,
            "SELECT g.key AS a, g.value AS b FROM model_version_tags g \
             WHERE g.model_key = v.model_key AND g.version = v.version",
        );
        // Per (model, stage), one probe of the (model_key, current_stage,
        // version DESC) index for the top version: a few hundred index
        // lookups instead of a pass over every version.
        const STAGES: &str = "(SELECT 'None' AS stage UNION ALL SELECT 'Staging' \
             UNION ALL SELECT 'Production' UNION ALL SELECT 'Archived') s";
        sql.push(&match dialect {
            // The probe returns the row itself (LATERAL ... LIMIT 1): half
            // the lookups of "top version number, then the row by key".
            Dialect::Postgres => format!(
                "SELECT {VERSION_COLUMNS}, {tags} AS tags_json \
                 FROM registered_models m CROSS JOIN {STAGES} \
                 CROSS JOIN LATERAL (SELECT * FROM model_versions v2 \
                   WHERE v2.model_key = m.model_key AND v2.current_stage = s.stage \
                   ORDER BY v2.version DESC LIMIT 1) v \
                 WHERE {selected}{stage_filter} \
                 ORDER BY v.model_key, v.version"
            ),
            // SQLite has no LATERAL: the top version number per (model,
            // stage), then the row by key.
            Dialect::Sqlite => format!(
                "SELECT {VERSION_COLUMNS}, {tags} AS tags_json FROM \
                 (SELECT t.model_key AS k, \
                    (SELECT MAX(v2.version) FROM model_versions v2 \
                     WHERE v2.model_key = t.model_key AND v2.current_stage = s.stage) AS top \
                  FROM registered_models t CROSS JOIN {STAGES} \
                  WHERE {selected}{stage_filter}) l \
                 JOIN model_versions v ON v.model_key = l.k AND v.version = l.top \
                 JOIN registered_models m ON m.model_key = v.model_key \
                 ORDER BY v.model_key, v.version"
            ),
        });
        let mut out: HashMap<i64, Vec<pb::ModelVersion>> = HashMap::new();
        for record in sql.fetch_as::<rows::VersionRecord>(&self.db).await? {
            let mut version = record.message;
            version.tags = parse_json_pairs(record.tags_json.as_deref())?
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect();
            out.entry(record.key).or_default().push(version);
        }
        Ok(out)
    }

    /// Completes version rows with tags (and aliases when asked).
    async fn complete_versions(
        &self,
        records: Vec<rows::VersionRecord>,
        with_aliases: bool,
    ) -> Result<Vec<VersionRow>, ApiError> {
        let mut versions: Vec<VersionRow> = records
            .into_iter()
            .map(|r| (r.key, r.version, r.message))
            .collect();
        if versions.is_empty() {
            return Ok(versions);
        }
        let ids: Vec<(i64, i64)> = versions.iter().map(|(k, v, _)| (*k, *v)).collect();
        let (mut tags, mut aliases) = tokio::try_join!(
            self.version_children(&ids, "model_version_tags", "key, value"),
            async {
                if with_aliases {
                    self.version_children(&ids, "registered_model_aliases", "alias, alias AS value")
                        .await
                } else {
                    Ok(HashMap::new())
                }
            },
        )?;
        for (key, version, message) in &mut versions {
            if let Some(found) = tags.remove(&(*key, *version)) {
                message.tags = found;
            }
            if let Some(found) = aliases.remove(&(*key, *version)) {
                message.aliases = found.into_iter().map(|kv| kv.value).collect();
            }
        }
        Ok(versions)
    }

    /// Rows of a per-version child table (tags or aliases), grouped.
    async fn version_children(
        &self,
        ids: &[(i64, i64)],
        table: &str,
        columns: &str,
    ) -> Result<HashMap<(i64, i64), Vec<KeyValue>>, ApiError> {
        let mut out: HashMap<(i64, i64), Vec<KeyValue>> = HashMap::new();
        let wanted: std::collections::HashSet<(i64, i64)> = ids.iter().copied().collect();
        let mut keys: Vec<i64> = ids.iter().map(|(key, _)| *key).collect();
        let mut numbers: Vec<i64> = ids.iter().map(|(_, version)| *version).collect();
        keys.sort_unstable();
        keys.dedup();
        numbers.sort_unstable();
        numbers.dedup();
        let dialect = self.db.dialect;
        // Two key sets (one statement text for any page, cheap to plan, unlike
        // a long row-value IN); rows of versions not on this page are dropped.
        let rows = fetch_typed!(
            &self.db,
            (i64, i64, String, String),
            format!(
                "SELECT model_key, version, {columns} FROM {table} WHERE {} AND {} \
                 ORDER BY model_key, version, 3",
                key_set_condition(dialect, "model_key", "$1"),
                key_set_condition(dialect, "version", "$2"),
            ),
            key_set_value(dialect, &keys),
            key_set_value(dialect, &numbers)
        )
        .map_err(row_error)?;
        for (model, version, key, value) in rows {
            let id = (model, version);
            if wanted.contains(&id) {
                out.entry(id).or_default().push(KeyValue { key, value });
            }
        }
        Ok(out)
    }

    async fn fetch_version(&self, key: i64, version: i64) -> Result<Option<VersionRow>, ApiError> {
        let mut sql = SqlBuilder::new();
        let k = sql.bind(Arg::I64(key));
        let v = sql.bind(Arg::I64(version));
        sql.push(&format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions v JOIN registered_models m ON m.model_key = v.model_key \
             WHERE v.model_key = {k} AND v.version = {v}"
        ));
        let records = sql.fetch_as(&self.db).await?;
        Ok(self
            .complete_versions(records, true)
            .await?
            .into_iter()
            .next())
    }

    async fn stored_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
    ) -> Result<pb::ModelVersion, ApiError> {
        let key = self.key(namespace, name).await?;
        let (_, _, version) = self
            .fetch_version(key, version)
            .await?
            .ok_or_else(|| version_not_found(name, version))?;
        Ok(version)
    }

    async fn model_by_key(&self, key: i64) -> Result<pb::RegisteredModel, ApiError> {
        let mut sql = SqlBuilder::new();
        let k = sql.bind(Arg::I64(key));
        sql.push(&format!(
            "SELECT {MODEL_COLUMNS} FROM registered_models m WHERE m.model_key = {k}"
        ));
        let rows = sql.fetch_all(&self.db.reader).await?;
        self.complete_models(rows)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("registered model vanished"))
    }
}

/// A registered model's key by name; 404 when there is none.
async fn model_key<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    namespace: &Namespace,
    name: &str,
) -> Result<i64, ApiError> {
    sqlx::query_scalar("SELECT model_key FROM registered_models WHERE namespace = $1 AND name = $2")
        .bind(namespace.as_str())
        .bind(name)
        .fetch_optional(executor)
        .await
        .map_err(db_error)?
        .ok_or_else(|| model_not_found(name))
}

async fn insert_tags(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    key: i64,
    version: Option<i64>,
    tags: &[KeyValue],
) -> Result<(), ApiError> {
    let mut unique: BTreeMap<&str, &str> = BTreeMap::new();
    for tag in tags {
        unique.insert(&tag.key, &tag.value);
    }
    for (tag_key, value) in unique {
        let query = match version {
            Some(version) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (model_key, version, key, value) VALUES ($1, $2, $3, $4)"
            )))
            .bind(key)
            .bind(version)
            .bind(tag_key)
            .bind(value),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (model_key, key, value) VALUES ($1, $2, $3)"
            )))
            .bind(key)
            .bind(tag_key)
            .bind(value),
        };
        query.execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl RegistryStore for SqlRegistryStore {
    async fn create_registered_model(
        &self,
        namespace: &Namespace,
        model: NewRegisteredModel,
    ) -> Result<pb::RegisteredModel, ApiError> {
        let mut tx = self.begin().await?;
        let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO registered_models (namespace, name, creation_timestamp, last_updated_timestamp, description, deployment_job_id) \
             VALUES ($1, $2, $3, $3, $4, $5) RETURNING model_key",
        )
        .bind(namespace.as_str())
        .bind(&model.name)
        .bind(model.now)
        .bind(&model.description)
        .bind(&model.deployment_job_id)
        .fetch_one(&mut *tx)
        .await;
        let key = match inserted {
            Ok(key) => key,
            Err(error) if is_unique_violation(&error) => return Err(already_exists(&model.name)),
            Err(error) => return Err(db_error(error)),
        };
        insert_tags(&mut tx, "registered_model_tags", key, None, &model.tags).await?;
        tx.commit().await.map_err(db_error)?;
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        for tag in model.tags {
            tags.insert(tag.key, tag.value);
        }
        Ok(pb::RegisteredModel {
            name: model.name,
            creation_timestamp: model.now,
            last_updated_timestamp: model.now,
            description: model.description,
            deployment_job_id: model.deployment_job_id,
            tags: tags
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect(),
            ..pb::RegisteredModel::default()
        })
    }

    async fn get_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<pb::RegisteredModel, ApiError> {
        let key = self.key(namespace, name).await?;
        self.model_by_key(key).await
    }

    async fn rename_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
        new_name: &str,
        now: i64,
    ) -> Result<pb::RegisteredModel, ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        let renamed = sqlx::query(
            "UPDATE registered_models SET name = $1, last_updated_timestamp = $2 WHERE model_key = $3",
        )
        .bind(new_name)
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await;
        match renamed {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Err(already_exists(new_name)),
            Err(error) => return Err(db_error(error)),
        }
        sqlx::query("UPDATE model_versions SET last_updated_timestamp = $1 WHERE model_key = $2")
            .bind(now)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.model_by_key(key).await
    }

    async fn update_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
        description: Option<String>,
        deployment_job_id: Option<String>,
        now: i64,
    ) -> Result<pb::RegisteredModel, ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        sqlx::query(
            "UPDATE registered_models SET description = COALESCE($1, description), \
             deployment_job_id = COALESCE($2, deployment_job_id), last_updated_timestamp = $3 WHERE model_key = $4",
        )
        .bind(description)
        .bind(deployment_job_id)
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.model_by_key(key).await
    }

    async fn delete_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        // Children first: correct whether or not the backend cascades.
        for statement in [
            "DELETE FROM registered_model_aliases WHERE model_key = $1",
            "DELETE FROM model_version_tags WHERE model_key = $1",
            "DELETE FROM model_versions WHERE model_key = $1",
            "DELETE FROM registered_model_tags WHERE model_key = $1",
            "DELETE FROM registered_models WHERE model_key = $1",
        ] {
            sqlx::query(statement)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn search_registered_models(
        &self,
        namespace: &Namespace,
        query: &RegistryQuery,
    ) -> Result<(Vec<pb::RegisteredModel>, bool), ApiError> {
        let sql = search_sql::registered_models(namespace, query)?;
        let mut rows = sql.fetch_all(&self.db.reader).await?;
        let more = rows.len() as i64 > query.limit;
        rows.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok((self.complete_models(rows).await?, more))
    }

    async fn set_registered_model_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        tag: KeyValue,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        sqlx::query(
            "INSERT INTO registered_model_tags (model_key, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (model_key, key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_registered_model_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        tag_key: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        sqlx::query("DELETE FROM registered_model_tags WHERE model_key = $1 AND key = $2")
            .bind(key)
            .bind(tag_key)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn set_alias(
        &self,
        namespace: &Namespace,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        Self::version_exists_in(&mut tx, key, name, version).await?;
        sqlx::query(
            "INSERT INTO registered_model_aliases (model_key, alias, version) VALUES ($1, $2, $3) \
             ON CONFLICT (model_key, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(key)
        .bind(alias)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_alias(
        &self,
        namespace: &Namespace,
        name: &str,
        alias: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        sqlx::query("DELETE FROM registered_model_aliases WHERE model_key = $1 AND alias = $2")
            .bind(key)
            .bind(alias)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_version_by_alias(
        &self,
        namespace: &Namespace,
        name: &str,
        alias: &str,
    ) -> Result<pb::ModelVersion, ApiError> {
        let key = self.key(namespace, name).await?;
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM registered_model_aliases WHERE model_key = $1 AND alias = $2",
        )
        .bind(key)
        .bind(alias)
        .fetch_optional(&self.db.reader)
        .await
        .map_err(db_error)?;
        let version = version.ok_or_else(|| {
            ApiError::invalid(format!("Registered model alias {alias} not found."))
        })?;
        self.stored_version(namespace, name, version).await
    }

    async fn create_model_version(
        &self,
        namespace: &Namespace,
        name: &str,
        new: NewModelVersion,
    ) -> Result<pb::ModelVersion, ApiError> {
        let mut tx = self.begin().await?;
        // The row lock taken here serialises concurrent registrations of
        // this model until commit; the number is never handed out twice.
        let allocated: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE registered_models SET next_version = next_version + 1, last_updated_timestamp = $1 \
             WHERE namespace = $2 AND name = $3 RETURNING model_key, next_version - 1",
        )
        .bind(new.now)
        .bind(namespace.as_str())
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let (key, version) = allocated.ok_or_else(|| model_not_found(name))?;
        sqlx::query(
            "INSERT INTO model_versions (model_key, version, namespace, creation_timestamp, last_updated_timestamp, \
             current_stage, description, source, storage_location, run_id, run_link, model_id, status) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(key)
        .bind(version)
        .bind(namespace.as_str())
        .bind(new.now)
        .bind(Stage::None.as_str())
        .bind(&new.description)
        .bind(&new.source)
        .bind(&new.storage_location)
        .bind(&new.run_id)
        .bind(&new.run_link)
        .bind(&new.model_id)
        .bind(STATUS_READY)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        insert_tags(&mut tx, "model_version_tags", key, Some(version), &new.tags).await?;
        tx.commit().await.map_err(db_error)?;
        self.statistics.note_writes(&self.db, 1);
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        for tag in new.tags {
            tags.insert(tag.key, tag.value);
        }
        Ok(pb::ModelVersion {
            name: name.to_string(),
            version: version.to_string(),
            creation_timestamp: new.now,
            last_updated_timestamp: new.now,
            user_id: String::new(),
            current_stage: Stage::None.as_str().to_string(),
            description: new.description,
            source: new.source,
            run_id: new.run_id,
            status: pb::ModelVersionStatus::Ready as i32,
            status_message: String::new(),
            tags: tags
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect(),
            run_link: new.run_link,
            aliases: Vec::new(),
            model_id: new.model_id,
            storage_location: new.storage_location,
        })
    }

    async fn get_model_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
    ) -> Result<pb::ModelVersion, ApiError> {
        self.stored_version(namespace, name, version).await
    }

    async fn update_model_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        description: Option<String>,
        now: i64,
    ) -> Result<pb::ModelVersion, ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        let updated = sqlx::query(
            "UPDATE model_versions SET description = COALESCE($1, description), last_updated_timestamp = $2 \
             WHERE model_key = $3 AND version = $4",
        )
        .bind(description)
        .bind(now)
        .bind(key)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            return Err(version_not_found(name, version));
        }
        tx.commit().await.map_err(db_error)?;
        self.stored_version(namespace, name, version).await
    }

    async fn delete_model_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        Self::version_exists_in(&mut tx, key, name, version).await?;
        for statement in [
            "DELETE FROM registered_model_aliases WHERE model_key = $1 AND version = $2",
            "DELETE FROM model_version_tags WHERE model_key = $1 AND version = $2",
            "DELETE FROM model_versions WHERE model_key = $1 AND version = $2",
        ] {
            sqlx::query(statement)
                .bind(key)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        sqlx::query(
            "UPDATE registered_models SET last_updated_timestamp = $1 WHERE model_key = $2",
        )
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn transition_stage(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
        now: i64,
    ) -> Result<pb::ModelVersion, ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        let updated = sqlx::query(
            "UPDATE model_versions SET current_stage = $1, last_updated_timestamp = $2 WHERE model_key = $3 AND version = $4",
        )
        .bind(stage.as_str())
        .bind(now)
        .bind(key)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            return Err(version_not_found(name, version));
        }
        if archive_existing && stage.is_active() {
            sqlx::query(
                "UPDATE model_versions SET current_stage = $1, last_updated_timestamp = $2 \
                 WHERE model_key = $3 AND current_stage = $4 AND version <> $5",
            )
            .bind(Stage::Archived.as_str())
            .bind(now)
            .bind(key)
            .bind(stage.as_str())
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        sqlx::query(
            "UPDATE registered_models SET last_updated_timestamp = $1 WHERE model_key = $2",
        )
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.stored_version(namespace, name, version).await
    }

    async fn search_model_versions(
        &self,
        namespace: &Namespace,
        query: &RegistryQuery,
    ) -> Result<(Vec<pb::ModelVersion>, bool), ApiError> {
        let sql = search_sql::model_versions(namespace, query)?;
        let mut records = sql.search_as(&self.db).await?;
        let more = records.len() as i64 > query.limit;
        records.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let versions = self.complete_versions(records, true).await?;
        Ok((versions.into_iter().map(|(_, _, v)| v).collect(), more))
    }

    async fn get_latest_versions(
        &self,
        namespace: &Namespace,
        name: &str,
        stages: &[Stage],
    ) -> Result<Vec<pb::ModelVersion>, ApiError> {
        // One statement in the common case; only an empty answer needs the
        // second look that tells "no such model" from "no versions".
        let latest = self
            .latest_versions(Models::Named(namespace, name), stages)
            .await?;
        match latest.into_values().next() {
            Some(versions) => Ok(versions),
            None => self.key(namespace, name).await.map(|_| Vec::new()),
        }
    }

    async fn set_model_version_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        tag: KeyValue,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        Self::version_exists_in(&mut tx, key, name, version).await?;
        sqlx::query(
            "INSERT INTO model_version_tags (model_key, version, key, value) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (model_key, version, key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(version)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_model_version_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        tag_key: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = Self::key_in(&mut tx, namespace, name).await?;
        Self::version_exists_in(&mut tx, key, name, version).await?;
        sqlx::query(
            "DELETE FROM model_version_tags WHERE model_key = $1 AND version = $2 AND key = $3",
        )
        .bind(key)
        .bind(version)
        .bind(tag_key)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}
