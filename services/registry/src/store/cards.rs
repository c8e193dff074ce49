//! Cards: every registered model and every model version keeps its complete
//! API message in a `card` column (prost-encoded `RegisteredModel` /
//! `ModelVersion`: a model's card carries its tags, aliases and latest version
//! per stage; a version's card its tags and aliases). The store rewrites the
//! cards a write changes in the same transaction as the write, after taking
//! the model's row lock, so a card is never older than the rows it sums up.
//! Searches then read one column per result instead of joining tags, aliases
//! and per-stage latest versions on every call (registries are read far more
//! often than written). A NULL card (a row from before the cards migration,
//! until `quiver migrate` fills it) is assembled from the tables by the same
//! loaders that write cards ([`load_model`], [`load_versions`]).

use std::collections::HashMap;

use prost::Message;
use quiver_common::ApiError;
use quiver_common::db::Dialect;
use quiver_common::sql::{db_error, key_set_condition, key_set_value};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::registry::v1 as pb;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Transaction};

use super::rows::{self, MODEL_COLUMNS, VERSION_COLUMNS};

/// The versions whose cards a write changed (the model's own card is always
/// rewritten: its timestamps, tags, aliases or latest versions may move).
pub(crate) enum Changed<'a> {
    /// Only the model's card.
    Model,
    /// These versions (numbers) and the model.
    Versions(&'a [i64]),
    /// Every version of the model and the model (a rename).
    AllVersions,
}

/// The highest version number per stage of model `$1` (NULL for an empty
/// stage): four probes of the (model_key, current_stage, version) index.
const LATEST_PER_STAGE: &str = "SELECT (SELECT MAX(v.version) FROM model_versions v \
     WHERE v.model_key = $1 AND v.current_stage = s.stage) AS top \
     FROM (SELECT 'None' AS stage UNION ALL SELECT 'Staging' \
       UNION ALL SELECT 'Production' UNION ALL SELECT 'Archived') s";

/// Rewrites the cards `changed` names for model `key`, inside `tx` (which
/// holds the model's row lock on Postgres).
pub(crate) async fn refresh(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    key: i64,
    changed: Changed<'_>,
) -> Result<(), ApiError> {
    let only = match changed {
        Changed::Model => None,
        Changed::Versions(numbers) => Some(Some(numbers)),
        Changed::AllVersions => Some(None),
    };
    if let Some(only) = only {
        let cards: Vec<(i64, Vec<u8>)> = load_versions(tx, dialect, key, only)
            .await?
            .into_iter()
            .map(|(number, version)| (number, version.encode_to_vec()))
            .collect();
        write_version_cards(tx, key, cards).await?;
    }
    if let Some(model) = load_model(tx, dialect, key).await? {
        sqlx::query("UPDATE registered_models SET card = $1 WHERE model_key = $2")
            .bind(model.encode_to_vec())
            .bind(key)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Version cards written per statement when many change at once (a rename
/// rewrites every version's card): two parameters each.
pub(crate) const CARDS_PER_UPDATE: usize = 200;

/// Writes version cards of model `key`: one plain UPDATE for a single card
/// (the common write), else one `UPDATE ... FROM (VALUES ...)` per
/// [`CARDS_PER_UPDATE`] cards (VALUES columns are `column1`, `column2` on
/// both Postgres and SQLite), so renaming a model with 10,000 versions is 50
/// statements, not 10,000 round trips.
async fn write_version_cards(
    tx: &mut Transaction<'static, Any>,
    key: i64,
    cards: Vec<(i64, Vec<u8>)>,
) -> Result<(), ApiError> {
    if cards.len() == 1 {
        let (number, card) = cards.into_iter().next().expect("one card");
        sqlx::query("UPDATE model_versions SET card = $1 WHERE model_key = $2 AND version = $3")
            .bind(card)
            .bind(key)
            .bind(number)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        return Ok(());
    }
    let mut cards = cards.into_iter().peekable();
    while cards.peek().is_some() {
        let chunk: Vec<(i64, Vec<u8>)> = cards.by_ref().take(CARDS_PER_UPDATE).collect();
        let values = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 + 2 * i, 3 + 2 * i))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE model_versions SET card = u.column2 FROM (VALUES {values}) AS u \
             WHERE model_versions.model_key = $1 AND model_versions.version = u.column1"
        );
        // Not kept prepared: the text varies with the chunk's length.
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false).bind(key);
        for (number, card) in chunk {
            query = query.bind(number).bind(card);
        }
        query.execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

/// Versions of model `key` (`only` these numbers, or all) as complete
/// messages with tags and aliases, in version order, read on `conn` (a write
/// transaction, or a reader for rows without cards).
pub(crate) async fn load_versions(
    conn: &mut AnyConnection,
    dialect: Dialect,
    key: i64,
    only: Option<&[i64]>,
) -> Result<Vec<(i64, pb::ModelVersion)>, ApiError> {
    let set = match only {
        Some([]) => return Ok(Vec::new()),
        Some(numbers) => Some(key_set_value(dialect, numbers)),
        None => None,
    };
    let filter = |column: &str| match set {
        Some(_) => format!(" AND {}", key_set_condition(dialect, column, "$2")),
        None => String::new(),
    };
    let records: Vec<rows::VersionRecord> = fetch_for(
        conn,
        format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions v JOIN registered_models m ON m.model_key = v.model_key \
             WHERE v.model_key = $1{} ORDER BY v.version",
            filter("v.version")
        ),
        key,
        set.as_deref(),
    )
    .await?;
    let tags: Vec<(i64, String, String)> = fetch_for(
        conn,
        format!(
            "SELECT version, key, value FROM model_version_tags WHERE model_key = $1{} ORDER BY version, key",
            filter("version")
        ),
        key,
        set.as_deref(),
    )
    .await?;
    let aliases: Vec<(i64, String)> = fetch_for(
        conn,
        format!(
            "SELECT version, alias FROM registered_model_aliases WHERE model_key = $1{} ORDER BY version, alias",
            filter("version")
        ),
        key,
        set.as_deref(),
    )
    .await?;
    let mut tags_of: HashMap<i64, Vec<KeyValue>> = HashMap::new();
    for (number, key, value) in tags {
        tags_of
            .entry(number)
            .or_default()
            .push(KeyValue { key, value });
    }
    let mut aliases_of: HashMap<i64, Vec<String>> = HashMap::new();
    for (number, alias) in aliases {
        aliases_of.entry(number).or_default().push(alias);
    }
    Ok(records
        .into_iter()
        .map(|record| {
            let mut message = record.message;
            message.tags = tags_of.remove(&record.version).unwrap_or_default();
            message.aliases = aliases_of.remove(&record.version).unwrap_or_default();
            (record.version, message)
        })
        .collect())
}

