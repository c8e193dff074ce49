-- Registry schema, SQLite. Append-only: change the schema in a new file.
-- A registered model is keyed by a surrogate model_key so a rename touches one
-- row; its versions, tags and aliases hang off that key.
CREATE TABLE registered_models (
    model_key INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '',
    deployment_job_id TEXT NOT NULL DEFAULT '',
    -- The next version number: allocated under the row lock, never reused.
    next_version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (namespace, name)
);
CREATE INDEX registered_models_by_update ON registered_models (namespace, last_updated_timestamp DESC, name);

CREATE TABLE registered_model_tags (
    model_key BIGINT NOT NULL REFERENCES registered_models (model_key) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_key, key)
);

CREATE TABLE model_versions (
    model_key BIGINT NOT NULL REFERENCES registered_models (model_key) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    namespace TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    current_stage TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    -- Where the files are: the resolved artifact URI of the source.
    storage_location TEXT NOT NULL,
    run_id TEXT NOT NULL DEFAULT '',
    run_link TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (model_key, version)
);
CREATE INDEX model_versions_by_update ON model_versions (namespace, last_updated_timestamp DESC);
CREATE INDEX model_versions_by_stage ON model_versions (model_key, current_stage, version DESC);
CREATE INDEX model_versions_by_run ON model_versions (namespace, run_id);

CREATE TABLE model_version_tags (
    model_key BIGINT NOT NULL,
    version BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_key, version, key),
    FOREIGN KEY (model_key, version) REFERENCES model_versions (model_key, version) ON DELETE CASCADE
);

CREATE TABLE registered_model_aliases (
    model_key BIGINT NOT NULL,
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (model_key, alias),
    FOREIGN KEY (model_key, version) REFERENCES model_versions (model_key, version) ON DELETE CASCADE
);
CREATE INDEX registered_model_aliases_by_version ON registered_model_aliases (model_key, version);
