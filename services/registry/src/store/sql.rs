//! The registry's SQL store over `sqlx::Any`: the same statements serve
//! Postgres and SQLite. Version numbers come from `registered_models.next_version`,
//! bumped by an `UPDATE ... RETURNING` that holds the model's row lock until
//! commit, so concurrent registrations (from any number of processes) get
//! 1..N with no gaps or duplicates.

use std::collections::BTreeMap;

use async_trait::async_trait;
use quiver_common::db::{Database, Dialect, StatisticsRefresher};
use quiver_common::fetch_typed;
use quiver_common::sql::{db_error, is_unique_violation};
use quiver_common::{ApiError, Namespace};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::registry::v1 as pb;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::cards::{self, Changed};
use super::rows::STATUS_READY;
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

impl SqlRegistryStore {
    /// Creates a store over an open, migrated database.
    pub fn new(db: Database) -> SqlRegistryStore {
        SqlRegistryStore {
            db,
            // Vacuumed too: every write rewrites its model's row (the card)
            // and usually a version's, and searches right after a bulk
            // registration otherwise wade through the dead row versions.
            statistics: StatisticsRefresher::new(&[
                "VACUUM (ANALYZE) registered_models, model_versions",
                "ANALYZE model_version_tags, registered_model_aliases, registered_model_tags",
            ]),
        }
    }

    /// Writes the cards of models and versions that have none (rows from
    /// before the cards migration), one model per transaction under its row
    /// lock; returns how many models it completed. Run after migrating.
    pub async fn write_missing_cards(&self) -> Result<u64, ApiError> {
        let keys: Vec<i64> = sqlx::query_scalar(
            "SELECT model_key FROM registered_models WHERE card IS NULL \
             UNION SELECT model_key FROM model_versions WHERE card IS NULL ORDER BY 1",
        )
        .fetch_all(&self.db.reader)
        .await
        .map_err(db_error)?;
        let lock = self.row_lock();
        let mut written = 0;
        for key in keys {
            let mut tx = self.begin().await?;
            let found: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT model_key FROM registered_models WHERE model_key = $1{lock}"
            )))
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if found.is_some() {
                self.refresh(&mut tx, key, Changed::AllVersions).await?;
                written += 1;
            }
            tx.commit().await.map_err(db_error)?;
        }
        Ok(written)
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

    /// The model's key, inside a write transaction, taking the model's row
    /// lock on Postgres: writes to one model (and the rewriting of its cards)
    /// follow one another. SQLite has one writer at a time anyway.
    async fn key_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        namespace: &Namespace,
        name: &str,
    ) -> Result<i64, ApiError> {
        model_key(&mut **tx, namespace, name, self.row_lock()).await
    }

    /// What a `SELECT` of a model's row appends to lock it until commit.
    fn row_lock(&self) -> &'static str {
        match self.db.dialect {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// Rewrites the cards a write changed, inside its transaction.
    async fn refresh(
        &self,
        tx: &mut Transaction<'static, Any>,
        key: i64,
        changed: Changed<'_>,
    ) -> Result<(), ApiError> {
        cards::refresh(tx, self.db.dialect, key, changed).await?;
        self.statistics.note_writes(&self.db, 1);
        Ok(())
    }

    /// The model's key, for reads.
    async fn key(&self, namespace: &Namespace, name: &str) -> Result<i64, ApiError> {
        model_key(&self.db.reader, namespace, name, "").await
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

    /// A version from its card, or assembled from the tables when it has
    /// none yet; `None` when there is no such version.
    async fn fetch_version(
        &self,
        key: i64,
        version: i64,
    ) -> Result<Option<pb::ModelVersion>, ApiError> {
        let card = fetch_typed!(
            &self.db,
            (Option<Vec<u8>>,),
            "SELECT card FROM model_versions WHERE model_key = $1 AND version = $2".to_string(),
            key,
            version
        )
        .map_err(row_error)?
        .into_iter()
        .next();
        match card {
            None => Ok(None),
            Some((Some(card),)) => cards::version(&card).map(Some),
            Some((None,)) => self.assembled_version(key, version).await,
        }
    }

    /// A version assembled from the tables (its card is not written yet).
    async fn assembled_version(
        &self,
        key: i64,
        version: i64,
    ) -> Result<Option<pb::ModelVersion>, ApiError> {
        let mut conn = self.db.reader.acquire().await.map_err(db_error)?;
        Ok(
            cards::load_versions(&mut conn, self.db.dialect, key, Some(&[version]))
                .await?
                .into_iter()
                .next()
                .map(|(_, message)| message),
        )
    }

    /// A model assembled from the tables (its card is not written yet).
    async fn assembled_model(&self, key: i64) -> Result<Option<pb::RegisteredModel>, ApiError> {
        let mut conn = self.db.reader.acquire().await.map_err(db_error)?;
        cards::load_model(&mut conn, self.db.dialect, key).await
    }

    async fn stored_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
    ) -> Result<pb::ModelVersion, ApiError> {
        let key = self.key(namespace, name).await?;
        self.fetch_version(key, version)
            .await?
            .ok_or_else(|| version_not_found(name, version))
    }

    async fn model_by_key(&self, key: i64) -> Result<pb::RegisteredModel, ApiError> {
        let card = fetch_typed!(
            &self.db,
            (Option<Vec<u8>>,),
            "SELECT card FROM registered_models WHERE model_key = $1".to_string(),
            key
        )
        .map_err(row_error)?
        .into_iter()
        .next();
        match card {
            Some((Some(card),)) => cards::model(&card),
            _ => self
                .assembled_model(key)
                .await?
                .ok_or_else(|| ApiError::internal("registered model vanished")),
        }
    }
}

