//! Storage seam of the registry service. One SQL implementation
//! ([`sql::SqlRegistryStore`]) serves Postgres and SQLite; both pass the same
//! conformance suite (`tests/integration/registry.rs`).

use async_trait::async_trait;
use quiver_common::{ApiError, Namespace};
use quiver_proto::common::v1::KeyValue;
use quiver_proto::registry::v1 as pb;
use quiver_search::{Comparison, OrderBy};

mod cards;
mod rows;
mod search_sql;
pub mod sql;

pub use sql::SqlRegistryStore;

/// A model version stage, canonically spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// "None": registered, not deployed.
    None,
    /// "Staging".
    Staging,
    /// "Production".
    Production,
    /// "Archived".
    Archived,
}

impl Stage {
    /// Every stage, in MLflow's listing order.
    pub const ALL: [Stage; 4] = [
        Stage::None,
        Stage::Staging,
        Stage::Production,
        Stage::Archived,
    ];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Parses a stage case-insensitively (`production` is `Production`).
    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str().eq_ignore_ascii_case(text))
    }

    /// Staging and Production are the stages `archive_existing_versions` applies to.
    pub fn is_active(self) -> bool {
        matches!(self, Stage::Staging | Stage::Production)
    }
}

/// A new registered model.
#[derive(Debug, Clone)]
pub struct NewRegisteredModel {
    /// Unique within the namespace.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Deployment job id (MLflow 3), may be empty.
    pub deployment_job_id: String,
    /// Initial tags.
    pub tags: Vec<KeyValue>,
    /// Creation time (ms).
    pub now: i64,
}

/// A new model version whose source has already been resolved and checked.
#[derive(Debug, Clone)]
pub struct NewModelVersion {
    /// The source as the client gave it (`runs:/...`, `models:/...`, a URI).
    pub source: String,
    /// The resolved artifact URI the files are read from.
    pub storage_location: String,
    /// The run that produced the model, may be empty.
    pub run_id: String,
    /// Free text link, may be empty.
    pub run_link: String,
    /// Free text.
    pub description: String,
    /// The MLflow 3 logged model, may be empty.
    pub model_id: String,
    /// Initial tags.
    pub tags: Vec<KeyValue>,
    /// Creation time (ms).
    pub now: i64,
}

/// A parsed search of registered models or model versions.
#[derive(Debug, Clone)]
pub struct RegistryQuery {
    /// Validated filter clauses (a conjunction).
    pub filter: Vec<Comparison>,
    /// Validated order clauses, tiebreakers not yet appended.
    pub order_by: Vec<OrderBy>,
    /// Rows to skip.
    pub offset: i64,
    /// Page size.
    pub limit: i64,
}

/// Storage of registered models, versions, tags and aliases. Every method is
/// scoped to one namespace; no call can reach another namespace's rows.
#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    /// Creates a registered model; a taken name is `RESOURCE_ALREADY_EXISTS`.
    async fn create_registered_model(
        &self,
        namespace: &Namespace,
        model: NewRegisteredModel,
    ) -> Result<pb::RegisteredModel, ApiError>;
    /// Gets a registered model with tags, aliases and latest versions.
    async fn get_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<pb::RegisteredModel, ApiError>;
    /// Renames a registered model; its versions, tags and aliases follow.
    async fn rename_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
        new_name: &str,
        now: i64,
    ) -> Result<pb::RegisteredModel, ApiError>;
    /// Changes the description and/or deployment job id.
    async fn update_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
        description: Option<String>,
        deployment_job_id: Option<String>,
        now: i64,
    ) -> Result<pb::RegisteredModel, ApiError>;
    /// Deletes a registered model with its versions, tags and aliases.
    async fn delete_registered_model(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<(), ApiError>;
    /// Searches registered models; returns a page and whether more follow.
    async fn search_registered_models(
        &self,
        namespace: &Namespace,
        query: &RegistryQuery,
    ) -> Result<(Vec<pb::RegisteredModel>, bool), ApiError>;
    /// Sets (or overwrites) a registered model tag.
    async fn set_registered_model_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        tag: KeyValue,
    ) -> Result<(), ApiError>;
    /// Deletes a registered model tag (absent tags are fine).
    async fn delete_registered_model_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        key: &str,
    ) -> Result<(), ApiError>;
    /// Points an alias at a version (moving it if it exists).
    async fn set_alias(
        &self,
        namespace: &Namespace,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<(), ApiError>;
    /// Removes an alias (absent aliases are fine).
    async fn delete_alias(
        &self,
        namespace: &Namespace,
        name: &str,
        alias: &str,
    ) -> Result<(), ApiError>;
    /// The version an alias points at.
    async fn get_version_by_alias(
        &self,
        namespace: &Namespace,
        name: &str,
        alias: &str,
    ) -> Result<pb::ModelVersion, ApiError>;
    /// Allocates the next version number atomically and creates the version.
    async fn create_model_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: NewModelVersion,
    ) -> Result<pb::ModelVersion, ApiError>;
    /// Gets one version.
    async fn get_model_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
    ) -> Result<pb::ModelVersion, ApiError>;
    /// Changes a version's description.
    async fn update_model_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        description: Option<String>,
        now: i64,
    ) -> Result<pb::ModelVersion, ApiError>;
    /// Deletes a version with its tags and aliases.
    async fn delete_model_version(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        now: i64,
    ) -> Result<(), ApiError>;
    /// Moves a version to `stage`; with `archive_existing`, the other versions
    /// in that stage move to Archived in the same transaction.
    async fn transition_stage(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
        now: i64,
    ) -> Result<pb::ModelVersion, ApiError>;
    /// Searches model versions; returns a page and whether more follow.
    async fn search_model_versions(
        &self,
        namespace: &Namespace,
        query: &RegistryQuery,
    ) -> Result<(Vec<pb::ModelVersion>, bool), ApiError>;
    /// The highest version in each of `stages` (all stages when empty).
    async fn get_latest_versions(
        &self,
        namespace: &Namespace,
        name: &str,
        stages: &[Stage],
    ) -> Result<Vec<pb::ModelVersion>, ApiError>;
    /// Sets (or overwrites) a model version tag.
    async fn set_model_version_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        tag: KeyValue,
    ) -> Result<(), ApiError>;
    /// Deletes a model version tag (absent tags are fine).
    async fn delete_model_version_tag(
        &self,
        namespace: &Namespace,
        name: &str,
        version: i64,
        key: &str,
    ) -> Result<(), ApiError>;
}

/// `Registered Model with name=x not found` (404).
pub fn model_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Registered Model with name={name} not found"))
}

/// `Model Version (name=x, version=n) not found` (404).
pub fn version_not_found(name: &str, version: i64) -> ApiError {
    ApiError::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}
