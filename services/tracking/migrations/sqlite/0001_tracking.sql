-- Tracking schema, SQLite. Append-only: change the schema in a new file.
CREATE TABLE namespaces (
    name TEXT PRIMARY KEY,
    next_experiment_id BIGINT NOT NULL,
    creation_time BIGINT NOT NULL
);

CREATE TABLE experiments (
    namespace TEXT NOT NULL REFERENCES namespaces (name),
    experiment_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL,
    PRIMARY KEY (namespace, experiment_id),
    UNIQUE (namespace, name)
);
CREATE INDEX experiments_by_creation ON experiments (namespace, creation_time DESC, experiment_id);

CREATE TABLE experiment_tags (
    namespace TEXT NOT NULL,
    experiment_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, experiment_id, key),
    FOREIGN KEY (namespace, experiment_id) REFERENCES experiments (namespace, experiment_id) ON DELETE CASCADE
);

CREATE TABLE runs (
    run_key INTEGER PRIMARY KEY,
    run_uuid TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    experiment_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    lifecycle_stage TEXT NOT NULL,
    artifact_uri TEXT NOT NULL,
    deleted_time BIGINT,
    FOREIGN KEY (namespace, experiment_id) REFERENCES experiments (namespace, experiment_id) ON DELETE CASCADE
);
-- Serves the default search order (start_time DESC, run_uuid) per experiment.
CREATE INDEX runs_by_experiment ON runs (namespace, experiment_id, start_time DESC, run_uuid);

CREATE TABLE params (
    run_key BIGINT NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_key, key)
);

CREATE TABLE tags (
    run_key BIGINT NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_key, key)
);

-- Full metric history. No foreign key: this is the hot insert path; rows are
-- removed with their run by the store.
CREATE TABLE metrics (
    run_key BIGINT NOT NULL,
    key TEXT NOT NULL,
    step BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value REAL NOT NULL,
    is_nan BIGINT NOT NULL,
    model_id TEXT,
    dataset_name TEXT,
    dataset_digest TEXT,
    PRIMARY KEY (run_key, key, step, timestamp, value, is_nan)
);

-- Latest value per (run, key): max step, then timestamp, then value.
CREATE TABLE latest_metrics (
    run_key BIGINT NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    key TEXT NOT NULL,
    step BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value REAL NOT NULL,
    is_nan BIGINT NOT NULL,
    PRIMARY KEY (run_key, key)
);
-- Serves metric filters and metric order_by across runs.
CREATE INDEX latest_metrics_by_value ON latest_metrics (key, is_nan, value, run_key);

CREATE TABLE datasets (
    dataset_key INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    experiment_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    schema TEXT NOT NULL,
    profile TEXT NOT NULL,
    UNIQUE (namespace, experiment_id, name, digest),
    FOREIGN KEY (namespace, experiment_id) REFERENCES experiments (namespace, experiment_id) ON DELETE CASCADE
);

CREATE TABLE dataset_inputs (
    run_key BIGINT NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    dataset_key BIGINT NOT NULL REFERENCES datasets (dataset_key) ON DELETE CASCADE,
    tags_hash TEXT NOT NULL,
    tags_json TEXT NOT NULL,
    context TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (run_key, dataset_key, tags_hash)
);
CREATE INDEX dataset_inputs_by_dataset ON dataset_inputs (dataset_key);

CREATE TABLE model_inputs (
    run_key BIGINT NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    PRIMARY KEY (run_key, model_id)
);

CREATE TABLE model_outputs (
    run_key BIGINT NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_key, model_id, step)
);