/// A registered model's key by name; 404 when there is none. `lock` is
/// appended to the `SELECT` (see `SqlRegistryStore::row_lock`).
async fn model_key<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    namespace: &Namespace,
    name: &str,
    lock: &str,
) -> Result<i64, ApiError> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT model_key FROM registered_models WHERE namespace = $1 AND name = $2{lock}"
    )))
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
        self.refresh(&mut tx, key, Changed::Model).await?;
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
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        // Every version card carries the model's name.
        self.refresh(&mut tx, key, Changed::AllVersions).await?;
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
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        self.refresh(&mut tx, key, Changed::Model).await?;
        tx.commit().await.map_err(db_error)?;
        self.model_by_key(key).await
    }

    async fn delete_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        let mut rows: Vec<(i64, Option<Vec<u8>>)> = sql.search_as(&self.db).await?;
        let more = rows.len() as i64 > query.limit;
        rows.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let mut models = Vec::with_capacity(rows.len());
        for (key, card) in rows {
            match card {
                Some(card) => models.push(cards::model(&card)?),
                // Deleted since the search: left out, as a later search would.
                None => models.extend(self.assembled_model(key).await?),
            }
        }
        Ok((models, more))
    }

    async fn set_registered_model_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        tag: KeyValue,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        self.refresh(&mut tx, key, Changed::Model).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_registered_model_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        tag_key: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = self.key_in(&mut tx, namespace, name).await?;
        sqlx::query("DELETE FROM registered_model_tags WHERE model_key = $1 AND key = $2")
            .bind(key)
            .bind(tag_key)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        self.refresh(&mut tx, key, Changed::Model).await?;
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
        let key = self.key_in(&mut tx, namespace, name).await?;
        Self::version_exists_in(&mut tx, key, name, version).await?;
        // The version the alias leaves loses it from its card.
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM registered_model_aliases WHERE model_key = $1 AND alias = $2",
        )
        .bind(key)
        .bind(alias)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
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
        let changed: Vec<i64> = previous.into_iter().chain([version]).collect();
        self.refresh(&mut tx, key, Changed::Versions(&changed))
            .await?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_alias(
        &self,
        namespace: &Namespace,
        name: &str,
        alias: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = self.key_in(&mut tx, namespace, name).await?;
        let versions: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM registered_model_aliases WHERE model_key = $1 AND alias = $2 RETURNING version",
        )
        .bind(key)
        .bind(alias)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        self.refresh(&mut tx, key, Changed::Versions(&versions))
            .await?;
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
        let mut tags: BTreeMap<&str, &str> = BTreeMap::new();
        for tag in &new.tags {
            tags.insert(&tag.key, &tag.value);
        }
        // The new version's message is known whole: it is its card.
        let message = pb::ModelVersion {
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
                .iter()
                .map(|(key, value)| KeyValue {
                    key: key.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            run_link: new.run_link,
            aliases: Vec::new(),
            model_id: new.model_id,
            storage_location: new.storage_location,
        };
        sqlx::query(
            "INSERT INTO model_versions (model_key, version, namespace, creation_timestamp, last_updated_timestamp, \
             current_stage, description, source, storage_location, run_id, run_link, model_id, status, card) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(key)
        .bind(version)
        .bind(namespace.as_str())
        .bind(new.now)
        .bind(&message.current_stage)
        .bind(&message.description)
        .bind(&message.source)
        .bind(&message.storage_location)
        .bind(&message.run_id)
        .bind(&message.run_link)
        .bind(&message.model_id)
        .bind(STATUS_READY)
        .bind(prost::Message::encode_to_vec(&message))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        insert_tags(
            &mut tx,
            "model_version_tags",
            key,
            Some(version),
            &message.tags,
        )
        .await?;
        self.refresh(&mut tx, key, Changed::Model).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(message)
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
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        self.refresh(&mut tx, key, Changed::Versions(&[version]))
            .await?;
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
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        self.refresh(&mut tx, key, Changed::Model).await?;
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
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        let mut changed = vec![version];
        if archive_existing && stage.is_active() {
            let archived: Vec<i64> = sqlx::query_scalar(
                "UPDATE model_versions SET current_stage = $1, last_updated_timestamp = $2 \
                 WHERE model_key = $3 AND current_stage = $4 AND version <> $5 RETURNING version",
            )
            .bind(Stage::Archived.as_str())
            .bind(now)
            .bind(key)
            .bind(stage.as_str())
            .bind(version)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
            changed.extend(archived);
        }
        sqlx::query(
            "UPDATE registered_models SET last_updated_timestamp = $1 WHERE model_key = $2",
        )
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        self.refresh(&mut tx, key, Changed::Versions(&changed))
            .await?;
        tx.commit().await.map_err(db_error)?;
        self.stored_version(namespace, name, version).await
    }

    async fn search_model_versions(
        &self,
        namespace: &Namespace,
        query: &RegistryQuery,
    ) -> Result<(Vec<pb::ModelVersion>, bool), ApiError> {
        let sql = search_sql::model_versions(namespace, query)?;
        let mut rows: Vec<(i64, i64, Option<Vec<u8>>)> = sql.search_as(&self.db).await?;
        let more = rows.len() as i64 > query.limit;
        rows.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let mut versions = Vec::with_capacity(rows.len());
        for (key, version, card) in rows {
            match card {
                Some(card) => versions.push(cards::version(&card)?),
                // Deleted since the search: left out, as a later search would.
                None => versions.extend(self.assembled_version(key, version).await?),
            }
        }
        Ok((versions, more))
    }

    async fn get_latest_versions(
        &self,
        namespace: &Namespace,
        name: &str,
        stages: &[Stage],
    ) -> Result<Vec<pb::ModelVersion>, ApiError> {
        // The model's card lists its latest version per stage.
        let (key, card) = fetch_typed!(
            &self.db,
            (i64, Option<Vec<u8>>),
            "SELECT model_key, card FROM registered_models WHERE namespace = $1 AND name = $2"
                .to_string(),
            namespace.as_str(),
            name
        )
        .map_err(row_error)?
        .into_iter()
        .next()
        .ok_or_else(|| model_not_found(name))?;
        let model = match card {
            Some(card) => cards::model(&card)?,
            None => self.model_by_key(key).await?,
        };
        Ok(model
            .latest_versions
            .into_iter()
            .filter(|v| stages.is_empty() || stages.iter().any(|s| s.as_str() == v.current_stage))
            .collect())
    }

    async fn set_model_version_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        tag: KeyValue,
    ) -> Result<(), ApiError> {
        let mut tx = self.begin().await?;
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        self.refresh(&mut tx, key, Changed::Versions(&[version]))
            .await?;
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
        let key = self.key_in(&mut tx, namespace, name).await?;
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
        self.refresh(&mut tx, key, Changed::Versions(&[version]))
            .await?;
        tx.commit().await.map_err(db_error)
    }
}
