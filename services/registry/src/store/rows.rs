//! Row <-> proto mapping for the registry's SQL store: the one place stored
//! values become API messages.

use quiver_proto::registry::v1 as pb;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Columns of a registered model (`m`).
pub(crate) const MODEL_COLUMNS: &str = "m.model_key, m.name, m.creation_timestamp, m.last_updated_timestamp, \
     m.description, m.user_id, m.deployment_job_id";

/// Columns of a model version (`v`) with its model's name (`m`).
pub(crate) const VERSION_COLUMNS: &str = "v.model_key, m.name, v.version, v.creation_timestamp, \
     v.last_updated_timestamp, v.user_id, v.current_stage, v.description, v.source, v.storage_location, \
     v.run_id, v.run_link, v.model_id, v.status, v.status_message";

/// A registered model's key and card (`m`), as searches read them.
pub(crate) const MODEL_CARD_COLUMNS: &str = "m.model_key, m.card";

/// A model version's key, number and card (`v`), as searches read them.
pub(crate) const VERSION_CARD_COLUMNS: &str = "v.model_key, v.version, v.card";

/// The stored spelling of a version status.
pub(crate) const STATUS_READY: &str = "READY";

fn status_from_str(status: &str) -> pb::ModelVersionStatus {
    match status {
        "PENDING_REGISTRATION" => pb::ModelVersionStatus::PendingRegistration,
        "FAILED_REGISTRATION" => pb::ModelVersionStatus::FailedRegistration,
        "READY" => pb::ModelVersionStatus::Ready,
        _ => pb::ModelVersionStatus::Unspecified,
    }
}

/// A registered model row: (model_key, message without tags/aliases/versions).
pub(crate) fn registered_model(row: &AnyRow) -> Result<(i64, pb::RegisteredModel), sqlx::Error> {
    Ok((
        row.try_get("model_key")?,
        pb::RegisteredModel {
            name: row.try_get("name")?,
            creation_timestamp: row.try_get("creation_timestamp")?,
            last_updated_timestamp: row.try_get("last_updated_timestamp")?,
            user_id: row.try_get("user_id")?,
            description: row.try_get("description")?,
            latest_versions: Vec::new(),
            tags: Vec::new(),
            aliases: Vec::new(),
            deployment_job_id: row.try_get("deployment_job_id")?,
        },
    ))
}

/// A model version row ([`VERSION_COLUMNS`]): its number and its message
/// without tags and aliases.
pub(crate) struct VersionRecord {
    pub version: i64,
    pub message: pb::ModelVersion,
}

impl sqlx::FromRow<'_, AnyRow> for VersionRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let version: i64 = row.try_get("version")?;
        let status: String = row.try_get("status")?;
        Ok(VersionRecord {
            version,
            message: pb::ModelVersion {
                name: row.try_get("name")?,
                version: version.to_string(),
                creation_timestamp: row.try_get("creation_timestamp")?,
                last_updated_timestamp: row.try_get("last_updated_timestamp")?,
                user_id: row.try_get("user_id")?,
                current_stage: row.try_get("current_stage")?,
                description: row.try_get("description")?,
                source: row.try_get("source")?,
                run_id: row.try_get("run_id")?,
                status: status_from_str(&status) as i32,
                status_message: row.try_get("status_message")?,
                tags: Vec::new(),
                run_link: row.try_get("run_link")?,
                aliases: Vec::new(),
                model_id: row.try_get("model_id")?,
                storage_location: row.try_get("storage_location")?,
            },
        })
    }
}