/// Rows of `sql` (over model `$1` and, when given, the version set `$2`),
/// read on `conn`.
async fn fetch_for<T>(
    conn: &mut AnyConnection,
    sql: String,
    key: i64,
    set: Option<&str>,
) -> Result<Vec<T>, ApiError>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
{
    let query = sqlx::query_as::<_, T>(AssertSqlSafe(sql)).bind(key);
    match set {
        Some(set) => query.bind(set.to_string()),
        None => query,
    }
    .fetch_all(conn)
    .await
    .map_err(db_error)
}

/// Model `key` as a complete message (tags, aliases, latest version per
/// stage with its tags), read on `conn`; `None` when it is gone.
pub(crate) async fn load_model(
    conn: &mut AnyConnection,
    dialect: Dialect,
    key: i64,
) -> Result<Option<pb::RegisteredModel>, ApiError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {MODEL_COLUMNS} FROM registered_models m WHERE m.model_key = $1"
    )))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (_, mut model) = rows::registered_model(&row).map_err(db_error)?;
    model.tags = sqlx::query_as::<_, (String, String)>(
        "SELECT key, value FROM registered_model_tags WHERE model_key = $1 ORDER BY key",
    )
    .bind(key)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(|(key, value)| KeyValue { key, value })
    .collect();
    model.aliases = sqlx::query_as::<_, (String, i64)>(
        "SELECT alias, version FROM registered_model_aliases WHERE model_key = $1 ORDER BY alias",
    )
    .bind(key)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(|(alias, version)| pb::RegisteredModelAlias {
        alias,
        version: version.to_string(),
    })
    .collect();
    let tops: Vec<Option<i64>> = sqlx::query_scalar(LATEST_PER_STAGE)
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    let mut tops: Vec<i64> = tops.into_iter().flatten().collect();
    tops.sort_unstable();
    // A model's latest versions carry their tags, not their aliases (those
    // are listed on the model).
    model.latest_versions = load_versions(conn, dialect, key, Some(&tops))
        .await?
        .into_iter()
        .map(|(_, mut version)| {
            version.aliases.clear();
            version
        })
        .collect();
    Ok(Some(model))
}

/// A stored model card.
pub(crate) fn model(card: &[u8]) -> Result<pb::RegisteredModel, ApiError> {
    pb::RegisteredModel::decode(card)
        .map_err(|e| ApiError::internal(format!("unreadable registered model card: {e}")))
}

/// A stored version card.
pub(crate) fn version(card: &[u8]) -> Result<pb::ModelVersion, ApiError> {
    pb::ModelVersion::decode(card)
        .map_err(|e| ApiError::internal(format!("unreadable model version card: {e}")))
}
